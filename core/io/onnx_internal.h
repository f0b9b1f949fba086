/* An ONNX model written as protobuf bytes (core/io/onnx.c): a small encoder of its own
 * (varints and length-delimited fields, field numbers from onnx.proto), enough for one graph of
 * float32 nodes with initializers. IR version 8, opset 17 (ONNX 1.12). Not installed. */
#ifndef BYOL_CORE_ONNX_INTERNAL_H
#define BYOL_CORE_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

#define BYOL_ONNX_IR_VERSION 8
#define BYOL_ONNX_OPSET 17
/* One protobuf message may not exceed 2 GiB; weights beyond that need ONNX's external data,
 * which byol-c does not write. */
#define BYOL_ONNX_MAX_BYTES ((uint64_t)INT32_MAX)

struct byol_onnx;

enum byol_onnx_attr_type {
    BYOL_ONNX_ATTR_FLOAT = 1,
    BYOL_ONNX_ATTR_INT = 2,
    BYOL_ONNX_ATTR_INTS = 7,
};

struct byol_onnx_attr {
    const char *name;
    enum byol_onnx_attr_type type;
    float f;
    int64_t i;
    const int64_t *ints;
    int n_ints;
};

byol_status byol_onnx_create(const char *graph_name, struct byol_onnx **out);
void byol_onnx_free(struct byol_onnx *m);

/* A graph input or output: float32 of `ndim` dims; a dim < 0 is the dynamic batch "N". */
byol_status byol_onnx_add_input(struct byol_onnx *m, const char *name, const int64_t *dims,
                                int ndim);
byol_status byol_onnx_add_output(struct byol_onnx *m, const char *name, const int64_t *dims,
                                 int ndim);
/* Initializers (raw_data, little-endian). A float32 one that would take the weights past
 * BYOL_ONNX_MAX_BYTES fails before `data` is read. */
byol_status byol_onnx_add_f32(struct byol_onnx *m, const char *name, const int64_t *dims, int ndim,
                              const float *data);
byol_status byol_onnx_add_i64(struct byol_onnx *m, const char *name, const int64_t *dims, int ndim,
                              const int64_t *data);
/* A node of the default domain. */
byol_status byol_onnx_add_node(struct byol_onnx *m, const char *op_type, const char *name,
                               const char *const *inputs, int n_inputs, const char *output,
                               const struct byol_onnx_attr *attrs, int n_attrs);
/* A metadata_props entry of the model. */
byol_status byol_onnx_add_metadata(struct byol_onnx *m, const char *key, const char *value);
/* Bytes of initializer data so far. */
uint64_t byol_onnx_weight_bytes(const struct byol_onnx *m);
/* Write the model to `path` atomically (temp file, fsync, rename). */
byol_status byol_onnx_save(struct byol_onnx *m, const char *path, const char *producer_version);

#endif
