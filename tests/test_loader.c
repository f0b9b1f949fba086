/* Loader tests: each deliberately broken plugin in tests/bad-plugins fails with its own status
 * and a one-line message naming the file and the reason, and leaves nothing registered. */
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bad-plugins/abi-1.0/host_slots.h"
#include "byol/encoder.h"
#include "testutil.h"

#define BAD(file) BYOL_TEST_BAD_PLUGIN_DIR "/" file

/* Entries a fresh registry already has: what the host registers itself (encoder "layers"). */
static size_t n_builtin;

static struct byol_registry *new_registry(void)
{
    struct byol_registry *reg = NULL;
    BYOL_CHECK_OK(byol_registry_create(&reg));
    n_builtin = byol_registry_count(reg);
    return reg;
}

/* Load one bad file and check status, message and that nothing stayed registered. */
static void expect_load_failure(const char *path, byol_status want, const char *reason)
{
    struct byol_registry *reg = new_registry();
    byol_clear_error();
    byol_status st = byol_registry_load_file(reg, path);
    if (st != want)
        fprintf(stderr, "\n  %s: got %s (%s)\n", path, byol_status_str(st), byol_last_error());
    CU_ASSERT_EQUAL(st, want);
    BYOL_ASSERT_MSG_HAS(strrchr(path, '/') + 1);
    BYOL_ASSERT_MSG_HAS(reason);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin);
    /* Not remembered as loaded: a second try fails the same way. */
    CU_ASSERT_EQUAL(byol_registry_load_file(reg, path), want);
    byol_registry_free(reg);
}

static void test_no_entry_point(void)
{
    expect_load_failure(BAD("byol-backend-noentry.so"), BYOL_ERR_PLUGIN,
                        "no entry point byol_plugin_init in ");
}

static void test_abi_major(void)
{
    expect_load_failure(BAD("byol-backend-abi2.so"), BYOL_ERR_ABI, "ABI 2.0, host has 1.1");
}

static void test_struct_too_big(void)
{
    char reason[200];
    snprintf(reason, sizeof reason,
             "backend 'toobig' ops struct is %zu bytes, host knows %zu (plugin newer than host?)",
             sizeof(struct byol_backend_ops) + 4 * sizeof(void *), sizeof(struct byol_backend_ops));
    expect_load_failure(BAD("byol-backend-toobig.so"), BYOL_ERR_ABI, reason);
}

static void test_init_fails(void)
{
    expect_load_failure(
        BAD("byol-backend-initfail.so"), BYOL_ERR_PLUGIN,
        "byol-backend-initfail.so: init failed: initfail: no suitable device found");
}

/* The plugin registered "rollback" before failing: the entry must be gone. */
static void test_init_rollback(void)
{
    expect_load_failure(BAD("byol-backend-rollback.so"), BYOL_ERR_PLUGIN,
                        "init failed: rollback: second half of init failed");
}

static void test_not_shared_object(void)
{
    expect_load_failure(BAD("byol-backend-notelf.so"), BYOL_ERR_PLUGIN, "cannot load plugin ");
}

static void test_unknown_kind(void)
{
    expect_load_failure(BAD("byol-encoder-future.so"), BYOL_ERR_INVALID, "unknown plugin kind 99");
}

/* A user's encoder .so registers through the same loader, next to the host's own "layers". */
static void test_encoder_registers(void)
{
    struct byol_registry *reg = new_registry();
    const struct byol_registry_entry *layers =
        byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "layers");
    CU_ASSERT_PTR_NOT_NULL_FATAL(layers);
    CU_ASSERT_STRING_EQUAL(layers->path, "(host)");
    BYOL_CHECK_OK(byol_registry_load_file(reg, BAD("byol-encoder-tiny.so")));
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 1);
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "tiny");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->kind, BYOL_PLUGIN_ENCODER);
    CU_ASSERT(strstr(e->path, "/byol-encoder-tiny.so") != NULL);
    const struct byol_encoder_ops *ops = e->ops;
    CU_ASSERT_EQUAL(ops->struct_size, sizeof(struct byol_encoder_ops));
    CU_ASSERT_PTR_NOT_NULL(ops->build);
    CU_ASSERT_PTR_NOT_NULL(ops->init);
    CU_ASSERT_PTR_NULL(byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "tiny"));
    const void *by_name = NULL;
    BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_ENCODER, "tiny", &by_name));
    CU_ASSERT_PTR_EQUAL(by_name, ops);
    byol_registry_free(reg);
}

/* A name with no file of its own is looked for in every byol-<kind>-*.so of the path. */
static void test_require_scans_kind(void)
{
    struct byol_registry *reg = new_registry();
    const void *ops = NULL;
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, BYOL_TEST_PLUGIN_DIR));
    BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_ENCODER, "resnet34", &ops));
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "resnet34");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_EQUAL(e->ops, ops);
    CU_ASSERT(strstr(e->path, "/byol-encoder-resnet.so") != NULL);
    CU_ASSERT_PTR_NOT_NULL(byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "resnet50"));
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_ENCODER, "resnet99", &ops),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("plugin not found: byol-encoder-resnet99.so (searched: ");
    BYOL_ASSERT_MSG_HAS("; known: layers, resnet18, resnet34, resnet50)");
    CU_ASSERT_PTR_NULL(ops);
    byol_registry_free(reg);
}

static void test_duplicate(void)
{
    struct byol_registry *reg = new_registry();
    BYOL_CHECK_OK(byol_registry_load_file(reg, BAD("byol-backend-dup-a.so")));
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 1);
    CU_ASSERT_EQUAL(byol_registry_load_file(reg, BAD("byol-backend-dup-b.so")), BYOL_ERR_DUPLICATE);
    BYOL_ASSERT_MSG_HAS("byol-backend-dup-b.so: backend 'dup' is already registered by ");
    BYOL_ASSERT_MSG_HAS("byol-backend-dup-a.so");
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 1);
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "dup");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->version, "0.0.1");
    byol_registry_free(reg);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* An older plugin (smaller struct_size) loads; slots it lacks read as NULL in the host's copy,
 * even though the plugin's own struct has something there. */
static void test_good_old_plugin(void)
{
    struct byol_registry *reg = new_registry();
    BYOL_CHECK_OK(byol_registry_load_file(reg, BAD("byol-backend-good.so")));
    CU_ASSERT_EQUAL_FATAL(byol_registry_count(reg), n_builtin + 1);
    const struct byol_registry_entry *e = byol_registry_entry_at(reg, n_builtin);
    CU_ASSERT_EQUAL(e->kind, BYOL_PLUGIN_BACKEND);
    CU_ASSERT_STRING_EQUAL(e->name, "good");
    CU_ASSERT_STRING_EQUAL(e->version, "0.0.1");
    CU_ASSERT_EQUAL(e->abi_version, BYOL_ABI_VERSION);
    CU_ASSERT_EQUAL(e->path[0], '/');
    CU_ASSERT(ends_with(e->path, "/byol-backend-good.so"));
    const struct byol_backend_ops *ops = e->ops;
    CU_ASSERT_EQUAL(ops->struct_size, offsetof(struct byol_backend_ops, set_threads));
    CU_ASSERT_STRING_EQUAL(ops->description, "minimal plugin for the loader tests");
    CU_ASSERT_PTR_NULL(ops->set_threads);
    CU_ASSERT_EQUAL((uintptr_t)ops % 64, 0);
    /* The same file under another spelling is not loaded twice. */
    BYOL_CHECK_OK(byol_registry_load_file(reg, BYOL_TEST_BAD_PLUGIN_DIR "/./byol-backend-good.so"));
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 1);
    /* require: by registered name, and by path, give the same ops. */
    const void *by_name = NULL, *by_path = NULL;
    BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "good", &by_name));
    BYOL_CHECK_OK(
        byol_registry_require(reg, BYOL_PLUGIN_BACKEND, BAD("byol-backend-good.so"), &by_path));
    CU_ASSERT_PTR_EQUAL(by_name, ops);
    CU_ASSERT_PTR_EQUAL(by_path, ops);
    CU_ASSERT_PTR_NULL(byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "good"));
    CU_ASSERT_PTR_NULL(byol_registry_entry_at(reg, n_builtin + 1));
    byol_registry_free(reg);
}

static void test_not_found_by_path(void)
{
    struct byol_registry *reg = new_registry();
    const void *ops = (const void *)reg;
    CU_ASSERT_EQUAL(byol_registry_load_file(reg, "/nonexistent/byol-backend-x.so"),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("plugin not found: /nonexistent/byol-backend-x.so");
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "./no-such-backend.so", &ops),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("plugin not found: ./no-such-backend.so");
    CU_ASSERT_PTR_NULL(ops);
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin);
    byol_registry_free(reg);
}

static void test_not_found_by_name(void)
{
    struct byol_registry *reg = new_registry();
    const void *ops = NULL;
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "nosuch", &ops),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("plugin not found: byol-backend-nosuch.so (searched: no folders)");
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, BYOL_TEST_BAD_PLUGIN_DIR));
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, "/nonexistent-plugin-dir"));
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, BYOL_TEST_BAD_PLUGIN_DIR "/.")); /* same */
    CU_ASSERT_EQUAL_FATAL(byol_registry_search_dir_count(reg), 2);
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_AUGMENT, "nosuch", &ops),
                    BYOL_ERR_NOT_FOUND);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof want, "plugin not found: byol-augment-nosuch.so (searched: %s, %s)",
             byol_registry_search_dir(reg, 0), byol_registry_search_dir(reg, 1));
    CU_ASSERT_STRING_EQUAL(byol_last_error(), want);
    /* Found by name but broken: the loader's own message comes through. */
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "abi2", &ops), BYOL_ERR_ABI);
    BYOL_ASSERT_MSG_HAS("byol-backend-abi2.so");
    BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "good", &ops));
    CU_ASSERT_PTR_NOT_NULL(ops);
    CU_ASSERT_EQUAL(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "", &ops), BYOL_ERR_INVALID);
    byol_registry_free(reg);
}

/* The real reference backend, found by name in the build tree's plugin folder. */
static void test_blas_by_name(void)
{
    struct byol_registry *reg = byol_test_registry();
    const void *ops = NULL;
    BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_BACKEND, "blas", &ops));
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "blas");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_EQUAL(e->ops, ops);
    CU_ASSERT_EQUAL(e->kind, BYOL_PLUGIN_BACKEND);
    CU_ASSERT_STRING_EQUAL(e->name, "blas");
    CU_ASSERT_EQUAL(BYOL_ABI_VERSION_MAJOR(e->abi_version), BYOL_ABI_MAJOR);
    CU_ASSERT(ends_with(e->path, "/byol-backend-blas.so"));
    const struct byol_backend_ops *be = ops;
    CU_ASSERT_PTR_NOT_NULL(be->create);
    CU_ASSERT_PTR_NOT_NULL(be->destroy);
    byol_registry_free(reg);
}

struct collected {
    int count;
    char messages[16][1024];
};

static void collect_error(const char *message, void *user)
{
    struct collected *c = user;
    if (c->count < 16)
        snprintf(c->messages[c->count], sizeof c->messages[0], "%s", message);
    c->count++;
}

/* Every bad file is reported, in name order, and the good ones are still registered. */
static void test_load_all(void)
{
    static const char *const bad_order[] = {
        "byol-backend-abi2.so",    "byol-backend-dup-b.so",  "byol-backend-initfail.so",
        "byol-backend-noentry.so", "byol-backend-notelf.so", "byol-backend-rollback.so",
        "byol-backend-toobig.so",  "byol-encoder-future.so",
    };
    const int nbad = (int)(sizeof bad_order / sizeof bad_order[0]);
    struct byol_registry *reg = new_registry();
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, BYOL_TEST_BAD_PLUGIN_DIR));
    struct collected *c = calloc(1, sizeof *c);
    BYOL_CHECK_OK(byol_registry_load_all(reg, collect_error, c));
    CU_ASSERT_EQUAL(c->count, nbad);
    for (int i = 0; i < nbad && i < c->count; i++) {
        if (!strstr(c->messages[i], bad_order[i]))
            fprintf(stderr, "\n  error %d \"%s\" lacks %s\n", i, c->messages[i], bad_order[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(c->messages[i], bad_order[i]));
    }
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 3);
    CU_ASSERT_PTR_NOT_NULL(byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "dup"));
    CU_ASSERT_PTR_NOT_NULL(byol_registry_find(reg, BYOL_PLUGIN_ENCODER, "tiny"));
    CU_ASSERT_PTR_NOT_NULL(byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "good"));
    CU_ASSERT_PTR_NULL(byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "rollback"));
    /* A second pass: loaded files are skipped, broken ones reported again, nothing doubles. */
    BYOL_CHECK_OK(byol_registry_load_all(reg, NULL, NULL));
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 3);
    free(c);
    byol_registry_free(reg);
}

static void test_default_dirs(void)
{
    struct byol_registry *reg = new_registry();
    const char *old = getenv("BYOL_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("BYOL_PLUGIN_PATH", BYOL_TEST_BAD_PLUGIN_DIR "::/nonexistent-plugin-dir", 1);
    BYOL_CHECK_OK(byol_registry_add_default_dirs(reg));
    size_t n = byol_registry_search_dir_count(reg);
    CU_ASSERT_FATAL(n >= 3);
    char *bad = realpath(BYOL_TEST_BAD_PLUGIN_DIR, NULL);
    CU_ASSERT_STRING_EQUAL(byol_registry_search_dir(reg, 0), bad);
    CU_ASSERT_STRING_EQUAL(byol_registry_search_dir(reg, 1), "/nonexistent-plugin-dir");
    /* The test runs from <build>/bin, so <exe>/../lib/byol/plugins is the build tree's. */
    char *plugins = realpath(BYOL_TEST_PLUGIN_DIR, NULL);
    int found = 0;
    for (size_t i = 0; plugins && i < n; i++)
        found |= strcmp(byol_registry_search_dir(reg, i), plugins) == 0;
    CU_ASSERT(found);
    CU_ASSERT(ends_with(byol_registry_search_dir(reg, n - 1), "byol/plugins"));
    if (saved)
        setenv("BYOL_PLUGIN_PATH", saved, 1);
    else
        unsetenv("BYOL_PLUGIN_PATH");
    free(saved);
    free(bad);
    free(plugins);
    byol_registry_free(reg);
}

/* The host table: its header, aligned zeroed memory, and register_ops's own checks when the
 * host registers ops itself (no file). */
static void test_host_api(void)
{
    const struct byol_host_api *host = byol_host_api();
    CU_ASSERT_EQUAL(host->abi_version, BYOL_ABI_VERSION);
    CU_ASSERT_EQUAL(host->struct_size, sizeof(struct byol_host_api));
    unsigned char *p = host->alloc(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
    int zero = 1;
    for (int i = 0; i < 100; i++)
        zero &= p[i] == 0;
    CU_ASSERT(zero);
    host->free(p);
    host->free(NULL);
    CU_ASSERT_PTR_NULL(host->alloc(SIZE_MAX));
    CU_ASSERT_PTR_NULL(host->alloc(SIZE_MAX - 10));

    struct byol_registry *reg = new_registry();
    struct byol_backend_ops ops = {
        .abi_version = BYOL_ABI_VERSION,
        .struct_size = sizeof ops,
        .name = "",
        .version = "1",
    };
    CU_ASSERT_EQUAL(host->register_ops(reg, BYOL_PLUGIN_BACKEND, NULL), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("registered without a name");
    CU_ASSERT_EQUAL(host->register_ops(reg, (enum byol_plugin_kind)42, &ops), BYOL_ERR_INVALID);
    ops.name = "inline";
    ops.abi_version = (3u << 16) | 5u;
    CU_ASSERT_EQUAL(host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops), BYOL_ERR_ABI);
    BYOL_ASSERT_MSG_HAS("ABI 3.5, host has 1.1");
    ops.abi_version = BYOL_ABI_VERSION | 7u; /* a newer minor is fine */
    ops.struct_size = 8;
    CU_ASSERT_EQUAL(host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops), BYOL_ERR_ABI);
    BYOL_ASSERT_MSG_HAS("smaller than its");
    ops.struct_size = sizeof ops;
    BYOL_CHECK_OK(host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops));
    CU_ASSERT_EQUAL(host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_registry_count(reg), n_builtin + 1);
    /* The network slots an encoder builds with are the core's functions. */
    CU_ASSERT_PTR_EQUAL(host->net_add_layer, byol_net_add_layer);
    CU_ASSERT_PTR_EQUAL(host->net_add_alias, byol_net_add_alias);
    CU_ASSERT_PTR_EQUAL(host->net_add_child, byol_net_add_child);
    CU_ASSERT_PTR_EQUAL(host->net_param_count, byol_net_param_count);
    CU_ASSERT_PTR_EQUAL(host->net_param_at, byol_net_param_at);
    CU_ASSERT_PTR_EQUAL(host->net_find_param, byol_net_find_param);
    CU_ASSERT_STRING_EQUAL(byol_plugin_kind_str(BYOL_PLUGIN_BACKEND), "backend");
    CU_ASSERT_STRING_EQUAL(byol_plugin_kind_str(BYOL_PLUGIN_AUGMENT), "augment");
    CU_ASSERT_STRING_EQUAL(byol_plugin_kind_str((enum byol_plugin_kind)0), "unknown");
    byol_registry_free(reg);
    byol_registry_free(NULL);
}

/* A plugin built against the frozen ABI 1.0 plugin.h (bad-plugins/abi-1.0, before the verror
 * slot) loads, and every slot it knows sits where today's header puts it. */
#define HOST_OFFSET(slot) offsetof(struct byol_host_api, slot),

static void test_old_header_plugin(void)
{
    static const size_t now[] = {BYOL_TEST_HOST_SLOTS_1_0(HOST_OFFSET)};
    size_t n = sizeof now / sizeof now[0];
    struct byol_registry *reg = new_registry();
    BYOL_CHECK_OK(byol_registry_load_file(reg, BAD("abi-1.0/byol-backend-oldhost.so")));
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_BACKEND, "oldhost");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->version, "1.0");
    void *h = dlopen(BAD("abi-1.0/byol-backend-oldhost.so"), RTLD_NOW | RTLD_LOCAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const size_t *old = dlsym(h, "byol_test_old_host_layout");
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(old[i], now[i]);
    /* The old table ended where today's first appended slot begins. */
    CU_ASSERT_EQUAL(old[n], offsetof(struct byol_host_api, verror));
    CU_ASSERT(old[n] < sizeof(struct byol_host_api));
    dlclose(h);
    byol_registry_free(reg);
}

/* The host's va_list error slot, as a plugin's own wrapper calls it. */
static byol_status call_verror(const struct byol_host_api *host, const char *about, const char *fmt,
                               ...)
{
    va_list ap;
    va_start(ap, fmt);
    byol_status st = host->verror(BYOL_ERR_IO, about, fmt, ap);
    va_end(ap);
    return st;
}

static void test_host_verror(void)
{
    const struct byol_host_api *host = byol_host_api();
    CU_ASSERT_PTR_NOT_NULL_FATAL(host->verror);
    CU_ASSERT_EQUAL(call_verror(host, "backend 'x'", "slot %s is %d", "y", 3), BYOL_ERR_IO);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "backend 'x': slot y is 3");
    CU_ASSERT_EQUAL(call_verror(host, NULL, "plain %d", 4), BYOL_ERR_IO);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "plain 4");
    CU_ASSERT_EQUAL(call_verror(host, "", "empty"), BYOL_ERR_IO);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "empty");
    /* The previous message as an argument, to prefix context onto it. */
    byol_error(BYOL_ERR_IO, "inner");
    call_verror(host, "outer", "%s (again)", byol_last_error());
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "outer: inner (again)");
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"no entry point", test_no_entry_point, 0},
        {"ABI major mismatch", test_abi_major, 0},
        {"ops struct too big", test_struct_too_big, 0},
        {"init fails", test_init_fails, 0},
        {"init fails after registering", test_init_rollback, 0},
        {"not a shared object", test_not_shared_object, 0},
        {"unknown kind", test_unknown_kind, 0},
        {"encoder registers", test_encoder_registers, 0},
        {"require scans a kind's files", test_require_scans_kind, 0},
        {"duplicate name", test_duplicate, 0},
        {"good old plugin", test_good_old_plugin, 0},
        {"not found by path", test_not_found_by_path, 0},
        {"not found by name", test_not_found_by_name, 0},
        {"blas by name", test_blas_by_name, 0},
        {"load all", test_load_all, 0},
        {"default dirs", test_default_dirs, 0},
        {"host api", test_host_api, 0},
        {"old-header plugin loads", test_old_header_plugin, 0},
        {"host verror", test_host_verror, 0},
        {NULL, NULL, 0},
    };
    return byol_test_main(argc, argv, "loader", cases);
}
