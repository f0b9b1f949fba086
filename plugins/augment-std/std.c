/* The standard augmentation plugin's entry point and the helpers its ops share: settings with
 * range checks whose messages name the config line, and uniform draws from an image's stream. */
#include <stdarg.h>
#include <stdio.h>

#include "std_internal.h"

const struct byol_host_api *aug_host;

byol_status aug_fail(const struct byol_settings *s, const char *name, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const struct byol_settings *at = aug_host->setting_child(s, name);
    if (at)
        return aug_host->setting_error(at, BYOL_ERR_INVALID, "%s", what);
    return aug_host->setting_error(s, BYOL_ERR_INVALID, "%s: %s", name, what);
}

byol_status aug_prob(const struct byol_settings *s, const char *name, double def, double *p)
{
    byol_status st = aug_host->setting_float(s, name, def, p);
    if (st == BYOL_OK && !(*p >= 0.0 && *p <= 1.0))
        return aug_fail(s, name, "a probability must be in [0, 1], got %g", *p);
    return st;
}

/* A number or a list of one or two numbers; *count says which (0: not set). */
static byol_status aug_numbers(const struct byol_settings *s, const char *name, double v[2],
                               int *count)
{
    const struct byol_settings *at = aug_host->setting_child(s, name);
    *count = 0;
    if (!at)
        return BYOL_OK;
    if (aug_host->setting_float(s, name, 0, &v[0]) == BYOL_OK) {
        *count = 1;
        return BYOL_OK;
    }
    if (aug_host->setting_floats(s, name, v, 2, count) != BYOL_OK || *count == 0)
        return aug_fail(s, name, "expected a number or a list [lo, hi]");
    return BYOL_OK;
}

byol_status aug_range(const struct byol_settings *s, const char *name, double center, double min,
                      double max, double def_lo, double def_hi, double out[2])
{
    double v[2];
    int n;
    byol_status st = aug_numbers(s, name, v, &n);
    if (st != BYOL_OK)
        return st;
    out[0] = def_lo;
    out[1] = def_hi;
    if (n == 1 && v[0] < 0)
        return aug_fail(s, name, "must be >= 0, got %g", v[0]);
    if (n == 1) {
        out[0] = center - v[0] < min ? min : center - v[0];
        out[1] = center + v[0];
    } else if (n == 2) {
        out[0] = v[0];
        out[1] = v[1];
    }
    if (!(out[0] >= min && out[1] <= max && out[0] <= out[1]))
        return aug_fail(s, name, "range [%g, %g] must satisfy %g <= lo <= hi <= %g", out[0], out[1],
                        min, max);
    return BYOL_OK;
}

byol_status aug_pair(const struct byol_settings *s, const char *name, double def_lo, double def_hi,
                     double min_excl, double out[2])
{
    double v[2];
    int n;
    byol_status st = aug_numbers(s, name, v, &n);
    if (st != BYOL_OK)
        return st;
    out[0] = n ? v[0] : def_lo;
    out[1] = n == 2 ? v[1] : n == 1 ? v[0] : def_hi;
    if (!(out[0] > min_excl && out[0] <= out[1]))
        return aug_fail(s, name, "range [%g, %g] must satisfy %g < lo <= hi", out[0], out[1],
                        min_excl);
    return BYOL_OK;
}

byol_status aug_size(const struct byol_settings *s, const char *name, int def, int out[2],
                     int *edge_only)
{
    double v[2];
    int n;
    byol_status st = aug_numbers(s, name, v, &n);
    if (st != BYOL_OK)
        return st;
    if (edge_only)
        *edge_only = n == 1;
    out[0] = n ? (int)v[0] : def;
    out[1] = n == 2 ? (int)v[1] : n == 1 ? (int)v[0] : def;
    for (int i = 0; i < n; i++)
        if (v[i] != (double)(int)v[i] || v[i] < 1 || v[i] > 65536)
            return aug_fail(s, name, "sizes must be whole numbers in [1, 65536], got %g", v[i]);
    if (out[0] < 1 || out[1] < 1)
        return aug_fail(s, name, "size must be >= 1 (model.image_size is %d)", def);
    return BYOL_OK;
}

double aug_uniform(struct byol_rng *rng)
{
    uint64_t a = aug_host->rng_u32(rng) >> 5, b = aug_host->rng_u32(rng) >> 6;
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

double aug_uniform_in(struct byol_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * aug_uniform(rng);
}

int aug_randint(struct byol_rng *rng, int n)
{
    /* Lemire's multiply-shift: no modulo bias worth speaking of for image-sized n. */
    return (int)(((uint64_t)aug_host->rng_u32(rng) * (uint64_t)n) >> 32);
}

BYOL_PLUGIN_INIT(host, reg)
{
    static const struct byol_augment_ops *const all[] = {
        &aug_random_resized_crop_ops,
        &aug_horizontal_flip_ops,
        &aug_resize_ops,
        &aug_center_crop_ops,
        &aug_color_jitter_ops,
        &aug_grayscale_ops,
        &aug_solarize_ops,
        &aug_normalize_ops,
        &aug_gaussian_blur_ops,
    };
    byol_status ok = byol_plugin_check_host(host, "augment-std", BYOL_HOST_NEEDS(setting_error));
    if (ok != BYOL_OK)
        return ok;
    aug_host = host;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        byol_status st = host->register_ops(reg, BYOL_PLUGIN_AUGMENT, all[i]);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}
