/* Convolution backward-weights for tiny outputs (ResNet-18's layer4 at 64 px, layer3 and layer4
 * at 32 px) as one GEMM per kernel tap over the pixels that tap really reaches. With a 2x2 or
 * 1x1 output most taps of a padded 3x3 kernel fall on padding, and oneDNN's kernel runs at a
 * third of its usual speed there; skipping the padding does 44% (2x2) or 11% (1x1) of the work,
 * and the gradient lands in OIHW directly, with no reorder. */
#include <omp.h>
#include <string.h>

#include "onednn_internal.h"

/* Outputs of at most this many pixels take the tap path. */
#define TAPS_MAX_PIXELS 4

int od_conv_taps_wanted(const struct byol_op_desc *d)
{
    return d->kind == BYOL_OP_CONV2D && !d->u.conv.has_bias &&
           d->out.h * d->out.w <= TAPS_MAX_PIXELS && d->u.conv.kernel_h * d->u.conv.kernel_w > 1;
}

/* Rows of the gathered matrices: at most every output pixel of the batch. */
void od_conv_taps_reserve(struct od_plan *p)
{
    const struct byol_op_desc *d = &p->desc;
    size_t k = (size_t)d->out.n * (size_t)d->out.h * (size_t)d->out.w;
    size_t a = k * (size_t)d->out.c * sizeof(float), b = k * (size_t)d->in[0].c * sizeof(float);
    size_t t = (size_t)d->out.c * (size_t)d->in[0].c * sizeof(float);
    if (a > p->need[OD_SLOT_DX])
        p->need[OD_SLOT_DX] = a;
    if (b > p->need[OD_SLOT_IN1])
        p->need[OD_SLOT_IN1] = b;
    if (t > p->need[OD_SLOT_DW])
        p->need[OD_SLOT_DW] = t;
}

/* [lo, hi): the outputs o with 0 <= o * stride - pad + tap < size. */
static void tap_range(int tap, int stride, int pad, int size, int out, int *lo, int *hi)
{
    int l = pad - tap > 0 ? (pad - tap + stride - 1) / stride : 0;
    int h = (size - 1 + pad - tap) / stride + 1;
    if (size - 1 + pad - tap < 0)
        h = 0;
    *lo = l;
    *hi = h < out ? h : out;
}

/* Copy the channels of pixel (n, h, w) of a (N, C, H, W) tensor in layout `block` into row. */
static void gather_pixel(float *row, const float *t, int block, int channels, int hw, int n,
                         int pix)
{
    size_t nb = (size_t)n * (size_t)(channels / block);
    for (int cb = 0; cb < channels / block; cb++) {
        const float *src = t + ((nb + (size_t)cb) * (size_t)hw + (size_t)pix) * (size_t)block;
        if (block > 1)
            memcpy(row + (size_t)cb * (size_t)block, src, (size_t)block * sizeof(float));
        else
            row[cb] = src[0];
    }
}

struct tap_args {
    const float *x, *dy;
    int xb, yb; /* their channel blocks */
    float *a, *b;
};

/* Gather dy (K, O) and x (K, C) over the pixels of tap (kh, kw); returns K. */
static int tap_gather(const struct byol_op_desc *d, const struct tap_args *t, int kh, int kw)
{
    int oh0, oh1, ow0, ow1;
    tap_range(kh, d->u.conv.stride_h, d->u.conv.pad_h, d->in[0].h, d->out.h, &oh0, &oh1);
    tap_range(kw, d->u.conv.stride_w, d->u.conv.pad_w, d->in[0].w, d->out.w, &ow0, &ow1);
    int rows = oh1 > oh0 ? oh1 - oh0 : 0, cols = ow1 > ow0 ? ow1 - ow0 : 0;
    int per = rows * cols, o = d->out.c, c = d->in[0].c;
    if (per == 0)
        return 0;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < d->out.n * per; k++) {
        int n = k / per, oh = oh0 + k % per / cols, ow = ow0 + k % cols;
        int ih = oh * d->u.conv.stride_h - d->u.conv.pad_h + kh;
        int iw = ow * d->u.conv.stride_w - d->u.conv.pad_w + kw;
        gather_pixel(t->a + (size_t)k * o, t->dy, t->yb, o, d->out.h * d->out.w, n,
                     oh * d->out.w + ow);
        gather_pixel(t->b + (size_t)k * c, t->x, t->xb, c, d->in[0].h * d->in[0].w, n,
                     ih * d->in[0].w + iw);
    }
    return d->out.n * per;
}

byol_status od_conv_taps_backward_weights(struct od_ctx *ctx, struct od_plan *p, const float *x,
                                          const float *dy, float *dweight)
{
    const struct byol_op_desc *d = &p->desc;
    int o = d->out.c, c = d->in[0].c, taps = d->u.conv.kernel_h * d->u.conv.kernel_w;
    struct tap_args t = {
        x, dy, p->in_block, p->out_block, od_slot(ctx, OD_SLOT_DX), od_slot(ctx, OD_SLOT_IN1)};
    float *g = od_slot(ctx, OD_SLOT_DW);
    for (int tap = 0; tap < taps; tap++) {
        int k = tap_gather(d, &t, tap / d->u.conv.kernel_w, tap % d->u.conv.kernel_w);
        if (k == 0)
            continue;
        /* g (O, C) = a^T (O, K) . b (K, C) */
        dnnl_status_t s = dnnl_sgemm('T', 'N', o, c, k, 1.0f, t.a, o, t.b, c, 0.0f, g, c);
        if (s != dnnl_success)
            return od_dnnl_fail(ctx, p, "dnnl_sgemm", s);
#pragma omp parallel for schedule(static)
        for (int oc = 0; oc < o * c; oc++)
            dweight[(size_t)oc * (size_t)taps + (size_t)tap] += g[oc];
    }
    return BYOL_OK;
}
