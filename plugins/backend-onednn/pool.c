/* Pooling in backend-onednn: max pool (its argmax workspace is the layer's `saved` scratch,
 * which the caller keeps from forward to backward) and the global average pool, which is an
 * average pool whose window is the whole plane. */
#include "onednn_internal.h"

enum { P_FWD, P_BWD };
enum { M_SRC, M_DST, M_WS, M_DDST, M_DSRC };

static int is_max(const struct od_plan *p)
{
    return p->desc.kind == BYOL_OP_MAXPOOL;
}

static byol_status pool_check(struct od_ctx *ctx, const struct od_plan *p)
{
    const struct byol_op_desc *d = &p->desc;
    int k = d->u.pool.kernel, s = d->u.pool.stride, pad = d->u.pool.pad;
    if (is_max(p) && (k < 1 || s < 1 || pad < 0 || pad > k / 2))
        return od_fail(ctx, BYOL_ERR_INVALID,
                       "maxpool: kernel %d, stride %d, pad %d: need kernel, stride >= 1 and "
                       "0 <= pad <= kernel/2",
                       k, s, pad);
    return BYOL_OK;
}

static byol_status pool_pds(struct od_ctx *ctx, struct od_plan *p, const dnnl_memory_desc_t *src,
                            const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t pd[2])
{
    const struct byol_op_desc *d = &p->desc;
    dnnl_dims_t kernel = {d->in[0].h, d->in[0].w}, strides = {1, 1}, pad = {0, 0};
    dnnl_alg_kind_t alg = dnnl_pooling_avg_exclude_padding;
    if (is_max(p)) {
        /* Padding never wins a max in oneDNN, as PyTorch pads with -inf. */
        kernel[0] = kernel[1] = d->u.pool.kernel;
        strides[0] = strides[1] = d->u.pool.stride;
        pad[0] = pad[1] = d->u.pool.pad;
        alg = dnnl_pooling_max;
    }
    dnnl_pooling_desc_t fwd, bwd;
    dnnl_status_t s = dnnl_pooling_forward_desc_init(&fwd, dnnl_forward_training, alg, src, dst,
                                                     strides, kernel, pad, pad);
    if (s == dnnl_success)
        s = dnnl_pooling_backward_desc_init(&bwd, alg, src, dst, strides, kernel, pad, pad);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_pooling_*_desc_init", s);
    byol_status st = od_pd_create(ctx, p, &fwd, NULL, &pd[0]);
    if (st == BYOL_OK)
        st = od_pd_create(ctx, p, &bwd, pd[0], &pd[1]);
    return st;
}

byol_status od_pool_plan(struct od_ctx *ctx, struct od_plan *p)
{
    byol_status st = pool_check(ctx, p);
    if (st != BYOL_OK)
        return st;
    dnnl_memory_desc_t src, dst;
    dnnl_status_t s = od_md(&src, p->desc.in[0], p->in_block);
    if (s == dnnl_success)
        s = od_md(&dst, p->desc.out, p->out_block);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_memory_desc_init_by_tag", s);
    dnnl_primitive_desc_t pd[2] = {NULL, NULL};
    st = pool_pds(ctx, p, &src, &dst, pd);
    for (int k = 0; st == BYOL_OK && k < 2; k++)
        st = od_prim_create(ctx, p, P_FWD + k, pd[k]);
    const dnnl_memory_desc_t *ws = st == BYOL_OK ? od_query_md(pd[0], dnnl_query_workspace_md) : NULL;
    if (st == BYOL_OK && is_max(p))
        p->saved_bytes = ws ? dnnl_memory_desc_get_size(ws) : 0;
    const dnnl_memory_desc_t *mds[] = {&src, &dst, p->saved_bytes ? ws : &dst, &dst, &src};
    for (int i = 0; st == BYOL_OK && i < 5; i++)
        st = od_mem_create(ctx, p, i, mds[i]);
    for (int k = 0; k < 2; k++)
        dnnl_primitive_desc_destroy(pd[k]);
    return st;
}

byol_status od_pool_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    const float *x = od_input(ctx, a->x[0], p->in_block, OD_SLOT_IN0);
    int ws = p->saved_bytes > 0;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, od_bind(p, M_SRC, x)},
                              {DNNL_ARG_DST, od_bind(p, M_DST, a->y->data)},
                              {DNNL_ARG_WORKSPACE, ws ? od_bind(p, M_WS, a->saved) : NULL}};
    return od_exec(ctx, p, P_FWD, ws ? 3 : 2, args);
}

byol_status od_pool_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a)
{
    if (!a->dx[0])
        return BYOL_OK;
    const float *dy = od_input(ctx, a->dy, p->out_block, OD_SLOT_DY);
    float *dx = od_output_begin(ctx, a->dx[0], p->in_block, a->accumulate[0], 1.0f, OD_SLOT_DX);
    int ws = p->saved_bytes > 0;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, od_bind(p, M_DDST, dy)},
                              {DNNL_ARG_DIFF_SRC, od_bind(p, M_DSRC, dx)},
                              {DNNL_ARG_WORKSPACE, ws ? od_bind(p, M_WS, a->saved) : NULL}};
    byol_status st = od_exec(ctx, p, P_BWD, ws ? 3 : 2, args);
    if (st == BYOL_OK)
        od_output_end(ctx, a->dx[0], p->in_block, dx, a->accumulate[0], 1.0f);
    return st;
}
