/* The linear probe's standardisation (core/eval/eval_internal.h): the train split's per-feature mean
 * and std, and both splits scaled with them, each pass shared out by rows among threads (on
 * 4096-d features of 70000 images it is three passes over a gigabyte). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

struct standardise {
    const float *x[2]; /* train, test */
    float *out[2];
    size_t n[2];
    int d, threads;
    int centred; /* the mean is known: accumulate squared deviations */
    double *part; /* threads x d: each part's sums */
    double *mean, *scale;
};

/* Rows [r0, r1) of split s for part t of `threads`. */
static void std_rows(const struct standardise *w, int s, int t, size_t *r0, size_t *r1)
{
    *r0 = w->n[s] * (size_t)t / (size_t)w->threads;
    *r1 = w->n[s] * (size_t)(t + 1) / (size_t)w->threads;
}

/* Part t's per-feature sums over its train rows: of x, or, once the mean is known
 * (w->centred), of (x - mean)^2. */
static void std_accumulate(void *user, int t)
{
    const struct standardise *w = user;
    size_t r0, r1, d = (size_t)w->d;
    double *acc = w->part + (size_t)t * d;
    std_rows(w, 0, t, &r0, &r1);
    memset(acc, 0, d * sizeof *acc);
    for (size_t i = r0; i < r1; i++)
        for (size_t j = 0; j < d; j++) {
            double e = w->x[0][i * d + j];
            if (w->centred) {
                e -= w->mean[j];
                e *= e;
            }
            acc[j] += e;
        }
}

static void std_apply(void *user, int t)
{
    const struct standardise *w = user;
    size_t d = (size_t)w->d;
    for (int s = 0; s < 2; s++) {
        size_t r0, r1;
        std_rows(w, s, t, &r0, &r1);
        for (size_t i = r0; i < r1; i++)
            for (size_t j = 0; j < d; j++)
                w->out[s][i * d + j] = (float)((w->x[s][i * d + j] - w->mean[j]) / w->scale[j]);
    }
}

/* The parts' sums, in part order, divided by n. */
static void std_reduce(const struct standardise *w, double *out)
{
    for (int j = 0; j < w->d; j++) {
        double s = 0;
        for (int t = 0; t < w->threads; t++)
            s += w->part[(size_t)t * w->d + j];
        out[j] = s / (double)w->n[0];
    }
}

byol_status eval_standardise(const float *train, size_t n_train, const float *test, size_t n_test,
                             int d, int threads, float *train_out, float *test_out)
{
    threads = threads < 1 ? 1 : threads > EVAL_MAX_THREADS ? EVAL_MAX_THREADS : threads;
    struct standardise w = {
        {train, test}, {train_out, test_out}, {n_train, n_test}, d, threads, 0, NULL, NULL, NULL};
    w.part = malloc((size_t)threads * d * sizeof(double));
    w.mean = malloc(2 * (size_t)d * sizeof(double));
    if (!w.part || !w.mean) {
        free(w.part);
        free(w.mean);
        return byol_error(BYOL_ERR_NOMEM, "linear probe: out of memory");
    }
    w.scale = w.mean + d;
    eval_parallel(threads, std_accumulate, &w);
    std_reduce(&w, w.mean);
    w.centred = 1;
    eval_parallel(threads, std_accumulate, &w);
    std_reduce(&w, w.scale);

    byol_status st = BYOL_OK;
    for (int j = 0; j < d && st == BYOL_OK; j++) {
        /* Population std, as StandardScaler; a constant feature keeps scale 1. */
        double sd = sqrt(w.scale[j]);
        w.scale[j] = sd > 1e-12 * fmax(1.0, fabs(w.mean[j])) ? sd : 1.0;
        if (!isfinite(w.mean[j]) || !isfinite(sd))
            st = byol_error(BYOL_ERR_INVALID, "linear probe: train feature %d is not finite", j);
    }
    if (st == BYOL_OK)
        eval_parallel(threads, std_apply, &w);
    free(w.part);
    free(w.mean);
    return st;
}
