/* Convolution in backend-onednn: forward, backward-data and backward-weights primitives made
 * once per layer. Activations stay in the plan's channel-blocked layout; the weights live in
 * the caller's flat buffers as plain OIHW, so each call reorders them into its primitive's
 * layout in the context's shared scratch (a per-plan copy would hold every weight twice more,
 * for both networks, for a reorder that costs about 1% of the conv), and the weight gradient is
 * reordered back and added into dweight by one reorder with a sum post-op.
 * With precision = "bf16" the three primitives read bfloat16 inputs and weights (rounded per call
 * into the arena) and write float32 outputs and gradients: the float32 master weights,
 * activations and optimizer stay as they are. A layer oneDNN has no bf16 kernel for stays f32. */
#include "onednn_internal.h"

enum {
    P_FWD, P_BWD_DATA, P_BWD_W, P_R_WFWD, P_R_WBWD, P_R_DW, P_R_DX, P_R_DX_ACC, P_R_XB, P_R_DYB
};
enum {
    M_SRC, M_DST, M_WUSER, M_WFWD, M_WBWD, M_BIAS, M_DDST, M_DSRC, M_DW, M_DWUSER, M_DBIAS,
    M_DSRC_OWN, M_SRC_B, M_DDST_B
};

struct conv_mds {
    dnnl_memory_desc_t src, dst, wany, wuser, bias, src_any;
    dnnl_memory_desc_t src_b, dst_b, wany_b; /* bfloat16 versions */
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
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&m->wany_b, 4, wd, dnnl_bf16, dnnl_format_tag_any);
    m->src_b = m->src;
    m->src_b.data_type = dnnl_bf16;
    m->dst_b = m->dst;
    m->dst_b.data_type = dnnl_bf16;
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
    /* bf16: bfloat16 x, dy and weights in; float32 y, dx and dweight out. */
    const dnnl_memory_desc_t *src = p->bf16 ? &m->src_b : &m->src;
    const dnnl_memory_desc_t *w = p->bf16 ? &m->wany_b : &m->wany;
    const dnnl_memory_desc_t *dy = p->bf16 ? &m->dst_b : &m->dst;
    dnnl_convolution_desc_t fwd, bwd_data, bwd_w;
    dnnl_status_t s = dnnl_convolution_forward_desc_init(
        &fwd, dnnl_forward_training, dnnl_convolution_direct, src, w, bias, &m->dst,
        m->strides, m->pad, m->pad);
    /* dx may take another layout: with a plain input (the 3-channel stem) oneDNN has only a
     * reference backward-data kernel for plain dx, 1000x slower than its blocked one. */
    if (s == dnnl_success)
        s = dnnl_convolution_backward_data_desc_init(&bwd_data, dnnl_convolution_direct,
                                                     &m->src_any, w, dy, m->strides, m->pad,
                                                     m->pad);
    if (s == dnnl_success)
        s = dnnl_convolution_backward_weights_desc_init(&bwd_w, dnnl_convolution_direct, src,
                                                        &m->wany, bias, dy, m->strides, m->pad,
                                                        m->pad);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_convolution_*_desc_init", s);
    byol_status st = od_pd_create(ctx, p, &fwd, NULL, &pd[0]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd_data, pd[0], &pd[1]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd_w, pd[0], &pd[2]);
    return st;
}

/* The reorders of the OIHW weights into the forward and backward-data layouts, whose
 * destinations are the context's weight slots. */
static byol_status conv_weight_reorders(struct od_ctx *ctx, struct od_plan *p,
                                        const struct conv_mds *m, const dnnl_memory_desc_t *wfwd,
                                        const dnnl_memory_desc_t *wbwd)
{
    p->wbwd_alias = dnnl_memory_desc_equal(wfwd, wbwd);
    p->need[OD_SLOT_WFWD] = dnnl_memory_desc_get_size(wfwd);
    p->need[OD_SLOT_WBWD] = dnnl_memory_desc_get_size(wbwd);
    byol_status st = od_reorder_create(ctx, p, P_R_WFWD, &m->wuser, wfwd, 0);
    if (st == BYOL_OK && !p->wbwd_alias)
        st = od_reorder_create(ctx, p, P_R_WBWD, &m->wuser, wbwd, 0);
    return st;
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
        [M_SRC_B] = &m->src_b,
        [M_DDST_B] = &m->dst_b,
    };
    byol_status st = BYOL_OK;
    for (int i = 0; st == BYOL_OK && i < (int)(sizeof mds / sizeof mds[0]); i++)
        st = od_mem_create(ctx, p, i, mds[i]);
    if (st == BYOL_OK)
        st = conv_weight_reorders(ctx, p, m, mds[M_WFWD], mds[M_WBWD]);
    if (st == BYOL_OK)
        st = od_reorder_create(ctx, p, P_R_DW, mds[M_DW], &m->wuser, 1);
    if (st == BYOL_OK)
        st = conv_dx_reorders(ctx, p, mds[M_DSRC_OWN], &m->src);
    if (st == BYOL_OK && p->bf16)
        st = od_reorder_create(ctx, p, P_R_XB, &m->src, &m->src_b, 0);
    if (st == BYOL_OK && p->bf16)
        st = od_reorder_create(ctx, p, P_R_DYB, &m->dst, &m->dst_b, 0);
    p->need[OD_SLOT_XB] = p->bf16 ? dnnl_memory_desc_get_size(&m->src_b) : 0;
    p->need[OD_SLOT_DYB] = p->bf16 ? dnnl_memory_desc_get_size(&m->dst_b) : 0;
    p->need[OD_SLOT_DW] = dnnl_memory_desc_get_size(mds[M_DW]);
    p->need[OD_SLOT_SMALL] = (size_t)p->desc.u.conv.out_channels * sizeof(float);
    p->taps_bww = od_conv_taps_wanted(&p->desc);
    if (p->taps_bww)
        od_conv_taps_reserve(p);
    return st;
}

byol_status od_conv_plan(struct od_ctx *ctx, struct od_plan *p)
{
    struct conv_mds m;
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    byol_status st = conv_mds(ctx, p, &m);
    p->bf16 = ctx->bf16;
    if (st == BYOL_OK)
        st = conv_pds(ctx, p, &m, pd);
    if (st != BYOL_OK && p->bf16) { /* no bf16 kernel for this shape: float32 */
        for (int k = 0; k < 3; k++) {
            dnnl_primitive_desc_destroy(pd[k]);
            pd[k] = NULL;
        }
        p->bf16 = 0;
        st = conv_pds(ctx, p, &m, pd);
    }
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
    float *w = od_slot(ctx, OD_SLOT_WFWD);
    byol_status st = reorder(ctx, p, P_R_WFWD, M_WUSER, a->weight, M_WFWD, w);
    if (st != BYOL_OK)
        return st;
    const void *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    if (p->bf16) {
        void *xb = od_slot(ctx, OD_SLOT_XB);
        st = reorder(ctx, p, P_R_XB, M_SRC, x, M_SRC_B, xb);
        if (st != BYOL_OK)
            return st;
        x = xb;
    }
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, p->bf16 ? M_SRC_B : M_SRC, x)},
                              {DNNL_ARG_WEIGHTS, od_bind(p, M_WFWD, w)},
                              {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)},
                              {DNNL_ARG_BIAS, has_bias ? od_bind(p, M_BIAS, a->bias) : NULL}};
    return od_exec(ctx, p, P_FWD, has_bias ? 4 : 3, args);
}

static byol_status conv_backward_data(struct od_ctx *ctx, struct od_plan *p,
                                      const struct byol_op_args *a, const void *dy)
{
    /* Other layers' forwards have reused the weight slots since, so reorder again. */
    float *w = od_slot(ctx, OD_SLOT_WBWD);
    int mw = p->wbwd_alias ? M_WFWD : M_WBWD;
    int prim = p->wbwd_alias ? P_R_WFWD : P_R_WBWD;
    byol_status st = reorder(ctx, p, prim, M_WUSER, a->weight, mw, w);
    if (st != BYOL_OK)
        return st;
    float *dx = p->dx_reorder ? od_slot(ctx, OD_SLOT_DX)
                              : od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0],
                                                1.0f, OD_SLOT_DX);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, od_bind(p, p->bf16 ? M_DDST_B : M_DDST, dy)},
                              {DNNL_ARG_WEIGHTS, od_bind(p, mw, w)},
                              {DNNL_ARG_DIFF_SRC, od_bind(p, p->dx_reorder ? M_DSRC_OWN : M_DSRC, dx)}};
    st = od_exec(ctx, p, P_BWD_DATA, 3, args);
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

/* dy is float32, dyb its bfloat16 copy (bf16 plans). */
static byol_status conv_backward_weights(struct od_ctx *ctx, struct od_plan *p,
                                         const struct byol_op_args *a, const float *dy,
                                         const void *dyb, float *dbias)
{
    const void *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    if (p->taps_bww) /* float32, and no bias on this path */
        return a->dweight ? od_conv_taps_backward_weights(ctx, p, x, dy, a->dweight) : BYOL_OK;
    if (p->bf16) { /* the forward's copy is gone: other layers have used the slot since */
        void *xb = od_slot(ctx, OD_SLOT_XB);
        byol_status st = reorder(ctx, p, P_R_XB, M_SRC, x, M_SRC_B, xb);
        if (st != BYOL_OK)
            return st;
        x = xb;
    }
    float *dw = od_slot(ctx, OD_SLOT_DW), *db = od_slot(ctx, OD_SLOT_SMALL);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, p->bf16 ? M_SRC_B : M_SRC, x)},
                              {DNNL_ARG_DIFF_DST, od_bind(p, p->bf16 ? M_DDST_B : M_DDST,
                                                          p->bf16 ? dyb : dy)},
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
    void *dyb = p->bf16 ? od_slot(ctx, OD_SLOT_DYB) : NULL;
    byol_status st = BYOL_OK;
    if (p->bf16) /* rounded once for both primitives */
        st = reorder(ctx, p, P_R_DYB, M_DDST, dy, M_DDST_B, dyb);
    if (st == BYOL_OK && a->dx[0])
        st = conv_backward_data(ctx, p, a, p->bf16 ? dyb : dy);
    if (st == BYOL_OK && (a->dweight || dbias))
        st = conv_backward_weights(ctx, p, a, dy, dyb, dbias);
    return st;
}
