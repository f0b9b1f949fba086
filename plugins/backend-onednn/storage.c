/* bfloat16 activation storage of backend-onednn (precision = "bf16"). The outputs of the
 * spatial layers (conv, batch norm, relu, add, pooling: the tensors a backward pass keeps, and
 * nearly all of a step's memory) are stored as bfloat16 in the plan's layout, as PyTorch's
 * autocast keeps the outputs of its bfloat16 convolutions and what follows them; gradients,
 * weights, the projector's one-pixel tensors and everything outside the network stay float32.
 *
 * A convolution binds a bf16 input as it is (conv.c's conv_x). The other ops stay float32
 * code: around each call, od_views_begin gives the op float32 views of its bf16 tensors
 * (converted into arena slots, in the same layout), and od_views_end rounds the op's float32
 * output into the bf16 storage. Rounding is to nearest even, as oneDNN's reorders round, so a
 * convolution reads exactly the bfloat16 values its own reorder would have made. The views
 * cost passes over the tensors: on bench/resnet18_64px_b32.cfg (AVX512-BF16) about 7% of the
 * step against float32 storage, for 10% less peak memory (bench/README.md). */
#include "onednn_internal.h"

/* The layouts a tensor can point at; plain float32 NCHW is layout NULL. */
static const struct od_layout layouts[2][3] = {
    {{1, 0}, {8, 0}, {16, 0}},
    {{1, 1}, {8, 1}, {16, 1}},
};

const void *od_layout_of(int block, int bf16)
{
    if (!bf16 && block == 1)
        return NULL;
    return &layouts[bf16 != 0][block == 16 ? 2 : block == 8 ? 1 : 0];
}

int od_tensor_bf16(const struct byol_tensor *t)
{
    return t->layout ? ((const struct od_layout *)t->layout)->bf16 : 0;
}

int od_stores_bf16(const struct od_ctx *ctx, const struct od_plan *producer, struct byol_shape s)
{
    if (!ctx->bf16 || !producer)
        return 0;
    switch (producer->desc.kind) {
    case BYOL_OP_CONV2D:
    case BYOL_OP_BATCHNORM:
    case BYOL_OP_RELU:
    case BYOL_OP_ADD:
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL: return (size_t)s.h * (size_t)s.w > 1;
    default: return 0;
    }
}

/* ---- conversions -------------------------------------------------------------------------- */

void od_bf16_pack(uint16_t *dst, const float *src, size_t n, int threads)
{
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        dst[i] = od_to_bf16(src[i]);
}

void od_bf16_unpack(float *dst, const uint16_t *src, size_t n, int threads)
{
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        dst[i] = od_from_bf16(src[i]);
}

/* ---- float32 views around a call ---------------------------------------------------------- */

/* Which bf16 tensors an op reads in its backward: x (for weight gradients and batch norm's
 * statistics) and y (relu's sign, a fused relu's). */
static int backward_reads_x(const struct od_plan *p, const struct byol_op_args *a)
{
    switch (p->desc.kind) {
    case BYOL_OP_ADD:
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL:
    case BYOL_OP_FLATTEN: return 0;
    case BYOL_OP_RELU: return !(a->y && a->y->data);
    default: return 1;
    }
}

static int backward_reads_y(const struct od_plan *p)
{
    return p->desc.kind == BYOL_OP_RELU ||
           (p->desc.kind == BYOL_OP_BATCHNORM && p->desc.u.bn.fuse_relu);
}

/* v->x[k] or v->y: a float32 copy of the bf16 tensor t in arena slot `slot`, same layout;
 * `fill` converts t's values into it (an output's are written by the op instead). */
static struct byol_tensor *view(struct od_ctx *ctx, struct byol_tensor *v,
                                const struct byol_tensor *t, enum od_slot slot, int fill)
{
    size_t n = byol_shape_numel(t->shape);
    *v = (struct byol_tensor){.shape = t->shape,
                              .data = od_slot(ctx, slot),
                              .bytes = n * sizeof(float),
                              .layout = (void *)od_layout_of(od_tensor_block(t), 0)};
    if (fill)
        od_bf16_unpack(v->data, (const uint16_t *)t->data, n, ctx->threads);
    return v;
}

const struct byol_op_args *od_views_begin(struct od_ctx *ctx, const struct od_plan *p,
                                          const struct byol_op_args *a, int backward,
                                          struct od_views *v)
{
    v->args = *a;
    v->y_out = NULL;
    int any = 0;
    /* A convolution reads a bf16 x itself (conv_x), mostly without converting it. */
    int read_x = p->desc.kind != BYOL_OP_CONV2D && (!backward || backward_reads_x(p, a));
    for (int k = 0; k < 2; k++)
        if (a->x[k] && a->x[k]->data && od_tensor_bf16(a->x[k]) && read_x) {
            v->args.x[k] = view(ctx, &v->x[k], a->x[k], k ? OD_SLOT_SX1 : OD_SLOT_SX0, 1);
            any = 1;
        }
    if (a->y && a->y->data && od_tensor_bf16(a->y) && (!backward || backward_reads_y(p))) {
        v->args.y = view(ctx, &v->y, a->y, OD_SLOT_SY, backward);
        v->y_out = backward ? NULL : a->y;
        any = 1;
    }
    return any ? &v->args : a;
}

void od_views_end(struct od_ctx *ctx, struct od_views *v)
{
    if (v->y_out)
        od_bf16_pack((uint16_t *)v->y_out->data, v->y.data, byol_shape_numel(v->y.shape),
                     ctx->threads);
}

void od_views_reserve(const struct od_ctx *ctx, struct od_plan *p)
{
    if (!ctx->bf16)
        return;
    const struct byol_op_desc *d = &p->desc;
    /* An input may come from any producer: room for it whenever it could be bf16. */
    for (int k = 0; k < (d->kind == BYOL_OP_ADD ? 2 : 1); k++)
        if ((size_t)d->in[k].h * (size_t)d->in[k].w > 1)
            p->need[k ? OD_SLOT_SX1 : OD_SLOT_SX0] = byol_shape_numel(d->in[k]) * sizeof(float);
    if (od_stores_bf16(ctx, p, d->out))
        p->need[OD_SLOT_SY] = byol_shape_numel(d->out) * sizeof(float);
}
