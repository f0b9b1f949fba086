/* Creating and running oneDNN primitives for backend-onednn: every primitive is made when its
 * plan is created, with a user-managed scratchpad in the context's arena, and its memory
 * objects are made once and re-pointed at each call's buffers. */
#include "onednn_internal.h"

static byol_status user_scratchpad_attr(const struct od_ctx *ctx, const struct od_plan *p,
                                        dnnl_primitive_attr_t *attr)
{
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return od_dnnl_fail(ctx, p, "dnnl_primitive_attr_create", s);
    }
    return BYOL_OK;
}

byol_status od_pd_create(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    dnnl_primitive_attr_t attr;
    byol_status st = user_scratchpad_attr(ctx, p, &attr);
    if (st != BYOL_OK)
        return st;
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, ctx->engine, hint);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) {
        *pd = NULL;
        return od_dnnl_fail(ctx, p, "dnnl_primitive_desc_create", s);
    }
    return BYOL_OK;
}

const dnnl_memory_desc_t *od_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

byol_status od_prim_create(struct od_ctx *ctx, struct od_plan *p, int i,
                           const_dnnl_primitive_desc_t pd)
{
    dnnl_status_t s = dnnl_primitive_create(&p->prim[i], pd);
    if (s != dnnl_success) {
        p->prim[i] = NULL;
        return od_dnnl_fail(ctx, p, "dnnl_primitive_create", s);
    }
    const dnnl_memory_desc_t *pad = od_query_md(pd, dnnl_query_scratchpad_md);
    size_t bytes = pad ? dnnl_memory_desc_get_size(pad) : 0;
    if (bytes == 0)
        return BYOL_OK;
    s = dnnl_memory_create(&p->pad[i], pad, ctx->engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) {
        p->pad[i] = NULL;
        return od_dnnl_fail(ctx, p, "dnnl_memory_create (scratchpad)", s);
    }
    if (bytes > p->need[OD_SLOT_PAD])
        p->need[OD_SLOT_PAD] = bytes;
    return BYOL_OK;
}

byol_status od_mem_create(struct od_ctx *ctx, struct od_plan *p, int i,
                          const dnnl_memory_desc_t *md)
{
    dnnl_status_t s = dnnl_memory_create(&p->mem[i], md, ctx->engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) {
        p->mem[i] = NULL;
        return od_dnnl_fail(ctx, p, "dnnl_memory_create", s);
    }
    return BYOL_OK;
}

dnnl_memory_t od_bind(struct od_plan *p, int i, const void *ptr)
{
    /* Re-pointing is a field store for dense CPU memory (none of ours has padding). */
    if (!p->mem[i] || dnnl_memory_set_data_handle(p->mem[i], (void *)ptr) != dnnl_success)
        return NULL;
    return p->mem[i];
}

byol_status od_exec(struct od_ctx *ctx, struct od_plan *p, int i, int nargs,
                    const dnnl_exec_arg_t *args)
{
    dnnl_exec_arg_t all[16];
    if (nargs > 15)
        return od_fail(ctx, BYOL_ERR_INTERNAL, "%s: too many primitive arguments",
                       byol_op_kind_name(p->desc.kind));
    for (int k = 0; k < nargs; k++) {
        if (!args[k].memory)
            return od_fail(ctx, BYOL_ERR_INTERNAL, "%s: cannot bind argument %d",
                           byol_op_kind_name(p->desc.kind), args[k].arg);
        all[k] = args[k];
    }
    if (p->pad[i]) {
        dnnl_memory_set_data_handle(p->pad[i], od_slot(ctx, OD_SLOT_PAD));
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->pad[i]};
    }
    dnnl_status_t s = dnnl_primitive_execute(p->prim[i], ctx->stream, nargs, all);
    if (s == dnnl_success)
        s = dnnl_stream_wait(ctx->stream);
    return s == dnnl_success ? BYOL_OK : od_dnnl_fail(ctx, p, "dnnl_primitive_execute", s);
}

byol_status od_reorder_create(struct od_ctx *ctx, struct od_plan *p, int i,
                              const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              int accumulate)
{
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po = NULL;
    byol_status st = user_scratchpad_attr(ctx, p, &attr);
    if (st != BYOL_OK)
        return st;
    dnnl_status_t s = dnnl_success;
    if (accumulate) {
        /* dst = src + 1.0 * dst: a weight gradient added into the caller's .grad. */
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, src, ctx->engine, dst, ctx->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return od_dnnl_fail(ctx, p, "dnnl_reorder_primitive_desc_create", s);
    st = od_prim_create(ctx, p, i, pd);
    dnnl_primitive_desc_destroy(pd);
    return st;
}
