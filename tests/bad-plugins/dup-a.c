/* A bad plugin for test_loader: dup-a and dup-b both register a backend named "dup". */
#include "byol/backend.h"

static const struct byol_backend_ops ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = "dup",
    .version = "0.0.1",
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
}
