/* Colour ops with torchvision's float32 tensor formulas: color_jitter (brightness, contrast,
 * saturation, hue in a random order), grayscale, solarize and normalize. Saturation, hue and
 * grayscale need RGB: torchvision makes them silent no-ops on one channel, we refuse them at
 * load time instead, so a config never asks for something that cannot happen. */
#include <math.h>
#include <string.h>

#include "std_internal.h"

#define AUG_MAX_CHANNELS 16

struct color {
    int c, h, w;
    double p;
    double range[4][2]; /* brightness, contrast, saturation, hue */
    int active[4];      /* torchvision leaves out a factor that is 0 or pinned at identity */
    float threshold;    /* solarize */
    float mean[AUG_MAX_CHANNELS], std[AUG_MAX_CHANNELS];
};

enum { JIT_BRIGHTNESS, JIT_CONTRAST, JIT_SATURATION, JIT_HUE };

static byol_status color_new(const struct byol_augment_info *info, struct color **o)
{
    *o = aug_host->alloc(sizeof **o);
    if (!*o)
        return aug_host->error(BYOL_ERR_NOMEM, "augment-std: out of memory");
    (*o)->c = info->channels;
    (*o)->h = info->height;
    (*o)->w = info->width;
    return BYOL_OK;
}

static void color_destroy(void *state)
{
    aug_host->free(state);
}

static byol_status color_done(byol_status st, struct color *o, void **state)
{
    if (st != BYOL_OK) {
        color_destroy(o);
        return st;
    }
    *state = o;
    return BYOL_OK;
}

static size_t color_plane(const struct color *o)
{
    return (size_t)o->h * (size_t)o->w;
}

/* _blend: ratio * a + (1 - ratio) * b, clamped to [0, 1]; the factors are float32 as PyTorch
 * casts a Python scalar against a float tensor. */
static inline float blend(float a, float b, double ratio)
{
    float r = (float)ratio, q = (float)(1.0 - ratio);
    float v = r * a + q * b;
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static void jit_brightness(const struct color *o, float *img, double f)
{
    size_t n = color_plane(o) * (size_t)o->c;
    for (size_t i = 0; i < n; i++)
        img[i] = blend(img[i], 0.0f, f);
}

static void jit_contrast(const struct color *o, float *img, double f)
{
    size_t n = color_plane(o), all = n * (size_t)o->c;
    double sum = 0;
    /* torchvision: the mean of the grayscale image (of the image itself on one channel). */
    if (o->c == 3)
        for (size_t i = 0; i < n; i++)
            sum += aug_luma(img[i], img[n + i], img[2 * n + i]);
    else
        for (size_t i = 0; i < all; i++)
            sum += img[i];
    float mean = (float)(sum / (double)(o->c == 3 ? n : all));
    for (size_t i = 0; i < all; i++)
        img[i] = blend(img[i], mean, f);
}

static void jit_saturation(const struct color *o, float *img, double f)
{
    size_t n = color_plane(o);
    for (size_t i = 0; i < n; i++) {
        float gray = aug_luma(img[i], img[n + i], img[2 * n + i]);
        for (int k = 0; k < 3; k++)
            img[(size_t)k * n + i] = blend(img[(size_t)k * n + i], gray, f);
    }
}

static inline float clamp01(float x)
{
    return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
}

static inline float max2(float a, float b)
{
    return a > b ? a : b;
}

static inline float min2(float a, float b)
{
    return a < b ? a : b;
}

/* floor(x) for |x| < 2^31, without a libm call (so the pixel loop can vectorise). */
static inline float floor_small(float x)
{
    float t = (float)(int)x;
    return t > x ? t - 1.0f : t;
}

/* torchvision's _rgb2hsv, hue shift (Python's % 1.0 on a float32 tensor) and _hsv2rgb for one
 * pixel, float32 step by step as torchvision computes them. */
static void hue_pixel(float *R, float *G, float *B, float shift)
{
    float r = *R, g = *G, b = *B;
    float maxc = max2(r, max2(g, b)), minc = min2(r, min2(g, b));
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / (eqc ? 1.0f : maxc);
    float div = eqc ? 1.0f : cr;
    float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
    float hr = maxc == r ? bc - gc : 0.0f;
    float hg = maxc == g && maxc != r ? 2.0f + rc - bc : 0.0f;
    float hb = maxc != g && maxc != r ? 4.0f + gc - rc : 0.0f;
    float a = (hr + hg + hb) / 6.0f + 1.0f; /* in [5/6, 11/6] */
    float h = a - floor_small(a);           /* fmod(a, 1), exactly */
    a = h + shift;                          /* in [-0.5, 1.5) */
    h = a - floor_small(a);                 /* Python's a % 1.0 */
    float v = maxc, h6 = h * 6.0f, sec = floor_small(h6), fr = h6 - sec;
    int sector = (int)sec == 6 ? 0 : (int)sec;
    float p = clamp01(v * (1.0f - s));
    float q = clamp01(v * (1.0f - s * fr));
    float t = clamp01(v * (1.0f - s * (1.0f - fr)));
    /* sectors 0..5: (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q) */
    *R = sector == 0 || sector == 5 ? v : sector == 1 ? q : sector == 4 ? t : p;
    *G = sector == 1 || sector == 2 ? v : sector == 0 ? t : sector == 3 ? q : p;
    *B = sector == 3 || sector == 4 ? v : sector == 2 ? t : sector == 5 ? q : p;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* m ? a : b, lane by lane. */
static inline __m128 sel(__m128 m, __m128 a, __m128 b)
{
    return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
}

/* floor_small for four lanes: truncate, then one less where that went up. */
static inline __m128 floor4(__m128 x)
{
    __m128 t = _mm_cvtepi32_ps(_mm_cvttps_epi32(x));
    return _mm_sub_ps(t, _mm_and_ps(_mm_cmpgt_ps(t, x), _mm_set1_ps(1.0f)));
}

/* clamp01 for four lanes, keeping clamp01's -0.0 (a lane below 0 becomes +0). */
static inline __m128 clamp4(__m128 x)
{
    x = _mm_andnot_ps(_mm_cmplt_ps(x, _mm_setzero_ps()), x);
    return sel(_mm_cmpgt_ps(x, _mm_set1_ps(1.0f)), _mm_set1_ps(1.0f), x);
}

/* hue_pixel for four pixels: the same float operations in the same order (maxps and minps
 * are a > b ? a : b and a < b ? a : b, as max2 and min2). */
static void hue_pixels4(float *R, float *G, float *B, float shift)
{
    const __m128 one = _mm_set1_ps(1.0f), zero = _mm_setzero_ps();
    __m128 r = _mm_loadu_ps(R), g = _mm_loadu_ps(G), b = _mm_loadu_ps(B);
    __m128 maxc = _mm_max_ps(r, _mm_max_ps(g, b)), minc = _mm_min_ps(r, _mm_min_ps(g, b));
    __m128 eqc = _mm_cmpeq_ps(maxc, minc), cr = _mm_sub_ps(maxc, minc);
    __m128 s = _mm_div_ps(cr, sel(eqc, one, maxc)), div = sel(eqc, one, cr);
    __m128 rc = _mm_div_ps(_mm_sub_ps(maxc, r), div), gc = _mm_div_ps(_mm_sub_ps(maxc, g), div);
    __m128 bc = _mm_div_ps(_mm_sub_ps(maxc, b), div);
    __m128 is_r = _mm_cmpeq_ps(maxc, r), is_g = _mm_cmpeq_ps(maxc, g);
    __m128 hr = _mm_and_ps(is_r, _mm_sub_ps(bc, gc));
    __m128 hg =
        _mm_and_ps(_mm_andnot_ps(is_r, is_g), _mm_sub_ps(_mm_add_ps(_mm_set1_ps(2.0f), rc), bc));
    __m128 hb =
        _mm_andnot_ps(_mm_or_ps(is_r, is_g), _mm_sub_ps(_mm_add_ps(_mm_set1_ps(4.0f), gc), rc));
    __m128 a = _mm_add_ps(_mm_div_ps(_mm_add_ps(_mm_add_ps(hr, hg), hb), _mm_set1_ps(6.0f)), one);
    __m128 h = _mm_sub_ps(a, floor4(a));
    a = _mm_add_ps(h, _mm_set1_ps(shift));
    h = _mm_sub_ps(a, floor4(a));
    __m128 v = maxc, h6 = _mm_mul_ps(h, _mm_set1_ps(6.0f)), sec = floor4(h6);
    __m128 fr = _mm_sub_ps(h6, sec);
    __m128i k = _mm_cvttps_epi32(sec);
    k = _mm_andnot_si128(_mm_cmpeq_epi32(k, _mm_set1_epi32(6)), k); /* 6 is sector 0 */
    __m128 m[6];
    for (int i = 0; i < 6; i++)
        m[i] = _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(i)));
    __m128 p = clamp4(_mm_mul_ps(v, _mm_sub_ps(one, s)));
    __m128 q = clamp4(_mm_mul_ps(v, _mm_sub_ps(one, _mm_mul_ps(s, fr))));
    __m128 t = clamp4(_mm_mul_ps(v, _mm_sub_ps(one, _mm_mul_ps(s, _mm_sub_ps(one, fr)))));
    (void)zero;
    _mm_storeu_ps(R, sel(_mm_or_ps(m[0], m[5]), v, sel(m[1], q, sel(m[4], t, p))));
    _mm_storeu_ps(G, sel(_mm_or_ps(m[1], m[2]), v, sel(m[0], t, sel(m[3], q, p))));
    _mm_storeu_ps(B, sel(_mm_or_ps(m[3], m[4]), v, sel(m[2], t, sel(m[5], q, p))));
}
#endif

static void jit_hue(const struct color *o, float *img, double f)
{
    size_t n = color_plane(o), i = 0;
    float shift = (float)f, *R = img, *G = img + n, *B = img + 2 * n;
#ifdef __SSE2__
    for (; i + 4 <= n; i += 4)
        hue_pixels4(R + i, G + i, B + i, shift);
#endif
    for (; i < n; i++)
        hue_pixel(R + i, G + i, B + i, shift);
}

/* ---- color_jitter --------------------------------------------------------------------- */

static byol_status jitter_read(const struct byol_settings *s, struct color *o)
{
    static const char *const names[4] = {"brightness", "contrast", "saturation", "hue"};
    byol_status st = BYOL_OK;
    for (int k = 0; k < 3 && st == BYOL_OK; k++)
        st = aug_range(s, names[k], 1.0, 0.0, INFINITY, 1.0, 1.0, o->range[k]);
    if (st == BYOL_OK)
        st = aug_range(s, "hue", 0.0, -0.5, 0.5, 0.0, 0.0, o->range[JIT_HUE]);
    for (int k = 0; k < 4 && st == BYOL_OK; k++) {
        double center = k == JIT_HUE ? 0.0 : 1.0;
        o->active[k] = !(o->range[k][0] == center && o->range[k][1] == center);
        if (o->active[k] && o->c != 3 && (k == JIT_SATURATION || k == JIT_HUE))
            st = aug_fail(s, names[k], "needs 3-channel (RGB) images, these have %d channel%s",
                          o->c, o->c == 1 ? "" : "s");
    }
    return st;
}

static byol_status jitter_create(const struct byol_host_api *host, const struct byol_settings *s,
                                 const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "brightness", "contrast", "saturation", "hue", NULL};
    struct color *o;
    byol_status st = color_new(info, &o);
    if (st != BYOL_OK)
        return st;
    if (info->channels != 1 && info->channels != 3)
        st = host->setting_error(s, BYOL_ERR_INVALID,
                                 "color_jitter takes 1- or 3-channel images, these have %d",
                                 info->channels);
    if (st == BYOL_OK)
        st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = jitter_read(s, o);
    return color_done(st, o, state);
}

/* Like torchvision's ColorJitter.forward: a random order, then all four factors drawn in a
 * fixed order, then each active adjustment applied in the drawn order. */
static byol_status jitter_apply(const void *state, const float *in, float *out,
                                struct byol_rng *rng)
{
    const struct color *o = state;
    int order[4] = {0, 1, 2, 3};
    double f[4];
    for (int i = 3; i > 0; i--) {
        int j = aug_randint(rng, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < 4; k++)
        f[k] = o->active[k] ? aug_uniform_in(rng, o->range[k][0], o->range[k][1]) : 0;
    memcpy(out, in, color_plane(o) * (size_t)o->c * sizeof(float));
    for (int i = 0; i < 4; i++) {
        int k = order[i];
        if (!o->active[k])
            continue;
        if (k == JIT_BRIGHTNESS)
            jit_brightness(o, out, f[k]);
        else if (k == JIT_CONTRAST)
            jit_contrast(o, out, f[k]);
        else if (k == JIT_SATURATION)
            jit_saturation(o, out, f[k]);
        else
            jit_hue(o, out, f[k]);
    }
    return BYOL_OK;
}

const struct byol_augment_ops aug_color_jitter_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "color_jitter",
    .version = "0.1.0",
    .description = "brightness, contrast, saturation, hue (number v or [lo, hi]), random order",
    .create = jitter_create,
    .apply = jitter_apply,
    .destroy = color_destroy,
};

/* ---- grayscale ------------------------------------------------------------------------ */

static byol_status gray_create(const struct byol_host_api *host, const struct byol_settings *s,
                               const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "p", NULL};
    struct color *o;
    byol_status st = color_new(info, &o);
    if (st != BYOL_OK)
        return st;
    st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK && info->channels != 3)
        st = host->setting_error(s, BYOL_ERR_INVALID,
                                 "grayscale needs 3-channel (RGB) images, these have %d channel%s",
                                 info->channels, info->channels == 1 ? "" : "s");
    if (st == BYOL_OK)
        st = aug_prob(s, "p", 0.1, &o->p);
    return color_done(st, o, state);
}

static byol_status gray_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct color *o = state;
    size_t n = color_plane(o);
    if (aug_uniform(rng) >= o->p) {
        memcpy(out, in, 3 * n * sizeof(float));
        return BYOL_OK;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = out[n + i] = out[2 * n + i] = aug_luma(in[i], in[n + i], in[2 * n + i]);
    return BYOL_OK;
}

const struct byol_augment_ops aug_grayscale_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "grayscale",
    .version = "0.1.0",
    .description = "with probability p, luma in all three channels",
    .create = gray_create,
    .apply = gray_apply,
    .destroy = color_destroy,
};

/* ---- solarize ------------------------------------------------------------------------- */

static byol_status solarize_create(const struct byol_host_api *host, const struct byol_settings *s,
                                   const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "threshold", "p", NULL};
    struct color *o;
    double threshold;
    byol_status st = color_new(info, &o);
    if (st != BYOL_OK)
        return st;
    st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = host->setting_float(s, "threshold", 0.5, &threshold);
    if (st == BYOL_OK && !(threshold >= 0.0 && threshold <= 1.0))
        st = aug_fail(s, "threshold", "must be in [0, 1], got %g", threshold);
    if (st == BYOL_OK)
        st = aug_prob(s, "p", 0.5, &o->p);
    o->threshold = (float)threshold;
    return color_done(st, o, state);
}

static byol_status solarize_apply(const void *state, const float *in, float *out,
                                  struct byol_rng *rng)
{
    const struct color *o = state;
    size_t n = color_plane(o) * (size_t)o->c;
    int on = aug_uniform(rng) < o->p;
    for (size_t i = 0; i < n; i++)
        out[i] = on && in[i] >= o->threshold ? 1.0f - in[i] : in[i];
    return BYOL_OK;
}

const struct byol_augment_ops aug_solarize_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "solarize",
    .version = "0.1.0",
    .description = "with probability p, x >= threshold becomes 1 - x",
    .create = solarize_create,
    .apply = solarize_apply,
    .destroy = color_destroy,
};

/* ---- normalize ------------------------------------------------------------------------ */

/* mean or std: one value per channel, or one for all. */
static byol_status norm_list(const struct byol_settings *s, const char *name, int c, float *out)
{
    double v[AUG_MAX_CHANNELS];
    int n;
    byol_status st = aug_host->setting_floats(s, name, v, AUG_MAX_CHANNELS, &n);
    if (st != BYOL_OK)
        return st;
    if (!aug_host->setting_child(s, name))
        return aug_host->setting_error(s, BYOL_ERR_INVALID, "normalize: missing required '%s'",
                                       name);
    if (n != c && n != 1)
        return aug_fail(s, name, "has %d value%s, the images have %d channel%s", n,
                        n == 1 ? "" : "s", c, c == 1 ? "" : "s");
    for (int k = 0; k < c; k++)
        out[k] = (float)v[n == 1 ? 0 : k];
    return BYOL_OK;
}

static byol_status norm_create(const struct byol_host_api *host, const struct byol_settings *s,
                               const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "mean", "std", NULL};
    struct color *o;
    byol_status st = color_new(info, &o);
    if (st != BYOL_OK)
        return st;
    st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK && info->channels > AUG_MAX_CHANNELS)
        st = host->setting_error(s, BYOL_ERR_INVALID, "normalize: at most %d channels",
                                 AUG_MAX_CHANNELS);
    if (st == BYOL_OK)
        st = norm_list(s, "mean", info->channels, o->mean);
    if (st == BYOL_OK)
        st = norm_list(s, "std", info->channels, o->std);
    for (int k = 0; st == BYOL_OK && k < info->channels; k++)
        if (o->std[k] == 0.0f)
            st = aug_fail(s, "std", "std must not be 0 (channel %d)", k);
    return color_done(st, o, state);
}

static byol_status norm_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct color *o = state;
    size_t n = color_plane(o);
    (void)rng;
    for (int k = 0; k < o->c; k++)
        for (size_t i = 0; i < n; i++)
            out[(size_t)k * n + i] = (in[(size_t)k * n + i] - o->mean[k]) / o->std[k];
    return BYOL_OK;
}

const struct byol_augment_ops aug_normalize_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "normalize",
    .version = "0.1.0",
    .description = "(x - mean) / std per channel",
    .create = norm_create,
    .apply = norm_apply,
    .destroy = color_destroy,
};
