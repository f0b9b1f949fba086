/* The encoder interface: a plugin (kind BYOL_PLUGIN_ENCODER) that adds an architecture's layers
 * to a network through the host table, with torchvision's layer names, so that hidden layers are
 * found by name and weights load from torchvision state dicts. One ops struct per architecture:
 * the resnet plugin registers "resnet18", "resnet34" and "resnet50".
 *
 * Naming rules the host relies on: layer names are torchvision module names ("conv1",
 * "layer1.0.conv1", "layer2.0.downsample.0", "avgpool", "fc"); names beginning with "input",
 * "projector." or "predictor." are reserved for the learner. A module whose output is that of
 * another layer (a Sequential such as "layer1", a block "layer1.0") is an alias
 * (host->net_add_alias). The top-level children, in the order net.children() lists them, are
 * declared with host->net_add_child: an integer hidden_layer indexes that list. */
#ifndef BYOL_ENCODER_H
#define BYOL_ENCODER_H

#include "byol/backend.h"
#include "byol/net.h" /* struct byol_param, which host->net_param_at hands out */
#include "byol/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_net;

struct byol_encoder_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name; /* the architecture, e.g. "resnet18" */
    const char *version;
    const char *description;

    /* Add the architecture's layers to `net`, reading from the layer `input` of shape `in`
     * (N,C,H,W). `settings` is the config's model.encoder group (in_channels, stem, ...): reject
     * unknown keys with host->setting_check_keys. Set *output to the name of the layer whose
     * output is the network's output (a string that lives as long as the plugin). */
    byol_status (*build)(const struct byol_host_api *host, const struct byol_settings *settings,
                         struct byol_net *net, const char *input, struct byol_shape in,
                         const char **output);
    /* (optional) Initialise the parameters once the network is allocated, e.g. torchvision's
     * kaiming-normal fan-out convs. Draw from host->rng_* seeded with `seed`. NULL: PyTorch's
     * default initialisation of each layer type. */
    byol_status (*init)(const struct byol_host_api *host, const struct byol_settings *settings,
                        struct byol_net *net, uint64_t seed);
};

#ifdef __cplusplus
}
#endif
#endif
