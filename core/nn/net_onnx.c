/* A built network as ONNX nodes (core/nn/net_onnx_internal.h). Layers are walked in insertion
 * order (a topological order); values are 4-d (N,C,H,W) after convolutions, pools and their
 * element-wise followers, and 2-d (N,F) after flatten, linear and softmax, with a Flatten or
 * Reshape between where a layer wants the other rank (the network itself keeps (N,F,1,1)). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_onnx_internal.h"

struct onnx_walk {
    struct byol_net *net;
    struct byol_onnx *m;
    size_t n;
    char **val;       /* the value holding layer i's output (NULL: not computed) */
    int *rank;        /* its rank: 2 or 4 */
    int *need;        /* an output depends on layer i */
    int *readers;     /* needed layers reading layer i */
    long *reader;     /* the last of them */
    const char **out; /* the graph output layer i is, or NULL */
    char **strs;      /* names made along the way, freed at the end */
    size_t n_strs, cap_strs;
    unsigned serial; /* for unique helper names */
};

/* A formatted name that lives until the walk ends; NULL when out of memory. */
static const char *walk_str(struct onnx_walk *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    if (w->n_strs == w->cap_strs) {
        size_t cap = w->cap_strs ? 2 * w->cap_strs : 64;
        char **grown = realloc(w->strs, cap * sizeof *grown);
        if (!grown) {
            free(s);
            return NULL;
        }
        w->strs = grown;
        w->cap_strs = cap;
    }
    w->strs[w->n_strs++] = s;
    return s;
}

static byol_status walk_nomem(void)
{
    return byol_error(BYOL_ERR_NOMEM, "onnx export: out of memory");
}

static const char *layer_name(const struct onnx_walk *w, size_t i)
{
    return byol_net_layer_name(w->net, i);
}

/* The value name layer i's output gets when its rank is `rank`: the graph output's name for an
 * output that needs no reshaping, else the layer's own name. */
static const char *value_name(struct onnx_walk *w, size_t i, int rank)
{
    const char *s = w->out[i] && rank == 2 ? w->out[i] : layer_name(w, i);
    return walk_str(w, "%s", s);
}

static byol_status set_value(struct onnx_walk *w, size_t i, const char *name, int rank)
{
    if (!name)
        return walk_nomem();
    w->val[i] = (char *)name; /* owned by strs */
    w->rank[i] = rank;
    return BYOL_OK;
}

/* Layer i's output as a value of rank `want`, adding a Flatten (4 -> 2) or a Reshape to
 * (N, F, 1, 1) (2 -> 4; OpenCV 4.6 takes no Unsqueeze of two axes) after it when needed. */
static byol_status as_rank(struct onnx_walk *w, size_t i, int want, const char **out)
{
    if (w->rank[i] == want) {
        *out = w->val[i];
        return BYOL_OK;
    }
    unsigned k = w->serial++;
    const char *name = walk_str(w, "%s/rank%d_%u", w->val[i], want, k);
    if (!name)
        return walk_nomem();
    byol_status st;
    if (want == 2) {
        struct byol_onnx_attr axis = {.name = "axis", .type = BYOL_ONNX_ATTR_INT, .i = 1};
        const char *in[1] = {w->val[i]};
        st = byol_onnx_add_node(w->m, "Flatten", name, in, 1, name, &axis, 1);
    } else {
        const char *shape = walk_str(w, "%s/shape", name);
        if (!shape)
            return walk_nomem();
        const int64_t to4[4] = {0, -1, 1, 1}, dims[1] = {4};
        const char *in[2] = {w->val[i], shape};
        st = byol_onnx_add_i64(w->m, shape, dims, 1, to4);
        if (st == BYOL_OK)
            st = byol_onnx_add_node(w->m, "Reshape", name, in, 2, name, NULL, 0);
    }
    *out = name;
    return st;
}

static const struct byol_param *find_param(struct onnx_walk *w, size_t layer, const char *what)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", layer_name(w, layer), what);
    return byol_net_find_param(w->net, name);
}

/* Batch norm j in inference form: per channel y = x * scale + shift. */
static byol_status bn_affine(struct onnx_walk *w, size_t j, int channels, double *scale,
                             double *shift)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, j);
    const struct byol_param *g = d->u.bn.affine ? find_param(w, j, "weight") : NULL;
    const struct byol_param *b = d->u.bn.affine ? find_param(w, j, "bias") : NULL;
    const struct byol_param *mean = find_param(w, j, "running_mean");
    const struct byol_param *var = find_param(w, j, "running_var");
    if (!mean || !var || (d->u.bn.affine && (!g || !b)) || (size_t)channels != mean->numel)
        return byol_error(BYOL_ERR_INTERNAL, "onnx export: batch norm '%s' lacks its tensors",
                          layer_name(w, j));
    for (int c = 0; c < channels; c++) {
        double s = (g ? g->data[c] : 1.0) / sqrt((double)var->data[c] + (double)d->u.bn.eps);
        scale[c] = s;
        shift[c] = (b ? b->data[c] : 0.0) - mean->data[c] * s;
    }
    return BYOL_OK;
}

/* Whether batch norm j's value goes through a Relu node: its op applies one (bn.fuse_relu) and
 * the graph does not already, through a relu layer that is its one reader. The engine's own
 * fusion (byol_net_set_fusion) sets fuse_relu only on a batch norm read by a relu layer alone,
 * which the graph keeps; an encoder plugin may set it on any batch norm, with no relu layer
 * after it. (A relu applied twice is one relu: this only spares a node.) */
static int bn_fused_relu(const struct onnx_walk *w, size_t j)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, j);
    if (!d->u.bn.fuse_relu)
        return 0;
    if (w->out[j] || w->readers[j] != 1)
        return 1;
    const struct byol_op_desc *r = byol_net_layer_desc(w->net, (size_t)w->reader[j]);
    return !r || r->kind != BYOL_OP_RELU;
}

/* Layer j's value from x, its batch norm's result: through the Relu its op fuses
 * (bn_fused_relu), or x itself. */
static byol_status finish_bn(struct onnx_walk *w, size_t j, const char *x, int relu, int rank)
{
    if (!relu)
        return set_value(w, j, x, rank);
    const char *name = walk_str(w, "%s/relu", layer_name(w, j));
    byol_status st = name ? set_value(w, j, value_name(w, j, rank), rank) : walk_nomem();
    const char *in[1] = {x};
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, "Relu", name, in, 1, w->val[j], NULL, 0);
    return st;
}

/* The value a batch norm's node (or the layer folding it) writes: its layer's, or an
 * intermediate one when a fused Relu follows. */
static const char *bn_result(struct onnx_walk *w, size_t j, int relu, int rank)
{
    return relu ? walk_str(w, "%s/pre_relu", layer_name(w, j)) : value_name(w, j, rank);
}

/* A convolution (Conv) or linear layer (Gemm, weight transposed) i, with batch norm `bn`
 * (>= 0) folded in: W' = W * s, b' = b * s + (beta - mean * s), s = gamma / sqrt(var + eps). */
static byol_status emit_weighted(struct onnx_walk *w, size_t i, long bn)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, i);
    int conv = d->kind == BYOL_OP_CONV2D;
    const struct byol_param *wt = find_param(w, i, "weight");
    int has_bias = conv ? d->u.conv.has_bias : d->u.linear.has_bias;
    const struct byol_param *bias = has_bias ? find_param(w, i, "bias") : NULL;
    if (!wt || (has_bias && !bias))
        return byol_error(BYOL_ERR_INTERNAL, "onnx export: layer '%s' lacks its weights",
                          layer_name(w, i));
    int out = wt->dims[0];
    size_t per = wt->numel / (size_t)out;
    float *W = malloc(wt->numel * sizeof *W), *B = malloc((size_t)out * sizeof *B);
    double *scale = malloc((size_t)out * sizeof *scale),
           *shift = malloc((size_t)out * sizeof *shift);
    byol_status st = W && B && scale && shift ? BYOL_OK : walk_nomem();
    for (int o = 0; st == BYOL_OK && o < out; o++) {
        scale[o] = 1.0;
        shift[o] = 0.0;
    }
    if (st == BYOL_OK && bn >= 0)
        st = bn_affine(w, (size_t)bn, out, scale, shift);
    for (int o = 0; st == BYOL_OK && o < out; o++) {
        for (size_t k = 0; k < per; k++)
            W[(size_t)o * per + k] = (float)(wt->data[(size_t)o * per + k] * scale[o]);
        B[o] = (float)((bias ? bias->data[o] : 0.0) * scale[o] + shift[o]);
    }
    size_t srcs[2] = {0, 0};
    int n_src = st == BYOL_OK ? byol_net_layer_inputs(w->net, i, srcs) : 0;
    size_t src = srcs[0];
    size_t dst = bn >= 0 ? (size_t)bn : i;
    int relu = bn >= 0 && bn_fused_relu(w, dst), rank = conv ? 4 : 2;
    const char *x = NULL, *wname = walk_str(w, "%s.weight", layer_name(w, i));
    const char *bname = walk_str(w, "%s.bias", layer_name(w, i));
    const char *y = bn_result(w, dst, relu, rank);
    if (st == BYOL_OK && (n_src != 1 || !wname || !bname || !y))
        st = walk_nomem();
    if (st == BYOL_OK)
        st = as_rank(w, src, conv ? 4 : 2, &x);
    int64_t wdims[4], bdims[1] = {out};
    for (int k = 0; k < wt->ndim; k++)
        wdims[k] = wt->dims[k];
    if (st == BYOL_OK)
        st = byol_onnx_add_f32(w->m, wname, wdims, wt->ndim, W);
    if (st == BYOL_OK)
        st = byol_onnx_add_f32(w->m, bname, bdims, 1, B);
    const char *in[3] = {x, wname, bname};
    if (st == BYOL_OK && conv) {
        const int64_t ks[2] = {d->u.conv.kernel_h, d->u.conv.kernel_w};
        const int64_t strides[2] = {d->u.conv.stride_h, d->u.conv.stride_w};
        const int64_t pads[4] = {d->u.conv.pad_h, d->u.conv.pad_w, d->u.conv.pad_h,
                                 d->u.conv.pad_w};
        const int64_t dil[2] = {1, 1};
        const struct byol_onnx_attr a[5] = {
            {.name = "kernel_shape", .type = BYOL_ONNX_ATTR_INTS, .ints = ks, .n_ints = 2},
            {.name = "strides", .type = BYOL_ONNX_ATTR_INTS, .ints = strides, .n_ints = 2},
            {.name = "pads", .type = BYOL_ONNX_ATTR_INTS, .ints = pads, .n_ints = 4},
            {.name = "dilations", .type = BYOL_ONNX_ATTR_INTS, .ints = dil, .n_ints = 2},
            {.name = "group", .type = BYOL_ONNX_ATTR_INT, .i = 1},
        };
        st = byol_onnx_add_node(w->m, "Conv", layer_name(w, i), in, 3, y, a, 5);
    } else if (st == BYOL_OK) {
        const struct byol_onnx_attr a[1] = {{.name = "transB", .type = BYOL_ONNX_ATTR_INT, .i = 1}};
        st = byol_onnx_add_node(w->m, "Gemm", layer_name(w, i), in, 3, y, a, 1);
    }
    if (st == BYOL_OK)
        st = finish_bn(w, dst, y, relu, rank);
    free(W);
    free(B);
    free(scale);
    free(shift);
    return st;
}

/* A batch norm not folded: BatchNormalization with the running statistics. */
static byol_status emit_bn(struct onnx_walk *w, size_t j, size_t src)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, j);
    int c = d->in[0].c;
    const struct byol_param *g = d->u.bn.affine ? find_param(w, j, "weight") : NULL;
    const struct byol_param *b = d->u.bn.affine ? find_param(w, j, "bias") : NULL;
    const struct byol_param *mean = find_param(w, j, "running_mean");
    const struct byol_param *var = find_param(w, j, "running_var");
    if (!mean || !var || (d->u.bn.affine && (!g || !b)))
        return byol_error(BYOL_ERR_INTERNAL, "onnx export: batch norm '%s' lacks its tensors",
                          layer_name(w, j));
    float *ones = malloc((size_t)c * sizeof *ones), *zeros = calloc((size_t)c, sizeof *zeros);
    byol_status st = ones && zeros ? BYOL_OK : walk_nomem();
    for (int k = 0; st == BYOL_OK && k < c; k++)
        ones[k] = 1.0f;
    const char *names[4] = {walk_str(w, "%s.weight", layer_name(w, j)),
                            walk_str(w, "%s.bias", layer_name(w, j)),
                            walk_str(w, "%s.running_mean", layer_name(w, j)),
                            walk_str(w, "%s.running_var", layer_name(w, j))};
    const float *data[4] = {g ? g->data : ones, b ? b->data : zeros, mean->data, var->data};
    const int64_t dims[1] = {c};
    for (int k = 0; k < 4 && st == BYOL_OK; k++)
        st = names[k] ? byol_onnx_add_f32(w->m, names[k], dims, 1, data[k]) : walk_nomem();
    free(ones);
    free(zeros);
    int relu = bn_fused_relu(w, j), rank = w->rank[src];
    const char *y = bn_result(w, j, relu, rank);
    if (st == BYOL_OK && !y)
        st = walk_nomem();
    if (st != BYOL_OK)
        return st;
    const char *in[5] = {w->val[src], names[0], names[1], names[2], names[3]};
    const struct byol_onnx_attr a[1] = {
        {.name = "epsilon", .type = BYOL_ONNX_ATTR_FLOAT, .f = d->u.bn.eps}};
    st = byol_onnx_add_node(w->m, "BatchNormalization", layer_name(w, j), in, 5, y, a, 1);
    return st == BYOL_OK ? finish_bn(w, j, y, relu, rank) : st;
}

/* byol's grouped softmax on (N,F): Reshape (N, F/g, g), Div by the temperature, Softmax over
 * the last axis, Reshape back to (N, F). */
static byol_status emit_softmax(struct onnx_walk *w, size_t i, size_t src)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, i);
    const char *name = layer_name(w, i), *x = NULL;
    int64_t f = (int64_t)d->in[0].c * d->in[0].h * d->in[0].w, g = d->u.softmax.group;
    const int64_t shape3[3] = {0, f / g, g}, shape2[2] = {0, f}, d3[1] = {3}, d2[1] = {2};
    const char *s3 = walk_str(w, "%s/groups_shape", name), *s2 = walk_str(w, "%s/flat_shape", name);
    const char *t = walk_str(w, "%s/temperature", name), *v1 = walk_str(w, "%s/groups", name);
    const char *v2 = walk_str(w, "%s/scaled", name), *v3 = walk_str(w, "%s/softmax", name);
    if (!s3 || !s2 || !t || !v1 || !v2 || !v3)
        return walk_nomem();
    float temp = d->u.softmax.temperature;
    byol_status st = as_rank(w, src, 2, &x);
    if (st == BYOL_OK)
        st = byol_onnx_add_i64(w->m, s3, d3, 1, shape3);
    if (st == BYOL_OK)
        st = byol_onnx_add_i64(w->m, s2, d2, 1, shape2);
    if (st == BYOL_OK)
        st = byol_onnx_add_f32(w->m, t, NULL, 0, &temp);
    if (st == BYOL_OK)
        st = set_value(w, i, value_name(w, i, 2), 2);
    const struct byol_onnx_attr axis = {.name = "axis", .type = BYOL_ONNX_ATTR_INT, .i = 2};
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, "Reshape", v1, (const char *[]){x, s3}, 2, v1, NULL, 0);
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, "Div", v2, (const char *[]){v1, t}, 2, v2, NULL, 0);
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, "Softmax", v3, (const char *[]){v2}, 1, v3, &axis, 1);
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, "Reshape", name, (const char *[]){v3, s2}, 2, w->val[i], NULL,
                                0);
    return st;
}

/* One node with no weights: Relu, MaxPool, GlobalAveragePool, Flatten, Add. */
static byol_status emit_plain(struct onnx_walk *w, size_t i, const size_t *src, int n_src)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, i);
    const char *in[2] = {w->val[src[0]], NULL};
    int rank = w->rank[src[0]];
    byol_status st = BYOL_OK;
    const char *op = NULL;
    struct byol_onnx_attr a[3];
    int n_attr = 0;
    int64_t ks[2], strides[2], pads[4];
    switch (d->kind) {
    case BYOL_OP_RELU: op = "Relu"; break;
    case BYOL_OP_MAXPOOL:
    case BYOL_OP_AVGPOOL:
        rank = 4;
        st = as_rank(w, src[0], 4, &in[0]);
        op = d->kind == BYOL_OP_AVGPOOL ? "GlobalAveragePool" : "MaxPool";
        if (d->kind == BYOL_OP_MAXPOOL) {
            ks[0] = ks[1] = d->u.pool.kernel;
            strides[0] = strides[1] = d->u.pool.stride;
            pads[0] = pads[1] = pads[2] = pads[3] = d->u.pool.pad;
            a[0] = (struct byol_onnx_attr){"kernel_shape", BYOL_ONNX_ATTR_INTS, 0, 0, ks, 2};
            a[1] = (struct byol_onnx_attr){"strides", BYOL_ONNX_ATTR_INTS, 0, 0, strides, 2};
            a[2] = (struct byol_onnx_attr){"pads", BYOL_ONNX_ATTR_INTS, 0, 0, pads, 4};
            n_attr = 3;
        }
        break;
    case BYOL_OP_FLATTEN:
        op = "Flatten";
        rank = 2;
        a[0] = (struct byol_onnx_attr){.name = "axis", .type = BYOL_ONNX_ATTR_INT, .i = 1};
        n_attr = 1;
        break;
    case BYOL_OP_ADD:
        op = "Add";
        if (n_src == 2 && w->rank[src[1]] != rank) { /* (N,F) + (N,F,1,1): both 4-d */
            rank = 4;
            st = as_rank(w, src[0], 4, &in[0]);
            if (st == BYOL_OK)
                st = as_rank(w, src[1], 4, &in[1]);
        } else {
            in[1] = w->val[src[1]];
        }
        break;
    default:
        return byol_error(BYOL_ERR_UNSUPPORTED, "layer '%s': op '%s' has no ONNX mapping",
                          layer_name(w, i), byol_op_kind_name(d->kind));
    }
    if (st == BYOL_OK)
        st = set_value(w, i, value_name(w, i, rank), rank);
    if (st == BYOL_OK)
        st = byol_onnx_add_node(w->m, op, layer_name(w, i), in, n_src, w->val[i], a, n_attr);
    return st;
}

/* The batch norm that layer i's output can be folded into, or -1. */
static long fold_target(struct onnx_walk *w, size_t i)
{
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, i);
    if (d->kind != BYOL_OP_CONV2D && d->kind != BYOL_OP_LINEAR)
        return -1;
    if (w->readers[i] != 1 || w->out[i])
        return -1;
    const struct byol_op_desc *r = byol_net_layer_desc(w->net, (size_t)w->reader[i]);
    return r && r->kind == BYOL_OP_BATCHNORM ? w->reader[i] : -1;
}

static byol_status emit_layer(struct onnx_walk *w, size_t i, const char *input,
                              const char *input_name)
{
    size_t src[2] = {0, 0};
    int n_src = byol_net_layer_inputs(w->net, i, src);
    const struct byol_op_desc *d = byol_net_layer_desc(w->net, i);
    if (!d) { /* an input layer */
        struct byol_shape s;
        if (strcmp(layer_name(w, i), input) != 0 && byol_net_layer_index(w->net, input) != (long)i)
            return byol_error(BYOL_ERR_UNSUPPORTED,
                              "onnx export: the network reads input '%s' besides '%s'",
                              layer_name(w, i), input);
        byol_status st = byol_net_output_shape(w->net, layer_name(w, i), &s);
        const int64_t dims[4] = {-1, s.c, s.h, s.w};
        if (st == BYOL_OK)
            st = byol_onnx_add_input(w->m, input_name, dims, 4);
        return st == BYOL_OK ? set_value(w, i, walk_str(w, "%s", input_name), 4) : st;
    }
    for (int k = 0; k < n_src; k++)
        if (!w->val[src[k]])
            return byol_error(BYOL_ERR_INTERNAL, "onnx export: layer '%s' reads '%s' before it",
                              layer_name(w, i), layer_name(w, src[k]));
    switch (d->kind) {
    case BYOL_OP_CONV2D:
    case BYOL_OP_LINEAR: return emit_weighted(w, i, fold_target(w, i));
    case BYOL_OP_BATCHNORM: return emit_bn(w, i, src[0]);
    case BYOL_OP_SOFTMAX: return emit_softmax(w, i, src[0]);
    default: return emit_plain(w, i, src, n_src);
    }
}

/* Which layers the outputs need, how many needed layers read each, and the outputs' names. */
static byol_status walk_plan(struct onnx_walk *w, const struct byol_net_onnx_output *outs,
                             int n_outs)
{
    for (int k = 0; k < n_outs; k++) {
        long o = byol_net_layer_index(w->net, outs[k].layer);
        if (o < 0)
            return byol_error(BYOL_ERR_NOT_FOUND, "onnx export: no layer '%s'", outs[k].layer);
        w->out[o] = outs[k].name;
        for (size_t i = 0; i <= (size_t)o; i++)
            w->need[i] |= byol_net_depends_on(w->net, byol_net_layer_name(w->net, (size_t)o),
                                              byol_net_layer_name(w->net, i));
    }
    for (size_t i = 0; i < w->n; i++) {
        size_t src[2];
        int n_src = w->need[i] ? byol_net_layer_inputs(w->net, i, src) : 0;
        for (int k = 0; k < n_src; k++) {
            if (k == 1 && src[1] == src[0])
                continue; /* x + x reads one value */
            w->readers[src[k]]++;
            w->reader[src[k]] = (long)i;
        }
    }
    return BYOL_OK;
}

/* The graph outputs, (N, D): a 4-d value is flattened into the output's name. */
static byol_status walk_outputs(struct onnx_walk *w, const struct byol_net_onnx_output *outs,
                                int n_outs)
{
    byol_status st = BYOL_OK;
    for (int k = 0; k < n_outs && st == BYOL_OK; k++) {
        long o = byol_net_layer_index(w->net, outs[k].layer);
        struct byol_shape s;
        st = byol_net_output_shape(w->net, outs[k].layer, &s);
        if (st == BYOL_OK && w->rank[o] != 2) {
            const struct byol_onnx_attr axis = {.name = "axis", .type = BYOL_ONNX_ATTR_INT, .i = 1};
            const char *in[1] = {w->val[o]};
            st = byol_onnx_add_node(w->m, "Flatten", outs[k].name, in, 1, outs[k].name, &axis, 1);
        }
        const int64_t dims[2] = {-1, (int64_t)s.c * s.h * s.w};
        if (st == BYOL_OK)
            st = byol_onnx_add_output(w->m, outs[k].name, dims, 2);
    }
    return st;
}

byol_status byol_net_onnx_graph(struct byol_net *net, const char *input, const char *input_name,
                                const struct byol_net_onnx_output *outs, int n_outs,
                                struct byol_onnx *m)
{
    if (!net || !input || !input_name || !outs || n_outs < 1 || !m)
        return byol_error(BYOL_ERR_INVALID, "byol_net_onnx_graph: NULL argument");
    struct onnx_walk w = {.net = net, .m = m, .n = byol_net_layer_count(net)};
    w.val = calloc(w.n, sizeof *w.val);
    w.rank = calloc(w.n, sizeof *w.rank);
    w.need = calloc(w.n, sizeof *w.need);
    w.readers = calloc(w.n, sizeof *w.readers);
    w.reader = calloc(w.n, sizeof *w.reader);
    w.out = calloc(w.n, sizeof *w.out);
    byol_status st =
        w.val && w.rank && w.need && w.readers && w.reader && w.out ? BYOL_OK : walk_nomem();
    if (st == BYOL_OK)
        st = walk_plan(&w, outs, n_outs);
    for (size_t i = 0; i < w.n && st == BYOL_OK; i++)
        if (w.need[i] && !w.val[i]) /* a folded batch norm has its value already */
            st = emit_layer(&w, i, input, input_name);
    if (st == BYOL_OK)
        st = walk_outputs(&w, outs, n_outs);
    for (size_t k = 0; k < w.n_strs; k++)
        free(w.strs[k]);
    free(w.strs);
    free(w.val);
    free(w.rank);
    free(w.need);
    free(w.readers);
    free(w.reader);
    free(w.out);
    return st;
}
