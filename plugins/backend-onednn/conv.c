/* Convolution in backend-onednn: forward, backward-data and backward-weights primitives made
 * once per layer. Activations stay in the plan's channel-blocked layout; the weights live in
 * the caller's flat buffers as plain OIHW, so each step reorders them into the primitives'
 * layouts (kept in the plan from forward to backward), and the weight gradient is reordered
 * back and added into dweight by one reorder with a sum post-op. */
#include "onednn_internal.h"

enum { P_FWD, P_BWD_DATA, P_BWD_W, P_R_WFWD, P_R_WBWD, P_R_DW, P_R_DX, P_R_DX_ACC };
enum {
    M_SRC, M_DST, M_WUSER, M_WFWD, M_WBWD, M_BIAS, M_DDST, M_DSRC, M_DW, M_DWUSER, M_DBIAS,
    M_DSRC_OWN
};

struct conv_mds {
    dnnl_memory_desc_t src, dst, wany, wuser, bias, src_any;
    dnnl_dims_t strides, pad;
};

static byol_status conv_mds(struct od_ctx *ctx, struct od_plan *p, struct conv_mds *m)
{
    const struct byol_op_desc *d = &p->desc;
    dnnl_dims_t wd = {d->u.conv.out_channels, d->in[0].c, d->u.conv.kernel_h, d->u.conv.kernel_w};
    dnnl_dims_t bd = {d->u.conv.out_channels};
    dnnl_status_t s = od_md(&m->src, d->in[0], p->in_block);
    if (s == dnnl_success)
        s = od_md(&m->dst, d->out, p->out_block);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&m->wany, 4, wd, dnnl_f32, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&m->src_any, 4, m->src.dims, dnnl_f32,
                                         dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&m->wuser, 4, wd, dnnl_f32, dnnl_oihw);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&m->bias, 1, bd, dnnl_f32, dnnl_x);
    m->strides[0] = d->u.conv.stride_h;
    m->strides[1] = d->u.conv.stride_w;
    m->pad[0] = d->u.conv.pad_h;
    m->pad[1] = d->u.conv.pad_w;
    return s == dnnl_success ? BYOL_OK : od_dnnl_fail(ctx, p, "dnnl_memory_desc_init", s);
}

/* The three primitive descriptors. Direct convolution: Winograd would change the numbers. */
static byol_status conv_pds(struct od_ctx *ctx, struct od_plan *p, const struct conv_mds *m,
                            dnnl_primitive_desc_t pd[3])
{
    const dnnl_memory_desc_t *bias = p->desc.u.conv.has_bias ? &m->bias : NULL;
    dnnl_convolution_desc_t fwd, bwd_data, bwd_w;
    dnnl_status_t s = dnnl_convolution_forward_desc_init(
        &fwd, dnnl_forward_training, dnnl_convolution_direct, &m->src, &m->wany, bias, &m->dst,
        m->strides, m->pad, m->pad);
    /* dx may take another layout: with a plain input (the 3-channel stem) oneDNN has only a
     * reference backward-data kernel for plain dx, 1000x slower than its blocked one. */
    if (s == dnnl_success)
        s = dnnl_convolution_backward_data_desc_init(&bwd_data, dnnl_convolution_direct,
                                                     &m->src_any, &m->wany, &m->dst, m->strides,
                                                     m->pad, m->pad);
    if (s == dnnl_success)
        s = dnnl_convolution_backward_weights_desc_init(&bwd_w, dnnl_convolution_direct, &m->src,
                                                        &m->wany, bias, &m->dst, m->strides,
                                                        m->pad, m->pad);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_convolution_*_desc_init", s);
    byol_status st = od_pd_create(ctx, p, &fwd, NULL, &pd[0]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd_data, pd[0], &pd[1]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd_w, pd[0], &pd[2]);
    return st;
}

/* Plan-owned weight buffers in the layouts the forward and backward-data primitives read. */
static byol_status conv_weight_bufs(struct od_ctx *ctx, struct od_plan *p,
                                    const struct conv_mds *m, const dnnl_memory_desc_t *wfwd,
                                    const dnnl_memory_desc_t *wbwd)
{
    const dnnl_memory_desc_t *mds[2] = {wfwd, wbwd};
    p->wbwd_alias = dnnl_memory_desc_equal(wfwd, wbwd);
    for (int k = 0; k < 2; k++) {
        if (k == 1 && p->wbwd_alias)
            break;
        size_t bytes = dnnl_memory_desc_get_size(mds[k]);
        p->wbuf[k] = ctx->host->alloc(bytes);
        if (!p->wbuf[k])
            return od_fail(ctx, BYOL_ERR_NOMEM, "conv2d: cannot allocate %zu bytes of weights",
                           bytes);
        byol_status st = od_reorder_create(ctx, p, k ? P_R_WBWD : P_R_WFWD, &m->wuser, mds[k], 0);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}

/* When backward data picks its own dx layout: reorders from it to the plan's input layout,
 * one that overwrites and one that adds. */
static byol_status conv_dx_reorders(struct od_ctx *ctx, struct od_plan *p,
                                    const dnnl_memory_desc_t *own, const dnnl_memory_desc_t *src)
{
    p->dx_reorder = !dnnl_memory_desc_equal(own, src);
    if (!p->dx_reorder)
        return BYOL_OK;
    size_t bytes = dnnl_memory_desc_get_size(own);
    if (bytes > p->need[OD_SLOT_DX])
        p->need[OD_SLOT_DX] = bytes;
    byol_status st = od_reorder_create(ctx, p, P_R_DX, own, src, 0);
    return st == BYOL_OK ? od_reorder_create(ctx, p, P_R_DX_ACC, own, src, 1) : st;
}

static byol_status conv_mems(struct od_ctx *ctx, struct od_plan *p, const struct conv_mds *m,
                             dnnl_primitive_desc_t pd[3])
{
    const dnnl_memory_desc_t *mds[] = {
        [M_SRC] = &m->src,
        [M_DST] = &m->dst,
        [M_WUSER] = &m->wuser,
        [M_WFWD] = od_query_md(pd[0], dnnl_query_weights_md),
        [M_WBWD] = od_query_md(pd[1], dnnl_query_weights_md),
        [M_BIAS] = &m->bias,
        [M_DDST] = &m->dst,
        [M_DSRC] = &m->src,
        [M_DW] = od_query_md(pd[2], dnnl_query_diff_weights_md),
        [M_DWUSER] = &m->wuser,
        [M_DBIAS] = &m->bias,
        [M_DSRC_OWN] = od_query_md(pd[1], dnnl_query_diff_src_md),
    };
    byol_status st = BYOL_OK;
    for (int i = 0; st == BYOL_OK && i < (int)(sizeof mds / sizeof mds[0]); i++)
        st = od_mem_create(ctx, p, i, mds[i]);
    if (st == BYOL_OK)
        st = conv_weight_bufs(ctx, p, m, mds[M_WFWD], mds[M_WBWD]);
    if (st == BYOL_OK)
        st = od_reorder_create(ctx, p, P_R_DW, mds[M_DW], &m->wuser, 1);
    if (st == BYOL_OK)
        st = conv_dx_reorders(ctx, p, mds[M_DSRC_OWN], &m->src);
    p->need[OD_SLOT_DW] = dnnl_memory_desc_get_size(mds[M_DW]);
    p->need[OD_SLOT_SMALL] = (size_t)p->desc.u.conv.out_channels * sizeof(float);
    return st;
}

byol_status od_conv_plan(struct od_ctx *ctx, struct od_plan *p)
{
    struct conv_mds m;
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    byol_status st = conv_mds(ctx, p, &m);
    if (st == BYOL_OK)
        st = conv_pds(ctx, p, &m, pd);
    for (int k = 0; st == BYOL_OK && k < 3; k++)
        st = od_prim_create(ctx, p, P_FWD + k, pd[k]);
    if (st == BYOL_OK)
        st = conv_mems(ctx, p, &m, pd);
    for (int k = 0; k < 3; k++)
        dnnl_primitive_desc_destroy(pd[k]);
    return st;
}

static byol_status reorder(struct od_ctx *ctx, struct od_plan *p, int prim, int msrc,
                           const void *src, int mdst, void *dst)
{
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, od_bind(p, msrc, src)},
                              {DNNL_ARG_TO, od_bind(p, mdst, dst)}};
    return od_exec(ctx, p, prim, 2, args);
}

byol_status od_conv_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    int has_bias = p->desc.u.conv.has_bias;
    byol_status st = reorder(ctx, p, P_R_WFWD, M_WUSER, a->weight, M_WFWD, p->wbuf[0]);
    if (st != BYOL_OK)
        return st;
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
                              {DNNL_ARG_WEIGHTS, od_bind(p, M_WFWD, p->wbuf[0])},
                              {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)},
                              {DNNL_ARG_BIAS, has_bias ? od_bind(p, M_BIAS, a->bias) : NULL}};
    return od_exec(ctx, p, P_FWD, has_bias ? 4 : 3, args);
}

static byol_status conv_backward_data(struct od_ctx *ctx, struct od_plan *p,
                                      const struct byol_op_args *a, const float *dy)
{
    /* The forward left this step's weights in wbuf[0]; a different layout needs its own. */
    const float *w = p->wbuf[0];
    if (!p->wbwd_alias) {
        byol_status st = reorder(ctx, p, P_R_WBWD, M_WUSER, a->weight, M_WBWD, p->wbuf[1]);
        if (st != BYOL_OK)
            return st;
        w = p->wbuf[1];
    }
    float *dx = p->dx_reorder ? od_slot(ctx, OD_SLOT_DX)
                              : od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0],
                                                1.0f, OD_SLOT_DX);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, od_bind(p, M_DDST, dy)},
                              {DNNL_ARG_WEIGHTS, od_bind(p, p->wbwd_alias ? M_WFWD : M_WBWD, w)},
                              {DNNL_ARG_DIFF_SRC, od_bind(p, p->dx_reorder ? M_DSRC_OWN : M_DSRC, dx)}};
    byol_status st = od_exec(ctx, p, P_BWD_DATA, 3, args);
    if (st != BYOL_OK)
        return st;
    if (!p->dx_reorder) {
        od_output_end(ctx, a->dx[0], p->in_block, dx, a->accumulate[0], 1.0f);
        return BYOL_OK;
    }
    /* Into the plan's input layout: dx itself when it has it, else scratch then converted. */
    int direct = od_same_layout(od_tensor_block(a->dx[0]), p->in_block, a->dx[0]->shape);
    float *to = direct ? a->dx[0]->data : od_slot(ctx, OD_SLOT_IN1);
    int acc = direct && a->accumulate[0];
    st = reorder(ctx, p, acc ? P_R_DX_ACC : P_R_DX, M_DSRC_OWN, dx, M_DSRC, to);
    if (st == BYOL_OK && !direct)
        od_output_end(ctx, a->dx[0], p->in_block, to, a->accumulate[0], 1.0f);
    return st;
}

static byol_status conv_backward_weights(struct od_ctx *ctx, struct od_plan *p,
                                         const struct byol_op_args *a, const float *dy,
                                         float *dbias)
{
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    float *dw = od_slot(ctx, OD_SLOT_DW), *db = od_slot(ctx, OD_SLOT_SMALL);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
                              {DNNL_ARG_DIFF_DST, od_bind(p, M_DDST, dy)},
                              {DNNL_ARG_DIFF_WEIGHTS, od_bind(p, M_DW, dw)},
                              {DNNL_ARG_DIFF_BIAS, od_bind(p, M_DBIAS, db)}};
    byol_status st = od_exec(ctx, p, P_BWD_W, p->desc.u.conv.has_bias ? 4 : 3, args);
    if (st == BYOL_OK && a->dweight)
        st = reorder(ctx, p, P_R_DW, M_DW, dw, M_DWUSER, a->dweight);
    if (st == BYOL_OK && dbias)
        od_add_into(dbias, db, (size_t)p->desc.u.conv.out_channels);
    return st;
}

byol_status od_conv_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    float *dbias = p->desc.u.conv.has_bias ? a->dbias : NULL;
    const float *dy = od_input(ctx, a->dy, p->out_block, OD_SLOT_DY);
    byol_status st = BYOL_OK;
    if (a->dx[0])
        st = conv_backward_data(ctx, p, a, dy);
    if (st == BYOL_OK && (a->dweight || dbias))
        st = conv_backward_weights(ctx, p, a, dy, dbias);
    return st;
}
