/* Evaluation (include/byol/eval.h): kNN and the linear probe against NumPy / scikit-learn
 * references (tests/fixtures/gen_eval.py), the .npy writer through the npy reader, the eval
 * transform, and the evaluator on small IDX files with a config-defined encoder, bad settings
 * included. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "byol/eval.h"
#include "byol/learner.h"
#include "testutil.h"

#define SIDE 8
#define N_TRAIN 24
#define N_TEST 12

static const char *dir; /* the scratch folder, made by main */
static struct byol_registry *reg;
static struct byol_backend *be;

/* ---- fixture access -------------------------------------------------------------------- */

static const struct byol_st_tensor *fx_get(struct byol_st_file *f, const char *name)
{
    const struct byol_st_tensor *t = byol_st_find(f, name);
    if (!t)
        fprintf(stderr, "eval.safetensors lacks %s\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

static float *fx_floats(struct byol_st_file *f, const char *name, size_t *n)
{
    const struct byol_st_tensor *t = fx_get(f, name);
    CU_ASSERT_EQUAL_FATAL(t->dtype, BYOL_ST_F32);
    float *out = malloc(t->nbytes);
    memcpy(out, t->data, t->nbytes);
    if (n)
        *n = t->dims[0];
    return out;
}

static int *fx_ints(struct byol_st_file *f, const char *name, size_t *n)
{
    const struct byol_st_tensor *t = fx_get(f, name);
    CU_ASSERT_EQUAL_FATAL(t->dtype, BYOL_ST_I64);
    int *out = malloc(t->numel * sizeof *out);
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * i, 8);
        out[i] = (int)v;
    }
    if (n)
        *n = t->numel;
    return out;
}

static double fx_param(struct byol_st_file *f, const char *name, int i)
{
    const struct byol_st_tensor *t = fx_get(f, name);
    double v;
    memcpy(&v, (const char *)t->data + 8 * (size_t)i, 8);
    return v;
}

static struct byol_st_file *fx_open(void)
{
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(byol_test_fixture("eval.safetensors"), &f));
    return f;
}

/* ---- kNN ------------------------------------------------------------------------------- */

static void test_knn_reference(void)
{
    struct byol_st_file *f = fx_open();
    size_t n_train, n_test, n_pred;
    float *train = fx_floats(f, "knn/train", &n_train);
    float *test = fx_floats(f, "knn/test", &n_test);
    int *ytr = fx_ints(f, "knn/train_labels", NULL), *yte = fx_ints(f, "knn/test_labels", NULL);
    int *want = fx_ints(f, "knn/pred", &n_pred);
    int dim = (int)fx_get(f, "knn/train")->dims[1];
    int k = (int)fx_param(f, "knn/params", 0), classes = (int)fx_param(f, "knn/params", 2);
    int *pred = malloc(n_test * sizeof *pred);
    BYOL_CHECK_OK(byol_knn_classify(train, ytr, n_train, test, n_test, dim, classes, k,
                                    fx_param(f, "knn/params", 1), pred));
    size_t same = 0;
    for (size_t i = 0; i < n_test; i++)
        same += pred[i] == want[i];
    CU_ASSERT_EQUAL(same, n_pred);
    CU_ASSERT_DOUBLE_EQUAL(byol_eval_accuracy(pred, yte, n_test),
                           atof(byol_st_metadata(f, "knn_accuracy")), 1e-12);
    free(train), free(test), free(ytr), free(yte), free(want), free(pred);
    byol_st_free(f);
}

/* Equal similarities go to the lower train index, equal vote totals to the lower class. */
static void test_knn_ties(void)
{
    const float train[] = {1, 0, 1, 0, 1, 0, 0, 1, -1, 0};
    const int labels[] = {2, 1, 0, 3, 1};
    const float test[] = {2, 0, 0, 3};
    int pred[2];
    BYOL_CHECK_OK(byol_knn_classify(train, labels, 5, test, 2, 2, 4, 1, 0.07, pred));
    CU_ASSERT_EQUAL(pred[0], 2); /* rows 0, 1, 2 tie: row 0 */
    CU_ASSERT_EQUAL(pred[1], 3);
    /* k = 2: rows 0 and 1 (labels 2 and 1) with equal weights: class 1. */
    BYOL_CHECK_OK(byol_knn_classify(train, labels, 5, test, 1, 2, 4, 2, 0.07, pred));
    CU_ASSERT_EQUAL(pred[0], 1);
    /* k = 3: labels 2, 1, 0 equal: class 0. */
    BYOL_CHECK_OK(byol_knn_classify(train, labels, 5, test, 1, 2, 4, 3, 0.07, pred));
    CU_ASSERT_EQUAL(pred[0], 0);
}

/* A float64 brute force with the same rules; near[i] = 1 where a near-tie makes the float32
 * answer legitimately uncertain. */
static void knn_brute(const float *tr, const int *y, size_t n, const float *te, size_t m, int d,
                      int k, double temp, int classes, int *pred, int *near)
{
    double *s = malloc(n * sizeof *s), *votes = calloc((size_t)classes, sizeof *votes);
    int *used = calloc(n, sizeof *used);
    for (size_t i = 0; i < m; i++) {
        double nb = 0;
        for (int j = 0; j < d; j++)
            nb += (double)te[i * d + j] * te[i * d + j];
        for (size_t r = 0; r < n; r++) {
            double dotp = 0, na = 0;
            for (int j = 0; j < d; j++)
                dotp += (double)te[i * d + j] * tr[r * d + j],
                    na += (double)tr[r * d + j] * tr[r * d + j];
            s[r] = dotp / sqrt(na * nb);
            used[r] = 0;
        }
        double last = 0, next = -2;
        memset(votes, 0, (size_t)classes * sizeof *votes);
        for (int t = 0; t <= k; t++) {
            size_t best = n;
            for (size_t r = 0; r < n; r++)
                if (!used[r] && (best == n || s[r] > s[best]))
                    best = r;
            if (t == k) {
                next = s[best];
                break;
            }
            used[best] = 1;
            last = s[best];
            votes[y[best]] += exp(s[best] / temp);
        }
        int c = 0;
        double second = -1;
        for (int q = 1; q < classes; q++)
            if (votes[q] > votes[c])
                c = q;
        for (int q = 0; q < classes; q++)
            if (q != c && votes[q] > second)
                second = votes[q];
        pred[i] = c;
        near[i] = last - next < 1e-5 || votes[c] - second < 1e-5 * votes[c];
    }
    free(s), free(votes), free(used);
}

/* More rows than one block each way (1024 test x 2048 train). */
static void test_knn_blocks(void)
{
    size_t n = 4200, m = 1030;
    int d = 12, classes = 5, k = 5;
    float *tr = malloc(n * d * sizeof *tr), *te = malloc(m * d * sizeof *te);
    int *y = malloc(n * sizeof *y), *pred = malloc(m * sizeof *pred),
        *want = malloc(m * sizeof *want), *near = malloc(m * sizeof *near);
    struct byol_rng r;
    byol_rng_init(&r, 11, 0);
    for (size_t i = 0; i < n; i++)
        y[i] = (int)(i % (size_t)classes);
    for (size_t i = 0; i < n * d; i++)
        tr[i] = (float)(byol_rng_normal(&r) + (i / d % (size_t)classes == i % d ? 1.5 : 0));
    for (size_t i = 0; i < m * d; i++)
        te[i] = (float)(byol_rng_normal(&r) + ((i / d) % (size_t)classes == i % d ? 1.5 : 0));
    BYOL_CHECK_OK(byol_knn_classify(tr, y, n, te, m, d, classes, k, 0.07, pred));
    knn_brute(tr, y, n, te, m, d, k, 0.07, classes, want, near);
    size_t differ = 0, checked = 0;
    for (size_t i = 0; i < m; i++)
        if (!near[i])
            checked++, differ += pred[i] != want[i];
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT(checked > m * 9 / 10);
    free(tr), free(te), free(y), free(pred), free(want), free(near);
}

static void test_knn_errors(void)
{
    const float x[] = {1, 0, 0, 1, 1, 1};
    const int y[] = {0, 1, 1}, bad[] = {0, 1, 2};
    int pred[3];
    CU_ASSERT_EQUAL(byol_knn_classify(x, y, 3, x, 3, 2, 2, 0, 0.07, pred), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("kNN: k = 0 must be in [1, 3]");
    CU_ASSERT_EQUAL(byol_knn_classify(x, y, 3, x, 3, 2, 2, 4, 0.07, pred), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("kNN: k = 4 must be in [1, 3]");
    CU_ASSERT_EQUAL(byol_knn_classify(x, y, 3, x, 3, 2, 2, 1, 0, pred), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("temperature 0 must be > 0");
    CU_ASSERT_EQUAL(byol_knn_classify(x, bad, 3, x, 3, 2, 2, 1, 0.07, pred), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("kNN: train label 2 is 2 (classes: 0..1)");
    const float nan_row[] = {1, 0, NAN, 1, 1, 1};
    CU_ASSERT_EQUAL(byol_knn_classify(nan_row, y, 3, x, 3, 2, 2, 1, 0.07, pred), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("kNN: train feature row 1 is not finite");
}

/* ---- linear probe ---------------------------------------------------------------------- */

static void test_probe_reference(void)
{
    struct byol_st_file *f = fx_open();
    size_t n_train, n_test;
    float *train = fx_floats(f, "probe/train", &n_train);
    float *test = fx_floats(f, "probe/test", &n_test);
    float *want = fx_floats(f, "probe/proba", NULL);
    int *ytr = fx_ints(f, "probe/train_labels", NULL), *yte = fx_ints(f, "probe/test_labels", NULL);
    int *want_pred = fx_ints(f, "probe/pred", NULL);
    int dim = (int)fx_get(f, "probe/train")->dims[1], classes = (int)fx_param(f, "probe/params", 1);
    struct byol_probe_options o = {fx_param(f, "probe/params", 0), 2000, 1e-7};
    struct byol_probe_info info;
    int *pred = malloc(n_test * sizeof *pred);
    float *proba = malloc(n_test * (size_t)classes * sizeof *proba);
    BYOL_CHECK_OK(
        byol_linear_probe(train, ytr, n_train, test, n_test, dim, classes, &o, pred, proba, &info));
    printf("\n  probe: %d iterations, loss %.8f, max |g| %.2e ", info.iterations, info.loss,
           info.grad_max);
    CU_ASSERT(info.grad_max < 1e-4);
    CU_ASSERT(
        byol_test_close("probe probabilities", proba, want, n_test * (size_t)classes, 1e-4, 0));
    CU_ASSERT_EQUAL(memcmp(pred, want_pred, n_test * sizeof *pred), 0);
    CU_ASSERT_DOUBLE_EQUAL(byol_eval_accuracy(pred, yte, n_test),
                           atof(byol_st_metadata(f, "probe_accuracy")), 1e-12);
    free(train), free(test), free(want), free(ytr), free(yte), free(want_pred), free(pred),
        free(proba);
    byol_st_free(f);
}

/* Three far-apart clusters: every test row right, and the same bits on a second run. */
static void test_probe_separable(void)
{
    enum { N = 90, M = 30, D = 4, C = 3 };
    float tr[N * D], te[M * D], p1[M * C], p2[M * C];
    int ytr[N], yte[M], pred[M];
    struct byol_rng r;
    byol_rng_init(&r, 3, 0);
    for (int i = 0; i < N + M; i++) {
        float *row = i < N ? tr + i * D : te + (i - N) * D;
        int c = i % C;
        (i < N ? ytr : yte)[i < N ? i : i - N] = c;
        for (int j = 0; j < D; j++)
            row[j] = (float)(0.3 * byol_rng_normal(&r) + (j == c ? 4.0 : 0.0) + 10.0 * (j == 3));
    }
    BYOL_CHECK_OK(byol_linear_probe(tr, ytr, N, te, M, D, C, NULL, pred, p1, NULL));
    CU_ASSERT_DOUBLE_EQUAL(byol_eval_accuracy(pred, yte, M), 1.0, 0);
    BYOL_CHECK_OK(byol_linear_probe(tr, ytr, N, te, M, D, C, NULL, pred, p2, NULL));
    CU_ASSERT_EQUAL(memcmp(p1, p2, sizeof p1), 0);
}

/* ---- the probe's optimum, independently: Newton's method in double ------------------------ */

#define NT_N 1500 /* train rows */
#define NT_M 300  /* test rows */
#define NT_D 24
#define NT_C 4
#define NT_P ((NT_D + 1) * NT_C) /* parameters: each feature's c weights, then the biases */

/* Softmax probabilities p of row x (d values, then a 1 for the bias) under theta; the loss. */
static double nt_row(const double *x, int y, const double *theta, double *p)
{
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < NT_C; k++) {
        p[k] = 0;
        for (int j = 0; j <= NT_D; j++)
            p[k] += x[j] * theta[j * NT_C + k];
        mx = fmax(mx, p[k]);
    }
    double zy = y >= 0 ? p[y] : 0;
    for (int k = 0; k < NT_C; k++)
        sum += (p[k] = exp(p[k] - mx));
    for (int k = 0; k < NT_C; k++)
        p[k] /= sum;
    return mx + log(sum) - zy;
}

/* Loss, gradient and Hessian at theta of rows xs (NT_N x (NT_D + 1)). */
static double nt_terms(const double *xs, const int *y, double l2, const double *theta, double *g,
                       double *h)
{
    double loss = 0, p[NT_C];
    memset(g, 0, NT_P * sizeof *g);
    memset(h, 0, NT_P * NT_P * sizeof *h);
    for (int i = 0; i < NT_N; i++) {
        const double *x = xs + i * (NT_D + 1);
        loss += nt_row(x, y[i], theta, p) / NT_N;
        for (int a = 0; a < NT_P; a++) {
            g[a] += x[a / NT_C] * (p[a % NT_C] - (a % NT_C == y[i])) / NT_N;
            for (int b = 0; b < NT_P; b++) {
                double w = (a % NT_C == b % NT_C ? p[a % NT_C] : 0) - p[a % NT_C] * p[b % NT_C];
                h[a * NT_P + b] += x[a / NT_C] * x[b / NT_C] * w / NT_N;
            }
        }
    }
    for (int a = 0; a < NT_D * NT_C; a++) {
        loss += 0.5 * l2 * theta[a] * theta[a];
        g[a] += l2 * theta[a];
        h[a * NT_P + a] += l2;
    }
    return loss;
}

/* Solve h s = -g by Cholesky (h gets a 1e-12 ridge: shifting every bias alike changes nothing,
 * which leaves h singular along that one direction). */
static void nt_solve(double *h, const double *g, double *s)
{
    for (int j = 0; j < NT_P; j++) {
        h[j * NT_P + j] += 1e-12;
        for (int k = 0; k < j; k++)
            h[j * NT_P + j] -= h[j * NT_P + k] * h[j * NT_P + k];
        h[j * NT_P + j] = sqrt(h[j * NT_P + j]);
        for (int i = j + 1; i < NT_P; i++) {
            for (int k = 0; k < j; k++)
                h[i * NT_P + j] -= h[i * NT_P + k] * h[j * NT_P + k];
            h[i * NT_P + j] /= h[j * NT_P + j];
        }
    }
    for (int i = 0; i < NT_P; i++) { /* L u = -g, then L' s = u */
        s[i] = -g[i];
        for (int k = 0; k < i; k++)
            s[i] -= h[i * NT_P + k] * s[k];
        s[i] /= h[i * NT_P + i];
    }
    for (int i = NT_P - 1; i >= 0; i--) {
        for (int k = i + 1; k < NT_P; k++)
            s[i] -= h[k * NT_P + i] * s[k];
        s[i] /= h[i * NT_P + i];
    }
}

/* The minimiser by damped Newton steps until max |gradient| < 1e-12; the minimum. */
static double nt_minimise(const double *xs, const int *y, double l2, double *theta)
{
    double *h = malloc(NT_P * NT_P * sizeof *h), g[NT_P], s[NT_P], t1[NT_P], g1[NT_P];
    double *h1 = malloc(NT_P * NT_P * sizeof *h1);
    memset(theta, 0, NT_P * sizeof *theta);
    double f = nt_terms(xs, y, l2, theta, g, h), gmax = 1;
    for (int it = 0; it < 100 && gmax > 1e-12; it++) {
        nt_solve(h, g, s);
        double step = 1, f1 = f;
        for (int b = 0; b < 60; b++, step *= 0.5) {
            for (int a = 0; a < NT_P; a++)
                t1[a] = theta[a] + step * s[a];
            if ((f1 = nt_terms(xs, y, l2, t1, g1, h1)) <= f)
                break;
        }
        memcpy(theta, t1, sizeof t1);
        memcpy(g, g1, sizeof g1);
        memcpy(h, h1, NT_P * NT_P * sizeof *h);
        f = f1;
        gmax = 0;
        for (int a = 0; a < NT_P; a++)
            gmax = fmax(gmax, fabs(g[a]));
    }
    CU_ASSERT(gmax < 1e-10);
    free(h), free(h1);
    return f;
}

/* Rows standardised as the probe does (population std; a constant feature keeps scale 1),
 * each followed by a 1 for the bias. */
static void nt_standardise(const float *train, const float *x, int n, double *out)
{
    for (int j = 0; j < NT_D; j++) {
        double mean = 0, var = 0;
        for (int i = 0; i < NT_N; i++)
            mean += train[i * NT_D + j] / (double)NT_N;
        for (int i = 0; i < NT_N; i++)
            var += (train[i * NT_D + j] - mean) * (train[i * NT_D + j] - mean) / NT_N;
        double sd = sqrt(var) > 1e-9 ? sqrt(var) : 1;
        for (int i = 0; i < n; i++)
            out[i * (NT_D + 1) + j] = (x[i * NT_D + j] - mean) / sd;
    }
    for (int i = 0; i < n; i++)
        out[i * (NT_D + 1) + NT_D] = 1;
}

/* Features that are mostly three latent factors (so nearly collinear: the ill-conditioned case
 * the preconditioner is for), a badly scaled one and a constant one; labels from the factors. */
static void nt_data(float *x, int *y, int n, struct byol_rng *r)
{
    static double load[3][NT_D];
    if (load[0][0] == 0)
        for (int q = 0; q < 3 * NT_D; q++)
            load[q / NT_D][q % NT_D] = byol_rng_normal(r);
    for (int i = 0; i < n; i++) {
        double z[3], best = -INFINITY;
        for (int q = 0; q < 3; q++)
            z[q] = byol_rng_normal(r);
        double score[NT_C] = {z[0], z[1], z[2], -z[0] - z[1] - z[2]};
        for (int k = 0; k < NT_C; k++)
            if (score[k] + 0.7 * byol_rng_normal(r) > best)
                best = score[k], y[i] = k;
        for (int j = 0; j < NT_D; j++)
            x[i * NT_D + j] = (float)(load[0][j] * z[0] + load[1][j] * z[1] + load[2][j] * z[2] +
                                      0.05 * byol_rng_normal(r));
        x[i * NT_D + 5] *= 1000.0f;
        x[i * NT_D + 7] = 2.5f;
    }
}

/* The probe ends at the minimum Newton's method finds, within float precision (its gradient
 * is summed in float, which leaves ~1e-5 of noise); at the default tolerance it gets there in
 * few iterations although the features are nearly collinear. */
static void test_probe_optimum(void)
{
    float *tr = malloc(NT_N * NT_D * sizeof *tr), *te = malloc(NT_M * NT_D * sizeof *te);
    float *proba = malloc(NT_M * NT_C * sizeof *proba);
    double *xs = malloc(NT_N * (NT_D + 1) * sizeof *xs),
           *ts = malloc(NT_M * (NT_D + 1) * sizeof *ts);
    double theta[NT_P], p[NT_C], maxdiff = 0;
    int ytr[NT_N], yte[NT_M], pred[NT_M];
    struct byol_rng r;
    byol_rng_init(&r, 17, 0);
    nt_data(tr, ytr, NT_N, &r);
    nt_data(te, yte, NT_M, &r);
    nt_standardise(tr, tr, NT_N, xs);
    nt_standardise(tr, te, NT_M, ts);
    double best = nt_minimise(xs, ytr, 1e-3, theta);
    struct byol_probe_options o = {1e-3, 1000, 1e-7};
    struct byol_probe_info info;
    BYOL_CHECK_OK(byol_linear_probe(tr, ytr, NT_N, te, NT_M, NT_D, NT_C, &o, pred, proba, &info));
    for (int i = 0; i < NT_M; i++) {
        nt_row(ts + i * (NT_D + 1), -1, theta, p);
        for (int k = 0; k < NT_C; k++)
            maxdiff = fmax(maxdiff, fabs(p[k] - proba[i * NT_C + k]));
    }
    printf("\n  Newton: loss %.10f; probe: %d iterations, loss %+.1e off, max |g| %.1e, "
           "probabilities within %.1e ",
           best, info.iterations, info.loss - best, info.grad_max, maxdiff);
    CU_ASSERT(fabs(info.loss - best) < 1e-7);
    CU_ASSERT(maxdiff < 1e-3);
    CU_ASSERT(info.iterations < 200); /* it stops where float precision ends */
    byol_probe_options_default(&o);
    o.l2 = 1e-3;
    BYOL_CHECK_OK(byol_linear_probe(tr, ytr, NT_N, te, NT_M, NT_D, NT_C, &o, pred, NULL, &info));
    printf("\n  default tolerance: %d iterations, loss %+.1e off, max |g| %.1e ", info.iterations,
           info.loss - best, info.grad_max);
    CU_ASSERT(info.grad_max <= o.tolerance);
    CU_ASSERT(fabs(info.loss - best) < 1e-5);
    CU_ASSERT(info.iterations <= 60);
    free(tr), free(te), free(proba), free(xs), free(ts);
}

static void test_probe_errors(void)
{
    const float x[] = {1, 2, 3};
    const int y[] = {0, 0, 5};
    int pred[3];
    CU_ASSERT_EQUAL(byol_linear_probe(x, y, 3, x, 3, 1, 1, NULL, pred, NULL, NULL),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("1 classes; at least 1 row, 1 feature and 2 classes");
    CU_ASSERT_EQUAL(byol_linear_probe(x, y, 3, x, 3, 1, 3, NULL, pred, NULL, NULL),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("linear probe: train label 2 is 5 (classes: 0..2)");
    struct byol_probe_options o = {-1, 10, 0};
    CU_ASSERT_EQUAL(byol_linear_probe(x, y, 2, x, 3, 1, 2, &o, pred, NULL, NULL), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("linear probe: bad options");
}

/* ---- .npy writer ----------------------------------------------------------------------- */

static void test_npy_roundtrip(void)
{
    float data[5 * 2 * 3 * 4];
    for (size_t i = 0; i < sizeof data / sizeof *data; i++)
        data[i] = (float)i * 0.37f - 3.0f;
    const char *path = byol_test_path(dir, "x4.npy");
    BYOL_CHECK_OK(byol_npy_write_f32(path, data, 4, (const size_t[]){5, 2, 3, 4}));
    const int labels[5] = {4, 0, 3, 1, 2};
    const char *lpath = byol_test_path(dir, "y.npy");
    BYOL_CHECK_OK(byol_npy_write_labels(lpath, labels, 5));
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_npy(path, lpath, &ds));
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(byol_dataset_count(ds) == 5 && c == 2 && h == 3 && w == 4);
    float img[24];
    BYOL_CHECK_OK(byol_dataset_get(ds, 3, img));
    CU_ASSERT_EQUAL(memcmp(img, data + 3 * 24, sizeof img), 0);
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 0), 4);
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 4), 2);
    byol_dataset_free(ds);
    /* 2-d, as embed writes: the header says (7, 3) and the data starts at 128. */
    path = byol_test_path(dir, "x2.npy");
    BYOL_CHECK_OK(byol_npy_write_f32(path, data, 2, (const size_t[]){7, 3}));
    size_t n;
    unsigned char *bytes = byol_test_read_file(path, &n);
    CU_ASSERT_EQUAL(n, 128 + 7 * 3 * 4);
    CU_ASSERT(memcmp(bytes, "\x93NUMPY\x01\x00", 8) == 0 && bytes[8] + 256 * bytes[9] == 118);
    CU_ASSERT_PTR_NOT_NULL(strstr((const char *)bytes + 10,
                                  "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 3), }"));
    CU_ASSERT_EQUAL(bytes[127], '\n');
    CU_ASSERT_EQUAL(memcmp(bytes + 128, data, 84), 0);
    free(bytes);
    bytes = byol_test_read_file(lpath, &n);
    CU_ASSERT_PTR_NOT_NULL(
        strstr((const char *)bytes + 10, "'<i8', 'fortran_order': False, 'shape': (5,), }"));
    free(bytes);
    CU_ASSERT_EQUAL(byol_npy_write_f32(byol_test_path(dir, "no/such/dir/x.npy"), data, 2,
                                       (const size_t[]){7, 3}),
                    BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS(
        "no/such/dir/x.npy: cannot create a temporary file: No such file or directory");
}

/* ---- the evaluator on small IDX files -------------------------------------------------- */

/* Class n % 3: horizontal stripes, vertical stripes or a checkerboard, at a phase of n. */
static void write_idx_images(const char *path, int n, int phase0)
{
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    unsigned char b[sizeof hdr + 64 * SIDE * SIDE];
    memcpy(b, hdr, sizeof hdr);
    unsigned char *px = b + sizeof hdr;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                double ph = 0.7 * (i + phase0), v;
                if (i % 3 == 0)
                    v = sin(1.9 * y + ph);
                else if (i % 3 == 1)
                    v = sin(1.9 * x + ph);
                else
                    v = sin(1.9 * x + ph) * sin(1.9 * y + ph);
                *px++ = (unsigned char)(127.5 + 120 * v);
            }
    byol_test_write_file(path, b, sizeof hdr + (size_t)n * SIDE * SIDE);
}

static void write_idx_labels(const char *path, int n)
{
    unsigned char b[8 + 64] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)n};
    for (int i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % 3);
    byol_test_write_file(path, b, 8 + (size_t)n);
}

/* A config: the tiny encoder at `size` px with `channels`, a normalising augment_fn (or
 * `augment`), and the eval group `eval` (NULL: none). The eval group is on line 9. */
static const char *config_text(int channels, int size, const char *augment, const char *eval)
{
    static char text[4096];
    snprintf(
        text, sizeof text,
        "seed = 5;\n"
        "backend = { threads = 2; };\n"
        "model = { encoder = { name = \"layers\"; in_channels = %d; layers = (\n"
        "  { type = \"conv\"; name = \"conv1\"; out = 8; kernel = 3; pad = 1; },\n"
        "  { type = \"relu\"; name = \"relu\"; }, { type = \"avgpool\"; name = \"avgpool\"; },\n"
        "  { type = \"flatten\"; }, { type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"
        "  image_size = %d; projection_size = 8; projection_hidden_size = 16; };\n"
        "data = { images = \"train.idx\"; }; train = { batch_size = 4; steps = 1; }; %s\n"
        "%s%s%s\n",
        channels, size,
        augment ? augment : "augment_fn = ( { op = \"normalize\"; mean = [0.5]; std = [0.25]; } );",
        eval ? "eval = { " : "", eval ? eval : "", eval ? " };" : "");
    return text;
}

#define EVAL_FILES                                                                                 \
    "train_images = \"train.idx\"; train_labels = \"train-labels.idx\"; "                          \
    "test_images = \"test.idx\"; test_labels = \"test-labels.idx\"; "

struct eval_env {
    struct byol_config *cfg;
    struct byol_learner_config c;
    struct byol_learner *l;
    struct byol_evaluator *ev;
};

/* Parse, build the learner as byolctl does, and open the evaluator. */
static byol_status env_open(const char *text, struct eval_env *e)
{
    memset(e, 0, sizeof *e);
    byol_status st = byol_config_parse(text, "test-eval.cfg", &e->cfg);
    const struct byol_settings *root = byol_config_root(e->cfg);
    byol_learner_config_default(&e->c);
    if (st == BYOL_OK)
        st = byol_learner_config_read(&e->c, byol_settings_child(root, "model"),
                                      byol_settings_child(root, "train"));
    e->c.seed = 5;
    if (st == BYOL_OK)
        st = byol_learner_create(be, reg, &e->c, &e->l);
    if (st == BYOL_OK)
        st = byol_evaluator_open(root, dir, reg, e->c.in_channels, e->c.image_size, &e->ev);
    return st;
}

static void env_close(struct eval_env *e)
{
    byol_evaluator_free(e->ev);
    byol_learner_free(e->l);
    byol_config_free(e->cfg);
}

static void test_evaluator_run(void)
{
    struct eval_env e;
    BYOL_CHECK_OK(env_open(config_text(1, SIDE, NULL, EVAL_FILES "knn_k = 5; every = 7;"), &e));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e.ev);
    CU_ASSERT_EQUAL(byol_evaluator_every(e.ev), 7);
    CU_ASSERT_EQUAL(byol_evaluator_knn_k(e.ev), 5);
    struct byol_eval_result r;
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &r));
    printf("\n  kNN %.3f, linear %.3f, %d-d, %d probe iterations ", r.knn_top1, r.linear_top1,
           r.dim, r.probe_iterations);
    CU_ASSERT(r.n_train == N_TRAIN && r.n_test == N_TEST && r.dim == 8 && r.knn_k == 5 &&
              r.n_classes == 3);
    /* Stripes and checkerboards are told apart by the random filters' responses. */
    CU_ASSERT_DOUBLE_EQUAL(r.linear_top1, 1.0, 0);
    CU_ASSERT(r.knn_top1 >= 0.75 && r.knn_top1 <= 1.0);
    CU_ASSERT(r.seconds >= r.embed_seconds + r.knn_seconds + r.probe_seconds - 1e-9);
    double top1 = -1;
    BYOL_CHECK_OK(byol_evaluator_knn(e.ev, e.l, &top1));
    CU_ASSERT_DOUBLE_EQUAL(top1, r.knn_top1, 0);
    env_close(&e);
}

/* A split's images as the eval transform makes them (1 channel replicated to `channels`),
 * through the public pieces, one batch for the whole split; and its labels. */
static float *split_pixels(const struct byol_settings *root, const char *split, int channels,
                           int size, size_t *n, int **labels, int *dim)
{
    struct byol_dataset *ds = NULL;
    struct byol_augment_pipeline *t = NULL;
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_eval_open_split(root, dir, split, channels, size, &ds));
    BYOL_CHECK_OK(byol_eval_transform_create(reg, root, ds, channels, size, &t));
    BYOL_CHECK_OK(byol_augment_pool_create(1, &pool));
    *n = byol_dataset_count(ds);
    *dim = channels * size * size;
    size_t px = SIDE * SIDE;
    float *raw = malloc(*n * (size_t)channels * px * sizeof *raw);
    float *out = malloc(*n * (size_t)*dim * sizeof *out);
    *labels = malloc(*n * sizeof **labels);
    for (size_t i = 0; i < *n; i++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, i, raw + i * channels * px));
        for (int c = 1; c < channels; c++)
            memcpy(raw + (i * channels + c) * px, raw + i * channels * px, px * sizeof *raw);
        (*labels)[i] = byol_dataset_label(ds, i);
    }
    BYOL_CHECK_OK(byol_augment_batch(pool, t, raw, *n, out, 0, 0, 0));
    free(raw);
    byol_augment_pool_free(pool);
    byol_augment_pipeline_free(t);
    byol_dataset_free(ds);
    return out;
}

/* byol_evaluator_run's raw-pixel baseline for `eval` equals kNN and the probe run here on the
 * transformed pixels with the same settings; returns the encoder's result. */
static struct byol_eval_result check_baseline(int channels, int size, const char *augment,
                                              const char *eval, int k, double temperature,
                                              const struct byol_probe_options *probe)
{
    struct eval_env e;
    struct byol_eval_result r;
    memset(&r, 0, sizeof r);
    BYOL_CHECK_OK(env_open(config_text(channels, size, augment, eval), &e));
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &r));
    size_t n[2];
    int *y[2], dim;
    float *px[2];
    const char *const split[2] = {"train", "test"};
    for (int s = 0; s < 2; s++)
        px[s] = split_pixels(byol_config_root(e.cfg), split[s], channels, size, &n[s], &y[s], &dim);
    int *pred = malloc(n[1] * sizeof *pred);
    BYOL_CHECK_OK(byol_knn_classify(px[0], y[0], n[0], px[1], n[1], dim, 3, k, temperature, pred));
    double knn = byol_eval_accuracy(pred, y[1], n[1]);
    BYOL_CHECK_OK(
        byol_linear_probe(px[0], y[0], n[0], px[1], n[1], dim, 3, probe, pred, NULL, NULL));
    double linear = byol_eval_accuracy(pred, y[1], n[1]);
    printf("\n  %d-d pixels: kNN %.3f, linear %.3f (encoder: %.3f, %.3f) ", r.baseline_dim,
           r.baseline_knn_top1, r.baseline_linear_top1, r.knn_top1, r.linear_top1);
    CU_ASSERT_EQUAL(r.baseline_dim, dim);
    CU_ASSERT_DOUBLE_EQUAL(r.baseline_knn_top1, knn, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.baseline_linear_top1, linear, 0);
    CU_ASSERT(r.baseline_seconds > 0);
    for (int s = 0; s < 2; s++)
        free(px[s]), free(y[s]);
    free(pred);
    env_close(&e);
    return r;
}

/* eval.baseline: the same kNN (k, temperature) and probe (l2, iterations) on the images the
 * encoder gets, at the data's size and resized with channels replicated; false leaves it out
 * and changes nothing else. */
static void test_evaluator_baseline(void)
{
    struct byol_probe_options o;
    byol_probe_options_default(&o);
    struct byol_eval_result on =
        check_baseline(1, SIDE, NULL, EVAL_FILES "knn_k = 5;", 5, 0.07, &o);
    /* Settings that change both figures on these images (all train images voting almost
     * alike; a probe stopped early), so a baseline that ignored them would fail here. */
    o.l2 = 0.1;
    o.max_iterations = 2;
    struct byol_eval_result tuned =
        check_baseline(1, SIDE, NULL,
                       EVAL_FILES "knn_k = 23; knn_temperature = 10.0; probe_l2 = 0.1; "
                                  "probe_iterations = 2; baseline = true;",
                       23, 10.0, &o);
    CU_ASSERT(tuned.baseline_knn_top1 != on.baseline_knn_top1);
    CU_ASSERT(tuned.baseline_linear_top1 != on.baseline_linear_top1);
    byol_probe_options_default(&o);
    check_baseline(3, 6, "", EVAL_FILES "knn_k = 5;", 5, 0.07, &o);

    struct eval_env e;
    struct byol_eval_result off;
    BYOL_CHECK_OK(
        env_open(config_text(1, SIDE, NULL, EVAL_FILES "knn_k = 5; baseline = false;"), &e));
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &off));
    CU_ASSERT(isnan(off.baseline_knn_top1) && isnan(off.baseline_linear_top1));
    CU_ASSERT(off.baseline_dim == 0 && off.baseline_seconds == 0);
    CU_ASSERT_DOUBLE_EQUAL(off.knn_top1, on.knn_top1, 0);
    CU_ASSERT_DOUBLE_EQUAL(off.linear_top1, on.linear_top1, 0);
    CU_ASSERT_EQUAL(off.probe_iterations, on.probe_iterations);
    env_close(&e);
}

/* ---- the raw-pixel baseline's cache ------------------------------------------------------- */

/* Point XDG_CACHE_HOME at a new folder `name` under the scratch one; returns its path. */
static const char *cache_home(const char *name)
{
    static char home[512];
    snprintf(home, sizeof home, "%s", byol_test_path(dir, name));
    setenv("XDG_CACHE_HOME", home, 1);
    return home;
}

/* The number of entries in home/byol-c; the path of the last one in `entry` (if any). */
static int cache_entries(const char *home, char *entry, size_t n)
{
    char folder[600];
    snprintf(folder, sizeof folder, "%s/byol-c", home);
    DIR *d = opendir(folder);
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "baseline-", 9) == 0) {
            count++;
            snprintf(entry, n, "%s/%s", folder, e->d_name);
        }
    if (d)
        closedir(d);
    return count;
}

/* byol_evaluator_run with eval group `eval`; what it wrote to stderr into *err (free it). */
static struct byol_eval_result cache_run(const char *augment, const char *eval, char **err)
{
    struct eval_env e;
    struct byol_eval_result r;
    memset(&r, 0, sizeof r);
    const char *log = byol_test_path(dir, "stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
    byol_status st = env_open(config_text(1, SIDE, augment, eval), &e);
    if (st == BYOL_OK)
        st = byol_evaluator_run(e.ev, e.l, &r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    BYOL_CHECK_OK(st);
    env_close(&e);
    size_t n;
    *err = (char *)byol_test_read_file(byol_test_path(dir, "stderr.txt"), &n);
    return r;
}

static void expect_same_baseline(const struct byol_eval_result *a, const struct byol_eval_result *b)
{
    CU_ASSERT_DOUBLE_EQUAL(a->baseline_knn_top1, b->baseline_knn_top1, 0);
    CU_ASSERT_DOUBLE_EQUAL(a->baseline_linear_top1, b->baseline_linear_top1, 0);
    CU_ASSERT_EQUAL(a->baseline_dim, b->baseline_dim);
}

/* The second evaluation of the same pixels reads the first one's entry; eval.baseline_cache =
 * false neither reads nor writes one. */
static void test_cache_reuse(void)
{
    char entry[1024], *err;
    const char *home = cache_home("cache-reuse");
    struct byol_eval_result first = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    CU_ASSERT_EQUAL(first.baseline_cached, 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    free(err);
    CU_ASSERT_EQUAL(cache_entries(home, entry, sizeof entry), 1);
    struct byol_eval_result again = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    CU_ASSERT_EQUAL(again.baseline_cached, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, entry)); /* "raw-pixel baseline from <entry>" */
    free(err);
    expect_same_baseline(&first, &again);
    CU_ASSERT_DOUBLE_EQUAL(again.linear_top1, first.linear_top1, 0);

    home = cache_home("cache-off");
    struct byol_eval_result off =
        cache_run(NULL, EVAL_FILES "knn_k = 5; baseline_cache = false;", &err);
    free(err);
    CU_ASSERT_EQUAL(off.baseline_cached, 0);
    expect_same_baseline(&first, &off);
    CU_ASSERT_EQUAL(cache_entries(home, entry, sizeof entry), 0);
}

/* Any change to what the baseline measures misses the cache: the classifiers' settings, the
 * images, the eval transform; the unchanged inputs still find theirs. */
static void test_cache_invalidated(void)
{
    static const char *const changes[][2] = {
        {NULL, EVAL_FILES "knn_k = 5;"},
        {NULL, EVAL_FILES "knn_k = 4;"},
        {NULL, EVAL_FILES "knn_k = 5; knn_temperature = 0.5;"},
        {NULL, EVAL_FILES "knn_k = 5; probe_l2 = 0.01;"},
        {NULL, EVAL_FILES "knn_k = 5; probe_iterations = 50;"},
        {NULL, "train_images = \"train.idx\"; train_labels = \"train-labels.idx\"; "
               "test_images = \"test2.idx\"; test_labels = \"test-labels.idx\"; knn_k = 5;"},
        {"augment_fn = ( { op = \"normalize\"; mean = [0.4]; std = [0.25]; } );",
         EVAL_FILES "knn_k = 5;"},
    };
    int n = (int)(sizeof changes / sizeof *changes);
    char entry[1024], *err;
    const char *home = cache_home("cache-changes");
    for (int i = 0; i < n; i++) {
        struct byol_eval_result r = cache_run(changes[i][0], changes[i][1], &err);
        free(err);
        CU_ASSERT_EQUAL(r.baseline_cached, 0);
        CU_ASSERT_EQUAL(cache_entries(home, entry, sizeof entry), i + 1);
    }
    struct byol_eval_result r = cache_run(changes[0][0], changes[0][1], &err);
    free(err);
    CU_ASSERT_EQUAL(r.baseline_cached, 1);
}

/* A damaged entry, or one that is not what its name says, is reported (naming the file),
 * recomputed and replaced; one that cannot be replaced still gives the right result. */
static void test_cache_corrupt(void)
{
    char entry[1024], other[1024], *err;
    cache_home("cache-other");
    struct byol_eval_result r = cache_run(NULL, EVAL_FILES "knn_k = 4;", &err);
    free(err);
    cache_entries(byol_test_path(dir, "cache-other"), other, sizeof other);
    size_t other_n;
    unsigned char *foreign = byol_test_read_file(other, &other_n);

    const char *home = cache_home("cache-corrupt");
    struct byol_eval_result good = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    free(err);
    cache_entries(home, entry, sizeof entry);
    size_t n;
    unsigned char *text = byol_test_read_file(entry, &n);
    char *digit = strstr((char *)text, "\ndim ") + 5; /* "dim 64": one digit changed */
    static const char *const why[] = {"its checksum does not match its contents",
                                      "no checksum line", "it holds another key",
                                      "no checksum line"};
    for (int v = 0; v < 4; v++) {
        unsigned char *bad = (unsigned char *)strdup((const char *)text);
        size_t bad_n = n;
        if (v == 0)
            bad[digit - (char *)text] = *digit == '8' ? '9' : '8';
        if (v == 1)
            bad_n = n / 2;
        if (v == 2)
            free(bad), bad = (unsigned char *)strdup((const char *)foreign), bad_n = other_n;
        if (v == 3)
            bad_n = 0;
        byol_test_write_file(entry, bad, bad_n);
        free(bad);
        r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
        if (!strstr(err, why[v]) || !strstr(err, entry))
            printf("\n  variant %d: %s", v, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, why[v]));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, entry));
        free(err);
        CU_ASSERT_EQUAL(r.baseline_cached, 0);
        expect_same_baseline(&good, &r);
        r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err); /* replaced by a good one */
        free(err);
        CU_ASSERT_EQUAL(r.baseline_cached, 1);
        expect_same_baseline(&good, &r);
    }
    /* A folder where the entry should be: neither read nor replaced, and no harm done. */
    CU_ASSERT_EQUAL(remove(entry), 0);
    CU_ASSERT_EQUAL(mkdir(entry, 0700), 0);
    r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ignoring the baseline cache entry"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "eval.baseline_cache: not stored"));
    free(err);
    CU_ASSERT_EQUAL(r.baseline_cached, 0);
    expect_same_baseline(&good, &r);
    free(text);
    free(foreign);
}

/* The cache's folder: $XDG_CACHE_HOME/byol-c, else (unset or relative) $HOME/.cache/byol-c,
 * made when missing; a place where no folder can be made only costs a warning. */
static void test_cache_folder(void)
{
    char entry[1024], *err, *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    struct byol_eval_result r;
    const char *home = cache_home("cache-home");
    setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    free(err);
    CU_ASSERT_EQUAL(cache_entries(byol_test_path(home, ".cache"), entry, sizeof entry), 1);
    unsetenv("XDG_CACHE_HOME");
    r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    free(err);
    CU_ASSERT_EQUAL(r.baseline_cached, 1);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);

    byol_test_write_file(byol_test_path(dir, "not-a-folder"), "x", 1);
    setenv("XDG_CACHE_HOME", byol_test_path(dir, "not-a-folder"), 1);
    r = cache_run(NULL, EVAL_FILES "knn_k = 5;", &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "eval.baseline_cache: no cache: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot create "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not-a-folder is not a folder"));
    free(err);
    CU_ASSERT_EQUAL(r.baseline_cached, 0);
    CU_ASSERT(r.baseline_dim == SIDE * SIDE && !isnan(r.baseline_knn_top1));
}

/* The default transform normalises like augment_fn: the features equal those of images
 * normalised by hand. */
static void test_embed_matches_manual(void)
{
    struct eval_env e;
    BYOL_CHECK_OK(env_open(config_text(1, SIDE, NULL, NULL), &e));
    CU_ASSERT_PTR_NULL(e.ev); /* no eval group */
    struct byol_dataset *ds = NULL;
    struct byol_augment_pipeline *t = NULL;
    BYOL_CHECK_OK(byol_eval_open_split(byol_config_root(e.cfg), dir, "train", 1, SIDE, &ds));
    BYOL_CHECK_OK(byol_eval_transform_create(reg, byol_config_root(e.cfg), ds, 1, SIDE, &t));
    CU_ASSERT_EQUAL(byol_augment_pipeline_length(t), 1);
    size_t n = byol_dataset_count(ds), px = SIDE * SIDE;
    float *img = malloc(n * px * sizeof *img), *f1 = malloc(n * 8 * sizeof *f1),
          *f2 = malloc(n * 8 * sizeof *f2), *p1 = malloc(n * 8 * sizeof *p1),
          *p2 = malloc(n * 8 * sizeof *p2);
    for (size_t i = 0; i < n; i++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, i, img + i * px));
        for (size_t j = 0; j < px; j++)
            img[i * px + j] = (img[i * px + j] - 0.5f) / 0.25f;
    }
    BYOL_CHECK_OK(byol_learner_embed(e.l, img, (int)n, p1, f1));
    BYOL_CHECK_OK(byol_eval_embed_dataset(e.l, ds, t, NULL, f2, p2));
    CU_ASSERT(byol_test_close("embeddings", f2, f1, n * 8, 1e-6, 0));
    CU_ASSERT(byol_test_close("projections", p2, p1, n * 8, 1e-6, 0));
    free(img), free(f1), free(f2), free(p1), free(p2);
    byol_augment_pipeline_free(t);
    byol_dataset_free(ds);
    env_close(&e);
}

/* The default transform's ops for a dataset, and its output on a constant image. */
static int transform_ops(const char *text, const char *images, int channels, int size, float value,
                         float *out0)
{
    struct byol_config *cfg = NULL;
    struct byol_dataset *ds = NULL;
    struct byol_augment_pipeline *t = NULL;
    int n = -1;
    BYOL_CHECK_OK(byol_config_parse(text, "test-eval.cfg", &cfg));
    BYOL_CHECK_OK(byol_dataset_open_npy(byol_test_path(dir, images), NULL, &ds));
    if (byol_eval_transform_create(reg, byol_config_root(cfg), ds, channels, size, &t) == BYOL_OK) {
        int c, h, w;
        byol_augment_pipeline_input(t, &c, &h, &w);
        size_t in = (size_t)c * h * w;
        float *img = malloc(in * sizeof *img), *res = malloc((size_t)channels * size * size * 4);
        for (size_t i = 0; i < in; i++)
            img[i] = value;
        struct byol_augment_pool *pool = NULL;
        BYOL_CHECK_OK(byol_augment_pool_create(1, &pool));
        BYOL_CHECK_OK(byol_augment_batch(pool, t, img, 1, res, 0, 0, 0));
        *out0 = res[(size_t)channels * size * size - 1];
        n = byol_augment_pipeline_length(t);
        byol_augment_pool_free(pool);
        free(img), free(res);
    }
    byol_augment_pipeline_free(t);
    byol_dataset_free(ds);
    byol_config_free(cfg);
    return n;
}

static void test_transform_default(void)
{
    float v = 0;
    /* 8x8 data at 8 px: normalize only; at 6 px: resize + normalize. */
    CU_ASSERT_EQUAL(transform_ops(config_text(1, 8, NULL, NULL), "sq.npy", 1, 8, 0.75f, &v), 1);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-6);
    CU_ASSERT_EQUAL(transform_ops(config_text(1, 6, NULL, NULL), "sq.npy", 1, 6, 0.75f, &v), 2);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-6);
    /* 8x10 data: resize, center_crop, normalize. */
    CU_ASSERT_EQUAL(transform_ops(config_text(1, 6, NULL, NULL), "wide.npy", 1, 6, 0.75f, &v), 3);
    /* A preset normalises 1-channel images with 0.449 / 0.226. */
    CU_ASSERT_EQUAL(transform_ops(config_text(1, 8, "augment_fn = \"byol_pytorch_default\";", NULL),
                                  "sq.npy", 1, 8, 0.449f + 0.226f, &v),
                    1);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-5);
    /* 3 channels from 1, ImageNet's statistics: the last value is channel 2's. */
    CU_ASSERT_EQUAL(transform_ops(config_text(3, 8, "augment_fn = \"byol_paper\";", NULL), "sq.npy",
                                  3, 8, 0.406f + 0.225f, &v),
                    1);
    CU_ASSERT_DOUBLE_EQUAL(v, 1.0, 1e-5);
    /* No augment_fn: no normalisation; the identity at the model's size. */
    CU_ASSERT_EQUAL(transform_ops(config_text(1, 8, "", NULL), "sq.npy", 1, 8, 0.75f, &v), 0);
    CU_ASSERT_DOUBLE_EQUAL(v, 0.75, 0);
    /* eval.transform replaces it. */
    CU_ASSERT_EQUAL(
        transform_ops(config_text(1, 6, NULL, "transform = ( { op = \"center_crop\"; } );"),
                      "sq.npy", 1, 6, 0.75f, &v),
        1);
    CU_ASSERT_DOUBLE_EQUAL(v, 0.75, 0);
    CU_ASSERT_EQUAL(
        transform_ops(config_text(1, 6, NULL, "transform = ();"), "sq.npy", 1, 6, 0.75f, &v), -1);
    BYOL_ASSERT_MSG_HAS("test-eval.cfg:9: eval.transform: the eval transform makes 1x8x8 images "
                        "but the model takes 1x6x6");
}

static void expect_eval_error(const char *eval, byol_status want, const char *msg)
{
    struct eval_env e;
    byol_status st = env_open(config_text(1, SIDE, NULL, eval), &e);
    if (st != want)
        printf("\n  %s -> %s: %s\n", eval, byol_status_str(st), byol_last_error());
    CU_ASSERT_EQUAL(st, want);
    BYOL_ASSERT_MSG_HAS(msg);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    CU_ASSERT_PTR_NULL(e.ev);
    env_close(&e);
}

static void test_evaluator_errors(void)
{
    expect_eval_error("train_images = \"train.idx\"; test_images = \"test.idx\"; "
                      "test_labels = \"test-labels.idx\";",
                      BYOL_ERR_INVALID,
                      "test-eval.cfg:9: eval: missing 'train_labels' (evaluation needs the train "
                      "split's labels)");
    expect_eval_error("train_images = \"train.idx\"; train_labels = \"short-labels.idx\"; "
                      "test_images = \"test.idx\"; test_labels = \"test-labels.idx\";",
                      BYOL_ERR_FORMAT, "short-labels.idx: 10 labels for 24 images in");
    expect_eval_error(EVAL_FILES "colour = 1;", BYOL_ERR_INVALID,
                      "test-eval.cfg:9: eval.colour: unknown setting");
    expect_eval_error(EVAL_FILES "knn_k = 0;", BYOL_ERR_INVALID,
                      "test-eval.cfg:9: eval.knn_k: 0 is out of range [1, 1000]");
    expect_eval_error(EVAL_FILES "knn_k = 25;", BYOL_ERR_INVALID,
                      "eval.knn_k: 25 is more than the train split's 24 images");
    expect_eval_error(EVAL_FILES "knn_temperature = 0.0;", BYOL_ERR_INVALID,
                      "eval.knn_temperature: must be a finite number > 0");
    expect_eval_error(EVAL_FILES "every = -1;", BYOL_ERR_INVALID, "eval.every: must be >= 0");
    expect_eval_error(EVAL_FILES "probe_iterations = 0;", BYOL_ERR_INVALID,
                      "eval.probe_iterations: 0 is out of range [1, 100000]");
    expect_eval_error("format = \"mock\";", BYOL_ERR_UNSUPPORTED,
                      "eval.format: 'mock' is not a labelled format");
    expect_eval_error("format = \"cifar\"; train_images = \"a\"; train_labels = \"b\";",
                      BYOL_ERR_INVALID, "eval.train_labels: unknown setting");
    expect_eval_error("train_labels = \"train-labels.idx\"; test_images = \"test.idx\"; "
                      "test_labels = \"test-labels.idx\";",
                      BYOL_ERR_INVALID, "test-eval.cfg:9: eval: missing 'train_images'");
    expect_eval_error("train_images = \"train.idx\"; train_labels = \"train-labels.idx\"; "
                      "test_labels = \"test-labels.idx\";",
                      BYOL_ERR_INVALID, "eval: missing 'test_images'");
    expect_eval_error(EVAL_FILES "transform = \"byol_paper\";", BYOL_ERR_INVALID,
                      "eval.transform: expected a list of ops");
    expect_eval_error(EVAL_FILES "baseline = 3;", BYOL_ERR_INVALID,
                      "test-eval.cfg:9: eval.baseline: expected true or false");
}

/* The splits byolctl embed names. */
static void test_open_split(void)
{
    struct byol_config *cfg = NULL;
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_config_parse(config_text(1, SIDE, NULL, NULL), "test-eval.cfg", &cfg));
    const struct byol_settings *root = byol_config_root(cfg);
    BYOL_CHECK_OK(byol_eval_open_split(root, dir, "train", 1, SIDE, &ds));
    CU_ASSERT_EQUAL(byol_dataset_count(ds), N_TRAIN); /* the data group */
    byol_dataset_free(ds);
    CU_ASSERT_EQUAL(byol_eval_open_split(root, dir, "test", 1, SIDE, &ds), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("the config has no eval group: the test split is eval.test_images");
    CU_ASSERT_EQUAL(byol_eval_open_split(root, dir, "val", 1, SIDE, &ds), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("split 'val': must be 'train' or 'test'");
    byol_config_free(cfg);

    BYOL_CHECK_OK(byol_config_parse(
        config_text(1, SIDE, NULL,
                    "train_images = \"test.idx\"; train_labels = \"test-labels.idx\";"),
        "test-eval.cfg", &cfg));
    root = byol_config_root(cfg);
    BYOL_CHECK_OK(byol_eval_open_split(root, dir, "train", 1, SIDE, &ds));
    CU_ASSERT_EQUAL(byol_dataset_count(ds), N_TEST); /* eval's train split */
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 2), 2);
    byol_dataset_free(ds);
    CU_ASSERT_EQUAL(byol_eval_open_split(root, dir, "test", 1, SIDE, &ds), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("test-eval.cfg:9: eval: missing 'test_images' (the test split's images)");
    CU_ASSERT_PTR_NULL(ds);
    byol_config_free(cfg);
}

static void write_npy_images(const char *name, int h, int w)
{
    float img[2 * 8 * 10];
    for (int i = 0; i < 2 * h * w; i++)
        img[i] = (float)(i % 7) / 7.0f;
    if (byol_npy_write_f32(byol_test_path(dir, name), img, 4,
                           (const size_t[]){2, 1, (size_t)h, (size_t)w}) != BYOL_OK) {
        fprintf(stderr, "%s\n", byol_last_error());
        exit(2);
    }
}

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("eval");
    write_idx_images(byol_test_path(dir, "train.idx"), N_TRAIN, 0);
    write_idx_labels(byol_test_path(dir, "train-labels.idx"), N_TRAIN);
    write_idx_images(byol_test_path(dir, "test.idx"), N_TEST, 100);
    write_idx_images(byol_test_path(dir, "test2.idx"), N_TEST, 200);
    write_idx_labels(byol_test_path(dir, "test-labels.idx"), N_TEST);
    write_idx_labels(byol_test_path(dir, "short-labels.idx"), 10);
    write_npy_images("sq.npy", 8, 8);
    write_npy_images("wide.npy", 8, 10);
    /* The baseline cache goes to the scratch folder, never to the user's ~/.cache. */
    setenv("XDG_CACHE_HOME", byol_test_path(dir, "cache"), 1);
    reg = byol_test_registry();
    be = byol_test_backend(reg, "blas", 2);
    static const struct byol_test_case cases[] = {
        {"kNN against NumPy", test_knn_reference, 0},
        {"kNN ties", test_knn_ties, 0},
        {"kNN across blocks", test_knn_blocks, 0},
        {"kNN errors", test_knn_errors, 0},
        {"linear probe against scikit-learn", test_probe_reference, 0},
        {"linear probe on a separable problem", test_probe_separable, 0},
        {"linear probe reaches Newton's optimum", test_probe_optimum, 0},
        {"linear probe errors", test_probe_errors, 0},
        {".npy writer round trip", test_npy_roundtrip, 0},
        {"evaluator: kNN and probe", test_evaluator_run, 0},
        {"evaluator: the raw-pixel baseline", test_evaluator_baseline, 0},
        {"baseline cache: reused, or off", test_cache_reuse, 0},
        {"baseline cache: missed when an input changes", test_cache_invalidated, 0},
        {"baseline cache: damaged entries recomputed", test_cache_corrupt, 0},
        {"baseline cache: its folder", test_cache_folder, 0},
        {"embedding equals hand-made normalisation", test_embed_matches_manual, 0},
        {"the default eval transform", test_transform_default, 0},
        {"evaluator errors", test_evaluator_errors, 0},
        {"embed splits", test_open_split, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "eval", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
