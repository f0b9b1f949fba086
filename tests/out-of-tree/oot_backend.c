/* A backend plugin built out of tree against the installed headers. It registers an ops table
 * with only the mandatory slots, which the host must accept (missing slots read as NULL). */
#include <byol/backend.h>

static byol_status oot_create(const struct byol_host_api *host,
                              const struct byol_settings *settings, void **ctx)
{
    (void)settings;
    *ctx = host->alloc(16);
    return *ctx ? BYOL_OK : host->error(BYOL_ERR_NOMEM, "oot: out of memory");
}

static const struct byol_host_api *g_host;

static void oot_destroy(void *ctx) { g_host->free(ctx); }

static const struct byol_backend_ops oot_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_backend_ops),
    .name = "oot",
    .version = "9.9.9",
    .description = "out-of-tree build check",
    .create = oot_create,
    .destroy = oot_destroy,
};

BYOL_PLUGIN_INIT(host, reg)
{
    g_host = host;
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &oot_ops);
}
