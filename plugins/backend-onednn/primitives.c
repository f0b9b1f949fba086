/* Creating and running oneDNN primitives for backend-onednn: every primitive is made when its
 * plan is created, with a user-managed scratchpad in the context's arena, and its memory
 * objects are made once and re-pointed at each call's buffers. */
#include <stdio.h>
#include <string.h>

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

static dnnl_status_t pd_create(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                               const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    dnnl_primitive_attr_t attr;
    *pd = NULL;
    if (user_scratchpad_attr(ctx, p, &attr) != BYOL_OK)
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, ctx->engine, hint);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        *pd = NULL;
    return s;
}

byol_status od_pd_create(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    dnnl_status_t s = pd_create(ctx, p, op_desc, hint, pd);
    return s == dnnl_success ? BYOL_OK : od_dnnl_fail(ctx, p, "dnnl_primitive_desc_create", s);
}

byol_status od_pd_try(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                      const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    return pd_create(ctx, p, op_desc, hint, pd) == dnnl_success ? BYOL_OK : BYOL_ERR_UNSUPPORTED;
}

static const char *pd_impl(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
        return "?";
    return impl ? impl : "?";
}

int od_pd_is_ref(const_dnnl_primitive_desc_t pd)
{
    return strncmp(pd_impl(pd), "ref", 3) == 0;
}

/* "fwd", "bwd_d", ... from what the primitive computes. */
static const char *pd_role(const_dnnl_primitive_desc_t pd)
{
    dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
    dnnl_prop_kind_t prop = dnnl_prop_kind_undef;
    dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
    if (kind == dnnl_reorder)
        return "reorder";
    dnnl_primitive_desc_query(pd, dnnl_query_prop_kind, 0, &prop);
    switch (prop) {
    case dnnl_forward_training: return "fwd";
    case dnnl_forward_inference: return "fwd_inf";
    case dnnl_backward_data: return "bwd_d";
    case dnnl_backward_weights: return "bwd_w";
    case dnnl_backward: return "bwd";
    default: return "fwd"; /* binary and other ops without a propagation kind */
    }
}

void od_plan_note(struct od_plan *p, int i, const char *role, const char *impl)
{
    p->role[i] = role;
    snprintf(p->impl[i], sizeof p->impl[i], "%s", impl);
}

/* Appends " role=impl" unless the same text is there already (reorders repeat). */
static void describe_add(char *buf, size_t size, size_t *len, const char *role, const char *impl)
{
    char item[OD_IMPL_LEN + 16];
    snprintf(item, sizeof item, "%s%s=%s", *len ? " " : "", role, impl);
    if (strstr(buf, item + (*len ? 1 : 0)) || *len >= size)
        return;
    int n = snprintf(buf + *len, size - *len, "%s", item);
    *len += n > 0 ? (size_t)n : 0;
    if (*len >= size)
        *len = size - 1;
}

void od_plan_describe(const struct od_plan *p, char *buf, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (int pass = 0; pass < 2; pass++) /* the op's own primitives, then the reorders */
        for (int i = 0; i < OD_MAX_PRIMS; i++)
            if (p->role[i] && (strcmp(p->role[i], "reorder") == 0) == pass)
                describe_add(buf, size, &len, p->role[i], p->impl[i]);
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
    od_plan_note(p, i, pd_role(pd), pd_impl(pd));
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
