/* Geometric ops with torchvision's tensor semantics: random_resized_crop (get_params' ten
 * attempts and centre fallback), resize (bilinear, align_corners=False, no antialias),
 * center_crop and horizontal_flip. */
#include <math.h>
#include <string.h>

#include "std_internal.h"

struct geo {
    int c, h, w;     /* input */
    int oh, ow;      /* output */
    double scale[2]; /* random_resized_crop */
    double ratio[2];
    int box[4]; /* a fixed crop (top, left, height, width); box[2] = 0: random */
    double p;   /* horizontal_flip */
};

static byol_status geo_new(const struct byol_augment_info *info, struct geo **g)
{
    *g = aug_host->alloc(sizeof **g);
    if (!*g)
        return aug_host->error(BYOL_ERR_NOMEM, "augment-std: out of memory");
    (*g)->c = info->channels;
    (*g)->h = (*g)->oh = info->height;
    (*g)->w = (*g)->ow = info->width;
    return BYOL_OK;
}

static void geo_destroy(void *state)
{
    aug_host->free(state);
}

static void geo_output_shape(const void *state, int *c, int *h, int *w)
{
    const struct geo *g = state;
    *c = g->c;
    *h = g->oh;
    *w = g->ow;
}

/* Finish a create: keep the state on success, free it on failure. */
static byol_status geo_done(byol_status st, struct geo *g, void **state)
{
    if (st != BYOL_OK) {
        geo_destroy(g);
        return st;
    }
    *state = g;
    return BYOL_OK;
}

/* ---- bilinear resize ------------------------------------------------------------------ */

/* PyTorch's source index and weights for one output coordinate, all in float32 as its CPU
 * kernel computes them (scale = in / out, src = scale * (dst + 0.5) - 0.5, clamped at 0). */
static void bilinear_coord(int dst, int in, int out, int *i0, int *step, float *l0, float *l1)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int i = (int)src;
    *i0 = i;
    *step = i < in - 1 ? 1 : 0;
    *l1 = src - (float)i;
    *l0 = 1.0f - *l1;
}

void aug_resize_bilinear(const float *in, int c, int H, int W, int top, int left, int h, int w,
                         float *out, int oh, int ow)
{
    for (int y = 0; y < oh; y++) {
        int y0, dy;
        float hy0, hy1;
        bilinear_coord(y, h, oh, &y0, &dy, &hy0, &hy1);
        for (int x = 0; x < ow; x++) {
            int x0, dx;
            float wx0, wx1;
            bilinear_coord(x, w, ow, &x0, &dx, &wx0, &wx1);
            for (int k = 0; k < c; k++) {
                const float *r0 = in + ((size_t)k * H + (size_t)(top + y0)) * W + left + x0;
                const float *r1 = r0 + (size_t)dy * W;
                float t0 = r0[0] * wx0 + r0[dx] * wx1;
                float t1 = r1[0] * wx0 + r1[dx] * wx1;
                out[((size_t)k * oh + y) * ow + x] = t0 * hy0 + t1 * hy1;
            }
        }
    }
}

/* ---- random_resized_crop -------------------------------------------------------------- */

static byol_status rrc_create(const struct byol_host_api *host, const struct byol_settings *s,
                              const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "size", "scale", "ratio", "box", NULL};
    struct geo *g;
    int size[2];
    double box[4];
    int nbox = 0;
    byol_status st = geo_new(info, &g);
    if (st != BYOL_OK)
        return st;
    st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = aug_size(s, "size", info->image_size, size, NULL);
    if (st == BYOL_OK)
        st = aug_pair(s, "scale", 0.08, 1.0, 0.0, g->scale);
    if (st == BYOL_OK)
        st = aug_pair(s, "ratio", 3.0 / 4.0, 4.0 / 3.0, 0.0, g->ratio);
    if (st == BYOL_OK)
        st = host->setting_floats(s, "box", box, 4, &nbox);
    if (st == BYOL_OK && nbox) {
        for (int i = 0; i < 4; i++)
            g->box[i] = i < nbox ? (int)box[i] : 0;
        if (nbox != 4 || g->box[0] < 0 || g->box[1] < 0 || g->box[2] < 1 || g->box[3] < 1 ||
            g->box[0] + g->box[2] > info->height || g->box[1] + g->box[3] > info->width)
            st = aug_fail(s, "box", "expected [top, left, height, width] inside the %dx%d image",
                          info->height, info->width);
    }
    g->oh = size[0];
    g->ow = size[1];
    return geo_done(st, g, state);
}

/* torchvision's RandomResizedCrop.get_params for an image of H x W, drawing from the image's
 * stream. Python's round() rounds halves to even, as rint() does in the default rounding
 * mode. */
static void rrc_params(const struct geo *g, int H, int W, struct byol_rng *rng, int box[4])
{
    double area = (double)H * W;
    double lr0 = log(g->ratio[0]), lr1 = log(g->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * aug_uniform_in(rng, g->scale[0], g->scale[1]);
        double aspect = exp(aug_uniform_in(rng, lr0, lr1));
        int w = (int)rint(sqrt(target * aspect));
        int h = (int)rint(sqrt(target / aspect));
        if (0 < w && w <= W && 0 < h && h <= H) {
            box[0] = aug_randint(rng, H - h + 1);
            box[1] = aug_randint(rng, W - w + 1);
            box[2] = h;
            box[3] = w;
            return;
        }
    }
    double in_ratio = (double)W / (double)H;
    int w = W, h = H;
    if (in_ratio < g->ratio[0])
        h = (int)rint(w / g->ratio[0]);
    else if (in_ratio > g->ratio[1])
        w = (int)rint(h * g->ratio[1]);
    box[0] = (H - h) / 2;
    box[1] = (W - w) / 2;
    box[2] = h;
    box[3] = w;
}

static byol_status rrc_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct geo *g = state;
    int box[4];
    if (g->box[2])
        memcpy(box, g->box, sizeof box);
    else
        rrc_params(g, g->h, g->w, rng, box);
    aug_resize_bilinear(in, g->c, g->h, g->w, box[0], box[1], box[2], box[3], out, g->oh, g->ow);
    return BYOL_OK;
}

/* The region of an original of H x W: drawn as apply draws it, or the fixed box, which must
 * then lie inside the original too. */
static byol_status rrc_region(const void *state, int H, int W, struct byol_rng *rng, int box[4])
{
    const struct geo *g = state;
    if (!g->box[2]) {
        rrc_params(g, H, W, rng, box);
        return BYOL_OK;
    }
    if (g->box[0] + g->box[2] > H || g->box[1] + g->box[3] > W)
        return aug_host->error(BYOL_ERR_SHAPE,
                               "random_resized_crop: box [%d, %d, %d, %d] lies outside a %dx%d "
                               "image",
                               g->box[0], g->box[1], g->box[2], g->box[3], H, W);
    memcpy(box, g->box, 4 * sizeof *box);
    return BYOL_OK;
}

const struct byol_augment_ops aug_random_resized_crop_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "random_resized_crop",
    .version = "0.1.0",
    .description = "random area (scale) and aspect (ratio) crop, bilinear resize to size",
    .create = rrc_create,
    .output_shape = geo_output_shape,
    .apply = rrc_apply,
    .destroy = geo_destroy,
    .region = rrc_region,
};

/* ---- resize --------------------------------------------------------------------------- */

static byol_status resize_create(const struct byol_host_api *host, const struct byol_settings *s,
                                 const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "size", NULL};
    struct geo *g;
    int size[2], edge = 0;
    byol_status st = geo_new(info, &g);
    if (st == BYOL_OK)
        st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = aug_size(s, "size", info->image_size, size, &edge);
    if (st == BYOL_OK && edge) {
        /* torchvision: an integer is the smaller edge, the other keeps the aspect ratio. */
        int shorter = info->height <= info->width ? info->height : info->width;
        int longer = info->height <= info->width ? info->width : info->height;
        int other = (int)((long long)size[0] * longer / shorter);
        size[info->height <= info->width ? 1 : 0] = other;
    }
    if (st == BYOL_OK) {
        g->oh = size[0];
        g->ow = size[1];
    }
    return g ? geo_done(st, g, state) : st;
}

static byol_status resize_apply(const void *state, const float *in, float *out,
                                struct byol_rng *rng)
{
    const struct geo *g = state;
    (void)rng;
    aug_resize_bilinear(in, g->c, g->h, g->w, 0, 0, g->h, g->w, out, g->oh, g->ow);
    return BYOL_OK;
}

const struct byol_augment_ops aug_resize_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "resize",
    .version = "0.1.0",
    .description = "bilinear resize to size ([h, w], or the smaller edge when an integer)",
    .create = resize_create,
    .output_shape = geo_output_shape,
    .apply = resize_apply,
    .destroy = geo_destroy,
};

/* ---- center_crop ---------------------------------------------------------------------- */

static byol_status cc_create(const struct byol_host_api *host, const struct byol_settings *s,
                             const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "size", NULL};
    struct geo *g;
    int size[2];
    byol_status st = geo_new(info, &g);
    if (st == BYOL_OK)
        st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = aug_size(s, "size", info->image_size, size, NULL);
    if (st == BYOL_OK && (size[0] > info->height || size[1] > info->width))
        st = aug_fail(s, "size", "a %dx%d crop does not fit in the %dx%d images", size[0], size[1],
                      info->height, info->width);
    if (st == BYOL_OK) {
        g->oh = size[0];
        g->ow = size[1];
        /* torchvision: int(round((H - h) / 2.0)), Python rounding halves to even. */
        g->box[0] = (int)rint((info->height - size[0]) / 2.0);
        g->box[1] = (int)rint((info->width - size[1]) / 2.0);
    }
    return g ? geo_done(st, g, state) : st;
}

static byol_status cc_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct geo *g = state;
    (void)rng;
    for (int k = 0; k < g->c; k++)
        for (int y = 0; y < g->oh; y++)
            memcpy(out + ((size_t)k * g->oh + y) * g->ow,
                   in + ((size_t)k * g->h + y + g->box[0]) * g->w + g->box[1],
                   (size_t)g->ow * sizeof(float));
    return BYOL_OK;
}

const struct byol_augment_ops aug_center_crop_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "center_crop",
    .version = "0.1.0",
    .description = "the central size crop ([h, w] or an integer for a square)",
    .create = cc_create,
    .output_shape = geo_output_shape,
    .apply = cc_apply,
    .destroy = geo_destroy,
};

/* ---- horizontal_flip ------------------------------------------------------------------ */

static byol_status flip_create(const struct byol_host_api *host, const struct byol_settings *s,
                               const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "p", NULL};
    struct geo *g;
    byol_status st = geo_new(info, &g);
    if (st == BYOL_OK)
        st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = aug_prob(s, "p", 0.5, &g->p);
    return g ? geo_done(st, g, state) : st;
}

static byol_status flip_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct geo *g = state;
    size_t n = (size_t)g->c * g->h;
    if (aug_uniform(rng) >= g->p) {
        memcpy(out, in, n * (size_t)g->w * sizeof(float));
        return BYOL_OK;
    }
    for (size_t r = 0; r < n; r++)
        for (int x = 0; x < g->w; x++)
            out[r * g->w + x] = in[r * g->w + (g->w - 1 - x)];
    return BYOL_OK;
}

const struct byol_augment_ops aug_horizontal_flip_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "horizontal_flip",
    .version = "0.1.0",
    .description = "mirror left-right with probability p",
    .create = flip_create,
    .apply = flip_apply,
    .destroy = geo_destroy,
};
