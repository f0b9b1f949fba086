/* Batch normalisation for backend-blas, 2d on (N,C,H,W) and 1d on (N,F,1,1), following the
 * arithmetic of PyTorch's CPU kernels (statistics reduced in double, applied in float). */
#include <math.h>
#include <string.h>

#include "blas_internal.h"

/* saved = mean (C floats), invstd (C floats), then one int: 1 if written by a training
 * forward. Backward needs the mode because the statistics are only a function of x in
 * training. */
size_t batchnorm_saved_bytes(int channels)
{
    return (2 * (size_t)channels + 1) * sizeof(float);
}

static int32_t *saved_mode(float *saved, int c)
{
    return (int32_t *)(saved + 2 * (size_t)c);
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
    float *save_mean = saved, *save_invstd = saved + c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int b = 0; b < n; b++) {
            const float *xc = x + ((size_t)b * c + ch) * hw;
            for (int i = 0; i < hw; i++)
                sum += xc[i];
        }
        double mean = sum / count;
        /* Two passes rather than E[x^2] - E[x]^2, which cancels badly for large means. */
        double var_sum = 0.0;
        for (int b = 0; b < n; b++) {
            const float *xc = x + ((size_t)b * c + ch) * hw;
            for (int i = 0; i < hw; i++) {
                double d = xc[i] - mean;
                var_sum += d * d;
            }
        }
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
    *saved_mode(saved, c) = 1;
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
    *saved_mode(saved, c) = 0;
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
    int train = *(const int32_t *)(saved + 2 * (size_t)c);
    double count = (double)n * hw;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float mean = save_mean[ch], invstd = save_invstd[ch];
        float w = weight ? weight[ch] : 1.0f;
        double sum = 0.0, dotp = 0.0;
        for (int b = 0; b < n; b++) {
            size_t off = ((size_t)b * c + ch) * hw;
            for (int i = 0; i < hw; i++) {
                sum += dy[off + i];
                dotp += (double)(x[off + i] - mean) * dy[off + i];
            }
        }
        if (dx) {
            /* Training: the batch statistics depend on x, so their gradient is projected out:
             * dx = (dy - mean(dy) - xhat * mean(dy * xhat)) * invstd * w. */
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
        if (dweight)
            dweight[ch] += (float)(dotp * invstd);
        if (dbias)
            dbias[ch] += (float)sum;
    }
}
