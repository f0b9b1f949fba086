/* Activation layouts of backend-onednn: plain NCHW or channel-blocked nChw{8,16}c, conversions
 * between them (at the edges, and for tensors a plan did not allocate), and the scratch arena
 * that every plan of a context shares. */
#include <omp.h>
#include <string.h>

#include "onednn_internal.h"

int od_tensor_block(const struct byol_tensor *t)
{
    return t->layout ? ((const struct od_layout *)t->layout)->block : 1;
}

int od_canonical_block(const struct od_ctx *ctx, struct byol_shape s)
{
    return ctx->block > 1 && s.c % ctx->block == 0 ? ctx->block : 1;
}

int od_same_layout(int a, int b, struct byol_shape s)
{
    /* With one pixel per channel, nChw16c (C a multiple of 16) is NCHW byte for byte. */
    return a == b || (size_t)s.h * (size_t)s.w == 1;
}

dnnl_status_t od_md(dnnl_memory_desc_t *md, struct byol_shape s, int block)
{
    dnnl_dims_t dims = {s.n, s.c, s.h, s.w};
    /* A plain single-pixel tensor is also NHWC; that name gets oneDNN's channels-last
     * kernels (batch norm of the projector) instead of the slow strided-plane ones. */
    dnnl_format_tag_t tag = block == 16                      ? dnnl_nChw16c
                            : block == 8                     ? dnnl_nChw8c
                            : (size_t)s.h * (size_t)s.w == 1 ? dnnl_nhwc
                                                             : dnnl_nchw;
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

/* Offset of (n, c, i) in layout `b` (b = 1 is plain NCHW), with hw pixels per plane. */
static size_t offset(int b, int channels, size_t hw, int n, int c, size_t i)
{
    size_t blk = (size_t)n * (size_t)(channels / b) + (size_t)(c / b);
    return (blk * hw + i) * (size_t)b + (size_t)(c % b);
}

static void convert_flat(float *dst, const float *src, size_t numel, float scale, int accumulate,
                         int threads)
{
    if (!accumulate && scale == 1.0f) {
        if (dst != src)
            memcpy(dst, src, numel * sizeof(float));
        return;
    }
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < numel; i++)
        dst[i] = accumulate ? dst[i] + scale * src[i] : scale * src[i];
}

void od_convert(float *dst, int bd, const float *src, int bs, struct byol_shape s, float scale,
                int accumulate, int threads)
{
    size_t hw = (size_t)s.h * (size_t)s.w;
    if (od_same_layout(bd, bs, s)) {
        convert_flat(dst, src, byol_shape_numel(s), scale, accumulate, threads);
        return;
    }
    /* Only at the edges (images in, tensors a test wrote): one plane per iteration, so no two
     * threads touch the same element. */
    int planes = s.n * s.c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < planes; p++) {
        int n = p / s.c, c = p % s.c;
        float *d = dst + offset(bd, s.c, hw, n, c, 0);
        const float *x = src + offset(bs, s.c, hw, n, c, 0);
        for (size_t i = 0; i < hw; i++) {
            float v = scale * x[i * (size_t)bs];
            d[i * (size_t)bd] = accumulate ? d[i * (size_t)bd] + v : v;
        }
    }
}

void od_bf16_from_plain(uint16_t *dst, int block, const float *src, struct byol_shape s,
                        int threads)
{
    size_t hw = (size_t)s.h * (size_t)s.w;
    int planes = s.n * s.c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < planes; p++) {
        uint16_t *d = dst + offset(block, s.c, hw, p / s.c, p % s.c, 0);
        const float *x = src + (size_t)p * hw;
        for (size_t i = 0; i < hw; i++)
            d[i * (size_t)block] = od_to_bf16(x[i]);
    }
}

void od_bf16_to_plain(float *dst, const uint16_t *src, int block, struct byol_shape s,
                      int threads)
{
    size_t hw = (size_t)s.h * (size_t)s.w;
    int planes = s.n * s.c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < planes; p++) {
        const uint16_t *x = src + offset(block, s.c, hw, p / s.c, p % s.c, 0);
        float *d = dst + (size_t)p * hw;
        for (size_t i = 0; i < hw; i++)
            d[i] = od_from_bf16(x[i * (size_t)block]);
    }
}

/* ---- the arena -------------------------------------------------------------------------- */

float *od_slot(const struct od_ctx *ctx, enum od_slot slot)
{
    return (float *)(ctx->arena + ctx->slot_off[slot]);
}

/* Grows the arena when a plan needs more of a slot. Only plan creation calls this, never an
 * op, so no call allocates; the contents need not survive, since no call leaves data there. */
byol_status od_arena_reserve(struct od_ctx *ctx, const size_t need[OD_SLOTS])
{
    int grow = 0;
    for (int i = 0; i < OD_SLOTS; i++) {
        size_t want = (need[i] + 63) & ~(size_t)63;
        if (want > ctx->slot_bytes[i]) {
            ctx->slot_bytes[i] = want;
            grow = 1;
        }
    }
    if (!grow)
        return BYOL_OK;
    size_t total = 0;
    for (int i = 0; i < OD_SLOTS; i++) {
        ctx->slot_off[i] = total;
        total += ctx->slot_bytes[i];
    }
    char *arena = ctx->host->alloc(total ? total : 64);
    if (!arena)
        return od_fail(ctx, BYOL_ERR_NOMEM, "cannot allocate %zu bytes of scratch", total);
    ctx->host->free(ctx->arena);
    ctx->arena = arena;
    ctx->arena_bytes = total;
    return BYOL_OK;
}

void od_arena_free(struct od_ctx *ctx)
{
    ctx->host->free(ctx->arena);
    ctx->arena = NULL;
}

/* ---- inputs and outputs of one call ----------------------------------------------------- */

const float *od_input(struct od_ctx *ctx, const struct byol_tensor *t, int block,
                      enum od_slot slot)
{
    int have = od_tensor_block(t);
    if (od_same_layout(have, block, t->shape))
        return t->data;
    float *buf = od_slot(ctx, slot);
    od_convert(buf, block, t->data, have, t->shape, 1.0f, 0, ctx->threads);
    return buf;
}

float *od_output_begin(struct od_ctx *ctx, struct byol_tensor *t, int block, int accumulate,
                       float scale, enum od_slot slot)
{
    if (!accumulate && scale == 1.0f && od_same_layout(od_tensor_block(t), block, t->shape))
        return t->data;
    return od_slot(ctx, slot);
}

void od_output_end(struct od_ctx *ctx, struct byol_tensor *t, int block, const float *buf,
                   int accumulate, float scale)
{
    if (buf != t->data)
        od_convert(t->data, od_tensor_block(t), buf, block, t->shape, scale, accumulate,
                   ctx->threads);
}

void od_add_into(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] += in[i];
}
