/* encoder-resnet: torchvision's ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, stride on
 * the 3x3 conv as in torchvision's "v1.5"), built through the host table with torchvision's
 * module names, so parameter names equal torchvision's state_dict keys.
 *
 * Settings (model.encoder): in_channels (3), stem = "imagenet" (7x7/2 conv + 3x3/2 max pool)
 * or "cifar" (3x3/1 conv, no max pool), zero_init_residual (false), num_classes (1000).
 *
 * Graph names: each block's relus are "<block>.relu", "<block>.relu_1" (and "relu_2" in a
 * Bottleneck; torchvision reuses one module), its sum "<block>.add"; "layerS.B" and "layerS"
 * are aliases of the block's and the stage's output. "flatten" (torch.flatten in forward) sits
 * between avgpool and fc but is no child. The children, as net.children() lists them: conv1,
 * bn1, relu, maxpool, layer1..layer4, avgpool, fc. With the cifar stem there is no maxpool
 * child (9 children; a torch model with nn.Identity in its place lists 10), so positive
 * indices from 3 on differ from such a model, while -2 is still avgpool and -1 fc. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "byol/encoder.h"

#define RESNET_VERSION "0.1.0"
#define RESNET_NAME_MAX 96

struct resnet_arch {
    const char *name;
    int bottleneck; /* 0: BasicBlock (expansion 1), 1: Bottleneck (expansion 4) */
    int blocks[4];
};

static const struct resnet_arch resnet18_arch = {"resnet18", 0, {2, 2, 2, 2}};
static const struct resnet_arch resnet34_arch = {"resnet34", 0, {3, 4, 6, 3}};
static const struct resnet_arch resnet50_arch = {"resnet50", 1, {3, 4, 6, 3}};

/* model.encoder: `name` and `weights` are read by the core. */
static const char *const resnet_keys[] = {
    "name", "weights", "in_channels", "stem", "zero_init_residual", "num_classes", NULL};

struct resnet_settings {
    int cifar_stem;
    int zero_init_residual;
    int num_classes;
};

/* What building needs at hand: the host, the network, and the planes flowing into a block. */
struct resnet_ctx {
    const struct byol_host_api *host;
    struct byol_net *net;
    int inplanes;
};

/* ---- settings ------------------------------------------------------------------------- */

static byol_status resnet_read_settings(const struct byol_host_api *host,
                                        const struct byol_settings *s, int in_channels,
                                        struct resnet_settings *out)
{
    int64_t ch, classes;
    const char *stem;
    byol_status st = host->setting_check_keys(s, resnet_keys);
    if (st == BYOL_OK)
        st = host->setting_int(s, "in_channels", in_channels, &ch);
    if (st == BYOL_OK && ch != in_channels)
        st = host->error(BYOL_ERR_INVALID,
                         "encoder resnet: in_channels = %lld, but the input has %d channels",
                         (long long)ch, in_channels);
    if (st == BYOL_OK)
        st = host->setting_string(s, "stem", "imagenet", &stem);
    if (st == BYOL_OK && strcmp(stem, "imagenet") != 0 && strcmp(stem, "cifar") != 0)
        st = host->error(BYOL_ERR_INVALID,
                         "encoder resnet: stem = \"%s\": expected \"imagenet\" or \"cifar\"", stem);
    if (st == BYOL_OK)
        st = host->setting_bool(s, "zero_init_residual", 0, &out->zero_init_residual);
    if (st == BYOL_OK)
        st = host->setting_int(s, "num_classes", 1000, &classes);
    if (st == BYOL_OK && (classes < 1 || classes > (1 << 24)))
        st = host->error(BYOL_ERR_INVALID, "encoder resnet: num_classes = %lld: must be >= 1",
                         (long long)classes);
    if (st != BYOL_OK)
        return st;
    out->cifar_stem = strcmp(stem, "cifar") == 0;
    out->num_classes = (int)classes;
    return BYOL_OK;
}

/* ---- layers, through the host table ----------------------------------------------------- */

static byol_status resnet_add(struct resnet_ctx *c, const char *name, const struct byol_op_desc *d,
                              const char *in0, const char *in1)
{
    const char *const ins[2] = {in0, in1};
    return c->host->net_add_layer(c->net, name, d, ins);
}

static byol_status resnet_conv(struct resnet_ctx *c, const char *name, const char *in, int out,
                               int kernel, int stride, int pad)
{
    struct byol_op_desc d = {.kind = BYOL_OP_CONV2D};
    d.u.conv.out_channels = out;
    d.u.conv.kernel_h = d.u.conv.kernel_w = kernel;
    d.u.conv.stride_h = d.u.conv.stride_w = stride;
    d.u.conv.pad_h = d.u.conv.pad_w = pad;
    d.u.conv.has_bias = 0; /* torchvision's convs have none: batch norm follows each */
    return resnet_add(c, name, &d, in, NULL);
}

/* nn.BatchNorm2d's defaults. */
static byol_status resnet_bn(struct resnet_ctx *c, const char *name)
{
    struct byol_op_desc d = {.kind = BYOL_OP_BATCHNORM};
    d.u.bn.eps = 1e-5f;
    d.u.bn.momentum = 0.1f;
    d.u.bn.affine = 1;
    return resnet_add(c, name, &d, NULL, NULL);
}

static byol_status resnet_simple(struct resnet_ctx *c, const char *name, enum byol_op_kind kind,
                                 const char *in)
{
    struct byol_op_desc d = {.kind = kind};
    return resnet_add(c, name, &d, in, NULL);
}

/* "<prefix>.<part>"; our names are far shorter than the buffer. */
static const char *resnet_name(char *buf, const char *prefix, const char *part)
{
    int n = snprintf(buf, RESNET_NAME_MAX, "%s.%s", prefix, part);
    return n < RESNET_NAME_MAX ? buf : "(name too long)";
}

/* ---- blocks ---------------------------------------------------------------------------- */

/* BasicBlock's main path: conv3x3(stride)-bn1-relu-conv3x3-bn2. */
static byol_status resnet_basic_main(struct resnet_ctx *c, const char *p, const char *in,
                                     int planes, int stride)
{
    char n[RESNET_NAME_MAX];
    byol_status st = resnet_conv(c, resnet_name(n, p, "conv1"), in, planes, 3, stride, 1);
    if (st == BYOL_OK)
        st = resnet_bn(c, resnet_name(n, p, "bn1"));
    if (st == BYOL_OK)
        st = resnet_simple(c, resnet_name(n, p, "relu"), BYOL_OP_RELU, NULL);
    if (st == BYOL_OK)
        st = resnet_conv(c, resnet_name(n, p, "conv2"), NULL, planes, 3, 1, 1);
    if (st == BYOL_OK)
        st = resnet_bn(c, resnet_name(n, p, "bn2"));
    return st;
}

/* Bottleneck's main path: conv1x1-bn1-relu-conv3x3(stride)-bn2-relu_1-conv1x1(4x)-bn3. */
static byol_status resnet_bottleneck_main(struct resnet_ctx *c, const char *p, const char *in,
                                          int planes, int stride)
{
    char n[RESNET_NAME_MAX];
    byol_status st = resnet_conv(c, resnet_name(n, p, "conv1"), in, planes, 1, 1, 0);
    if (st == BYOL_OK)
        st = resnet_bn(c, resnet_name(n, p, "bn1"));
    if (st == BYOL_OK)
        st = resnet_simple(c, resnet_name(n, p, "relu"), BYOL_OP_RELU, NULL);
    if (st == BYOL_OK)
        st = resnet_conv(c, resnet_name(n, p, "conv2"), NULL, planes, 3, stride, 1);
    if (st == BYOL_OK)
        st = resnet_bn(c, resnet_name(n, p, "bn2"));
    if (st == BYOL_OK)
        st = resnet_simple(c, resnet_name(n, p, "relu_1"), BYOL_OP_RELU, NULL);
    if (st == BYOL_OK)
        st = resnet_conv(c, resnet_name(n, p, "conv3"), NULL, 4 * planes, 1, 1, 0);
    if (st == BYOL_OK)
        st = resnet_bn(c, resnet_name(n, p, "bn3"));
    return st;
}

/* One block "layerS.B" reading `in`: main path, shortcut (downsample.0/.1 when the shape
 * changes, registered after the main path as torchvision does), add, relu. The block's name
 * is an alias of its last relu, which torchvision calls `relu` again and we name relu_1 or
 * relu_2 so that every node has its own name. */
static byol_status resnet_block(struct resnet_ctx *c, const struct resnet_arch *a, const char *p,
                                const char *in, int planes, int stride)
{
    int out = a->bottleneck ? 4 * planes : planes;
    char n[RESNET_NAME_MAX], last_bn[RESNET_NAME_MAX], sc[RESNET_NAME_MAX];
    byol_status st = a->bottleneck ? resnet_bottleneck_main(c, p, in, planes, stride)
                                   : resnet_basic_main(c, p, in, planes, stride);
    resnet_name(last_bn, p, a->bottleneck ? "bn3" : "bn2");
    snprintf(sc, sizeof sc, "%s", in);
    if (st == BYOL_OK && (stride != 1 || c->inplanes != out)) {
        st = resnet_conv(c, resnet_name(n, p, "downsample.0"), in, out, 1, stride, 0);
        if (st == BYOL_OK)
            st = resnet_bn(c, resnet_name(sc, p, "downsample.1"));
    }
    if (st == BYOL_OK) {
        struct byol_op_desc add = {.kind = BYOL_OP_ADD};
        st = resnet_add(c, resnet_name(n, p, "add"), &add, last_bn, sc);
    }
    if (st == BYOL_OK)
        st = resnet_simple(c, resnet_name(n, p, a->bottleneck ? "relu_2" : "relu_1"), BYOL_OP_RELU,
                           NULL);
    if (st == BYOL_OK)
        st = c->host->net_add_alias(c->net, p, n);
    c->inplanes = out;
    return st;
}

/* Stage "layerS" (S = 1..4): its blocks, then the stage name as an alias of the last one. */
static byol_status resnet_stage(struct resnet_ctx *c, const struct resnet_arch *a, int stage,
                                const char *in)
{
    char stage_name[16], block[32], prev[32];
    int planes = 64 << (stage - 1);
    snprintf(stage_name, sizeof stage_name, "layer%d", stage);
    snprintf(prev, sizeof prev, "%s", in);
    byol_status st = BYOL_OK;
    for (int b = 0; st == BYOL_OK && b < a->blocks[stage - 1]; b++) {
        snprintf(block, sizeof block, "%s.%d", stage_name, b);
        st = resnet_block(c, a, block, prev, planes, b == 0 && stage > 1 ? 2 : 1);
        snprintf(prev, sizeof prev, "%s", block);
    }
    if (st == BYOL_OK)
        st = c->host->net_add_alias(c->net, stage_name, prev);
    if (st == BYOL_OK)
        st = c->host->net_add_child(c->net, stage_name);
    return st;
}

/* ---- the network ------------------------------------------------------------------------ */

/* conv1, bn1, relu and (imagenet) maxpool, each a top-level child. */
static byol_status resnet_stem(struct resnet_ctx *c, const struct resnet_settings *s,
                               const char *input)
{
    byol_status st = s->cifar_stem ? resnet_conv(c, "conv1", input, 64, 3, 1, 1)
                                   : resnet_conv(c, "conv1", input, 64, 7, 2, 3);
    if (st == BYOL_OK)
        st = resnet_bn(c, "bn1");
    if (st == BYOL_OK)
        st = resnet_simple(c, "relu", BYOL_OP_RELU, NULL);
    if (st == BYOL_OK && !s->cifar_stem) {
        struct byol_op_desc d = {.kind = BYOL_OP_MAXPOOL};
        d.u.pool.kernel = 3;
        d.u.pool.stride = 2;
        d.u.pool.pad = 1;
        st = resnet_add(c, "maxpool", &d, NULL, NULL);
    }
    static const char *const kids[] = {"conv1", "bn1", "relu", "maxpool"};
    for (int i = 0; st == BYOL_OK && i < (s->cifar_stem ? 3 : 4); i++)
        st = c->host->net_add_child(c->net, kids[i]);
    return st;
}

/* avgpool, then torch.flatten (a layer but not a child: forward() calls it), then fc. */
static byol_status resnet_head(struct resnet_ctx *c, const struct resnet_settings *s)
{
    byol_status st = resnet_simple(c, "avgpool", BYOL_OP_AVGPOOL, "layer4");
    if (st == BYOL_OK)
        st = resnet_simple(c, "flatten", BYOL_OP_FLATTEN, NULL);
    if (st == BYOL_OK) {
        struct byol_op_desc d = {.kind = BYOL_OP_LINEAR};
        d.u.linear.out_features = s->num_classes;
        d.u.linear.has_bias = 1;
        st = resnet_add(c, "fc", &d, NULL, NULL);
    }
    if (st == BYOL_OK)
        st = c->host->net_add_child(c->net, "avgpool");
    if (st == BYOL_OK)
        st = c->host->net_add_child(c->net, "fc");
    return st;
}

static byol_status resnet_build(const struct resnet_arch *a, const struct byol_host_api *host,
                                const struct byol_settings *settings, struct byol_net *net,
                                const char *input, struct byol_shape in, const char **output)
{
    struct resnet_settings s;
    byol_status st = resnet_read_settings(host, settings, in.c, &s);
    if (st != BYOL_OK)
        return st;
    struct resnet_ctx c = {.host = host, .net = net, .inplanes = 64};
    char prev[16];
    snprintf(prev, sizeof prev, "%s", s.cifar_stem ? "relu" : "maxpool");
    st = resnet_stem(&c, &s, input);
    for (int stage = 1; st == BYOL_OK && stage <= 4; stage++) {
        st = resnet_stage(&c, a, stage, prev);
        snprintf(prev, sizeof prev, "layer%d", stage);
    }
    if (st == BYOL_OK)
        st = resnet_head(&c, &s);
    if (st == BYOL_OK)
        *output = "fc";
    return st;
}

/* ---- initialisation --------------------------------------------------------------------- */

static int resnet_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int resnet_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* FNV-1a: each parameter draws from its own stream, keyed by its name, so its values do not
 * depend on what else the network holds. */
static uint64_t resnet_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static void resnet_fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* The last batch norm of a block ("layer2.1.bn2.weight" in a BasicBlock). */
static int resnet_is_last_bn(const struct resnet_arch *a, const char *name)
{
    return resnet_starts(name, "layer") &&
           resnet_ends(name, a->bottleneck ? ".bn3.weight" : ".bn2.weight");
}

/* torchvision's ResNet.__init__: convs kaiming_normal_(mode="fan_out", nonlinearity="relu"),
 * batch norm weight 1 and bias 0 (0 for the last one of each block with zero_init_residual),
 * fc as nn.Linear's default, U(+-1/sqrt(fan_in)) for weight and bias. */
static void resnet_init_param(const struct resnet_arch *a, const struct byol_host_api *host,
                              struct byol_net *net, const struct byol_param *p, int zero_res,
                              uint64_t seed)
{
    struct byol_rng r;
    host->rng_init(&r, seed, resnet_hash(p->name));
    if (resnet_ends(p->name, ".running_mean") || resnet_ends(p->name, ".running_var")) {
        resnet_fill(p->data, p->numel, resnet_ends(p->name, "var") ? 1.0f : 0.0f);
    } else if (p->ndim == 4) {
        double std = sqrt(2.0 / ((double)p->dims[0] * p->dims[2] * p->dims[3]));
        for (size_t i = 0; i < p->numel; i++)
            p->data[i] = (float)(std * host->rng_normal(&r));
    } else if (p->ndim == 2 || strcmp(p->name, "fc.bias") == 0) {
        const struct byol_param *w = host->net_find_param(net, "fc.weight");
        double bound = 1.0 / sqrt((double)(w ? w->dims[1] : 1));
        for (size_t i = 0; i < p->numel; i++)
            p->data[i] = (float)((2.0 * host->rng_uniform(&r) - 1.0) * bound);
    } else {
        int one = resnet_ends(p->name, ".weight") && !(zero_res && resnet_is_last_bn(a, p->name));
        resnet_fill(p->data, p->numel, one ? 1.0f : 0.0f);
    }
}

static byol_status resnet_init(const struct resnet_arch *a, const struct byol_host_api *host,
                               const struct byol_settings *settings, struct byol_net *net,
                               uint64_t seed)
{
    int zero_res;
    byol_status st = host->setting_bool(settings, "zero_init_residual", 0, &zero_res);
    if (st != BYOL_OK)
        return st;
    for (size_t i = 0; i < host->net_param_count(net); i++) {
        const struct byol_param *p = host->net_param_at(net, i);
        /* Only our own layers: the learner's projector and predictor share the network. */
        if (resnet_starts(p->name, "conv1.") || resnet_starts(p->name, "bn1.") ||
            resnet_starts(p->name, "layer") || resnet_starts(p->name, "fc."))
            resnet_init_param(a, host, net, p, zero_res, seed);
    }
    return BYOL_OK;
}

/* ---- registration ----------------------------------------------------------------------- */

#define RESNET_OPS(arch, text)                                                                     \
    static byol_status arch##_build(const struct byol_host_api *host,                              \
                                    const struct byol_settings *settings, struct byol_net *net,    \
                                    const char *input, struct byol_shape in, const char **output)  \
    {                                                                                              \
        return resnet_build(&arch##_arch, host, settings, net, input, in, output);                 \
    }                                                                                              \
    static byol_status arch##_init(const struct byol_host_api *host,                               \
                                   const struct byol_settings *settings, struct byol_net *net,     \
                                   uint64_t seed)                                                  \
    {                                                                                              \
        return resnet_init(&arch##_arch, host, settings, net, seed);                               \
    }                                                                                              \
    static const struct byol_encoder_ops arch##_ops = {                                            \
        .abi_version = BYOL_ABI_VERSION,                                                           \
        .struct_size = sizeof(struct byol_encoder_ops),                                            \
        .name = #arch,                                                                             \
        .version = RESNET_VERSION,                                                                 \
        .description = text,                                                                       \
        .build = arch##_build,                                                                     \
        .init = arch##_init,                                                                       \
    };

RESNET_OPS(resnet18, "torchvision ResNet-18 (BasicBlock, [2, 2, 2, 2])")
RESNET_OPS(resnet34, "torchvision ResNet-34 (BasicBlock, [3, 4, 6, 3])")
RESNET_OPS(resnet50, "torchvision ResNet-50 v1.5 (Bottleneck, [3, 4, 6, 3])")

BYOL_PLUGIN_INIT(host, reg)
{
    byol_status st =
        byol_plugin_check_host(host, "encoder-resnet", BYOL_HOST_NEEDS(net_find_param));
    if (st == BYOL_OK)
        st = host->register_ops(reg, BYOL_PLUGIN_ENCODER, &resnet18_ops);
    if (st == BYOL_OK)
        st = host->register_ops(reg, BYOL_PLUGIN_ENCODER, &resnet34_ops);
    if (st == BYOL_OK)
        st = host->register_ops(reg, BYOL_PLUGIN_ENCODER, &resnet50_ops);
    return st;
}
