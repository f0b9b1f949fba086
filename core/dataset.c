/* The format-independent part of the dataset API (include/byol/dataset.h): range checks and
 * dispatch to the reader that opened the handle. */
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

byol_status byol_dataset_wrap(const struct byol_dataset_ops *ops, void *impl, const char *name,
                              size_t count, int c, int h, int w, struct byol_dataset **out)
{
    struct byol_dataset *ds = calloc(1, sizeof *ds);
    char *copy = strdup(name ? name : "");
    if (!ds || !copy) {
        free(ds);
        free(copy);
        ops->destroy(impl);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name ? name : "dataset");
    }
    *ds = (struct byol_dataset){ops, impl, copy, count, c, h, w};
    *out = ds;
    return BYOL_OK;
}

void byol_dataset_free(struct byol_dataset *ds)
{
    if (!ds)
        return;
    ds->ops->destroy(ds->impl);
    free(ds->name);
    free(ds);
}

size_t byol_dataset_count(const struct byol_dataset *ds)
{
    return ds ? ds->count : 0;
}

void byol_dataset_shape(const struct byol_dataset *ds, int *c, int *h, int *w)
{
    if (c)
        *c = ds ? ds->c : 0;
    if (h)
        *h = ds ? ds->h : 0;
    if (w)
        *w = ds ? ds->w : 0;
}

byol_status byol_dataset_get(const struct byol_dataset *ds, size_t index, float *out_chw)
{
    if (!ds || !out_chw)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_get: NULL %s",
                          !ds ? "dataset" : "output");
    if (index >= ds->count)
        return byol_error(BYOL_ERR_INVALID, "%s: image index %zu out of range (%zu images)",
                          ds->name, index, ds->count);
    return ds->ops->get(ds, index, out_chw);
}

int byol_dataset_label(const struct byol_dataset *ds, size_t index)
{
    if (!ds || index >= ds->count)
        return -1;
    return ds->ops->label(ds, index);
}
