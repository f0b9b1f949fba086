/* The evaluator (include/byol/eval.h): the config's eval group opened once, then kNN and the
 * linear probe on the online encoder's features of its labelled train and test splits,
 * whenever the trainer or byolctl asks. */
#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "byol/learner.h"
#include "byol/registry.h"
#include "eval_internal.h"
#include "log_internal.h"

#define EVAL_MAX_PROBE_ITERATIONS 100000

/* LAPACK's symmetric eigensolver, from the OpenBLAS the kNN already links (which carries
 * LAPACK); the trailing lengths are gfortran's hidden ones for the two character arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

struct eval_split {
    struct byol_dataset *ds;
    struct byol_augment_pipeline *transform;
    int *labels;
    size_t n;
};

struct byol_evaluator {
    struct eval_split split[2]; /* train, test */
    struct byol_augment_pool *pool;
    int64_t every;
    int knn_k;
    double knn_temperature;
    struct byol_probe_options probe;
    int n_classes;
    int baseline;       /* eval.baseline: byol_evaluator_run also scores the raw pixels */
    int baseline_cache; /* eval.baseline_cache: keep the baseline's result for next time */
    int threads;        /* backend.threads: for the kNN's and the probe's passes */
    byol_eval_progress_fn progress; /* byol_evaluator_set_progress */
    void *progress_user;
};

static double eval_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- progress reports --------------------------------------------------------------------- */

static void eval_progress_report(struct eval_progress *r, size_t done, double loss, int last)
{
    r->p.done = done;
    r->p.loss = loss;
    r->p.last = last;
    r->p.seconds = eval_now() - r->t0;
    r->fn(&r->p, r->user);
}

void eval_progress_begin(struct eval_progress *r, enum byol_eval_phase phase, int split,
                         int baseline, size_t total)
{
    if (!r || !r->fn)
        return;
    r->p = (struct byol_eval_progress){
        .phase = phase, .split = split, .baseline = baseline, .total = total};
    r->t0 = eval_now();
    eval_progress_report(r, 0, NAN, 0);
}

void eval_progress_step(struct eval_progress *r, size_t done, double loss)
{
    if (r && r->fn)
        eval_progress_report(r, done, loss, 0);
}

void eval_progress_end(struct eval_progress *r, size_t done, double loss)
{
    if (r && r->fn)
        eval_progress_report(r, done, loss, 1);
}

void byol_evaluator_set_progress(struct byol_evaluator *ev, byol_eval_progress_fn fn, void *user)
{
    if (!ev)
        return;
    ev->progress = fn;
    ev->progress_user = fn ? user : NULL;
}

/* ---- opening ------------------------------------------------------------------------------ */

static byol_status eval_range_error(const struct byol_settings *g, const char *key,
                                    const char *what)
{
    return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID, "%s", what);
}

/* every, knn_k, knn_temperature, probe_l2, probe_iterations, baseline, baseline_cache. */
static byol_status eval_read_numbers(const struct byol_settings *g, struct byol_evaluator *ev)
{
    int64_t k, iterations;
    byol_probe_options_default(&ev->probe);
    byol_status st = byol_settings_int(g, "every", 0, &ev->every);
    if (st == BYOL_OK && ev->every < 0)
        return eval_range_error(g, "every", "must be >= 0 (steps between kNN checks; 0: none)");
    if (st == BYOL_OK)
        st = byol_settings_int(g, "knn_k", 20, &k);
    if (st == BYOL_OK && (k < 1 || k > BYOL_KNN_MAX_K))
        return byol_settings_error(byol_settings_child(g, "knn_k"), BYOL_ERR_INVALID,
                                   "%lld is out of range [1, %d]", (long long)k, BYOL_KNN_MAX_K);
    if (st == BYOL_OK)
        st = byol_settings_float(g, "knn_temperature", 0.07, &ev->knn_temperature);
    if (st == BYOL_OK && !(ev->knn_temperature > 0 && isfinite(ev->knn_temperature)))
        return eval_range_error(g, "knn_temperature", "must be a finite number > 0");
    if (st == BYOL_OK)
        st = byol_settings_float(g, "probe_l2", BYOL_PROBE_L2, &ev->probe.l2);
    if (st == BYOL_OK && !(ev->probe.l2 >= 0 && isfinite(ev->probe.l2)))
        return eval_range_error(g, "probe_l2", "must be a finite number >= 0");
    if (st == BYOL_OK)
        st = byol_settings_int(g, "probe_iterations", BYOL_PROBE_MAX_ITERATIONS, &iterations);
    if (st == BYOL_OK && (iterations < 1 || iterations > EVAL_MAX_PROBE_ITERATIONS))
        return byol_settings_error(byol_settings_child(g, "probe_iterations"), BYOL_ERR_INVALID,
                                   "%lld is out of range [1, %d]", (long long)iterations,
                                   EVAL_MAX_PROBE_ITERATIONS);
    if (st == BYOL_OK)
        st = byol_settings_bool(g, "baseline", 1, &ev->baseline);
    if (st == BYOL_OK)
        st = byol_settings_bool(g, "baseline_cache", 1, &ev->baseline_cache);
    ev->knn_k = (int)k;
    ev->probe.max_iterations = (int)iterations;
    return st;
}

/* One labelled split: its dataset, every label, and its eval transform. */
static byol_status eval_open_split(const struct byol_settings *root, const char *format,
                                   const char *dir, struct byol_registry *reg, int in_channels,
                                   int image_size, int test, struct eval_split *s)
{
    const struct byol_settings *g = byol_settings_child(root, "eval");
    const char *which = test ? "test" : "train";
    char images[32], labels[32];
    snprintf(images, sizeof images, "%s_images", which);
    snprintf(labels, sizeof labels, "%s_labels", which);
    int files = eval_format_has_label_files(format);
    if (files && !byol_settings_has(g, labels))
        return byol_settings_error(g, BYOL_ERR_INVALID,
                                   "missing '%s' (evaluation needs the %s split's labels)", labels,
                                   which);
    byol_status st = byol_dataset_open_settings_keys(g, dir, images, files ? labels : NULL,
                                                     in_channels, image_size, 0, &s->ds);
    if (st != BYOL_OK)
        return st;
    s->n = byol_dataset_count(s->ds);
    s->labels = malloc(s->n * sizeof *s->labels);
    if (!s->labels)
        return byol_error(BYOL_ERR_NOMEM, "eval: out of memory for %zu labels", s->n);
    for (size_t i = 0; i < s->n; i++)
        if ((s->labels[i] = byol_dataset_label(s->ds, i)) < 0)
            return byol_settings_error(byol_settings_child(g, images), BYOL_ERR_INVALID,
                                       "the %s split has no label for image %zu", which, i);
    return byol_eval_transform_create(reg, root, s->ds, in_channels, image_size, &s->transform);
}

/* Classes: one more than the largest label of either split; the probe needs two. */
static byol_status eval_count_classes(const struct byol_settings *g, struct byol_evaluator *ev)
{
    int top = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < ev->split[s].n; i++)
            top = ev->split[s].labels[i] > top ? ev->split[s].labels[i] : top;
    if (top + 1 < 2 || top >= BYOL_EVAL_MAX_CLASSES)
        return byol_settings_error(g, BYOL_ERR_INVALID,
                                   "the labels name %d classes (evaluation needs 2 to %d)", top + 1,
                                   BYOL_EVAL_MAX_CLASSES);
    ev->n_classes = top + 1;
    if ((size_t)ev->knn_k > ev->split[0].n)
        return byol_settings_error(byol_settings_child(g, "knn_k"), BYOL_ERR_INVALID,
                                   "%d is more than the train split's %zu images", ev->knn_k,
                                   ev->split[0].n);
    return BYOL_OK;
}

static byol_status eval_open_pool(const struct byol_settings *root, struct byol_evaluator *ev)
{
    int64_t threads;
    byol_status st =
        byol_settings_int(byol_settings_child(root, "backend"), "threads", 1, &threads);
    if (st != BYOL_OK)
        return st;
    ev->threads = threads < 1 ? 1 : threads > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : (int)threads;
    return byol_augment_pool_create(ev->threads, &ev->pool);
}

byol_status byol_evaluator_open(const struct byol_settings *root, const char *config_dir,
                                struct byol_registry *reg, int in_channels, int image_size,
                                struct byol_evaluator **out)
{
    if (!out || !reg)
        return byol_error(BYOL_ERR_INVALID, "byol_evaluator_open: NULL argument");
    *out = NULL;
    const struct byol_settings *g = byol_settings_child(root, "eval");
    if (!g)
        return BYOL_OK;
    struct byol_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev)
        return byol_error(BYOL_ERR_NOMEM, "eval: out of memory");
    const char *format;
    byol_status st = eval_check_group(g, &format);
    if (st == BYOL_OK)
        st = eval_read_numbers(g, ev);
    for (int s = 0; s < 2 && st == BYOL_OK; s++)
        st = eval_open_split(root, format, config_dir, reg, in_channels, image_size, s,
                             &ev->split[s]);
    if (st == BYOL_OK)
        st = eval_count_classes(g, ev);
    if (st == BYOL_OK)
        st = eval_open_pool(root, ev);
    if (st != BYOL_OK) {
        byol_evaluator_free(ev);
        return st;
    }
    *out = ev;
    return BYOL_OK;
}

void byol_evaluator_free(struct byol_evaluator *ev)
{
    if (!ev)
        return;
    for (int s = 0; s < 2; s++) {
        byol_dataset_free(ev->split[s].ds);
        byol_augment_pipeline_free(ev->split[s].transform);
        free(ev->split[s].labels);
    }
    byol_augment_pool_free(ev->pool);
    free(ev);
}

int64_t byol_evaluator_every(const struct byol_evaluator *ev)
{
    return ev ? ev->every : 0;
}

int byol_evaluator_knn_k(const struct byol_evaluator *ev)
{
    return ev ? ev->knn_k : 0;
}

/* Both splits' features (malloc'ed; the caller frees them, also on failure). */
static byol_status eval_features(struct byol_evaluator *ev, struct byol_learner *l, float *f[2],
                                 struct eval_progress *r)
{
    size_t dim = (size_t)byol_learner_embedding_dim(l);
    byol_status st = BYOL_OK;
    for (int s = 0; s < 2 && st == BYOL_OK; s++) {
        f[s] = eval_alloc(ev->split[s].n * dim * sizeof(float));
        if (!f[s])
            return byol_error(BYOL_ERR_NOMEM, "eval: out of memory for %zu x %zu features",
                              ev->split[s].n, dim);
        eval_progress_begin(r, BYOL_EVAL_PHASE_FEATURES, s, 0, ev->split[s].n);
        st =
            eval_embed_dataset(l, ev->split[s].ds, ev->split[s].transform, ev->pool, f[s], NULL, r);
        if (st == BYOL_OK)
            eval_progress_end(r, ev->split[s].n, NAN);
    }
    return st;
}

static byol_status eval_knn_top1(struct byol_evaluator *ev, float *f[2], int dim, int *pred,
                                 double *top1, int baseline, struct eval_progress *r)
{
    const struct eval_split *tr = &ev->split[0], *te = &ev->split[1];
    eval_progress_begin(r, BYOL_EVAL_PHASE_KNN, -1, baseline, te->n);
    byol_status st = eval_knn_classify(f[0], tr->labels, tr->n, f[1], te->n, dim, ev->n_classes,
                                       ev->knn_k, ev->knn_temperature, ev->threads, pred);
    if (st == BYOL_OK) {
        *top1 = byol_eval_accuracy(pred, te->labels, te->n);
        eval_progress_end(r, te->n, NAN);
    }
    return st;
}

/* ---- The effective rank (Roy & Vetterli 2007). ------------------------------------------- */

/* The eigenvalues of the m x m symmetric matrix a (overwritten) into w, ascending. */
static byol_status eval_eigenvalues(double *a, int m, double *w)
{
    int lwork = 2 * m + 1, liwork = 1, info = 0;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work)
        return byol_error(BYOL_ERR_NOMEM, "effective rank: out of memory");
    dsyevd_("N", "U", &m, a, &m, w, work, &lwork, &liwork, &liwork, &info, 1, 1);
    free(work);
    if (info != 0)
        return byol_error(BYOL_ERR_INTERNAL, "effective rank: dsyevd failed (info %d)", info);
    return BYOL_OK;
}

/* exp of the entropy of the singular values sqrt(lambda) normalised to sum 1; 0 when all are
 * 0 (every row the same). Eigenvalues below floor are rounding, not directions: 0. */
static double eval_erank_of(const double *lambda, int m, double floor)
{
    double sum = 0, h = 0;
    for (int i = 0; i < m; i++)
        sum += lambda[i] > floor ? sqrt(lambda[i]) : 0;
    if (!(sum > 0))
        return 0;
    for (int i = 0; i < m; i++) {
        double p = lambda[i] > floor ? sqrt(lambda[i]) / sum : 0;
        if (p > 0)
            h -= p * log(p);
    }
    return exp(h);
}

byol_status byol_effective_rank(const float *x, size_t n, int dim, size_t max_rows, double *out)
{
    if (!x || !out || n < 1 || dim < 1)
        return byol_error(BYOL_ERR_INVALID, "byol_effective_rank: %s",
                          !x || !out ? "NULL argument" : "no rows or no columns");
    size_t m = max_rows && n > max_rows ? max_rows : n, d = (size_t)dim;
    if (m > INT_MAX / 2 || (size_t)dim > INT_MAX / 2)
        return byol_error(BYOL_ERR_INVALID, "byol_effective_rank: too many rows or columns");
    /* The smaller of the Gram matrix (m x m) and the covariance (d x d): the same nonzero
     * eigenvalues. */
    size_t k = m <= d ? m : d;
    double *c = malloc(m * d * sizeof *c), *mean = calloc(d, sizeof *mean);
    double *a = malloc(k * k * sizeof *a), *w = malloc(k * sizeof *w);
    byol_status st = c && mean && a && w ? BYOL_OK
                                         : byol_error(BYOL_ERR_NOMEM,
                                                      "effective rank: out of memory for %zu x "
                                                      "%zu",
                                                      m, d);
    for (size_t i = 0; i < m && st == BYOL_OK; i++) { /* evenly spaced rows, centred */
        const float *row = x + (i * n / m) * d;
        for (size_t j = 0; j < d; j++)
            mean[j] += (c[i * d + j] = row[j]);
    }
    for (size_t i = 0; i < m && st == BYOL_OK; i++)
        for (size_t j = 0; j < d; j++)
            c[i * d + j] -= mean[j] / (double)m;
    if (st == BYOL_OK) {
        if (m <= d)
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)m, dim, 1.0, c, dim, 0.0, a,
                        (int)m);
        else
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, dim, (int)m, 1.0, c, dim, 0.0, a,
                        dim);
        /* Row-major lower is column-major upper. */
        st = eval_eigenvalues(a, (int)k, w);
    }
    for (size_t i = 0; i < k && st == BYOL_OK; i++)
        if (!isfinite(w[i]))
            st = byol_error(BYOL_ERR_NONFINITE, "effective rank: a feature is NaN or infinite");
    /* The rounding of the products and the solver: max(m, d) ulps of the largest. */
    if (st == BYOL_OK)
        *out = eval_erank_of(w, (int)k, w[k - 1] * (double)(m > d ? m : d) * DBL_EPSILON);
    free(c);
    free(mean);
    free(a);
    free(w);
    return st;
}

byol_status byol_evaluator_knn(struct byol_evaluator *ev, struct byol_learner *l, double *top1)
{
    return byol_evaluator_knn_rank(ev, l, top1, NULL);
}

byol_status byol_evaluator_knn_rank(struct byol_evaluator *ev, struct byol_learner *l, double *top1,
                                    double *erank)
{
    if (!ev || !l || !top1)
        return byol_error(BYOL_ERR_INVALID, "byol_evaluator_knn: NULL argument");
    float *f[2] = {NULL, NULL};
    struct eval_progress r = {.fn = ev->progress, .user = ev->progress_user};
    int *pred = malloc(ev->split[1].n * sizeof *pred);
    byol_status st = pred ? eval_features(ev, l, f, &r)
                          : byol_error(BYOL_ERR_NOMEM, "eval: out of memory for predictions");
    if (st == BYOL_OK)
        st = eval_knn_top1(ev, f, byol_learner_embedding_dim(l), pred, top1, 0, &r);
    if (st == BYOL_OK && erank)
        st = byol_effective_rank(f[0], ev->split[0].n, byol_learner_embedding_dim(l),
                                 BYOL_ERANK_MAX_ROWS, erank);
    free(f[0]);
    free(f[1]);
    free(pred);
    return st;
}

/* kNN and the probe on features (baseline 0) or pixels (1) already computed, which the probe
 * then standardises in place (the caller has no further use for them); times into r. */
static byol_status eval_classify(struct byol_evaluator *ev, float *f[2], int dim, int *pred,
                                 int baseline, struct eval_progress *rep,
                                 struct byol_eval_result *r)
{
    const struct eval_split *tr = &ev->split[0], *te = &ev->split[1];
    double t0 = eval_now();
    byol_status st = eval_knn_top1(ev, f, dim, pred, &r->knn_top1, baseline, rep);
    double t1 = eval_now();
    struct byol_probe_info info = {0};
    if (st == BYOL_OK) {
        eval_progress_begin(rep, BYOL_EVAL_PHASE_PROBE, -1, baseline,
                            (size_t)ev->probe.max_iterations);
        st = eval_linear_probe(f[0], tr->labels, tr->n, f[1], te->n, dim, ev->n_classes, &ev->probe,
                               ev->threads, f, pred, NULL, &info, rep);
    }
    if (st == BYOL_OK) {
        r->linear_top1 = byol_eval_accuracy(pred, te->labels, te->n);
        eval_progress_end(rep, (size_t)info.iterations, info.loss);
    }
    r->knn_seconds = t1 - t0;
    r->probe_seconds = eval_now() - t1;
    r->probe_iterations = info.iterations;
    return st;
}

/* The cache entry for these pixels: its key and path; 0, or -1 when there is no cache (a
 * warning says why: the evaluation goes on without). */
static int eval_cache_entry(const struct byol_evaluator *ev, float *px[2], int dim, char *key,
                            char *path, size_t n)
{
    struct eval_baseline_inputs in = {.dim = dim,
                                      .n_classes = ev->n_classes,
                                      .knn_k = ev->knn_k,
                                      .knn_temperature = ev->knn_temperature,
                                      .probe = ev->probe};
    for (int s = 0; s < 2; s++) {
        in.pixels[s] = px[s];
        in.labels[s] = ev->split[s].labels;
        in.n[s] = ev->split[s].n;
    }
    eval_baseline_key(&in, key);
    char dir[4096];
    if (eval_cache_dir(dir, sizeof dir) != BYOL_OK) {
        byol_log(BYOL_LOG_WARN, "eval.baseline_cache: no cache: %s", byol_last_error());
        return -1;
    }
    int len = snprintf(path, n, "%s/baseline-%s.txt", dir, key);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

/* kNN and probe on the pixels, through the cache when eval.baseline_cache allows: an entry
 * for these exact inputs is the result; otherwise it is computed and stored. */
static byol_status eval_pixels_classify(struct byol_evaluator *ev, float *px[2], int dim, int *pred,
                                        struct eval_progress *rep, struct byol_eval_result *r)
{
    char key[EVAL_HASH_HEX], path[4200];
    struct eval_baseline b = {.dim = dim};
    int cached = ev->baseline_cache && eval_cache_entry(ev, px, dim, key, path, sizeof path) == 0;
    if (cached && eval_cache_read(path, key, dim, &b) == 1) {
        byol_log(BYOL_LOG_INFO,
                 "eval: raw-pixel baseline from %s (eval.baseline_cache = false "
                 "recomputes it)",
                 path);
        r->baseline_cached = 1;
    } else {
        struct byol_eval_result pixels = {0};
        byol_status st = eval_classify(ev, px, dim, pred, 1, rep, &pixels);
        if (st != BYOL_OK)
            return st;
        b = (struct eval_baseline){dim, pixels.knn_top1, pixels.linear_top1};
        if (cached && eval_cache_write(path, key, &b) != BYOL_OK)
            byol_log(BYOL_LOG_WARN, "eval.baseline_cache: not stored: %s", byol_last_error());
    }
    r->baseline_knn_top1 = b.knn_top1;
    r->baseline_linear_top1 = b.linear_top1;
    r->baseline_dim = dim;
    return BYOL_OK;
}

/* The raw-pixel baseline: the same kNN and probe on both splits' images as the eval transform
 * hands them to the encoder, so a user sees what the representation adds to the pixels. */
static byol_status eval_baseline(struct byol_evaluator *ev, int *pred, struct eval_progress *rep,
                                 struct byol_eval_result *r)
{
    double t0 = eval_now();
    size_t dim = eval_transform_numel(ev->split[0].transform);
    if (dim > (size_t)INT_MAX)
        return byol_error(BYOL_ERR_INVALID,
                          "eval.baseline: %zu values per image is too many for the classifiers",
                          dim);
    float *px[2] = {NULL, NULL};
    byol_status st = BYOL_OK;
    for (int s = 0; s < 2 && st == BYOL_OK; s++) {
        px[s] = eval_alloc(ev->split[s].n * dim * sizeof(float));
        if (px[s])
            eval_progress_begin(rep, BYOL_EVAL_PHASE_PIXELS, s, 1, ev->split[s].n);
        st = px[s] ? eval_transform_dataset(ev->split[s].ds, ev->split[s].transform, ev->pool,
                                            px[s], rep)
                   : byol_error(BYOL_ERR_NOMEM,
                                "eval.baseline: out of memory for %zu x %zu pixels (set "
                                "eval.baseline = false to leave the raw-pixel baseline out)",
                                ev->split[s].n, dim);
        if (st == BYOL_OK)
            eval_progress_end(rep, ev->split[s].n, NAN);
    }
    if (st == BYOL_OK)
        st = eval_pixels_classify(ev, px, (int)dim, pred, rep, r);
    if (st == BYOL_OK)
        r->baseline_seconds = eval_now() - t0;
    free(px[0]);
    free(px[1]);
    return st;
}

byol_status byol_evaluator_run(struct byol_evaluator *ev, struct byol_learner *l,
                               struct byol_eval_result *r)
{
    if (!ev || !l || !r)
        return byol_error(BYOL_ERR_INVALID, "byol_evaluator_run: NULL argument");
    memset(r, 0, sizeof *r);
    r->baseline_knn_top1 = r->baseline_linear_top1 = NAN;
    double t0 = eval_now();
    float *f[2] = {NULL, NULL};
    struct eval_progress rep = {.fn = ev->progress, .user = ev->progress_user};
    int *pred = malloc(ev->split[1].n * sizeof *pred);
    byol_status st = pred ? eval_features(ev, l, f, &rep)
                          : byol_error(BYOL_ERR_NOMEM, "eval: out of memory for predictions");
    r->embed_seconds = eval_now() - t0;
    r->dim = byol_learner_embedding_dim(l);
    if (st == BYOL_OK)
        st = eval_classify(ev, f, r->dim, pred, 0, &rep, r);
    r->n_train = ev->split[0].n;
    r->n_test = ev->split[1].n;
    r->knn_k = ev->knn_k;
    r->n_classes = ev->n_classes;
    r->seconds = eval_now() - t0;
    free(f[0]); /* before the pixels take their place */
    free(f[1]);
    if (st == BYOL_OK && ev->baseline)
        st = eval_baseline(ev, pred, &rep, r);
    free(pred);
    return st;
}
