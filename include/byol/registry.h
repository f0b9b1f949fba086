/* The plugin registry and loader: finds plugin .so files, checks their ABI, runs their entry
 * point and keeps what they register. Every failure closes the .so again and leaves a one-line
 * message naming the file and the reason (see byol_last_error). */
#ifndef BYOL_REGISTRY_H
#define BYOL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "byol/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File names of plugins found by name: "byol-<kind>-<name>.so", e.g. byol-backend-blas.so. */
#define BYOL_PLUGIN_PREFIX "byol-"
#define BYOL_PLUGIN_SUFFIX ".so"

struct byol_registry_entry {
    enum byol_plugin_kind kind;
    const char *name;
    const char *version;
    uint32_t abi_version; /* as the plugin declared it */
    const char *path;     /* the .so it came from */
    const void *ops;      /* the host's full-size copy of the ops struct */
};

/* A new registry already holds what the host provides itself (path "(host)"): the encoder
 * "layers" and the trainers "byol" and "linear". */
BYOL_API byol_status byol_registry_create(struct byol_registry **out);
/* Unloads every plugin. NULL is a no-op. */
BYOL_API void byol_registry_free(struct byol_registry *reg);

/* Append a folder to the search path (searched in the order added). */
BYOL_API byol_status byol_registry_add_search_dir(struct byol_registry *reg, const char *dir);
/* Append the standard folders: each entry of $BYOL_PLUGIN_PATH (colon-separated), the
 * plugin folder next to the running executable (<exe>/../lib/byol/plugins), and the install
 * folder. */
BYOL_API byol_status byol_registry_add_default_dirs(struct byol_registry *reg);
BYOL_API size_t byol_registry_search_dir_count(const struct byol_registry *reg);
BYOL_API const char *byol_registry_search_dir(const struct byol_registry *reg, size_t i);

/* Load one plugin file. A file already loaded (same real path) is not loaded twice. */
BYOL_API byol_status byol_registry_load_file(struct byol_registry *reg, const char *path);

/* Return the ops of a plugin of `kind` named `name`. If `name` contains a '/' or ends in
 * ".so" it is a path and is loaded; otherwise an already registered entry is used, or
 * byol-<kind>-<name>.so is looked for in the search path, and failing that every
 * byol-<kind>-*.so there is loaded and looked in (one file may register several names:
 * byol-encoder-resnet.so has resnet18, resnet34 and resnet50). */
BYOL_API byol_status byol_registry_require(struct byol_registry *reg, enum byol_plugin_kind kind,
                                           const char *name, const void **ops);

/* Load every byol-*.so in the search path. Files that fail are reported through `on_error`
 * (may be NULL) and skipped; the call itself only fails on out-of-memory. */
BYOL_API byol_status byol_registry_load_all(struct byol_registry *reg,
                                            void (*on_error)(const char *message, void *user),
                                            void *user);

BYOL_API size_t byol_registry_count(const struct byol_registry *reg);
/* The i-th registered entry; pointers stay valid until the registry is freed. */
BYOL_API const struct byol_registry_entry *byol_registry_entry_at(const struct byol_registry *reg,
                                                                  size_t i);
/* NULL if nothing of that kind and name is registered. */
BYOL_API const struct byol_registry_entry *byol_registry_find(const struct byol_registry *reg,
                                                              enum byol_plugin_kind kind,
                                                              const char *name);

/* "backend", "encoder", "augment", "trainer" (or "unknown"). */
BYOL_API const char *byol_plugin_kind_str(enum byol_plugin_kind kind);

/* The plugin call in progress on this thread, for a report from a fatal-signal or atexit
 * handler: the plugin's file, its kind ("backend", "augment op", ...), its registered name
 * (may be NULL) and the call ("init", "apply", "forward", ...). Returns 0 (and NULLs) when this
 * thread runs no plugin code. Async-signal-safe: it reads four thread-local pointers. */
BYOL_API int byol_plugin_running(const char **file, const char **kind, const char **name,
                                 const char **call);

/* The host table the core hands to plugins. */
BYOL_API const struct byol_host_api *byol_host_api(void);

#ifdef __cplusplus
}
#endif
#endif
