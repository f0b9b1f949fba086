/* The plugin ABI: what a plugin .so exports, and the host table through which it calls the
 * core. A plugin never links libbyol: everything it needs arrives in struct byol_host_api,
 * so the .so has no undefined byol_* symbols and loads into any host of the same major ABI.
 *
 * Rules that keep old plugins working:
 *  - every ops struct and the host table begin with { abi_version, struct_size };
 *  - fields are only ever appended; a plugin built against an older header passes a smaller
 *    struct_size and the missing trailing slots read as NULL / 0;
 *  - the host rejects another major version, and a struct larger than it knows. */
#ifndef BYOL_PLUGIN_H
#define BYOL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "byol/rng.h"
#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BYOL_ABI_MAJOR 1
#define BYOL_ABI_MINOR 1
#define BYOL_ABI_VERSION ((uint32_t)((BYOL_ABI_MAJOR << 16) | BYOL_ABI_MINOR))
#define BYOL_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define BYOL_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The name of the one symbol every plugin exports. */
#define BYOL_PLUGIN_ENTRY_SYMBOL "byol_plugin_init"

/* What kind of thing an ops struct registers. Values are ABI: append only. */
enum byol_plugin_kind {
    BYOL_PLUGIN_BACKEND = 1,
    BYOL_PLUGIN_ENCODER = 2,
    BYOL_PLUGIN_AUGMENT = 3,
    BYOL_PLUGIN_TRAINER = 4,
};

/* Every ops struct starts with these four fields, in this order. */
struct byol_ops_header {
    uint32_t abi_version; /* BYOL_ABI_VERSION the plugin was built with */
    uint32_t struct_size; /* sizeof the plugin's ops struct */
    const char *name;     /* unique within its kind, e.g. "blas" */
    const char *version;  /* the plugin's own version, e.g. "0.1.0" */
};

enum byol_log_level {
    BYOL_LOG_ERROR = 0,
    BYOL_LOG_WARN = 1,
    BYOL_LOG_INFO = 2,
    BYOL_LOG_DEBUG = 3,
};

/* A read-only view of one config subtree (a plugin's own settings). Owned by the host and
 * borrowed only for the duration of the call that receives it: read what you need there. */
struct byol_settings;

struct byol_registry;
struct byol_net;
struct byol_op_desc;
struct byol_param;

/* The host table. Borrowed by the plugin; valid until the plugin is unloaded. */
struct byol_host_api {
    uint32_t abi_version;
    uint32_t struct_size;

    /* Memory: 64-byte aligned and zero-filled; NULL on failure. free(NULL) is a no-op. */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);

    void (*log)(enum byol_log_level level, const char *fmt, ...) BYOL_PRINTF(2, 3);
    /* Record the thread's error message (see byol_error) and return `s`. */
    byol_status (*error)(byol_status s, const char *fmt, ...) BYOL_PRINTF(2, 3);

    /* Random numbers: see byol/rng.h. */
    void (*rng_init)(struct byol_rng *r, uint64_t seed, uint64_t stream);
    uint32_t (*rng_u32)(struct byol_rng *r);
    float (*rng_uniform)(struct byol_rng *r);
    double (*rng_normal)(struct byol_rng *r);

    /* Settings accessors. `name` is a direct child of `s` (NULL `s` = empty settings).
     * A missing setting yields `def` and BYOL_OK; a setting of the wrong type or out of range
     * fails with a message "FILE:LINE: PATH: what is wrong". */
    byol_status (*setting_int)(const struct byol_settings *s, const char *name, int64_t def,
                               int64_t *out);
    byol_status (*setting_float)(const struct byol_settings *s, const char *name, double def,
                                 double *out);
    byol_status (*setting_bool)(const struct byol_settings *s, const char *name, int def,
                                int *out);
    /* The string is owned by the settings. */
    byol_status (*setting_string)(const struct byol_settings *s, const char *name,
                                  const char *def, const char **out);
    /* A list or array of numbers: fills up to `max`, sets *count; more than `max` fails. */
    byol_status (*setting_floats)(const struct byol_settings *s, const char *name, double *out,
                                  int max, int *count);
    /* Fails naming the first child of `s` whose name is not in the NULL-terminated list. */
    byol_status (*setting_check_keys)(const struct byol_settings *s, const char *const *allowed);

    /* Register one ops struct of the given kind. The struct (and the strings it points at)
     * must stay valid until the plugin is unloaded; it is copied up to struct_size. */
    byol_status (*register_ops)(struct byol_registry *reg, enum byol_plugin_kind kind,
                                const void *ops);

    /* Network building, for encoder plugins (see byol/encoder.h and byol/net.h). */
    byol_status (*net_add_layer)(struct byol_net *net, const char *name,
                                 const struct byol_op_desc *desc, const char *const inputs[2]);
    byol_status (*net_add_alias)(struct byol_net *net, const char *alias, const char *layer);
    byol_status (*net_add_child)(struct byol_net *net, const char *name);
    size_t (*net_param_count)(const struct byol_net *net);
    const struct byol_param *(*net_param_at)(const struct byol_net *net, size_t i);
    const struct byol_param *(*net_find_param)(const struct byol_net *net, const char *name);

    /* Settings, continued. The child `name` of `s` (a dotted path; NULL when not set), so a
     * message can point at the line of one key. */
    const struct byol_settings *(*setting_child)(const struct byol_settings *s, const char *name);
    /* Record "FILE:LINE: PATH: <fmt...>" about setting `s` and return `st`, for checks the
     * accessors cannot make (a value out of range, two settings that conflict). */
    byol_status (*setting_error)(const struct byol_settings *s, byol_status st, const char *fmt,
                                 ...) BYOL_PRINTF(3, 4);

    /* The va_list form of `error`, for a plugin's own formatting wrapper: records
     * "ABOUT: <fmt...>" ("<fmt...>" when `about` is NULL or empty) and returns `s`. */
    byol_status (*verror)(byol_status s, const char *about, const char *fmt, va_list ap);
};

/* The bytes of the host table up to and including `slot`: what a plugin that calls `slot`
 * (and nothing after it) needs. */
#define BYOL_HOST_NEEDS(slot)                                                                \
    (offsetof(struct byol_host_api, slot) + sizeof(((const struct byol_host_api *)0)->slot))

/* For a plugin's entry point: OK if the host speaks this major ABI and its table reaches
 * `need_bytes` (BYOL_HOST_NEEDS(the last slot the plugin calls)); else BYOL_ERR_ABI with a
 * message naming `who` and both versions. */
static inline byol_status byol_plugin_check_host(const struct byol_host_api *host, const char *who,
                                                 size_t need_bytes)
{
    if (BYOL_ABI_VERSION_MAJOR(host->abi_version) == BYOL_ABI_MAJOR &&
        host->struct_size >= need_bytes)
        return BYOL_OK;
    if (host->struct_size < BYOL_HOST_NEEDS(error))
        return BYOL_ERR_ABI;
    return host->error(BYOL_ERR_ABI,
                       "%s: host ABI %u.%u with a %u-byte table; this plugin needs %u.x and %zu "
                       "bytes",
                       who, (unsigned)BYOL_ABI_VERSION_MAJOR(host->abi_version),
                       (unsigned)BYOL_ABI_VERSION_MINOR(host->abi_version),
                       (unsigned)host->struct_size, (unsigned)BYOL_ABI_MAJOR, need_bytes);
}

/* The entry point: define it with BYOL_PLUGIN_INIT(host, reg) { ... return BYOL_OK; }.
 * On failure set a message with host->error(...) and return its status. */
typedef byol_status (*byol_plugin_init_fn)(const struct byol_host_api *host,
                                           struct byol_registry *reg);

#if defined(__GNUC__)
#define BYOL_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BYOL_PLUGIN_EXPORT
#endif

#define BYOL_PLUGIN_INIT(host, reg)                                                          \
    BYOL_PLUGIN_EXPORT byol_status byol_plugin_init(const struct byol_host_api *host,        \
                                                    struct byol_registry *reg);              \
    BYOL_PLUGIN_EXPORT byol_status byol_plugin_init(const struct byol_host_api *host,        \
                                                    struct byol_registry *reg)

#ifdef __cplusplus
}
#endif
#endif
