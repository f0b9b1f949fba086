/* The host side of a compute backend: creation from the registry, output-shape inference for
 * op descriptions, and thin wrappers over the ops table that check arguments, fill in
 * optional slots and name the backend in every message. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/backend.h"
#include "byol/registry.h"
#include "plugin_scope_internal.h"
#include "registry_internal.h"

struct byol_backend {
    /* A full-size copy: slots past an older plugin's struct_size read as NULL. */
    struct byol_backend_ops ops;
    void *ctx;
    const char *path; /* the plugin file (the registry's entry), or NULL from bare ops */
};

/* Marks the plugin call in progress, for a report if it crashes (plugin_scope_internal.h). */
static struct byol_plugin_mark be_enter(const struct byol_backend *be, const char *call)
{
    return byol_plugin_enter(be->path ? be->path : "(backend ops)", "backend", be->ops.name, call);
}

BYOL_PRINTF(3, 4)
static byol_status be_error(const struct byol_backend *be, byol_status s, const char *fmt, ...)
{
    char about[320];
    snprintf(about, sizeof about, "backend '%s'", be && be->ops.name ? be->ops.name : "?");
    va_list ap;
    va_start(ap, fmt);
    byol_verror_about(s, about, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- creation ------------------------------------------------------------------------- */

/* The slots every backend must fill, in header order. */
static byol_status check_required(const struct byol_backend *be)
{
    const struct byol_backend_ops *o = &be->ops;
    const struct {
        const char *name;
        int present;
    } slots[] = {
        {"create", o->create != NULL},
        {"destroy", o->destroy != NULL},
        {"tensor_alloc", o->tensor_alloc != NULL},
        {"tensor_free", o->tensor_free != NULL},
        {"tensor_write", o->tensor_write != NULL},
        {"tensor_read", o->tensor_read != NULL},
        {"plan_create", o->plan_create != NULL},
        {"plan_destroy", o->plan_destroy != NULL},
        {"forward", o->forward != NULL},
        {"backward", o->backward != NULL},
        {"adam_update", o->adam_update != NULL},
        {"sgd_update", o->sgd_update != NULL},
        {"ema_update", o->ema_update != NULL},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (!slots[i].present)
            return be_error(be, BYOL_ERR_PLUGIN, "required slot '%s' is NULL", slots[i].name);
    return BYOL_OK;
}

byol_status byol_backend_create_from_ops(const struct byol_backend_ops *ops,
                                         const struct byol_settings *settings,
                                         struct byol_backend **out)
{
    if (!ops || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_backend_create_from_ops: NULL argument");
    *out = NULL;
    const char *name = ops->name ? ops->name : "?";
    uint32_t major = BYOL_ABI_VERSION_MAJOR(ops->abi_version);
    if (major != BYOL_ABI_MAJOR)
        return byol_error(BYOL_ERR_ABI,
                          "backend '%s': built for ABI %u.%u, this library has "
                          "%u.%u",
                          name, major, BYOL_ABI_VERSION_MINOR(ops->abi_version),
                          (unsigned)BYOL_ABI_MAJOR, (unsigned)BYOL_ABI_MINOR);
    size_t min_size = offsetof(struct byol_backend_ops, set_threads);
    if (ops->struct_size < min_size || ops->struct_size > sizeof(struct byol_backend_ops))
        return byol_error(BYOL_ERR_ABI,
                          "backend '%s': ops struct of %u bytes, expected "
                          "%zu to %zu",
                          name, ops->struct_size, min_size, sizeof(struct byol_backend_ops));
    if (!ops->name)
        return byol_error(BYOL_ERR_PLUGIN, "backend ops without a name");

    struct byol_backend *be = calloc(1, sizeof *be);
    if (!be)
        return byol_error(BYOL_ERR_NOMEM, "backend '%s': out of memory", name);
    memcpy(&be->ops, ops, ops->struct_size);
    byol_status st = check_required(be);
    if (st == BYOL_OK) {
        struct byol_plugin_mark mark = be_enter(be, "create");
        st = be->ops.create(byol_host_api(), settings, &be->ctx);
        byol_plugin_leave(mark);
    }
    if (st != BYOL_OK) {
        free(be);
        return st;
    }
    *out = be;
    return BYOL_OK;
}

byol_status byol_backend_create(struct byol_registry *reg, const char *name,
                                const struct byol_settings *settings, struct byol_backend **out)
{
    if (!reg || !name || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_backend_create: NULL argument");
    *out = NULL;
    const void *ops = NULL;
    byol_status st = byol_registry_require(reg, BYOL_PLUGIN_BACKEND, name, &ops);
    if (st != BYOL_OK)
        return st;
    st = byol_backend_create_from_ops(ops, settings, out);
    if (st == BYOL_OK) /* the file the ops came from, for fault reports */
        (*out)->path = byol_registry_path_of(reg, ops);
    return st;
}

void byol_backend_free(struct byol_backend *be)
{
    if (!be)
        return;
    be->ops.destroy(be->ctx);
    free(be);
}

const struct byol_backend_ops *byol_backend_get_ops(const struct byol_backend *be)
{
    return be ? &be->ops : NULL;
}

const char *byol_backend_name(const struct byol_backend *be)
{
    return be ? be->ops.name : NULL;
}

/* ---- shape inference ------------------------------------------------------------------ */

static int shape_ok(struct byol_shape s)
{
    return s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0;
}

/* Output extent of a window over `size` (PyTorch's floor rule); fails when it does not fit. */
static byol_status window_extent(const char *op, const char *axis, int size, int kernel, int stride,
                                 int pad, int *out)
{
    long long span = (long long)size + 2LL * pad - kernel;
    if (span < 0)
        return byol_error(BYOL_ERR_SHAPE,
                          "%s: kernel %d does not fit the %s of %d padded by "
                          "%d",
                          op, kernel, axis, size, pad);
    *out = (int)(span / stride + 1);
    return BYOL_OK;
}

static byol_status infer_conv(struct byol_op_desc *d)
{
    const int o = d->u.conv.out_channels, kh = d->u.conv.kernel_h, kw = d->u.conv.kernel_w;
    const int sh = d->u.conv.stride_h, sw = d->u.conv.stride_w;
    const int ph = d->u.conv.pad_h, pw = d->u.conv.pad_w;
    if (o < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
        return byol_error(BYOL_ERR_INVALID,
                          "conv2d: out_channels %d, kernel %dx%d, stride "
                          "%dx%d, pad %dx%d: need positive channels, kernel and stride and a "
                          "non-negative pad",
                          o, kh, kw, sh, sw, ph, pw);
    int oh = 0, ow = 0;
    byol_status st = window_extent("conv2d", "height", d->in[0].h, kh, sh, ph, &oh);
    if (st == BYOL_OK)
        st = window_extent("conv2d", "width", d->in[0].w, kw, sw, pw, &ow);
    if (st == BYOL_OK)
        d->out = (struct byol_shape){d->in[0].n, o, oh, ow};
    return st;
}

static byol_status infer_maxpool(struct byol_op_desc *d)
{
    const int k = d->u.pool.kernel, s = d->u.pool.stride, p = d->u.pool.pad;
    if (k < 1 || s < 1 || p < 0)
        return byol_error(BYOL_ERR_INVALID,
                          "maxpool: kernel %d, stride %d, pad %d: need "
                          "positive kernel and stride and a non-negative pad",
                          k, s, p);
    if (p > k / 2)
        return byol_error(BYOL_ERR_INVALID,
                          "maxpool: pad %d is more than half the kernel %d "
                          "(PyTorch rejects it too)",
                          p, k);
    int oh = 0, ow = 0;
    byol_status st = window_extent("maxpool", "height", d->in[0].h, k, s, p, &oh);
    if (st == BYOL_OK)
        st = window_extent("maxpool", "width", d->in[0].w, k, s, p, &ow);
    if (st == BYOL_OK)
        d->out = (struct byol_shape){d->in[0].n, d->in[0].c, oh, ow};
    return st;
}

static byol_status infer_softmax(struct byol_op_desc *d)
{
    struct byol_shape in = d->in[0];
    int g = d->u.softmax.group;
    float t = d->u.softmax.temperature;
    if (in.h != 1 || in.w != 1)
        return byol_error(BYOL_ERR_SHAPE, "softmax: input (%d,%d,%d,%d) must be (N,F,1,1)", in.n,
                          in.c, in.h, in.w);
    if (g < 1 || in.c % g != 0)
        return byol_error(BYOL_ERR_SHAPE, "softmax: %d features are not a multiple of group %d",
                          in.c, g);
    if (!(t > 0.0f) || !isfinite(t))
        return byol_error(BYOL_ERR_INVALID, "softmax: temperature %g must be > 0", (double)t);
    d->out = in;
    return BYOL_OK;
}

byol_status byol_op_desc_infer(struct byol_op_desc *desc)
{
    if (!desc)
        return byol_error(BYOL_ERR_INVALID, "byol_op_desc_infer: NULL desc");
    struct byol_shape in = desc->in[0];
    const char *op = byol_op_kind_name(desc->kind);
    if (!shape_ok(in))
        return byol_error(BYOL_ERR_SHAPE, "%s: input shape (%d,%d,%d,%d) has a dimension < 1", op,
                          in.n, in.c, in.h, in.w);
    switch (desc->kind) {
    case BYOL_OP_CONV2D: return infer_conv(desc);
    case BYOL_OP_BATCHNORM:
        if (!(desc->u.bn.eps >= 0.0f) || !isfinite(desc->u.bn.eps))
            return byol_error(BYOL_ERR_INVALID, "batchnorm: eps %g must be >= 0",
                              (double)desc->u.bn.eps);
        if (!(desc->u.bn.momentum >= 0.0f && desc->u.bn.momentum <= 1.0f))
            return byol_error(BYOL_ERR_INVALID, "batchnorm: momentum %g must be in [0, 1]",
                              (double)desc->u.bn.momentum);
        desc->out = in;
        return BYOL_OK;
    case BYOL_OP_RELU: desc->out = in; return BYOL_OK;
    case BYOL_OP_MAXPOOL: return infer_maxpool(desc);
    case BYOL_OP_AVGPOOL: desc->out = (struct byol_shape){in.n, in.c, 1, 1}; return BYOL_OK;
    case BYOL_OP_LINEAR:
        if (desc->u.linear.out_features < 1)
            return byol_error(BYOL_ERR_INVALID, "linear: out_features %d must be >= 1",
                              desc->u.linear.out_features);
        if (in.h != 1 || in.w != 1)
            return byol_error(BYOL_ERR_SHAPE,
                              "linear: input (%d,%d,%d,%d) must be (N,F,1,1); "
                              "add a flatten layer first",
                              in.n, in.c, in.h, in.w);
        desc->out = (struct byol_shape){in.n, desc->u.linear.out_features, 1, 1};
        return BYOL_OK;
    case BYOL_OP_ADD:
        if (!byol_shape_eq(in, desc->in[1]))
            return byol_error(BYOL_ERR_SHAPE,
                              "add: inputs (%d,%d,%d,%d) and (%d,%d,%d,%d) "
                              "differ",
                              in.n, in.c, in.h, in.w, desc->in[1].n, desc->in[1].c, desc->in[1].h,
                              desc->in[1].w);
        desc->out = in;
        return BYOL_OK;
    case BYOL_OP_FLATTEN: {
        long long f = (long long)in.c * in.h * in.w;
        if (f > 0x7fffffffLL)
            return byol_error(BYOL_ERR_SHAPE, "flatten: %lld features do not fit an int", f);
        desc->out = (struct byol_shape){in.n, (int)f, 1, 1};
        return BYOL_OK;
    }
    case BYOL_OP_SOFTMAX: return infer_softmax(desc);
    }
    return byol_error(BYOL_ERR_UNSUPPORTED, "unknown op kind %d", (int)desc->kind);
}

/* ---- wrappers ------------------------------------------------------------------------- */

#define CHECK_BE(be, fn)                                                                           \
    do {                                                                                           \
        if (!(be))                                                                                 \
            return byol_error(BYOL_ERR_INVALID, fn ": NULL backend");                              \
    } while (0)

/* tensor_alloc and grad_alloc: `alloc` is the slot to call, `what` its name. */
static byol_status alloc_with(struct byol_backend *be, struct byol_tensor *t,
                              struct byol_shape shape, const void *producer,
                              byol_status (*alloc)(void *, struct byol_tensor *, const void *),
                              const char *what)
{
    if (!t)
        return be_error(be, BYOL_ERR_INVALID, "%s: NULL tensor", what);
    *t = (struct byol_tensor){.shape = shape};
    if (!shape_ok(shape))
        return be_error(be, BYOL_ERR_SHAPE, "%s: shape (%d,%d,%d,%d) has a dimension < 1", what,
                        shape.n, shape.c, shape.h, shape.w);
    byol_status st = alloc(be->ctx, t, producer);
    if (st != BYOL_OK)
        *t = (struct byol_tensor){.shape = shape};
    return st;
}

byol_status byol_backend_tensor_alloc(struct byol_backend *be, struct byol_tensor *t,
                                      struct byol_shape shape, const void *producer)
{
    CHECK_BE(be, "byol_backend_tensor_alloc");
    return alloc_with(be, t, shape, producer, be->ops.tensor_alloc, "tensor_alloc");
}

byol_status byol_backend_grad_alloc(struct byol_backend *be, struct byol_tensor *t,
                                    struct byol_shape shape, const void *producer)
{
    CHECK_BE(be, "byol_backend_grad_alloc");
    if (!be->ops.grad_alloc)
        return alloc_with(be, t, shape, producer, be->ops.tensor_alloc, "tensor_alloc");
    return alloc_with(be, t, shape, producer, be->ops.grad_alloc, "grad_alloc");
}

void byol_backend_tensor_free(struct byol_backend *be, struct byol_tensor *t)
{
    if (!be || !t || (!t->data && !t->layout))
        return;
    be->ops.tensor_free(be->ctx, t);
    t->data = NULL;
    t->bytes = 0;
    t->layout = NULL;
}

byol_status byol_backend_tensor_write(struct byol_backend *be, struct byol_tensor *t,
                                      const float *src)
{
    CHECK_BE(be, "byol_backend_tensor_write");
    if (!t || !t->data || !src)
        return be_error(be, BYOL_ERR_INVALID, "tensor_write: NULL %s",
                        !t         ? "tensor"
                        : !t->data ? "tensor storage"
                                   : "source");
    return be->ops.tensor_write(be->ctx, t, src);
}

byol_status byol_backend_tensor_read(struct byol_backend *be, const struct byol_tensor *t,
                                     float *dst)
{
    CHECK_BE(be, "byol_backend_tensor_read");
    if (!t || !t->data || !dst)
        return be_error(be, BYOL_ERR_INVALID, "tensor_read: NULL %s",
                        !t         ? "tensor"
                        : !t->data ? "tensor storage"
                                   : "destination");
    return be->ops.tensor_read(be->ctx, t, dst);
}

byol_status byol_backend_plan_create(struct byol_backend *be, const struct byol_op_desc *desc,
                                     void **plan, size_t *saved_bytes)
{
    CHECK_BE(be, "byol_backend_plan_create");
    if (!desc || !plan || !saved_bytes)
        return be_error(be, BYOL_ERR_INVALID, "plan_create: NULL argument");
    *plan = NULL;
    *saved_bytes = 0;
    /* The backend always sees an inferred output; a caller's differing one is a bug. */
    struct byol_op_desc d = *desc;
    byol_status st = byol_op_desc_infer(&d);
    if (st != BYOL_OK)
        return be_error(be, st, "plan_create: %s", byol_last_error());
    struct byol_shape o = desc->out;
    if (byol_shape_numel(o) != 0 && !byol_shape_eq(o, d.out))
        return be_error(be, BYOL_ERR_SHAPE,
                        "plan_create: %s: output (%d,%d,%d,%d) given, "
                        "(%d,%d,%d,%d) inferred",
                        byol_op_kind_name(d.kind), o.n, o.c, o.h, o.w, d.out.n, d.out.c, d.out.h,
                        d.out.w);
    if (d.kind == BYOL_OP_BATCHNORM && d.u.bn.fuse_relu &&
        !byol_backend_has_flag(be, BYOL_BACKEND_FUSES_BN_RELU))
        return be_error(be, BYOL_ERR_UNSUPPORTED, "plan_create: batchnorm with a fused relu");
    if (d.kind != BYOL_OP_BATCHNORM)
        d.bn_sync = NULL;
    if (d.bn_sync && !d.bn_sync->sum_f64)
        return be_error(be, BYOL_ERR_INVALID, "plan_create: batchnorm: bn_sync has no sum_f64");
    if (d.bn_sync && !byol_backend_has_flag(be, BYOL_BACKEND_SYNC_BN))
        return be_error(be, BYOL_ERR_UNSUPPORTED,
                        "plan_create: batchnorm over every process (SyncBatchNorm)");
    struct byol_plugin_mark mark = be_enter(be, "plan_create");
    st = be->ops.plan_create(be->ctx, &d, plan, saved_bytes);
    byol_plugin_leave(mark);
    return st;
}

int byol_backend_has_flag(const struct byol_backend *be, uint32_t flag)
{
    return be && (be->ops.flags & flag) == flag;
}

void byol_backend_plan_destroy(struct byol_backend *be, void *plan)
{
    if (be && plan)
        be->ops.plan_destroy(be->ctx, plan);
}

byol_status byol_backend_forward(struct byol_backend *be, void *plan, int training,
                                 const struct byol_op_args *a)
{
    CHECK_BE(be, "byol_backend_forward");
    if (!plan || !a || !a->x[0] || !a->y)
        return be_error(be, BYOL_ERR_INVALID, "forward: NULL %s",
                        !plan      ? "plan"
                        : !a       ? "args"
                        : !a->x[0] ? "x[0]"
                                   : "y");
    struct byol_plugin_mark mark = be_enter(be, "forward");
    byol_status st = be->ops.forward(be->ctx, plan, training ? 1 : 0, a);
    byol_plugin_leave(mark);
    return st;
}

byol_status byol_backend_backward(struct byol_backend *be, void *plan, const struct byol_op_args *a)
{
    CHECK_BE(be, "byol_backend_backward");
    if (!plan || !a || !a->dy)
        return be_error(be, BYOL_ERR_INVALID, "backward: NULL %s",
                        !plan ? "plan"
                        : !a  ? "args"
                              : "dy");
    struct byol_plugin_mark mark = be_enter(be, "backward");
    byol_status st = be->ops.backward(be->ctx, plan, a);
    byol_plugin_leave(mark);
    return st;
}

byol_status byol_backend_adam(struct byol_backend *be, float *param, const float *grad, float *m,
                              float *v, size_t n, const struct byol_adam_hparams *h)
{
    CHECK_BE(be, "byol_backend_adam");
    if (!h)
        return be_error(be, BYOL_ERR_INVALID, "adam: NULL hyper-parameters");
    if (h->step < 1)
        return be_error(be, BYOL_ERR_INVALID, "adam: step %lld, steps count from 1",
                        (long long)h->step);
    if (n == 0)
        return BYOL_OK;
    if (!param || !grad || !m || !v)
        return be_error(be, BYOL_ERR_INVALID, "adam: NULL parameter, gradient or moment");
    struct byol_plugin_mark mark = be_enter(be, "adam_update");
    byol_status st = be->ops.adam_update(be->ctx, param, grad, m, v, n, h);
    byol_plugin_leave(mark);
    return st;
}

byol_status byol_backend_sgd(struct byol_backend *be, float *param, const float *grad,
                             float *momentum_buf, size_t n, const struct byol_sgd_hparams *h)
{
    CHECK_BE(be, "byol_backend_sgd");
    if (!h)
        return be_error(be, BYOL_ERR_INVALID, "sgd: NULL hyper-parameters");
    if (n == 0)
        return BYOL_OK;
    if (!param || !grad)
        return be_error(be, BYOL_ERR_INVALID, "sgd: NULL parameter or gradient");
    if (h->momentum != 0.0 && !momentum_buf)
        return be_error(be, BYOL_ERR_INVALID, "sgd: momentum %g needs a momentum buffer",
                        h->momentum);
    struct byol_plugin_mark mark = be_enter(be, "sgd_update");
    byol_status st = be->ops.sgd_update(be->ctx, param, grad, momentum_buf, n, h);
    byol_plugin_leave(mark);
    return st;
}

byol_status byol_backend_ema(struct byol_backend *be, float *target, const float *online, size_t n,
                             double tau)
{
    CHECK_BE(be, "byol_backend_ema");
    if (!(tau >= 0.0 && tau <= 1.0))
        return be_error(be, BYOL_ERR_INVALID, "ema: tau %g must be in [0, 1]", tau);
    if (n == 0)
        return BYOL_OK;
    if (!target || !online)
        return be_error(be, BYOL_ERR_INVALID, "ema: NULL target or online");
    struct byol_plugin_mark mark = be_enter(be, "ema_update");
    byol_status st = be->ops.ema_update(be->ctx, target, online, n, tau);
    byol_plugin_leave(mark);
    return st;
}

byol_status byol_backend_set_threads(struct byol_backend *be, int threads)
{
    CHECK_BE(be, "byol_backend_set_threads");
    if (threads < 1)
        return be_error(be, BYOL_ERR_INVALID, "set_threads: %d threads, need at least 1", threads);
    /* The slot is optional: a backend without it keeps its thread count, which is a hint. */
    if (!be->ops.set_threads)
        return BYOL_OK;
    return be->ops.set_threads(be->ctx, threads);
}

void byol_backend_plan_describe(struct byol_backend *be, const void *plan, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (!be || !plan)
        return;
    if (be->ops.plan_describe)
        be->ops.plan_describe(be->ctx, plan, buf, size);
    else
        snprintf(buf, size, "%s", be->ops.name ? be->ops.name : "?");
    buf[size - 1] = '\0';
}
