/* The handle behind include/byol/dataset.h: a small table of format operations, so that every
 * format reader (IDX here, more later) fills the same struct and shares the public API. */
#ifndef BYOL_DATASET_INTERNAL_H
#define BYOL_DATASET_INTERNAL_H

#include "byol/dataset.h"

struct byol_image_file;

struct byol_dataset_ops {
    const char *format; /* "idx", "cifar", ... */
    /* Called with index < count only; out holds c*h*w floats. Must be thread-safe. */
    byol_status (*get)(const struct byol_dataset *ds, size_t index, float *out);
    /* Called with index < count only; -1 when the dataset has no labels. */
    int (*label)(const struct byol_dataset *ds, size_t index);
    void (*destroy)(void *impl);
    /* (optional) Image `index`'s file, read but not decoded, for views cut from the originals
     * (core/data/augment_views.c). Thread-safe. */
    byol_status (*original)(const struct byol_dataset *ds, size_t index,
                            struct byol_image_file *f);
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

/* Read a whole regular file into *data (malloc'ed; free() it) of *size bytes. `what` names
 * the kind of file in messages ("CIFAR batch"). Files above max_bytes are refused before
 * anything is allocated. BYOL_ERR_NOT_FOUND, BYOL_ERR_IO, BYOL_ERR_FORMAT (too large). */
byol_status byol_dataset_read_file(const char *path, const char *what, uint64_t max_bytes,
                                   uint8_t **data, size_t *size);

/* "dir/name" into out (n bytes); BYOL_ERR_INVALID when it does not fit. */
byol_status byol_dataset_join(const char *dir, const char *name, char *out, size_t n);

#endif
