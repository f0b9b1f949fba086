/* Batch normalisation in backend-onednn, with PyTorch's semantics around oneDNN's primitives:
 * the batch statistics are computed here, in double (bn_batch_stats), and oneDNN normalises
 * with them; it keeps no running statistics, so the running mean / unbiased variance update
 * (momentum m: running = (1-m) running + m batch) is done here too. `saved` holds the mean and
 * variance the forward normalised with, then the mode, and with a fused relu (bn.fuse_relu)
 * oneDNN's relu mask from a training forward. SyncBatchNorm (bn_sync) reduces the statistics
 * over every process between the passes of bn_batch_stats, and its backward is done by hand
 * (bn_backward_sync), since oneDNN's would take the gradient sums over this batch only. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "onednn_internal.h"

enum { P_FWD_TRAIN, P_FWD_INFER, P_BWD_TRAIN, P_BWD_GLOBAL };
enum { M_SRC, M_DST, M_MEAN, M_VAR, M_SCALE, M_SHIFT, M_DDST, M_DSRC, M_DSCALE, M_DSHIFT, M_WS };
/* The mode in `saved`: normalised with the running statistics, this batch's, or those of every
 * process's batch (bn_sync, training only). */
enum { MODE_RUNNING, MODE_BATCH, MODE_SYNC };

static size_t saved_bytes(int c)
{
    return (2 * (size_t)c + 1) * sizeof(float);
}

static int32_t *saved_mode(void *saved, int c)
{
    return (int32_t *)((float *)saved + 2 * (size_t)c);
}

/* The relu mask's place in `saved`, after the statistics. */
static size_t saved_ws_offset(int c)
{
    return (saved_bytes(c) + 63) & ~(size_t)63;
}

/* Forward in both modes and backward for both kinds of statistics (the batch's, which depend
 * on x, or fixed running ones after an inference forward). */
static byol_status bn_pds(struct od_ctx *ctx, struct od_plan *p, const dnnl_memory_desc_t *data,
                          dnnl_primitive_desc_t pd[4])
{
    const struct byol_op_desc *d = &p->desc;
    unsigned aff = d->u.bn.affine ? dnnl_use_scale | dnnl_use_shift : 0;
    dnnl_prop_kind_t bwd = d->u.bn.affine ? dnnl_backward : dnnl_backward_data;
    float eps = d->u.bn.eps;
    dnnl_batch_normalization_desc_t desc[4];
    /* The training forward normalises with the statistics bn_batch_stats computed; the
     * backward (desc[2], without the flag) still differentiates through them. */
    dnnl_status_t s = dnnl_batch_normalization_forward_desc_init(
        &desc[0], dnnl_forward_training, data, eps, aff | dnnl_use_global_stats);
    if (s == dnnl_success)
        s = dnnl_batch_normalization_forward_desc_init(&desc[1], dnnl_forward_inference, data, eps,
                                                       aff | dnnl_use_global_stats);
    if (s == dnnl_success)
        s = dnnl_batch_normalization_backward_desc_init(&desc[2], bwd, data, data, eps, aff);
    if (s == dnnl_success)
        s = dnnl_batch_normalization_backward_desc_init(&desc[3], bwd, data, data, eps,
                                                        aff | dnnl_use_global_stats);
    /* A fused relu: oneDNN's flag, except in the backward after an inference forward (which
     * leaves no mask), where the relu is applied to dy by hand. */
    unsigned relu = d->u.bn.fuse_relu ? dnnl_fuse_norm_relu : 0;
    dnnl_batch_normalization_desc_t hint_desc = desc[0];
    for (int k = 0; k < 3; k++)
        desc[k].flags |= relu;
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_batch_normalization_*_desc_init", s);
    byol_status st = BYOL_OK;
    for (int k = 0; st == BYOL_OK && k < 3; k++)
        st = od_pd_create(ctx, p, &desc[k], k < 2 ? NULL : pd[0], &pd[k]);
    /* The unfused global-stats backward takes an unfused forward as its hint. */
    dnnl_primitive_desc_t hint = NULL;
    if (st == BYOL_OK && relu)
        st = od_pd_create(ctx, p, &hint_desc, NULL, &hint);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &desc[3], relu ? hint : pd[0], &pd[3]);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static byol_status bn_mems(struct od_ctx *ctx, struct od_plan *p, const dnnl_memory_desc_t *data)
{
    dnnl_memory_desc_t vec;
    dnnl_dims_t dims = {p->desc.in[0].c};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&vec, 1, dims, dnnl_f32, dnnl_x);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_memory_desc_init_by_tag", s);
    byol_status st = BYOL_OK;
    for (int i = M_SRC; st == BYOL_OK && i <= M_DSHIFT; i++) {
        int is_data = i == M_SRC || i == M_DST || i == M_DDST || i == M_DSRC;
        st = od_mem_create(ctx, p, i, is_data ? data : &vec);
    }
    return st;
}

/* The relu mask a fused training forward writes and its backward reads, kept in `saved`. */
static byol_status bn_workspace(struct od_ctx *ctx, struct od_plan *p)
{
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_get_primitive_desc(p->prim[P_FWD_TRAIN], &pd) != dnnl_success)
        return od_fail(ctx, BYOL_ERR_INTERNAL, "batchnorm: no primitive descriptor");
    const dnnl_memory_desc_t *ws = od_query_md(pd, dnnl_query_workspace_md);
    size_t bytes = ws ? dnnl_memory_desc_get_size(ws) : 0;
    if (bytes == 0)
        return od_fail(ctx, BYOL_ERR_INTERNAL, "batchnorm: the fused relu has no workspace");
    p->saved_bytes = saved_ws_offset(p->desc.in[0].c) + bytes;
    /* The unfused backward reads dy masked by y in the arena. */
    return od_mem_create(ctx, p, M_WS, ws);
}

byol_status od_bn_plan(struct od_ctx *ctx, struct od_plan *p)
{
    const struct byol_op_desc *d = &p->desc;
    if (!(d->u.bn.eps >= 0.0f) || !(d->u.bn.momentum >= 0.0f && d->u.bn.momentum <= 1.0f))
        return od_fail(ctx, BYOL_ERR_INVALID, "batchnorm: eps %g or momentum %g out of range",
                       (double)d->u.bn.eps, (double)d->u.bn.momentum);
    dnnl_memory_desc_t data;
    dnnl_status_t s = od_md(&data, d->in[0], p->in_block);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_memory_desc_init_by_tag", s);
    dnnl_primitive_desc_t pd[4] = {NULL, NULL, NULL, NULL};
    byol_status st = bn_pds(ctx, p, &data, pd);
    for (int k = 0; st == BYOL_OK && k < 4; k++)
        st = od_prim_create(ctx, p, k, pd[k]);
    for (int k = 0; k < 4; k++)
        dnnl_primitive_desc_destroy(pd[k]);
    if (st == BYOL_OK)
        st = bn_mems(ctx, p, &data);
    p->need[OD_SLOT_SMALL] = 2 * (size_t)d->in[0].c * sizeof(float);
    p->need[OD_SLOT_STATS] = ((size_t)d->in[0].n + 1) * (size_t)d->in[0].c * sizeof(double);
    /* Sync: per-image rows of two sums (N x 2C), their totals and the count (2C + 1), and
     * bn_backward_sync's per-channel factors (3C floats); the forward needs less. */
    if (d->bn_sync)
        p->need[OD_SLOT_STATS] =
            ((2 * (size_t)d->in[0].n + 4) * (size_t)d->in[0].c + 1) * sizeof(double);
    p->saved_bytes = saved_bytes(d->in[0].c);
    if (st == BYOL_OK && d->u.bn.fuse_relu)
        st = bn_workspace(ctx, p);
    return st;
}

/* PyTorch tracks the unbiased variance but normalises with the biased one. */
static void update_running(float *running_mean, float *running_var, const float *mean,
                           const float *var, int c, double count, double momentum)
{
    double unbias = count > 1.0 ? count / (count - 1.0) : NAN;
    for (int ch = 0; ch < c; ch++) {
        running_mean[ch] = (float)(momentum * mean[ch] + (1.0 - momentum) * running_mean[ch]);
        running_var[ch] =
            (float)(momentum * (var[ch] * unbias) + (1.0 - momentum) * running_var[ch]);
    }
}

static void *bn_ws(const struct od_plan *p, void *saved)
{
    return (char *)saved + saved_ws_offset(p->desc.in[0].c);
}

/* The relu's backward by hand (after an inference forward, which leaves no mask): dy where
 * y > 0, else 0, into the arena. */
static const float *bn_relu_mask(struct od_ctx *ctx, struct od_plan *p,
                                 const struct byol_op_args *a, const float *dy)
{
    const float *y = od_input(ctx, a->y, p->in_block, OD_SLOT_DX);
    float *out = od_slot(ctx, OD_SLOT_IN1);
    size_t n = byol_shape_numel(p->desc.out);
#pragma omp parallel for simd num_threads(ctx->threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return out;
}

/* On x86-64 with GCC the statistics loops (and the sync backward's) are also built for AVX-512
 * and AVX2 and picked at load (as update.c does for FMA): baseline SSE2 runs these double sums
 * 1.6x slower, and without the AVX2 build a CPU without AVX-512 would run them so. Every build
 * sums over the pixels in the same order (the vector lanes are channels). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define BN_STATS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BN_STATS_CLONES
#endif

/* Per channel of a block of b (constant once inlined, so the lane loops vectorise), over one
 * image's hw pixels: the sum of x, or with `centre` the sum of (x - centre)^2. */
static inline void bn_block_sums(double *out, const float *q, size_t hw, int b,
                                 const double *centre)
{
    double acc[16] = {0.0}, m[16] = {0.0};
    if (centre) {
        for (int j = 0; j < b; j++)
            m[j] = centre[j];
        for (size_t i = 0; i < hw; i++)
            for (int j = 0; j < b; j++) {
                double d = (double)q[i * (size_t)b + (size_t)j] - m[j];
                acc[j] += d * d;
            }
    } else {
        for (size_t i = 0; i < hw; i++)
            for (int j = 0; j < b; j++)
                acc[j] += q[i * (size_t)b + (size_t)j];
    }
    for (int j = 0; j < b; j++)
        out[j] = acc[j];
}

/* One image's per-channel sums (see bn_block_sums) into out[0..c), its data in layout b (b = 1
 * is plain NCHW, or NHWC for single-pixel tensors, which od_md stores alike). */
BN_STATS_CLONES
static void bn_image_sums(double *out, const float *x, int c, size_t hw, int b,
                          const double *centre)
{
    for (int k = 0; k < c / b; k++) {
        size_t at = (size_t)k * (size_t)b;
        const float *q = x + at * hw;
        const double *ck = centre ? centre + at : NULL;
        if (b == 16)
            bn_block_sums(out + at, q, hw, 16, ck);
        else if (b == 8)
            bn_block_sums(out + at, q, hw, 8, ck);
        else
            bn_block_sums(out + at, q, hw, 1, ck);
    }
}

/* The batch mean and biased variance of x (layout p->in_block) per channel, in double with two
 * passes, as backend-blas and PyTorch compute them. oneDNN's own statistics (2.6, float32
 * sums) were off by up to ~sqrt(NHW) 2^-24 relative: 5e-6 at 8192 values per channel
 * (ResNet-18 at 32 px, batch 8), 50 times PyTorch's. That flipped the sign of a few near-zero
 * activations before a relu, and each flip moved every earlier gradient of a ResNet-18 step
 * by ~0.4% (tests/test_learner.c); now it matches PyTorch as blas does. Each image is summed
 * on its own into a row of `part` (N x C doubles, then the C means), then the rows in order,
 * so the result does not depend on the thread count.
 * With `sync`, each pass's totals go through sync->sum_f64 (the first with the count), so the
 * variance stays a sum of squared deviations from the global mean; a failed reduction returns
 * its status. `*count` gets the count the statistics were taken over. */
static byol_status bn_batch_stats(struct od_ctx *ctx, const struct od_plan *p, const float *x,
                                  const struct byol_allreduce *sync, float *mean, float *var,
                                  double *count_out)
{
    struct byol_shape s = p->desc.in[0];
    int b = p->in_block > 1 ? p->in_block : 1;
    size_t c = (size_t)s.c, hw = (size_t)s.h * (size_t)s.w;
    double count = (double)s.n * (double)hw, *part = (double *)od_slot(ctx, OD_SLOT_STATS);
    double *centre = part + (size_t)s.n * c;
    double *tot = sync ? centre + c : part; /* sync: C totals and the count to reduce */
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
        for (int n = 0; n < s.n; n++)
            bn_image_sums(part + (size_t)n * c, x + (size_t)n * c * hw, s.c, hw, b,
                          pass ? centre : NULL);
        /* Row 0 += rows 1.. in order; threads take disjoint runs of channels. */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
        for (size_t lo = 0; lo < c; lo += 256) {
            size_t hi = lo + 256 < c ? lo + 256 : c;
            for (int n = 1; n < s.n; n++)
                for (size_t ch = lo; ch < hi; ch++)
                    part[ch] += part[(size_t)n * c + ch];
        }
        if (sync) {
            memcpy(tot, part, c * sizeof(double));
            if (!pass)
                tot[c] = count;
            byol_status st = sync->sum_f64(sync->ctx, tot, pass ? c : c + 1);
            if (st != BYOL_OK)
                return st;
            if (!pass)
                count = tot[c];
        }
        for (size_t ch = 0; ch < c; ch++) {
            if (pass) {
                var[ch] = (float)(tot[ch] / count);
            } else {
                centre[ch] = tot[ch] / count;
                mean[ch] = (float)centre[ch];
            }
        }
    }
    *count_out = count;
    return BYOL_OK;
}

/* Per channel of a block of b, over one image's hw pixels: the sums of dy and of
 * dy * (x - mean), as bn_block_sums. */
static inline void bn_block_grad_sums(double *sum, double *dot, const float *dy, const float *x,
                                      size_t hw, int b, const float *mean)
{
    double s[16] = {0.0}, d[16] = {0.0};
    float m[16] = {0.0f};
    for (int j = 0; j < b; j++)
        m[j] = mean[j];
    for (size_t i = 0; i < hw; i++)
        for (int j = 0; j < b; j++) {
            size_t at = i * (size_t)b + (size_t)j;
            s[j] += dy[at];
            d[j] += (double)(x[at] - m[j]) * dy[at];
        }
    for (int j = 0; j < b; j++) {
        sum[j] = s[j];
        dot[j] = d[j];
    }
}

/* One image's gradient sums per channel (layout b, as bn_image_sums). */
BN_STATS_CLONES
static void bn_image_grad_sums(double *sum, double *dot, const float *dy, const float *x,
                               const float *mean, int c, size_t hw, int b)
{
    for (int k = 0; k < c / b; k++) {
        size_t at = (size_t)k * (size_t)b, off = at * hw;
        if (b == 16)
            bn_block_grad_sums(sum + at, dot + at, dy + off, x + off, hw, 16, mean + at);
        else if (b == 8)
            bn_block_grad_sums(sum + at, dot + at, dy + off, x + off, hw, 8, mean + at);
        else
            bn_block_grad_sums(sum + at, dot + at, dy + off, x + off, hw, 1, mean + at);
    }
}

/* dx = (dy - gm - (x - mean) * k) * scale over a block of b channels of one image. */
static inline void bn_block_dx(float *dx, const float *dy, const float *x, size_t hw, int b,
                               const float *mean, const float *k, const float *gm,
                               const float *scale)
{
    float m[16] = {0.0f}, kk[16] = {0.0f}, g[16] = {0.0f}, sc[16] = {0.0f};
    for (int j = 0; j < b; j++) {
        m[j] = mean[j];
        kk[j] = k[j];
        g[j] = gm[j];
        sc[j] = scale[j];
    }
    for (size_t i = 0; i < hw; i++)
        for (int j = 0; j < b; j++) {
            size_t at = i * (size_t)b + (size_t)j;
            dx[at] = (dy[at] - g[j] - (x[at] - m[j]) * kk[j]) * sc[j];
        }
}

BN_STATS_CLONES
static void bn_image_dx(float *dx, const float *dy, const float *x, int c, size_t hw, int b,
                        const float *mean, const float *k, const float *gm, const float *scale)
{
    for (int blk = 0; blk < c / b; blk++) {
        size_t at = (size_t)blk * (size_t)b, off = at * hw;
        if (b == 16)
            bn_block_dx(dx + off, dy + off, x + off, hw, 16, mean + at, k + at, gm + at,
                        scale + at);
        else if (b == 8)
            bn_block_dx(dx + off, dy + off, x + off, hw, 8, mean + at, k + at, gm + at, scale + at);
        else
            bn_block_dx(dx + off, dy + off, x + off, hw, 1, mean + at, k + at, gm + at, scale + at);
    }
}

static byol_status bn_run_forward(struct od_ctx *ctx, struct od_plan *p, int prim,
                                  const struct byol_op_args *a, const float *x, float *mean,
                                  float *var)
{
    int affine = p->desc.u.bn.affine, n = 4;
    dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
                               {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)},
                               {DNNL_ARG_MEAN, od_bind(p, M_MEAN, mean)},
                               {DNNL_ARG_VARIANCE, od_bind(p, M_VAR, var)}};
    if (affine) {
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, od_bind(p, M_SCALE, a->weight)};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, od_bind(p, M_SHIFT, a->bias)};
    }
    if (p->desc.u.bn.fuse_relu && prim == P_FWD_TRAIN)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, od_bind(p, M_WS, bn_ws(p, a->saved))};
    return od_exec(ctx, p, prim, n, args);
}

byol_status od_bn_forward(struct od_ctx *ctx, struct od_plan *p, int training,
                          const struct byol_op_args *a)
{
    struct byol_shape s = p->desc.in[0];
    double count = (double)s.n * s.h * s.w;
    int tracked = a->running_mean != NULL;
    /* SyncBatchNorm syncs in training only, as PyTorch's does. */
    const struct byol_allreduce *sync = training ? p->desc.bn_sync : NULL;
    if (!a->running_mean != !a->running_var)
        return od_fail(ctx, BYOL_ERR_INVALID,
                       "batchnorm: give both running_mean and running_var or neither");
    if (training && tracked && !sync && count < 2)
        return od_fail(ctx, BYOL_ERR_SHAPE,
                       "batchnorm: training needs more than one value per channel, got input "
                       "(%d,%d,%d,%d)",
                       s.n, s.c, s.h, s.w);
    float *mean = a->saved, *var = (float *)a->saved + s.c;
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    /* Without running statistics PyTorch normalises with batch statistics in both modes. */
    int batch_stats = training || !tracked;
    byol_status st = BYOL_OK;
    if (batch_stats) {
        st = bn_batch_stats(ctx, p, x, sync, mean, var, &count);
    } else {
        memcpy(mean, a->running_mean, (size_t)s.c * sizeof(float));
        memcpy(var, a->running_var, (size_t)s.c * sizeof(float));
    }
    if (st != BYOL_OK)
        return st; /* the reducer's message stands */
    /* With sync the check waits for the global count: one process's batch may be a single
     * sample, and every process must take part in both reductions whatever its own data. */
    if (sync && tracked && count < 2)
        return od_fail(ctx, BYOL_ERR_SHAPE,
                       "batchnorm: training needs more than one value per channel, got %.0f "
                       "over all processes",
                       count);
    st = bn_run_forward(ctx, p, batch_stats ? P_FWD_TRAIN : P_FWD_INFER, a, x, mean, var);
    if (st != BYOL_OK)
        return st;
    if (training && tracked)
        update_running(a->running_mean, a->running_var, mean, var, s.c, count, p->desc.u.bn.momentum);
    *saved_mode(a->saved, s.c) = sync ? MODE_SYNC : batch_stats ? MODE_BATCH : MODE_RUNNING;
    return BYOL_OK;
}

/* The backward after a synced forward, by hand: oneDNN's would take the means of dy and
 * dy * x_hat over this batch, where SyncBatchNorm wants them over every process's. Each image's
 * sums go into a row of the stats slot (N x 2C doubles), the rows are added in order, and
 * dweight / dbias get this process's own sums (the caller reduces parameter gradients). Only
 * dx reads the reduced sums, so the reduction (sums and count, 2C + 1 doubles) runs when dx is
 * asked for, which the network's structure decides alike on every process. */
static byol_status bn_backward_sync(struct od_ctx *ctx, struct od_plan *p,
                                    const struct byol_op_args *a, float *dw, float *db)
{
    struct byol_shape s = p->desc.in[0];
    int b = p->in_block > 1 ? p->in_block : 1;
    size_t c = (size_t)s.c, hw = (size_t)s.h * (size_t)s.w, row = 2 * c;
    const float *mean = a->saved, *var = (const float *)a->saved + c;
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    const float *dy = od_input(ctx, a->dy, p->in_block, OD_SLOT_DY);
    if (p->desc.u.bn.fuse_relu)
        dy = bn_relu_mask(ctx, p, a, dy);
    double *part = (double *)od_slot(ctx, OD_SLOT_STATS), *tot = part + (size_t)s.n * row;
    float *scale = (float *)(tot + row + 1), *k = scale + c, *gm = k + c;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
    for (int n = 0; n < s.n; n++)
        bn_image_grad_sums(part + (size_t)n * row, part + (size_t)n * row + c,
                           dy + (size_t)n * c * hw, x + (size_t)n * c * hw, mean, s.c, hw, b);
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
    for (size_t lo = 0; lo < row; lo += 256) {
        size_t hi = lo + 256 < row ? lo + 256 : row;
        for (int n = 1; n < s.n; n++)
            for (size_t i = lo; i < hi; i++)
                part[i] += part[(size_t)n * row + i];
    }
    memcpy(tot, part, row * sizeof(double));
    tot[row] = (double)s.n * (double)hw;
    for (size_t ch = 0; ch < c; ch++)
        scale[ch] = 1.0f / sqrtf(var[ch] + p->desc.u.bn.eps); /* invstd, as oneDNN takes it */
    for (size_t ch = 0; dw && ch < c; ch++)
        dw[ch] += (float)(tot[c + ch] * scale[ch]);
    for (size_t ch = 0; db && ch < c; ch++)
        db[ch] += (float)tot[ch];
    if (!a->dx[0])
        return BYOL_OK;
    const struct byol_allreduce *sync = p->desc.bn_sync;
    byol_status st = sync->sum_f64(sync->ctx, tot, row + 1);
    if (st != BYOL_OK)
        return st;
    double count = tot[row];
    const float *w = p->desc.u.bn.affine ? a->weight : NULL;
    for (size_t ch = 0; ch < c; ch++) {
        double invstd = scale[ch];
        k[ch] = (float)(tot[c + ch] * invstd * invstd / count);
        gm[ch] = (float)(tot[ch] / count);
        scale[ch] *= w ? w[ch] : 1.0f;
    }
    float *dx = od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0], 1.0f, OD_SLOT_DX);
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
    for (int n = 0; n < s.n; n++) {
        size_t off = (size_t)n * c * hw;
        bn_image_dx(dx + off, dy + off, x + off, s.c, hw, b, mean, k, gm, scale);
    }
    od_output_end(ctx, a->dx[0], p->in_block, dx, a->accumulate[0], 1.0f);
    return BYOL_OK;
}

byol_status od_bn_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    int c = p->desc.in[0].c, affine = p->desc.u.bn.affine;
    float *dw = affine ? a->dweight : NULL, *db = affine ? a->dbias : NULL;
    if (!a->dx[0] && !dw && !db)
        return BYOL_OK;
    int mode = *saved_mode(a->saved, c), batch_stats = mode != MODE_RUNNING;
    if (mode == MODE_SYNC)
        return bn_backward_sync(ctx, p, a, dw, db);
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    const float *dy = od_input(ctx, a->dy, p->in_block, OD_SLOT_DY);
    int fused = p->desc.u.bn.fuse_relu;
    if (fused && !batch_stats)
        dy = bn_relu_mask(ctx, p, a, dy);
    /* oneDNN always writes diff_src; without a dx it goes to scratch and is dropped. */
    float *dx = a->dx[0] ? od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0], 1.0f,
                                           OD_SLOT_DX)
                         : od_slot(ctx, OD_SLOT_DX);
    float *small = od_slot(ctx, OD_SLOT_SMALL);
    int n = 5;
    dnnl_exec_arg_t args[10] = {
        {DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
        {DNNL_ARG_MEAN, od_bind(p, M_MEAN, a->saved)},
        {DNNL_ARG_VARIANCE, od_bind(p, M_VAR, (float *)a->saved + c)},
        {DNNL_ARG_DIFF_DST, od_bind(p, M_DDST, dy)},
        {DNNL_ARG_DIFF_SRC, od_bind(p, M_DSRC, dx)},
    };
    if (affine) {
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, od_bind(p, M_SCALE, a->weight)};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SCALE, od_bind(p, M_DSCALE, small)};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SHIFT, od_bind(p, M_DSHIFT, small + c)};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, od_bind(p, M_SHIFT, a->bias)};
    }
    if (fused && batch_stats)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, od_bind(p, M_WS, bn_ws(p, a->saved))};
    byol_status st = od_exec(ctx, p, batch_stats ? P_BWD_TRAIN : P_BWD_GLOBAL, n, args);
    if (st != BYOL_OK)
        return st;
    if (a->dx[0])
        od_output_end(ctx, a->dx[0], p->in_block, dx, a->accumulate[0], 1.0f);
    if (dw)
        od_add_into(dw, small, (size_t)c);
    if (db)
        od_add_into(db, small + c, (size_t)c);
    return BYOL_OK;
}
