/* A user's encoder for the ONNX export tests (tests/cli/onnx_plugin.sh), built as any
 * third-party .so: "fused" is conv1 (3x3, `width` channels, default 4) -> bn1 -> avgpool ->
 * bn2, both batch norms with the relu fused into the op (bn.fuse_relu, which the backends that
 * declare BYOL_BACKEND_FUSES_BN_RELU run): the network has no relu layer, yet computes two.
 *
 * With BYOL_TEST_FUSED_OP_KIND=K in the environment it also adds "future1", an op of kind K
 * reading bn2, as the network's output: a plugin built against a newer header whose op the
 * host does not know (kinds past BYOL_OP_SOFTMAX), e.g. one that replaced the .so a checkpoint
 * was trained with. */
#include <stdlib.h>

#include "byol/encoder.h"

static byol_status fused_bn(const struct byol_host_api *host, struct byol_net *net,
                            const char *name)
{
    struct byol_op_desc bn = {.kind = BYOL_OP_BATCHNORM};
    bn.u.bn.eps = 1e-5f;
    bn.u.bn.momentum = 0.1f;
    bn.u.bn.affine = 1;
    bn.u.bn.fuse_relu = 1;
    return host->net_add_layer(net, name, &bn, NULL);
}

static byol_status fused_build(const struct byol_host_api *host,
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
    struct byol_op_desc pool = {.kind = BYOL_OP_AVGPOOL};
    const char *const from_input[2] = {input, NULL};
    st = host->net_add_layer(net, "conv1", &conv, from_input);
    if (st == BYOL_OK)
        st = fused_bn(host, net, "bn1");
    if (st == BYOL_OK)
        st = host->net_add_layer(net, "avgpool", &pool, NULL);
    if (st == BYOL_OK)
        st = fused_bn(host, net, "bn2");
    *output = "bn2";
    const char *kind = getenv("BYOL_TEST_FUSED_OP_KIND");
    if (st == BYOL_OK && kind && *kind) {
        struct byol_op_desc future = {.kind = (enum byol_op_kind)atoi(kind)};
        st = host->net_add_layer(net, "future1", &future, NULL);
        *output = "future1";
    }
    static const char *const children[] = {"conv1", "bn1", "avgpool", "bn2", "future1"};
    for (int i = 0; st == BYOL_OK && i < (kind && *kind ? 5 : 4); i++)
        st = host->net_add_child(net, children[i]);
    return st;
}

static const struct byol_encoder_ops fused_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_encoder_ops),
    .name = "fused",
    .version = "0.0.1",
    .description = "conv and two batch norms with fused relus (test plugin)",
    .build = fused_build,
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_ENCODER, &fused_ops);
}
