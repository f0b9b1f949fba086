/* Pillow's resampling, reproduced: two passes (horizontal, then vertical) with the bilinear
 * (triangle) filter widened by the scale when shrinking, coefficients in 22-bit fixed point and
 * 8-bit rounding after each pass, so the pixels equal Image.resize's. Two uses: torchvision's
 * Resize(size) + CenterCrop(size) (Python's round-half-even crop offsets), and a region of an
 * image resampled straight to an output size, as Image.crop(region).resize(size) does (the
 * PIL path of RandomResizedCrop). Output is planar floats, u8 / 255 (ToTensor). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#define PRECISION_BITS (32 - 8 - 2) /* Pillow's, for 8-bit images */

/* One pass's filter taps: for output pixel i, in[first[i] + k] * w[i * taps + k]. */
struct taps {
    int taps, n;
    int *first, *count;
    int32_t *w;
};

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static void taps_free(struct taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

/* Taps for outputs [o0, o0 + n) of resampling the span [in0, in1) of a row of in_size pixels
 * to out_size pixels (Pillow's precompute_coeffs and normalize_coeffs_8bpc), then moved right
 * by `shift` pixels (the row's place in a larger buffer). */
static byol_status taps_make(int in_size, double in0, double in1, int out_size, int o0, int n,
                             int shift, struct taps *t)
{
    double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale, ss = 1.0 / filterscale; /* the triangle's support is 1 */
    t->taps = (int)ceil(support) * 2 + 1;
    t->n = n;
    t->first = malloc((size_t)n * sizeof *t->first);
    t->count = malloc((size_t)n * sizeof *t->count);
    t->w = calloc((size_t)n * (size_t)t->taps, sizeof *t->w);
    double *k = malloc((size_t)t->taps * sizeof *k);
    if (!t->first || !t->count || !t->w || !k) {
        taps_free(t);
        free(k);
        return byol_error(BYOL_ERR_NOMEM, "out of memory for resize filter taps");
    }
    for (int i = 0; i < n; i++) {
        double center = in0 + (o0 + i + 0.5) * scale, sum = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = (hi > in_size ? in_size : hi) - lo;
        for (int x = 0; x < hi; x++)
            sum += k[x] = triangle((x + lo - center + 0.5) * ss);
        for (int x = 0; x < hi; x++) {
            double v = sum != 0.0 ? k[x] / sum : k[x];
            v *= (double)(1 << PRECISION_BITS);
            t->w[(size_t)i * (size_t)t->taps + (size_t)x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        t->first[i] = lo + shift;
        t->count[i] = hi;
    }
    free(k);
    return BYOL_OK;
}

static uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One output pixel of C channels from `n` input pixels, in Pillow's 32-bit arithmetic (the
 * weights of a tap set sum to 1 << PRECISION_BITS, so 255 times them fits). */
#define TAP_PIXEL(C)                                                                               \
    static void tap_pixel##C(const uint8_t *in, const int32_t *w, int n, uint8_t *out)             \
    {                                                                                              \
        int32_t acc[C];                                                                            \
        for (int k = 0; k < C; k++)                                                                \
            acc[k] = 1 << (PRECISION_BITS - 1);                                                    \
        for (int t = 0; t < n; t++, in += C)                                                       \
            for (int k = 0; k < C; k++)                                                            \
                acc[k] += (int32_t)in[k] * w[t];                                                   \
        for (int k = 0; k < C; k++)                                                                \
            out[k] = clip8(acc[k]);                                                                \
    }
TAP_PIXEL(1)
TAP_PIXEL(3)

/* The horizontal pass for rows r0 .. r1 of `in` into mid (rows of ow * c bytes). */
static void pass_rows(const struct byol_image *in, const struct taps *tx, int r0, int r1,
                      uint8_t *mid)
{
    int c = in->c, ow = tx->n;
    size_t row = (size_t)ow * (size_t)c;
    for (int y = r0; y < r1; y++) {
        const uint8_t *src = in->px + (size_t)y * in->w * (size_t)c;
        uint8_t *dst = mid + (size_t)(y - r0) * row;
        for (int x = 0; x < ow; x++) {
            const int32_t *w = tx->w + (size_t)x * (size_t)tx->taps;
            if (c == 3)
                tap_pixel3(src + (size_t)tx->first[x] * 3, w, tx->count[x], dst + (size_t)x * 3);
            else
                tap_pixel1(src + tx->first[x], w, tx->count[x], dst + x);
        }
    }
}

/* Both passes: the horizontal one for the rows the vertical taps read, then the vertical one
 * a whole output row at a time (tap by tap over the row, in 32-bit sums), then planar
 * floats. */
static byol_status resample(const struct byol_image *in, const struct taps *tx,
                            const struct taps *ty, float *out_chw)
{
    int c = in->c, ow = tx->n, oh = ty->n;
    if (c != 1 && c != 3)
        return byol_error(BYOL_ERR_INVALID, "resample: %d channels (1 or 3)", c);
    int r0 = ty->first[0], r1 = r0;
    for (int y = 0; y < oh; y++) {
        r0 = ty->first[y] < r0 ? ty->first[y] : r0;
        r1 = ty->first[y] + ty->count[y] > r1 ? ty->first[y] + ty->count[y] : r1;
    }
    size_t row = (size_t)ow * (size_t)c, rows = (size_t)(r1 > r0 ? r1 - r0 : 1);
    uint8_t *mid = malloc(rows * row);
    int32_t *acc = malloc(row * sizeof *acc);
    if (!mid || !acc) {
        free(mid);
        free(acc);
        return byol_error(BYOL_ERR_NOMEM, "out of memory resizing a %dx%d image", in->w, in->h);
    }
    pass_rows(in, tx, r0, r1, mid);
    size_t plane = (size_t)ow * (size_t)oh;
    for (int y = 0; y < oh; y++) {
        const int32_t *w = ty->w + (size_t)y * (size_t)ty->taps;
        const uint8_t *src = mid + (size_t)(ty->first[y] - r0) * row;
        for (size_t i = 0; i < row; i++)
            acc[i] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < ty->count[y]; t++)
            for (size_t i = 0; i < row; i++)
                acc[i] += (int32_t)src[(size_t)t * row + i] * w[t];
        for (int x = 0; x < ow; x++)
            for (int k = 0; k < c; k++)
                out_chw[k * plane + (size_t)y * ow + x] =
                    (float)clip8(acc[(size_t)x * c + k]) / 255.0f;
    }
    free(mid);
    free(acc);
    return BYOL_OK;
}

/* Python's round(d / 2) for d >= 0: halves go to the even neighbour. */
static int half_round_even(int d)
{
    int q = d / 2;
    return d % 2 && q % 2 ? q + 1 : q;
}

byol_status byol_image_resize_crop(const struct byol_image *in, int size, float *out_chw)
{
    int short_side = in->w <= in->h ? in->w : in->h;
    int long_side = in->w <= in->h ? in->h : in->w;
    int new_long = (int)((double)size * long_side / short_side); /* int(size * long / short) */
    int nw = in->w <= in->h ? size : new_long, nh = in->w <= in->h ? new_long : size;
    int left = half_round_even(nw - size), top = half_round_even(nh - size);
    struct taps tx = {0}, ty = {0};
    byol_status st = taps_make(in->w, 0.0, in->w, nw, left, size, 0, &tx);
    if (st == BYOL_OK)
        st = taps_make(in->h, 0.0, in->h, nh, top, size, 0, &ty);
    if (st == BYOL_OK)
        st = resample(in, &tx, &ty, out_chw);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}

byol_status byol_image_resample_region(const struct byol_image *in, const int clip[4],
                                       const double box[4], int oh, int ow, float *out_chw)
{
    int cw = clip[2] - clip[0], ch = clip[3] - clip[1];
    if (clip[0] < 0 || clip[1] < 0 || cw < 1 || ch < 1 || clip[2] > in->w || clip[3] > in->h ||
        !(box[2] > box[0]) || !(box[3] > box[1]) || oh < 1 || ow < 1)
        return byol_error(BYOL_ERR_INVALID, "resample: a region outside the %dx%d image", in->w,
                          in->h);
    struct taps tx = {0}, ty = {0};
    byol_status st = taps_make(cw, box[0], box[2], ow, 0, ow, clip[0], &tx);
    if (st == BYOL_OK)
        st = taps_make(ch, box[1], box[3], oh, 0, oh, clip[1], &ty);
    if (st == BYOL_OK)
        st = resample(in, &tx, &ty, out_chw);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}

byol_status byol_image_part_resample(const struct byol_image_part *part, const int box[4], int oh,
                                     int ow, float *out_chw)
{
    double s = part->scale_num / 8.0;
    double span[4] = {box[1] * s - part->x0, box[0] * s - part->y0,
                      (box[1] + box[3]) * s - part->x0, (box[0] + box[2]) * s - part->y0};
    int clip[4];
    byol_span_pixels(span, 0, part->img.w, part->img.h, clip);
    double rel[4] = {span[0] - clip[0], span[1] - clip[1], span[2] - clip[0], span[3] - clip[1]};
    return byol_image_resample_region(&part->img, clip, rel, oh, ow, out_chw);
}
