/* byol_net_load_weights: a network's parameters, buffers and batch-norm counters from a
 * safetensors file with torchvision (or prefixed) names. Checks everything before it writes,
 * so a failed load leaves the network as it was. */
#include <stdio.h>
#include <string.h>

#include "byol/net.h"
#include "byol/safetensors.h"

#define WEIGHTS_NAME_MAX 512
#define WEIGHTS_MISSING_SHOWN 4

/* The file's tensor for one parameter, checked for dtype and shape; NULL (and OK) if absent. */
static byol_status weights_check_param(const struct byol_st_file *f, const char *full,
                                       const struct byol_param *p,
                                       const struct byol_st_tensor **out)
{
    const struct byol_st_tensor *t = byol_st_find(f, full);
    *out = t;
    if (!t)
        return BYOL_OK;
    if (t->dtype != BYOL_ST_F32)
        return byol_error(BYOL_ERR_FORMAT, "%s: file has dtype %s, network wants F32", full,
                          byol_st_dtype_name(t->dtype));
    int same = t->ndim == p->ndim;
    for (int k = 0; same && k < p->ndim; k++)
        same = t->dims[k] == p->dims[k];
    size_t bad = same ? byol_st_first_nonfinite(t) : t->numel;
    if (bad < t->numel)
        return byol_error(BYOL_ERR_NONFINITE,
                          "%s: holds NaN or infinity (element %zu): these weights are not "
                          "usable",
                          full, bad);
    if (same)
        return BYOL_OK;
    int64_t want[4];
    for (int k = 0; k < p->ndim; k++)
        want[k] = p->dims[k];
    char have_s[160], want_s[160];
    byol_st_format_dims(have_s, sizeof have_s, t->dims, t->ndim);
    byol_st_format_dims(want_s, sizeof want_s, want, p->ndim);
    return byol_error(BYOL_ERR_SHAPE, "%s: file has %s, network has %s", full, have_s, want_s);
}

/* A batch norm's num_batches_tracked, if the file has one: an I64 scalar. */
static byol_status weights_check_counter(const struct byol_st_file *f, const char *full,
                                         const struct byol_st_tensor **out)
{
    const struct byol_st_tensor *t = byol_st_find(f, full);
    *out = t;
    if (t && (t->dtype != BYOL_ST_I64 || t->numel != 1))
        return byol_error(BYOL_ERR_FORMAT, "%s: file has %zu %s values, network wants one I64",
                          full, t->numel, byol_st_dtype_name(t->dtype));
    return BYOL_OK;
}

struct weights_missing {
    size_t count;
    char shown[WEIGHTS_MISSING_SHOWN * 80 + 16];
};

static void weights_note_missing(struct weights_missing *m, const char *full)
{
    size_t used = strlen(m->shown);
    if (m->count++ < WEIGHTS_MISSING_SHOWN)
        snprintf(m->shown + used, sizeof m->shown - used, "%s%.70s", used ? ", " : "", full);
}

/* One pass over the parameters: check only (`write` 0), or copy (`write` 1). */
static byol_status weights_params(struct byol_net *net, const struct byol_st_file *f,
                                  const char *prefix, int write, struct weights_missing *m)
{
    char full[WEIGHTS_NAME_MAX];
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        const struct byol_st_tensor *t;
        snprintf(full, sizeof full, "%s%s", prefix, p->name);
        byol_status st = weights_check_param(f, full, p, &t);
        if (st != BYOL_OK)
            return st;
        if (!t && !write)
            weights_note_missing(m, full);
        if (t && write) /* memcpy: a tensor's data need not be aligned for float */
            memcpy(p->data, t->data, p->numel * sizeof(float));
    }
    return BYOL_OK;
}

static byol_status weights_counters(struct byol_net *net, const struct byol_st_file *f,
                                    const char *prefix, int write)
{
    char full[WEIGHTS_NAME_MAX];
    for (size_t i = 0; i < byol_net_layer_count(net); i++) {
        const char *layer = byol_net_layer_name(net, i);
        int64_t *count = byol_net_bn_batches_tracked(net, layer);
        const struct byol_st_tensor *t;
        if (!count)
            continue;
        snprintf(full, sizeof full, "%s%s.num_batches_tracked", prefix, layer);
        byol_status st = weights_check_counter(f, full, &t);
        if (st != BYOL_OK)
            return st;
        if (t && write)
            memcpy(count, t->data, sizeof *count);
    }
    return BYOL_OK;
}

byol_status byol_net_load_weights(struct byol_net *net, const struct byol_st_file *f,
                                  const char *prefix, int strict)
{
    if (!net || !f)
        return byol_error(BYOL_ERR_INVALID, "byol_net_load_weights: NULL network or file");
    if (!byol_net_params(net)) /* allocated by byol_net_build, even for no parameters */
        return byol_error(BYOL_ERR_INVALID, "byol_net_load_weights before byol_net_build");
    prefix = prefix ? prefix : "";
    struct weights_missing m = {0};
    byol_status st = weights_params(net, f, prefix, 0, &m);
    if (st == BYOL_OK)
        st = weights_counters(net, f, prefix, 0);
    if (st != BYOL_OK)
        return st;
    if (strict && m.count)
        return byol_error(BYOL_ERR_NOT_FOUND, "weights: %zu of %zu tensors missing: %s%s", m.count,
                          byol_net_param_count(net), m.shown,
                          m.count > WEIGHTS_MISSING_SHOWN ? ", ..." : "");
    weights_params(net, f, prefix, 1, &m);
    weights_counters(net, f, prefix, 1);
    return BYOL_OK;
}
