/* The encoder "layers": a network written in the config as model.encoder.layers, a list of
 * { type = "conv" | "bn" | "relu" | "maxpool" | "avgpool" | "flatten" | "linear" | "residual" }
 * entries, each reading the output of the entry before it. The host registers it itself. */
#include <stdio.h>
#include <string.h>

#include "byol/net.h"
#include "byol/settings.h"
#include "encoder_layers.h"

#define LAYERS_NAME_MAX 128

/* What the entries have built so far: the layer the next one reads, and its output shape
 * (tracked here because the network infers shapes only when it is built, and a residual
 * block needs to know now whether its shortcut changes shape). */
struct layers_state {
    struct byol_net *net;
    const struct byol_settings *entry; /* for messages */
    char prev[LAYERS_NAME_MAX];
    struct byol_shape shape;
};

/* Per type: the keys an entry may have (besides type and name). */
struct layers_type {
    const char *type;
    const char *const keys[6];
    byol_status (*add)(struct layers_state *ls, const char *name);
};

/* A failure about the current entry, with the network's message when there is one. */
static byol_status layers_fail(const struct layers_state *ls, byol_status st, const char *what)
{
    return byol_settings_error(ls->entry, st, "%s", what);
}

/* An integer setting of the entry that must be at least `min`; `def` < min makes it required. */
static byol_status layers_int(const struct layers_state *ls, const char *key, int def, int min,
                              int *out)
{
    int64_t v;
    byol_status st = byol_settings_int(ls->entry, key, def, &v);
    if (st != BYOL_OK)
        return st;
    if (!byol_settings_has(ls->entry, key) && def < min)
        return byol_settings_error(ls->entry, BYOL_ERR_INVALID, "missing '%s'", key);
    if (v < min || v > 1 << 20)
        return byol_settings_error(ls->entry, BYOL_ERR_INVALID, "bad %s %lld (%d to %d)", key,
                                   (long long)v, min, 1 << 20);
    *out = (int)v;
    return BYOL_OK;
}

/* Output size of a kernel x kernel window; fails naming the entry when it does not fit. */
static byol_status layers_window(const struct layers_state *ls, int kernel, int stride, int pad,
                                 struct byol_shape *out)
{
    int oh = (ls->shape.h + 2 * pad - kernel) / stride + 1;
    int ow = (ls->shape.w + 2 * pad - kernel) / stride + 1;
    if (ls->shape.h + 2 * pad < kernel || ls->shape.w + 2 * pad < kernel || oh < 1 || ow < 1)
        return byol_settings_error(ls->entry, BYOL_ERR_SHAPE,
                                   "bad kernel %d: larger than the %dx%d input plus padding %d",
                                   kernel, ls->shape.h, ls->shape.w, pad);
    *out = (struct byol_shape){ls->shape.n, ls->shape.c, oh, ow};
    return BYOL_OK;
}

/* Record that `name` (shape `s`) is now what the next entry reads. */
static byol_status layers_advance(struct layers_state *ls, byol_status st, const char *name,
                                  struct byol_shape s)
{
    if (st != BYOL_OK)
        return layers_fail(ls, st, byol_last_error());
    snprintf(ls->prev, sizeof ls->prev, "%s", name);
    ls->shape = s;
    return BYOL_OK;
}

static byol_status layers_conv(struct layers_state *ls, const char *name)
{
    int out = 0, kernel = 0, stride = 0, pad = 0, bias = 0;
    byol_status st = layers_int(ls, "out", 0, 1, &out);
    if (st == BYOL_OK)
        st = layers_int(ls, "kernel", 0, 1, &kernel);
    if (st == BYOL_OK)
        st = layers_int(ls, "stride", 1, 1, &stride);
    if (st == BYOL_OK)
        st = layers_int(ls, "pad", 0, 0, &pad);
    if (st == BYOL_OK)
        st = byol_settings_bool(ls->entry, "bias", 1, &bias); /* nn.Conv2d's default */
    struct byol_shape s = {0};
    if (st == BYOL_OK)
        st = layers_window(ls, kernel, stride, pad, &s);
    if (st != BYOL_OK)
        return st;
    s.c = out;
    st = byol_net_add_conv2d(ls->net, name, ls->prev, out, kernel, stride, pad, bias);
    return layers_advance(ls, st, name, s);
}

static byol_status layers_bn(struct layers_state *ls, const char *name)
{
    int affine;
    byol_status st = byol_settings_bool(ls->entry, "affine", 1, &affine);
    if (st != BYOL_OK)
        return st;
    st = byol_net_add_batchnorm(ls->net, name, ls->prev, affine);
    return layers_advance(ls, st, name, ls->shape);
}

static byol_status layers_relu(struct layers_state *ls, const char *name)
{
    return layers_advance(ls, byol_net_add_relu(ls->net, name, ls->prev), name, ls->shape);
}

static byol_status layers_maxpool(struct layers_state *ls, const char *name)
{
    int kernel = 0, stride = 0, pad = 0;
    byol_status st = layers_int(ls, "kernel", 0, 1, &kernel);
    if (st == BYOL_OK) /* nn.MaxPool2d: stride defaults to the kernel size */
        st = layers_int(ls, "stride", kernel, 1, &stride);
    if (st == BYOL_OK)
        st = layers_int(ls, "pad", 0, 0, &pad);
    if (st == BYOL_OK && 2 * pad > kernel)
        st = byol_settings_error(ls->entry, BYOL_ERR_INVALID,
                                 "bad pad %d: at most half the kernel (%d)", pad, kernel);
    struct byol_shape s = {0};
    if (st == BYOL_OK)
        st = layers_window(ls, kernel, stride, pad, &s);
    if (st != BYOL_OK)
        return st;
    st = byol_net_add_maxpool(ls->net, name, ls->prev, kernel, stride, pad);
    return layers_advance(ls, st, name, s);
}

static byol_status layers_avgpool(struct layers_state *ls, const char *name)
{
    struct byol_shape s = {ls->shape.n, ls->shape.c, 1, 1};
    return layers_advance(ls, byol_net_add_avgpool(ls->net, name, ls->prev), name, s);
}

static byol_status layers_flatten(struct layers_state *ls, const char *name)
{
    struct byol_shape s = {ls->shape.n, ls->shape.c * ls->shape.h * ls->shape.w, 1, 1};
    return layers_advance(ls, byol_net_add_flatten(ls->net, name, ls->prev), name, s);
}

/* Like flatten + nn.Linear: a (N,C,H,W) input is read as N rows of C*H*W features. */
static byol_status layers_linear(struct layers_state *ls, const char *name)
{
    int out = 0, bias = 0;
    byol_status st = layers_int(ls, "out", 0, 1, &out);
    if (st == BYOL_OK)
        st = byol_settings_bool(ls->entry, "bias", 1, &bias);
    if (st != BYOL_OK)
        return st;
    struct byol_shape s = {ls->shape.n, out, 1, 1};
    st = byol_net_add_linear(ls->net, name, ls->prev, out, bias);
    return layers_advance(ls, st, name, s);
}

/* "<block>.<part>" into buf. */
static const char *layers_sub(char *buf, size_t size, const char *block, const char *part)
{
    snprintf(buf, size, "%s.%s", block, part);
    return buf;
}

/* The main path of a BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn. */
static byol_status layers_block_main(struct byol_net *net, const char *b, const char *in, int out,
                                     int stride)
{
    char n[LAYERS_NAME_MAX + 16];
    byol_status st =
        byol_net_add_conv2d(net, layers_sub(n, sizeof n, b, "conv1"), in, out, 3, stride, 1, 0);
    if (st == BYOL_OK)
        st = byol_net_add_batchnorm(net, layers_sub(n, sizeof n, b, "bn1"), NULL, 1);
    if (st == BYOL_OK)
        st = byol_net_add_relu(net, layers_sub(n, sizeof n, b, "relu"), NULL);
    if (st == BYOL_OK)
        st = byol_net_add_conv2d(net, layers_sub(n, sizeof n, b, "conv2"), NULL, out, 3, 1, 1, 0);
    if (st == BYOL_OK)
        st = byol_net_add_batchnorm(net, layers_sub(n, sizeof n, b, "bn2"), NULL, 1);
    return st;
}

/* torchvision's BasicBlock; the shortcut is a 1x1 conv + bn (downsample.0/.1) when the shape
 * changes. The block's name is an alias of its final relu. */
static byol_status layers_residual(struct layers_state *ls, const char *name)
{
    int out = 0, stride = 0;
    byol_status st = layers_int(ls, "out", 0, 1, &out);
    if (st == BYOL_OK)
        st = layers_int(ls, "stride", 1, 1, &stride);
    struct byol_shape s = {0};
    if (st == BYOL_OK)
        st = layers_window(ls, 3, stride, 1, &s);
    if (st != BYOL_OK)
        return st;
    s.c = out;
    char bn2[LAYERS_NAME_MAX + 16], sc[LAYERS_NAME_MAX + 16], n[LAYERS_NAME_MAX + 16];
    const char *shortcut = ls->prev;
    st = layers_block_main(ls->net, name, ls->prev, out, stride);
    if (st == BYOL_OK && (stride != 1 || ls->shape.c != out)) {
        st = byol_net_add_conv2d(ls->net, layers_sub(n, sizeof n, name, "downsample.0"), ls->prev,
                                 out, 1, stride, 0, 0);
        if (st == BYOL_OK)
            st = byol_net_add_batchnorm(ls->net, layers_sub(sc, sizeof sc, name, "downsample.1"),
                                        NULL, 1);
        shortcut = sc;
    }
    if (st == BYOL_OK)
        st = byol_net_add_add(ls->net, layers_sub(n, sizeof n, name, "add"),
                              layers_sub(bn2, sizeof bn2, name, "bn2"), shortcut);
    if (st == BYOL_OK)
        st = byol_net_add_relu(ls->net, layers_sub(n, sizeof n, name, "relu_1"), NULL);
    if (st == BYOL_OK)
        st = byol_net_add_alias(ls->net, name, n);
    return layers_advance(ls, st, name, s);
}

static const struct layers_type layers_types[] = {
    {"conv", {"out", "kernel", "stride", "pad", "bias", NULL}, layers_conv},
    {"bn", {"affine", NULL}, layers_bn},
    {"relu", {NULL}, layers_relu},
    {"maxpool", {"kernel", "stride", "pad", NULL}, layers_maxpool},
    {"avgpool", {NULL}, layers_avgpool},
    {"flatten", {NULL}, layers_flatten},
    {"linear", {"out", "bias", NULL}, layers_linear},
    {"residual", {"out", "stride", NULL}, layers_residual},
};
#define LAYERS_NTYPES (sizeof layers_types / sizeof layers_types[0])

static byol_status layers_unknown_type(const struct layers_state *ls, const char *type)
{
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < LAYERS_NTYPES; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 layers_types[i].type);
    return byol_settings_error(ls->entry, BYOL_ERR_INVALID, "unknown layer type '%s' (known: %s)",
                               type, known);
}

/* The entry's type, and its keys checked against that type's. */
static byol_status layers_entry_type(const struct layers_state *ls, const struct layers_type **t)
{
    const char *type;
    byol_status st = byol_settings_string(ls->entry, "type", NULL, &type);
    if (st != BYOL_OK)
        return st;
    if (!type)
        return byol_settings_error(ls->entry, BYOL_ERR_INVALID, "missing 'type'");
    for (size_t i = 0; i < LAYERS_NTYPES; i++) {
        if (strcmp(layers_types[i].type, type) != 0)
            continue;
        const char *allowed[8] = {"type", "name"};
        for (int k = 0; layers_types[i].keys[k]; k++)
            allowed[2 + k] = layers_types[i].keys[k];
        *t = &layers_types[i];
        return byol_settings_check_keys(ls->entry, allowed);
    }
    return layers_unknown_type(ls, type);
}

/* The entry's name, or "<type><index>"; unique among the network's layers and aliases. */
static byol_status layers_entry_name(const struct layers_state *ls, const struct layers_type *t,
                                     int index, char *buf, size_t size)
{
    const char *name;
    byol_status st = byol_settings_string(ls->entry, "name", NULL, &name);
    if (st != BYOL_OK)
        return st;
    if (name && (!name[0] || strlen(name) >= LAYERS_NAME_MAX - 16))
        return byol_settings_error(ls->entry, BYOL_ERR_INVALID, "bad name '%s'", name);
    if (name)
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%s%d", t->type, index);
    if (byol_net_has_layer(ls->net, buf))
        return byol_settings_error(ls->entry, BYOL_ERR_DUPLICATE, "duplicate name '%s'", buf);
    return BYOL_OK;
}

static byol_status layers_entry(struct layers_state *ls, int index)
{
    const struct layers_type *t = NULL;
    char name[LAYERS_NAME_MAX];
    byol_status st = layers_entry_type(ls, &t); /* also fails when the entry is no group */
    if (st == BYOL_OK)
        st = layers_entry_name(ls, t, index, name, sizeof name);
    if (st == BYOL_OK)
        st = t->add(ls, name);
    if (st == BYOL_OK)
        st = byol_net_add_child(ls->net, name);
    return st;
}

/* The list model.encoder.layers, checked to be a non-empty list. */
static byol_status layers_list(const struct byol_settings *settings,
                               const struct byol_settings **list)
{
    *list = byol_settings_child(settings, "layers");
    if (!*list)
        return byol_settings_error(settings, BYOL_ERR_INVALID,
                                   "encoder 'layers' needs a list 'layers = ( { type = ... } )'");
    const struct byol_settings *first = byol_settings_child(*list, "[0]");
    const char *path = first ? byol_settings_path(first) : "";
    size_t n = strlen(path);
    if (!first || n < 3 || strcmp(path + n - 3, "[0]") != 0)
        return byol_settings_error(*list, BYOL_ERR_INVALID,
                                   "expected a non-empty list of layer groups");
    return BYOL_OK;
}

static byol_status layers_check_group(const struct byol_settings *settings, struct byol_shape in)
{
    static const char *const allowed[] = {"name", "weights", "in_channels", "layers", NULL};
    int64_t in_channels;
    byol_status st = byol_settings_check_keys(settings, allowed);
    if (st == BYOL_OK)
        st = byol_settings_int(settings, "in_channels", in.c, &in_channels);
    if (st == BYOL_OK && in_channels != in.c)
        st = byol_settings_error(byol_settings_child(settings, "in_channels"), BYOL_ERR_INVALID,
                                 "%lld, but the input has %d channels", (long long)in_channels,
                                 in.c);
    return st;
}

static byol_status layers_build(const struct byol_host_api *host,
                                const struct byol_settings *settings, struct byol_net *net,
                                const char *input, struct byol_shape in, const char **output)
{
    (void)host; /* part of the core: it calls the net functions directly */
    const struct byol_settings *list;
    byol_status st = layers_check_group(settings, in);
    if (st == BYOL_OK)
        st = layers_list(settings, &list);
    if (st != BYOL_OK)
        return st;
    struct layers_state ls = {.net = net, .shape = in};
    snprintf(ls.prev, sizeof ls.prev, "%s", input);
    for (int i = 0;; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "[%d]", i);
        ls.entry = byol_settings_child(list, idx);
        if (!ls.entry)
            break;
        st = layers_entry(&ls, i);
        if (st != BYOL_OK)
            return st;
    }
    /* The network's own copy of the last layer's name lives as long as the network. */
    *output = byol_net_layer_name(net, byol_net_layer_count(net) - 1);
    return BYOL_OK;
}

static const struct byol_encoder_ops layers_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_encoder_ops),
    .name = "layers",
    .version = "0.1.0",
    .description = "a network written as a list of layers in model.encoder.layers",
    .build = layers_build,
    .init = NULL, /* PyTorch's default initialisation of each layer type */
};

const struct byol_encoder_ops *byol_encoder_layers_ops(void)
{
    return &layers_ops;
}
