/* Datasets: a read-only handle over N images of shape (C,H,W), read as float32 in [0, 1]
 * (torchvision's ToTensor: u8 / 255), each with an optional integer label. One handle type
 * for every format; this header opens MNIST-style IDX files, other formats add their own
 * byol_dataset_open_* functions. */
#ifndef BYOL_DATASET_H
#define BYOL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_dataset;

/* The most data bytes one IDX file may declare (N*H*W for images); larger headers are
 * rejected before anything is allocated. MNIST's training images are 47 MB. */
#define BYOL_IDX_MAX_BYTES (UINT64_C(4) << 30)

/* Open an IDX image file (magic 0x00000803: u8, dims N,H,W) and, unless `labels_path` is
 * NULL, its IDX label file (magic 0x00000801: u8, dim N). Either file may be gzip-compressed
 * (detected from its contents, not its name). Both are read into memory and closed. Errors,
 * each a one-line message naming the file: BYOL_ERR_NOT_FOUND (missing), BYOL_ERR_IO
 * (unreadable), BYOL_ERR_FORMAT (wrong magic, zero or oversized dimensions, a truncated file
 * or gzip stream, bytes after the declared data, corrupt gzip data, label count != image
 * count). The result has C = 1, H and W from the file. */
BYOL_API byol_status byol_dataset_open_idx(const char *images_path, const char *labels_path,
                                           struct byol_dataset **out);

/* NULL is a no-op. */
BYOL_API void byol_dataset_free(struct byol_dataset *ds);

/* The number of images (0 for NULL). */
BYOL_API size_t byol_dataset_count(const struct byol_dataset *ds);
/* The shape of one image; any pointer may be NULL. */
BYOL_API void byol_dataset_shape(const struct byol_dataset *ds, int *c, int *h, int *w);
/* Image `index` as C*H*W floats in [0, 1] (plain CHW) into out_chw. Safe to call from several
 * threads at once. BYOL_ERR_INVALID when index >= count. */
BYOL_API byol_status byol_dataset_get(const struct byol_dataset *ds, size_t index, float *out_chw);
/* The label of image `index`, or -1 when the dataset has no labels or index >= count. */
BYOL_API int byol_dataset_label(const struct byol_dataset *ds, size_t index);

#ifdef __cplusplus
}
#endif
#endif
