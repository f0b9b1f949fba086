/* An example augmentation op, built out of tree against the installed byol-c headers:
 * `{ op = "invert"; p = 0.5; }` turns x into 1 - x with probability p. */
#include <byol/augment.h>

static const struct byol_host_api *host;

struct invert {
    size_t n; /* floats per image */
    double p;
};

static byol_status invert_create(const struct byol_host_api *h, const struct byol_settings *s,
                                 const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "p", NULL};
    double p;
    byol_status st = h->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = h->setting_float(s, "p", 0.5, &p);
    if (st != BYOL_OK)
        return st;
    if (!(p >= 0.0 && p <= 1.0))
        return h->setting_error(h->setting_child(s, "p"), BYOL_ERR_INVALID,
                                "a probability must be in [0, 1], got %g", p);
    struct invert *o = h->alloc(sizeof *o);
    if (!o)
        return h->error(BYOL_ERR_NOMEM, "invert: out of memory");
    o->n = (size_t)info->channels * info->height * info->width;
    o->p = p;
    *state = o;
    return BYOL_OK;
}

/* Draw first, always: the stream's later draws must not depend on this op's outcome. */
static byol_status invert_apply(const void *state, const float *in, float *out,
                                struct byol_rng *rng)
{
    const struct invert *o = state;
    int on = host->rng_uniform(rng) < o->p;
    for (size_t i = 0; i < o->n; i++)
        out[i] = on ? 1.0f - in[i] : in[i];
    return BYOL_OK;
}

static void invert_destroy(void *state)
{
    host->free(state);
}

static const struct byol_augment_ops invert_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "invert",
    .version = "1.0.0",
    .description = "x -> 1 - x with probability p",
    .create = invert_create,
    .apply = invert_apply,
    .destroy = invert_destroy,
};

BYOL_PLUGIN_INIT(h, reg)
{
    host = h;
    return h->register_ops(reg, BYOL_PLUGIN_AUGMENT, &invert_ops);
}
