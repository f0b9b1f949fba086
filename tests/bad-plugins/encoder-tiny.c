/* A user's own encoder, built out of the core like any third-party .so: "tiny" is a 3x3 conv
 * (`width` channels, default 4, with bias) and a relu, then global average pooling. test_loader
 * checks that it registers; test_encoder builds, initialises and runs it. */
#include <math.h>

#include "byol/encoder.h"

static byol_status tiny_build(const struct byol_host_api *host,
                              const struct byol_settings *settings, struct byol_net *net,
                              const char *input, struct byol_shape in, const char **output)
{
    static const char *const keys[] = {"name", "weights", "in_channels", "width", NULL};
    int64_t width;
    (void)in;
    byol_status st = host->setting_check_keys(settings, keys);
    if (st == BYOL_OK)
        st = host->setting_int(settings, "width", 4, &width);
    if (st != BYOL_OK)
        return st;
    struct byol_op_desc conv = {.kind = BYOL_OP_CONV2D};
    conv.u.conv.out_channels = (int)width;
    conv.u.conv.kernel_h = conv.u.conv.kernel_w = 3;
    conv.u.conv.stride_h = conv.u.conv.stride_w = 1;
    conv.u.conv.pad_h = conv.u.conv.pad_w = 1;
    conv.u.conv.has_bias = 1;
    struct byol_op_desc relu = {.kind = BYOL_OP_RELU}, pool = {.kind = BYOL_OP_AVGPOOL};
    const char *const from_input[2] = {input, NULL};
    st = host->net_add_layer(net, "conv", &conv, from_input);
    if (st == BYOL_OK)
        st = host->net_add_layer(net, "relu", &relu, NULL);
    if (st == BYOL_OK)
        st = host->net_add_layer(net, "pool", &pool, NULL);
    if (st == BYOL_OK)
        st = host->net_add_alias(net, "features", "pool");
    for (int i = 0; st == BYOL_OK && i < 3; i++)
        st = host->net_add_child(net, (const char *const[]){"conv", "relu", "pool"}[i]);
    *output = "pool";
    return st;
}

/* Every weight 1/fan_in and bias 0.5: easy to check by hand. */
static byol_status tiny_init(const struct byol_host_api *host, const struct byol_settings *settings,
                             struct byol_net *net, uint64_t seed)
{
    (void)settings;
    (void)seed;
    const struct byol_param *w = host->net_find_param(net, "conv.weight");
    const struct byol_param *b = host->net_find_param(net, "conv.bias");
    if (!w || !b)
        return host->error(BYOL_ERR_INTERNAL, "tiny: conv parameters missing");
    size_t fan_in = w->numel / (size_t)w->dims[0];
    for (size_t i = 0; i < w->numel; i++)
        w->data[i] = 1.0f / (float)fan_in;
    for (size_t i = 0; i < b->numel; i++)
        b->data[i] = 0.5f;
    return BYOL_OK;
}

static const struct byol_encoder_ops tiny_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_encoder_ops),
    .name = "tiny",
    .version = "0.0.1",
    .description = "a user's own two-layer encoder (test plugin)",
    .build = tiny_build,
    .init = tiny_init,
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_ENCODER, &tiny_ops);
}
