/* The host table: what a plugin may call in the core. Its entries reach down to the runtime
 * (memory, errors, the log, random numbers, settings, registration) and to the network engine
 * (for encoder plugins), so it lives with the engine; the registry is handed it (host/). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "byol/net.h"
#include "byol/registry.h"
#include "byol/rng.h"
#include "byol/settings.h"
#include "log_internal.h"
#include "registry_internal.h"

static void *host_alloc(size_t bytes)
{
    /* Round up to whole 64-byte lines so vector loops may touch the tail. */
    if (bytes > SIZE_MAX - 63)
        return NULL;
    size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0)
        return NULL;
    memset(p, 0, n);
    return p;
}

static void host_free(void *p)
{
    free(p);
}

static const struct byol_host_api host_api = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_host_api),
    .alloc = host_alloc,
    .free = host_free,
    .log = byol_log,
    .error = byol_error,
    .rng_init = byol_rng_init,
    .rng_u32 = byol_rng_u32,
    .rng_uniform = byol_rng_uniform,
    .rng_normal = byol_rng_normal,
    .setting_int = byol_settings_int,
    .setting_float = byol_settings_float,
    .setting_bool = byol_settings_bool,
    .setting_string = byol_settings_string,
    .setting_floats = byol_settings_floats,
    .setting_check_keys = byol_settings_check_keys,
    .register_ops = byol_registry_register_ops,
    .net_add_layer = byol_net_add_layer,
    .net_add_alias = byol_net_add_alias,
    .net_add_child = byol_net_add_child,
    .net_param_count = byol_net_param_count,
    .net_param_at = byol_net_param_at,
    .net_find_param = byol_net_find_param,
    .setting_child = byol_settings_child,
    .setting_error = byol_settings_error,
    .verror = byol_verror_about,
};

const struct byol_host_api *byol_host_api(void)
{
    return &host_api;
}
