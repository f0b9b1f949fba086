/* Convolution in backend-onednn: forward, backward-data and backward-weights primitives made
 * once per layer. Activations stay in the plan's channel-blocked layout; the weights live in
 * the caller's flat buffers as plain OIHW, so each call reorders them into its primitive's
 * layout in the context's shared scratch (a per-plan copy would hold every weight twice more,
 * for both networks, for a reorder that costs about 1% of the conv), and the weight gradient is
 * reordered back and added into dweight by one reorder with a sum post-op.
 *
 * Each primitive is asked first for the plan's own layouts. oneDNN does not have a JIT kernel
 * for every layout pair on every ISA: on AVX2, backward-weights of a 1-channel convolution
 * reading plain x and nChw8c dy has only its reference kernel, 400x slower. So a primitive
 * whose implementation is a reference one is asked again with other layouts (conv_variant),
 * and its x and dy (or y) are reordered at the call into the layouts it chose; the plain-layout
 * variant always has oneDNN's im2col + JIT sgemm kernel.
 *
 * With precision = "bf16" the three primitives read bfloat16 inputs and weights (rounded per call
 * into the arena by the same reorders) and write float32 outputs and gradients: the float32
 * master weights, activations and optimizer stay as they are. A layer oneDNN has no bf16 kernel
 * for stays f32. */
#include <string.h>

#include "onednn_internal.h"

enum {
    P_FWD,
    P_BWD_DATA,
    P_BWD_W, /* the convolution itself */
    P_R_WFWD,
    P_R_WBWD,
    P_R_DW, /* weights in, weight gradient out */
    P_R_DX,
    P_R_DX_ACC, /* backward data's own dx layout into the plan's */
    P_R_XFWD,
    P_R_Y,
    P_R_DYBD,
    P_R_XBW,
    P_R_DYBW /* activations in a variant's layout */
};
enum {
    M_SRC,
    M_DST,
    M_WUSER,
    M_WFWD,
    M_WBWD,
    M_BIAS,
    M_DSRC,
    M_DW,
    M_DWUSER,
    M_DBIAS,
    M_DSRC_OWN,
    M_XFWD,
    M_YFWD,
    M_DYBD,
    M_XBW,
    M_DYBW
};

/* Layouts a primitive may read x and y (or dy) in, best first. The plan's own needs no reorder;
 * channels-last has JIT kernels for every channel count; `any` lets oneDNN pick (it may pad
 * the channels to a block); plain NCHW always has the im2col + sgemm kernel. */
enum conv_variant { CV_PLAN, CV_NHWC, CV_ANY, CV_PLAIN, CV_COUNT };

struct conv_mds {
    dnnl_memory_desc_t src, dst, wuser, bias, src_any, wany, wany_b;
    dnnl_dims_t strides, pad;
};

/* The plan's layout `plan` as variant v asks for it, in data type dt. */
static dnnl_status_t variant_md(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plan, int v,
                                dnnl_data_type_t dt)
{
    static const dnnl_format_tag_t tags[CV_COUNT] = {
        [CV_NHWC] = dnnl_nhwc, [CV_ANY] = dnnl_format_tag_any, [CV_PLAIN] = dnnl_nchw};
    if (v == CV_PLAN) {
        *md = *plan;
        md->data_type = dt;
        return dnnl_success;
    }
    return dnnl_memory_desc_init_by_tag(md, 4, plan->dims, dt, tags[v]);
}

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
    m->strides[0] = d->u.conv.stride_h;
    m->strides[1] = d->u.conv.stride_w;
    m->pad[0] = d->u.conv.pad_h;
    m->pad[1] = d->u.conv.pad_w;
    return s == dnnl_success ? BYOL_OK : od_dnnl_fail(ctx, p, "dnnl_memory_desc_init", s);
}

/* The op descriptor of primitive k (P_FWD, P_BWD_DATA, P_BWD_W) in variant v: x and dy in
 * bfloat16 for a bf16 plan, y, dx and dweight always float32. Direct convolution: Winograd
 * would change the numbers. */
static dnnl_status_t conv_desc(const struct od_plan *p, const struct conv_mds *m, int k, int v,
                               dnnl_convolution_desc_t *cd)
{
    const dnnl_memory_desc_t *bias = p->desc.u.conv.has_bias ? &m->bias : NULL;
    const dnnl_memory_desc_t *w = p->bf16 ? &m->wany_b : &m->wany;
    const dnnl_dims_t *st = &m->strides, *pad = &m->pad;
    dnnl_data_type_t in = p->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t x, y;
    dnnl_status_t s = variant_md(&x, &m->src, v, in);
    if (s == dnnl_success)
        s = variant_md(&y, &m->dst, v, k == P_FWD ? dnnl_f32 : in);
    if (s != dnnl_success)
        return s;
    if (k == P_FWD)
        return dnnl_convolution_forward_desc_init(
            cd, dnnl_forward_training, dnnl_convolution_direct, &x, w, bias, &y, *st, *pad, *pad);
    /* dx may take another layout: with a plain input (the 3-channel stem) oneDNN has only a
     * reference backward-data kernel for plain dx, 1000x slower than its blocked one. */
    if (k == P_BWD_DATA)
        return dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &m->src_any, w,
                                                        &y, *st, *pad, *pad);
    return dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &x, &m->wany,
                                                       bias, &y, *st, *pad, *pad);
}

/* Primitive k in the first variant whose kernel is not a reference one (or, when every
 * variant's is, the first that exists, so that the plan still runs and reports it). */
static byol_status conv_pd(struct od_ctx *ctx, struct od_plan *p, const struct conv_mds *m, int k,
                           const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                           int *variant)
{
    *pd = NULL;
    for (int v = 0; v < CV_COUNT; v++) {
        dnnl_convolution_desc_t cd;
        dnnl_primitive_desc_t cand = NULL;
        if (conv_desc(p, m, k, v, &cd) != dnnl_success ||
            od_pd_try(ctx, p, &cd, hint, &cand) != BYOL_OK)
            continue;
        if (!*pd || (od_pd_is_ref(*pd) && !od_pd_is_ref(cand))) {
            dnnl_primitive_desc_destroy(*pd);
            *pd = cand;
            *variant = v;
        } else {
            dnnl_primitive_desc_destroy(cand);
        }
        if (!od_pd_is_ref(*pd))
            break;
    }
    if (!*pd)
        return od_fail(ctx, BYOL_ERR_UNSUPPORTED, "%s: oneDNN has no %s kernel for this shape",
                       byol_op_kind_name(p->desc.kind), p->bf16 ? "bf16" : "f32");
    return BYOL_OK;
}

/* The primitive descriptors this plan runs: forward, backward data, and backward weights
 * unless the tap path (conv_taps.c) does that. */
static byol_status conv_pds(struct od_ctx *ctx, struct od_plan *p, const struct conv_mds *m,
                            dnnl_primitive_desc_t pd[3])
{
    byol_status st = conv_pd(ctx, p, m, P_FWD, NULL, &pd[0], &p->conv.variant[P_FWD]);
    if (st == BYOL_OK)
        st = conv_pd(ctx, p, m, P_BWD_DATA, pd[0], &pd[1], &p->conv.variant[P_BWD_DATA]);
    if (st == BYOL_OK && !p->conv.taps_bww)
        st = conv_pd(ctx, p, m, P_BWD_W, pd[0], &pd[2], &p->conv.variant[P_BWD_W]);
    return st;
}

/* The reorders of the OIHW weights into the forward and backward-data layouts, whose
 * destinations are the context's weight slots. */
static byol_status conv_weight_reorders(struct od_ctx *ctx, struct od_plan *p,
                                        const struct conv_mds *m, const dnnl_memory_desc_t *wfwd,
                                        const dnnl_memory_desc_t *wbwd)
{
    p->conv.wbwd_alias = dnnl_memory_desc_equal(wfwd, wbwd);
    p->need[OD_SLOT_WFWD] = dnnl_memory_desc_get_size(wfwd);
    p->need[OD_SLOT_WBWD] = dnnl_memory_desc_get_size(wbwd);
    byol_status st = od_reorder_create(ctx, p, P_R_WFWD, &m->wuser, wfwd, 0);
    if (st == BYOL_OK && !p->conv.wbwd_alias)
        st = od_reorder_create(ctx, p, P_R_WBWD, &m->wuser, wbwd, 0);
    return st;
}

/* When backward data picks its own dx layout: reorders from it to the plan's input layout,
 * one that overwrites and one that adds. */
static byol_status conv_dx_reorders(struct od_ctx *ctx, struct od_plan *p,
                                    const dnnl_memory_desc_t *own, const dnnl_memory_desc_t *src)
{
    p->conv.dx_reorder = !dnnl_memory_desc_equal(own, src);
    if (!p->conv.dx_reorder)
        return BYOL_OK;
    size_t bytes = dnnl_memory_desc_get_size(own);
    if (bytes > p->need[OD_SLOT_DX])
        p->need[OD_SLOT_DX] = bytes;
    byol_status st = od_reorder_create(ctx, p, P_R_DX, own, src, 0);
    return st == BYOL_OK ? od_reorder_create(ctx, p, P_R_DX_ACC, own, src, 1) : st;
}

/* An activation edge: when the primitive's layout `want` differs from the plan's `have`, a
 * reorder between them (into `want`, or out of it when `out`) through arena slot `slot`. Sets
 * *needed. */
static byol_status conv_edge(struct od_ctx *ctx, struct od_plan *p, int prim,
                             const dnnl_memory_desc_t *have, const dnnl_memory_desc_t *want,
                             int out, enum od_slot slot, int *needed)
{
    *needed = !dnnl_memory_desc_equal(have, want);
    if (!*needed)
        return BYOL_OK;
    size_t bytes = dnnl_memory_desc_get_size(want);
    if (bytes > p->need[slot])
        p->need[slot] = bytes;
    return out ? od_reorder_create(ctx, p, prim, want, have, 0)
               : od_reorder_create(ctx, p, prim, have, want, 0);
}

/* The activation reorders of the layouts the primitives chose (md: the plan's memory
 * descriptors, indexed by M_*). Backward weights shares backward data's copy of dy when both
 * read the same layout. */
static byol_status conv_edges(struct od_ctx *ctx, struct od_plan *p,
                              const dnnl_memory_desc_t *const *md)
{
    struct od_conv *c = &p->conv;
    byol_status st = conv_edge(ctx, p, P_R_XFWD, md[M_SRC], md[M_XFWD], 0, OD_SLOT_XV, &c->x_fwd);
    if (st == BYOL_OK)
        st = conv_edge(ctx, p, P_R_Y, md[M_DST], md[M_YFWD], 1, OD_SLOT_YV, &c->y_fwd);
    if (st == BYOL_OK)
        st = conv_edge(ctx, p, P_R_DYBD, md[M_DST], md[M_DYBD], 0, OD_SLOT_DYV, &c->dy_bwd_data);
    if (st != BYOL_OK || c->taps_bww)
        return st;
    st = conv_edge(ctx, p, P_R_XBW, md[M_SRC], md[M_XBW], 0, OD_SLOT_XV, &c->x_bwd_w);
    c->dy_bwd_w_shared = c->dy_bwd_data && dnnl_memory_desc_equal(md[M_DYBD], md[M_DYBW]);
    if (st == BYOL_OK && !c->dy_bwd_w_shared)
        st = conv_edge(ctx, p, P_R_DYBW, md[M_DST], md[M_DYBW], 0, OD_SLOT_DYWV, &c->dy_bwd_w);
    return st;
}

static byol_status conv_mems(struct od_ctx *ctx, struct od_plan *p, const struct conv_mds *m,
                             dnnl_primitive_desc_t pd[3])
{
    const dnnl_memory_desc_t *dw = pd[2] ? od_query_md(pd[2], dnnl_query_diff_weights_md) : NULL;
    const dnnl_memory_desc_t *xw = pd[2] ? od_query_md(pd[2], dnnl_query_src_md) : &m->src;
    const dnnl_memory_desc_t *dyw = pd[2] ? od_query_md(pd[2], dnnl_query_diff_dst_md) : &m->dst;
    const dnnl_memory_desc_t *mds[] = {
        [M_SRC] = &m->src,
        [M_DST] = &m->dst,
        [M_WUSER] = &m->wuser,
        [M_WFWD] = od_query_md(pd[0], dnnl_query_weights_md),
        [M_WBWD] = od_query_md(pd[1], dnnl_query_weights_md),
        [M_BIAS] = &m->bias,
        [M_DSRC] = &m->src,
        [M_DW] = dw ? dw : &m->wuser,
        [M_DWUSER] = &m->wuser,
        [M_DBIAS] = &m->bias,
        [M_DSRC_OWN] = od_query_md(pd[1], dnnl_query_diff_src_md),
        [M_XFWD] = od_query_md(pd[0], dnnl_query_src_md),
        [M_YFWD] = od_query_md(pd[0], dnnl_query_dst_md),
        [M_DYBD] = od_query_md(pd[1], dnnl_query_diff_dst_md),
        [M_XBW] = xw,
        [M_DYBW] = dyw,
    };
    byol_status st = BYOL_OK;
    for (int i = 0; st == BYOL_OK && i < (int)(sizeof mds / sizeof mds[0]); i++)
        st = od_mem_create(ctx, p, i, mds[i]);
    if (st == BYOL_OK)
        st = conv_weight_reorders(ctx, p, m, mds[M_WFWD], mds[M_WBWD]);
    if (st == BYOL_OK && dw)
        st = od_reorder_create(ctx, p, P_R_DW, dw, &m->wuser, 1);
    if (st == BYOL_OK)
        st = conv_dx_reorders(ctx, p, mds[M_DSRC_OWN], &m->src);
    if (st == BYOL_OK)
        st = conv_edges(ctx, p, mds);
    p->need[OD_SLOT_DW] = dw ? dnnl_memory_desc_get_size(dw) : 0;
    p->need[OD_SLOT_SMALL] = (size_t)p->desc.u.conv.out_channels * sizeof(float);
    if (p->conv.taps_bww)
        od_conv_taps_reserve(p);
    return st;
}

static void conv_pds_destroy(dnnl_primitive_desc_t pd[3])
{
    for (int k = 0; k < 3; k++) {
        dnnl_primitive_desc_destroy(pd[k]);
        pd[k] = NULL;
    }
}

byol_status od_conv_plan(struct od_ctx *ctx, struct od_plan *p)
{
    struct conv_mds m;
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    byol_status st = conv_mds(ctx, p, &m);
    p->bf16 = ctx->bf16;
    /* The tap path is float32 and has no bias. */
    p->conv.taps_bww = od_conv_taps_wanted(&p->desc);
    if (st == BYOL_OK)
        st = conv_pds(ctx, p, &m, pd);
    if (st != BYOL_OK && p->bf16) { /* no bf16 kernel for this shape: float32 */
        conv_pds_destroy(pd);
        p->bf16 = 0;
        st = conv_pds(ctx, p, &m, pd);
    }
    for (int k = 0; st == BYOL_OK && k < 3; k++)
        if (pd[k])
            st = od_prim_create(ctx, p, P_FWD + k, pd[k]);
    if (st == BYOL_OK && p->conv.taps_bww)
        od_plan_note(p, P_BWD_W, "bwd_w", "taps:dnnl_sgemm");
    if (st == BYOL_OK)
        st = conv_mems(ctx, p, &m, pd);
    conv_pds_destroy(pd);
    return st;
}

static byol_status reorder(struct od_ctx *ctx, struct od_plan *p, int prim, int msrc,
                           const void *src, int mdst, void *dst)
{
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, od_bind(p, msrc, src)},
                              {DNNL_ARG_TO, od_bind(p, mdst, dst)}};
    return od_exec(ctx, p, prim, 2, args);
}

/* An activation in the plan's layout (memory m_have) as memory m_want reads it: *io itself,
 * or a copy in `slot` made by reorder `prim` when `needed`. */
static byol_status conv_in(struct od_ctx *ctx, struct od_plan *p, int needed, int prim, int m_have,
                           int m_want, enum od_slot slot, const void **io)
{
    if (!needed)
        return BYOL_OK;
    void *buf = od_slot(ctx, slot);
    byol_status st = reorder(ctx, p, prim, m_have, *io, m_want, buf);
    *io = buf;
    return st;
}

/* x as primitive k (P_FWD or P_BWD_W) is to read it. A bf16 tensor (storage.c) is bound as it
 * is when the primitive reads bf16 in the plan's layout (*direct: no reorder follows);
 * otherwise x is float32 in the plan's layout, for conv_in's reorder or the tap path. */
static const void *conv_x(struct od_ctx *ctx, const struct od_plan *p, const struct byol_tensor *t,
                          int k, int *direct)
{
    *direct = 0;
    if (!od_tensor_bf16(t))
        return od_input(ctx, t, p->in_block, OD_SLOT_IN0);
    int same = od_same_layout(od_tensor_block(t), p->in_block, t->shape);
    if (same && p->bf16 && p->conv.variant[k] == CV_PLAN && !(k == P_BWD_W && p->conv.taps_bww)) {
        *direct = 1;
        return t->data;
    }
    float *buf = od_slot(ctx, OD_SLOT_SX0);
    od_bf16_unpack(buf, (const uint16_t *)t->data, byol_shape_numel(t->shape), ctx->threads);
    if (same)
        return buf;
    float *to = od_slot(ctx, OD_SLOT_IN0);
    od_convert(to, p->in_block, buf, od_tensor_block(t), t->shape, 1.0f, 0, ctx->threads);
    return to;
}

byol_status od_conv_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    int has_bias = p->desc.u.conv.has_bias;
    float *w = od_slot(ctx, OD_SLOT_WFWD);
    byol_status st = reorder(ctx, p, P_R_WFWD, M_WUSER, a->weight, M_WFWD, w);
    if (st != BYOL_OK)
        return st;
    int direct;
    const void *x = conv_x(ctx, p, a->x[0], P_FWD, &direct);
    st = conv_in(ctx, p, p->conv.x_fwd && !direct, P_R_XFWD, M_SRC, M_XFWD, OD_SLOT_XV, &x);
    if (st != BYOL_OK)
        return st;
    float *y = p->conv.y_fwd ? od_slot(ctx, OD_SLOT_YV) : a->y->data;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_XFWD, x)},
                              {DNNL_ARG_WEIGHTS, od_bind(p, M_WFWD, w)},
                              {DNNL_ARG_DST, od_bind(p, M_YFWD, y)},
                              {DNNL_ARG_BIAS, has_bias ? od_bind(p, M_BIAS, a->bias) : NULL}};
    st = od_exec(ctx, p, P_FWD, has_bias ? 4 : 3, args);
    if (st == BYOL_OK && p->conv.y_fwd)
        st = reorder(ctx, p, P_R_Y, M_YFWD, y, M_DST, a->y->data);
    return st;
}

static byol_status conv_backward_data(struct od_ctx *ctx, struct od_plan *p,
                                      const struct byol_op_args *a, const void *dy)
{
    /* Other layers' forwards have reused the weight slots since, so reorder again. */
    float *w = od_slot(ctx, OD_SLOT_WBWD);
    int mw = p->conv.wbwd_alias ? M_WFWD : M_WBWD;
    int prim = p->conv.wbwd_alias ? P_R_WFWD : P_R_WBWD;
    byol_status st = reorder(ctx, p, prim, M_WUSER, a->weight, mw, w);
    if (st != BYOL_OK)
        return st;
    float *dx = p->conv.dx_reorder ? od_slot(ctx, OD_SLOT_DX)
                                   : od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0],
                                                     1.0f, OD_SLOT_DX);
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_DIFF_DST, od_bind(p, M_DYBD, dy)},
        {DNNL_ARG_WEIGHTS, od_bind(p, mw, w)},
        {DNNL_ARG_DIFF_SRC, od_bind(p, p->conv.dx_reorder ? M_DSRC_OWN : M_DSRC, dx)}};
    st = od_exec(ctx, p, P_BWD_DATA, 3, args);
    if (st != BYOL_OK)
        return st;
    if (!p->conv.dx_reorder) {
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

/* dy in the plan's layout; dyd backward data's copy of it (when made). */
static byol_status conv_backward_weights(struct od_ctx *ctx, struct od_plan *p,
                                         const struct byol_op_args *a, const float *dy,
                                         const void *dyd, float *dbias)
{
    const struct od_conv *c = &p->conv;
    int direct;
    const void *x = conv_x(ctx, p, a->x[0], P_BWD_W, &direct);
    if (c->taps_bww) /* float32, and no bias on this path */
        return a->dweight ? od_conv_taps_backward_weights(ctx, p, x, dy, a->dweight) : BYOL_OK;
    /* The forward's copy of x is gone: other layers have used the slot since. */
    byol_status st = conv_in(ctx, p, c->x_bwd_w && !direct, P_R_XBW, M_SRC, M_XBW, OD_SLOT_XV, &x);
    const void *dyw = c->dy_bwd_w_shared ? dyd : dy;
    if (st == BYOL_OK && !c->dy_bwd_w_shared)
        st = conv_in(ctx, p, c->dy_bwd_w, P_R_DYBW, M_DST, M_DYBW, OD_SLOT_DYWV, &dyw);
    if (st != BYOL_OK)
        return st;
    float *dw = od_slot(ctx, OD_SLOT_DW), *db = od_slot(ctx, OD_SLOT_SMALL);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_XBW, x)},
                              {DNNL_ARG_DIFF_DST, od_bind(p, M_DYBW, dyw)},
                              {DNNL_ARG_DIFF_WEIGHTS, od_bind(p, M_DW, dw)},
                              {DNNL_ARG_DIFF_BIAS, od_bind(p, M_DBIAS, db)}};
    st = od_exec(ctx, p, P_BWD_W, p->desc.u.conv.has_bias ? 4 : 3, args);
    if (st == BYOL_OK && a->dweight)
        st = reorder(ctx, p, P_R_DW, M_DW, dw, M_DWUSER, a->dweight);
    if (st == BYOL_OK && dbias)
        od_add_into(dbias, db, (size_t)p->desc.u.conv.out_channels);
    return st;
}

byol_status od_conv_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    float *dbias = p->desc.u.conv.has_bias ? a->dbias : NULL;
    int want_dw = a->dweight || dbias;
    const float *dy = od_input(ctx, a->dy, p->out_block, OD_SLOT_DY);
    /* Backward data's copy of dy, made once when backward weights reads it too. */
    const void *dyd = dy;
    byol_status st = BYOL_OK;
    if (a->dx[0] || (want_dw && p->conv.dy_bwd_w_shared))
        st = conv_in(ctx, p, p->conv.dy_bwd_data, P_R_DYBD, M_DST, M_DYBD, OD_SLOT_DYV, &dyd);
    if (st == BYOL_OK && a->dx[0])
        st = conv_backward_data(ctx, p, a, dyd);
    if (st == BYOL_OK && want_dw)
        st = conv_backward_weights(ctx, p, a, dy, dyd, dbias);
    return st;
}
