/* A bad plugin for test_loader: built for a future major ABI (2.0). */
#include "byol/backend.h"

static const struct byol_backend_ops ops = {
    .abi_version = 2u << 16,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = "abi2",
    .version = "2.0.0",
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
}
