/* byolctl: the command line of byol-c. One function per subcommand; this is the only place
 * in the project that exits the process, always with a one-line message. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/augment.h"
#include "byol/bench.h"
#include "byol/byol.h"
#include "byol/dataset.h"
#include "byol/dist.h"
#include "byol/eval.h"
#include "byol/export.h"
#include "byol/learner.h"
#include "byol/plot.h"
#include "byol/trainer.h"
#include "ctl_fault.h"

/* Exit statuses: 0 ok, 1 a failure reported on stderr, 2 bad usage. */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

#define CTL_MAX_DIRS 64
#define CTL_MAX_LIST 64

/* What every message starts with: "byolctl: ", and in a run of several processes
 * "byolctl: rank R: ", so the process that failed is named. */
static char ctl_tag[48] = "byolctl: ";

/* Settings the top level of a config may have: the DESIGN contract. A typo fails early. */
static const char *const ctl_top_keys[] = {
    "seed",      "plugin_path", "plugins", "backend", "model",   "augment_fn", "augment_fn2",
    "multicrop", "data",        "train",   "eval",    "trainer", "metrics",    NULL,
};

struct ctl_args {
    const char *cfg;                       /* the config file, if the command takes one */
    const char *plugin_dirs[CTL_MAX_DIRS]; /* --plugin-path, in order */
    int ndirs;
    const char *sets[CTL_MAX_LIST]; /* --set KEY.PATH=VALUE, applied in order */
    int nsets;
    int resume; /* run --resume */
};

/* Everything check and run set up from a config. */
struct ctl_session {
    struct byol_config *cfg;
    int64_t seed;
    struct byol_registry *reg;
    struct byol_backend *backend;
};

static void ctl_usage(FILE *f)
{
    fprintf(f,
            "usage: byolctl <command> [options]\n"
            "\n"
            "commands:\n"
            "  plugins [--plugin-path DIR]...  list every plugin found: kind, name, version,\n"
            "                                  ABI, path (broken files are warned about)\n"
            "  check CFG [--plugin-path DIR]   validate a config and print what it resolves to\n"
            "  run CFG [--resume]              train as the config says; --resume continues from\n"
            "                                  train.checkpoint_dir/latest.safetensors\n"
            "  bench CFG [--no-augment | --data-only] [--steps N] [--warmup N] [--profile]\n"
            "                                  time training steps on synthetic batches: img/s,\n"
            "                                  ms per step, GFLOP/s, peak memory\n"
            "  export CKPT OUT.safetensors [--drop LAYER]\n"
            "                                  the online encoder of a checkpoint with\n"
            "                                  torchvision names (--drop fc: without fc.*)\n"
            "  export CKPT OUT.onnx [--with-projection] [--plugin-path DIR]...\n"
            "                                  the same as an ONNX model (opset 17): images ->\n"
            "                                  embedding (and projection); --format onnx|\n"
            "                                  safetensors overrides the extension\n"
            "  embed CFG --out FILE.npy [--projection FILE.npy] [--labels FILE.npy]\n"
            "      [--split train|test] [--checkpoint FILE|none]\n"
            "                                  the representation (and projection) of every image\n"
            "                                  of a split, as float32 .npy (N x D)\n"
            "  plot METRICS OUT.png            draw a metrics file's curves (loss, lr, kNN,\n"
            "                                  collapse statistic) as a PNG\n"
            "  eval CFG [--checkpoint FILE|none]\n"
            "                                  kNN and linear-probe top-1 accuracy on the eval\n"
            "                                  group's test split\n"
            "  version                         print the version and the plugin ABI\n"
            "\n"
            "Commands that take a CFG also take --set KEY.PATH=VALUE (repeatable), e.g.\n"
            "--set train.steps=20 --set backend.name=blas.\n"
            "\n"
            "run and check also run as several processes of one data-parallel run (MPI):\n"
            "mpirun -np 2 byolctl run CFG; train.batch_size is then the global batch.\n"
            "\n"
            "Plugins are searched in: --plugin-path, the config's plugin_path, $BYOL_PLUGIN_PATH\n"
            "(colon-separated), <exe>/../lib/byol/plugins, and the install folder. Relative\n"
            "paths in a config (plugin_path, plugins, backend.name) are relative to its folder.\n");
}

static int ctl_fail(void)
{
    fprintf(stderr, "%s%s\n", ctl_tag, byol_last_error());
    return CTL_FAIL;
}

/* Options shared by the subcommands; `want_cfg` says whether one positional CFG is required. */
/* The value of the option argv[*i] (then *i is its index), or NULL after a usage message when
 * it has none or it was already given `max` times (`count`). */
static const char *ctl_option_value(int argc, char **argv, int *i, int count, int max)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s%s needs a value (see byolctl --help)\n", ctl_tag, argv[*i]);
        return NULL;
    }
    if (count >= max) {
        fprintf(stderr, "%s%s: more than %d of them\n", ctl_tag, argv[*i], max);
        return NULL;
    }
    return argv[++*i];
}

static int ctl_parse_args(int argc, char **argv, int want_cfg, struct ctl_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *dir = NULL;
        if (strcmp(arg, "--plugin-path") == 0) {
            if (!(dir = ctl_option_value(argc, argv, &i, a->ndirs, CTL_MAX_DIRS)))
                return CTL_USAGE;
        } else if (strncmp(arg, "--plugin-path=", 14) == 0) {
            dir = arg + 14;
        } else if (strcmp(arg, "--resume") == 0 && want_cfg) {
            a->resume = 1;
            continue;
        } else if (strcmp(arg, "--set") == 0 && want_cfg) {
            const char *set = ctl_option_value(argc, argv, &i, a->nsets, CTL_MAX_LIST);
            if (!set)
                return CTL_USAGE;
            a->sets[a->nsets++] = set;
            continue;
        }
        if (dir && a->ndirs < CTL_MAX_DIRS) {
            a->plugin_dirs[a->ndirs++] = dir;
        } else if (dir || arg[0] == '-' || !want_cfg || a->cfg) {
            fprintf(stderr, "%sunexpected argument '%s' (see byolctl --help)\n", ctl_tag, arg);
            return CTL_USAGE;
        } else {
            a->cfg = arg;
        }
    }
    if (want_cfg && !a->cfg) {
        fprintf(stderr, "%smissing config file (see byolctl --help)\n", ctl_tag);
        return CTL_USAGE;
    }
    return CTL_OK;
}

static int ctl_is_path(const char *name)
{
    size_t n = strlen(name);
    size_t sn = strlen(BYOL_PLUGIN_SUFFIX);
    return strchr(name, '/') || (n > sn && strcmp(name + n - sn, BYOL_PLUGIN_SUFFIX) == 0);
}

/* Search order: --plugin-path, the config's plugin_path, then the standard folders. */
/* A folder the user named for plugins must be one: a typo would otherwise only show as a
 * plugin "not found" later, or not at all. NULL when it is, else why not. */
static const char *ctl_not_a_folder(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return strerror(errno);
    return S_ISDIR(sb.st_mode) ? NULL : "not a folder";
}

static byol_status ctl_search_path(struct ctl_session *s, const struct ctl_args *a)
{
    const struct byol_settings *root = byol_config_root(s->cfg);
    const char *dirs[CTL_MAX_LIST], *why;
    int n = 0;
    byol_status st = BYOL_OK;
    for (int i = 0; i < a->ndirs && st == BYOL_OK; i++)
        st = (why = ctl_not_a_folder(a->plugin_dirs[i]))
                 ? byol_error(BYOL_ERR_NOT_FOUND, "--plugin-path %s: %s", a->plugin_dirs[i], why)
                 : byol_registry_add_search_dir(s->reg, a->plugin_dirs[i]);
    if (st == BYOL_OK && s->cfg)
        st = byol_settings_strings(root, "plugin_path", dirs, CTL_MAX_LIST, &n);
    for (int i = 0; i < n && st == BYOL_OK; i++) {
        char dir[PATH_MAX];
        byol_config_relative(a->cfg, dirs[i], dir, sizeof dir);
        st = (why = ctl_not_a_folder(dir))
                 ? byol_settings_error(
                       byol_settings_elem(byol_settings_child(root, "plugin_path"), i),
                       BYOL_ERR_NOT_FOUND, "%s: %s", dir, why)
                 : byol_registry_add_search_dir(s->reg, dir);
    }
    return st == BYOL_OK ? byol_registry_add_default_dirs(s->reg) : st;
}

/* The config's `plugins = [...]`: extra files, each must load. */
static byol_status ctl_load_plugins(struct ctl_session *s, const char *cfg_path)
{
    const char *files[CTL_MAX_LIST];
    int n = 0;
    byol_status st =
        byol_settings_strings(byol_config_root(s->cfg), "plugins", files, CTL_MAX_LIST, &n);
    for (int i = 0; i < n && st == BYOL_OK; i++) {
        char path[PATH_MAX];
        if (!files[i][0])
            return byol_settings_error(
                byol_settings_elem(byol_settings_child(byol_config_root(s->cfg), "plugins"), i),
                BYOL_ERR_INVALID, "an empty file name");
        byol_config_relative(cfg_path, files[i], path, sizeof path);
        st = byol_registry_load_file(s->reg, path);
        if (st != BYOL_OK)
            st = byol_error(st, "%s: plugins[%d]: %s", cfg_path, i, byol_last_error());
    }
    return st;
}

/* Whether a message already says where in a config it comes from ("FILE:LINE: ..."). */
static int ctl_has_location(const char *msg)
{
    if (strstr(msg, " (from --set)") || strstr(msg, " (not set): "))
        return 1;
    const char *colon = strchr(msg, ':');
    if (!colon || colon[1] < '0' || colon[1] > '9')
        return 0;
    colon++;
    while (*colon >= '0' && *colon <= '9')
        colon++;
    return *colon == ':';
}

/* A failure about a config: the message as is when it says where, else after the file. */
static int ctl_fail_at(const char *cfg_path)
{
    const char *msg = byol_last_error();
    if (ctl_has_location(msg))
        fprintf(stderr, "%s%s\n", ctl_tag, msg);
    else
        fprintf(stderr, "%s%s: %s\n", ctl_tag, cfg_path, msg);
    return CTL_FAIL;
}

/* The backend an unset backend.name means: onednn, the faster one on every network and ISA
 * level measured (README, Benchmarks), where its plugin is installed; else blas. */
static const char *ctl_default_backend(struct ctl_session *s)
{
    const void *ops;
    if (byol_registry_require(s->reg, BYOL_PLUGIN_BACKEND, "onednn", &ops) == BYOL_OK)
        return "onednn";
    byol_clear_error();
    return "blas";
}

/* Create the backend named by backend.name (default: ctl_default_backend) with the backend
 * group as its settings: the backend validates its own keys there. */
static byol_status ctl_create_backend(struct ctl_session *s, const char *cfg_path)
{
    const struct byol_settings *group = byol_settings_child(byol_config_root(s->cfg), "backend");
    const char *name;
    int unset = !group || !byol_settings_child(group, "name");
    byol_status st =
        byol_settings_string(group, "name", unset ? ctl_default_backend(s) : "blas", &name);
    if (st == BYOL_OK && !name[0])
        st = byol_settings_error(byol_settings_child(group, "name"), BYOL_ERR_INVALID,
                                 "must not be empty (blas, onednn or a plugin file)");
    if (st != BYOL_OK)
        return st;
    char path[PATH_MAX];
    if (ctl_is_path(name)) {
        byol_config_relative(cfg_path, name, path, sizeof path);
        name = path;
    }
    /* Find it first, so that "not found" can say which setting asked for it. */
    const void *ops;
    st = byol_registry_require(s->reg, BYOL_PLUGIN_BACKEND, name, &ops);
    if (st != BYOL_OK)
        return byol_error(st, "%s: backend.name: %s", cfg_path, byol_last_error());
    st = byol_backend_create(s->reg, name, group, &s->backend);
    if (st != BYOL_OK && !ctl_has_location(byol_last_error()))
        st = byol_error(st, "%s: backend: %s", cfg_path, byol_last_error());
    return st;
}

static void ctl_session_free(struct ctl_session *s)
{
    byol_backend_free(s->backend);
    byol_registry_free(s->reg);
    byol_config_free(s->cfg);
}

/* Load the config, its plugins and its backend; on failure the message is left for ctl_fail. */
static byol_status ctl_session_open(struct ctl_session *s, const struct ctl_args *a)
{
    memset(s, 0, sizeof *s);
    byol_status st = byol_config_load(a->cfg, &s->cfg);
    for (int i = 0; i < a->nsets && st == BYOL_OK; i++)
        st = byol_config_set(s->cfg, a->sets[i]);
    if (st == BYOL_OK)
        st = byol_settings_check_keys(byol_config_root(s->cfg), ctl_top_keys);
    if (st == BYOL_OK)
        st = byol_settings_int(byol_config_root(s->cfg), "seed", 0, &s->seed);
    if (st == BYOL_OK)
        st = byol_registry_create(&s->reg);
    if (st == BYOL_OK)
        st = ctl_search_path(s, a);
    if (st == BYOL_OK)
        st = ctl_load_plugins(s, a->cfg);
    if (st == BYOL_OK)
        st = ctl_create_backend(s, a->cfg);
    if (st != BYOL_OK)
        ctl_session_free(s);
    return st;
}

static void ctl_print_search_path(const struct byol_registry *reg)
{
    size_t n = byol_registry_search_dir_count(reg);
    for (size_t i = 0; i < n; i++)
        printf("# %-12s%s\n", i ? "" : "plugin path", byol_registry_search_dir(reg, i));
}

/* As libconfig comments, so that check's whole output reads back as a config. */
static void ctl_print_summary(const struct ctl_session *s, const struct ctl_args *a)
{
    const char *name = byol_backend_name(s->backend);
    const struct byol_registry_entry *e = byol_registry_find(s->reg, BYOL_PLUGIN_BACKEND, name);
    printf("# %-12s%s\n", "config", a->cfg);
    printf("# %-12s%lld\n", "seed", (long long)s->seed);
    if (e)
        printf("# %-12s%s %s (ABI %u.%u) %s\n", "backend", e->name, e->version,
               BYOL_ABI_VERSION_MAJOR(e->abi_version), BYOL_ABI_VERSION_MINOR(e->abi_version),
               e->path);
    else
        printf("# %-12s%s\n", "backend", name);
    printf("# %-12s%zu registered\n", "plugins", byol_registry_count(s->reg));
    ctl_print_search_path(s->reg);
}

/* check's output: every setting the run reads, as a config (defaults marked), its digest
 * (what a checkpoint must match for --resume), then the summary. */
static int ctl_print_resolved(const struct ctl_session *s, const struct ctl_args *a)
{
    char *text = NULL, *digest = NULL, hex[17];
    if (byol_config_resolved_text(s->cfg, &text) != BYOL_OK ||
        byol_config_digest(s->cfg, &digest, hex) != BYOL_OK) {
        free(text);
        return ctl_fail();
    }
    printf("# %s resolves to (\"# default\": not in the file):\n%s", a->cfg, text);
    printf("# %-12s%s\n", "digest", hex);
    ctl_print_summary(s, a);
    free(text);
    free(digest);
    return CTL_OK;
}

/* ---- the files a command reads and writes -------------------------------------------- */

#define CTL_MAX_FILES 256
/* Room kept for a command's outputs, which are added after its inputs: inputs beyond the rest
 * (a plugin folder with hundreds of files) are left out, never an output. */
#define CTL_MAX_OUTPUTS 32

/* What a command reads and writes, for byol_files_check, with copies of the paths. */
struct ctl_files {
    struct byol_file_use use[CTL_MAX_FILES];
    char path[CTL_MAX_FILES][PATH_MAX];
    size_t n;
};

/* The input files a config may name, relative to its folder. */
static const char *const ctl_config_inputs[] = {
    "data.images",           "data.labels",      "eval.train_images",
    "eval.train_labels",     "eval.test_images", "eval.test_labels",
    "model.encoder.weights", "train.init_from",  NULL,
};

static void ctl_add_file(struct ctl_files *f, const char *what, const char *path, int output)
{
    if (!path || f->n == (output ? CTL_MAX_FILES : CTL_MAX_FILES - CTL_MAX_OUTPUTS))
        return;
    snprintf(f->path[f->n], PATH_MAX, "%s", path);
    f->use[f->n] = (struct byol_file_use){what, f->path[f->n], output};
    f->n++;
}

/* The paths that the setting `name` ("model.encoder.weights") holds: one string, or a list
 * (cifar's data.images). Unset, or of another type (its reader says so later), gives none. */
static int ctl_setting_paths(const struct byol_settings *root, const char *name, const char **paths)
{
    const char *dot = strrchr(name, '.');
    char group[64];
    int n = 1;
    snprintf(group, sizeof group, "%.*s", (int)(dot - name), name);
    const struct byol_settings *g = byol_settings_child(root, group);
    if (!byol_settings_has(g, dot + 1))
        return 0;
    byol_status st = byol_settings_is_list(byol_settings_child(g, dot + 1))
                         ? byol_settings_strings(g, dot + 1, paths, CTL_MAX_LIST, &n)
                         : byol_settings_string(g, dot + 1, NULL, paths);
    if (st == BYOL_OK)
        return n;
    byol_clear_error();
    return 0;
}

/* train.checkpoint_dir/<name> (relative to the working folder, as the run writes it). */
static void ctl_add_checkpoint(struct ctl_files *f, const struct byol_settings *root,
                               const char *name, int output)
{
    const char *dir;
    char path[PATH_MAX];
    if (ctl_setting_paths(root, "train.checkpoint_dir", &dir) == 0)
        dir = "checkpoints";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ctl_add_file(f, "train.checkpoint_dir", path, output);
}

/* Every plugin file in folder `dir` (byol-*.so): a plugin named in the config without a path
 * may be loaded from any of them once the run builds what uses it. */
static void ctl_add_plugin_dir(struct ctl_files *f, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t pn = strlen(BYOL_PLUGIN_PREFIX), sn = strlen(BYOL_PLUGIN_SUFFIX);
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char path[PATH_MAX];
        if (n <= pn + sn || strncmp(e->d_name, BYOL_PLUGIN_PREFIX, pn) != 0 ||
            strcmp(e->d_name + n - sn, BYOL_PLUGIN_SUFFIX) != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            ctl_add_file(f, "the plugin", path, 0);
    }
    if (d)
        closedir(d);
}

/* What a session read besides the top config, as inputs: the files @include pulled in, the
 * plugin files loaded so far (the config's `plugins`, the backend) and those the search path
 * holds. */
static void ctl_add_session_inputs(struct ctl_files *f, const struct ctl_session *s)
{
    const char *file;
    for (size_t i = 1; (file = byol_config_file(s->cfg, i)) != NULL; i++)
        ctl_add_file(f, "the included config", file, 0);
    for (size_t i = 0; i < byol_registry_count(s->reg); i++) {
        file = byol_registry_entry_at(s->reg, i)->path;
        if (file && strcmp(file, "(host)") != 0)
            ctl_add_file(f, "the plugin", file, 0);
    }
    for (size_t i = 0; i < byol_registry_search_dir_count(s->reg); i++)
        ctl_add_plugin_dir(f, byol_registry_search_dir(s->reg, i));
}

/* train.checkpoint_dir names a folder: "" would be "/" in train.checkpoint_dir/latest and
 * fail only at the first checkpoint, with an unclear message. */
static byol_status ctl_check_checkpoint_dir(const struct byol_settings *root)
{
    const char *dir;
    if (ctl_setting_paths(root, "train.checkpoint_dir", &dir) == 1 && !dir[0])
        return byol_settings_error(
            byol_settings_child(byol_settings_child(root, "train"), "checkpoint_dir"),
            BYOL_ERR_INVALID, "must not be empty (a folder; \".\" for the working folder)");
    return BYOL_OK;
}

/* Into *out: the config file, the files it includes, the plugin files
 * (ctl_add_session_inputs) and the input files it names; train.init_from unless resuming
 * (which reads train.checkpoint_dir/latest instead). */
static byol_status ctl_files_of_config(const struct ctl_args *a, const struct ctl_session *s,
                                       struct ctl_files **out)
{
    const struct byol_settings *root = byol_config_root(s->cfg);
    byol_status st = ctl_check_checkpoint_dir(root);
    struct ctl_files *f = st == BYOL_OK ? calloc(1, sizeof *f) : NULL;
    *out = f;
    if (st != BYOL_OK || !f)
        return st != BYOL_OK ? st : byol_error(BYOL_ERR_NOMEM, "out of memory");
    ctl_add_file(f, "the config", a->cfg, 0);
    ctl_add_session_inputs(f, s);
    for (const char *const *name = ctl_config_inputs; *name; name++) {
        const char *paths[CTL_MAX_LIST];
        int n = a->resume && strcmp(*name, "train.init_from") == 0
                    ? 0
                    : ctl_setting_paths(root, *name, paths);
        for (int i = 0; i < n; i++) {
            char path[PATH_MAX];
            byol_config_relative(a->cfg, paths[i], path, sizeof path);
            ctl_add_file(f, *name, path, 0);
        }
    }
    return BYOL_OK;
}

/* The name of `path` when it is named like a checkpoint a run writes (step-<N>.safetensors),
 * else NULL. */
static const char *ctl_step_file_name(const char *path)
{
    const char *base = strrchr(path, '/');
    char *end = NULL;
    base = base ? base + 1 : path;
    if (strncmp(base, "step-", 5) != 0 || base[5] < '0' || base[5] > '9')
        return NULL;
    strtoll(base + 5, &end, 10);
    return strcmp(end, ".safetensors") == 0 ? base : NULL;
}

/* run: its outputs are metrics.file and the checkpoints, latest and step-<N> (of these, those
 * an input is named like); the run itself probes where they go. */
static byol_status ctl_check_run_files(const struct ctl_args *a, const struct ctl_session *s)
{
    const struct byol_settings *root = byol_config_root(s->cfg);
    struct ctl_files *f;
    const char *metrics;
    byol_status st = ctl_files_of_config(a, s, &f);
    if (st != BYOL_OK)
        return st;
    if (ctl_setting_paths(root, "metrics.file", &metrics) == 1)
        ctl_add_file(f, "metrics.file", metrics, 1);
    for (size_t i = 0, inputs = f->n; i < inputs; i++)
        if (ctl_step_file_name(f->path[i]))
            ctl_add_checkpoint(f, root, ctl_step_file_name(f->path[i]), 1);
    ctl_add_checkpoint(f, root, "latest.safetensors", 1);
    st = byol_files_check(f->use, f->n, 0);
    free(f);
    return st;
}

/* ---- subcommands --------------------------------------------------------------------- */

static void ctl_warn(const char *message, void *user)
{
    (void)user;
    fprintf(stderr, "%swarning: %s\n", ctl_tag, message);
}

static int ctl_column_width(const struct byol_registry *reg, int which, int min)
{
    int w = min;
    for (size_t i = 0; i < byol_registry_count(reg); i++) {
        const struct byol_registry_entry *e = byol_registry_entry_at(reg, i);
        int n = (int)strlen(which == 0 ? e->name : e->version);
        w = n > w ? n : w;
    }
    return w;
}

static int cmd_plugins(int argc, char **argv)
{
    struct ctl_args a;
    int rc = ctl_parse_args(argc, argv, 0, &a);
    if (rc != CTL_OK)
        return rc;
    struct ctl_session s = {0};
    byol_status st = byol_registry_create(&s.reg);
    if (st == BYOL_OK)
        st = ctl_search_path(&s, &a);
    if (st == BYOL_OK)
        st = byol_registry_load_all(s.reg, ctl_warn, NULL);
    if (st != BYOL_OK) {
        byol_registry_free(s.reg);
        return ctl_fail();
    }
    int wn = ctl_column_width(s.reg, 0, 12), wv = ctl_column_width(s.reg, 1, 7);
    printf("%-8s %-*s %-*s %-5s %s\n", "KIND", wn, "NAME", wv, "VERSION", "ABI", "PATH");
    /* random_apply is no plugin's op: the core builds it, since its nested list needs the
     * registry. Listed, as augment errors list it among the known ops. */
    char core_abi[24];
    snprintf(core_abi, sizeof core_abi, "%d.%d", BYOL_ABI_MAJOR, BYOL_ABI_MINOR);
    printf("%-8s %-*s %-*s %-5s %s\n", "augment", wn, "random_apply", wv, BYOL_VERSION_STRING,
           core_abi, "(host)");
    for (size_t i = 0; i < byol_registry_count(s.reg); i++) {
        const struct byol_registry_entry *e = byol_registry_entry_at(s.reg, i);
        char abi[24];
        snprintf(abi, sizeof abi, "%u.%u", BYOL_ABI_VERSION_MAJOR(e->abi_version),
                 BYOL_ABI_VERSION_MINOR(e->abi_version));
        printf("%-8s %-*s %-*s %-5s %s\n", byol_plugin_kind_str(e->kind), wn, e->name, wv,
               e->version, abi, e->path);
    }
    byol_registry_free(s.reg);
    return CTL_OK;
}

static int cmd_check(int argc, char **argv)
{
    struct ctl_args a;
    struct ctl_session s;
    int rc = ctl_parse_args(argc, argv, 1, &a);
    if (rc != CTL_OK)
        return rc;
    if (ctl_session_open(&s, &a) != BYOL_OK)
        return ctl_fail();
    struct byol_train_options o = {.root = byol_config_root(s.cfg)};
    char dir[PATH_MAX];
    byol_config_relative(a.cfg, ".", dir, sizeof dir);
    o.config_dir = dir;
    if (byol_train_check(s.backend, s.reg, &o) != BYOL_OK)
        rc = ctl_fail_at(a.cfg);
    else if (byol_dist_rank() == 0)
        rc = ctl_print_resolved(&s, &a);
    ctl_session_free(&s);
    return rc;
}

/* The accuracies of an evaluation (byolctl eval, and the end of a run with an eval group). */
static void ctl_print_eval(const struct byol_train_eval_report *e, void *user)
{
    const struct byol_eval_result *r = e->detail;
    (void)user;
    printf("kNN (k=%d) top-1: %.2f%%  linear probe top-1: %.2f%%  (%zu train / %zu test, %d-d "
           "features, %.1f s)\n",
           e->knn_k, 100 * e->knn_top1, 100 * e->linear_top1, e->n_train, e->n_test, e->dim,
           e->seconds);
    if (r && r->baseline_dim > 0) /* eval.baseline */
        printf("raw pixels (%d-d):  kNN top-1: %.2f%%  linear probe top-1: %.2f%%  (%s%.1f s)\n",
               r->baseline_dim, 100 * r->baseline_knn_top1, 100 * r->baseline_linear_top1,
               r->baseline_cached ? "cached, " : "", r->baseline_seconds);
    if (r)
        printf("time: features %.1f s, kNN %.1f s, linear probe %.1f s (%d L-BFGS iterations)\n",
               r->embed_seconds, r->knn_seconds, r->probe_seconds, r->probe_iterations);
    fflush(stdout);
}

/* The evaluation's progress line on a terminal: whether it awaits its end, and the longest
 * text drawn on it; elsewhere, the last tenth of the phase logged. */
struct ctl_eval_line {
    int open, width, tenth;
};

/* Where a run is: whether stderr is a terminal, the last step reported, the evaluation's line. */
struct ctl_progress {
    int tty;
    int64_t step, total;
    struct ctl_eval_line eval;
};

/* What an evaluation is doing, as one line of text. */
static void ctl_eval_text(const struct byol_eval_progress *e, char *buf, size_t n)
{
    const char *on = e->baseline ? "raw pixels" : "features";
    switch (e->phase) {
    case BYOL_EVAL_PHASE_FEATURES:
    case BYOL_EVAL_PHASE_PIXELS:
        snprintf(buf, n, "eval: %s of the %s split %zu/%zu images  %.1f s",
                 e->phase == BYOL_EVAL_PHASE_PIXELS ? "raw pixels" : "features",
                 e->split == 1 ? "test" : "train", e->done, e->total, e->seconds);
        return;
    case BYOL_EVAL_PHASE_KNN:
        snprintf(buf, n, "eval: kNN on the %s %zu/%zu test images  %.1f s", on, e->done, e->total,
                 e->seconds);
        return;
    case BYOL_EVAL_PHASE_PROBE: {
        char loss[32] = ""; /* none yet at the start */
        if (!isnan(e->loss))
            snprintf(loss, sizeof loss, " loss %.4f", e->loss);
        snprintf(buf, n, "eval: linear probe on the %s iteration %zu/%zu%s  %.1f s", on, e->done,
                 e->total, loss, e->seconds);
        return;
    }
    }
    snprintf(buf, n, "eval: %zu/%zu", e->done, e->total);
}

/* The evaluation's progress: on a terminal, one line per phase on stderr, redrawn in place and
 * ended with the phase; otherwise a line on stdout (where the steps go) at each tenth of a
 * phase of images or probe iterations and at the end of every phase. */
static void ctl_eval_progress(const struct byol_eval_progress *e, void *user)
{
    struct ctl_progress *p = user;
    struct ctl_eval_line *L = &p->eval;
    char text[192];
    ctl_eval_text(e, text, sizeof text);
    if (p->tty) {
        int len = (int)strlen(text);
        L->width = len > L->width ? len : L->width;
        fprintf(stderr, "\r%-*s", L->width, text);
        L->open = !e->last;
        if (e->last) {
            fputc('\n', stderr);
            L->width = 0;
        }
        fflush(stderr);
        return;
    }
    int tenth = e->total ? (int)(10 * e->done / e->total) : 10;
    if (e->done == 0)
        L->tenth = 0;
    if (e->last || (e->phase != BYOL_EVAL_PHASE_KNN && tenth > L->tenth && tenth < 10)) {
        printf("%s\n", text);
        fflush(stdout);
        L->tenth = tenth;
    }
}

/* After a failure: end a terminal line the evaluation left open, so the message has its own. */
static void ctl_eval_line_end(struct ctl_progress *p)
{
    if (p->eval.open)
        fputc('\n', stderr);
    p->eval.open = 0;
}

/* Progress: a bar redrawn in place on a terminal, a log line every 10 steps otherwise. */
static void ctl_progress(const struct byol_train_report *r, void *user)
{
    struct ctl_progress *p = user;
    int tty = p->tty;
    p->step = r->step;
    p->total = r->total_steps;
    int64_t done = r->step - r->start_step; /* steps of this run */
    double eta = done > 0 ? r->elapsed_s / (double)done * (double)(r->total_steps - r->step) : 0;
    if (tty) {
        int width = 24, fill = (int)(width * r->step / (r->total_steps ? r->total_steps : 1));
        fprintf(stderr,
                "\r[%.*s%*s] %lld/%lld loss %.4f  proj std %.3g  %.1f img/s  lr %.3g  tau %.4f  "
                "ETA %.0fs ",
                fill, "########################", width - fill, "", (long long)r->step,
                (long long)r->total_steps, r->loss, r->proj_std, r->images_per_s, r->lr, r->tau,
                eta);
        if (r->step == r->total_steps)
            fputc('\n', stderr);
    } else if (r->step % 10 == 0 || done == 1 || r->step == r->total_steps) {
        printf("step %lld/%lld loss %.4f proj_std %.3g img/s %.1f lr %.3g tau %.4f eta %.0fs\n",
               (long long)r->step, (long long)r->total_steps, r->loss, r->proj_std, r->images_per_s,
               r->lr, r->tau, eta);
        fflush(stdout);
    }
    if (r->checkpoint) /* on a terminal too: where the run's state went */
        printf("%scheckpoint %s\n", tty && r->step != r->total_steps ? "\n" : "", r->checkpoint);
    if (!isnan(r->knn_top1)) { /* the kNN monitor (eval.every) */
        printf("%sstep %lld kNN top-1: %.2f%%", tty ? "\n" : "", (long long)r->step,
               100 * r->knn_top1);
        if (!isnan(r->eff_rank))
            printf("  effective rank %.1f", r->eff_rank);
        printf("\n");
        fflush(stdout);
    }
    if (r->checkpoint_error) {
        fprintf(stderr, "%swarning: checkpoint after step %lld not written: %s\n", tty ? "\n" : "",
                (long long)r->step, r->checkpoint_error);
        fflush(stderr);
    }
}

static volatile sig_atomic_t ctl_stopping;

/* The first SIGINT/SIGTERM asks the trainer to finish its step and write a checkpoint; the
 * handler then resets itself, so a second one ends the process at once (checkpoints are
 * written atomically, so that corrupts nothing). */
static void ctl_on_signal(int sig)
{
    static const char msg[] = "\nbyolctl: stopping after this step (again to quit now)\n";
    (void)sig;
    ctl_stopping = 1;
    byol_train_request_stop();
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
}

static void ctl_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ctl_on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int cmd_run(int argc, char **argv)
{
    struct ctl_args a;
    struct ctl_session s;
    int rc = ctl_parse_args(argc, argv, 1, &a);
    if (rc != CTL_OK)
        return rc;
    if (ctl_session_open(&s, &a) != BYOL_OK)
        return ctl_fail();
    if (ctl_check_run_files(&a, &s) != BYOL_OK) {
        rc = ctl_fail_at(a.cfg);
        ctl_session_free(&s);
        return rc;
    }
    char dir[PATH_MAX];
    byol_config_relative(a.cfg, ".", dir, sizeof dir);
    struct ctl_progress p = {.tty = isatty(STDERR_FILENO)};
    struct byol_train_options o = {.root = byol_config_root(s.cfg),
                                   .config_dir = dir,
                                   .progress = ctl_progress,
                                   .user = &p,
                                   .resume = a.resume,
                                   .evaluated = ctl_print_eval,
                                   .eval_progress = ctl_eval_progress};
    ctl_catch_stop_signals();
    byol_status st = byol_train_run(s.backend, s.reg, &o);
    if (st != BYOL_OK) {
        ctl_eval_line_end(&p);
        rc = ctl_fail_at(a.cfg);
    } else if (byol_dist_rank() == 0) {
        /* A stop asked of any process stops them all: rank 0 may not have seen the signal,
         * but its last report tells. */
        int stopped = ctl_stopping || (p.step > 0 && p.step < p.total);
        printf(stopped ? "stopped: checkpoint written; continue with --resume\n"
                       : "training complete\n");
        fflush(stdout);
    }
    ctl_session_free(&s);
    return rc;
}

/* bench's own options, taken out of argv before the shared ones are parsed. */
struct ctl_bench_args {
    int steps, warmup, augment, profile, data_only;
};

static int ctl_parse_count(const char *opt, const char *val, int min, int *out)
{
    char *end = NULL;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || !*val || *end || v < min || v > 1000000) {
        fprintf(stderr, "%s%s needs an integer >= %d (got '%s')\n", ctl_tag, opt, min,
                val ? val : "");
        return CTL_USAGE;
    }
    *out = (int)v;
    return CTL_OK;
}

/* Moves the arguments it does not know to rest[] (n_rest of them). */
static int ctl_parse_bench_args(int argc, char **argv, struct ctl_bench_args *b, char **rest,
                                int *n_rest)
{
    *b = (struct ctl_bench_args){.steps = 10, .warmup = 3, .augment = 1};
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        int rc = CTL_OK;
        if (strcmp(argv[i], "--no-augment") == 0)
            b->augment = 0;
        else if (strcmp(argv[i], "--profile") == 0)
            b->profile = 1;
        else if (strcmp(argv[i], "--data-only") == 0)
            b->data_only = 1;
        else if (strcmp(argv[i], "--steps") == 0)
            rc = ctl_parse_count("--steps", i + 1 < argc ? argv[++i] : NULL, 1, &b->steps);
        else if (strcmp(argv[i], "--warmup") == 0)
            rc = ctl_parse_count("--warmup", i + 1 < argc ? argv[++i] : NULL, 0, &b->warmup);
        else
            rest[(*n_rest)++] = argv[i];
        if (rc != CTL_OK)
            return rc;
    }
    return CTL_OK;
}

static void ctl_print_bench(const struct ctl_session *s, const struct ctl_bench_args *b,
                            const struct byol_bench_result *r)
{
    if (b->data_only) {
        printf("data pipeline: %.1f img/s (%.1f views/s), batch %d, %d px, %d thread%s, views %s, "
               "%.3f Mpx decoded per image\n",
               r->images_per_s, 2 * r->images_per_s, r->batch_size, r->image_size, r->threads,
               r->threads == 1 ? "" : "s",
               r->from_originals ? "from the originals" : "from the dataset's images",
               r->decoded_pixels_per_image * 1e-6);
        return;
    }
    printf("backend %s, batch %d, image %d px, %d warm-up + %d timed steps, augment %s\n",
           byol_backend_name(s->backend), r->batch_size, r->image_size, b->warmup, r->steps,
           b->augment ? "on (augment_fn, augment_fn2)" : "off");
    printf("%.1f img/s  %.1f ms/step (median %.1f, min %.1f)  %.1f GFLOP/s (%.2f GFLOP/step)  "
           "peak RSS %.0f MiB  loss %.4f\n",
           r->images_per_s, r->ms_per_step, r->ms_median, r->ms_min, r->gflops, r->gflop_per_step,
           r->peak_rss_mib, r->loss);
}

/* Milliseconds per step by op kind, the other parts of a step, and the slowest layers. */
static void ctl_print_profile(const struct byol_bench_profile *p)
{
    printf("\nprofile (ms per step)\n%-12s %9s %9s\n", "op", "forward", "backward");
    for (int k = 1; k < BYOL_BENCH_KINDS; k++)
        if (p->forward_ms[k] > 0 || p->backward_ms[k] > 0)
            printf("%-12s %9.1f %9.1f\n", byol_op_kind_name((enum byol_op_kind)k), p->forward_ms[k],
                   p->backward_ms[k]);
    printf("%-12s %9.1f (of the forwards above)\n", "target net", p->target_ms);
    printf("%-12s %9.1f\n%-12s %9.1f\n%-12s %9.1f\n%-12s %9.1f\n%-12s %9.1f\n", "augment",
           p->augment_ms, "optimizer", p->optimizer_ms, "ema", p->ema_ms, "zero_grad",
           p->zero_grad_ms, "other", p->other_ms);
    printf("\nslowest layers (ms per step)\n");
    for (int i = 0; i < p->n_top; i++)
        printf("%-36s %9.1f %9.1f  %s\n", p->top[i].name, p->top[i].forward_ms,
               p->top[i].backward_ms, p->top[i].impl);
    printf("\nkernels (layers of both networks, ms per step)\n");
    for (int i = 0; i < p->n_kernels; i++)
        printf("%-10s %4d layers %9.1f  %s%s\n",
               byol_op_kind_name((enum byol_op_kind)p->kernels[i].kind), p->kernels[i].layers,
               p->kernels[i].ms, p->kernels[i].impl,
               strstr(p->kernels[i].impl, "=ref") ? "  <-- reference kernel" : "");
}

static int cmd_bench(int argc, char **argv)
{
    struct ctl_bench_args b;
    struct ctl_args a;
    struct ctl_session s;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    if (!rest)
        return ctl_fail();
    int rc = ctl_parse_bench_args(argc, argv, &b, rest, &n_rest);
    if (rc == CTL_OK)
        rc = ctl_parse_args(n_rest, rest, 1, &a);
    free(rest);
    if (rc != CTL_OK)
        return rc;
    if (ctl_session_open(&s, &a) != BYOL_OK)
        return ctl_fail();
    char dir[PATH_MAX];
    byol_config_relative(a.cfg, ".", dir, sizeof dir);
    struct byol_bench_options o = {.root = byol_config_root(s.cfg),
                                   .steps = b.steps,
                                   .warmup = b.warmup,
                                   .augment = b.augment,
                                   .profile = b.profile && !b.data_only,
                                   .data_only = b.data_only,
                                   .config_dir = dir};
    struct byol_bench_result r;
    if (byol_bench_run(s.backend, s.reg, &o, &r) != BYOL_OK) {
        fprintf(stderr, "%s%s: %s\n", ctl_tag, a.cfg, byol_last_error());
        rc = CTL_FAIL;
    } else {
        ctl_print_bench(&s, &b, &r);
        if (b.profile)
            ctl_print_profile(&r.profile);
    }
    ctl_session_free(&s);
    return rc;
}

/* export CKPT OUT [--drop LAYER]: no config, no plugins; the checkpoint says it all. */
/* The format of export's OUT: --format, else by extension (".onnx"), else safetensors. NULL
 * after a message for an unknown --format. */
static const char *ctl_export_format(const char *format, const char *out)
{
    if (!format) {
        size_t n = strlen(out);
        return n > 5 && strcmp(out + n - 5, ".onnx") == 0 ? "onnx" : "safetensors";
    }
    if (strcmp(format, "onnx") == 0 || strcmp(format, "safetensors") == 0)
        return format;
    fprintf(stderr, "%s--format %s: unknown export format (onnx or safetensors)\n", ctl_tag,
            format);
    return NULL;
}

/* export to ONNX: the checkpoint's learner rebuilt with the plugins of the usual search path
 * (--plugin-path, $BYOL_PLUGIN_PATH, <exe>/../lib/byol/plugins, the install folder) on the
 * blas backend. */
static byol_status ctl_export_onnx(const char *ckpt, const char *out, int with_projection,
                                   const char *const *dirs, int ndirs)
{
    struct byol_registry *reg = NULL;
    struct byol_backend *be = NULL;
    const char *why;
    byol_status st = byol_registry_create(&reg);
    for (int i = 0; i < ndirs && st == BYOL_OK; i++)
        st = (why = ctl_not_a_folder(dirs[i]))
                 ? byol_error(BYOL_ERR_NOT_FOUND, "--plugin-path %s: %s", dirs[i], why)
                 : byol_registry_add_search_dir(reg, dirs[i]);
    if (st == BYOL_OK)
        st = byol_registry_add_default_dirs(reg);
    if (st == BYOL_OK)
        st = byol_backend_create(reg, "blas", NULL, &be);
    if (st == BYOL_OK)
        st = byol_export_onnx(be, reg, ckpt, out, with_projection);
    byol_backend_free(be);
    byol_registry_free(reg);
    return st;
}

static int cmd_export(int argc, char **argv)
{
    const char *files[2], *drop = NULL, *format = NULL, *dirs[CTL_MAX_DIRS];
    int n = 0, with_projection = 0, ndirs = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--drop") == 0) {
            if (!(drop = ctl_option_value(argc, argv, &i, 0, 1)))
                return CTL_USAGE;
        } else if (strcmp(argv[i], "--format") == 0) {
            if (!(format = ctl_option_value(argc, argv, &i, format != NULL, 1)))
                return CTL_USAGE;
        } else if (strcmp(argv[i], "--plugin-path") == 0) {
            const char *dir = ctl_option_value(argc, argv, &i, ndirs, CTL_MAX_DIRS);
            if (!dir || ndirs >= CTL_MAX_DIRS) /* the second test for the compiler's sake */
                return CTL_USAGE;
            dirs[ndirs++] = dir;
        } else if (strcmp(argv[i], "--with-projection") == 0) {
            with_projection = 1;
        } else if (argv[i][0] == '-' || n == 2) {
            fprintf(stderr, "%sexport: unexpected argument '%s' (see byolctl --help)\n", ctl_tag,
                    argv[i]);
            return CTL_USAGE;
        } else {
            files[n++] = argv[i];
        }
    }
    if (n != 2 || !files[0][0] || !files[1][0]) { /* "" names no file */
        fprintf(stderr,
                "%sexport needs CKPT and OUT.safetensors or OUT.onnx (see byolctl --help)\n",
                ctl_tag);
        return CTL_USAGE;
    }
    const char *fmt = ctl_export_format(format, files[1]);
    if (!fmt)
        return CTL_FAIL;
    int onnx = strcmp(fmt, "onnx") == 0;
    if (onnx && drop) {
        fprintf(stderr,
                "%sexport: --drop is for safetensors; ONNX holds the layers up to the "
                "hidden layer\n",
                ctl_tag);
        return CTL_USAGE;
    }
    if (!onnx && with_projection) {
        fprintf(stderr, "%sexport: --with-projection is for ONNX (OUT.onnx or --format onnx)\n",
                ctl_tag);
        return CTL_USAGE;
    }
    const struct byol_file_use use[] = {{"CKPT", files[0], 0}, {"OUT", files[1], 1}};
    byol_status st = byol_files_check(use, 2, 1);
    if (st == BYOL_OK)
        st = onnx ? ctl_export_onnx(files[0], files[1], with_projection, dirs, ndirs)
                  : byol_export_encoder(files[0], files[1], drop);
    if (st != BYOL_OK)
        return ctl_fail();
    printf("exported %s\n", files[1]);
    return CTL_OK;
}

/* ---- embed and eval -------------------------------------------------------------------- */

/* embed's and eval's own options, taken out of argv before the shared ones are parsed. */
struct ctl_eval_args {
    const char *checkpoint; /* NULL: train.checkpoint_dir/latest.safetensors; "none": no file */
    const char *out, *projection, *labels, *split;
};

static int ctl_parse_eval_args(int argc, char **argv, int embed, struct ctl_eval_args *e,
                               char **rest, int *n_rest)
{
    *e = (struct ctl_eval_args){.split = "train"};
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--checkpoint") == 0)
            slot = &e->checkpoint;
        else if (embed && strcmp(argv[i], "--out") == 0)
            slot = &e->out;
        else if (embed && strcmp(argv[i], "--projection") == 0)
            slot = &e->projection;
        else if (embed && strcmp(argv[i], "--labels") == 0)
            slot = &e->labels;
        else if (embed && strcmp(argv[i], "--split") == 0)
            slot = &e->split;
        if (!slot) {
            rest[(*n_rest)++] = argv[i];
        } else if (i + 1 < argc && argv[i + 1][0]) {
            *slot = argv[++i];
        } else { /* an empty name is no file: --checkpoint "" would read as none */
            fprintf(stderr, "%s%s needs a value (see byolctl --help)\n", ctl_tag, argv[i]);
            return CTL_USAGE;
        }
    }
    if (embed && !e->out) {
        fprintf(stderr, "%sembed needs --out FILE.npy (see byolctl --help)\n", ctl_tag);
        return CTL_USAGE;
    }
    if (strcmp(e->split, "train") != 0 && strcmp(e->split, "test") != 0) {
        fprintf(stderr, "%s--split must be train or test, not '%s'\n", ctl_tag, e->split);
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* Shared front of embed and eval: own options, then the usual ones, then the session. */
static int ctl_eval_front(int argc, char **argv, int embed, struct ctl_eval_args *ea,
                          struct ctl_args *a, struct ctl_session *s)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    if (!rest)
        return ctl_fail();
    int rc = ctl_parse_eval_args(argc, argv, embed, ea, rest, &n_rest);
    if (rc == CTL_OK)
        rc = ctl_parse_args(n_rest, rest, 1, a);
    free(rest);
    if (rc == CTL_OK && ctl_session_open(s, a) != BYOL_OK)
        rc = ctl_fail();
    return rc;
}

/* embed's outputs (probed: each folder must take a new file) against its inputs: the config's,
 * and the checkpoint (--checkpoint, else train.checkpoint_dir/latest). */
static byol_status ctl_check_embed_files(const struct ctl_args *a, const struct ctl_session *s,
                                         const struct ctl_eval_args *ea)
{
    const struct byol_settings *root = byol_config_root(s->cfg);
    struct ctl_files *f;
    byol_status st = ctl_files_of_config(a, s, &f);
    if (st != BYOL_OK)
        return st;
    if (!ea->checkpoint)
        ctl_add_checkpoint(f, root, "latest.safetensors", 0);
    else if (strcmp(ea->checkpoint, "none") != 0)
        ctl_add_file(f, "--checkpoint", ea->checkpoint, 0);
    ctl_add_file(f, "--out", ea->out, 1);
    ctl_add_file(f, "--projection", ea->projection, 1);
    ctl_add_file(f, "--labels", ea->labels, 1);
    st = byol_files_check(f->use, f->n, 1);
    free(f);
    return st;
}

/* embed: the representations of one split, from what eval would evaluate. */
static int cmd_embed(int argc, char **argv)
{
    struct ctl_eval_args ea;
    struct ctl_args a;
    struct ctl_session s;
    int rc = ctl_eval_front(argc, argv, 1, &ea, &a, &s);
    if (rc != CTL_OK)
        return rc;
    if (ctl_check_embed_files(&a, &s, &ea) != BYOL_OK) {
        rc = ctl_fail_at(a.cfg);
        ctl_session_free(&s);
        return rc;
    }
    char dir[PATH_MAX];
    byol_config_relative(a.cfg, ".", dir, sizeof dir);
    struct byol_train_options o = {
        .root = byol_config_root(s.cfg), .config_dir = dir, .checkpoint = ea.checkpoint};
    struct byol_train_embed_request r = {
        .split = ea.split, .out = ea.out, .projection = ea.projection, .labels = ea.labels};
    rc = byol_train_embed(s.backend, s.reg, &o, &r) == BYOL_OK ? CTL_OK : ctl_fail_at(a.cfg);
    if (rc == CTL_OK)
        printf("wrote %zu x %zu representations to %s%s%s%s%s\n", r.count, r.dim, ea.out,
               ea.projection ? ", projections to " : "", ea.projection ? ea.projection : "",
               ea.labels ? ", labels to " : "", ea.labels ? ea.labels : "");
    ctl_session_free(&s);
    return rc;
}

/* eval: the config's eval trainer (default "linear") on a trained state. */
static int cmd_eval(int argc, char **argv)
{
    struct ctl_eval_args ea;
    struct ctl_args a;
    struct ctl_session s;
    int rc = ctl_eval_front(argc, argv, 0, &ea, &a, &s);
    if (rc != CTL_OK)
        return rc;
    char dir[PATH_MAX];
    byol_config_relative(a.cfg, ".", dir, sizeof dir);
    struct ctl_progress p = {.tty = isatty(STDERR_FILENO)};
    struct byol_train_options o = {.root = byol_config_root(s.cfg),
                                   .config_dir = dir,
                                   .user = &p,
                                   .evaluated = ctl_print_eval,
                                   .checkpoint = ea.checkpoint,
                                   .eval_progress = ctl_eval_progress};
    byol_status st = byol_train_eval(s.backend, s.reg, &o);
    if (st != BYOL_OK)
        ctl_eval_line_end(&p);
    rc = st == BYOL_OK ? CTL_OK : ctl_fail_at(a.cfg);
    ctl_session_free(&s);
    return rc;
}

/* plot METRICS OUT.png: the curves of any metrics file byolctl run wrote. */
static int cmd_plot(int argc, char **argv)
{
    if (argc != 2 || !argv[0][0] || !argv[1][0] || argv[0][0] == '-' || argv[1][0] == '-') {
        fprintf(stderr, "%susage: byolctl plot METRICS.csv|METRICS.jsonl OUT.png\n", ctl_tag);
        return CTL_USAGE;
    }
    struct byol_file_use files[] = {{"METRICS", argv[0], 0}, {"OUT", argv[1], 1}};
    if (byol_files_check(files, 2, 1) != BYOL_OK || byol_plot_metrics(argv[0], argv[1]) != BYOL_OK)
        return ctl_fail();
    printf("%s\n", argv[1]);
    return CTL_OK;
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "%sversion takes no arguments\n", ctl_tag);
        return CTL_USAGE;
    }
    printf("byolctl %s (plugin ABI %d.%d)\n", BYOL_VERSION_STRING, BYOL_ABI_MAJOR, BYOL_ABI_MINOR);
    return CTL_OK;
}

static int ctl_dispatch(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        int parallel; /* runs as one of several processes (mpirun, srun) */
    } commands[] = {
        {"plugins", cmd_plugins, 0}, {"check", cmd_check, 1},   {"run", cmd_run, 1},
        {"bench", cmd_bench, 0},     {"export", cmd_export, 0}, {"embed", cmd_embed, 0},
        {"eval", cmd_eval, 0},       {"plot", cmd_plot, 0},     {"version", cmd_version, 0},
    };
    if (argc < 2) {
        ctl_usage(stderr);
        return CTL_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        ctl_usage(stdout);
        return CTL_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!commands[i].parallel && byol_dist_size() > 1) {
            fprintf(stderr, "%s%s runs in one process: start it without mpirun or srun\n", ctl_tag,
                    argv[1]);
            return CTL_USAGE;
        }
        return commands[i].fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "%sunknown command '%s' (see byolctl --help)\n", ctl_tag, argv[1]);
    return CTL_USAGE;
}

/* One process of a data-parallel run that fails ends the whole run at once: the others may be
 * waiting for it in a collective and would otherwise hang. */
int main(int argc, char **argv)
{
    if (byol_dist_init(&argc, &argv) != BYOL_OK) {
        fprintf(stderr, "%s%s\n", ctl_tag, byol_last_error());
        return CTL_FAIL;
    }
    if (byol_dist_size() > 1)
        snprintf(ctl_tag, sizeof ctl_tag, "byolctl: rank %d: ", byol_dist_rank());
    ctl_fault_install(); /* after MPI's own handlers, so a plugin's fault is named */
    int rc = CTL_OK;
    if (byol_environment_check() != BYOL_OK) {
        fprintf(stderr, "%s%s\n", ctl_tag, byol_last_error());
        rc = CTL_FAIL;
    }
    if (rc == CTL_OK)
        rc = ctl_dispatch(argc, argv);
    if (rc != CTL_OK)
        byol_dist_abort(rc);
    byol_dist_finalize();
    return rc;
}
