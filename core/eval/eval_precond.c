/* The linear probe's preconditioner (core/eval/eval_internal.h): a Cholesky factor of the weights'
 * approximate Hessian, built from a sample of the standardised training rows, so that L-BFGS
 * needs a few dozen iterations where correlated features otherwise cost hundreds. It is all in
 * float (half the time of double for the d^3 / 3 factorisation and the solves): it only
 * shapes the search, and a matrix I + rho * C with C's diagonal 1 is well enough conditioned
 * for float's rounding to leave the search's direction intact. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "eval_internal.h"

/* Rows of the sample: enough for a full-rank covariance estimate at any dim we factor, few
 * enough that it costs a handful of the probe's passes over the data. */
#define PRECOND_MIN_ROWS 2048
#define PRECOND_ROWS_PER_DIM 2
/* The largest dim factored: beyond it the d^3 / 3 factorisation outweighs what it saves. */
#define PRECOND_MAX_DIM 8192
/* Cholesky block size: the diagonal block is factored unblocked, the rest are BLAS-3 calls. */
#define PRECOND_BLOCK 128

struct eval_precond {
    int d, c;
    float *l;       /* d x d, row-major: lower Cholesky factor of I + rho * cov */
    float *v;       /* d x c: the vector being solved, as floats */
    double inv_rho; /* the biases' block: rho for a constant feature of variance 1 */
};

/* Unblocked Cholesky of the kb x kb block at a (leading dimension ld). 0, or -1 when a pivot
 * is not positive (not SPD at working precision). */
static int precond_chol_block(float *a, int kb, int ld)
{
    for (int j = 0; j < kb; j++) {
        float *rj = a + (size_t)j * ld;
        double s = rj[j];
        for (int k = 0; k < j; k++)
            s -= (double)rj[k] * rj[k];
        if (!(s > 0))
            return -1;
        rj[j] = (float)sqrt(s);
        for (int i = j + 1; i < kb; i++) {
            float *ri = a + (size_t)i * ld;
            double t = ri[j];
            for (int k = 0; k < j; k++)
                t -= (double)ri[k] * rj[k];
            ri[j] = (float)(t / rj[j]);
        }
    }
    return 0;
}

/* In-place right-looking blocked Cholesky of the d x d row-major lower triangle of a. */
static int precond_cholesky(float *a, int d)
{
    for (int k0 = 0; k0 < d; k0 += PRECOND_BLOCK) {
        int kb = d - k0 < PRECOND_BLOCK ? d - k0 : PRECOND_BLOCK, rest = d - k0 - kb;
        float *diag = a + (size_t)k0 * d + k0;
        if (precond_chol_block(diag, kb, d) != 0)
            return -1;
        if (rest == 0)
            break;
        float *panel = diag + (size_t)kb * d;
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, rest, kb, 1.0f,
                    diag, d, panel, d);
        cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, rest, kb, -1.0f, panel, d, 1.0f,
                    panel + kb, d);
    }
    return 0;
}

int eval_precond_worth(size_t n, int d)
{
    return d >= 2 && d <= PRECOND_MAX_DIM && (size_t)d <= n / 4;
}

/* I + rho * the sample's covariance (x is standardised: the Gram matrix over its rows / rows)
 * in the lower triangle of a: evenly spaced rows, read through a stride. */
static void precond_matrix(const float *x, size_t n, int d, double rho, float *a)
{
    size_t want = (size_t)d * PRECOND_ROWS_PER_DIM;
    want = want < PRECOND_MIN_ROWS ? PRECOND_MIN_ROWS : want;
    size_t stride = n > want ? n / want : 1, rows = n / stride;
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, d, (int)rows, (float)(rho / (double)rows), x,
                (int)(stride * (size_t)d), 0.0f, a, d);
    for (int i = 0; i < d; i++)
        a[(size_t)i * d + i] += 1.0f;
}

byol_status eval_precond_create(const float *x, size_t n, int d, int c, double rho,
                                struct eval_precond **out)
{
    *out = NULL;
    struct eval_precond *p = calloc(1, sizeof *p);
    float *a = malloc((size_t)d * d * sizeof *a), *v = malloc((size_t)d * c * sizeof *v);
    if (!p || !a || !v) {
        free(p), free(a), free(v);
        return byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory for a %d x %d matrix", d, d);
    }
    precond_matrix(x, n, d, rho, a);
    if (precond_cholesky(a, d) != 0) { /* not positive definite (non-finite values) */
        free(p), free(a), free(v);
        return BYOL_OK;
    }
    *p = (struct eval_precond){.d = d, .c = c, .l = a, .v = v, .inv_rho = 1.0 / rho};
    *out = p;
    return BYOL_OK;
}

void eval_precond_apply(const struct eval_precond *p, double *v)
{
    /* (L L^T)^-1 on the d x c weights: two triangular solves with c right-hand sides. */
    size_t dc = (size_t)p->d * p->c;
    for (size_t i = 0; i < dc; i++)
        p->v[i] = (float)v[i];
    cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, p->d, p->c, 1.0f,
                p->l, p->d, p->v, p->c);
    cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, p->d, p->c, 1.0f,
                p->l, p->d, p->v, p->c);
    for (size_t i = 0; i < dc; i++)
        v[i] = p->v[i];
    double *b = v + (size_t)p->d * p->c;
    for (int k = 0; k < p->c; k++)
        b[k] *= p->inv_rho;
}

void eval_precond_free(struct eval_precond *p)
{
    if (!p)
        return;
    free(p->l);
    free(p->v);
    free(p);
}
