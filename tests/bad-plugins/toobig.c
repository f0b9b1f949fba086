/* A bad plugin for test_loader: built against a newer header whose backend ops have grown. */
#include "byol/backend.h"

struct newer_backend_ops {
    struct byol_backend_ops base;
    void *slots_from_the_future[4];
};

static const struct newer_backend_ops ops = {
    .base =
        {
            .abi_version = BYOL_ABI_VERSION,
            .struct_size = sizeof(struct newer_backend_ops),
            .name = "toobig",
            .version = "9.9.9",
        },
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
}
