/* A test augment op that exists only for its region: `{ op = ".../byol-augment-fixed_region.so";
 * size = S; box = [top, left, height, width]; }` crops that box of the original (views cut from
 * originals, tests/test_views.c) and resizes it to S x S. It has no tensor form: apply fails.
 * Built as a user's own plugin would be, so it also shows that a third-party op can offer a
 * region. */
#include <byol/augment.h>

static const struct byol_host_api *host;

struct fixed_region {
    int c, size;
    int box[4];
};

static byol_status fr_create(const struct byol_host_api *h, const struct byol_settings *s,
                             const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "size", "box", NULL};
    int64_t size;
    double box[4];
    int n = 0;
    byol_status st = h->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = h->setting_int(s, "size", info->image_size, &size);
    if (st == BYOL_OK)
        st = h->setting_floats(s, "box", box, 4, &n);
    if (st != BYOL_OK)
        return st;
    if (n != 4 || size < 1 || size > 4096)
        return h->setting_error(s, BYOL_ERR_INVALID, "needs box = [t, l, h, w] and a size");
    struct fixed_region *o = h->alloc(sizeof *o);
    if (!o)
        return h->error(BYOL_ERR_NOMEM, "fixed_region: out of memory");
    o->c = info->channels;
    o->size = (int)size;
    for (int i = 0; i < 4; i++)
        o->box[i] = (int)box[i];
    *state = o;
    return BYOL_OK;
}

static void fr_output_shape(const void *state, int *c, int *h, int *w)
{
    const struct fixed_region *o = state;
    *c = o->c;
    *h = *w = o->size;
}

static byol_status fr_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    (void)state, (void)in, (void)out, (void)rng;
    return host->error(BYOL_ERR_UNSUPPORTED, "fixed_region: only for views cut from originals");
}

static byol_status fr_region(const void *state, int in_h, int in_w, struct byol_rng *rng,
                             int box[4])
{
    const struct fixed_region *o = state;
    (void)rng;
    if (o->box[0] + o->box[2] > in_h || o->box[1] + o->box[3] > in_w)
        return host->error(BYOL_ERR_SHAPE, "fixed_region: the box lies outside a %dx%d image", in_h,
                           in_w);
    for (int i = 0; i < 4; i++)
        box[i] = o->box[i];
    return BYOL_OK;
}

static void fr_destroy(void *state)
{
    host->free(state);
}

static const struct byol_augment_ops fr_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "fixed_region",
    .version = "1.0.0",
    .description = "a fixed box of the original, resized (tests only)",
    .create = fr_create,
    .output_shape = fr_output_shape,
    .apply = fr_apply,
    .destroy = fr_destroy,
    .region = fr_region,
};

BYOL_PLUGIN_INIT(h, reg)
{
    host = h;
    return h->register_ops(reg, BYOL_PLUGIN_AUGMENT, &fr_ops);
}
