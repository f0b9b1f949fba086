/* Weighted kNN classification of frozen features (include/byol/eval.h): cosine similarities
 * from OpenBLAS sgemm, one block of test rows against one block of train rows at a time, each
 * test row keeping a sorted top-k list; the test blocks are shared out among threads. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

/* 1024 x 2048 floats = 8 MiB of similarities at a time. sgemm repacks each train block once
 * per test block, so tall test blocks keep that copying small next to the multiplication. */
#define KNN_TEST_BLOCK 1024
#define KNN_TRAIN_BLOCK 2048

/* Rows scaled to unit L2 norm (zero rows stay zero); a non-finite value fails. */
static byol_status knn_normalize(const float *in, size_t n, int dim, float *out, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * (size_t)dim;
        double ss = 0;
        for (int j = 0; j < dim; j++)
            ss += (double)x[j] * x[j];
        if (!isfinite(ss))
            return byol_error(BYOL_ERR_INVALID, "kNN: %s feature row %zu is not finite", what, i);
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int j = 0; j < dim; j++)
            out[i * (size_t)dim + j] = x[j] * inv;
    }
    return BYOL_OK;
}

/* One test row's best candidates so far: sim descending; among equal sims the earlier
 * (lower) train index stays first, since candidates arrive in index order. */
struct knn_top {
    float *sim;
    size_t *idx;
    int n;
};

static void knn_offer(struct knn_top *t, int k, float s, size_t j)
{
    if (t->n == k && !(s > t->sim[k - 1]))
        return;
    int pos = t->n < k ? t->n++ : k - 1;
    while (pos > 0 && t->sim[pos - 1] < s) {
        t->sim[pos] = t->sim[pos - 1];
        t->idx[pos] = t->idx[pos - 1];
        pos--;
    }
    t->sim[pos] = s;
    t->idx[pos] = j;
}

/* Votes exp(sim / T), shifted by the best sim (the argmax is the same and nothing overflows);
 * the lowest class wins a tie. `votes` is all zeros on entry and on return. */
static int knn_vote(const struct knn_top *t, const int *labels, double temperature, double *votes)
{
    int best = -1;
    for (int m = 0; m < t->n; m++)
        votes[labels[t->idx[m]]] += exp(((double)t->sim[m] - t->sim[0]) / temperature);
    for (int m = 0; m < t->n; m++) {
        int c = labels[t->idx[m]];
        if (best < 0 || votes[c] > votes[best] || (votes[c] == votes[best] && c < best))
            best = c;
    }
    for (int m = 0; m < t->n; m++)
        votes[labels[t->idx[m]]] = 0;
    return best;
}

static byol_status knn_check(const float *train, const int *train_labels, size_t n_train,
                             const float *test, size_t n_test, int dim, int n_classes, int k,
                             double temperature, const int *pred)
{
    if (!train || !train_labels || (n_test && (!test || !pred)))
        return byol_error(BYOL_ERR_INVALID, "kNN: NULL argument");
    if (dim < 1 || n_classes < 1 || n_classes > BYOL_EVAL_MAX_CLASSES)
        return byol_error(BYOL_ERR_INVALID, "kNN: bad dim %d or class count %d", dim, n_classes);
    if (k < 1 || k > BYOL_KNN_MAX_K || (size_t)k > n_train)
        return byol_error(BYOL_ERR_INVALID, "kNN: k = %d must be in [1, %zu]", k,
                          n_train < BYOL_KNN_MAX_K ? n_train : (size_t)BYOL_KNN_MAX_K);
    if (!(temperature > 0) || !isfinite(temperature))
        return byol_error(BYOL_ERR_INVALID, "kNN: temperature %g must be > 0", temperature);
    for (size_t i = 0; i < n_train; i++)
        if (train_labels[i] < 0 || train_labels[i] >= n_classes)
            return byol_error(BYOL_ERR_INVALID, "kNN: train label %zu is %d (classes: 0..%d)", i,
                              train_labels[i], n_classes - 1);
    return BYOL_OK;
}

/* One thread's buffers: a block of similarities and the block's top-k lists. */
struct knn_part {
    float *sims, *top_sim;
    size_t *top_idx;
    double *votes;
};

struct knn_work {
    const float *train, *test; /* L2-normalised copies */
    const int *labels;
    size_t n_train, n_test;
    int dim, k, threads, test_block;
    double temperature;
    int *pred;
    struct knn_part part[EVAL_MAX_THREADS];
};

/* Test rows [t0, t0 + tb): every train block through sgemm and into the top-k lists. */
static void knn_block(const struct knn_work *w, const struct knn_part *q, size_t t0, int tb)
{
    struct knn_top tops[KNN_TEST_BLOCK];
    int k = w->k;
    for (int i = 0; i < tb; i++)
        tops[i] = (struct knn_top){q->top_sim + (size_t)i * k, q->top_idx + (size_t)i * k, 0};
    for (size_t j0 = 0; j0 < w->n_train; j0 += KNN_TRAIN_BLOCK) {
        int nb = (int)(w->n_train - j0 < KNN_TRAIN_BLOCK ? w->n_train - j0 : KNN_TRAIN_BLOCK);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tb, nb, w->dim, 1.0f,
                    w->test + t0 * (size_t)w->dim, w->dim, w->train + j0 * (size_t)w->dim, w->dim,
                    0.0f, q->sims, nb);
        for (int i = 0; i < tb; i++) {
            const float *row = q->sims + (size_t)i * nb;
            struct knn_top *t = &tops[i];
            for (int j = 0; j < nb; j++)
                if (t->n < k || row[j] > t->sim[k - 1])
                    knn_offer(t, k, row[j], j0 + (size_t)j);
        }
    }
    for (int i = 0; i < tb; i++)
        w->pred[t0 + (size_t)i] = knn_vote(&tops[i], w->labels, w->temperature, q->votes);
}

/* Part i takes every threads-th block of test rows; each row's answer is the same whichever
 * thread computes it. */
static void knn_part_run(void *user, int i)
{
    struct knn_work *w = user;
    size_t block = (size_t)w->test_block, step = block * (size_t)w->threads;
    for (size_t t0 = (size_t)i * block; t0 < w->n_test; t0 += step) {
        int tb = (int)(w->n_test - t0 < block ? w->n_test - t0 : block);
        knn_block(w, &w->part[i], t0, tb);
    }
}

static byol_status knn_alloc(struct knn_work *w, int n_classes, float **train, float **test)
{
    *train = eval_alloc(w->n_train * (size_t)w->dim * sizeof(float));
    *test = eval_alloc(w->n_test * (size_t)w->dim * sizeof(float));
    int ok = *train && *test;
    for (int t = 0; t < w->threads; t++) {
        struct knn_part *q = &w->part[t];
        q->sims = malloc((size_t)w->test_block * KNN_TRAIN_BLOCK * sizeof(float));
        q->top_sim = malloc((size_t)w->test_block * (size_t)w->k * sizeof(float));
        q->top_idx = malloc((size_t)w->test_block * (size_t)w->k * sizeof(size_t));
        q->votes = calloc((size_t)n_classes, sizeof(double));
        ok = ok && q->sims && q->top_sim && q->top_idx && q->votes;
    }
    return ok ? BYOL_OK
              : byol_error(BYOL_ERR_NOMEM, "kNN: out of memory for %zu + %zu features", w->n_train,
                           w->n_test);
}

static void knn_free(struct knn_work *w, float *train, float *test)
{
    free(train);
    free(test);
    for (int t = 0; t < w->threads; t++) {
        free(w->part[t].sims);
        free(w->part[t].top_sim);
        free(w->part[t].top_idx);
        free(w->part[t].votes);
    }
}

byol_status eval_knn_classify(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes, int k,
                              double temperature, int threads, int *pred)
{
    byol_status st =
        knn_check(train, train_labels, n_train, test, n_test, dim, n_classes, k, temperature, pred);
    if (st != BYOL_OK || n_test == 0)
        return st;
    threads = threads < 1 ? 1 : threads > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : threads;
    /* Blocks small enough that every thread gets one. */
    size_t per = (n_test + (size_t)threads - 1) / (size_t)threads;
    struct knn_work w = {.labels = train_labels,
                         .n_train = n_train,
                         .n_test = n_test,
                         .dim = dim,
                         .k = k,
                         .threads = threads,
                         .temperature = temperature,
                         .pred = pred};
    w.test_block = per < KNN_TEST_BLOCK ? (int)per : KNN_TEST_BLOCK;
    float *ntrain = NULL, *ntest = NULL;
    st = knn_alloc(&w, n_classes, &ntrain, &ntest);
    if (st == BYOL_OK)
        st = knn_normalize(train, n_train, dim, ntrain, "train");
    if (st == BYOL_OK)
        st = knn_normalize(test, n_test, dim, ntest, "test");
    w.train = ntrain;
    w.test = ntest;
    if (st == BYOL_OK)
        eval_parallel(threads, knn_part_run, &w);
    knn_free(&w, ntrain, ntest);
    return st;
}

byol_status byol_knn_classify(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes, int k,
                              double temperature, int *pred)
{
    return eval_knn_classify(train, train_labels, n_train, test, n_test, dim, n_classes, k,
                             temperature, eval_default_threads(), pred);
}

double byol_eval_accuracy(const int *pred, const int *labels, size_t n)
{
    if (!pred || !labels || n == 0)
        return 0;
    size_t right = 0;
    for (size_t i = 0; i < n; i++)
        right += pred[i] == labels[i];
    return (double)right / (double)n;
}
