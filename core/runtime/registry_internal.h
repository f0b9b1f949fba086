/* The registry as the layers above see it: a pure loader that is handed the host table it
 * gives plugins and the sizes of the ops structs it checks (host/ creates it and registers the
 * built-ins; see core/README.md). Not installed. */
#ifndef BYOL_REGISTRY_INTERNAL_H
#define BYOL_REGISTRY_INTERNAL_H

#include <stddef.h>

#include "byol/registry.h"

/* The full size this host knows for each kind's ops struct, indexed by enum byol_plugin_kind
 * (entry 0 unused; a 0 size means a kind this host cannot use yet). */
#define BYOL_REGISTRY_KINDS (BYOL_PLUGIN_TRAINER + 1)
struct byol_registry_kinds {
    size_t ops_size[BYOL_REGISTRY_KINDS];
};

/* An empty registry that hands `host` to every plugin's entry point and checks ops structs
 * against `kinds`. Both are borrowed and must outlive the registry. */
byol_status byol_registry_create_empty(const struct byol_host_api *host,
                                       const struct byol_registry_kinds *kinds,
                                       struct byol_registry **out);

/* The host table's register_ops slot: check `ops` (ABI, size, name, no duplicate) and keep a
 * full-size copy. During a plugin's init, the first failure also fails the whole load. */
byol_status byol_registry_register_ops(struct byol_registry *reg, enum byol_plugin_kind kind,
                                       const void *ops);

/* The file that registered `ops` (a pointer byol_registry_require gave out), "(host)" for a
 * built-in, or NULL when no entry holds it. For reports that name a plugin. */
const char *byol_registry_path_of(const struct byol_registry *reg, const void *ops);

#endif
