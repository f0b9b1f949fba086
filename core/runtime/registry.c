/* The plugin registry and loader. It is handed the host table it gives plugins and the sizes
 * of the ops structs it checks (registry_internal.h); it knows nothing of what plugins build.
 * A load is a transaction: what a plugin registers during init is kept only if all of it is.
 * A name means one file: a name registered by two files is refused, and a lookup by name loads
 * every file the search path could give it from, so a plugin cannot take a standard name
 * unnoticed; a file asked for by its path may repeat others' names, reached only by path. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/registry.h"
#include "plugin_scope_internal.h"
#include "registry_internal.h"

#ifndef BYOL_INSTALL_PLUGIN_DIR
#define BYOL_INSTALL_PLUGIN_DIR "/usr/local/lib/byol/plugins"
#endif
/* Relative to the executable's folder; matches the build tree and the install layout. */
#ifndef BYOL_EXE_PLUGIN_SUBDIR
#define BYOL_EXE_PLUGIN_SUBDIR "../lib/byol/plugins"
#endif

/* Registered by the host itself rather than by a loaded file. */
#define REGISTRY_HOST_PATH "(host)"

struct registry_lib {
    void *handle;
    char *path; /* real path; entries point at it */
};

/* An entry, and whether it came from a file loaded for a lookup by path: such entries may
 * repeat other files' names and are what a lookup by name falls back on, never what it
 * prefers. The public part comes first: entries[] points at it. */
struct registry_entry {
    struct byol_registry_entry pub;
    int by_path;
};

struct byol_registry {
    const struct byol_host_api *host;        /* handed to every plugin's entry point */
    const struct byol_registry_kinds *kinds; /* the ops struct sizes this host knows */
    char **dirs;
    size_t ndirs;
    struct registry_lib *libs;
    size_t nlibs;
    struct byol_registry_entry **entries; /* each allocated alone, so pointers stay valid */
    size_t nentries;
    /* The load in progress: the file, whether it is by path, where its entries start, the
     * first register failure, and the first name it was refused for (another file has it). */
    const char *loading;
    int loading_by_path;
    size_t pending_start;
    byol_status pending_status;
    char pending_message[1024];
    enum byol_plugin_kind clash_kind;
    char clash_name[256], clash_file[PATH_MAX], clash_with[PATH_MAX];
};

const char *byol_plugin_kind_str(enum byol_plugin_kind kind)
{
    switch (kind) {
    case BYOL_PLUGIN_BACKEND: return "backend";
    case BYOL_PLUGIN_ENCODER: return "encoder";
    case BYOL_PLUGIN_AUGMENT: return "augment";
    case BYOL_PLUGIN_TRAINER: return "trainer";
    }
    return "unknown";
}

/* ---- registration -------------------------------------------------------------------- */

/* The full size this host knows for a kind's ops struct; 0 for kinds it cannot use yet. */
static size_t registry_known_size(const struct byol_registry *reg, enum byol_plugin_kind kind)
{
    return kind > 0 && kind < BYOL_REGISTRY_KINDS ? reg->kinds->ops_size[kind] : 0;
}

static const char *registry_current_file(const struct byol_registry *reg)
{
    return reg->loading ? reg->loading : REGISTRY_HOST_PATH;
}

static int entry_by_path(const struct byol_registry_entry *e)
{
    return ((const struct registry_entry *)e)->by_path;
}

/* The entry that a registration of `name` from the file being loaded would repeat: one of that
 * file's own, or, unless either is by path, another file's. */
static const struct byol_registry_entry *
registry_clash(const struct byol_registry *reg, enum byol_plugin_kind kind, const char *name)
{
    const char *file = registry_current_file(reg);
    for (size_t i = 0; i < reg->nentries; i++) {
        const struct byol_registry_entry *e = reg->entries[i];
        if (e->kind == kind && strcmp(e->name, name) == 0 &&
            (strcmp(e->path, file) == 0 || (!reg->loading_by_path && !entry_by_path(e))))
            return e;
    }
    return NULL;
}

/* Header checks, in the order that keeps every read inside what the plugin declared. */
static byol_status registry_check_header(struct byol_registry *reg, enum byol_plugin_kind kind,
                                         const struct byol_ops_header *h)
{
    const char *file = registry_current_file(reg);
    const char *ks = byol_plugin_kind_str(kind);
    uint32_t major = BYOL_ABI_VERSION_MAJOR(h->abi_version);
    if (major != BYOL_ABI_MAJOR)
        return byol_error(BYOL_ERR_ABI, "%s: %s built for ABI %u.%u, host has %u.%u", file, ks,
                          major, BYOL_ABI_VERSION_MINOR(h->abi_version), BYOL_ABI_MAJOR,
                          BYOL_ABI_MINOR);
    if (h->struct_size < sizeof(struct byol_ops_header))
        return byol_error(BYOL_ERR_ABI,
                          "%s: %s ops struct is %u bytes, smaller than its %zu-byte "
                          "header",
                          file, ks, h->struct_size, sizeof(struct byol_ops_header));
    if (!h->name || !h->name[0])
        return byol_error(BYOL_ERR_INVALID, "%s: %s registered without a name", file, ks);
    size_t known = registry_known_size(reg, kind);
    if (h->struct_size > known)
        return byol_error(BYOL_ERR_ABI,
                          "%s: %s '%s' ops struct is %u bytes, host knows %zu "
                          "(plugin newer than host?)",
                          file, ks, h->name, h->struct_size, known);
    const struct byol_registry_entry *dup = registry_clash(reg, kind, h->name);
    if (!dup)
        return BYOL_OK;
    if (reg->loading && !reg->clash_name[0]) {
        reg->clash_kind = kind;
        snprintf(reg->clash_name, sizeof reg->clash_name, "%s", h->name);
        snprintf(reg->clash_file, sizeof reg->clash_file, "%s", file);
        snprintf(reg->clash_with, sizeof reg->clash_with, "%s", dup->path);
    }
    return byol_error(BYOL_ERR_DUPLICATE, "%s: %s '%s' is already registered by %s", file, ks,
                      h->name, dup->path);
}

static byol_status registry_check_ops(struct byol_registry *reg, enum byol_plugin_kind kind,
                                      const void *ops)
{
    const char *file = registry_current_file(reg);
    if (!ops)
        return byol_error(BYOL_ERR_INVALID, "%s: register_ops called with NULL ops", file);
    if (kind != BYOL_PLUGIN_BACKEND && kind != BYOL_PLUGIN_ENCODER && kind != BYOL_PLUGIN_AUGMENT &&
        kind != BYOL_PLUGIN_TRAINER)
        return byol_error(BYOL_ERR_INVALID, "%s: unknown plugin kind %d", file, (int)kind);
    if (registry_known_size(reg, kind) == 0)
        return byol_error(BYOL_ERR_UNSUPPORTED, "%s: %s: kind not supported by this host yet", file,
                          byol_plugin_kind_str(kind));
    return registry_check_header(reg, kind, ops);
}

static byol_status registry_add_entry(struct byol_registry *reg, enum byol_plugin_kind kind,
                                      const void *ops)
{
    const struct byol_ops_header *h = ops;
    struct byol_registry_entry **grown =
        realloc(reg->entries, (reg->nentries + 1) * sizeof *reg->entries);
    if (!grown)
        return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
    reg->entries = grown;
    struct registry_entry *w = calloc(1, sizeof *w);
    struct byol_registry_entry *e = w ? &w->pub : NULL;
    /* The host's full size, zeroed: slots an older plugin lacks read as NULL. */
    void *copy = reg->host->alloc(registry_known_size(reg, kind));
    if (!e || !copy) {
        free(w);
        reg->host->free(copy);
        return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
    }
    w->by_path = reg->loading != NULL && reg->loading_by_path;
    memcpy(copy, ops, h->struct_size);
    e->kind = kind;
    e->name = h->name;
    e->version = h->version ? h->version : "";
    e->abi_version = h->abi_version;
    e->path = registry_current_file(reg);
    e->ops = copy;
    reg->entries[reg->nentries++] = e;
    return BYOL_OK;
}

byol_status byol_registry_register_ops(struct byol_registry *reg, enum byol_plugin_kind kind,
                                       const void *ops)
{
    if (!reg)
        return byol_error(BYOL_ERR_INVALID, "register_ops: NULL registry");
    byol_status st = registry_check_ops(reg, kind, ops);
    if (st == BYOL_OK)
        st = registry_add_entry(reg, kind, ops);
    /* Remember the first failure: the load fails even if the plugin ignores this status. */
    if (st != BYOL_OK && reg->loading && reg->pending_status == BYOL_OK) {
        reg->pending_status = st;
        snprintf(reg->pending_message, sizeof reg->pending_message, "%s", byol_last_error());
    }
    return st;
}

static void registry_free_entry(const struct byol_registry *reg, struct byol_registry_entry *e)
{
    if (e)
        reg->host->free((void *)e->ops);
    free(e);
}

/* ---- the registry -------------------------------------------------------------------- */

byol_status byol_registry_create_empty(const struct byol_host_api *host,
                                       const struct byol_registry_kinds *kinds,
                                       struct byol_registry **out)
{
    if (!out || !host || !kinds)
        return byol_error(BYOL_ERR_INVALID, "byol_registry_create_empty: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
    (*out)->host = host;
    (*out)->kinds = kinds;
    return BYOL_OK;
}

void byol_registry_free(struct byol_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nentries; i++)
        registry_free_entry(reg, reg->entries[i]);
    /* Newest first: a later plugin may still point into an earlier one. */
    for (size_t i = reg->nlibs; i-- > 0;) {
        dlclose(reg->libs[i].handle);
        free(reg->libs[i].path);
    }
    for (size_t i = 0; i < reg->ndirs; i++)
        free(reg->dirs[i]);
    free(reg->entries);
    free(reg->libs);
    free(reg->dirs);
    free(reg);
}

size_t byol_registry_count(const struct byol_registry *reg)
{
    return reg ? reg->nentries : 0;
}

const struct byol_registry_entry *byol_registry_entry_at(const struct byol_registry *reg, size_t i)
{
    return reg && i < reg->nentries ? reg->entries[i] : NULL;
}

const char *byol_registry_path_of(const struct byol_registry *reg, const void *ops)
{
    for (size_t i = 0; reg && ops && i < reg->nentries; i++)
        if (reg->entries[i]->ops == ops)
            return reg->entries[i]->path;
    return NULL;
}

/* The entry of that name, preferring one not loaded by path. */
const struct byol_registry_entry *byol_registry_find(const struct byol_registry *reg,
                                                     enum byol_plugin_kind kind, const char *name)
{
    const struct byol_registry_entry *by_path = NULL;
    for (size_t i = 0; reg && name && i < reg->nentries; i++) {
        const struct byol_registry_entry *e = reg->entries[i];
        if (e->kind != kind || strcmp(e->name, name) != 0)
            continue;
        if (!entry_by_path(e))
            return e;
        if (!by_path)
            by_path = e;
    }
    return by_path;
}

/* ---- search path --------------------------------------------------------------------- */

byol_status byol_registry_add_search_dir(struct byol_registry *reg, const char *dir)
{
    if (!reg || !dir || !dir[0])
        return byol_error(BYOL_ERR_INVALID, "byol_registry_add_search_dir: empty folder");
    /* Absolute where the folder exists, so messages and duplicates compare equal. */
    char *real = realpath(dir, NULL);
    const char *use = real ? real : dir;
    for (size_t i = 0; i < reg->ndirs; i++)
        if (strcmp(reg->dirs[i], use) == 0) {
            free(real);
            return BYOL_OK;
        }
    char **grown = realloc(reg->dirs, (reg->ndirs + 1) * sizeof *reg->dirs);
    char *copy = real ? real : strdup(dir);
    if (!grown || !copy) {
        if (grown)
            reg->dirs = grown;
        free(copy);
        return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
    }
    reg->dirs = grown;
    reg->dirs[reg->ndirs++] = copy;
    return BYOL_OK;
}

static byol_status registry_add_env_dirs(struct byol_registry *reg)
{
    const char *env = getenv("BYOL_PLUGIN_PATH");
    while (env && *env) {
        size_t n = strcspn(env, ":");
        if (n > 0) {
            char *dir = strndup(env, n);
            if (!dir)
                return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
            byol_status st = byol_registry_add_search_dir(reg, dir);
            free(dir);
            if (st != BYOL_OK)
                return st;
        }
        env += n + (env[n] == ':');
    }
    return BYOL_OK;
}

static byol_status registry_add_exe_dir(struct byol_registry *reg)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return BYOL_OK; /* no /proc: skip this folder, the others still work */
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return BYOL_OK;
    *slash = '\0';
    char dir[PATH_MAX + sizeof BYOL_EXE_PLUGIN_SUBDIR + 1];
    snprintf(dir, sizeof dir, "%s/%s", exe, BYOL_EXE_PLUGIN_SUBDIR);
    return byol_registry_add_search_dir(reg, dir);
}

byol_status byol_registry_add_default_dirs(struct byol_registry *reg)
{
    if (!reg)
        return byol_error(BYOL_ERR_INVALID, "byol_registry_add_default_dirs: NULL registry");
    byol_status st = registry_add_env_dirs(reg);
    if (st == BYOL_OK)
        st = registry_add_exe_dir(reg);
    if (st == BYOL_OK)
        st = byol_registry_add_search_dir(reg, BYOL_INSTALL_PLUGIN_DIR);
    return st;
}

size_t byol_registry_search_dir_count(const struct byol_registry *reg)
{
    return reg ? reg->ndirs : 0;
}

const char *byol_registry_search_dir(const struct byol_registry *reg, size_t i)
{
    return reg && i < reg->ndirs ? reg->dirs[i] : NULL;
}

/* ---- loading ------------------------------------------------------------------------- */

static const struct registry_lib *registry_find_lib(const struct byol_registry *reg,
                                                    const char *real)
{
    for (size_t i = 0; i < reg->nlibs; i++)
        if (strcmp(reg->libs[i].path, real) == 0)
            return &reg->libs[i];
    return NULL;
}

/* dlerror() usually starts with the file name, which our message already gives. */
static const char *registry_dlerror(const char *real)
{
    const char *err = dlerror();
    size_t n = strlen(real);
    if (!err)
        return "unknown dlopen error";
    if (strncmp(err, real, n) == 0 && err[n] == ':' && err[n + 1] == ' ')
        return err + n + 2;
    return err;
}

static void registry_rollback(struct byol_registry *reg, size_t start)
{
    for (size_t i = start; i < reg->nentries; i++)
        registry_free_entry(reg, reg->entries[i]);
    reg->nentries = start;
}

/* Run the entry point inside a transaction; on any failure the entries are rolled back. */
static byol_status registry_run_init(struct byol_registry *reg, byol_plugin_init_fn init,
                                     const char *real)
{
    reg->loading = real;
    reg->pending_start = reg->nentries;
    reg->pending_status = BYOL_OK;
    byol_clear_error();
    struct byol_plugin_mark mark = byol_plugin_enter(real, "entry point", NULL, "init");
    byol_status st = init(reg->host, reg);
    byol_plugin_leave(mark);
    reg->loading = NULL;
    if (reg->pending_status != BYOL_OK) {
        st = byol_error(reg->pending_status, "%s", reg->pending_message);
    } else if (st != BYOL_OK) {
        const char *why = byol_last_error()[0] ? byol_last_error() : byol_status_str(st);
        st = byol_error(BYOL_ERR_PLUGIN, "%s: init failed: %s", real, why);
    }
    if (st != BYOL_OK)
        registry_rollback(reg, reg->pending_start);
    return st;
}

/* Load a file already known by its real path (owned by the caller until committed). */
static byol_status registry_open(struct byol_registry *reg, char *real, int by_path)
{
    struct registry_lib *grown = realloc(reg->libs, (reg->nlibs + 1) * sizeof *reg->libs);
    if (!grown)
        return byol_error(BYOL_ERR_NOMEM, "registry: out of memory");
    reg->libs = grown;
    dlerror();
    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return byol_error(BYOL_ERR_PLUGIN, "cannot load plugin %s: %s", real,
                          registry_dlerror(real));
    byol_plugin_init_fn init;
    /* POSIX's blessed way to turn dlsym's object pointer into a function pointer. */
    *(void **)&init = dlsym(handle, BYOL_PLUGIN_ENTRY_SYMBOL);
    reg->loading_by_path = by_path;
    byol_status st = init ? registry_run_init(reg, init, real)
                          : byol_error(BYOL_ERR_PLUGIN, "no entry point %s in %s",
                                       BYOL_PLUGIN_ENTRY_SYMBOL, real);
    reg->loading_by_path = 0;
    if (st != BYOL_OK) {
        dlclose(handle);
        return st;
    }
    reg->libs[reg->nlibs].handle = handle;
    reg->libs[reg->nlibs].path = real;
    reg->nlibs++;
    return BYOL_OK;
}

/* The real path of a plugin file, or a "not found" failure naming it. Only a regular file
 * is one: dlopen would wait forever on a FIFO. */
static byol_status registry_realpath(const char *path, char **real)
{
    struct stat sb;
    *real = realpath(path, NULL);
    if (*real && stat(*real, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        free(*real);
        *real = NULL;
        return byol_error(BYOL_ERR_PLUGIN, "plugin %s: not a regular file", path);
    }
    if (*real)
        return BYOL_OK;
    if (errno == ENOENT || errno == ENOTDIR)
        return byol_error(BYOL_ERR_NOT_FOUND, "plugin not found: %s", path);
    return byol_error(BYOL_ERR_IO, "plugin %s: %s", path, strerror(errno));
}

/* A file loaded by path (by_path) may repeat names other files registered. */
static byol_status registry_load(struct byol_registry *reg, const char *path, int by_path)
{
    if (reg->loading)
        return byol_error(BYOL_ERR_INVALID, "%s: a plugin may not load plugins from its init",
                          reg->loading);
    char *real;
    reg->clash_name[0] = '\0';
    byol_status st = registry_realpath(path, &real);
    if (st != BYOL_OK)
        return st;
    if (registry_find_lib(reg, real)) {
        free(real);
        return BYOL_OK;
    }
    st = registry_open(reg, real, by_path);
    if (st != BYOL_OK)
        free(real);
    return st;
}

byol_status byol_registry_load_file(struct byol_registry *reg, const char *path)
{
    if (!reg || !path || !path[0])
        return byol_error(BYOL_ERR_INVALID, "byol_registry_load_file: empty path");
    return registry_load(reg, path, 0);
}

/* The first entry of `kind` that the file at `path` registered. */
static byol_status registry_require_path(struct byol_registry *reg, enum byol_plugin_kind kind,
                                         const char *path, const void **ops)
{
    byol_status st = registry_load(reg, path, 1);
    char *real;
    if (st == BYOL_OK)
        st = registry_realpath(path, &real);
    if (st != BYOL_OK)
        return st;
    for (size_t i = 0; i < reg->nentries; i++) {
        const struct byol_registry_entry *e = reg->entries[i];
        if (e->kind == kind && strcmp(e->path, real) == 0) {
            free(real);
            *ops = e->ops;
            return BYOL_OK;
        }
    }
    st = byol_error(BYOL_ERR_NOT_FOUND, "%s: registers no %s", real, byol_plugin_kind_str(kind));
    free(real);
    return st;
}

/* "; known encoders: layers, resnet18" when any entry of `kind` is registered, else "". */
static void registry_known_names(const struct byol_registry *reg, enum byol_plugin_kind kind,
                                 char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < reg->nentries && used < size; i++)
        if (reg->entries[i]->kind == kind)
            used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                     used ? ", " : "; known: ", reg->entries[i]->name);
}

static byol_status registry_not_found(const struct byol_registry *reg, enum byol_plugin_kind kind,
                                      const char *file)
{
    char dirs[768] = "", known[512];
    size_t used = 0;
    for (size_t i = 0; i < reg->ndirs && used < sizeof dirs; i++)
        used +=
            (size_t)snprintf(dirs + used, sizeof dirs - used, "%s%s", i ? ", " : "", reg->dirs[i]);
    registry_known_names(reg, kind, known, sizeof known);
    return byol_error(BYOL_ERR_NOT_FOUND, "plugin not found: %s (searched: %s%s)", file,
                      reg->ndirs ? dirs : "no folders", known);
}

static byol_status registry_load_dir(struct byol_registry *reg, size_t d, const char *prefix,
                                     int skip_copies, void (*on_error)(const char *, void *),
                                     void *user);

/* What a scan for `name` learnt from the files refused for repeating a name another file has:
 * the message for `name` itself (on_name), else the first such refusal's. */
struct registry_scan {
    const struct byol_registry *reg;
    enum byol_plugin_kind kind;
    const char *name;
    int on_name;
    char message[2 * PATH_MAX + 256];
};

static void registry_scan_failure(const char *message, void *user)
{
    struct registry_scan *c = user;
    const struct byol_registry *reg = c->reg;
    if (!reg->clash_name[0] || c->on_name)
        return; /* a file that fails for another reason is skipped */
    c->on_name = reg->clash_kind == c->kind && strcmp(reg->clash_name, c->name) == 0;
    if (c->on_name)
        snprintf(c->message, sizeof c->message,
                 "%s '%s' is registered by %s and by %s: a name must come from one file (rename "
                 "one, or ask for one only by its path)",
                 byol_plugin_kind_str(c->kind), c->name, reg->clash_with, reg->clash_file);
    else if (!c->message[0])
        snprintf(c->message, sizeof c->message, "%s", message);
}

/* One file may register several names (byol-encoder-resnet.so: resnet18, resnet34, ...), so
 * a name without a file of its own is looked for in every byol-<kind>-*.so. All of them are
 * loaded (a file named like one of an earlier folder is that one's copy, left alone as on
 * $PATH), so the name is known to come from one file: a file refused because it repeats a name
 * another file has fails the lookup, naming both (whatever name it stopped at, it may hold
 * this one too). Files that fail otherwise are skipped: the name may well live in another. */
static byol_status registry_require_any_file(struct byol_registry *reg, enum byol_plugin_kind kind,
                                             const char *name, const char *file, const void **ops)
{
    char prefix[64];
    struct registry_scan scan = {.reg = reg, .kind = kind, .name = name};
    snprintf(prefix, sizeof prefix, "%s%s-", BYOL_PLUGIN_PREFIX, byol_plugin_kind_str(kind));
    for (size_t i = 0; i < reg->ndirs; i++) {
        byol_status st = registry_load_dir(reg, i, prefix, 1, registry_scan_failure, &scan);
        if (st != BYOL_OK)
            return st;
    }
    const struct byol_registry_entry *e = byol_registry_find(reg, kind, name);
    if (scan.message[0])
        return byol_error(BYOL_ERR_DUPLICATE, "%s", scan.message);
    if (!e)
        return registry_not_found(reg, kind, file);
    *ops = e->ops;
    return BYOL_OK;
}

byol_status byol_registry_require(struct byol_registry *reg, enum byol_plugin_kind kind,
                                  const char *name, const void **ops)
{
    if (!reg || !name || !name[0] || !ops)
        return byol_error(BYOL_ERR_INVALID, "an empty %s name", byol_plugin_kind_str(kind));
    *ops = NULL;
    size_t len = strlen(name), slen = strlen(BYOL_PLUGIN_SUFFIX);
    if (strchr(name, '/') || (len > slen && strcmp(name + len - slen, BYOL_PLUGIN_SUFFIX) == 0))
        return registry_require_path(reg, kind, name, ops);
    /* The host's own names are final. Any other name, even one registered already (by a file
     * of the config's `plugins`), is looked up in the search path: a file there with the same
     * name makes it ambiguous. */
    const struct byol_registry_entry *e = byol_registry_find(reg, kind, name);
    if (e && strcmp(e->path, REGISTRY_HOST_PATH) == 0) {
        *ops = e->ops;
        return BYOL_OK;
    }
    char file[512];
    snprintf(file, sizeof file, "%s%s-%s%s", BYOL_PLUGIN_PREFIX, byol_plugin_kind_str(kind), name,
             BYOL_PLUGIN_SUFFIX);
    for (size_t i = 0; i < reg->ndirs; i++) {
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", reg->dirs[i], file);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        byol_status st = byol_registry_load_file(reg, path);
        if (st != BYOL_OK)
            return st;
        e = byol_registry_find(reg, kind, name);
        if (!e)
            return byol_error(BYOL_ERR_NOT_FOUND, "%s: does not register a %s named '%s'", path,
                              byol_plugin_kind_str(kind), name);
        *ops = e->ops;
        return BYOL_OK;
    }
    return registry_require_any_file(reg, kind, name, file, ops);
}

static int registry_is_plugin_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name), p = strlen(BYOL_PLUGIN_PREFIX), s = strlen(BYOL_PLUGIN_SUFFIX);
    return n > p + s && strncmp(d->d_name, BYOL_PLUGIN_PREFIX, p) == 0 &&
           strcmp(d->d_name + n - s, BYOL_PLUGIN_SUFFIX) == 0;
}

/* Byte order, not the locale's: the listing must not change with LC_COLLATE. */
static int registry_name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* A file of folder d's name in an earlier folder of the search path. */
static int registry_in_earlier_dir(const struct byol_registry *reg, size_t d, const char *base)
{
    for (size_t i = 0; i < d; i++) {
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", reg->dirs[i], base);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            return 1;
    }
    return 0;
}

/* Load the byol-*.so files of search folder d whose names start with `prefix`, in name order
 * (skip_copies: not those an earlier folder has a file of the same name for). */
static byol_status registry_load_dir(struct byol_registry *reg, size_t d, const char *prefix,
                                     int skip_copies, void (*on_error)(const char *, void *),
                                     void *user)
{
    struct dirent **names;
    const char *dir = reg->dirs[d];
    int n = scandir(dir, &names, registry_is_plugin_name, registry_name_order);
    if (n < 0)
        return errno == ENOMEM ? byol_error(BYOL_ERR_NOMEM, "registry: out of memory") : BYOL_OK;
    byol_status result = BYOL_OK;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        const char *base = names[i]->d_name;
        snprintf(path, sizeof path, "%s/%s", dir, base);
        int wanted = strncmp(base, prefix, strlen(prefix)) == 0 &&
                     !(skip_copies && registry_in_earlier_dir(reg, d, base));
        byol_status st = result == BYOL_OK && wanted ? byol_registry_load_file(reg, path) : BYOL_OK;
        if (st == BYOL_ERR_NOMEM)
            result = st;
        else if (st != BYOL_OK && on_error)
            on_error(byol_last_error(), user);
        free(names[i]);
    }
    free(names);
    return result;
}

byol_status byol_registry_load_all(struct byol_registry *reg,
                                   void (*on_error)(const char *message, void *user), void *user)
{
    if (!reg)
        return byol_error(BYOL_ERR_INVALID, "byol_registry_load_all: NULL registry");
    for (size_t i = 0; i < reg->ndirs; i++) {
        byol_status st = registry_load_dir(reg, i, BYOL_PLUGIN_PREFIX, 0, on_error, user);
        if (st != BYOL_OK)
            return st;
    }
    return BYOL_OK;
}
