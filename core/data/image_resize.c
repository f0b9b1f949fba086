/* torchvision's Resize(size) + CenterCrop(size) + ToTensor on a PIL image, reproduced: Pillow's
 * two-pass resampling (horizontal, then vertical) with the bilinear (triangle) filter widened
 * by the scale when shrinking, coefficients in 22-bit fixed point and 8-bit rounding after each
 * pass, so the pixels equal Image.resize's; then Python's round-half-even crop offsets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#define PRECISION_BITS (32 - 8 - 2) /* Pillow's, for 8-bit images */

/* One pass's filter taps: for output pixel i, in[first[i] + k] * w[i * taps + k]. */
struct taps {
    int taps;
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

/* Taps for resampling in_size pixels to out_size (Pillow's precompute_coeffs and
 * normalize_coeffs_8bpc). */
static byol_status taps_make(int in_size, int out_size, struct taps *t)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale, ss = 1.0 / filterscale; /* the triangle's support is 1 */
    t->taps = (int)ceil(support) * 2 + 1;
    t->first = malloc((size_t)out_size * sizeof *t->first);
    t->count = malloc((size_t)out_size * sizeof *t->count);
    t->w = calloc((size_t)out_size * (size_t)t->taps, sizeof *t->w);
    double *k = malloc((size_t)t->taps * sizeof *k);
    if (!t->first || !t->count || !t->w || !k) {
        taps_free(t);
        free(k);
        return byol_error(BYOL_ERR_NOMEM, "out of memory for resize filter taps");
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale, sum = 0.0;
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
        t->first[i] = lo;
        t->count[i] = hi;
    }
    free(k);
    return BYOL_OK;
}

static uint8_t clip8(int64_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One output sample from `n` inputs `stride` bytes apart. */
static uint8_t tap_sum(const uint8_t *in, size_t stride, const int32_t *w, int n)
{
    int64_t acc = 1 << (PRECISION_BITS - 1);
    for (int k = 0; k < n; k++)
        acc += (int64_t)in[(size_t)k * stride] * w[k];
    return clip8(acc);
}

/* Python's round(d / 2) for d >= 0: halves go to the even neighbour. */
static int half_round_even(int d)
{
    int q = d / 2;
    return d % 2 && q % 2 ? q + 1 : q;
}

byol_status byol_image_resize_crop(const struct byol_image *in, int size, float *out_chw)
{
    int c = in->c, short_side = in->w <= in->h ? in->w : in->h;
    int long_side = in->w <= in->h ? in->h : in->w;
    int new_long = (int)((double)size * long_side / short_side); /* int(size * long / short) */
    int nw = in->w <= in->h ? size : new_long, nh = in->w <= in->h ? new_long : size;
    int left = half_round_even(nw - size), top = half_round_even(nh - size);
    struct taps tx = {0}, ty = {0};
    byol_status st = taps_make(in->w, nw, &tx);
    if (st == BYOL_OK)
        st = taps_make(in->h, nh, &ty);
    /* The horizontal pass, for the cropped columns only: (in->h, size, c). */
    uint8_t *mid = st == BYOL_OK ? malloc((size_t)in->h * (size_t)size * (size_t)c) : NULL;
    if (st == BYOL_OK && !mid)
        st = byol_error(BYOL_ERR_NOMEM, "out of memory resizing a %dx%d image", in->w, in->h);
    for (int y = 0; st == BYOL_OK && y < in->h; y++)
        for (int x = 0; x < size; x++) {
            int ox = left + x;
            const uint8_t *src = in->px + ((size_t)y * in->w + tx.first[ox]) * (size_t)c;
            const int32_t *w = tx.w + (size_t)ox * (size_t)tx.taps;
            for (int k = 0; k < c; k++)
                mid[((size_t)y * size + x) * c + k] = tap_sum(src + k, (size_t)c, w, tx.count[ox]);
        }
    /* The vertical pass, for the cropped rows, straight into planar floats. */
    size_t plane = (size_t)size * (size_t)size, row = (size_t)size * (size_t)c;
    for (int y = 0; st == BYOL_OK && y < size; y++) {
        int oy = top + y;
        const int32_t *w = ty.w + (size_t)oy * (size_t)ty.taps;
        for (int x = 0; x < size; x++)
            for (int k = 0; k < c; k++) {
                const uint8_t *src = mid + (size_t)ty.first[oy] * row + (size_t)x * c + k;
                out_chw[k * plane + (size_t)y * size + x] =
                    (float)tap_sum(src, row, w, ty.count[oy]) / 255.0f;
            }
    }
    free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}
