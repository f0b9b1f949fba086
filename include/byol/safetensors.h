/* The safetensors file format: an 8-byte little-endian header length, a JSON header mapping
 * tensor names to {dtype, shape, data_offsets}, then the raw little-endian data. Used for
 * checkpoints, weights and test fixtures. The reader validates the format's rules: header
 * size limit, offsets in order without overlap or gap, size = numel x dtype size (overflow
 * checked), no trailing bytes, no duplicate names. */
#ifndef BYOL_SAFETENSORS_H
#define BYOL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BYOL_ST_MAX_DIMS 8
#define BYOL_ST_MAX_HEADER 100000000u /* the reference reader's limit */

enum byol_st_dtype {
    BYOL_ST_F32 = 0,
    BYOL_ST_F64,
    BYOL_ST_I64,
    BYOL_ST_I32,
    BYOL_ST_U8,
    BYOL_ST_BF16,
    BYOL_ST_F16,
};

struct byol_st_tensor {
    const char *name;
    enum byol_st_dtype dtype;
    int ndim;
    int64_t dims[BYOL_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* into the file's data section; owned by the file */
};
/* The data section starts 64-byte aligned in memory, so `data` is aligned for its dtype when
 * its offset is a multiple of the dtype size; files that mix dtype sizes (an odd-length U8
 * before an F32) may break that, so portable readers copy with memcpy. */

struct byol_st_file;

/* Read and validate a whole file. Messages name the file and the problem. */
BYOL_API byol_status byol_st_read(const char *path, struct byol_st_file **out);
/* Parse an in-memory image (copied); `name` stands for the file name in messages. */
BYOL_API byol_status byol_st_parse(const void *bytes, size_t len, const char *name,
                                   struct byol_st_file **out);
BYOL_API void byol_st_free(struct byol_st_file *f);

BYOL_API size_t byol_st_count(const struct byol_st_file *f);
BYOL_API const struct byol_st_tensor *byol_st_at(const struct byol_st_file *f, size_t i);
BYOL_API const struct byol_st_tensor *byol_st_find(const struct byol_st_file *f,
                                                   const char *name);
/* The value of a __metadata__ string entry, or NULL. */
BYOL_API const char *byol_st_metadata(const struct byol_st_file *f, const char *key);

/* "F32", "I64", ... ("unknown" outside the enum), for messages. */
BYOL_API const char *byol_st_dtype_name(enum byol_st_dtype dtype);
/* Write "[2, 3]" (ndim dims) into buf, truncated to size; returns buf. */
BYOL_API char *byol_st_format_dims(char *buf, size_t size, const int64_t *dims, int ndim);
/* The index of the first NaN or infinity in a floating-point tensor (F32, F64, BF16, F16), or
 * t->numel when there is none (and always for integer dtypes). */
BYOL_API size_t byol_st_first_nonfinite(const struct byol_st_tensor *t);

/* Writing: collect tensors (data is copied), then write atomically (temp file in the same
 * folder, fsync, rename, fsync the folder). */
struct byol_st_writer;
BYOL_API byol_status byol_st_writer_create(struct byol_st_writer **out);
BYOL_API void byol_st_writer_free(struct byol_st_writer *w);
BYOL_API byol_status byol_st_writer_add(struct byol_st_writer *w, const char *name,
                                        enum byol_st_dtype dtype, int ndim,
                                        const int64_t *dims, const void *data);
BYOL_API byol_status byol_st_writer_metadata(struct byol_st_writer *w, const char *key,
                                             const char *value);
BYOL_API byol_status byol_st_writer_save(struct byol_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
