/* byolctl export (include/byol/export.h): the online encoder of a learner checkpoint, renamed
 * to torchvision's state_dict names and written as float32 safetensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "byol/export.h"
#include "byol/safetensors.h"

#define EXPORT_PREFIX "online_encoder.net."

static float export_half_to_float(uint16_t h)
{
    int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24); /* subnormal */
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* The tensor's values as float32 in a new buffer (*out, free()d by the caller). */
static byol_status export_to_f32(const char *path, const struct byol_st_tensor *t, float **out)
{
    float *f = malloc(t->numel ? t->numel * sizeof *f : 1);
    if (!f)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    const unsigned char *src = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        if (t->dtype == BYOL_ST_F32) {
            memcpy(&f[i], src + 4 * i, 4);
        } else if (t->dtype == BYOL_ST_F64) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            f[i] = (float)d;
        } else {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            if (t->dtype == BYOL_ST_BF16) {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&f[i], &bits, 4);
            } else {
                f[i] = export_half_to_float(h);
            }
        }
    }
    *out = f;
    return BYOL_OK;
}

static int export_is_float(enum byol_st_dtype d)
{
    return d == BYOL_ST_F32 || d == BYOL_ST_F64 || d == BYOL_ST_F16 || d == BYOL_ST_BF16;
}

static int export_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* One encoder tensor under its torchvision name. */
static byol_status export_tensor(const char *path, struct byol_st_writer *w,
                                 const struct byol_st_tensor *t, const char *name)
{
    if (t->dtype == BYOL_ST_I64 && export_has_suffix(name, ".num_batches_tracked"))
        return byol_st_writer_add(w, name, t->dtype, t->ndim, t->dims, t->data);
    if (!export_is_float(t->dtype))
        return byol_error(BYOL_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected a float type",
                          path, t->name, byol_st_dtype_name(t->dtype));
    size_t bad = byol_st_first_nonfinite(t);
    if (bad < t->numel)
        return byol_error(BYOL_ERR_NONFINITE,
                          "%s: tensor '%s' holds NaN or infinity (element %zu): not a usable "
                          "state",
                          path, t->name, bad);
    float *f = NULL;
    byol_status st = export_to_f32(path, t, &f);
    if (st == BYOL_OK)
        st = byol_st_writer_add(w, name, BYOL_ST_F32, t->ndim, t->dims, f);
    free(f);
    return st;
}

/* "fc" drops "fc.weight" and "fc.bias", not "fc2.weight". */
static int export_dropped(const char *name, const char *drop)
{
    size_t n = drop ? strlen(drop) : 0;
    return n && strncmp(name, drop, n) == 0 && name[n] == '.';
}

/* Add every online_encoder.net.* tensor but the dropped ones; counts what was seen. */
static byol_status export_collect(const char *path, const struct byol_st_file *f, const char *drop,
                                  struct byol_st_writer *w, size_t *n_online, size_t *n_net,
                                  size_t *n_dropped)
{
    const size_t plen = strlen(EXPORT_PREFIX);
    *n_online = *n_net = *n_dropped = 0;
    for (size_t i = 0; i < byol_st_count(f); i++) {
        const struct byol_st_tensor *t = byol_st_at(f, i);
        *n_online += strncmp(t->name, "online_encoder.", 15) == 0;
        if (strncmp(t->name, EXPORT_PREFIX, plen) != 0 || !t->name[plen])
            continue;
        (*n_net)++;
        if (export_dropped(t->name + plen, drop)) {
            (*n_dropped)++;
            continue;
        }
        byol_status st = export_tensor(path, w, t, t->name + plen);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}

static byol_status export_check_counts(const char *path, const char *drop, size_t n_online,
                                       size_t n_net, size_t n_dropped)
{
    if (!n_online)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: not a learner checkpoint: it has no online_encoder.* tensors", path);
    if (!n_net)
        return byol_error(BYOL_ERR_FORMAT, "%s: no online_encoder.net.* tensors to export", path);
    if (drop && !n_dropped)
        return byol_error(BYOL_ERR_NOT_FOUND, "%s: the encoder has no layer '%s' to drop", path,
                          drop);
    if (n_dropped == n_net)
        return byol_error(BYOL_ERR_INVALID, "%s: dropping '%s' leaves nothing to export", path,
                          drop);
    return BYOL_OK;
}

byol_status byol_export_encoder(const char *checkpoint, const char *out, const char *drop)
{
    if (!checkpoint || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_export_encoder: NULL argument");
    struct byol_st_file *f = NULL;
    struct byol_st_writer *w = NULL;
    size_t n_online = 0, n_net = 0, n_dropped = 0;
    byol_status st = byol_st_read(checkpoint, &f);
    if (st == BYOL_OK)
        st = byol_st_writer_create(&w);
    if (st == BYOL_OK)
        st = export_collect(checkpoint, f, drop, w, &n_online, &n_net, &n_dropped);
    if (st == BYOL_OK)
        st = export_check_counts(checkpoint, drop, n_online, n_net, n_dropped);
    if (st == BYOL_OK)
        st = byol_st_writer_metadata(w, "format", "pt");
    if (st == BYOL_OK)
        st = byol_st_writer_metadata(w, "source", checkpoint);
    if (st == BYOL_OK)
        st = byol_st_writer_save(w, out);
    byol_st_writer_free(w);
    byol_st_free(f);
    return st;
}
