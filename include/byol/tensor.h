/* Logical shapes and backend-owned tensors. The core only ever sees logical NCHW shapes;
 * the memory behind a tensor belongs to the backend that allocated it and may be laid out
 * in a backend-specific way (convert with byol_backend_tensor_read / _write). */
#ifndef BYOL_TENSOR_H
#define BYOL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Always four dimensions. A matrix of N rows and F features is {N, F, 1, 1}. */
struct byol_shape {
    int n, c, h, w;
};

static inline size_t byol_shape_numel(struct byol_shape s)
{
    return (size_t)s.n * (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

static inline int byol_shape_eq(struct byol_shape a, struct byol_shape b)
{
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

/* A tensor allocated by a backend. `data` points at the backend's storage; when `layout`
 * is NULL the storage is plain contiguous float32 NCHW and may be read directly. */
struct byol_tensor {
    struct byol_shape shape; /* logical shape, set by the caller before allocation */
    float *data;             /* owned by the backend */
    size_t bytes;            /* size of the storage at `data` */
    void *layout;            /* backend-private layout description; NULL = plain NCHW */
};

#ifdef __cplusplus
}
#endif
#endif
