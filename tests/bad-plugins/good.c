/* A good plugin for test_loader, as an older plugin would be: its struct_size stops before
 * set_threads, so the host must load it and read that slot as NULL, whatever lies beyond. */
#include <stddef.h>

#include "byol/backend.h"

static byol_status good_set_threads(void *ctx, int threads)
{
    (void)ctx;
    (void)threads;
    return BYOL_OK;
}

static const struct byol_backend_ops ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = offsetof(struct byol_backend_ops, set_threads),
    .name = "good",
    .version = "0.0.1",
    .description = "minimal plugin for the loader tests",
    /* Past struct_size: the host must not copy it. */
    .set_threads = good_set_threads,
};

BYOL_PLUGIN_INIT(host, reg)
{
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
}
