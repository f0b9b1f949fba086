/* The light ops of backend-onednn: relu (eltwise), add (binary), flatten (a conversion to
 * plain NCHW) and the grouped softmax with temperature (eltwise scale + softmax). Their
 * gradient copies and sums go through the layout conversions of layout.c. */
#include "kernels.h"
#include "onednn_internal.h"

enum { P_FWD, P_BWD, P_SCALE };
enum { M_SRC, M_SRC1, M_DST, M_DDST, M_DSRC };

/* softmax works on (rows, group) matrices; everything else on the activation's layout. */
static dnnl_status_t simple_md(const struct od_plan *p, dnnl_memory_desc_t *md)
{
    const struct byol_op_desc *d = &p->desc;
    if (d->kind != BYOL_OP_SOFTMAX)
        return od_md(md, d->in[0], p->in_block);
    dnnl_dims_t dims = {(dnnl_dim_t)d->in[0].n * d->in[0].c / d->u.softmax.group,
                        d->u.softmax.group};
    return dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_ab);
}

/* relu: the backward reads the forward's output, as PyTorch's threshold_backward does. */
static byol_status relu_pds(struct od_ctx *ctx, struct od_plan *p, const dnnl_memory_desc_t *md,
                            dnnl_primitive_desc_t pd[3])
{
    dnnl_eltwise_desc_t fwd, bwd;
    dnnl_alg_kind_t alg = dnnl_eltwise_relu_use_dst_for_bwd;
    dnnl_status_t s = dnnl_eltwise_forward_desc_init(&fwd, dnnl_forward_training, alg, md, 0, 0);
    if (s == dnnl_success)
        s = dnnl_eltwise_backward_desc_init(&bwd, alg, md, md, 0, 0);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_eltwise_*_desc_init", s);
    byol_status st = od_pd_create(ctx, p, &fwd, NULL, &pd[P_FWD]);
    return st == BYOL_OK ? od_pd_create(ctx, p, &bwd, pd[P_FWD], &pd[P_BWD]) : st;
}

static byol_status add_pds(struct od_ctx *ctx, struct od_plan *p, const dnnl_memory_desc_t *md,
                           dnnl_primitive_desc_t pd[3])
{
    dnnl_binary_desc_t add;
    dnnl_status_t s = dnnl_binary_desc_init(&add, dnnl_binary_add, md, md, md);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_binary_desc_init", s);
    return od_pd_create(ctx, p, &add, NULL, &pd[P_FWD]);
}

/* softmax(x / T): scale by 1/T (eltwise linear) into y, softmax in place; the backward's 1/T
 * is applied while the gradient is added into dx. */
static byol_status softmax_pds(struct od_ctx *ctx, struct od_plan *p,
                               const dnnl_memory_desc_t *md, dnnl_primitive_desc_t pd[3])
{
    float temperature = p->desc.u.softmax.temperature;
    dnnl_eltwise_desc_t scale;
    dnnl_softmax_desc_t fwd, bwd;
    dnnl_status_t s = dnnl_eltwise_forward_desc_init(&scale, dnnl_forward_inference,
                                                     dnnl_eltwise_linear, md, 1.0f / temperature, 0);
    if (s == dnnl_success)
        s = dnnl_softmax_forward_desc_init(&fwd, dnnl_forward_training, md, 1);
    if (s == dnnl_success)
        s = dnnl_softmax_backward_desc_init(&bwd, md, md, 1);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_softmax_*_desc_init", s);
    byol_status st = od_pd_create(ctx, p, &scale, NULL, &pd[P_SCALE]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &fwd, NULL, &pd[P_FWD]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd, pd[P_FWD], &pd[P_BWD]);
    /* oneDNN 2.6 on AVX2 has only a reference softmax backward: the shared loop instead. */
    if (st == BYOL_OK && od_pd_is_ref(pd[P_BWD])) {
        dnnl_primitive_desc_destroy(pd[P_BWD]);
        pd[P_BWD] = NULL;
        od_plan_note(p, P_BWD, "bwd_d", "blas:softmax_backward");
    }
    return st;
}


static byol_status simple_check(struct od_ctx *ctx, const struct od_plan *p)
{
    const struct byol_op_desc *d = &p->desc;
    if (d->kind == BYOL_OP_SOFTMAX &&
        (d->u.softmax.group < 1 || d->in[0].c % d->u.softmax.group != 0 ||
         !(d->u.softmax.temperature > 0.0f) || d->in[0].h * d->in[0].w != 1))
        return od_fail(ctx, BYOL_ERR_INVALID,
                       "softmax: group %d, temperature %g on (%d,%d,%d,%d): need a group that "
                       "divides the features of an (N,F,1,1) input and a positive temperature",
                       d->u.softmax.group, (double)d->u.softmax.temperature, d->in[0].n,
                       d->in[0].c, d->in[0].h, d->in[0].w);
    return BYOL_OK;
}

byol_status od_simple_plan(struct od_ctx *ctx, struct od_plan *p)
{
    enum byol_op_kind kind = p->desc.kind;
    byol_status st = simple_check(ctx, p);
    if (st == BYOL_OK && kind == BYOL_OP_FLATTEN) /* a layout conversion at most */
        od_plan_note(p, 0, "fwd", "copy");
    if (st != BYOL_OK || kind == BYOL_OP_FLATTEN)
        return st;
    dnnl_memory_desc_t md;
    dnnl_status_t s = simple_md(p, &md);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_memory_desc_init_by_tag", s);
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    st = kind == BYOL_OP_RELU  ? relu_pds(ctx, p, &md, pd)
         : kind == BYOL_OP_ADD ? add_pds(ctx, p, &md, pd)
                               : softmax_pds(ctx, p, &md, pd);
    for (int k = 0; st == BYOL_OK && k < 3; k++)
        if (pd[k])
            st = od_prim_create(ctx, p, k, pd[k]);
    for (int i = M_SRC; st == BYOL_OK && i <= M_DSRC; i++)
        st = od_mem_create(ctx, p, i, &md);
    for (int k = 0; k < 3; k++)
        dnnl_primitive_desc_destroy(pd[k]);
    return st;
}

static byol_status od_softmax_forward(struct od_ctx *ctx, struct od_plan *p,
                                      const struct byol_op_args *a)
{
    dnnl_exec_arg_t scale[] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, a->x[0]->data)},
                               {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)}};
    byol_status st = od_exec(ctx, p, P_SCALE, 2, scale);
    dnnl_exec_arg_t soft[] = {{DNNL_ARG_SRC, od_bind(p, M_DST, a->y->data)},
                              {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)}};
    return st == BYOL_OK ? od_exec(ctx, p, P_FWD, 2, soft) : st;
}

byol_status od_simple_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    const struct byol_op_desc *d = &p->desc;
    if (d->kind == BYOL_OP_FLATTEN) {
        /* (N,C,H,W) in any layout -> plain NCHW, which is (N,C*H*W,1,1). */
        od_convert(a->y->data, 1, a->x[0]->data, od_tensor_block(a->x[0]), d->in[0], 1.0f, 0,
                   ctx->threads);
        return BYOL_OK;
    }
    if (d->kind == BYOL_OP_SOFTMAX)
        return od_softmax_forward(ctx, p, a);
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    if (d->kind == BYOL_OP_RELU) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
                                  {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)}};
        return od_exec(ctx, p, P_FWD, 2, args);
    }
    const float *x1 = od_input(ctx, a->x[1], p->in_block, OD_SLOT_IN1);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, od_bind(p, M_SRC, x)},
                              {DNNL_ARG_SRC_1, od_bind(p, M_SRC1, x1)},
                              {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)}};
    return od_exec(ctx, p, P_FWD, 3, args);
}

/* relu and softmax: one primitive from (y, dy) to dx, then added / scaled into dx. */
static byol_status eltwise_backward(struct od_ctx *ctx, struct od_plan *p,
                                    const struct byol_op_args *a, const struct byol_tensor *y)
{
    int soft = p->desc.kind == BYOL_OP_SOFTMAX;
    float scale = soft ? 1.0f / p->desc.u.softmax.temperature : 1.0f;
    const float *yy = od_input(ctx, y, p->in_block, OD_SLOT_IN0);
    const float *dy = od_input(ctx, a->dy, p->in_block, OD_SLOT_DY);
    if (soft && !p->prim[P_BWD]) {
        /* The kernel shared with backend-blas; softmax tensors are one pixel per channel, so
         * every layout is plain NCHW and dx is written (or added into) directly. */
        const struct byol_shape *in = &p->desc.in[0];
        size_t rows = (size_t)in->n * (size_t)in->c / (size_t)p->desc.u.softmax.group;
        softmax_backward(a->dx[0]->data, dy, yy, rows, p->desc.u.softmax.group,
                         p->desc.u.softmax.temperature, a->accumulate[0], ctx->threads);
        return BYOL_OK;
    }
    float *dx = od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0], scale, OD_SLOT_DX);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DST, od_bind(p, M_DST, yy)},
                              {DNNL_ARG_DIFF_DST, od_bind(p, M_DDST, dy)},
                              {DNNL_ARG_DIFF_SRC, od_bind(p, M_DSRC, dx)}};
    byol_status st = od_exec(ctx, p, P_BWD, 3, args);
    if (st == BYOL_OK)
        od_output_end(ctx, a->dx[0], p->in_block, dx, a->accumulate[0], scale);
    return st;
}

byol_status od_simple_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    const struct byol_op_desc *d = &p->desc;
    switch (d->kind) {
    case BYOL_OP_RELU: {
        if (!a->dx[0])
            return BYOL_OK;
        /* The output has the sign that decides; the input works as well if y is not kept. */
        const struct byol_tensor *ref = a->y && a->y->data ? a->y : a->x[0];
        if (!ref || !ref->data)
            return od_fail(ctx, BYOL_ERR_INVALID, "relu: y is missing");
        return eltwise_backward(ctx, p, a, ref);
    }
    case BYOL_OP_SOFTMAX:
        if (!a->dx[0])
            return BYOL_OK;
        if (!a->y || !a->y->data)
            return od_fail(ctx, BYOL_ERR_INVALID, "softmax: y is missing");
        return eltwise_backward(ctx, p, a, a->y);
    default:
    {
        /* add and flatten pass dy through: a copy (or sum) with a change of layout. Flatten's
         * dy, (N,C*H*W,1,1), is plain NCHW whatever its block. */
        int dy_block = d->kind == BYOL_OP_FLATTEN ? 1 : od_tensor_block(a->dy);
        for (int i = 0; i < 2; i++)
            if (a->dx[i])
                od_convert(a->dx[i]->data, od_tensor_block(a->dx[i]), a->dy->data, dy_block,
                           d->in[0], 1.0f, a->accumulate[i], ctx->threads);
        return BYOL_OK;
    }
    }
}
