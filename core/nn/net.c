/* The network engine (include/byol/net.h): a DAG of named layers kept in insertion order,
 * which is a topological order because a layer can only name inputs that already exist.
 * Build lays parameters, gradients and batch-norm buffers out in three flat arrays and
 * creates one backend plan per layer; forward and backward walk the ancestors of a layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byol/net.h"
#include "byol/rng.h"
#include "byol/safetensors.h"
#include "net_internal.h"

#define NET_ALIGN 64
/* The valid names are listed in a "no layer" message only when they fit in this much text. */
#define NET_NAMES_MAX 240

struct net_layer {
    char *name;
    int is_input;
    int requires_grad; /* input layers: backward computes the gradient of the input */
    int fused;         /* a relu computed by the batch norm it reads (shares its y and dy) */
    int fused_relu;    /* a batch norm with a fused relu: that relu's index, else 0 */
    int overwritten;   /* a later layer writes its output over this one's (in place), which
                          only the layer's own reader saw: that later layer's index, else 0 */
    struct byol_op_desc desc; /* in[] and out filled at build; out = shape for inputs */
    int n_in;
    int in[2]; /* indices of the input layers */

    /* Built state. */
    void *plan;
    void *saved;
    size_t saved_bytes;
    struct byol_tensor y, dy;
    int has_y, has_dy;
    float *weight, *bias, *dweight, *dbias, *running_mean, *running_var;
    int64_t batches_tracked;
    int64_t *shared_tracked; /* byol_net_build_shared: the owner's counter, counted instead */

    /* Run state. */
    int input_set; /* input layers: set_input has been called since build */
    int computed;  /* y is up to date with the current inputs */
    int mark;      /* scratch for ancestor walks */
    int got_grad;  /* dy has received a contribution in the current backward pass */
    double t_fwd, t_bwd; /* profiling: seconds in forward / backward */
};

/* A second name for a layer ("layer1" for "layer1.1.relu_1"). */
struct net_alias {
    char *name;
    int layer;
};

struct byol_net {
    struct byol_backend *be;
    struct net_layer **layers;
    size_t n_layers, cap_layers;
    int built;
    struct net_alias *aliases;
    size_t n_aliases;
    char **children; /* names (layers or aliases) in net.children() order */
    size_t n_children;

    struct byol_param *params; /* params and buffers, in state_dict order */
    size_t n_entries;
    float *flat_params, *flat_grads, *flat_buffers;
    size_t num_params, num_buffers;
    int profiling; /* time every layer's forward and backward */
    int grads_ready; /* the gradient tensors exist (made by the first backward) */
    enum byol_net_memory memory; /* which storage layers may share */
    int fuse;                    /* fuse batch norm + relu pairs at build */
    /* byol_net_build_shared: the network whose flat arrays (and batch-norm counters) this one
     * uses; they are the owner's to free. */
    const struct byol_net *owner;
};

/* A tensor that layers with disjoint lifetimes take turns to use (memory plans). */
struct net_pool_entry {
    struct byol_tensor t;
    int busy;
};

struct net_pool {
    struct net_pool_entry *e;
    size_t n;
};

/* ---- Small helpers. ------------------------------------------------------------------ */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void *alloc_aligned(size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment; never ask for zero bytes. */
    size_t n = (bytes + NET_ALIGN - 1) / NET_ALIGN * NET_ALIGN;
    void *p = aligned_alloc(NET_ALIGN, n ? n : NET_ALIGN);
    if (p)
        memset(p, 0, n ? n : NET_ALIGN);
    return p;
}

/* A batch norm's num_batches_tracked: its own, or in a shared network its owner's. */
static int64_t *layer_tracked(struct net_layer *L)
{
    return L->shared_tracked ? L->shared_tracked : &L->batches_tracked;
}

/* The layer a name or alias stands for, or -1. */
static long find_index(const struct byol_net *net, const char *name)
{
    for (size_t i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i]->name, name) == 0)
            return (long)i;
    for (size_t i = 0; i < net->n_aliases; i++)
        if (strcmp(net->aliases[i].name, name) == 0)
            return net->aliases[i].layer;
    return -1;
}

/* "a, b, c" when the layer names fit in NET_NAMES_MAX characters, else "24 layers". */
static void layer_list(const struct byol_net *net, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < net->n_layers; i++) {
        const char *n = net->layers[i]->name;
        if (len + strlen(n) + 2 > NET_NAMES_MAX || len + strlen(n) + 3 > size) {
            snprintf(buf, size, "%zu layers", net->n_layers);
            return;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", n);
    }
    if (net->n_layers == 0)
        snprintf(buf, size, "no layers");
}

static void child_list(const struct byol_net *net, char *buf, size_t size);

/* BYOL_ERR_NOT_FOUND naming the layer, plus the valid names when they are few enough. */
static byol_status no_layer(const struct byol_net *net, const char *name)
{
    char list[NET_NAMES_MAX + 16], kids[NET_NAMES_MAX + 16];
    layer_list(net, list, sizeof list);
    if (!net->n_children)
        return byol_error(BYOL_ERR_NOT_FOUND, "net: no layer named '%s' (%s)", name, list);
    /* A user looking for a hidden layer starts from the top-level children. */
    child_list(net, kids, sizeof kids);
    return byol_error(BYOL_ERR_NOT_FOUND, "net: no layer named '%s' (%s; children: %s)", name,
                      list, kids);
}

static byol_status lookup(const struct byol_net *net, const char *name, struct net_layer **out)
{
    if (!net || !name)
        return byol_error(BYOL_ERR_INVALID, "net: NULL network or layer name");
    long i = find_index(net, name);
    if (i < 0)
        return no_layer(net, name);
    *out = net->layers[i];
    return BYOL_OK;
}

static byol_status require_built(const struct byol_net *net, const char *what)
{
    if (!net)
        return byol_error(BYOL_ERR_INVALID, "net: %s on a NULL network", what);
    if (!net->built)
        return byol_error(BYOL_ERR_INVALID, "net: %s before byol_net_build", what);
    return BYOL_OK;
}

/* ---- Create / free. ------------------------------------------------------------------- */

byol_status byol_net_create(struct byol_backend *be, struct byol_net **out)
{
    if (!be || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_net_create: NULL backend or out pointer");
    struct byol_net *net = calloc(1, sizeof *net);
    if (!net)
        return byol_error(BYOL_ERR_NOMEM, "byol_net_create: out of memory");
    net->be = be;
    *out = net;
    return BYOL_OK;
}

/* Undo everything byol_net_build did, so a failed build leaves a network that can be freed. */
static void release_built(struct byol_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        if (L->has_y)
            byol_backend_tensor_free(net->be, &L->y);
        if (L->has_dy)
            byol_backend_tensor_free(net->be, &L->dy);
        /* Shared tensors were freed through their owners. */
        memset(&L->y, 0, sizeof L->y);
        memset(&L->dy, 0, sizeof L->dy);
        if (L->fused_relu)
            L->desc.u.bn.fuse_relu = 0;
        L->fused = L->fused_relu = L->overwritten = 0;
        if (L->plan)
            byol_backend_plan_destroy(net->be, L->plan);
        free(L->saved);
        L->has_y = L->has_dy = 0;
        net->grads_ready = 0;
        L->plan = L->saved = NULL;
        L->weight = L->bias = L->dweight = L->dbias = L->running_mean = L->running_var = NULL;
    }
    for (size_t i = 0; i < net->n_entries; i++)
        free((char *)net->params[i].name);
    free(net->params);
    if (!net->owner) {
        free(net->flat_params);
        free(net->flat_grads);
        free(net->flat_buffers);
    }
    for (size_t i = 0; i < net->n_layers; i++)
        net->layers[i]->shared_tracked = NULL;
    net->owner = NULL;
    net->params = NULL;
    net->flat_params = net->flat_grads = net->flat_buffers = NULL;
    net->n_entries = net->num_params = net->num_buffers = 0;
    net->built = 0;
}

void byol_net_free(struct byol_net *net)
{
    if (!net)
        return;
    release_built(net);
    for (size_t i = 0; i < net->n_layers; i++) {
        free(net->layers[i]->name);
        free(net->layers[i]);
    }
    free(net->layers);
    for (size_t i = 0; i < net->n_aliases; i++)
        free(net->aliases[i].name);
    free(net->aliases);
    for (size_t i = 0; i < net->n_children; i++)
        free(net->children[i]);
    free(net->children);
    free(net);
}

/* ---- Building the graph. ------------------------------------------------------------- */

/* Resolve an input name (NULL = the layer added last) to an index. */
static byol_status resolve_input(const struct byol_net *net, const char *layer, const char *in,
                                 int *idx)
{
    if (!in) {
        if (net->n_layers == 0)
            return byol_error(BYOL_ERR_INVALID,
                              "net: layer '%s' has no input and there is no previous layer", layer);
        *idx = (int)net->n_layers - 1;
        return BYOL_OK;
    }
    long i = find_index(net, in);
    if (i < 0) {
        char list[NET_NAMES_MAX + 16];
        layer_list(net, list, sizeof list);
        return byol_error(BYOL_ERR_NOT_FOUND, "net: layer '%s' reads '%s', which is no layer (%s)",
                          layer, in, list);
    }
    *idx = (int)i;
    return BYOL_OK;
}

static byol_status check_new_name(const struct byol_net *net, const char *name)
{
    if (!net || !name || !*name)
        return byol_error(BYOL_ERR_INVALID, "net: NULL network or empty layer name");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "net: cannot add layer '%s' after byol_net_build",
                          name);
    if (find_index(net, name) >= 0)
        return byol_error(BYOL_ERR_DUPLICATE, "net: layer name '%s' is already used", name);
    return BYOL_OK;
}

/* Take ownership of a filled-in layer and append it. */
static byol_status append_layer(struct byol_net *net, struct net_layer *L, const char *name)
{
    if (net->n_layers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 16;
        struct net_layer **grown = realloc(net->layers, cap * sizeof *grown);
        if (!grown)
            return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding '%s'", name);
        net->layers = grown;
        net->cap_layers = cap;
    }
    L->name = dup_str(name);
    if (!L->name)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding '%s'", name);
    net->layers[net->n_layers++] = L;
    return BYOL_OK;
}

byol_status byol_net_add_input(struct byol_net *net, const char *name, struct byol_shape shape)
{
    byol_status st = check_new_name(net, name);
    if (st != BYOL_OK)
        return st;
    if (shape.n <= 0 || shape.c <= 0 || shape.h <= 0 || shape.w <= 0)
        return byol_error(BYOL_ERR_SHAPE, "net: input '%s' has shape (%d,%d,%d,%d)", name, shape.n,
                          shape.c, shape.h, shape.w);
    struct net_layer *L = calloc(1, sizeof *L);
    if (!L)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding '%s'", name);
    L->is_input = 1;
    L->desc.out = shape;
    st = append_layer(net, L, name);
    if (st != BYOL_OK)
        free(L);
    return st;
}

byol_status byol_net_set_fusion(struct byol_net *net, int on)
{
    if (!net)
        return byol_error(BYOL_ERR_INVALID, "net: set_fusion on a NULL network");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "net: set_fusion after byol_net_build");
    net->fuse = on != 0;
    return BYOL_OK;
}

byol_status byol_net_set_memory(struct byol_net *net, enum byol_net_memory mode)
{
    if (!net)
        return byol_error(BYOL_ERR_INVALID, "net: set_memory on a NULL network");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "net: set_memory after byol_net_build");
    if (mode != BYOL_NET_KEEP_ALL && mode != BYOL_NET_FORWARD_ONLY && mode != BYOL_NET_SHARE_GRADS)
        return byol_error(BYOL_ERR_INVALID, "net: set_memory: unknown mode %d", (int)mode);
    net->memory = mode;
    return BYOL_OK;
}

byol_status byol_net_set_bn_sync(struct byol_net *net, const struct byol_allreduce *sync,
                                 int (*want)(const char *layer, void *user), void *user)
{
    if (!net)
        return byol_error(BYOL_ERR_INVALID, "net: set_bn_sync on a NULL network");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "net: set_bn_sync after byol_net_build");
    for (size_t i = 0; i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        if (L->is_input || L->desc.kind != BYOL_OP_BATCHNORM || (want && !want(L->name, user)))
            continue;
        L->desc.bn_sync = sync;
    }
    return BYOL_OK;
}

byol_status byol_net_set_requires_grad(struct byol_net *net, const char *input, int on)
{
    struct net_layer *L = NULL;
    byol_status st = net ? lookup(net, input, &L) : byol_error(BYOL_ERR_INVALID,
                                                                "net: NULL network");
    if (st != BYOL_OK)
        return st;
    if (!L->is_input)
        return byol_error(BYOL_ERR_INVALID, "net: set_requires_grad on '%s', which is not an input",
                          input);
    L->requires_grad = on != 0;
    if (on && !L->dy.data)
        net->grads_ready = 0; /* the next backward makes its gradient tensor */
    return BYOL_OK;
}

byol_status byol_net_add_layer(struct byol_net *net, const char *name,
                               const struct byol_op_desc *desc, const char *const inputs[2])
{
    byol_status st = check_new_name(net, name);
    if (st != BYOL_OK)
        return st;
    if (!desc || desc->kind < BYOL_OP_CONV2D || desc->kind > BYOL_OP_SOFTMAX)
        return byol_error(BYOL_ERR_INVALID, "net: layer '%s' has an unknown op kind %d", name,
                          desc ? (int)desc->kind : -1);
    int n_in = desc->kind == BYOL_OP_ADD ? 2 : 1;
    int idx[2] = {-1, -1};
    for (int k = 0; k < n_in; k++) {
        st = resolve_input(net, name, inputs ? inputs[k] : NULL, &idx[k]);
        if (st != BYOL_OK)
            return st;
    }
    struct net_layer *L = calloc(1, sizeof *L);
    if (!L)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding '%s'", name);
    L->desc = *desc;
    L->n_in = n_in;
    L->in[0] = idx[0];
    L->in[1] = idx[1];
    st = append_layer(net, L, name);
    if (st != BYOL_OK)
        free(L);
    return st;
}

static byol_status add_one_input(struct byol_net *net, const char *name,
                                 const struct byol_op_desc *d, const char *input)
{
    const char *const ins[2] = {input, NULL};
    return byol_net_add_layer(net, name, d, ins);
}

byol_status byol_net_add_conv2d(struct byol_net *net, const char *name, const char *input,
                                int out_channels, int kernel, int stride, int pad, int bias)
{
    struct byol_op_desc d = {.kind = BYOL_OP_CONV2D};
    d.u.conv.out_channels = out_channels;
    d.u.conv.kernel_h = d.u.conv.kernel_w = kernel;
    d.u.conv.stride_h = d.u.conv.stride_w = stride;
    d.u.conv.pad_h = d.u.conv.pad_w = pad;
    d.u.conv.has_bias = bias;
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_batchnorm(struct byol_net *net, const char *name, const char *input,
                                   int affine)
{
    struct byol_op_desc d = {.kind = BYOL_OP_BATCHNORM};
    d.u.bn.eps = 1e-5f;
    d.u.bn.momentum = 0.1f;
    d.u.bn.affine = affine;
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_relu(struct byol_net *net, const char *name, const char *input)
{
    struct byol_op_desc d = {.kind = BYOL_OP_RELU};
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_maxpool(struct byol_net *net, const char *name, const char *input,
                                 int kernel, int stride, int pad)
{
    struct byol_op_desc d = {.kind = BYOL_OP_MAXPOOL};
    d.u.pool.kernel = kernel;
    d.u.pool.stride = stride;
    d.u.pool.pad = pad;
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_avgpool(struct byol_net *net, const char *name, const char *input)
{
    struct byol_op_desc d = {.kind = BYOL_OP_AVGPOOL};
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_linear(struct byol_net *net, const char *name, const char *input,
                                int out_features, int bias)
{
    struct byol_op_desc d = {.kind = BYOL_OP_LINEAR};
    d.u.linear.out_features = out_features;
    d.u.linear.has_bias = bias;
    return add_one_input(net, name, &d, input);
}

byol_status byol_net_add_add(struct byol_net *net, const char *name, const char *a, const char *b)
{
    struct byol_op_desc d = {.kind = BYOL_OP_ADD};
    const char *const ins[2] = {a, b};
    return byol_net_add_layer(net, name, &d, ins);
}

byol_status byol_net_add_flatten(struct byol_net *net, const char *name, const char *input)
{
    struct byol_op_desc d = {.kind = BYOL_OP_FLATTEN};
    return add_one_input(net, name, &d, input);
}

/* ---- Aliases and children (for hidden layers named or indexed as in PyTorch). --------- */

byol_status byol_net_add_alias(struct byol_net *net, const char *alias, const char *layer)
{
    if (!net || !alias || !*alias || !layer)
        return byol_error(BYOL_ERR_INVALID, "net: NULL network, alias or layer name");
    if (find_index(net, alias) >= 0)
        return byol_error(BYOL_ERR_DUPLICATE, "net: alias '%s' is already a name", alias);
    long target = find_index(net, layer);
    if (target < 0)
        return no_layer(net, layer);
    struct net_alias *grown = realloc(net->aliases, (net->n_aliases + 1) * sizeof *grown);
    char *copy = dup_str(alias);
    if (grown)
        net->aliases = grown;
    if (!grown || !copy) {
        free(copy);
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding alias '%s'", alias);
    }
    /* An alias of an alias points straight at the layer. */
    net->aliases[net->n_aliases++] = (struct net_alias){copy, (int)target};
    return BYOL_OK;
}

byol_status byol_net_add_child(struct byol_net *net, const char *name)
{
    if (!net || !name)
        return byol_error(BYOL_ERR_INVALID, "net: NULL network or child name");
    if (find_index(net, name) < 0)
        return no_layer(net, name);
    for (size_t i = 0; i < net->n_children; i++)
        if (strcmp(net->children[i], name) == 0)
            return byol_error(BYOL_ERR_DUPLICATE, "net: '%s' is already a child", name);
    char **grown = realloc(net->children, (net->n_children + 1) * sizeof *grown);
    char *copy = dup_str(name);
    if (grown)
        net->children = grown;
    if (!grown || !copy) {
        free(copy);
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory adding child '%s'", name);
    }
    net->children[net->n_children++] = copy;
    return BYOL_OK;
}

size_t byol_net_child_count(const struct byol_net *net)
{
    return net ? net->n_children : 0;
}

const char *byol_net_child_name(const struct byol_net *net, size_t i)
{
    return net && i < net->n_children ? net->children[i] : NULL;
}

/* "conv1, bn1, ..." for an out-of-range message, cut short with "..." if long. */
static void child_list(const struct byol_net *net, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < net->n_children; i++) {
        const char *n = net->children[i];
        if (len + strlen(n) + 8 > size) {
            snprintf(buf + len, size - len, "%s...", i ? ", " : "");
            return;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", n);
    }
}

byol_status byol_net_child_at(const struct byol_net *net, int index, const char **name)
{
    if (!net || !name)
        return byol_error(BYOL_ERR_INVALID, "net: NULL network or out pointer");
    long n = (long)net->n_children;
    long i = index < 0 ? n + index : index;
    if (i < 0 || i >= n) {
        char list[NET_NAMES_MAX + 16];
        child_list(net, list, sizeof list);
        return byol_error(BYOL_ERR_NOT_FOUND,
                          "net: child index %d is out of range for %ld children (%s)", index, n,
                          n ? list : "none declared");
    }
    *name = net->children[i];
    return BYOL_OK;
}

/* ---- Build: parameter layout. -------------------------------------------------------- */

/* One parameter or buffer of a layer, before the flat arrays exist. */
struct param_spec {
    const char *suffix;
    enum byol_tensor_role role;
    int ndim;
    int dims[4];
};

/* The parameters and buffers of a layer in state_dict order; returns how many. */
static int layer_param_specs(const struct net_layer *L, struct param_spec out[4])
{
    const struct byol_op_desc *d = &L->desc;
    int n = 0;
    if (L->is_input)
        return 0;
    if (d->kind == BYOL_OP_CONV2D) {
        out[n++] = (struct param_spec){
            "weight",
            BYOL_ROLE_PARAM,
            4,
            {d->u.conv.out_channels, d->in[0].c, d->u.conv.kernel_h, d->u.conv.kernel_w}};
        if (d->u.conv.has_bias)
            out[n++] =
                (struct param_spec){"bias", BYOL_ROLE_PARAM, 1, {d->u.conv.out_channels, 0, 0, 0}};
    } else if (d->kind == BYOL_OP_LINEAR) {
        int f = d->in[0].c * d->in[0].h * d->in[0].w;
        out[n++] =
            (struct param_spec){"weight", BYOL_ROLE_PARAM, 2, {d->u.linear.out_features, f, 0, 0}};
        if (d->u.linear.has_bias)
            out[n++] = (struct param_spec){
                "bias", BYOL_ROLE_PARAM, 1, {d->u.linear.out_features, 0, 0, 0}};
    } else if (d->kind == BYOL_OP_BATCHNORM) {
        int c = d->in[0].c;
        if (d->u.bn.affine) {
            out[n++] = (struct param_spec){"weight", BYOL_ROLE_PARAM, 1, {c, 0, 0, 0}};
            out[n++] = (struct param_spec){"bias", BYOL_ROLE_PARAM, 1, {c, 0, 0, 0}};
        }
        out[n++] = (struct param_spec){"running_mean", BYOL_ROLE_BUFFER, 1, {c, 0, 0, 0}};
        out[n++] = (struct param_spec){"running_var", BYOL_ROLE_BUFFER, 1, {c, 0, 0, 0}};
    }
    return n;
}

static size_t spec_numel(const struct param_spec *s)
{
    size_t n = 1;
    for (int k = 0; k < s->ndim; k++)
        n *= (size_t)s->dims[k];
    return n;
}

/* Point a layer's weight / bias / running-stat views at its entries. */
static void bind_layer_views(struct net_layer *L, const struct byol_param *p, int n)
{
    for (int k = 0; k < n; k++) {
        const char *suffix = strrchr(p[k].name, '.') + 1;
        if (strcmp(suffix, "weight") == 0) {
            L->weight = p[k].data;
            L->dweight = p[k].grad;
        } else if (strcmp(suffix, "bias") == 0) {
            L->bias = p[k].data;
            L->dbias = p[k].grad;
        } else if (strcmp(suffix, "running_mean") == 0) {
            L->running_mean = p[k].data;
        } else {
            L->running_var = p[k].data;
        }
    }
}

/* Fill one entry; `offset` is its place in the flat params or buffers. */
static byol_status make_entry(struct byol_net *net, const struct net_layer *L,
                              const struct param_spec *s, size_t *p_off, size_t *b_off)
{
    struct byol_param *p = &net->params[net->n_entries];
    size_t len = strlen(L->name) + strlen(s->suffix) + 2;
    char *name = malloc(len);
    if (!name)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory naming parameters");
    snprintf(name, len, "%s.%s", L->name, s->suffix);
    p->name = name;
    p->role = s->role;
    p->ndim = s->ndim;
    memcpy(p->dims, s->dims, sizeof p->dims);
    p->numel = spec_numel(s);
    if (s->role == BYOL_ROLE_PARAM) {
        p->data = net->flat_params + *p_off;
        p->grad = net->flat_grads + *p_off;
        *p_off += p->numel;
    } else {
        p->data = net->flat_buffers + *b_off;
        p->grad = NULL;
        *b_off += p->numel;
    }
    net->n_entries++;
    return BYOL_OK;
}

/* Count, allocate and carve out the flat parameter, gradient and buffer arrays. */
static byol_status layout_params(struct byol_net *net)
{
    size_t entries = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct param_spec specs[4];
        int n = layer_param_specs(net->layers[i], specs);
        entries += (size_t)n;
        for (int k = 0; k < n; k++) {
            if (specs[k].role == BYOL_ROLE_PARAM)
                net->num_params += spec_numel(&specs[k]);
            else
                net->num_buffers += spec_numel(&specs[k]);
        }
    }
    net->params = calloc(entries ? entries : 1, sizeof *net->params);
    net->flat_params = alloc_aligned(net->num_params * sizeof(float));
    net->flat_grads = alloc_aligned(net->num_params * sizeof(float));
    net->flat_buffers = alloc_aligned(net->num_buffers * sizeof(float));
    if (!net->params || !net->flat_params || !net->flat_grads || !net->flat_buffers)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory for %zu parameters", net->num_params);
    size_t p_off = 0, b_off = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        struct param_spec specs[4];
        int n = layer_param_specs(L, specs);
        size_t first = net->n_entries;
        for (int k = 0; k < n; k++) {
            byol_status st = make_entry(net, L, &specs[k], &p_off, &b_off);
            if (st != BYOL_OK)
                return st;
        }
        bind_layer_views(L, &net->params[first], n);
    }
    return BYOL_OK;
}

/* ---- Build: shapes, plans, activations. ---------------------------------------------- */

static byol_status infer_layer(struct byol_net *net, struct net_layer *L)
{
    if (L->is_input)
        return BYOL_OK;
    for (int k = 0; k < L->n_in; k++)
        L->desc.in[k] = net->layers[L->in[k]]->desc.out;
    byol_status st = byol_op_desc_infer(&L->desc);
    if (st != BYOL_OK)
        return byol_error(st, "net: layer '%s': %s", L->name, byol_last_error());
    return BYOL_OK;
}

static int reader_count(const struct byol_net *net, size_t i)
{
    int n = 0;
    for (size_t j = i + 1; j < net->n_layers; j++)
        for (int k = 0; k < net->layers[j]->n_in; k++)
            n += (size_t)net->layers[j]->in[k] == i;
    return n;
}

/* Mark each relu whose input is a batch norm that nothing else reads: the batch norm computes
 * it (oneDNN's fused kernel), saving a pass over the activation each way and its storage. */
static void plan_fusions(struct byol_net *net)
{
    for (size_t i = 0; net->fuse && i < net->n_layers; i++) {
        struct net_layer *R = net->layers[i];
        if (R->is_input || R->desc.kind != BYOL_OP_RELU)
            continue;
        struct net_layer *B = net->layers[R->in[0]];
        if (B->is_input || B->desc.kind != BYOL_OP_BATCHNORM || reader_count(net, R->in[0]) != 1)
            continue;
        B->desc.u.bn.fuse_relu = 1;
        B->fused_relu = (int)i;
        R->fused = 1;
    }
}

static byol_status alloc_layer(struct byol_net *net, struct net_layer *L)
{
    if (L->is_input || L->fused)
        return BYOL_OK;
    byol_status st = byol_backend_plan_create(net->be, &L->desc, &L->plan, &L->saved_bytes);
    if (st == BYOL_ERR_UNSUPPORTED && L->fused_relu) {
        /* The backend does not fuse: the relu runs on its own. */
        L->desc.u.bn.fuse_relu = 0;
        net->layers[L->fused_relu]->fused = 0;
        L->fused_relu = 0;
        st = byol_backend_plan_create(net->be, &L->desc, &L->plan, &L->saved_bytes);
    }
    if (st != BYOL_OK)
        return byol_error(st, "net: layer '%s': %s", L->name, byol_last_error());
    if (L->saved_bytes) {
        L->saved = alloc_aligned(L->saved_bytes);
        if (!L->saved)
            return byol_error(BYOL_ERR_NOMEM, "net: layer '%s': out of memory", L->name);
    }
    return BYOL_OK;
}

/* The index of the last layer that reads layer i's output, or -1 if none does. */
static long last_reader(const struct byol_net *net, size_t i)
{
    long last = -1;
    for (size_t j = i + 1; j < net->n_layers; j++)
        for (int k = 0; k < net->layers[j]->n_in; k++)
            if ((size_t)net->layers[j]->in[k] == i)
                last = (long)j;
    return last;
}

/* Give layer L a tensor for `t` (its y, or its gradient dy when `grad`): a free pool tensor of
 * the same shape and layout if `share`, else a new one that it owns (and that joins the pool
 * when `share`). */
static byol_status pool_take(struct byol_net *net, struct net_pool *pool, struct net_layer *L,
                             struct byol_tensor *t, int *owns, int share, int grad)
{
    struct byol_tensor fresh = {0};
    byol_status st = grad ? byol_backend_grad_alloc(net->be, &fresh, L->desc.out, L->plan)
                          : byol_backend_tensor_alloc(net->be, &fresh, L->desc.out, L->plan);
    if (st != BYOL_OK)
        return byol_error(st, "net: layer '%s' tensor: %s", L->name, byol_last_error());
    for (size_t k = 0; share && k < pool->n; k++) {
        struct net_pool_entry *e = &pool->e[k];
        if (!e->busy && byol_shape_eq(e->t.shape, fresh.shape) && e->t.layout == fresh.layout) {
            byol_backend_tensor_free(net->be, &fresh); /* the layout was all it was for */
            e->busy = 1;
            *t = e->t;
            *owns = 0;
            return BYOL_OK;
        }
    }
    *t = fresh;
    *owns = 1;
    if (share)
        pool->e[pool->n++] = (struct net_pool_entry){fresh, 1};
    return BYOL_OK;
}

/* Free the pool tensor that `t` is, for layers that come later to take. */
static void pool_give(struct net_pool *pool, const struct byol_tensor *t)
{
    for (size_t k = 0; k < pool->n; k++)
        if (pool->e[k].t.data == t->data)
            pool->e[k].busy = 0;
}

/* 1 when no backward reads layer I's own output: a convolution, a linear layer, an add, or a
 * batch norm without a fused relu read their inputs (or nothing). A relu (its sign), a pooling
 * layer and a softmax may read theirs. */
static int backward_ignores_output(const struct net_layer *I)
{
    switch (I->desc.kind) {
    case BYOL_OP_CONV2D:
    case BYOL_OP_LINEAR:
    case BYOL_OP_ADD: return 1;
    case BYOL_OP_BATCHNORM: return !I->fused_relu;
    default: return 0;
    }
}

/* In a training network that keeps only what backward needs (BYOL_NET_SHARE_GRADS), an add or
 * a relu writes its output over its input's, as PyTorch's `out += identity; relu(out,
 * inplace=True)` does: the add's backward reads nothing and the relu's reads only the output
 * (whose sign is its input's), so the input's values are needed by no one once they are read.
 * That holds when the input is this layer's only reader's, is no network input, and its own
 * backward does not read its output. Returns the input index k whose storage L takes (an add
 * takes x[0], so its inputs are swapped when only x[1] qualifies: addition commutes exactly),
 * or -1. The tensor must have the layout L's plan would give its own output. */
static int inplace_input(struct byol_net *net, struct net_layer *L)
{
    if (net->memory != BYOL_NET_SHARE_GRADS || L->fused ||
        (L->desc.kind != BYOL_OP_ADD && L->desc.kind != BYOL_OP_RELU))
        return -1;
    for (int k = 0; k < L->n_in; k++) {
        struct net_layer *I = net->layers[L->in[k]];
        if (I->is_input || I->overwritten || !I->y.data || !backward_ignores_output(I) ||
            reader_count(net, (size_t)L->in[k]) != 1 || (k == 1 && L->in[0] == L->in[1]))
            continue;
        struct byol_tensor own = {0};
        if (byol_backend_tensor_alloc(net->be, &own, L->desc.out, L->plan) != BYOL_OK) {
            byol_clear_error();
            return -1;
        }
        int same = own.layout == I->y.layout && own.bytes == I->y.bytes &&
                   byol_shape_eq(own.shape, I->y.shape);
        byol_backend_tensor_free(net->be, &own);
        if (same)
            return k;
    }
    return -1;
}

/* Outputs. A forward-only network lets a layer reuse the output storage of layers whose last
 * reader came before it (never an input's, which set_input fills once for many forwards, nor a
 * layer's nobody reads: those are the results); a training network that shares gradients
 * runs adds and relus in place where it can (inplace_input). */
static byol_status alloc_outputs(struct byol_net *net)
{
    int share = net->memory == BYOL_NET_FORWARD_ONLY;
    struct net_pool pool = {calloc(net->n_layers, sizeof *pool.e), 0};
    long *last = calloc(net->n_layers, sizeof *last);
    byol_status st = pool.e && last ? BYOL_OK : byol_error(BYOL_ERR_NOMEM, "net: out of memory");
    for (size_t i = 0; st == BYOL_OK && i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        last[i] = L->is_input ? -1 : last_reader(net, i);
        for (size_t j = 0; j < i; j++)
            if (last[j] >= 0 && (size_t)last[j] < i && net->layers[j]->y.data) {
                pool_give(&pool, &net->layers[j]->y);
                last[j] = -1; /* given back once */
            }
        if (L->fused) { /* the batch norm's output is the relu's, and lives as long */
            L->y = net->layers[L->in[0]]->y;
            last[L->in[0]] = -1;
            continue;
        }
        int k = L->is_input ? -1 : inplace_input(net, L);
        if (k >= 0) {
            if (k == 1) { /* x[0] is the one overwritten: swap the add's inputs */
                int t = L->in[0];
                L->in[0] = L->in[1];
                L->in[1] = t;
            }
            struct net_layer *I = net->layers[L->in[0]];
            L->y = I->y; /* not owned: has_y stays 0 */
            I->overwritten = (int)i;
            continue;
        }
        st = pool_take(net, &pool, L, &L->y, &L->has_y, share && last[i] >= 0, 0);
    }
    free(pool.e);
    free(last);
    return st;
}

/* Gradient tensors are made by the first backward, so a network that only runs forward never
 * holds them; inputs get one only when they require a gradient. With BYOL_NET_SHARE_GRADS a
 * layer's gradient lives from the backward of its last reader (when the first contribution
 * arrives) down to its own backward, and layers whose spans do not meet share storage. */
static byol_status alloc_grads(struct byol_net *net)
{
    int share = net->memory == BYOL_NET_SHARE_GRADS;
    struct net_pool pool = {calloc(net->n_layers, sizeof *pool.e), 0};
    byol_status st = pool.e ? BYOL_OK : byol_error(BYOL_ERR_NOMEM, "net: out of memory");
    for (size_t t = net->n_layers; st == BYOL_OK && t-- > 0;) {
        for (size_t i = 0; st == BYOL_OK && i <= t; i++) {
            struct net_layer *L = net->layers[i];
            /* A fused pair's gradient is the relu's: it arrives from the relu's readers. */
            size_t via = L->fused_relu ? (size_t)L->fused_relu : i;
            long first = last_reader(net, via);
            if (L->fused || (first >= 0 ? (size_t)first : via) != t || L->dy.data ||
                (L->is_input && !L->requires_grad))
                continue;
            st = pool_take(net, &pool, L, &L->dy, &L->has_dy, share && !L->is_input, 1);
            if (L->fused_relu)
                net->layers[L->fused_relu]->dy = L->dy;
        }
        if (!net->layers[t]->is_input && !net->layers[t]->fused && net->layers[t]->dy.data)
            pool_give(&pool, &net->layers[t]->dy); /* its backward is the last to read it */
    }
    free(pool.e);
    if (st == BYOL_OK)
        net->grads_ready = 1;
    return st;
}

static byol_status share_params(struct byol_net *net, const struct byol_net *owner);

/* Shapes, parameters (its own flat arrays, or with `owner` views into the owner's), fusions,
 * plans and activations. */
static byol_status build_all(struct byol_net *net, const struct byol_net *owner)
{
    if (net->n_layers == 0)
        return byol_error(BYOL_ERR_INVALID, "net: build of a network without layers");
    if (owner && net->n_layers != owner->n_layers)
        return byol_error(BYOL_ERR_INVALID,
                          "net: build_shared: %zu layers, the owner has %zu (a shared network "
                          "has the owner's layers in the owner's order)",
                          net->n_layers, owner->n_layers);
    for (size_t i = 0; i < net->n_layers; i++) {
        byol_status st = infer_layer(net, net->layers[i]);
        if (st != BYOL_OK)
            return st;
    }
    byol_status st = owner ? share_params(net, owner) : layout_params(net);
    plan_fusions(net);
    for (size_t i = 0; st == BYOL_OK && i < net->n_layers; i++)
        st = alloc_layer(net, net->layers[i]);
    return st == BYOL_OK ? alloc_outputs(net) : st;
}

/* After build_all: undone on failure, ready to run on success. */
static byol_status build_finish(struct byol_net *net, byol_status st)
{
    if (st != BYOL_OK) {
        release_built(net);
        return st;
    }
    for (size_t i = 0; i < net->n_layers; i++)
        net->layers[i]->input_set = net->layers[i]->computed = 0;
    net->built = 1;
    return BYOL_OK;
}

byol_status byol_net_build(struct byol_net *net, uint64_t seed)
{
    if (!net)
        return byol_error(BYOL_ERR_INVALID, "byol_net_build: NULL network");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "byol_net_build: network is already built");
    byol_status st = build_finish(net, build_all(net, NULL));
    if (st == BYOL_OK)
        byol_net_init_default(net, seed);
    return st;
}

/* ---- Build over another network's parameters. ----------------------------------------- */

/* Whether two layers run the same op apart from their shapes (and a fused relu, which each
 * network plans for itself). */
static int same_op(const struct byol_op_desc *a, const struct byol_op_desc *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case BYOL_OP_CONV2D:
        return a->u.conv.out_channels == b->u.conv.out_channels &&
               a->u.conv.kernel_h == b->u.conv.kernel_h &&
               a->u.conv.kernel_w == b->u.conv.kernel_w &&
               a->u.conv.stride_h == b->u.conv.stride_h &&
               a->u.conv.stride_w == b->u.conv.stride_w && a->u.conv.pad_h == b->u.conv.pad_h &&
               a->u.conv.pad_w == b->u.conv.pad_w && a->u.conv.has_bias == b->u.conv.has_bias;
    case BYOL_OP_BATCHNORM:
        return a->u.bn.eps == b->u.bn.eps && a->u.bn.momentum == b->u.bn.momentum &&
               a->u.bn.affine == b->u.bn.affine;
    case BYOL_OP_MAXPOOL:
        return a->u.pool.kernel == b->u.pool.kernel && a->u.pool.stride == b->u.pool.stride &&
               a->u.pool.pad == b->u.pool.pad;
    case BYOL_OP_LINEAR:
        return a->u.linear.out_features == b->u.linear.out_features &&
               a->u.linear.has_bias == b->u.linear.has_bias;
    case BYOL_OP_SOFTMAX:
        return a->u.softmax.group == b->u.softmax.group &&
               a->u.softmax.temperature == b->u.softmax.temperature;
    default: return 1;
    }
}

/* Layer i of `net` against the owner's: name, inputs, op, and each parameter's shape. */
static byol_status check_shared_layer(const struct byol_net *net, const struct byol_net *owner,
                                      size_t i, size_t first)
{
    const struct net_layer *L = net->layers[i], *O = owner->layers[i];
    int same = strcmp(L->name, O->name) == 0 && L->is_input == O->is_input && L->n_in == O->n_in;
    for (int k = 0; same && k < L->n_in; k++)
        same = L->in[k] == O->in[k];
    /* The owner's build may have swapped an add's inputs (inplace_input). */
    if (!same && L->n_in == 2 && O->n_in == 2)
        same = L->in[0] == O->in[1] && L->in[1] == O->in[0];
    if (!same || (!L->is_input && !same_op(&L->desc, &O->desc)))
        return byol_error(BYOL_ERR_INVALID,
                          "net: build_shared: layer %zu '%s' is not the owner's '%s' (a shared "
                          "network has the owner's layers in the owner's order)",
                          i, L->name, O->name);
    struct param_spec specs[4];
    int n = layer_param_specs(L, specs);
    if (first + (size_t)n > owner->n_entries)
        return byol_error(BYOL_ERR_INTERNAL, "net: build_shared: the owner's '%s' lacks entries",
                          O->name);
    for (int k = 0; k < n; k++) {
        const struct byol_param *p = &owner->params[first + (size_t)k];
        if (p->ndim == specs[k].ndim && !memcmp(p->dims, specs[k].dims, sizeof p->dims))
            continue;
        char here[64], there[64];
        int64_t d[2][4];
        for (int j = 0; j < 4; j++) {
            d[0][j] = specs[k].dims[j];
            d[1][j] = p->dims[j];
        }
        byol_st_format_dims(here, sizeof here, d[0], specs[k].ndim);
        byol_st_format_dims(there, sizeof there, d[1], p->ndim);
        return byol_error(BYOL_ERR_SHAPE,
                          "net: build_shared: %s.%s has shape %s with this network's input, "
                          "the owner's is %s",
                          L->name, specs[k].suffix, here, there);
    }
    return BYOL_OK;
}

/* The owner's parameter entries (names copied, views into the owner's arrays), bound to this
 * network's layers, whose batch norms count in the owner's counters. */
static byol_status share_params(struct byol_net *net, const struct byol_net *owner)
{
    net->params = calloc(owner->n_entries ? owner->n_entries : 1, sizeof *net->params);
    if (!net->params)
        return byol_error(BYOL_ERR_NOMEM, "net: out of memory sharing parameters");
    net->flat_params = owner->flat_params;
    net->flat_grads = owner->flat_grads;
    net->flat_buffers = owner->flat_buffers;
    net->num_params = owner->num_params;
    net->num_buffers = owner->num_buffers;
    for (size_t i = 0, e = 0; i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        struct param_spec specs[4];
        int n = layer_param_specs(L, specs);
        byol_status st = check_shared_layer(net, owner, i, e);
        if (st != BYOL_OK)
            return st;
        for (int k = 0; k < n; k++) {
            net->params[e + (size_t)k] = owner->params[e + (size_t)k];
            net->params[e + (size_t)k].name = dup_str(owner->params[e + (size_t)k].name);
            net->n_entries++;
            if (!net->params[e + (size_t)k].name)
                return byol_error(BYOL_ERR_NOMEM, "net: out of memory sharing parameters");
        }
        bind_layer_views(L, &net->params[e], n);
        L->shared_tracked = layer_tracked(owner->layers[i]);
        e += (size_t)n;
    }
    return BYOL_OK;
}

byol_status byol_net_build_shared(struct byol_net *net, struct byol_net *owner)
{
    if (!net || !owner || net == owner)
        return byol_error(BYOL_ERR_INVALID, "byol_net_build_shared: %s",
                          net && net == owner ? "a network cannot share its own parameters"
                                              : "NULL network");
    if (net->built)
        return byol_error(BYOL_ERR_INVALID, "byol_net_build_shared: network is already built");
    byol_status st = require_built(owner, "build_shared (the owner)");
    if (st != BYOL_OK)
        return st;
    net->owner = owner;
    return build_finish(net, build_all(net, owner));
}

/* ---- Parameters. --------------------------------------------------------------------- */

size_t byol_net_param_count(const struct byol_net *net)
{
    return net ? net->n_entries : 0;
}

const struct byol_param *byol_net_param_at(const struct byol_net *net, size_t i)
{
    return net && i < net->n_entries ? &net->params[i] : NULL;
}

const struct byol_param *byol_net_find_param(const struct byol_net *net, const char *name)
{
    if (!net || !name)
        return NULL;
    for (size_t i = 0; i < net->n_entries; i++)
        if (strcmp(net->params[i].name, name) == 0)
            return &net->params[i];
    return NULL;
}

float *byol_net_params(struct byol_net *net)
{
    return net ? net->flat_params : NULL;
}

float *byol_net_grads(struct byol_net *net)
{
    return net ? net->flat_grads : NULL;
}

float *byol_net_buffers(struct byol_net *net)
{
    return net ? net->flat_buffers : NULL;
}

size_t byol_net_num_params(const struct byol_net *net)
{
    return net ? net->num_params : 0;
}

size_t byol_net_num_buffers(const struct byol_net *net)
{
    return net ? net->num_buffers : 0;
}

int64_t *byol_net_bn_batches_tracked(struct byol_net *net, const char *layer)
{
    if (!net || !layer)
        return NULL;
    long i = find_index(net, layer);
    if (i < 0 || net->layers[i]->is_input || net->layers[i]->desc.kind != BYOL_OP_BATCHNORM)
        return NULL;
    return layer_tracked(net->layers[i]);
}

/* Fan-in of the layer that owns a conv or linear parameter (PyTorch's
 * _calculate_fan_in_and_fan_out on the weight). */
static size_t layer_fan_in(const struct net_layer *L)
{
    const struct byol_op_desc *d = &L->desc;
    if (d->kind == BYOL_OP_CONV2D)
        return (size_t)d->in[0].c * (size_t)d->u.conv.kernel_h * (size_t)d->u.conv.kernel_w;
    return (size_t)d->in[0].c * (size_t)d->in[0].h * (size_t)d->in[0].w;
}

static void fill_uniform(float *x, size_t n, double bound, uint64_t seed, uint64_t index)
{
    struct byol_rng r;
    /* One stream per parameter index, so adding a layer at the end changes no other init. */
    byol_rng_init(&r, seed, byol_rng_stream_id(index, 0x6e6574u /* "net" */, 0, 0));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * byol_rng_uniform_f64(&r) - 1.0) * bound);
}

static void fill_const(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

void byol_net_init_default(struct byol_net *net, uint64_t seed)
{
    if (!net || !net->built)
        return;
    size_t e = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct net_layer *L = net->layers[i];
        struct param_spec specs[4];
        int n = layer_param_specs(L, specs);
        int is_bn = !L->is_input && L->desc.kind == BYOL_OP_BATCHNORM;
        for (int k = 0; k < n; k++, e++) {
            struct byol_param *p = &net->params[e];
            if (!is_bn)
                fill_uniform(p->data, p->numel, 1.0 / sqrt((double)layer_fan_in(L)), seed, e);
            else
                /* weight and running_var start at 1; bias and running_mean at 0. */
                fill_const(p->data, p->numel,
                           strcmp(specs[k].suffix, "weight") == 0 ||
                                   strcmp(specs[k].suffix, "running_var") == 0
                               ? 1.0f
                               : 0.0f);
        }
        *layer_tracked(L) = 0;
        /* Activations of the old parameters must not meet a backward of the new ones. */
        L->computed = 0;
    }
}

/* ---- Running. ------------------------------------------------------------------------ */

byol_status byol_net_set_input(struct byol_net *net, const char *name, const float *nchw)
{
    struct net_layer *L = NULL;
    byol_status st = require_built(net, "set_input");
    if (st == BYOL_OK)
        st = lookup(net, name, &L);
    if (st != BYOL_OK)
        return st;
    if (!L->is_input)
        return byol_error(BYOL_ERR_INVALID, "net: set_input on '%s', which is not an input", name);
    if (!nchw)
        return byol_error(BYOL_ERR_INVALID, "net: set_input '%s' with NULL data", name);
    st = byol_backend_tensor_write(net->be, &L->y, nchw);
    if (st != BYOL_OK)
        return st;
    L->input_set = 1;
    /* Every activation now belongs to an older input: a backward must see a new forward. */
    for (size_t i = 0; i < net->n_layers; i++)
        net->layers[i]->computed = 0;
    return BYOL_OK;
}

/* Set `mark` on `last` and every layer it depends on; others are cleared. Insertion order is
 * topological, so one backward sweep reaches every ancestor. */
static void mark_ancestors(struct byol_net *net, size_t last)
{
    for (size_t i = 0; i < net->n_layers; i++)
        net->layers[i]->mark = i == last;
    for (size_t i = last + 1; i-- > 0;) {
        struct net_layer *L = net->layers[i];
        if (!L->mark)
            continue;
        for (int k = 0; k < L->n_in; k++)
            net->layers[L->in[k]]->mark = 1;
    }
}

/* Resolve `until` (NULL = the last layer) to an index. */
static byol_status target_index(const struct byol_net *net, const char *name, size_t *idx)
{
    if (!name) {
        *idx = net->n_layers - 1;
        return BYOL_OK;
    }
    long i = find_index(net, name);
    if (i < 0)
        return no_layer(net, name);
    *idx = (size_t)i;
    return BYOL_OK;
}

static double net_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill_param_args(const struct net_layer *L, struct byol_op_args *a)
{
    a->weight = L->weight;
    a->bias = L->bias;
    a->running_mean = L->running_mean;
    a->running_var = L->running_var;
    a->saved = L->saved;
}

static byol_status forward_layer(struct byol_net *net, struct net_layer *L, int training)
{
    if (L->fused) { /* its batch norm computed it */
        L->computed = 1;
        return BYOL_OK;
    }
    struct byol_op_args a = {0};
    for (int k = 0; k < L->n_in; k++)
        a.x[k] = &net->layers[L->in[k]]->y;
    a.y = &L->y;
    fill_param_args(L, &a);
    double t0 = net->profiling ? net_clock() : 0.0;
    byol_status st = byol_backend_forward(net->be, L->plan, training, &a);
    if (net->profiling)
        L->t_fwd += net_clock() - t0;
    if (st != BYOL_OK)
        return byol_error(st, "net: forward '%s': %s", L->name, byol_last_error());
    if (training && L->desc.kind == BYOL_OP_BATCHNORM)
        (*layer_tracked(L))++;
    L->computed = 1;
    return BYOL_OK;
}

byol_status byol_net_forward(struct byol_net *net, int training, const char *until)
{
    size_t last = 0;
    byol_status st = require_built(net, "forward");
    if (st == BYOL_OK)
        st = target_index(net, until, &last);
    if (st != BYOL_OK)
        return st;
    mark_ancestors(net, last);
    for (size_t i = 0; i <= last; i++) {
        struct net_layer *L = net->layers[i];
        if (L->mark && L->is_input && !L->input_set)
            return byol_error(BYOL_ERR_INVALID,
                              "net: forward needs input '%s', which was never set", L->name);
    }
    for (size_t i = 0; i <= last; i++) {
        struct net_layer *L = net->layers[i];
        if (!L->mark || L->is_input)
            continue;
        st = forward_layer(net, L, training);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}

/* Propagate L's output gradient to its inputs (and add into its parameter gradients). An
 * input's gradient is overwritten by its first contribution in this pass and added to after,
 * which is how fan-out (a shortcut, or ADD of a layer with itself) sums up. */
static byol_status backward_layer(struct byol_net *net, struct net_layer *L)
{
    if (L->fused) { /* the gradient is in its batch norm's dy already */
        net->layers[L->in[0]]->got_grad = 1;
        return BYOL_OK;
    }
    struct byol_op_args a = {0};
    for (int k = 0; k < L->n_in; k++) {
        struct net_layer *in = net->layers[L->in[k]];
        a.x[k] = &in->y;
        if (in->is_input && !in->requires_grad)
            continue; /* e.g. the stem conv skips its backward-data */
        a.dx[k] = &in->dy;
        a.accumulate[k] = in->got_grad;
        in->got_grad = 1;
    }
    a.y = &L->y;
    a.dy = &L->dy;
    fill_param_args(L, &a);
    a.dweight = L->dweight;
    a.dbias = L->dbias;
    double t0 = net->profiling ? net_clock() : 0.0;
    byol_status st = byol_backend_backward(net->be, L->plan, &a);
    if (net->profiling)
        L->t_bwd += net_clock() - t0;
    if (st != BYOL_OK)
        return byol_error(st, "net: backward '%s': %s", L->name, byol_last_error());
    return BYOL_OK;
}

byol_status byol_net_backward(struct byol_net *net, const char *from, const float *dy)
{
    size_t last = 0;
    byol_status st = require_built(net, "backward");
    if (st == BYOL_OK)
        st = target_index(net, from, &last);
    if (st != BYOL_OK)
        return st;
    if (!dy)
        return byol_error(BYOL_ERR_INVALID, "net: backward from '%s' with NULL dy",
                          net->layers[last]->name);
    if (net->layers[last]->is_input)
        return byol_error(BYOL_ERR_INVALID, "net: backward from input '%s'",
                          net->layers[last]->name);
    if (net->memory == BYOL_NET_FORWARD_ONLY)
        return byol_error(BYOL_ERR_INVALID, "net: backward on a forward-only network");
    st = net->grads_ready ? BYOL_OK : alloc_grads(net);
    if (st != BYOL_OK)
        return st;
    mark_ancestors(net, last);
    for (size_t i = 0; i <= last; i++) {
        struct net_layer *L = net->layers[i];
        if (L->mark && !L->is_input && !L->computed)
            return byol_error(BYOL_ERR_INVALID,
                              "net: backward from '%s' needs a forward of '%s' first",
                              net->layers[last]->name, L->name);
        L->got_grad = 0;
    }
    struct net_layer *top = net->layers[last];
    st = byol_backend_tensor_write(net->be, &top->dy, dy);
    if (st != BYOL_OK)
        return st;
    top->got_grad = 1;
    for (size_t i = last + 1; i-- > 0;) {
        struct net_layer *L = net->layers[i];
        /* Every marked layer reaches `from`, so it has received its gradient by now. */
        if (!L->mark || L->is_input || !L->got_grad)
            continue;
        st = backward_layer(net, L);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}

void byol_net_zero_grad(struct byol_net *net)
{
    if (net && net->flat_grads)
        memset(net->flat_grads, 0, net->num_params * sizeof(float));
}

/* ---- Layers by name. ----------------------------------------------------------------- */

int byol_net_has_layer(const struct byol_net *net, const char *name)
{
    return net && name && find_index(net, name) >= 0;
}

int byol_net_depends_on(struct byol_net *net, const char *until, const char *layer)
{
    if (!net || !until || !layer)
        return 0;
    long last = find_index(net, until), want = find_index(net, layer);
    if (last < 0 || want < 0 || want > last)
        return 0;
    mark_ancestors(net, (size_t)last);
    return net->layers[want]->mark;
}

byol_status byol_net_output_shape(const struct byol_net *net, const char *name,
                                  struct byol_shape *shape)
{
    struct net_layer *L = NULL;
    byol_status st = require_built(net, "output_shape");
    if (st == BYOL_OK)
        st = lookup(net, name, &L);
    if (st != BYOL_OK)
        return st;
    if (!shape)
        return byol_error(BYOL_ERR_INVALID, "net: output_shape with NULL shape");
    *shape = L->desc.out;
    return BYOL_OK;
}

byol_status byol_net_read_output(struct byol_net *net, const char *name, float *dst)
{
    struct net_layer *L = NULL;
    byol_status st = require_built(net, "read_output");
    if (st == BYOL_OK)
        st = lookup(net, name, &L);
    if (st != BYOL_OK)
        return st;
    if (!dst)
        return byol_error(BYOL_ERR_INVALID, "net: read_output '%s' into NULL", name);
    if (L->overwritten)
        return byol_error(BYOL_ERR_INVALID,
                          "net: read_output '%s': '%s' writes its output over it in place (a "
                          "training network keeps only what its backward needs)",
                          name, net->layers[L->overwritten]->name);
    return byol_backend_tensor_read(net->be, &L->y, dst);
}

byol_status byol_net_read_grad(struct byol_net *net, const char *name, float *dst)
{
    struct net_layer *L = NULL;
    byol_status st = require_built(net, "read_grad");
    if (st == BYOL_OK)
        st = lookup(net, name, &L);
    if (st != BYOL_OK)
        return st;
    if (!dst)
        return byol_error(BYOL_ERR_INVALID, "net: read_grad '%s' into NULL", name);
    if (L->is_input && !L->requires_grad)
        return byol_error(BYOL_ERR_INVALID,
                          "net: read_grad: input '%s' has no gradient "
                          "(byol_net_set_requires_grad before the backward)",
                          name);
    if (!L->dy.data)
        return byol_error(BYOL_ERR_INVALID, "net: read_grad '%s' before any backward", name);
    return byol_backend_tensor_read(net->be, &L->dy, dst);
}

size_t byol_net_layer_count(const struct byol_net *net)
{
    return net ? net->n_layers : 0;
}

const char *byol_net_layer_name(const struct byol_net *net, size_t i)
{
    return net && i < net->n_layers ? net->layers[i]->name : NULL;
}

long byol_net_layer_index(const struct byol_net *net, const char *name)
{
    return net && name ? find_index(net, name) : -1;
}

const struct byol_op_desc *byol_net_layer_desc(const struct byol_net *net, size_t i)
{
    if (!net || i >= net->n_layers || net->layers[i]->is_input)
        return NULL;
    return &net->layers[i]->desc;
}

int byol_net_layer_inputs(const struct byol_net *net, size_t i, size_t in[2])
{
    if (!net || i >= net->n_layers)
        return -1;
    const struct net_layer *L = net->layers[i];
    for (int k = 0; k < L->n_in && in; k++)
        in[k] = (size_t)L->in[k];
    return L->is_input ? 0 : L->n_in;
}

/* ---- Cost. --------------------------------------------------------------------------- */

static double layer_macs(const struct net_layer *L)
{
    const struct byol_op_desc *d = &L->desc;
    if (L->is_input)
        return 0.0;
    if (d->kind == BYOL_OP_CONV2D)
        return (double)byol_shape_numel(d->out) * d->in[0].c * d->u.conv.kernel_h *
               d->u.conv.kernel_w;
    if (d->kind == BYOL_OP_LINEAR)
        return (double)byol_shape_numel(d->out) * d->in[0].c * d->in[0].h * d->in[0].w;
    return 0.0;
}

byol_status byol_net_forward_macs(struct byol_net *net, const char *until, double *macs)
{
    size_t last = 0;
    byol_status st = require_built(net, "forward_macs");
    if (st == BYOL_OK)
        st = target_index(net, until, &last);
    if (st != BYOL_OK)
        return st;
    if (!macs)
        return byol_error(BYOL_ERR_INVALID, "net: forward_macs with NULL out pointer");
    mark_ancestors(net, last);
    double total = 0.0;
    for (size_t i = 0; i <= last; i++)
        if (net->layers[i]->mark)
            total += layer_macs(net->layers[i]);
    *macs = total;
    return BYOL_OK;
}

/* ---- Profiling. ---------------------------------------------------------------------- */

void byol_net_set_profiling(struct byol_net *net, int on)
{
    if (!net)
        return;
    net->profiling = on;
    for (size_t i = 0; on && i < net->n_layers; i++)
        net->layers[i]->t_fwd = net->layers[i]->t_bwd = 0.0;
}

byol_status byol_net_layer_time(const struct byol_net *net, size_t i, int *kind,
                                double *forward_s, double *backward_s)
{
    if (!net || i >= net->n_layers)
        return byol_error(BYOL_ERR_INVALID, "net: layer_time: index %zu out of range", i);
    const struct net_layer *L = net->layers[i];
    if (kind)
        *kind = L->is_input ? 0 : (int)L->desc.kind;
    if (forward_s)
        *forward_s = L->t_fwd;
    if (backward_s)
        *backward_s = L->t_bwd;
    return BYOL_OK;
}

void byol_net_layer_describe(const struct byol_net *net, size_t i, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (net && i < net->n_layers && net->layers[i]->plan)
        byol_backend_plan_describe(net->be, net->layers[i]->plan, buf, size);
}
