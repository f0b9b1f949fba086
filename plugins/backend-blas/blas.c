/* backend-blas: the reference compute backend. Plain NCHW float32 tensors, im2col + OpenBLAS
 * sgemm, OpenMP loops. This file registers the ops table, owns tensors and plans, checks the
 * arguments of each call and dispatches to the kernels in conv.c, norm.c, pool.c and softmax.c,
 * and to the softmax backward and parameter updates shared with backend-onednn (plugins/common). */
#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blas_internal.h"
#include "kernels.h"

/* ---- messages ------------------------------------------------------------------------- */

/* "backend 'blas': <fmt...>", formatted by the host's va_list error slot. */
BYOL_PRINTF(3, 4)
static byol_status fail(const struct blas_ctx *ctx, byol_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->host->verror(s, "backend '" BLAS_NAME "'", fmt, ap);
    va_end(ap);
    return s;
}

/* ---- context -------------------------------------------------------------------------- */

/* All parallelism is ours: every gemm is split into blocks across ctx->threads OpenMP
 * threads, each calling a single-threaded sgemm. With OpenBLAS's own pool taking turns with
 * our OpenMP loops, the two spun against each other (convs ran 2-5x slower than on one thread
 * on a 2-core machine), and a threaded OpenBLAS called from several threads at once
 * serialises. The setting is process-wide. */
static void single_threaded_blas(void)
{
    openblas_set_num_threads(1);
}

static byol_status blas_create(const struct byol_host_api *host,
                               const struct byol_settings *settings, void **out)
{
    static const char *const allowed[] = {"name", "threads", "precision", NULL};
    struct blas_ctx tmp = {.host = host, .threads = 1};
    byol_status st = host->setting_check_keys(settings, allowed);
    if (st != BYOL_OK)
        return st;

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t threads;
    st = host->setting_int(settings, "threads", online > 0 ? online : 1, &threads);
    if (st != BYOL_OK)
        return st;
    if (threads < 1 || threads > 4096)
        return fail(&tmp, BYOL_ERR_INVALID, "threads = %lld: must be between 1 and 4096",
                    (long long)threads);

    const char *precision;
    st = host->setting_string(settings, "precision", "f32", &precision);
    if (st != BYOL_OK)
        return st;
    if (strcmp(precision, "f32") != 0)
        return fail(&tmp, BYOL_ERR_UNSUPPORTED,
                    "precision \"%s\" is not supported: this backend computes in f32 only",
                    precision);

    struct blas_ctx *ctx = host->alloc(sizeof *ctx);
    if (!ctx)
        return fail(&tmp, BYOL_ERR_NOMEM, "cannot allocate a context");
    ctx->host = host;
    ctx->threads = (int)threads;
    single_threaded_blas();
    *out = ctx;
    return BYOL_OK;
}

static void blas_destroy(void *vctx)
{
    struct blas_ctx *ctx = vctx;
    if (ctx)
        ctx->host->free(ctx);
}

static byol_status blas_set_threads(void *vctx, int threads)
{
    struct blas_ctx *ctx = vctx;
    if (threads < 1)
        return fail(ctx, BYOL_ERR_INVALID, "threads = %d: must be at least 1", threads);
    ctx->threads = threads;
    single_threaded_blas();
    return BYOL_OK;
}

/* ---- tensors: plain contiguous NCHW, so read and write are copies ----------------------- */

static byol_status blas_tensor_alloc(void *vctx, struct byol_tensor *t, const void *producer)
{
    struct blas_ctx *ctx = vctx;
    struct byol_shape s = t->shape;
    (void)producer; /* one layout for everything */
    if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1)
        return fail(ctx, BYOL_ERR_SHAPE, "cannot allocate a tensor of shape (%d,%d,%d,%d)", s.n,
                    s.c, s.h, s.w);
    size_t bytes = byol_shape_numel(s) * sizeof(float);
    t->data = ctx->host->alloc(bytes);
    if (!t->data)
        return fail(ctx, BYOL_ERR_NOMEM, "cannot allocate %zu bytes for a (%d,%d,%d,%d) tensor",
                    bytes, s.n, s.c, s.h, s.w);
    t->bytes = bytes;
    t->layout = NULL;
    return BYOL_OK;
}

static void blas_tensor_free(void *vctx, struct byol_tensor *t)
{
    struct blas_ctx *ctx = vctx;
    if (!t)
        return;
    ctx->host->free(t->data);
    t->data = NULL;
    t->bytes = 0;
}

static byol_status tensor_size(struct blas_ctx *ctx, const struct byol_tensor *t, size_t *bytes)
{
    *bytes = byol_shape_numel(t->shape) * sizeof(float);
    if (!t->data || t->bytes < *bytes)
        return fail(ctx, BYOL_ERR_INVALID, "tensor (%d,%d,%d,%d) has no storage of that size",
                    t->shape.n, t->shape.c, t->shape.h, t->shape.w);
    return BYOL_OK;
}

static byol_status blas_tensor_write(void *vctx, struct byol_tensor *t, const float *src)
{
    size_t bytes;
    byol_status st = tensor_size(vctx, t, &bytes);
    if (st == BYOL_OK)
        memcpy(t->data, src, bytes);
    return st;
}

static byol_status blas_tensor_read(void *vctx, const struct byol_tensor *t, float *dst)
{
    size_t bytes;
    byol_status st = tensor_size(vctx, t, &bytes);
    if (st == BYOL_OK)
        memcpy(dst, t->data, bytes);
    return st;
}

/* ---- plans ---------------------------------------------------------------------------- */

/* Output extent of a window sliding over `size`; < 1 when the window does not fit. */
static int out_extent(int size, int kernel, int stride, int pad)
{
    long long span = (long long)size + 2LL * pad - kernel;
    return span < 0 ? 0 : (int)(span / stride + 1);
}

static byol_status plan_conv(struct blas_ctx *ctx, struct blas_plan *p)
{
    const struct byol_op_desc *d = &p->desc;
    struct conv_geom *g = &p->conv;
    if (d->u.conv.out_channels < 1 || d->u.conv.kernel_h < 1 || d->u.conv.kernel_w < 1 ||
        d->u.conv.stride_h < 1 || d->u.conv.stride_w < 1 || d->u.conv.pad_h < 0 ||
        d->u.conv.pad_w < 0)
        return fail(ctx, BYOL_ERR_INVALID,
                    "conv2d: bad options (out %d, kernel %dx%d, "
                    "stride %dx%d, pad %dx%d)",
                    d->u.conv.out_channels, d->u.conv.kernel_h, d->u.conv.kernel_w,
                    d->u.conv.stride_h, d->u.conv.stride_w, d->u.conv.pad_h, d->u.conv.pad_w);
    *g = (struct conv_geom){
        .c = d->in[0].c,
        .h = d->in[0].h,
        .w = d->in[0].w,
        .o = d->u.conv.out_channels,
        .kh = d->u.conv.kernel_h,
        .kw = d->u.conv.kernel_w,
        .sh = d->u.conv.stride_h,
        .sw = d->u.conv.stride_w,
        .ph = d->u.conv.pad_h,
        .pw = d->u.conv.pad_w,
    };
    g->oh = out_extent(g->h, g->kh, g->sh, g->ph);
    g->ow = out_extent(g->w, g->kw, g->sw, g->pw);
    g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
    struct byol_shape want = {d->in[0].n, g->o, g->oh, g->ow};
    if (g->oh < 1 || g->ow < 1 || !byol_shape_eq(want, d->out))
        return fail(ctx, BYOL_ERR_SHAPE,
                    "conv2d: output (%d,%d,%d,%d) does not follow from "
                    "input (%d,%d,%d,%d)",
                    d->out.n, d->out.c, d->out.h, d->out.w, d->in[0].n, d->in[0].c, d->in[0].h,
                    d->in[0].w);
    if (!g->direct) {
        /* One scratch per thread; a later set_threads beyond this count runs with fewer. */
        p->slots = ctx->threads;
        size_t floats = (size_t)g->c * g->kh * g->kw * (size_t)g->oh * g->ow * p->slots;
        p->col = ctx->host->alloc(floats * sizeof(float));
        if (!p->col)
            return fail(ctx, BYOL_ERR_NOMEM,
                        "conv2d: cannot allocate %zu bytes of im2col "
                        "scratch",
                        floats * sizeof(float));
    }
    return BYOL_OK;
}

/* Check the options and shapes of one plan; sets the scratch the caller keeps per layer. */
static byol_status plan_check(struct blas_ctx *ctx, struct blas_plan *p, size_t *saved)
{
    const struct byol_op_desc *d = &p->desc;
    struct byol_shape in = d->in[0], out = d->out;
    int same = byol_shape_eq(in, out);
    *saved = 0;
    switch (d->kind) {
    case BYOL_OP_CONV2D: return plan_conv(ctx, p);
    case BYOL_OP_BATCHNORM:
        if (!(d->u.bn.eps >= 0.0f) || !(d->u.bn.momentum >= 0.0f && d->u.bn.momentum <= 1.0f))
            return fail(ctx, BYOL_ERR_INVALID, "batchnorm: eps %g or momentum %g out of range",
                        (double)d->u.bn.eps, (double)d->u.bn.momentum);
        *saved = batchnorm_saved_bytes(in.c);
        if (d->u.bn.fuse_relu && !(p->col = ctx->host->alloc(byol_shape_numel(in) * sizeof(float))))
            return fail(ctx, BYOL_ERR_NOMEM, "batchnorm: cannot allocate the relu scratch");
        if (d->bn_sync &&
            !(p->stats = ctx->host->alloc(batchnorm_sync_doubles(in.c) * sizeof(double))))
            return fail(ctx, BYOL_ERR_NOMEM, "batchnorm: cannot allocate the sync statistics");
        break;
    case BYOL_OP_RELU: break;
    case BYOL_OP_MAXPOOL: {
        int k = d->u.pool.kernel, s = d->u.pool.stride, pad = d->u.pool.pad;
        if (k < 1 || s < 1 || pad < 0 || pad > k / 2)
            return fail(ctx, BYOL_ERR_INVALID,
                        "maxpool: kernel %d, stride %d, pad %d: need "
                        "kernel, stride >= 1 and 0 <= pad <= kernel/2",
                        k, s, pad);
        struct byol_shape want = {in.n, in.c, out_extent(in.h, k, s, pad),
                                  out_extent(in.w, k, s, pad)};
        same = want.h >= 1 && want.w >= 1 && byol_shape_eq(want, out);
        *saved = byol_shape_numel(out) * sizeof(int32_t);
        break;
    }
    case BYOL_OP_AVGPOOL: same = byol_shape_eq((struct byol_shape){in.n, in.c, 1, 1}, out); break;
    case BYOL_OP_LINEAR:
        if (d->u.linear.out_features < 1)
            return fail(ctx, BYOL_ERR_INVALID, "linear: out_features %d", d->u.linear.out_features);
        same = byol_shape_eq((struct byol_shape){in.n, d->u.linear.out_features, 1, 1}, out);
        break;
    case BYOL_OP_ADD: same = same && byol_shape_eq(d->in[1], out); break;
    case BYOL_OP_FLATTEN:
        same = byol_shape_numel(in) == byol_shape_numel(out) && out.n == in.n && out.h == 1 &&
               out.w == 1;
        break;
    case BYOL_OP_SOFTMAX:
        if (d->u.softmax.group < 1 || in.h != 1 || in.w != 1 || in.c % d->u.softmax.group ||
            !(d->u.softmax.temperature > 0.0f))
            return fail(ctx, BYOL_ERR_INVALID,
                        "softmax: group %d, temperature %g on input (%d,%d,%d,%d): need "
                        "(N,F,1,1) with F a multiple of group and temperature > 0",
                        d->u.softmax.group, (double)d->u.softmax.temperature, in.n, in.c, in.h,
                        in.w);
        break;
    default: return fail(ctx, BYOL_ERR_UNSUPPORTED, "op kind %d is not supported", (int)d->kind);
    }
    if (!same)
        return fail(ctx, BYOL_ERR_SHAPE,
                    "%s: output (%d,%d,%d,%d) does not follow from input "
                    "(%d,%d,%d,%d)",
                    byol_op_kind_name(d->kind), out.n, out.c, out.h, out.w, in.n, in.c, in.h, in.w);
    return BYOL_OK;
}

/* The kernels each op kind runs here: OpenBLAS sgemm where the work is a matrix product,
 * loops in C (vectorised by the compiler) for the rest. */
static void blas_plan_describe(void *vctx, const void *vplan, char *buf, size_t size)
{
    (void)vctx;
    const struct blas_plan *p = vplan;
    const char *what = "fwd=c bwd=c";
    if (p->desc.kind == BYOL_OP_CONV2D)
        what = "fwd=im2col+sgemm bwd_d=sgemm+col2im bwd_w=im2col+sgemm";
    else if (p->desc.kind == BYOL_OP_LINEAR)
        what = "fwd=sgemm bwd=sgemm";
    snprintf(buf, size, "%s", what);
}

static void blas_plan_destroy(void *vctx, void *vplan)
{
    struct blas_ctx *ctx = vctx;
    struct blas_plan *p = vplan;
    if (!p)
        return;
    ctx->host->free(p->col);
    ctx->host->free(p->stats);
    ctx->host->free(p);
}

static byol_status blas_plan_create(void *vctx, const struct byol_op_desc *desc, void **out,
                                    size_t *saved_bytes)
{
    struct blas_ctx *ctx = vctx;
    struct byol_shape in = desc->in[0];
    if (in.n < 1 || in.c < 1 || in.h < 1 || in.w < 1)
        return fail(ctx, BYOL_ERR_SHAPE, "%s: bad input shape (%d,%d,%d,%d)",
                    byol_op_kind_name(desc->kind), in.n, in.c, in.h, in.w);
    struct blas_plan *p = ctx->host->alloc(sizeof *p);
    if (!p)
        return fail(ctx, BYOL_ERR_NOMEM, "cannot allocate a plan");
    p->desc = *desc;
    byol_status st = plan_check(ctx, p, saved_bytes);
    if (st != BYOL_OK) {
        blas_plan_destroy(ctx, p);
        return st;
    }
    *out = p;
    return BYOL_OK;
}

/* ---- argument checks ------------------------------------------------------------------ */

/* A plan is made for a batch size; any smaller batch of the same sample shape runs too (its
 * scratch is per sample or per channel, and `saved` only shrinks). */
static byol_status check_tensor(struct blas_ctx *ctx, const struct blas_plan *p,
                                const struct byol_tensor *t, struct byol_shape planned, int n,
                                const char *what)
{
    const char *op = byol_op_kind_name(p->desc.kind);
    if (!t || !t->data)
        return fail(ctx, BYOL_ERR_INVALID, "%s: %s is missing", op, what);
    struct byol_shape s = t->shape;
    planned.n = n;
    if (!byol_shape_eq(s, planned))
        return fail(ctx, BYOL_ERR_SHAPE, "%s: %s is (%d,%d,%d,%d), expected (%d,%d,%d,%d)", op,
                    what, s.n, s.c, s.h, s.w, planned.n, planned.c, planned.h, planned.w);
    return BYOL_OK;
}

static byol_status batch_size(struct blas_ctx *ctx, const struct blas_plan *p,
                              const struct byol_tensor *t, const char *what, int *n)
{
    if (!t || !t->data)
        return fail(ctx, BYOL_ERR_INVALID, "%s: %s is missing", byol_op_kind_name(p->desc.kind),
                    what);
    *n = t->shape.n;
    if (*n < 1 || *n > p->desc.in[0].n)
        return fail(ctx, BYOL_ERR_SHAPE, "%s: batch of %d, but the plan was made for %d",
                    byol_op_kind_name(p->desc.kind), *n, p->desc.in[0].n);
    return BYOL_OK;
}

static byol_status need(struct blas_ctx *ctx, const struct blas_plan *p, const void *ptr,
                        const char *what)
{
    if (ptr)
        return BYOL_OK;
    return fail(ctx, BYOL_ERR_INVALID, "%s: %s is missing", byol_op_kind_name(p->desc.kind), what);
}

/* ---- forward -------------------------------------------------------------------------- */

static int conv_threads(const struct blas_ctx *ctx, const struct blas_plan *p)
{
    return p->conv.direct || ctx->threads < p->slots ? ctx->threads : p->slots;
}

/* The relu of a batch norm with fuse_relu: y = max(y, 0) in place, and its backward. */
static void relu_inplace(float *y, size_t n, int threads)
{
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

static void relu_mask(float *out, const float *dy, const float *y, size_t n, int threads)
{
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static byol_status forward_batchnorm(struct blas_ctx *ctx, const struct blas_plan *p, int training,
                                     const struct byol_op_args *a, int n)
{
    const struct byol_op_desc *d = &p->desc;
    struct byol_shape s = d->in[0];
    int hw = s.h * s.w;
    const float *w = d->u.bn.affine ? a->weight : NULL, *b = d->u.bn.affine ? a->bias : NULL;
    byol_status st = need(ctx, p, a->saved, "saved");
    if (st == BYOL_OK && d->u.bn.affine) {
        st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK)
            st = need(ctx, p, a->bias, "bias");
    }
    if (st != BYOL_OK)
        return st;
    if (!a->running_mean != !a->running_var)
        return fail(ctx, BYOL_ERR_INVALID,
                    "batchnorm: give both running_mean and running_var "
                    "or neither");
    int tracked = a->running_mean != NULL;
    /* SyncBatchNorm syncs in training only, as PyTorch's does. */
    const struct byol_allreduce *sync = training ? d->bn_sync : NULL;
    if (training && tracked && !sync && (long long)n * hw < 2)
        return fail(ctx, BYOL_ERR_SHAPE,
                    "batchnorm: training needs more than one value per "
                    "channel, got input (%d,%d,%d,%d)",
                    n, s.c, s.h, s.w);
    if (sync) {
        /* The reducer's message stands when it fails. The count check waits for the global
         * count: one process's batch may be a single sample, and every process must take part
         * in both reductions whatever its own data. */
        st = batchnorm_sync_stats(p->stats, a->x[0]->data, sync, n, s.c, hw, ctx->threads);
        if (st != BYOL_OK)
            return st;
        if (tracked && p->stats[s.c] < 2.0)
            return fail(ctx, BYOL_ERR_SHAPE,
                        "batchnorm: training needs more than one value per channel, got %.0f "
                        "over all processes",
                        p->stats[s.c]);
        batchnorm_forward_sync(a->y->data, a->saved, a->running_mean, a->running_var, a->x[0]->data,
                               w, b, p->stats, n, s.c, hw, d->u.bn.eps, d->u.bn.momentum,
                               ctx->threads);
    } else if (training || !tracked) {
        /* Without running statistics PyTorch normalises with batch statistics in both modes. */
        batchnorm_forward_train(a->y->data, a->saved, training ? a->running_mean : NULL,
                                training ? a->running_var : NULL, a->x[0]->data, w, b, n, s.c, hw,
                                d->u.bn.eps, d->u.bn.momentum, ctx->threads);
    } else {
        batchnorm_forward_eval(a->y->data, a->saved, a->x[0]->data, w, b, a->running_mean,
                               a->running_var, n, s.c, hw, d->u.bn.eps, ctx->threads);
    }
    if (d->u.bn.fuse_relu)
        relu_inplace(a->y->data, (size_t)n * s.c * hw, ctx->threads);
    return BYOL_OK;
}

static byol_status forward_op(struct blas_ctx *ctx, struct blas_plan *p, int training,
                              const struct byol_op_args *a, int n)
{
    const struct byol_op_desc *d = &p->desc;
    struct byol_shape in = d->in[0], out = d->out;
    const float *x = a->x[0]->data;
    float *y = a->y->data;
    byol_status st = BYOL_OK;
    switch (d->kind) {
    case BYOL_OP_CONV2D:
        st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK && d->u.conv.has_bias)
            st = need(ctx, p, a->bias, "bias");
        if (st == BYOL_OK)
            conv2d_forward(y, p->col, x, a->weight, d->u.conv.has_bias ? a->bias : NULL, n,
                           &p->conv, conv_threads(ctx, p));
        return st;
    case BYOL_OP_BATCHNORM: return forward_batchnorm(ctx, p, training, a, n);
    case BYOL_OP_RELU:
        relu_forward(y, x, (size_t)n * in.c * in.h * in.w, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_MAXPOOL:
        st = need(ctx, p, a->saved, "saved");
        if (st == BYOL_OK)
            maxpool_forward(y, a->saved, x, n, in.c, in.h, in.w, out.h, out.w, d->u.pool.kernel,
                            d->u.pool.stride, d->u.pool.pad, ctx->threads);
        return st;
    case BYOL_OP_AVGPOOL:
        avgpool_forward(y, x, n * in.c, in.h * in.w, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_LINEAR:
        st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK && d->u.linear.has_bias)
            st = need(ctx, p, a->bias, "bias");
        if (st == BYOL_OK)
            linear_forward(y, x, a->weight, d->u.linear.has_bias ? a->bias : NULL, n,
                           in.c * in.h * in.w, out.c, ctx->threads);
        return st;
    case BYOL_OP_ADD:
        add_forward(y, x, a->x[1]->data, (size_t)n * in.c * in.h * in.w, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_FLATTEN:
        copy_grad(y, x, (size_t)n * in.c * in.h * in.w, 0, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_SOFTMAX:
        softmax_forward(y, x, (size_t)n * in.c / d->u.softmax.group, d->u.softmax.group,
                        d->u.softmax.temperature, ctx->threads);
        return BYOL_OK;
    }
    return fail(ctx, BYOL_ERR_UNSUPPORTED, "op kind %d is not supported", (int)d->kind);
}

static byol_status blas_forward(void *vctx, void *vplan, int training, const struct byol_op_args *a)
{
    struct blas_ctx *ctx = vctx;
    struct blas_plan *p = vplan;
    int n = 0;
    byol_status st = batch_size(ctx, p, a->x[0], "x[0]", &n);
    if (st == BYOL_OK)
        st = check_tensor(ctx, p, a->x[0], p->desc.in[0], n, "x[0]");
    if (st == BYOL_OK && p->desc.kind == BYOL_OP_ADD)
        st = check_tensor(ctx, p, a->x[1], p->desc.in[1], n, "x[1]");
    if (st == BYOL_OK)
        st = check_tensor(ctx, p, a->y, p->desc.out, n, "y");
    if (st != BYOL_OK)
        return st;
    return forward_op(ctx, p, training, a, n);
}

/* ---- backward ------------------------------------------------------------------------- */

static byol_status backward_conv(struct blas_ctx *ctx, struct blas_plan *p,
                                 const struct byol_op_args *a, int n)
{
    int has_bias = p->desc.u.conv.has_bias;
    float *dbias = has_bias ? a->dbias : NULL;
    byol_status st = BYOL_OK;
    if (a->dx[0] || a->dweight)
        st = need(ctx, p, a->weight, "weight");
    if (st == BYOL_OK && a->dweight)
        st = check_tensor(ctx, p, a->x[0], p->desc.in[0], n, "x[0]");
    if (st != BYOL_OK)
        return st;
    /* The im2col scratch is shared by both passes; each fills it before use. */
    if (a->dx[0])
        conv2d_backward_data(a->dx[0]->data, p->col, a->dy->data, a->weight, n, a->accumulate[0],
                             &p->conv, conv_threads(ctx, p));
    if (a->dweight || dbias)
        conv2d_backward_weights(a->dweight, dbias, p->col, a->dy->data,
                                a->dweight ? a->x[0]->data : NULL, n, &p->conv,
                                conv_threads(ctx, p));
    return BYOL_OK;
}

static byol_status backward_batchnorm(struct blas_ctx *ctx, struct blas_plan *p,
                                      const struct byol_op_args *a, int n)
{
    const struct byol_op_desc *d = &p->desc;
    int affine = d->u.bn.affine;
    float *dw = affine ? a->dweight : NULL, *db = affine ? a->dbias : NULL;
    if (!a->dx[0] && !dw && !db)
        return BYOL_OK;
    byol_status st = need(ctx, p, a->saved, "saved");
    if (st == BYOL_OK)
        st = check_tensor(ctx, p, a->x[0], d->in[0], n, "x[0]");
    if (st == BYOL_OK && affine && a->dx[0])
        st = need(ctx, p, a->weight, "weight");
    if (st == BYOL_OK && d->u.bn.fuse_relu)
        st = check_tensor(ctx, p, a->y, d->out, n, "y");
    if (st != BYOL_OK)
        return st;
    const float *dy = a->dy->data;
    if (d->u.bn.fuse_relu) {
        relu_mask(p->col, a->dy->data, a->y->data, (size_t)n * d->in[0].c * d->in[0].h * d->in[0].w,
                  ctx->threads);
        dy = p->col;
    }
    int c = d->in[0].c, hw = d->in[0].h * d->in[0].w;
    const float *w = affine ? a->weight : NULL;
    float *dx = a->dx[0] ? a->dx[0]->data : NULL;
    if (batchnorm_saved_mode(a->saved, c) != BLAS_BN_SYNC) {
        batchnorm_backward(dx, dw, db, dy, a->x[0]->data, w, a->saved, n, c, hw, a->accumulate[0],
                           ctx->threads);
        return BYOL_OK;
    }
    /* After a synced forward dx needs the gradient sums of every process; dweight and dbias
     * stay this process's. Only dx reads the reduced sums, so the reduction runs when dx is
     * asked for, which the network's structure decides alike on every process. */
    batchnorm_backward_sums(p->stats, dw, db, dy, a->x[0]->data, a->saved, n, c, hw, ctx->threads);
    if (!dx)
        return BYOL_OK;
    const struct byol_allreduce *sync = d->bn_sync;
    st = sync->sum_f64(sync->ctx, p->stats, batchnorm_sync_doubles(c));
    if (st != BYOL_OK)
        return st;
    batchnorm_backward_sync_dx(dx, dy, a->x[0]->data, w, a->saved, p->stats, n, c, hw,
                               a->accumulate[0], ctx->threads);
    return BYOL_OK;
}

static byol_status backward_op(struct blas_ctx *ctx, struct blas_plan *p,
                               const struct byol_op_args *a, int n)
{
    const struct byol_op_desc *d = &p->desc;
    struct byol_shape in = d->in[0], out = d->out;
    size_t numel = (size_t)n * in.c * in.h * in.w;
    float *dx = a->dx[0] ? a->dx[0]->data : NULL;
    const float *dy = a->dy->data;
    int acc = a->accumulate[0];
    byol_status st = BYOL_OK;
    switch (d->kind) {
    case BYOL_OP_CONV2D: return backward_conv(ctx, p, a, n);
    case BYOL_OP_BATCHNORM: return backward_batchnorm(ctx, p, a, n);
    case BYOL_OP_RELU: {
        if (!dx)
            return BYOL_OK;
        /* The output has the sign that decides; the input works as well if y is not kept. */
        const struct byol_tensor *ref = a->y && a->y->data ? a->y : a->x[0];
        st = check_tensor(ctx, p, ref, in, n, "y");
        if (st == BYOL_OK)
            relu_backward(dx, dy, ref->data, numel, acc, ctx->threads);
        return st;
    }
    case BYOL_OP_MAXPOOL:
        if (!dx)
            return BYOL_OK;
        st = need(ctx, p, a->saved, "saved");
        if (st == BYOL_OK)
            maxpool_backward(dx, dy, a->saved, n, in.c, in.h, in.w, out.h, out.w, acc,
                             ctx->threads);
        return st;
    case BYOL_OP_AVGPOOL:
        if (dx)
            avgpool_backward(dx, dy, n * in.c, in.h * in.w, acc, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_LINEAR: {
        float *dbias = d->u.linear.has_bias ? a->dbias : NULL;
        if (dx || a->dweight)
            st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK && a->dweight)
            st = check_tensor(ctx, p, a->x[0], in, n, "x[0]");
        if (st == BYOL_OK)
            linear_backward(dx, a->dweight, dbias, dy, a->dweight ? a->x[0]->data : NULL, a->weight,
                            n, in.c * in.h * in.w, out.c, acc, ctx->threads);
        return st;
    }
    case BYOL_OP_ADD:
        if (dx)
            copy_grad(dx, dy, numel, acc, ctx->threads);
        if (a->dx[1])
            copy_grad(a->dx[1]->data, dy, numel, a->accumulate[1], ctx->threads);
        return BYOL_OK;
    case BYOL_OP_FLATTEN:
        if (dx)
            copy_grad(dx, dy, numel, acc, ctx->threads);
        return BYOL_OK;
    case BYOL_OP_SOFTMAX:
        if (!dx)
            return BYOL_OK;
        st = check_tensor(ctx, p, a->y, out, n, "y");
        if (st == BYOL_OK)
            softmax_backward(dx, dy, a->y->data, numel / d->u.softmax.group, d->u.softmax.group,
                             d->u.softmax.temperature, acc, ctx->threads);
        return st;
    }
    return fail(ctx, BYOL_ERR_UNSUPPORTED, "op kind %d is not supported", (int)d->kind);
}

static byol_status blas_backward(void *vctx, void *vplan, const struct byol_op_args *a)
{
    struct blas_ctx *ctx = vctx;
    struct blas_plan *p = vplan;
    int n = 0;
    byol_status st = batch_size(ctx, p, a->dy, "dy", &n);
    if (st == BYOL_OK)
        st = check_tensor(ctx, p, a->dy, p->desc.out, n, "dy");
    if (st == BYOL_OK && a->dx[1] && p->desc.kind != BYOL_OP_ADD)
        st = fail(ctx, BYOL_ERR_INVALID, "%s: has one input, but dx[1] was given",
                  byol_op_kind_name(p->desc.kind));
    for (int i = 0; i < 2 && st == BYOL_OK; i++)
        if (a->dx[i])
            st = check_tensor(ctx, p, a->dx[i], p->desc.in[i], n, i ? "dx[1]" : "dx[0]");
    if (st != BYOL_OK)
        return st;
    return backward_op(ctx, p, a, n);
}

/* ---- parameter updates ---------------------------------------------------------------- */

static byol_status blas_adam(void *vctx, float *param, const float *grad, float *m, float *v,
                             size_t n, const struct byol_adam_hparams *h)
{
    struct blas_ctx *ctx = vctx;
    if (h->step < 1)
        return fail(ctx, BYOL_ERR_INVALID, "adam: step %lld, steps count from 1",
                    (long long)h->step);
    adam_update(param, m, v, grad, n, h, ctx->threads);
    return BYOL_OK;
}

static byol_status blas_sgd(void *vctx, float *param, const float *grad, float *momentum_buf,
                            size_t n, const struct byol_sgd_hparams *h)
{
    struct blas_ctx *ctx = vctx;
    if (h->momentum != 0.0 && !momentum_buf && n > 0)
        return fail(ctx, BYOL_ERR_INVALID, "sgd: momentum %g needs a momentum buffer", h->momentum);
    sgd_update(param, momentum_buf, grad, n, h, ctx->threads);
    return BYOL_OK;
}

static byol_status blas_ema(void *vctx, float *target, const float *online, size_t n, double tau)
{
    struct blas_ctx *ctx = vctx;
    ema_update(target, online, n, tau, ctx->threads);
    return BYOL_OK;
}

/* ---- registration --------------------------------------------------------------------- */

static const struct byol_backend_ops blas_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = BLAS_NAME,
    .version = "0.1.0",
    .description = "reference backend: plain NCHW float32, im2col + OpenBLAS sgemm, OpenMP",
    .create = blas_create,
    .destroy = blas_destroy,
    .tensor_alloc = blas_tensor_alloc,
    .tensor_free = blas_tensor_free,
    .tensor_write = blas_tensor_write,
    .tensor_read = blas_tensor_read,
    .plan_create = blas_plan_create,
    .plan_destroy = blas_plan_destroy,
    .forward = blas_forward,
    .backward = blas_backward,
    .adam_update = blas_adam,
    .sgd_update = blas_sgd,
    .ema_update = blas_ema,
    .set_threads = blas_set_threads,
    .flags = BYOL_BACKEND_FUSES_BN_RELU | BYOL_BACKEND_SYNC_BN,
    .plan_describe = blas_plan_describe,
};

BYOL_PLUGIN_INIT(host, reg)
{
    byol_status st =
        byol_plugin_check_host(host, "backend '" BLAS_NAME "'", BYOL_HOST_NEEDS(verror));
    return st == BYOL_OK ? host->register_ops(reg, BYOL_PLUGIN_BACKEND, &blas_ops) : st;
}
