/* backend-onednn: the compute backend on oneDNN primitives. This file registers the ops table,
 * owns the context (engine, stream, threads), tensors and plans, checks each call's arguments
 * and dispatches to conv.c, norm.c, pool.c, simple.c and linear.c. The parameter updates are
 * the kernels shared with backend-blas (plugins/common), which match PyTorch bit for bit. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels.h"
#include "onednn_internal.h"

/* ---- messages ------------------------------------------------------------------------- */

/* "backend 'onednn': <fmt...>", formatted by the host's va_list error slot. */
byol_status od_fail(const struct od_ctx *ctx, byol_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->host->verror(s, "backend '" OD_NAME "'", fmt, ap);
    va_end(ap);
    return s;
}

byol_status od_dnnl_fail(const struct od_ctx *ctx, const struct od_plan *p, const char *call,
                         dnnl_status_t s)
{
    byol_status st = s == dnnl_out_of_memory   ? BYOL_ERR_NOMEM
                     : s == dnnl_unimplemented ? BYOL_ERR_UNSUPPORTED
                                               : BYOL_ERR_INTERNAL;
    return od_fail(ctx, st, "%s: %s failed with oneDNN status %d",
                   p ? byol_op_kind_name(p->desc.kind) : "context", call, (int)s);
}

/* ---- context -------------------------------------------------------------------------- */

/* oneDNN (Debian builds it on OpenMP) reads the calling thread's OpenMP thread count, both
 * when it sizes a primitive's work split and when it runs it. */
static void use_threads(const struct od_ctx *ctx)
{
    if (omp_get_max_threads() != ctx->threads)
        omp_set_num_threads(ctx->threads);
}

/* The channel block that oneDNN's fastest f32 kernels on this CPU read and write. */
static int preferred_block(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core)
        return 16;
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2)
        return 8;
    return 1;
}

static byol_status read_settings(const struct od_ctx *tmp, const struct byol_settings *settings,
                                 int *threads, int *bf16)
{
    static const char *const allowed[] = {"name", "threads", "precision", NULL};
    const struct byol_host_api *host = tmp->host;
    byol_status st = host->setting_check_keys(settings, allowed);
    if (st != BYOL_OK)
        return st;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t n;
    st = host->setting_int(settings, "threads", online > 0 ? online : 1, &n);
    if (st != BYOL_OK)
        return st;
    if (n < 1 || n > 4096)
        return od_fail(tmp, BYOL_ERR_INVALID, "threads = %lld: must be between 1 and 4096",
                       (long long)n);
    *threads = (int)n;
    const char *precision;
    st = host->setting_string(settings, "precision", "f32", &precision);
    if (st != BYOL_OK)
        return st;
    *bf16 = strcmp(precision, "bf16") == 0;
    if (!*bf16 && strcmp(precision, "f32") != 0)
        return od_fail(tmp, BYOL_ERR_INVALID, "precision = \"%s\": must be \"f32\" or \"bf16\"",
                       precision);
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if (*bf16 && (isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16)
        return od_fail(tmp, BYOL_ERR_UNSUPPORTED,
                       "precision = \"bf16\": this CPU has no AVX512-BF16 (oneDNN ISA 0x%x)", isa);
    return BYOL_OK;
}

static void od_destroy(void *vctx)
{
    struct od_ctx *ctx = vctx;
    if (!ctx)
        return;
    dnnl_stream_destroy(ctx->stream);
    dnnl_engine_destroy(ctx->engine);
    od_arena_free(ctx);
    ctx->host->free(ctx);
}

static byol_status od_create(const struct byol_host_api *host, const struct byol_settings *settings,
                             void **out)
{
    struct od_ctx tmp = {.host = host, .threads = 1};
    int threads = 1, bf16 = 0;
    byol_status st = read_settings(&tmp, settings, &threads, &bf16);
    if (st != BYOL_OK)
        return st;
    struct od_ctx *ctx = host->alloc(sizeof *ctx);
    if (!ctx)
        return od_fail(&tmp, BYOL_ERR_NOMEM, "cannot allocate a context");
    *ctx =
        (struct od_ctx){.host = host, .threads = threads, .block = preferred_block(), .bf16 = bf16};
    use_threads(ctx);
    dnnl_status_t s = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        od_destroy(ctx);
        return od_dnnl_fail(&tmp, NULL, "dnnl_engine_create / dnnl_stream_create", s);
    }
    *out = ctx;
    return BYOL_OK;
}

static byol_status od_set_threads(void *vctx, int threads)
{
    struct od_ctx *ctx = vctx;
    if (threads < 1)
        return od_fail(ctx, BYOL_ERR_INVALID, "threads = %d: must be at least 1", threads);
    ctx->threads = threads;
    use_threads(ctx);
    return BYOL_OK;
}

/* ---- tensors -------------------------------------------------------------------------- */

/* A tensor in the producer's output layout (if it fits the shape; inputs from outside are
 * plain), in bfloat16 when `bf16`. */
static byol_status alloc_tensor(struct od_ctx *ctx, struct byol_tensor *t, const void *producer,
                                int bf16)
{
    struct byol_shape s = t->shape;
    if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1)
        return od_fail(ctx, BYOL_ERR_SHAPE, "cannot allocate a tensor of shape (%d,%d,%d,%d)", s.n,
                       s.c, s.h, s.w);
    int block = producer ? ((const struct od_plan *)producer)->out_block : 1;
    if (s.c % block != 0)
        block = 1;
    size_t bytes = byol_shape_numel(s) * (bf16 ? sizeof(uint16_t) : sizeof(float));
    t->data = ctx->host->alloc(bytes);
    if (!t->data)
        return od_fail(ctx, BYOL_ERR_NOMEM, "cannot allocate %zu bytes for a (%d,%d,%d,%d) tensor",
                       bytes, s.n, s.c, s.h, s.w);
    t->bytes = bytes;
    t->layout = (void *)od_layout_of(block, bf16);
    return BYOL_OK;
}

/* Activations: bfloat16 where the precision and the producer say so (storage.c). */
static byol_status od_tensor_alloc(void *vctx, struct byol_tensor *t, const void *producer)
{
    struct od_ctx *ctx = vctx;
    return alloc_tensor(ctx, t, producer, od_stores_bf16(ctx, producer, t->shape));
}

/* Gradients: always float32. */
static byol_status od_grad_alloc(void *vctx, struct byol_tensor *t, const void *producer)
{
    return alloc_tensor(vctx, t, producer, 0);
}

static void od_tensor_free(void *vctx, struct byol_tensor *t)
{
    struct od_ctx *ctx = vctx;
    if (!t)
        return;
    ctx->host->free(t->data);
    t->data = NULL;
    t->bytes = 0;
    t->layout = NULL;
}

static byol_status tensor_ok(struct od_ctx *ctx, const struct byol_tensor *t)
{
    size_t elem = od_tensor_bf16(t) ? sizeof(uint16_t) : sizeof(float);
    if (!t->data || t->bytes < byol_shape_numel(t->shape) * elem)
        return od_fail(ctx, BYOL_ERR_INVALID, "tensor (%d,%d,%d,%d) has no storage of that size",
                       t->shape.n, t->shape.c, t->shape.h, t->shape.w);
    return BYOL_OK;
}

static byol_status od_tensor_write(void *vctx, struct byol_tensor *t, const float *src)
{
    struct od_ctx *ctx = vctx;
    byol_status st = tensor_ok(ctx, t);
    if (st != BYOL_OK)
        return st;
    if (!od_tensor_bf16(t)) {
        od_convert(t->data, od_tensor_block(t), src, 1, t->shape, 1.0f, 0, ctx->threads);
        return BYOL_OK;
    }
    od_bf16_from_plain((uint16_t *)t->data, od_tensor_block(t), src, t->shape, ctx->threads);
    return BYOL_OK;
}

static byol_status od_tensor_read(void *vctx, const struct byol_tensor *t, float *dst)
{
    struct od_ctx *ctx = vctx;
    byol_status st = tensor_ok(ctx, t);
    if (st != BYOL_OK)
        return st;
    if (od_tensor_bf16(t))
        od_bf16_to_plain(dst, (const uint16_t *)t->data, od_tensor_block(t), t->shape,
                         ctx->threads);
    else
        od_convert(dst, 1, t->data, od_tensor_block(t), t->shape, 1.0f, 0, ctx->threads);
    return BYOL_OK;
}

/* ---- plans ---------------------------------------------------------------------------- */

static void od_plan_destroy(void *vctx, void *vplan)
{
    struct od_ctx *ctx = vctx;
    struct od_plan *p = vplan;
    if (!p)
        return;
    for (int i = 0; i < OD_MAX_PRIMS; i++) {
        dnnl_primitive_destroy(p->prim[i]);
        dnnl_memory_destroy(p->pad[i]);
    }
    for (int i = 0; i < OD_MAX_MEMS; i++)
        dnnl_memory_destroy(p->mem[i]);
    ctx->host->free(p);
}

static byol_status plan_op(struct od_ctx *ctx, struct od_plan *p)
{
    switch (p->desc.kind) {
    case BYOL_OP_CONV2D: return od_conv_plan(ctx, p);
    case BYOL_OP_BATCHNORM: return od_bn_plan(ctx, p);
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL: return od_pool_plan(ctx, p);
    case BYOL_OP_LINEAR: return od_linear_plan(ctx, p);
    case BYOL_OP_RELU:
    case BYOL_OP_ADD:
    case BYOL_OP_FLATTEN:
    case BYOL_OP_SOFTMAX: return od_simple_plan(ctx, p);
    }
    return od_fail(ctx, BYOL_ERR_UNSUPPORTED, "op kind %d is not supported", (int)p->desc.kind);
}

static byol_status od_plan_create(void *vctx, const struct byol_op_desc *desc, void **out,
                                  size_t *saved_bytes)
{
    struct od_ctx *ctx = vctx;
    struct byol_shape in = desc->in[0];
    if (in.n < 1 || in.c < 1 || in.h < 1 || in.w < 1)
        return od_fail(ctx, BYOL_ERR_SHAPE, "%s: bad input shape (%d,%d,%d,%d)",
                       byol_op_kind_name(desc->kind), in.n, in.c, in.h, in.w);
    struct od_plan *p = ctx->host->alloc(sizeof *p);
    if (!p)
        return od_fail(ctx, BYOL_ERR_NOMEM, "cannot allocate a plan");
    p->desc = *desc;
    p->in_block = od_canonical_block(ctx, desc->in[0]);
    p->out_block = od_canonical_block(ctx, desc->out);
    p->need[OD_SLOT_IN0] = p->need[OD_SLOT_IN1] = p->need[OD_SLOT_DX] =
        byol_shape_numel(desc->in[0]) * sizeof(float);
    p->need[OD_SLOT_DY] = byol_shape_numel(desc->out) * sizeof(float);
    use_threads(ctx);
    byol_status st = plan_op(ctx, p);
    od_views_reserve(ctx, p);
    if (st == BYOL_OK)
        st = od_arena_reserve(ctx, p->need);
    if (st != BYOL_OK) {
        od_plan_destroy(ctx, p);
        return st;
    }
    *saved_bytes = p->saved_bytes;
    *out = p;
    return BYOL_OK;
}

static void od_describe(void *vctx, const void *vplan, char *buf, size_t size)
{
    (void)vctx;
    od_plan_describe(vplan, buf, size);
}

/* ---- argument checks ------------------------------------------------------------------ */

/* Primitives are made for the plan's batch, so every tensor has exactly the planned shape. */
static byol_status check_tensor(struct od_ctx *ctx, const struct od_plan *p,
                                const struct byol_tensor *t, struct byol_shape planned,
                                const char *what)
{
    const char *op = byol_op_kind_name(p->desc.kind);
    if (!t || !t->data)
        return od_fail(ctx, BYOL_ERR_INVALID, "%s: %s is missing", op, what);
    struct byol_shape s = t->shape;
    if (!byol_shape_eq(s, planned))
        return od_fail(ctx, BYOL_ERR_SHAPE,
                       "%s: %s is (%d,%d,%d,%d), expected (%d,%d,%d,%d) (the plan's batch)", op,
                       what, s.n, s.c, s.h, s.w, planned.n, planned.c, planned.h, planned.w);
    return BYOL_OK;
}

static byol_status need(struct od_ctx *ctx, const struct od_plan *p, const void *ptr,
                        const char *what)
{
    if (ptr)
        return BYOL_OK;
    return od_fail(ctx, BYOL_ERR_INVALID, "%s: %s is missing", byol_op_kind_name(p->desc.kind),
                   what);
}

/* The parameters and scratch an op reads: forward, or backward with the gradients asked. */
static byol_status check_params(struct od_ctx *ctx, const struct od_plan *p,
                                const struct byol_op_args *a, int backward)
{
    const struct byol_op_desc *d = &p->desc;
    int dx = a->dx[0] != NULL, grads = dx || a->dweight || a->dbias;
    byol_status st = BYOL_OK;
    switch (d->kind) {
    case BYOL_OP_CONV2D:
    case BYOL_OP_LINEAR: {
        int has_bias = d->kind == BYOL_OP_CONV2D ? d->u.conv.has_bias : d->u.linear.has_bias;
        if (!backward || dx || a->dweight)
            st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK && !backward && has_bias)
            st = need(ctx, p, a->bias, "bias");
        if (st == BYOL_OK && backward && (a->dweight || (has_bias && a->dbias)))
            st = check_tensor(ctx, p, a->x[0], d->in[0], "x[0]");
        return st;
    }
    case BYOL_OP_BATCHNORM:
        if (backward && !grads)
            return BYOL_OK;
        st = need(ctx, p, a->saved, "saved");
        if (st == BYOL_OK && d->u.bn.affine)
            st = need(ctx, p, a->weight, "weight");
        if (st == BYOL_OK && d->u.bn.affine) /* oneDNN's backward asks for it too */
            st = need(ctx, p, a->bias, "bias");
        if (st == BYOL_OK && backward)
            st = check_tensor(ctx, p, a->x[0], d->in[0], "x[0]");
        if (st == BYOL_OK && backward && d->u.bn.fuse_relu)
            st = check_tensor(ctx, p, a->y, d->out, "y");
        return st;
    case BYOL_OP_MAXPOOL: return need(ctx, p, a->saved, "saved");
    case BYOL_OP_SOFTMAX: return backward && dx ? check_tensor(ctx, p, a->y, d->out, "y") : BYOL_OK;
    default: return BYOL_OK;
    }
}

/* ---- forward and backward ------------------------------------------------------------- */

static byol_status run_forward(struct od_ctx *ctx, struct od_plan *p, int training,
                               const struct byol_op_args *a)
{
    switch (p->desc.kind) {
    case BYOL_OP_CONV2D: return od_conv_forward(ctx, p, a);
    case BYOL_OP_BATCHNORM: return od_bn_forward(ctx, p, training, a);
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL: return od_pool_forward(ctx, p, a);
    case BYOL_OP_LINEAR: return od_linear_forward(ctx, p, a);
    default: return od_simple_forward(ctx, p, a);
    }
}

static byol_status run_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    switch (p->desc.kind) {
    case BYOL_OP_CONV2D: return od_conv_backward(ctx, p, a);
    case BYOL_OP_BATCHNORM: return od_bn_backward(ctx, p, a);
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL: return od_pool_backward(ctx, p, a);
    case BYOL_OP_LINEAR: return od_linear_backward(ctx, p, a);
    default: return od_simple_backward(ctx, p, a);
    }
}

static byol_status od_forward(void *vctx, void *vplan, int training, const struct byol_op_args *a)
{
    struct od_ctx *ctx = vctx;
    struct od_plan *p = vplan;
    byol_status st = check_tensor(ctx, p, a->x[0], p->desc.in[0], "x[0]");
    if (st == BYOL_OK && p->desc.kind == BYOL_OP_ADD)
        st = check_tensor(ctx, p, a->x[1], p->desc.in[1], "x[1]");
    if (st == BYOL_OK)
        st = check_tensor(ctx, p, a->y, p->desc.out, "y");
    if (st == BYOL_OK)
        st = check_params(ctx, p, a, 0);
    if (st != BYOL_OK)
        return st;
    use_threads(ctx);
    struct od_views v;
    st = run_forward(ctx, p, training, od_views_begin(ctx, p, a, 0, &v));
    if (st == BYOL_OK)
        od_views_end(ctx, &v);
    return st;
}

static byol_status od_backward(void *vctx, void *vplan, const struct byol_op_args *a)
{
    struct od_ctx *ctx = vctx;
    struct od_plan *p = vplan;
    byol_status st = check_tensor(ctx, p, a->dy, p->desc.out, "dy");
    if (st == BYOL_OK && a->dx[1] && p->desc.kind != BYOL_OP_ADD)
        st = od_fail(ctx, BYOL_ERR_INVALID, "%s: has one input, but dx[1] was given",
                     byol_op_kind_name(p->desc.kind));
    for (int i = 0; i < 2 && st == BYOL_OK; i++)
        if (a->dx[i])
            st = check_tensor(ctx, p, a->dx[i], p->desc.in[i], i ? "dx[1]" : "dx[0]");
    for (int i = 0; i < 2 && st == BYOL_OK; i++)
        if ((a->dx[i] && od_tensor_bf16(a->dx[i])) || (i == 0 && od_tensor_bf16(a->dy)))
            st = od_fail(ctx, BYOL_ERR_INVALID,
                         "%s: a gradient tensor is bfloat16: allocate gradients with grad_alloc",
                         byol_op_kind_name(p->desc.kind));
    if (st == BYOL_OK)
        st = check_params(ctx, p, a, 1);
    if (st != BYOL_OK)
        return st;
    use_threads(ctx);
    struct od_views v;
    return run_backward(ctx, p, od_views_begin(ctx, p, a, 1, &v));
}

/* ---- parameter updates: the kernels shared with backend-blas -------------------------- */

static byol_status od_adam(void *vctx, float *param, const float *grad, float *m, float *v,
                           size_t n, const struct byol_adam_hparams *h)
{
    struct od_ctx *ctx = vctx;
    if (h->step < 1)
        return od_fail(ctx, BYOL_ERR_INVALID, "adam: step %lld, steps count from 1",
                       (long long)h->step);
    adam_update(param, m, v, grad, n, h, ctx->threads);
    return BYOL_OK;
}

static byol_status od_sgd(void *vctx, float *param, const float *grad, float *momentum_buf,
                          size_t n, const struct byol_sgd_hparams *h)
{
    struct od_ctx *ctx = vctx;
    if (h->momentum != 0.0 && !momentum_buf && n > 0)
        return od_fail(ctx, BYOL_ERR_INVALID, "sgd: momentum %g needs a momentum buffer",
                       h->momentum);
    sgd_update(param, momentum_buf, grad, n, h, ctx->threads);
    return BYOL_OK;
}

static byol_status od_ema(void *vctx, float *target, const float *online, size_t n, double tau)
{
    struct od_ctx *ctx = vctx;
    ema_update(target, online, n, tau, ctx->threads);
    return BYOL_OK;
}

/* ---- registration --------------------------------------------------------------------- */

static const struct byol_backend_ops od_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = OD_NAME,
    .version = "0.1.0",
    .description = "oneDNN primitives, channel-blocked activations, float32 (with precision = "
                   "\"bf16\": bf16 convolutions and stored activations)",
    .create = od_create,
    .destroy = od_destroy,
    .tensor_alloc = od_tensor_alloc,
    .tensor_free = od_tensor_free,
    .tensor_write = od_tensor_write,
    .tensor_read = od_tensor_read,
    .plan_create = od_plan_create,
    .plan_destroy = od_plan_destroy,
    .forward = od_forward,
    .backward = od_backward,
    .adam_update = od_adam,
    .sgd_update = od_sgd,
    .ema_update = od_ema,
    .set_threads = od_set_threads,
    .flags = BYOL_BACKEND_FUSES_BN_RELU | BYOL_BACKEND_SYNC_BN,
    .plan_describe = od_describe,
    .grad_alloc = od_grad_alloc,
};

BYOL_PLUGIN_INIT(host, reg)
{
    byol_status st = byol_plugin_check_host(host, "backend '" OD_NAME "'", BYOL_HOST_NEEDS(verror));
    return st == BYOL_OK ? host->register_ops(reg, BYOL_PLUGIN_BACKEND, &od_ops) : st;
}
