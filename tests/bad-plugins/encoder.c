/* A bad plugin for test_loader: registers ops of kind 99, a kind no host knows (a plugin from
 * the future); the load must fail and leave nothing registered. */
#include "byol/plugin.h"

static const struct byol_ops_header ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_ops_header),
    .name = "future",
    .version = "0.0.1",
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, (enum byol_plugin_kind)99, &ops);
}
