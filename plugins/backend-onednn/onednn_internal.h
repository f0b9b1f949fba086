/* backend-onednn internals: the context (engine, stream, shared scratch arena), the per-layer
 * plan (cached oneDNN primitives and memory objects) and the helpers the op files share. */
#ifndef BYOL_ONEDNN_INTERNAL_H
#define BYOL_ONEDNN_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "byol/backend.h"

#define OD_NAME "onednn"

/* Regions of the context's scratch arena. Calls on one context run one at a time, so every
 * plan borrows the same regions; each is sized for the largest plan. */
enum od_slot {
    OD_SLOT_IN0,   /* x[0] converted to the layout a primitive wants */
    OD_SLOT_IN1,   /* x[1] likewise (add) */
    OD_SLOT_DY,    /* dy likewise */
    OD_SLOT_DX,    /* a gradient computed here and then added / converted into dx */
    OD_SLOT_DW,    /* conv weight gradient in the primitive's layout */
    OD_SLOT_SMALL, /* per-channel gradients (conv bias, batch-norm scale and shift) */
    OD_SLOT_PAD,   /* oneDNN's own scratchpad (user-managed mode) */
    OD_SLOT_WFWD,  /* conv weights in the forward primitive's layout, reordered per call */
    OD_SLOT_WBWD,  /* conv weights in the backward-data primitive's layout, likewise */
    OD_SLOT_XV,    /* conv: x in the layout / type a primitive reads (bf16, or another layout) */
    OD_SLOT_DYV,   /* conv: dy as backward data reads it (and backward weights, if the same) */
    OD_SLOT_YV,    /* conv: y as the forward primitive writes it, before the reorder into y */
    OD_SLOT_DYWV,  /* conv: dy as backward weights reads it, when unlike backward data's */
    OD_SLOT_STATS, /* batch norm: per-image partial sums of the batch statistics (doubles) */
    OD_SLOT_SX0,   /* bf16 storage (storage.c): float32 view of x[0] */
    OD_SLOT_SX1,   /* ... of x[1] (add) */
    OD_SLOT_SY,    /* ... of y */
    OD_SLOTS
};

struct od_ctx {
    const struct byol_host_api *host;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    int block; /* channel block of activations: 16 (AVX-512), 8 (AVX2) or 1 (plain) */
    int bf16;  /* precision = "bf16": convolutions in bfloat16, spatial activations stored in
                  bfloat16 (storage.c), everything else float32 */
    char *arena;
    size_t slot_bytes[OD_SLOTS], slot_off[OD_SLOTS], arena_bytes;
};

/* What t->layout points at for a blocked (nChw8c / nChw16c) or bfloat16 tensor; NULL means
 * plain float32 NCHW. */
struct od_layout {
    int block;
    int bf16; /* the storage is bfloat16 (uint16_t per element) */
};

#define OD_MAX_PRIMS 16
#define OD_MAX_MEMS 20
#define OD_IMPL_LEN 40

/* Convolution plans: how the primitives' layouts relate to the plan's (conv.c). */
struct od_conv {
    int variant[3];      /* forward, backward data, backward weights: the layouts asked for */
    int wbwd_alias;      /* backward data reads the forward's weight layout */
    int dx_reorder;      /* backward data writes its own layout of dx */
    int taps_bww;        /* backward weights by per-tap GEMMs (conv_taps.c) */
    int x_fwd, y_fwd;    /* the forward reads x / writes y in another layout or type */
    int dy_bwd_data;     /* backward data reads dy in another layout or type */
    int x_bwd_w, dy_bwd_w; /* backward weights likewise */
    int dy_bwd_w_shared; /* ... and reads backward data's copy of dy */
};

struct od_plan {
    struct byol_op_desc desc; /* with desc.out inferred */
    int in_block, out_block;  /* layouts the primitives read and write */
    dnnl_primitive_t prim[OD_MAX_PRIMS];
    dnnl_memory_t pad[OD_MAX_PRIMS]; /* each primitive's scratchpad, or NULL */
    dnnl_memory_t mem[OD_MAX_MEMS];  /* handles set per call; indices are per op */
    /* What each primitive runs, for od_plan_describe: its role ("fwd", "bwd_w", "reorder")
     * and oneDNN's implementation name ("jit:avx2", "gemm:jit", "ref:any"). */
    const char *role[OD_MAX_PRIMS];
    char impl[OD_MAX_PRIMS][OD_IMPL_LEN];
    struct od_conv conv;
    int bf16;                        /* conv: runs in bfloat16 (the context's precision) */
    size_t need[OD_SLOTS];           /* arena bytes this plan uses per slot */
    size_t saved_bytes;
};

/* ---- onednn.c: messages and plumbing shared by the op files ---------------------------- */
byol_status od_fail(const struct od_ctx *ctx, byol_status s, const char *fmt, ...)
    BYOL_PRINTF(3, 4);
/* A failed oneDNN call: the message names the op and the call. */
byol_status od_dnnl_fail(const struct od_ctx *ctx, const struct od_plan *p, const char *call,
                         dnnl_status_t s);

/* ---- layout.c: layouts, conversions and the scratch arena ------------------------------ */
int od_tensor_block(const struct byol_tensor *t);
/* The layout an activation of shape `s` lives in: the context's block when it divides C. */
int od_canonical_block(const struct od_ctx *ctx, struct byol_shape s);
/* 1 when blocks a and b store shape s identically (equal, or a single pixel per channel). */
int od_same_layout(int a, int b, struct byol_shape s);
dnnl_status_t od_md(dnnl_memory_desc_t *md, struct byol_shape s, int block);
/* dst (layout bd) = [dst +] scale * src (layout bs), both of logical shape s. */
void od_convert(float *dst, int bd, const float *src, int bs, struct byol_shape s, float scale,
                int accumulate, int threads);
float *od_slot(const struct od_ctx *ctx, enum od_slot slot);
byol_status od_arena_reserve(struct od_ctx *ctx, const size_t need[OD_SLOTS]);
void od_arena_free(struct od_ctx *ctx);
/* t's data in layout `block`: the tensor's own storage when it already is, else a converted
 * copy in the arena slot. */
const float *od_input(struct od_ctx *ctx, const struct byol_tensor *t, int block,
                      enum od_slot slot);
/* Where an op should write a gradient for t, in layout `block`: t itself when the layouts
 * agree and nothing is added or scaled, else the arena slot; od_output_end then adds or
 * converts the slot into t. */
float *od_output_begin(struct od_ctx *ctx, struct byol_tensor *t, int block, int accumulate,
                       float scale, enum od_slot slot);
void od_output_end(struct od_ctx *ctx, struct byol_tensor *t, int block, const float *buf,
                   int accumulate, float scale);
/* out[i] += in[i] for per-channel gradients. */
void od_add_into(float *out, const float *in, size_t n);

/* ---- storage.c: bfloat16 activations and float32 views of them around a call ----------- */
/* The layout pointer for channel block `block` in float32 or bfloat16 (NULL: plain f32). */
const void *od_layout_of(int block, int bf16);
int od_tensor_bf16(const struct byol_tensor *t);
/* 1 when a tensor of shape s that plan `producer` writes is stored in bfloat16. */
int od_stores_bf16(const struct od_ctx *ctx, const struct od_plan *producer, struct byol_shape s);
/* Between plain float32 NCHW and bfloat16 in channel block `block` (the edges). */
void od_bf16_from_plain(uint16_t *dst, int block, const float *src, struct byol_shape s,
                        int threads);
void od_bf16_to_plain(float *dst, const uint16_t *src, int block, struct byol_shape s,
                      int threads);
/* One value to bfloat16, rounded to nearest even as oneDNN's reorders round, and back. */
static inline uint16_t od_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static inline float od_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest even / widen, n elements. */
void od_bf16_pack(uint16_t *dst, const float *src, size_t n, int threads);
void od_bf16_unpack(float *dst, const uint16_t *src, size_t n, int threads);
struct od_views {
    struct byol_op_args args;
    struct byol_tensor x[2], y;
    struct byol_tensor *y_out; /* the bf16 output od_views_end rounds the view into */
};
/* The arguments an op runs on: `a` itself, or a copy whose bf16 tensors are float32 views
 * (those the op reads: all of a forward's inputs and its output, a backward's x or y as the
 * op needs). od_views_end then writes a forward's output view into its bf16 storage. */
const struct byol_op_args *od_views_begin(struct od_ctx *ctx, const struct od_plan *p,
                                          const struct byol_op_args *a, int backward,
                                          struct od_views *v);
void od_views_end(struct od_ctx *ctx, struct od_views *v);
/* Arena room for the views of plan p. */
void od_views_reserve(const struct od_ctx *ctx, struct od_plan *p);

/* ---- primitives.c: creating and running primitives ------------------------------------- */
/* A primitive descriptor with a user-managed scratchpad (and optional extra attributes). */
byol_status od_pd_create(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd);
/* The same without an error message: for asking again with other layouts. */
byol_status od_pd_try(struct od_ctx *ctx, struct od_plan *p, const void *op_desc,
                      const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd);
/* 1 when oneDNN implements pd with a reference (unvectorised C++) kernel: "ref:any", ... */
int od_pd_is_ref(const_dnnl_primitive_desc_t pd);
/* Records that primitive slot i of p runs `impl` in role `role` (kernels not from oneDNN). */
void od_plan_note(struct od_plan *p, int i, const char *role, const char *impl);
/* "fwd=jit:avx2 bwd_d=jit:avx2 bwd_w=gemm:jit reorder=jit:uni": what the plan runs. */
void od_plan_describe(const struct od_plan *p, char *buf, size_t size);
/* Makes p->prim[i] from pd, and its scratchpad memory; grows p->need[OD_SLOT_PAD]. */
byol_status od_prim_create(struct od_ctx *ctx, struct od_plan *p, int i,
                           const_dnnl_primitive_desc_t pd);
/* p->mem[i] for `md`, with no storage yet. */
byol_status od_mem_create(struct od_ctx *ctx, struct od_plan *p, int i,
                          const dnnl_memory_desc_t *md);
/* p->mem[i] pointed at `ptr` (oneDNN takes a non-const handle even for inputs). */
dnnl_memory_t od_bind(struct od_plan *p, int i, const void *ptr);
/* Runs p->prim[i] on the context's stream with the given arguments plus its scratchpad. */
byol_status od_exec(struct od_ctx *ctx, struct od_plan *p, int i, int nargs,
                    const dnnl_exec_arg_t *args);
/* A reorder src_md -> dst_md into p->prim[i]; `accumulate` adds into the destination. */
byol_status od_reorder_create(struct od_ctx *ctx, struct od_plan *p, int i,
                              const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              int accumulate);
const dnnl_memory_desc_t *od_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what);

/* ---- the op files: plan creation, forward and backward per op kind ---------------------- */
byol_status od_conv_plan(struct od_ctx *ctx, struct od_plan *p);
byol_status od_conv_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a);
byol_status od_conv_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a);

/* conv_taps.c: backward weights of convolutions with tiny outputs, one GEMM per kernel tap. */
int od_conv_taps_wanted(const struct byol_op_desc *d);
void od_conv_taps_reserve(struct od_plan *p);
byol_status od_conv_taps_backward_weights(struct od_ctx *ctx, struct od_plan *p, const float *x,
                                          const float *dy, float *dweight);

byol_status od_bn_plan(struct od_ctx *ctx, struct od_plan *p);
byol_status od_bn_forward(struct od_ctx *ctx, struct od_plan *p, int training,
                          const struct byol_op_args *a);
byol_status od_bn_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a);

byol_status od_pool_plan(struct od_ctx *ctx, struct od_plan *p);
byol_status od_pool_forward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a);
byol_status od_pool_backward(struct od_ctx *ctx, struct od_plan *p, const struct byol_op_args *a);

byol_status od_simple_plan(struct od_ctx *ctx, struct od_plan *p);
byol_status od_simple_forward(struct od_ctx *ctx, struct od_plan *p,
                              const struct byol_op_args *a);
byol_status od_simple_backward(struct od_ctx *ctx, struct od_plan *p,
                               const struct byol_op_args *a);

byol_status od_linear_plan(struct od_ctx *ctx, struct od_plan *p);
byol_status od_linear_forward(struct od_ctx *ctx, struct od_plan *p,
                              const struct byol_op_args *a);
byol_status od_linear_backward(struct od_ctx *ctx, struct od_plan *p,
                               const struct byol_op_args *a);

#endif
