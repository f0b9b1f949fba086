/* Batch normalisation for backend-blas, 2d on (N,C,H,W) and 1d on (N,F,1,1), following the
 * arithmetic of PyTorch's CPU kernels (statistics reduced in double, applied in float), and
 * SyncBatchNorm, whose per-channel sums are also reduced over every process (bn_sync). */
#include <math.h>
#include <string.h>

#include "blas_internal.h"

/* saved = mean (C floats), invstd (C floats), then one int: the enum blas_bn_mode of the
 * forward that wrote it. Backward needs the mode because the statistics are only a function of
 * x in training, and after a synced forward their gradient sums are taken over every process. */
size_t batchnorm_saved_bytes(int channels)
{
    return (2 * (size_t)channels + 1) * sizeof(float);
}

static int32_t *saved_mode(float *saved, int c)
{
    return (int32_t *)(saved + 2 * (size_t)c);
}

enum blas_bn_mode batchnorm_saved_mode(const void *saved, int channels)
{
    return (enum blas_bn_mode)(*(const int32_t *)((const float *)saved + 2 * (size_t)channels));
}

static void normalize_channel(float *y, const float *x, int n, int c, int hw, int ch, float alpha,
                              float beta)
{
    for (int b = 0; b < n; b++) {
        size_t off = ((size_t)b * c + ch) * hw;
        for (int i = 0; i < hw; i++)
            y[off + i] = x[off + i] * alpha + beta;
    }
}

static double channel_sum(const float *x, int n, int c, int hw, int ch)
{
    double sum = 0.0;
    for (int b = 0; b < n; b++) {
        const float *xc = x + ((size_t)b * c + ch) * hw;
        for (int i = 0; i < hw; i++)
            sum += xc[i];
    }
    return sum;
}

/* The sum of (x - mean)^2 over channel ch: two passes rather than E[x^2] - E[x]^2, which
 * cancels badly for large means. */
static double channel_sq_dev(const float *x, int n, int c, int hw, int ch, double mean)
{
    double var_sum = 0.0;
    for (int b = 0; b < n; b++) {
        const float *xc = x + ((size_t)b * c + ch) * hw;
        for (int i = 0; i < hw; i++) {
            double d = xc[i] - mean;
            var_sum += d * d;
        }
    }
    return var_sum;
}

/* Channel ch of a training forward, given its batch mean, the sum of squared deviations and
 * the count they were taken over: saves mean and invstd, updates the running statistics and
 * writes y. */
static void channel_apply(float *y, float *saved, float *running_mean, float *running_var,
                          const float *x, const float *weight, const float *bias, int n, int c,
                          int hw, int ch, double mean, double var_sum, double count, float eps,
                          float momentum)
{
    float *save_mean = saved, *save_invstd = saved + c;
    save_mean[ch] = (float)mean;
    save_invstd[ch] = (float)(1.0 / sqrt(var_sum / count + (double)eps));
    if (running_mean)
        running_mean[ch] = (float)(momentum * mean + (1.0 - momentum) * running_mean[ch]);
    if (running_var) {
        /* PyTorch tracks the unbiased variance but normalises with the biased one. */
        double unbiased = count > 1.0 ? var_sum / (count - 1.0) : NAN;
        running_var[ch] = (float)(momentum * unbiased + (1.0 - momentum) * running_var[ch]);
    }
    float w = weight ? weight[ch] : 1.0f, bb = bias ? bias[ch] : 0.0f;
    float alpha = save_invstd[ch] * w;
    normalize_channel(y, x, n, c, hw, ch, alpha, bb - save_mean[ch] * alpha);
}

void batchnorm_forward_train(float *y,            // (N,C,H,W)
                             float *saved,        // batchnorm_saved_bytes(C)
                             float *running_mean, // (C) updated, or NULL
                             float *running_var,  // (C) updated, or NULL
                             const float *x,      // (N,C,H,W)
                             const float *weight, // (C) or NULL
                             const float *bias,   // (C) or NULL
                             int n, int c, int hw, float eps, float momentum, int threads)
{
    double count = (double)n * hw;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mean = channel_sum(x, n, c, hw, ch) / count;
        double var_sum = channel_sq_dev(x, n, c, hw, ch, mean);
        channel_apply(y, saved, running_mean, running_var, x, weight, bias, n, c, hw, ch, mean,
                      var_sum, count, eps, momentum);
    }
    *saved_mode(saved, c) = BLAS_BN_BATCH;
}

/* Two reductions, so that the variance is a sum of squared deviations from the global mean
 * as in the single-process path (one reduction of sums and sums of squares would cancel). */
byol_status batchnorm_sync_stats(double *stats,  // batchnorm_sync_doubles(C)
                                 const float *x, // (N,C,H,W)
                                 const struct byol_allreduce *sync, int n, int c, int hw,
                                 int threads)
{
    double *mean = stats, *var_sum = stats + c + 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        mean[ch] = channel_sum(x, n, c, hw, ch);
    mean[c] = (double)n * hw;
    byol_status st = sync->sum_f64(sync->ctx, mean, (size_t)c + 1);
    if (st != BYOL_OK)
        return st;
    for (int ch = 0; ch < c; ch++)
        mean[ch] /= mean[c];
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        var_sum[ch] = channel_sq_dev(x, n, c, hw, ch, mean[ch]);
    return sync->sum_f64(sync->ctx, var_sum, (size_t)c);
}

void batchnorm_forward_sync(float *y,            // (N,C,H,W)
                            float *saved,        // batchnorm_saved_bytes(C)
                            float *running_mean, // (C) updated, or NULL
                            float *running_var,  // (C) updated, or NULL
                            const float *x,      // (N,C,H,W)
                            const float *weight, // (C) or NULL
                            const float *bias,   // (C) or NULL
                            const double *stats, // from batchnorm_sync_stats
                            int n, int c, int hw, float eps, float momentum, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_apply(y, saved, running_mean, running_var, x, weight, bias, n, c, hw, ch, stats[ch],
                      stats[c + 1 + ch], stats[c], eps, momentum);
    *saved_mode(saved, c) = BLAS_BN_SYNC;
}

void batchnorm_forward_eval(float *y,                  // (N,C,H,W)
                            float *saved,              // batchnorm_saved_bytes(C)
                            const float *x,            // (N,C,H,W)
                            const float *weight,       // (C) or NULL
                            const float *bias,         // (C) or NULL
                            const float *running_mean, // (C)
                            const float *running_var,  // (C)
                            int n, int c, int hw, float eps, int threads)
{
    float *save_mean = saved, *save_invstd = saved + c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float invstd = 1.0f / sqrtf(running_var[ch] + eps);
        float w = weight ? weight[ch] : 1.0f, bb = bias ? bias[ch] : 0.0f;
        float alpha = invstd * w;
        save_mean[ch] = running_mean[ch];
        save_invstd[ch] = invstd;
        normalize_channel(y, x, n, c, hw, ch, alpha, bb - running_mean[ch] * alpha);
    }
    *saved_mode(saved, c) = BLAS_BN_RUNNING;
}

/* Channel ch's sum of dy and of dy * (x - mean), in double. */
static void channel_grad_sums(double *sum_out, double *dotp_out, const float *dy, const float *x,
                              float mean, int n, int c, int hw, int ch)
{
    double sum = 0.0, dotp = 0.0;
    for (int b = 0; b < n; b++) {
        size_t off = ((size_t)b * c + ch) * hw;
        for (int i = 0; i < hw; i++) {
            sum += dy[off + i];
            dotp += (double)(x[off + i] - mean) * dy[off + i];
        }
    }
    *sum_out = sum;
    *dotp_out = dotp;
}

/* dx of channel ch. In training the batch statistics depend on x, so their gradient is
 * projected out: dx = (dy - mean(dy) - xhat * mean(dy * xhat)) * invstd * w, the means over
 * the `count` values that sum and dotp were taken over. */
static void channel_dx(float *dx, const float *dy, const float *x, float mean, float invstd,
                       float w, double sum, double dotp, double count, int train, int n, int c,
                       int hw, int ch, int accumulate)
{
    float k = train ? (float)dotp * invstd * invstd / (float)count : 0.0f;
    float grad_mean = train ? (float)(sum / count) : 0.0f;
    float scale = invstd * w;
    for (int b = 0; b < n; b++) {
        size_t off = ((size_t)b * c + ch) * hw;
        for (int i = 0; i < hw; i++) {
            float g = (dy[off + i] - grad_mean - (x[off + i] - mean) * k) * scale;
            dx[off + i] = accumulate ? dx[off + i] + g : g;
        }
    }
}

void batchnorm_backward(float *dx,           // (N,C,H,W), or NULL
                        float *dweight,      // (C) +=, or NULL
                        float *dbias,        // (C) +=, or NULL
                        const float *dy,     // (N,C,H,W)
                        const float *x,      // (N,C,H,W)
                        const float *weight, // (C) or NULL
                        const float *saved,  // from the forward
                        int n, int c, int hw, int accumulate, int threads)
{
    const float *save_mean = saved, *save_invstd = saved + c;
    int train = batchnorm_saved_mode(saved, c) != BLAS_BN_RUNNING;
    double count = (double)n * hw;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float mean = save_mean[ch], invstd = save_invstd[ch];
        double sum, dotp;
        channel_grad_sums(&sum, &dotp, dy, x, mean, n, c, hw, ch);
        if (dx)
            channel_dx(dx, dy, x, mean, invstd, weight ? weight[ch] : 1.0f, sum, dotp, count, train,
                       n, c, hw, ch, accumulate);
        if (dweight)
            dweight[ch] += (float)(dotp * invstd);
        if (dbias)
            dbias[ch] += (float)sum;
    }
}

void batchnorm_backward_sums(double *sums,       // batchnorm_sync_doubles(C)
                             float *dweight,     // (C) +=, or NULL
                             float *dbias,       // (C) +=, or NULL
                             const float *dy,    // (N,C,H,W)
                             const float *x,     // (N,C,H,W)
                             const float *saved, // from a synced forward
                             int n, int c, int hw, int threads)
{
    const float *save_mean = saved, *save_invstd = saved + c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        channel_grad_sums(&sums[ch], &sums[c + ch], dy, x, save_mean[ch], n, c, hw, ch);
        if (dweight)
            dweight[ch] += (float)(sums[c + ch] * save_invstd[ch]);
        if (dbias)
            dbias[ch] += (float)sums[ch];
    }
    sums[2 * (size_t)c] = (double)n * hw;
}

void batchnorm_backward_sync_dx(float *dx,           // (N,C,H,W)
                                const float *dy,     // (N,C,H,W)
                                const float *x,      // (N,C,H,W)
                                const float *weight, // (C) or NULL
                                const float *saved,  // from a synced forward
                                const double *sums,  // batchnorm_backward_sums, reduced
                                int n, int c, int hw, int accumulate, int threads)
{
    const float *save_mean = saved, *save_invstd = saved + c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_dx(dx, dy, x, save_mean[ch], save_invstd[ch], weight ? weight[ch] : 1.0f, sums[ch],
                   sums[c + ch], sums[2 * (size_t)c], 1, n, c, hw, ch, accumulate);
}
