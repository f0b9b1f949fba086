/* The linear probe (include/byol/eval.h): multinomial logistic regression on standardised
 * features, trained by full-batch L-BFGS; the data passes run through OpenBLAS sgemm, the
 * optimiser's vectors (a few thousand numbers) are doubles. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "byol/eval.h"

#define PROBE_HISTORY 10  /* L-BFGS (s, y) pairs kept */
#define PROBE_ARMIJO 1e-4 /* sufficient decrease in the line search */
#define PROBE_MAX_HALVINGS 40

void byol_probe_options_default(struct byol_probe_options *o)
{
    if (!o)
        return;
    o->l2 = BYOL_PROBE_L2;
    o->max_iterations = BYOL_PROBE_MAX_ITERATIONS;
    o->tolerance = BYOL_PROBE_TOLERANCE;
}

/* Rows per pass of the loss: a block of about 4 MiB of features (2048 rows of 512, 256 of
 * 4096) stays in cache between the two sgemm calls that read it, so each evaluation reads the
 * features from memory once. */
#define PROBE_BLOCK_FLOATS ((size_t)1 << 20)
#define PROBE_MIN_ROWS 64

/* The training problem: standardised features and what one evaluation needs. */
struct probe {
    const float *x; /* n x d, standardised */
    const int *y;
    size_t n;
    int d, c;
    double l2;
    size_t np; /* parameters: d * c weights (row-major d x c), then c biases */
    float *wf; /* d x c: the weights as floats for sgemm */
    float *z;  /* rows x c: logits, then dLoss/dlogits */
    float *gw; /* d x c */
    size_t rows; /* rows per pass */
};

/* Softmax cross-entropy of rows [r0, r0 + m) whose logits (bias not yet added) are in z; z
 * becomes dLoss/dlogits, the bias gradient accumulates in gb. Returns the summed loss. */
static double probe_rows(const struct probe *p, size_t r0, int m, const double *b, double *gb)
{
    double loss = 0;
    for (int i = 0; i < m; i++) {
        float *z = p->z + (size_t)i * p->c;
        int y = p->y[r0 + (size_t)i];
        double zy = z[y] + b[y], mx = -INFINITY, sum = 0;
        for (int k = 0; k < p->c; k++)
            mx = fmax(mx, z[k] + b[k]);
        for (int k = 0; k < p->c; k++) {
            double v = exp(z[k] + b[k] - mx);
            z[k] = (float)v;
            sum += v;
        }
        loss += mx + log(sum) - zy;
        for (int k = 0; k < p->c; k++) {
            double g = z[k] / sum - (k == y);
            gb[k] += g;
            z[k] = (float)g;
        }
    }
    return loss;
}

/* Loss and gradient at theta, p->rows rows at a time. */
static double probe_eval(struct probe *p, const double *theta, double *grad)
{
    size_t dc = (size_t)p->d * p->c;
    const double *b = theta + dc;
    double inv_n = 1.0 / (double)p->n, loss = 0, reg = 0;
    for (size_t i = 0; i < dc; i++)
        p->wf[i] = (float)theta[i];
    memset(grad + dc, 0, (size_t)p->c * sizeof *grad);
    for (size_t r0 = 0; r0 < p->n; r0 += p->rows) {
        int m = (int)(p->n - r0 < p->rows ? p->n - r0 : p->rows);
        const float *x = p->x + r0 * (size_t)p->d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, p->c, p->d, 1.0f, x, p->d, p->wf,
                    p->c, 0.0f, p->z, p->c);
        loss += probe_rows(p, r0, m, b, grad + dc);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p->d, p->c, m, (float)inv_n, x, p->d,
                    p->z, p->c, r0 ? 1.0f : 0.0f, p->gw, p->c);
    }
    for (size_t i = 0; i < dc; i++) {
        grad[i] = p->gw[i] + p->l2 * theta[i];
        reg += theta[i] * theta[i];
    }
    for (int k = 0; k < p->c; k++)
        grad[dc + (size_t)k] *= inv_n;
    return loss * inv_n + 0.5 * p->l2 * reg;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

/* L-BFGS memory: pairs in a ring, oldest first from `start`. */
struct lbfgs {
    double *s[PROBE_HISTORY], *y[PROBE_HISTORY], rho[PROBE_HISTORY], alpha[PROBE_HISTORY];
    int start, count;
};

/* d = -H g by the two-loop recursion, H0 = (s'y / y'y) I from the newest pair. */
static void lbfgs_direction(struct lbfgs *m, const double *g, double *d, size_t np)
{
    for (size_t i = 0; i < np; i++)
        d[i] = -g[i];
    for (int j = m->count - 1; j >= 0; j--) {
        int r = (m->start + j) % PROBE_HISTORY;
        m->alpha[r] = m->rho[r] * dot(m->s[r], d, np);
        for (size_t i = 0; i < np; i++)
            d[i] -= m->alpha[r] * m->y[r][i];
    }
    if (m->count > 0) {
        int r = (m->start + m->count - 1) % PROBE_HISTORY;
        double gamma = 1.0 / (m->rho[r] * dot(m->y[r], m->y[r], np));
        for (size_t i = 0; i < np; i++)
            d[i] *= gamma;
    }
    for (int j = 0; j < m->count; j++) {
        int r = (m->start + j) % PROBE_HISTORY;
        double beta = m->rho[r] * dot(m->y[r], d, np);
        for (size_t i = 0; i < np; i++)
            d[i] += (m->alpha[r] - beta) * m->s[r][i];
    }
}

/* Keep (s, y) = (x1 - x0, g1 - g0) when its curvature is positive. */
static void lbfgs_push(struct lbfgs *m, const double *x0, const double *x1, const double *g0,
                       const double *g1, size_t np)
{
    int r = m->count < PROBE_HISTORY ? (m->start + m->count) % PROBE_HISTORY : m->start;
    for (size_t i = 0; i < np; i++) {
        m->s[r][i] = x1[i] - x0[i];
        m->y[r][i] = g1[i] - g0[i];
    }
    double sy = dot(m->s[r], m->y[r], np);
    if (!(sy > 1e-10 * dot(m->y[r], m->y[r], np)))
        return;
    m->rho[r] = 1.0 / sy;
    if (m->count < PROBE_HISTORY)
        m->count++;
    else
        m->start = (m->start + 1) % PROBE_HISTORY;
}

/* Work vectors of the optimiser: x, g, direction, trial x and g, and the history. */
struct probe_vectors {
    double *x, *g, *d, *x1, *g1, *block;
};

static byol_status probe_vectors_alloc(struct probe_vectors *v, struct lbfgs *m, size_t np)
{
    v->block = calloc(np * (5 + 2 * PROBE_HISTORY), sizeof(double));
    if (!v->block)
        return byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory");
    double *p = v->block;
    v->x = p, v->g = p + np, v->d = p + 2 * np, v->x1 = p + 3 * np, v->g1 = p + 4 * np;
    for (int j = 0; j < PROBE_HISTORY; j++) {
        m->s[j] = p + (5 + 2 * (size_t)j) * np;
        m->y[j] = p + (6 + 2 * (size_t)j) * np;
    }
    return BYOL_OK;
}

/* Minimise from theta = 0; the solution is left in v->x. */
static void probe_minimise(struct probe *p, const struct byol_probe_options *o,
                           struct probe_vectors *v, struct lbfgs *m, struct byol_probe_info *info)
{
    size_t np = p->np;
    double f = probe_eval(p, v->x, v->g), f1 = f;
    int it = 0;
    for (; it < o->max_iterations && max_abs(v->g, np) > o->tolerance; it++) {
        lbfgs_direction(m, v->g, v->d, np);
        double gd = dot(v->g, v->d, np);
        if (!(gd < 0)) { /* not a descent direction: forget the history */
            m->count = 0;
            lbfgs_direction(m, v->g, v->d, np);
            gd = dot(v->g, v->d, np);
        }
        /* Without curvature information the first step is scaled to a unit move. */
        double step = m->count ? 1.0 : fmin(1.0, 1.0 / sqrt(-gd));
        int h = 0;
        for (; h < PROBE_MAX_HALVINGS; h++, step *= 0.5) {
            for (size_t i = 0; i < np; i++)
                v->x1[i] = v->x[i] + step * v->d[i];
            f1 = probe_eval(p, v->x1, v->g1);
            if (f1 <= f + PROBE_ARMIJO * step * gd)
                break;
        }
        if (h == PROBE_MAX_HALVINGS)
            break; /* no decrease left at float precision: as good as it gets */
        lbfgs_push(m, v->x, v->x1, v->g, v->g1, np);
        memcpy(v->x, v->x1, np * sizeof *v->x);
        memcpy(v->g, v->g1, np * sizeof *v->g);
        f = f1;
    }
    if (info)
        *info = (struct byol_probe_info){it, f, max_abs(v->g, np)};
}

/* Per-feature mean and std (population, as StandardScaler; 0 becomes 1) of the train rows. */
static void probe_moments(const float *x, size_t n, int d, double *mean, double *scale)
{
    for (int j = 0; j < d; j++)
        mean[j] = scale[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (int j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double e = x[i * d + j] - mean[j];
            scale[j] += e * e;
        }
    for (int j = 0; j < d; j++) {
        double sd = sqrt(scale[j] / (double)n);
        scale[j] = sd > 1e-12 * fmax(1.0, fabs(mean[j])) ? sd : 1.0;
    }
}

static void probe_standardise(const float *x, size_t n, int d, const double *mean,
                              const double *scale, float *out)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            out[i * d + j] = (float)((x[i * d + j] - mean[j]) / scale[j]);
}

/* Softmax of m test rows' logits in z: argmax (ties: the lower class) and, if asked, proba. */
static void probe_score_rows(const struct probe *p, const double *b, int m, int *pred, float *proba)
{
    for (int i = 0; i < m; i++) {
        const float *z = p->z + (size_t)i * p->c;
        int best = 0;
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < p->c; k++) {
            if (z[k] + b[k] > mx)
                mx = z[k] + b[k], best = k;
        }
        for (int k = 0; k < p->c; k++)
            sum += exp(z[k] + b[k] - mx);
        pred[i] = best;
        for (int k = 0; proba && k < p->c; k++)
            proba[(size_t)i * p->c + k] = (float)(exp(z[k] + b[k] - mx) / sum);
    }
}

/* The test rows through the trained weights, p->rows at a time. */
static void probe_score(struct probe *p, const double *theta, const float *test, size_t n_test,
                        int *pred, float *proba)
{
    for (size_t i = 0; i < (size_t)p->d * p->c; i++)
        p->wf[i] = (float)theta[i];
    for (size_t r0 = 0; r0 < n_test; r0 += p->rows) {
        int m = (int)(n_test - r0 < p->rows ? n_test - r0 : p->rows);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, p->c, p->d, 1.0f,
                    test + r0 * (size_t)p->d, p->d, p->wf, p->c, 0.0f, p->z, p->c);
        probe_score_rows(p, theta + (size_t)p->d * p->c, m, pred + r0,
                         proba ? proba + r0 * (size_t)p->c : NULL);
    }
}

static byol_status probe_check(const float *train, const int *labels, size_t n_train,
                               const float *test, size_t n_test, int dim, int n_classes,
                               const struct byol_probe_options *o, const int *pred)
{
    if (!train || !labels || (n_test && (!test || !pred)))
        return byol_error(BYOL_ERR_INVALID, "linear probe: NULL argument");
    if (n_train < 1 || n_train > INT32_MAX || n_test > INT32_MAX || dim < 1 || n_classes < 2 ||
        n_classes > BYOL_EVAL_MAX_CLASSES)
        return byol_error(BYOL_ERR_INVALID,
                          "linear probe: bad sizes (%zu train rows, %zu test rows, dim %d, %d "
                          "classes; at least 1 row, 1 feature and 2 classes)",
                          n_train, n_test, dim, n_classes);
    if (!(o->l2 >= 0) || o->max_iterations < 1 || !(o->tolerance >= 0))
        return byol_error(BYOL_ERR_INVALID, "linear probe: bad options (l2 %g, %d iterations)",
                          o->l2, o->max_iterations);
    for (size_t i = 0; i < n_train; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return byol_error(BYOL_ERR_INVALID,
                              "linear probe: train label %zu is %d (classes: 0..%d)", i, labels[i],
                              n_classes - 1);
    return BYOL_OK;
}

/* Train on the standardised train rows, then score the test rows through the same buffers. */
static byol_status probe_fit_score(struct probe *p, const struct byol_probe_options *o,
                                   const float *test_std, size_t n_test, int *pred, float *proba,
                                   struct byol_probe_info *info)
{
    struct probe_vectors v = {0};
    struct lbfgs m = {0};
    byol_status st = probe_vectors_alloc(&v, &m, p->np);
    if (st != BYOL_OK)
        return st;
    probe_minimise(p, o, &v, &m, info);
    probe_score(p, v.x, test_std, n_test, pred, proba);
    free(v.block);
    return BYOL_OK;
}

byol_status byol_linear_probe(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes,
                              const struct byol_probe_options *o, int *pred, float *proba,
                              struct byol_probe_info *info)
{
    struct byol_probe_options def;
    byol_probe_options_default(&def);
    o = o ? o : &def;
    byol_status st =
        probe_check(train, train_labels, n_train, test, n_test, dim, n_classes, o, pred);
    if (st != BYOL_OK)
        return st;
    struct probe p = {.y = train_labels, .n = n_train, .d = dim, .c = n_classes, .l2 = o->l2};
    p.np = (size_t)dim * n_classes + (size_t)n_classes;
    p.rows = PROBE_BLOCK_FLOATS / (size_t)dim;
    p.rows = p.rows < PROBE_MIN_ROWS ? PROBE_MIN_ROWS : p.rows;
    float *xs = malloc(n_train * (size_t)dim * sizeof(float));
    float *ts = malloc((n_test ? n_test : 1) * (size_t)dim * sizeof(float));
    double *mean = malloc(2 * (size_t)dim * sizeof(double));
    p.wf = malloc((size_t)dim * n_classes * sizeof(float));
    p.gw = malloc((size_t)dim * n_classes * sizeof(float));
    p.z = malloc(p.rows * (size_t)n_classes * sizeof(float));
    if (!xs || !ts || !mean || !p.wf || !p.gw || !p.z) {
        st = byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory for %zu x %d features",
                        n_train, dim);
    } else {
        probe_moments(train, n_train, dim, mean, mean + dim);
        for (int j = 0; j < dim && st == BYOL_OK; j++)
            if (!isfinite(mean[j]) || !isfinite(mean[dim + j]))
                st =
                    byol_error(BYOL_ERR_INVALID, "linear probe: train feature %d is not finite", j);
    }
    if (st == BYOL_OK) {
        probe_standardise(train, n_train, dim, mean, mean + dim, xs);
        probe_standardise(test, n_test, dim, mean, mean + dim, ts);
        p.x = xs;
        st = probe_fit_score(&p, o, ts, n_test, pred, proba, info);
    }
    free(xs);
    free(ts);
    free(mean);
    free(p.wf);
    free(p.gw);
    free(p.z);
    return st;
}
