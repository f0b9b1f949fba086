/* Fused parameter updates over flat float32 arrays, shared by backend-blas and backend-onednn:
 * Adam / AdamW and SGD as torch.optim 1.13 computes them (single-tensor path), and
 * byol-pytorch's EMA. */
#include <math.h>
#include <omp.h>

#include "kernels.h"

/* Bit-for-bit agreement with PyTorch: every hyper-parameter is rounded to float where PyTorch
 * hands a Python scalar to a float kernel, each expression keeps PyTorch's operation order,
 * and fmaf stands where PyTorch's AVX2 kernels fuse (add with alpha, addcmul). fmaf is a libm
 * call on baseline x86-64, so the loops are also built for FMA hardware and picked at load. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define KERNELS_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define KERNELS_FMA_CLONES
#endif

/* The range [lo, hi) of n that this OpenMP thread owns. */
static void my_range(size_t n, size_t *lo, size_t *hi)
{
    size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
    size_t q = n / nt, r = n % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

struct adam_scalars {
    float neg_step_size, bc2_sqrt, beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    float wd;    /* Adam's L2 term; 0 for AdamW, and g + 0 * p is g */
    float decay; /* AdamW's 1 - lr * wd; 1 for Adam, and p * 1 is p */
};

KERNELS_FMA_CLONES
static void adam_range(float *restrict param, float *restrict m, float *restrict v,
                       const float *restrict grad, size_t lo, size_t hi,
                       const struct adam_scalars *s)
{
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
        float p = param[i] * s->decay;
        float g = fmaf(s->wd, p, grad[i]);
        float mi = fmaf(s->one_minus_beta1, g, m[i] * s->beta1);
        float vi = fmaf(s->one_minus_beta2 * g, g, v[i] * s->beta2);
        float denom = sqrtf(vi) / s->bc2_sqrt + s->eps;
        param[i] = p + s->neg_step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

void adam_update(float *param,      // (n)
                 float *m,          // (n) exp_avg
                 float *v,          // (n) exp_avg_sq
                 const float *grad, // (n)
                 size_t n, const struct byol_adam_hparams *h, int threads)
{
    double step = (double)h->step;
    double bias_correction1 = 1.0 - pow(h->beta1, step);
    double bias_correction2 = 1.0 - pow(h->beta2, step);
    struct adam_scalars s = {
        .neg_step_size = (float)(-(h->lr / bias_correction1)),
        .bc2_sqrt = (float)sqrt(bias_correction2),
        .beta1 = (float)h->beta1,
        .one_minus_beta1 = (float)(1.0 - h->beta1),
        .beta2 = (float)h->beta2,
        .one_minus_beta2 = (float)(1.0 - h->beta2),
        .eps = (float)h->eps,
        .wd = h->decoupled_weight_decay ? 0.0f : (float)h->weight_decay,
        .decay = h->decoupled_weight_decay ? (float)(1.0 - h->lr * h->weight_decay) : 1.0f,
    };
#pragma omp parallel num_threads(threads)
    {
        size_t lo, hi;
        my_range(n, &lo, &hi);
        adam_range(param, m, v, grad, lo, hi, &s);
    }
}

/* The mode tests sit outside the loops so that each loop vectorises. A zero weight decay
 * leaves g + 0 * p == g, as PyTorch's skipped term would. */
KERNELS_FMA_CLONES
static void sgd_range(float *restrict param, float *restrict momentum_buf,
                      const float *restrict grad, size_t lo, size_t hi,
                      const struct byol_sgd_hparams *h)
{
    float wd = (float)h->weight_decay, mom = (float)h->momentum;
    float neg_lr = (float)(-h->lr);
    float nesterov = h->nesterov ? 1.0f : 0.0f;
    if (h->momentum == 0.0) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            param[i] = fmaf(neg_lr, fmaf(wd, param[i], grad[i]), param[i]);
    } else if (h->first_step) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float g = fmaf(wd, param[i], grad[i]);
            momentum_buf[i] = g;
            g = nesterov != 0.0f ? fmaf(mom, g, g) : g;
            param[i] = fmaf(neg_lr, g, param[i]);
        }
    } else {
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float g = fmaf(wd, param[i], grad[i]);
            float buf = momentum_buf[i] * mom + g;
            momentum_buf[i] = buf;
            g = nesterov != 0.0f ? fmaf(mom, buf, g) : buf;
            param[i] = fmaf(neg_lr, g, param[i]);
        }
    }
}

void sgd_update(float *param,        // (n)
                float *momentum_buf, // (n), untouched when momentum is 0
                const float *grad,   // (n)
                size_t n, const struct byol_sgd_hparams *h, int threads)
{
#pragma omp parallel num_threads(threads)
    {
        size_t lo, hi;
        my_range(n, &lo, &hi);
        sgd_range(param, momentum_buf, grad, lo, hi, h);
    }
}

void ema_update(float *target,       // (n)
                const float *online, // (n)
                size_t n, double tau, int threads)
{
    /* byol-pytorch: old * beta + (1 - beta) * new, two float products and a sum. */
    float beta = (float)tau, one_minus_beta = (float)(1.0 - tau);
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        target[i] = target[i] * beta + one_minus_beta * online[i];
}
