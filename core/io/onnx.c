/* ONNX models as protobuf bytes (core/io/onnx_internal.h). Each part of the graph is kept as
 * the encoded fields it adds to GraphProto (nodes, initializers, inputs, outputs), so saving
 * only writes the ModelProto header, the graph's length and the parts in order. Field numbers
 * are onnx.proto's (ONNX 1.12). */
#include <stdlib.h>
#include <string.h>

#include "fileio_internal.h"
#include "onnx_internal.h"

/* ---- protobuf encoding ----------------------------------------------------------------- */

struct pb {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

enum { PB_VARINT = 0, PB_LEN = 2, PB_FIXED32 = 5 };

static void pb_put(struct pb *b, const void *data, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static size_t pb_varint_encode(unsigned char out[10], uint64_t v)
{
    size_t n = 0;
    do {
        out[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
    unsigned char buf[10];
    pb_put(b, buf, pb_varint_encode(buf, v));
}

static void pb_tag(struct pb *b, int field, int wire)
{
    pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

static void pb_int(struct pb *b, int field, int64_t v)
{
    pb_tag(b, field, PB_VARINT);
    pb_varint(b, (uint64_t)v); /* negative int64: ten bytes, as protobuf does */
}

static void pb_bytes(struct pb *b, int field, const void *data, size_t n)
{
    pb_tag(b, field, PB_LEN);
    pb_varint(b, n);
    pb_put(b, data, n);
}

static void pb_str(struct pb *b, int field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

static void pb_float(struct pb *b, int field, float f)
{
    uint32_t u;
    unsigned char le[4];
    memcpy(&u, &f, 4);
    for (int k = 0; k < 4; k++)
        le[k] = (unsigned char)(u >> (8 * k));
    pb_tag(b, field, PB_FIXED32);
    pb_put(b, le, 4);
}

/* A nested message: its bytes as a length-delimited field; `sub` is emptied. */
static void pb_msg(struct pb *b, int field, struct pb *sub)
{
    if (sub->oom)
        b->oom = 1;
    pb_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    *sub = (struct pb){0};
}

/* ---- the model ------------------------------------------------------------------------- */

/* The most bytes a model takes (its weights, then the whole file). A test build of this file
 * alone may lower it (-DBYOL_ONNX_TEST_MAX_BYTES=N, tests/CMakeLists.txt) to reach the refusal
 * of a whole model with kilobytes; libbyol's build never defines it. */
#ifdef BYOL_ONNX_TEST_MAX_BYTES
#define ONNX_MAX_BYTES ((uint64_t)(BYOL_ONNX_TEST_MAX_BYTES))
#else
#define ONNX_MAX_BYTES BYOL_ONNX_MAX_BYTES
#endif

/* onnx.proto: TensorProto.DataType */
enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };

struct byol_onnx {
    char *graph_name;
    struct pb nodes, inits, inputs, outputs, meta;
    uint64_t weight_bytes;
    size_t n_nodes;
};

byol_status byol_onnx_create(const char *graph_name, struct byol_onnx **out)
{
    struct byol_onnx *m = calloc(1, sizeof *m);
    if (m)
        m->graph_name = strdup(graph_name ? graph_name : "graph");
    if (!m || !m->graph_name) {
        free(m);
        return byol_error(BYOL_ERR_NOMEM, "onnx: out of memory");
    }
    *out = m;
    return BYOL_OK;
}

void byol_onnx_free(struct byol_onnx *m)
{
    if (!m)
        return;
    free(m->nodes.p);
    free(m->inits.p);
    free(m->inputs.p);
    free(m->outputs.p);
    free(m->meta.p);
    free(m->graph_name);
    free(m);
}

static byol_status onnx_check(const struct byol_onnx *m, const struct pb *b)
{
    (void)m;
    return b->oom ? byol_error(BYOL_ERR_NOMEM, "onnx: out of memory") : BYOL_OK;
}

/* ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1
 * { dim_value = 1 | dim_param = 2 } } } } } */
static byol_status onnx_value_info(struct byol_onnx *m, struct pb *dst, int field, const char *name,
                                   const int64_t *dims, int ndim)
{
    struct pb vi = {0}, type = {0}, tensor = {0}, shape = {0}, dim = {0};
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 0)
            pb_str(&dim, 2, "N");
        else
            pb_int(&dim, 1, dims[k]);
        pb_msg(&shape, 1, &dim);
    }
    pb_int(&tensor, 1, ONNX_FLOAT);
    pb_msg(&tensor, 2, &shape);
    pb_msg(&type, 1, &tensor);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(dst, field, &vi);
    return onnx_check(m, dst);
}

byol_status byol_onnx_add_input(struct byol_onnx *m, const char *name, const int64_t *dims,
                                int ndim)
{
    return onnx_value_info(m, &m->inputs, 11, name, dims, ndim);
}

byol_status byol_onnx_add_output(struct byol_onnx *m, const char *name, const int64_t *dims,
                                 int ndim)
{
    return onnx_value_info(m, &m->outputs, 12, name, dims, ndim);
}

/* TensorProto { dims = 1; data_type = 2; name = 8; raw_data = 9 }, as GraphProto.initializer
 * (5). `elem` bytes per element, written little-endian. */
static byol_status onnx_init(struct byol_onnx *m, const char *name, const int64_t *dims, int ndim,
                             int type, const void *data, size_t elem)
{
    /* The size in double too, for a count too large for 64 bits (over any limit). */
    uint64_t numel = 1;
    double numel_d = 1;
    int overflow = 0;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 0)
            return byol_error(BYOL_ERR_INVALID, "onnx: initializer '%s': dimension %d is %lld",
                              name, k, (long long)dims[k]);
        overflow |= dims[k] > 0 && numel > UINT64_MAX / elem / (uint64_t)dims[k];
        numel *= (uint64_t)dims[k];
        numel_d *= (double)dims[k];
    }
    uint64_t bytes = numel * elem;
    if (overflow || bytes > ONNX_MAX_BYTES - m->weight_bytes)
        return byol_error(BYOL_ERR_UNSUPPORTED,
                          "the weights take more than 2 GB (%.2f GB at '%s'), the most one ONNX "
                          "file holds without external data, which byol-c does not write",
                          ((double)m->weight_bytes + numel_d * (double)elem) / 1e9, name);
    struct pb t = {0};
    for (int k = 0; k < ndim; k++)
        pb_int(&t, 1, dims[k]);
    pb_int(&t, 2, type);
    pb_str(&t, 8, name);
    pb_tag(&t, 9, PB_LEN);
    pb_varint(&t, bytes);
    const unsigned char *src = data;
    unsigned char le[8 * 64];
    for (uint64_t i = 0; i < numel && !t.oom;) {
        size_t chunk = 0;
        for (; chunk < 64 && i < numel; chunk++, i++) {
            uint64_t v = 0;
            if (elem == 4) {
                uint32_t u;
                memcpy(&u, src + 4 * i, 4);
                v = u;
            } else {
                memcpy(&v, src + 8 * i, 8);
            }
            for (size_t k = 0; k < elem; k++)
                le[chunk * elem + k] = (unsigned char)(v >> (8 * k));
        }
        pb_put(&t, le, chunk * elem);
    }
    pb_msg(&m->inits, 5, &t);
    m->weight_bytes += bytes;
    return onnx_check(m, &m->inits);
}

byol_status byol_onnx_add_f32(struct byol_onnx *m, const char *name, const int64_t *dims, int ndim,
                              const float *data)
{
    return onnx_init(m, name, dims, ndim, ONNX_FLOAT, data, 4);
}

byol_status byol_onnx_add_i64(struct byol_onnx *m, const char *name, const int64_t *dims, int ndim,
                              const int64_t *data)
{
    return onnx_init(m, name, dims, ndim, ONNX_INT64, data, 8);
}

/* NodeProto { input = 1; output = 2; name = 3; op_type = 4; attribute = 5 { name = 1; f = 2;
 * i = 3; ints = 8; type = 20 } }, as GraphProto.node (1). */
byol_status byol_onnx_add_node(struct byol_onnx *m, const char *op_type, const char *name,
                               const char *const *inputs, int n_inputs, const char *output,
                               const struct byol_onnx_attr *attrs, int n_attrs)
{
    struct pb node = {0};
    for (int k = 0; k < n_inputs; k++)
        pb_str(&node, 1, inputs[k]);
    pb_str(&node, 2, output);
    pb_str(&node, 3, name);
    pb_str(&node, 4, op_type);
    for (int k = 0; k < n_attrs; k++) {
        const struct byol_onnx_attr *a = &attrs[k];
        struct pb at = {0};
        pb_str(&at, 1, a->name);
        if (a->type == BYOL_ONNX_ATTR_FLOAT)
            pb_float(&at, 2, a->f);
        else if (a->type == BYOL_ONNX_ATTR_INT)
            pb_int(&at, 3, a->i);
        else
            for (int j = 0; j < a->n_ints; j++)
                pb_int(&at, 8, a->ints[j]);
        pb_int(&at, 20, a->type);
        pb_msg(&node, 5, &at);
    }
    pb_msg(&m->nodes, 1, &node);
    m->n_nodes++;
    return onnx_check(m, &m->nodes);
}

/* ModelProto.metadata_props (14): StringStringEntryProto { key = 1; value = 2 }. */
byol_status byol_onnx_add_metadata(struct byol_onnx *m, const char *key, const char *value)
{
    struct pb e = {0};
    pb_str(&e, 1, key);
    pb_str(&e, 2, value);
    pb_msg(&m->meta, 14, &e);
    return onnx_check(m, &m->meta);
}

uint64_t byol_onnx_weight_bytes(const struct byol_onnx *m)
{
    return m ? m->weight_bytes : 0;
}

struct onnx_save {
    const struct pb *parts[8];
    int n;
};

static int onnx_write(int fd, void *user)
{
    const struct onnx_save *s = user;
    for (int k = 0; k < s->n; k++)
        if (s->parts[k]->n && byol_write_all(fd, s->parts[k]->p, s->parts[k]->n) != 0)
            return -1;
    return 0;
}

/* ModelProto { ir_version = 1; producer_name = 2; producer_version = 3; graph = 7;
 * opset_import = 8 { domain = 1; version = 2 }; metadata_props = 14 }, GraphProto
 * { node = 1; name = 2; initializer = 5; input = 11; output = 12 }. */
byol_status byol_onnx_save(struct byol_onnx *m, const char *path, const char *producer_version)
{
    if (!m || !path)
        return byol_error(BYOL_ERR_INVALID, "byol_onnx_save: NULL argument");
    struct pb head = {0}, opset = {0}, gname = {0}, glen = {0};
    pb_int(&head, 1, BYOL_ONNX_IR_VERSION);
    pb_str(&head, 2, "byol-c");
    pb_str(&head, 3, producer_version ? producer_version : "");
    pb_str(&opset, 1, "");
    pb_int(&opset, 2, BYOL_ONNX_OPSET);
    pb_msg(&head, 8, &opset);
    pb_str(&gname, 2, m->graph_name);
    uint64_t graph = (uint64_t)m->nodes.n + gname.n + m->inits.n + m->inputs.n + m->outputs.n;
    pb_tag(&glen, 7, PB_LEN);
    pb_varint(&glen, graph);
    byol_status st = BYOL_OK;
    if (head.oom || gname.oom || glen.oom)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    else if (graph + head.n + m->meta.n + glen.n > ONNX_MAX_BYTES)
        st = byol_error(BYOL_ERR_UNSUPPORTED,
                        "%s: the model takes more than 2 GB, the most one ONNX file holds "
                        "without external data, which byol-c does not write",
                        path);
    if (st == BYOL_OK) {
        /* The graph last but one: readers take fields in any order. */
        struct onnx_save s = {
            {&head, &m->meta, &glen, &m->nodes, &gname, &m->inits, &m->inputs, &m->outputs}, 8};
        st = byol_file_replace(path, onnx_write, &s);
    }
    free(head.p);
    free(gname.p);
    free(glen.p);
    return st;
}
