/* The compute backend interface. A backend is a plugin that registers a
 * struct byol_backend_ops (kind BYOL_PLUGIN_BACKEND). The network engine describes each layer
 * once with a struct byol_op_desc, asks the backend for a plan (a oneDNN primitive, an im2col
 * set-up, ...), then executes that plan every step with struct byol_op_args.
 *
 * Conventions shared by every op:
 *  - Activations are backend-owned struct byol_tensor; parameters, their gradients and the
 *    batch-norm running statistics are plain float32 arrays owned by the caller (views into the
 *    network's flat buffers), in PyTorch's layout (conv OIHW, linear [out, in]).
 *  - forward overwrites y. backward writes dx[i] (or adds into it when accumulate[i] is set),
 *    and always adds into dweight / dbias, as PyTorch accumulates .grad.
 *  - A NULL dx[i], dweight or dbias means that gradient is not wanted. */
#ifndef BYOL_BACKEND_H
#define BYOL_BACKEND_H

#include "byol/plugin.h"
#include "byol/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are ABI: append only. */
enum byol_op_kind {
    BYOL_OP_CONV2D = 1,    /* x (N,C,H,W) -> y (N,O,OH,OW); weight (O,C,KH,KW), bias (O) */
    BYOL_OP_BATCHNORM = 2, /* x (N,C,H,W) -> y same; weight, bias (C) if affine; H=W=1 is 1d */
    BYOL_OP_RELU = 3,      /* y = max(x, 0) */
    BYOL_OP_MAXPOOL = 4,   /* kernel x kernel window, stride, zero... -inf padding */
    BYOL_OP_AVGPOOL = 5,   /* global average: (N,C,H,W) -> (N,C,1,1) */
    BYOL_OP_LINEAR = 6,    /* x (N,F,1,1) -> y (N,O,1,1); weight (O,F), bias (O) */
    BYOL_OP_ADD = 7,       /* y = x0 + x1, same shapes */
    BYOL_OP_FLATTEN = 8,   /* (N,C,H,W) -> (N,C*H*W,1,1) */
    BYOL_OP_SOFTMAX = 9,   /* (N,F,1,1): softmax(x / T) over each run of `group` features */
};

/* "conv2d", "batchnorm", ... for messages ("unknown op" outside the enum). */
static inline const char *byol_op_kind_name(enum byol_op_kind kind)
{
    switch (kind) {
    case BYOL_OP_CONV2D: return "conv2d";
    case BYOL_OP_BATCHNORM: return "batchnorm";
    case BYOL_OP_RELU: return "relu";
    case BYOL_OP_MAXPOOL: return "maxpool";
    case BYOL_OP_AVGPOOL: return "avgpool";
    case BYOL_OP_LINEAR: return "linear";
    case BYOL_OP_ADD: return "add";
    case BYOL_OP_FLATTEN: return "flatten";
    case BYOL_OP_SOFTMAX: return "softmax";
    }
    return "unknown op";
}

/* A sum over every process of a data-parallel run, in place: buf[i] becomes the sum of buf[i]
 * over all processes. Every process calls it with the same n at the same point. */
struct byol_allreduce {
    byol_status (*sum_f64)(void *ctx, double *buf, size_t n);
    void *ctx;
};

struct byol_op_desc {
    enum byol_op_kind kind;
    struct byol_shape in[2]; /* in[1] only for BYOL_OP_ADD */
    struct byol_shape out;   /* filled by byol_op_desc_infer() */
    union {
        struct {
            int out_channels;
            int kernel_h, kernel_w;
            int stride_h, stride_w;
            int pad_h, pad_w;
            int has_bias;
        } conv;
        struct {
            float eps;      /* 1e-5 in PyTorch */
            float momentum; /* 0.1 in PyTorch: running = (1-m)*running + m*batch */
            int affine;     /* 0: no weight / bias (y = x_hat) */
            /* 1: y = relu(batch norm(x)), and backward takes dy at that y (only when the
             * backend has BYOL_BACKEND_FUSES_BN_RELU; byol_backend_plan_create refuses it
             * otherwise). */
            int fuse_relu;
        } bn;
        struct {
            int kernel, stride, pad;
        } pool;
        struct {
            int out_features;
            int has_bias;
        } linear;
        struct {
            int group;         /* features per softmax; F must be a multiple of it */
            float temperature; /* > 0: y = softmax(x / temperature) within each group */
        } softmax;
    } u;
    /* Batch norm only (appended after the union so that its layout stays that of ABI 1.0).
     * Non-NULL: SyncBatchNorm. Training statistics are taken over every process of a
     * data-parallel run: the plan sums its per-channel statistics (double) through
     * bn_sync->sum_f64, twice in a training forward (count and sums, then squared deviations
     * from the global mean) and once in backward (count, sums of dy and of dy * x_hat).
     * dweight / dbias stay this process's own sums; the caller reduces parameter gradients as
     * it does for every other layer. Needs BYOL_BACKEND_SYNC_BN: byol_backend_plan_create
     * refuses it otherwise. */
    const struct byol_allreduce *bn_sync;
};

struct byol_op_args {
    /* forward */
    const struct byol_tensor *x[2];
    struct byol_tensor *y;
    const float *weight; /* conv, linear, affine bn */
    const float *bias;   /* NULL when the layer has none */
    float *running_mean; /* batch norm: updated by a training forward, read in inference */
    float *running_var;  /* unbiased batch variance goes in, as PyTorch does */
    void *saved;         /* saved_bytes of scratch, kept by the caller from forward to backward */
    /* backward (x, y, weight and saved are those of the matching forward) */
    const struct byol_tensor *dy;
    struct byol_tensor *dx[2];
    int accumulate[2]; /* 1: dx[i] += gradient; 0: dx[i] = gradient */
    float *dweight;    /* += */
    float *dbias;      /* += */
};

/* torch.optim.Adam / AdamW for one flat float32 array; `step` counts from 1. Arithmetic follows
 * PyTorch's single-tensor implementation (bias corrections in double, applied in float). */
struct byol_adam_hparams {
    double lr, beta1, beta2, eps, weight_decay;
    int decoupled_weight_decay; /* 1 = AdamW */
    int64_t step;
};

/* torch.optim.SGD (dampening 0). `first_step`: the momentum buffer is set to the gradient. */
struct byol_sgd_hparams {
    double lr, momentum, weight_decay;
    int nesterov;
    int first_step;
};

struct byol_backend_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *version;
    const char *description;

    /* Create a context from the backend's settings (threads = N, ...). */
    byol_status (*create)(const struct byol_host_api *host, const struct byol_settings *settings,
                          void **ctx);
    void (*destroy)(void *ctx);

    /* Allocate storage for t->shape. `producer` is the plan that will write the tensor (or
     * NULL), so a backend may pick that primitive's preferred layout. */
    byol_status (*tensor_alloc)(void *ctx, struct byol_tensor *t, const void *producer);
    void (*tensor_free)(void *ctx, struct byol_tensor *t);
    /* Convert from / to plain contiguous float32 NCHW. */
    byol_status (*tensor_write)(void *ctx, struct byol_tensor *t, const float *src);
    byol_status (*tensor_read)(void *ctx, const struct byol_tensor *t, float *dst);

    /* Plans: one per layer, created when a network is built. `*saved_bytes` is the scratch the
     * caller must keep per layer between forward and backward. BYOL_ERR_UNSUPPORTED for kinds
     * or options the backend lacks. */
    byol_status (*plan_create)(void *ctx, const struct byol_op_desc *desc, void **plan,
                               size_t *saved_bytes);
    void (*plan_destroy)(void *ctx, void *plan);
    byol_status (*forward)(void *ctx, void *plan, int training, const struct byol_op_args *a);
    byol_status (*backward)(void *ctx, void *plan, const struct byol_op_args *a);

    /* Parameter updates over flat arrays of n floats. */
    byol_status (*adam_update)(void *ctx, float *param, const float *grad, float *m, float *v,
                               size_t n, const struct byol_adam_hparams *h);
    byol_status (*sgd_update)(void *ctx, float *param, const float *grad, float *momentum_buf,
                              size_t n, const struct byol_sgd_hparams *h);
    /* target = tau * target + (1 - tau) * online, as byol-pytorch's EMA. */
    byol_status (*ema_update)(void *ctx, float *target, const float *online, size_t n,
                              double tau);

    /* (optional) change the thread count after create. */
    byol_status (*set_threads)(void *ctx, int threads);

    /* (optional) BYOL_BACKEND_* capabilities; 0 (or an older plugin without the field): none. */
    uint32_t flags;

    /* (optional) What a plan runs, as one line of `role=implementation` words for profiles and
     * for the tests that refuse slow kernels: "fwd=jit:avx2 bwd_d=jit:avx2 bwd_w=gemm:jit".
     * Writes at most `size` bytes, NUL-terminated. A kernel that is a reference (unvectorised)
     * implementation says so with an implementation name starting "ref". Without the slot the
     * host writes the backend's name. */
    void (*plan_describe)(void *ctx, const void *plan, char *buf, size_t size);

    /* (optional) Allocate a gradient (the dy of the plan `producer`'s output, or an input's dx),
     * as tensor_alloc does an activation. A backend that stores activations in a narrower type
     * (bfloat16) keeps their gradients in float32 here. Without the slot the host calls
     * tensor_alloc. */
    byol_status (*grad_alloc)(void *ctx, struct byol_tensor *t, const void *producer);
};

/* Plans honour bn.fuse_relu. */
#define BYOL_BACKEND_FUSES_BN_RELU 1u
/* Plans honour bn_sync (SyncBatchNorm). */
#define BYOL_BACKEND_SYNC_BN 2u


/* ---- Host side: a created backend (ops + context). ------------------------------------- */

struct byol_backend;
struct byol_registry;

/* Create from the registry: `name` is a backend name ("blas") or a path to a .so. */
BYOL_API byol_status byol_backend_create(struct byol_registry *reg, const char *name,
                                         const struct byol_settings *settings,
                                         struct byol_backend **out);
/* Create from an ops table directly (tests, embedders). The ops must outlive the backend. */
BYOL_API byol_status byol_backend_create_from_ops(const struct byol_backend_ops *ops,
                                                  const struct byol_settings *settings,
                                                  struct byol_backend **out);
/* NULL is a no-op. */
BYOL_API void byol_backend_free(struct byol_backend *be);
BYOL_API const struct byol_backend_ops *byol_backend_get_ops(const struct byol_backend *be);
BYOL_API const char *byol_backend_name(const struct byol_backend *be);

/* Fill desc->out from desc->in and the op's options; fails on impossible shapes. */
BYOL_API byol_status byol_op_desc_infer(struct byol_op_desc *desc);

/* Thin wrappers over the ops table. They check arguments and supply defaults for optional
 * slots; messages name the backend. */
BYOL_API byol_status byol_backend_tensor_alloc(struct byol_backend *be, struct byol_tensor *t,
                                               struct byol_shape shape, const void *producer);
/* A gradient tensor (the grad_alloc slot, else tensor_alloc). */
BYOL_API byol_status byol_backend_grad_alloc(struct byol_backend *be, struct byol_tensor *t,
                                             struct byol_shape shape, const void *producer);
BYOL_API void byol_backend_tensor_free(struct byol_backend *be, struct byol_tensor *t);
BYOL_API byol_status byol_backend_tensor_write(struct byol_backend *be, struct byol_tensor *t,
                                               const float *src);
BYOL_API byol_status byol_backend_tensor_read(struct byol_backend *be,
                                              const struct byol_tensor *t, float *dst);
BYOL_API byol_status byol_backend_plan_create(struct byol_backend *be,
                                              const struct byol_op_desc *desc, void **plan,
                                              size_t *saved_bytes);
BYOL_API void byol_backend_plan_destroy(struct byol_backend *be, void *plan);
BYOL_API byol_status byol_backend_forward(struct byol_backend *be, void *plan, int training,
                                          const struct byol_op_args *a);
BYOL_API byol_status byol_backend_backward(struct byol_backend *be, void *plan,
                                           const struct byol_op_args *a);
BYOL_API byol_status byol_backend_adam(struct byol_backend *be, float *param, const float *grad,
                                       float *m, float *v, size_t n,
                                       const struct byol_adam_hparams *h);
BYOL_API byol_status byol_backend_sgd(struct byol_backend *be, float *param, const float *grad,
                                      float *momentum_buf, size_t n,
                                      const struct byol_sgd_hparams *h);
BYOL_API byol_status byol_backend_ema(struct byol_backend *be, float *target,
                                      const float *online, size_t n, double tau);
BYOL_API byol_status byol_backend_set_threads(struct byol_backend *be, int threads);
/* What `plan` runs (see plan_describe), into buf (at most size bytes, NUL-terminated). */
BYOL_API void byol_backend_plan_describe(struct byol_backend *be, const void *plan, char *buf,
                                         size_t size);
/* 1 if the backend declares capability `flag` (BYOL_BACKEND_FUSES_BN_RELU, ...). */
BYOL_API int byol_backend_has_flag(const struct byol_backend *be, uint32_t flag);

#ifdef __cplusplus
}
#endif
#endif
