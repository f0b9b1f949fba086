/* The linear probe (include/byol/eval.h): multinomial logistic regression on standardised
 * features, trained by full-batch L-BFGS preconditioned with the features' covariance
 * (core/eval/eval_precond.c); the data passes run through OpenBLAS sgemm on row ranges shared out
 * among threads, the optimiser's vectors (a few thousand numbers) are doubles. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

#define PROBE_HISTORY 10  /* L-BFGS (s, y) pairs kept */
#define PROBE_ARMIJO 1e-4 /* sufficient decrease in the line search */
#define PROBE_MAX_BACKTRACKS 40
/* The preconditioner's weight of the feature covariance against the identity (see
 * eval_precond_create): on Fashion-MNIST's pixels and encoder features, with probe_l2 1e-3 and
 * 3e-3, iterations were fewest for rho between 1/6 and 1 (60-90, against 300-450 without);
 * it changes the path to the optimum, not the optimum. */
#define PROBE_PRECOND_RHO (1.0 / 3.0)

void byol_probe_options_default(struct byol_probe_options *o)
{
    if (!o)
        return;
    o->l2 = BYOL_PROBE_L2;
    o->max_iterations = BYOL_PROBE_MAX_ITERATIONS;
    o->tolerance = BYOL_PROBE_TOLERANCE;
}

/* Rows per block of a pass: 1 MiB of features (512 rows of 512, 64 of 4096) stays in a core's
 * L2 cache between the two sgemm calls that read it, so each evaluation reads the features
 * from memory once (4 MiB blocks, shared with the other core in L3, were 10% slower). */
#define PROBE_BLOCK_FLOATS ((size_t)1 << 18)
#define PROBE_MIN_ROWS 64

/* One thread's share of an evaluation: rows [r0, r1) and its own sums. */
struct probe_part {
    size_t r0, r1;
    float *z;   /* rows x c: logits, then dLoss/dlogits */
    float *gw;  /* d x c: its rows' weight gradient (over n) */
    double *gb; /* c: its rows' bias gradient (summed) */
    double loss;
};

/* The training problem: standardised features and what one evaluation needs. */
struct probe {
    const float *x; /* n x d, standardised */
    const int *y;
    size_t n;
    int d, c;
    double l2;
    size_t np;       /* parameters: d * c weights (row-major d x c), then c biases */
    float *wf;       /* d x c: the weights as floats for sgemm */
    const double *b; /* the biases of the evaluation under way */
    size_t rows;     /* rows per block */
    int threads;
    struct probe_part part[EVAL_MAX_THREADS];
    const struct eval_precond *pc;  /* NULL: L-BFGS's plain scaled identity */
    struct eval_progress *progress; /* NULL: no reports */
};

/* Softmax cross-entropy of rows [r0, r0 + m) whose logits (bias not yet added) are in z; z
 * becomes dLoss/dlogits, the bias gradient accumulates in gb. Returns the summed loss. */
static double probe_rows(const struct probe *p, float *zs, size_t r0, int m, const double *b,
                         double *gb)
{
    double loss = 0;
    for (int i = 0; i < m; i++) {
        float *z = zs + (size_t)i * p->c;
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

/* A part's rows, p->rows at a time: each block is read by the logits' sgemm and, while still
 * in cache, by the gradient's. */
static void probe_part_eval(void *user, int i)
{
    struct probe *p = user;
    struct probe_part *t = &p->part[i];
    float inv_n = (float)(1.0 / (double)p->n);
    t->loss = 0;
    memset(t->gb, 0, (size_t)p->c * sizeof *t->gb);
    memset(t->gw, 0, (size_t)p->d * p->c * sizeof *t->gw);
    for (size_t r0 = t->r0; r0 < t->r1; r0 += p->rows) {
        int m = (int)(t->r1 - r0 < p->rows ? t->r1 - r0 : p->rows);
        const float *x = p->x + r0 * (size_t)p->d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, p->c, p->d, 1.0f, x, p->d, p->wf,
                    p->c, 0.0f, t->z, p->c);
        t->loss += probe_rows(p, t->z, r0, m, p->b, t->gb);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p->d, p->c, m, inv_n, x, p->d, t->z,
                    p->c, 1.0f, t->gw, p->c);
    }
}

/* Loss and gradient at theta: the parts on their threads, then their sums in part order (the
 * same order every time, so the result depends only on the thread count). */
static double probe_eval(struct probe *p, const double *theta, double *grad)
{
    size_t dc = (size_t)p->d * p->c;
    double inv_n = 1.0 / (double)p->n, loss = 0, reg = 0;
    for (size_t i = 0; i < dc; i++)
        p->wf[i] = (float)theta[i];
    p->b = theta + dc;
    eval_parallel(p->threads, probe_part_eval, p);
    for (size_t i = 0; i < dc; i++) {
        double g = 0;
        for (int t = 0; t < p->threads; t++)
            g += p->part[t].gw[i];
        grad[i] = g + p->l2 * theta[i];
        reg += theta[i] * theta[i];
    }
    for (int k = 0; k < p->c; k++) {
        double g = 0;
        for (int t = 0; t < p->threads; t++)
            g += p->part[t].gb[k];
        grad[dc + (size_t)k] = g * inv_n;
    }
    for (int t = 0; t < p->threads; t++)
        loss += p->part[t].loss;
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

/* L-BFGS memory: pairs in a ring, oldest first from `start`; py[j] = P^-1 y[j]. */
struct lbfgs {
    double *s[PROBE_HISTORY], *y[PROBE_HISTORY], *py[PROBE_HISTORY];
    double rho[PROBE_HISTORY], alpha[PROBE_HISTORY];
    int start, count;
};

/* d = -H g by the two-loop recursion with H0 = gamma P^-1, gamma = s'y / y'P^-1 y of the newest
 * pair; pg = P^-1 g. P^-1 is linear, so P^-1 of the first loop's q (g minus multiples of the
 * y's) is pg minus the same multiples of the py's: no new application of P^-1. q is work. */
static void lbfgs_direction(struct lbfgs *m, const double *g, const double *pg, double *q,
                            double *d, size_t np)
{
    memcpy(q, g, np * sizeof *q);
    memcpy(d, pg, np * sizeof *d);
    for (int j = m->count - 1; j >= 0; j--) {
        int r = (m->start + j) % PROBE_HISTORY;
        double a = m->alpha[r] = m->rho[r] * dot(m->s[r], q, np);
        for (size_t i = 0; i < np; i++) {
            q[i] -= a * m->y[r][i];
            d[i] -= a * m->py[r][i];
        }
    }
    if (m->count > 0) {
        int r = (m->start + m->count - 1) % PROBE_HISTORY;
        double gamma = 1.0 / (m->rho[r] * dot(m->y[r], m->py[r], np));
        for (size_t i = 0; i < np; i++)
            d[i] *= gamma;
    }
    for (int j = 0; j < m->count; j++) {
        int r = (m->start + j) % PROBE_HISTORY;
        double beta = m->rho[r] * dot(m->y[r], d, np);
        for (size_t i = 0; i < np; i++)
            d[i] += (m->alpha[r] - beta) * m->s[r][i];
    }
    for (size_t i = 0; i < np; i++)
        d[i] = -d[i];
}

/* Keep (s, y, P^-1 y) = (x1 - x0, g1 - g0, pg1 - pg0) when its curvature is positive. The
 * test comes first: a rejected pair must not overwrite the oldest one it would replace. */
static void lbfgs_push(struct lbfgs *m, const double *x0, const double *x1, const double *g0,
                       const double *g1, const double *pg0, const double *pg1, size_t np)
{
    double sy = 0, ypy = 0;
    for (size_t i = 0; i < np; i++) {
        double y = g1[i] - g0[i];
        sy += (x1[i] - x0[i]) * y;
        ypy += (pg1[i] - pg0[i]) * y;
    }
    if (!(sy > 1e-10 * ypy))
        return;
    int r = m->count < PROBE_HISTORY ? (m->start + m->count) % PROBE_HISTORY : m->start;
    for (size_t i = 0; i < np; i++) {
        m->s[r][i] = x1[i] - x0[i];
        m->y[r][i] = g1[i] - g0[i];
        m->py[r][i] = pg1[i] - pg0[i];
    }
    m->rho[r] = 1.0 / sy;
    if (m->count < PROBE_HISTORY)
        m->count++;
    else
        m->start = (m->start + 1) % PROBE_HISTORY;
}

/* Work vectors of the optimiser: x, g, P^-1 g, direction, work, trial x, g and P^-1 g, and
 * the history. */
#define PROBE_VECTORS 8
struct probe_vectors {
    double *x, *g, *pg, *d, *q, *x1, *g1, *pg1, *block;
};

static byol_status probe_vectors_alloc(struct probe_vectors *v, struct lbfgs *m, size_t np)
{
    v->block = calloc(np * (PROBE_VECTORS + 3 * PROBE_HISTORY), sizeof(double));
    if (!v->block)
        return byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory");
    double *p = v->block;
    double **vec[PROBE_VECTORS] = {&v->x, &v->g, &v->pg, &v->d, &v->q, &v->x1, &v->g1, &v->pg1};
    for (int j = 0; j < PROBE_VECTORS; j++)
        *vec[j] = p + (size_t)j * np;
    p += PROBE_VECTORS * np;
    for (int j = 0; j < PROBE_HISTORY; j++) {
        m->s[j] = p + (3 * (size_t)j) * np;
        m->y[j] = p + (3 * (size_t)j + 1) * np;
        m->py[j] = p + (3 * (size_t)j + 2) * np;
    }
    return BYOL_OK;
}

/* pg = P^-1 g (the identity without a preconditioner). */
static void probe_precondition(const struct probe *p, const double *g, double *pg)
{
    memcpy(pg, g, p->np * sizeof *pg);
    if (p->pc)
        eval_precond_apply(p->pc, pg);
}

/* The first trial step along d: 1 once the history gives d its scale; else a unit move. */
static double probe_first_step(const struct lbfgs *m, double gd)
{
    return m->count ? 1.0 : fmin(1.0, 1.0 / sqrt(-gd));
}

/* A step along v->d from v->x with sufficient decrease: f1, g1 at x1. A rejected step is
 * followed by the minimum of the quadratic through f(0), f'(0) and f(step), kept within
 * [0.1, 0.5] x step: one or two evaluations where halving took several. 0, or -1 when no step
 * decreases f any more at float precision. */
static int probe_line_search(struct probe *p, const struct lbfgs *m, struct probe_vectors *v,
                             double f, double *f1)
{
    size_t np = p->np;
    double gd = dot(v->g, v->d, np), step = probe_first_step(m, gd);
    for (int h = 0; h < PROBE_MAX_BACKTRACKS; h++) {
        for (size_t i = 0; i < np; i++)
            v->x1[i] = v->x[i] + step * v->d[i];
        *f1 = probe_eval(p, v->x1, v->g1);
        /* Strictly lower too: a step too short to change f would pass Armijo's test (f plus
         * a product below its precision is f) and stall the search without ending it. */
        if (*f1 <= f + PROBE_ARMIJO * step * gd && *f1 < f)
            return 0;
        double q = -gd * step * step / (2.0 * (*f1 - f - gd * step));
        step = isfinite(q) ? fmin(fmax(q, 0.1 * step), 0.5 * step) : 0.1 * step;
    }
    return -1;
}

/* Minimise from theta = 0; the solution is left in v->x. */
static void probe_minimise(struct probe *p, const struct byol_probe_options *o,
                           struct probe_vectors *v, struct lbfgs *m, struct byol_probe_info *info)
{
    size_t np = p->np;
    double f = probe_eval(p, v->x, v->g), f1 = f;
    probe_precondition(p, v->g, v->pg);
    int it = 0;
    for (; it < o->max_iterations && max_abs(v->g, np) > o->tolerance; it++) {
        lbfgs_direction(m, v->g, v->pg, v->q, v->d, np);
        if (!(dot(v->g, v->d, np) < 0)) { /* not a descent direction: forget the history */
            m->count = 0;
            lbfgs_direction(m, v->g, v->pg, v->q, v->d, np);
        }
        if (probe_line_search(p, m, v, f, &f1) != 0)
            break; /* no decrease left at float precision: as good as it gets */
        probe_precondition(p, v->g1, v->pg1);
        lbfgs_push(m, v->x, v->x1, v->g, v->g1, v->pg, v->pg1, np);
        double *t;
        t = v->x, v->x = v->x1, v->x1 = t;
        t = v->g, v->g = v->g1, v->g1 = t;
        t = v->pg, v->pg = v->pg1, v->pg1 = t;
        f = f1;
        eval_progress_step(p->progress, (size_t)it + 1, f);
    }
    if (info)
        *info = (struct byol_probe_info){it, f, max_abs(v->g, np)};
}

/* Softmax of m test rows' logits in z: argmax (ties: the lower class) and, if asked, proba. */
static void probe_score_rows(const struct probe *p, const double *b, int m, int *pred, float *proba)
{
    for (int i = 0; i < m; i++) {
        const float *z = p->part[0].z + (size_t)i * p->c;
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
                    test + r0 * (size_t)p->d, p->d, p->wf, p->c, 0.0f, p->part[0].z, p->c);
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
    struct eval_precond *pc = NULL;
    byol_status st = probe_vectors_alloc(&v, &m, p->np);
    if (st == BYOL_OK && eval_precond_worth(p->n, p->d))
        st = eval_precond_create(p->x, p->n, p->d, p->c, PROBE_PRECOND_RHO, &pc);
    p->pc = pc;
    if (st == BYOL_OK) {
        probe_minimise(p, o, &v, &m, info);
        probe_score(p, v.x, test_std, n_test, pred, proba);
    }
    eval_precond_free(pc);
    free(v.block);
    return st;
}

/* The weights as floats and each part's rows and buffers. */
static byol_status probe_alloc(struct probe *p)
{
    p->np = (size_t)p->d * p->c + (size_t)p->c;
    p->rows = PROBE_BLOCK_FLOATS / (size_t)p->d;
    p->rows = p->rows < PROBE_MIN_ROWS ? PROBE_MIN_ROWS : p->rows;
    p->wf = malloc((size_t)p->d * p->c * sizeof(float));
    int ok = p->wf != NULL;
    for (int t = 0; t < p->threads; t++) {
        struct probe_part *q = &p->part[t];
        q->r0 = p->n * (size_t)t / (size_t)p->threads;
        q->r1 = p->n * (size_t)(t + 1) / (size_t)p->threads;
        q->z = malloc(p->rows * (size_t)p->c * sizeof(float));
        q->gw = malloc((size_t)p->d * p->c * sizeof(float));
        q->gb = malloc((size_t)p->c * sizeof(double));
        ok = ok && q->z && q->gw && q->gb;
    }
    return ok ? BYOL_OK
              : byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory for %d x %d weights", p->d,
                           p->c);
}

static void probe_free(struct probe *p)
{
    free(p->wf);
    for (int t = 0; t < p->threads; t++) {
        free(p->part[t].z);
        free(p->part[t].gw);
        free(p->part[t].gb);
    }
}

/* Standardise into work (or buffers of its own), fit, score. */
byol_status eval_linear_probe(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes,
                              const struct byol_probe_options *o, int threads, float *const *work,
                              int *pred, float *proba, struct byol_probe_info *info,
                              struct eval_progress *r)
{
    struct byol_probe_options def;
    byol_probe_options_default(&def);
    o = o ? o : &def;
    byol_status st =
        probe_check(train, train_labels, n_train, test, n_test, dim, n_classes, o, pred);
    if (st != BYOL_OK)
        return st;
    threads = threads < 1 ? 1 : threads > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : threads;
    if ((size_t)threads > n_train)
        threads = (int)n_train;
    struct probe p = {.y = train_labels,
                      .n = n_train,
                      .d = dim,
                      .c = n_classes,
                      .l2 = o->l2,
                      .threads = threads,
                      .progress = r};
    float *own[2] = {NULL, NULL};
    if (!work) {
        own[0] = eval_alloc(n_train * (size_t)dim * sizeof(float));
        own[1] = eval_alloc(n_test * (size_t)dim * sizeof(float));
    }
    float *xs = work ? work[0] : own[0], *ts = work ? work[1] : own[1];
    st = xs && ts ? probe_alloc(&p)
                  : byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory for %zu x %d features",
                               n_train, dim);
    if (st == BYOL_OK)
        st = eval_standardise(train, n_train, test, n_test, dim, threads, xs, ts);
    if (st == BYOL_OK) {
        p.x = xs;
        st = probe_fit_score(&p, o, ts, n_test, pred, proba, info);
    }
    probe_free(&p);
    free(own[0]);
    free(own[1]);
    return st;
}

byol_status byol_linear_probe(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes,
                              const struct byol_probe_options *o, int *pred, float *proba,
                              struct byol_probe_info *info)
{
    return eval_linear_probe(train, train_labels, n_train, test, n_test, dim, n_classes, o,
                             eval_default_threads(), NULL, pred, proba, info, NULL);
}
