/* The handle behind include/byol/dataset.h: a small table of format operations, so that every
 * format reader (IDX here, more later) fills the same struct and shares the public API. */
#ifndef BYOL_DATASET_INTERNAL_H
#define BYOL_DATASET_INTERNAL_H

#include "byol/dataset.h"

struct byol_dataset_ops {
    const char *format; /* "idx" */
    /* Called with index < count only; out holds c*h*w floats. Must be thread-safe. */
    byol_status (*get)(const struct byol_dataset *ds, size_t index, float *out);
    /* Called with index < count only; -1 when the dataset has no labels. */
    int (*label)(const struct byol_dataset *ds, size_t index);
    void (*destroy)(void *impl);
};

struct byol_dataset {
    const struct byol_dataset_ops *ops;
    void *impl;
    char *name; /* the file or folder, for messages; owned */
    size_t count;
    int c, h, w;
};

/* A handle over `impl` (which it then owns), named `name` (copied). On failure `impl` is
 * destroyed with ops->destroy. */
byol_status byol_dataset_wrap(const struct byol_dataset_ops *ops, void *impl, const char *name,
                              size_t count, int c, int h, int w, struct byol_dataset **out);

#endif
