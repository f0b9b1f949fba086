/* A bad plugin for test_loader: registers a backend, then fails, so the loader must roll the
 * registration back. */
#include "byol/backend.h"

static const struct byol_backend_ops ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = "rollback",
    .version = "0.0.1",
};

BYOL_PLUGIN_INIT(host, reg)
{
    byol_status st = host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
    if (st != BYOL_OK)
        return st;
    return host->error(BYOL_ERR_IO, "rollback: second half of init failed");
}
