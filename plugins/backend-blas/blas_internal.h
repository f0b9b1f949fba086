/* backend-blas internals: the context, the per-layer plan, and the kernels that blas.c
 * dispatches to. Kernels are free functions over plain NCHW float32 arrays. */
#ifndef BYOL_BLAS_INTERNAL_H
#define BYOL_BLAS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/backend.h"

#define BLAS_NAME "blas"

struct blas_ctx {
    const struct byol_host_api *host;
    int threads; /* for OpenBLAS and our own OpenMP loops */
};

/* Geometry of one convolution, for one sample. */
struct conv_geom {
    int c, h, w;   /* input */
    int o, oh, ow; /* output */
    int kh, kw, sh, sw, ph, pw;
    int direct; /* 1x1, stride 1, no padding: the input already is the im2col matrix */
};

struct blas_plan {
    struct byol_op_desc desc; /* with desc.out inferred */
    struct conv_geom conv;
    float *col;    /* conv: one im2col scratch (C*KH*KW, OH*OW) per thread; batch norm with a
                    * fused relu: dy masked by y > 0; or NULL */
    int slots;     /* how many threads `col` has room for */
    double *stats; /* batch norm with bn_sync: batchnorm_sync_doubles(C) to reduce; or NULL */
};

/* conv.c */
/* `col` holds one (C*KH*KW, OH*OW) scratch per thread; `threads` must not exceed them. */
void conv2d_forward(float *y, float *col, const float *x, const float *weight, const float *bias,
                    int n, const struct conv_geom *g, int threads);
void conv2d_backward_data(float *dx, float *col, const float *dy, const float *weight, int n,
                          int accumulate, const struct conv_geom *g, int threads);
void conv2d_backward_weights(float *dweight, float *dbias, float *col, const float *dy,
                             const float *x, int n, const struct conv_geom *g, int threads);
void linear_forward(float *y, const float *x, const float *weight, const float *bias, int n,
                    int in_features, int out_features, int threads);
void linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                     const float *weight, int n, int in_features, int out_features, int accumulate,
                     int threads);

/* norm.c: `saved` holds mean (C), invstd (C) and the mode of the forward that wrote it. */
enum blas_bn_mode {
    BLAS_BN_RUNNING = 0, /* normalised with the running statistics */
    BLAS_BN_BATCH = 1,   /* with this batch's statistics */
    BLAS_BN_SYNC = 2,    /* with those of every process's batch (bn_sync) */
};
size_t batchnorm_saved_bytes(int channels);
enum blas_bn_mode batchnorm_saved_mode(const void *saved, int channels);
void batchnorm_forward_train(float *y, float *saved, float *running_mean, float *running_var,
                             const float *x, const float *weight, const float *bias, int n, int c,
                             int hw, float eps, float momentum, int threads);
/* SyncBatchNorm's training forward in two steps. batchnorm_sync_stats reduces the statistics
 * through sync->sum_f64 (twice: sums and count, then squared deviations from the global mean)
 * and leaves in `stats` the global mean (C), the global count, and the global sums of squared
 * deviations (C); it returns the reducer's status when that fails. batchnorm_forward_sync
 * then normalises and updates the running statistics as batchnorm_forward_train does. */
static inline size_t batchnorm_sync_doubles(int channels)
{
    return 2 * (size_t)channels + 1;
}
byol_status batchnorm_sync_stats(double *stats, const float *x, const struct byol_allreduce *sync,
                                 int n, int c, int hw, int threads);
void batchnorm_forward_sync(float *y, float *saved, float *running_mean, float *running_var,
                            const float *x, const float *weight, const float *bias,
                            const double *stats, int n, int c, int hw, float eps, float momentum,
                            int threads);
void batchnorm_forward_eval(float *y, float *saved, const float *x, const float *weight,
                            const float *bias, const float *running_mean, const float *running_var,
                            int n, int c, int hw, float eps, int threads);
void batchnorm_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, const float *saved, int n, int c, int hw,
                        int accumulate, int threads);
/* The backward after a synced forward in two steps. batchnorm_backward_sums leaves this
 * process's sums of dy (C) and of dy * (x - mean) (C) and its count in `sums`, and adds the
 * parameter gradients from them (this process's own, as DDP has them); the caller reduces
 * `sums`, and batchnorm_backward_sync_dx takes dx from the global ones. */
void batchnorm_backward_sums(double *sums, float *dweight, float *dbias, const float *dy,
                             const float *x, const float *saved, int n, int c, int hw, int threads);
void batchnorm_backward_sync_dx(float *dx, const float *dy, const float *x, const float *weight,
                                const float *saved, const double *sums, int n, int c, int hw,
                                int accumulate, int threads);

/* pool.c, and the element-wise ops. */
void maxpool_forward(float *y, int32_t *argmax, const float *x, int n, int c, int h, int w, int oh,
                     int ow, int kernel, int stride, int pad, int threads);
void maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int n, int c, int h, int w,
                      int oh, int ow, int accumulate, int threads);
void avgpool_forward(float *y, const float *x, int nc, int hw, int threads);
void avgpool_backward(float *dx, const float *dy, int nc, int hw, int accumulate, int threads);
void relu_forward(float *y, const float *x, size_t n, int threads);
void relu_backward(float *dx, const float *dy, const float *y, size_t n, int accumulate,
                   int threads);
void add_forward(float *y, const float *x0, const float *x1, size_t n, int threads);
void copy_grad(float *dx, const float *dy, size_t n, int accumulate, int threads);

/* softmax.c: softmax(x / temperature) over `rows` runs of `group` values. Its backward and the
 * parameter updates are the shared kernels of plugins/common (kernels.h). */
void softmax_forward(float *y, const float *x, size_t rows, int group, float temperature,
                     int threads);

#endif
