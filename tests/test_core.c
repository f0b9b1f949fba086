/* Core runtime tests: status messages, the Philox streams, and config files with their typed
 * accessors, including every type error and broken files (messages name file and line). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* ---- status ------------------------------------------------------------------------- */

static void test_status_messages(void)
{
    CU_ASSERT_STRING_EQUAL(byol_status_str(BYOL_OK), "ok");
    CU_ASSERT_STRING_EQUAL(byol_status_str(BYOL_ERR_ABI), "ABI mismatch");
    CU_ASSERT_STRING_EQUAL(byol_status_str((byol_status)999), "unknown status");
    CU_ASSERT_EQUAL(byol_error(BYOL_ERR_IO, "%s: %d", "file", 7), BYOL_ERR_IO);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "file: 7");
    /* A message may quote the previous one (callers prefix context). */
    byol_error(BYOL_ERR_IO, "outer: %s", byol_last_error());
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "outer: file: 7");
    /* Messages are one line. */
    byol_error(BYOL_ERR_FORMAT, "a\nb\rc");
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "a b c");
    byol_clear_error();
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "");
}

/* ---- rng ------------------------------------------------------------------------------ */

static void test_rng_deterministic(void)
{
    struct byol_rng a, b;
    byol_rng_init(&a, 42, 7);
    byol_rng_init(&b, 42, 7);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL_FATAL(byol_rng_u32(&a), byol_rng_u32(&b));
    CU_ASSERT_EQUAL(byol_rng_stream_id(1, 2, 3, 4), byol_rng_stream_id(1, 2, 3, 4));
    CU_ASSERT_NOT_EQUAL(byol_rng_stream_id(1, 2, 3, 4), byol_rng_stream_id(1, 2, 4, 3));
}

/* Different streams, and different seeds, must not share their output. */
static void test_rng_streams_differ(void)
{
    struct byol_rng r[3];
    byol_rng_init(&r[0], 42, 0);
    byol_rng_init(&r[1], 42, 1);
    byol_rng_init(&r[2], 43, 0);
    int same01 = 0, same02 = 0;
    for (int i = 0; i < 256; i++) {
        uint32_t x = byol_rng_u32(&r[0]);
        same01 += x == byol_rng_u32(&r[1]);
        same02 += x == byol_rng_u32(&r[2]);
    }
    CU_ASSERT(same01 < 2);
    CU_ASSERT(same02 < 2);
}

static void test_rng_uniform(void)
{
    struct byol_rng r;
    byol_rng_init(&r, 1, 2);
    const int n = 200000;
    double sum = 0, sum64 = 0;
    int in_range = 1;
    for (int i = 0; i < n; i++) {
        float u = byol_rng_uniform(&r);
        double d = byol_rng_uniform_f64(&r);
        in_range &= u >= 0.0f && u < 1.0f && d >= 0.0 && d < 1.0;
        sum += u;
        sum64 += d;
    }
    CU_ASSERT(in_range);
    /* The standard error of the mean is 0.29 / sqrt(n) = 6.5e-4: 0.005 is over 7 sigma. */
    CU_ASSERT_DOUBLE_EQUAL(sum / n, 0.5, 0.005);
    CU_ASSERT_DOUBLE_EQUAL(sum64 / n, 0.5, 0.005);
}

static void test_rng_normal(void)
{
    struct byol_rng r;
    byol_rng_init(&r, 3, 4);
    const int n = 200000;
    double sum = 0, sumsq = 0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        double x = byol_rng_normal(&r);
        finite &= isfinite(x);
        sum += x;
        sumsq += x * x;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    CU_ASSERT(finite);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(var, 1.0, 0.02);
}

/* ---- settings: values and defaults ----------------------------------------------------- */

static const char *good_text = "seed = 7;\n"
                               "big = 5000000000L;\n"
                               "backend = {\n"
                               "  name = \"blas\";\n"
                               "  threads = 2;\n"
                               "  lr = 3e-4;\n"
                               "  whole = 3;\n"
                               "  shuffle = true;\n"
                               "  scale = [0.08, 1.0];\n"
                               "  mixed = (1, 2.5);\n"
                               "  empty = [];\n"
                               "};\n"
                               "model = { encoder = { name = \"resnet18\"; }; };\n"
                               "aug = ( { op = \"flip\"; p = \"x\"; } );\n";

static struct byol_config *parse_ok(const char *text)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(text, "test.cfg", &cfg));
    return cfg;
}

static void test_settings_values(void)
{
    struct byol_config *cfg = parse_ok(good_text);
    const struct byol_settings *root = byol_config_root(cfg);
    const struct byol_settings *be = byol_settings_child(root, "backend");
    int64_t i;
    double d;
    int b;
    const char *s;
    BYOL_CHECK_OK(byol_settings_int(root, "seed", 0, &i));
    CU_ASSERT_EQUAL(i, 7);
    BYOL_CHECK_OK(byol_settings_int(root, "big", 0, &i));
    CU_ASSERT_EQUAL(i, 5000000000LL);
    BYOL_CHECK_OK(byol_settings_int(be, "threads", 0, &i));
    CU_ASSERT_EQUAL(i, 2);
    BYOL_CHECK_OK(byol_settings_float(be, "lr", 0, &d));
    CU_ASSERT_DOUBLE_EQUAL(d, 3e-4, 1e-15);
    BYOL_CHECK_OK(byol_settings_float(be, "whole", 0, &d)); /* an integer is a number too */
    CU_ASSERT_DOUBLE_EQUAL(d, 3.0, 0);
    BYOL_CHECK_OK(byol_settings_bool(be, "shuffle", 0, &b));
    CU_ASSERT_EQUAL(b, 1);
    BYOL_CHECK_OK(byol_settings_string(be, "name", NULL, &s));
    CU_ASSERT_STRING_EQUAL(s, "blas");
    CU_ASSERT_EQUAL(byol_settings_has(be, "threads"), 1);
    CU_ASSERT_EQUAL(byol_settings_has(be, "nope"), 0);
    byol_config_free(cfg);
}

static void test_settings_floats(void)
{
    struct byol_config *cfg = parse_ok(good_text);
    const struct byol_settings *be = byol_settings_child(byol_config_root(cfg), "backend");
    double v[4] = {-1, -1, -1, -1};
    int n = -1;
    BYOL_CHECK_OK(byol_settings_floats(be, "scale", v, 4, &n));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_DOUBLE_EQUAL(v[0], 0.08, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(v[1], 1.0, 0);
    BYOL_CHECK_OK(byol_settings_floats(be, "mixed", v, 4, &n)); /* a list, int and float */
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_DOUBLE_EQUAL(v[0], 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(v[1], 2.5, 0);
    BYOL_CHECK_OK(byol_settings_floats(be, "empty", v, 4, &n));
    CU_ASSERT_EQUAL(n, 0);
    BYOL_CHECK_OK(byol_settings_floats(be, "missing", v, 4, &n));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(byol_settings_floats(be, "scale", v, 1, &n), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("test.cfg:9: backend.scale: expected at most 1 numbers, got 2");
    byol_config_free(cfg);
}

static void test_settings_strings(void)
{
    struct byol_config *cfg = parse_ok("dirs = [\"a\", \"b\"];\nmixed = (\"a\", 1);\n"
                                       "one = \"a\";\n");
    const struct byol_settings *root = byol_config_root(cfg);
    const char *v[2] = {NULL, NULL};
    int n = -1;
    BYOL_CHECK_OK(byol_settings_strings(root, "dirs", v, 2, &n));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(v[0], "a");
    CU_ASSERT_STRING_EQUAL(v[1], "b");
    BYOL_CHECK_OK(byol_settings_strings(root, "absent", v, 2, &n));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(byol_settings_strings(root, "dirs", v, 1, &n), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(),
                           "test.cfg:1: dirs: expected at most 1 strings, got 2");
    CU_ASSERT_EQUAL(byol_settings_strings(root, "mixed", v, 2, &n), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(),
                           "test.cfg:2: mixed[1]: expected a string, got an integer");
    CU_ASSERT_EQUAL(byol_settings_strings(root, "one", v, 2, &n), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(),
                           "test.cfg:3: one: expected a list of strings, got a string");
    byol_config_free(cfg);
}

/* Missing settings, missing groups and NULL settings all give the defaults. */
static void test_settings_defaults(void)
{
    struct byol_config *cfg = parse_ok(good_text);
    const struct byol_settings *root = byol_config_root(cfg);
    const struct byol_settings *none = byol_settings_child(root, "no_such_group");
    CU_ASSERT_PTR_NULL(none);
    const struct byol_settings *groups[] = {root, none, NULL};
    for (int g = 0; g < 3; g++) {
        int64_t i;
        double d;
        int b;
        const char *s;
        BYOL_CHECK_OK(byol_settings_int(groups[g], "absent", -5, &i));
        CU_ASSERT_EQUAL(i, -5);
        BYOL_CHECK_OK(byol_settings_float(groups[g], "absent", 0.25, &d));
        CU_ASSERT_DOUBLE_EQUAL(d, 0.25, 0);
        BYOL_CHECK_OK(byol_settings_bool(groups[g], "absent", 1, &b));
        CU_ASSERT_EQUAL(b, 1);
        BYOL_CHECK_OK(byol_settings_string(groups[g], "absent", "dflt", &s));
        CU_ASSERT_STRING_EQUAL(s, "dflt");
    }
    /* A missing group has no unknown keys. */
    BYOL_CHECK_OK(byol_settings_check_keys(none, (const char *const[]){NULL}));
    CU_ASSERT_EQUAL(byol_settings_has(NULL, "x"), 0);
    CU_ASSERT_STRING_EQUAL(byol_settings_path(NULL), "");
    byol_config_free(cfg);
}

static void test_settings_paths(void)
{
    struct byol_config *cfg = parse_ok(good_text);
    const struct byol_settings *root = byol_config_root(cfg);
    CU_ASSERT_STRING_EQUAL(byol_settings_path(root), "");
    const struct byol_settings *enc = byol_settings_child(root, "model.encoder");
    CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
    CU_ASSERT_STRING_EQUAL(byol_settings_path(enc), "model.encoder");
    const char *s;
    BYOL_CHECK_OK(byol_settings_string(enc, "name", NULL, &s));
    CU_ASSERT_STRING_EQUAL(s, "resnet18");
    CU_ASSERT_PTR_EQUAL(byol_settings_child(enc, ""), enc);
    /* Elements of a list are named by index. */
    const struct byol_settings *aug0 = byol_settings_child(root, "aug.[0]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(aug0);
    CU_ASSERT_STRING_EQUAL(byol_settings_path(aug0), "aug[0]");
    double d;
    CU_ASSERT_EQUAL(byol_settings_float(aug0, "p", 0, &d), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("test.cfg:14: aug[0].p: expected a number, got a string");
    byol_config_free(cfg);
}

/* ---- settings: type errors and unknown keys ------------------------------------------- */

static const char *types_text = "t = {\n"
                                "  i = 1;\n"             /* line 2 */
                                "  f = 1.5;\n"           /* 3 */
                                "  b = true;\n"          /* 4 */
                                "  s = \"x\";\n"         /* 5 */
                                "  g = { };\n"           /* 6 */
                                "  a = [1];\n"           /* 7 */
                                "  l = (1, \"two\");\n"  /* 8 */
                                "  big = 5000000000L;\n" /* 9 */
                                "};\n";

enum accessor { ACC_INT, ACC_FLOAT, ACC_BOOL, ACC_STRING, ACC_FLOATS };

static byol_status call_accessor(enum accessor acc, const struct byol_settings *s, const char *name)
{
    int64_t i;
    double d[4];
    int b, n;
    const char *str;
    switch (acc) {
    case ACC_INT: return byol_settings_int(s, name, 0, &i);
    case ACC_FLOAT: return byol_settings_float(s, name, 0, d);
    case ACC_BOOL: return byol_settings_bool(s, name, 0, &b);
    case ACC_STRING: return byol_settings_string(s, name, NULL, &str);
    case ACC_FLOATS: return byol_settings_floats(s, name, d, 4, &n);
    }
    return BYOL_ERR_INTERNAL;
}

static void test_settings_type_errors(void)
{
    static const struct {
        enum accessor acc;
        const char *key;
        const char *message;
    } cases[] = {
        {ACC_INT, "f", "types.cfg:3: t.f: expected an integer, got a float"},
        {ACC_INT, "b", "types.cfg:4: t.b: expected an integer, got a boolean"},
        {ACC_INT, "s", "types.cfg:5: t.s: expected an integer, got a string"},
        {ACC_INT, "g", "types.cfg:6: t.g: expected an integer, got a group"},
        {ACC_INT, "a", "types.cfg:7: t.a: expected an integer, got an array"},
        {ACC_FLOAT, "b", "types.cfg:4: t.b: expected a number, got a boolean"},
        {ACC_FLOAT, "s", "types.cfg:5: t.s: expected a number, got a string"},
        {ACC_FLOAT, "l", "types.cfg:8: t.l: expected a number, got a list"},
        {ACC_BOOL, "i", "types.cfg:2: t.i: expected true or false, got an integer"},
        {ACC_BOOL, "s", "types.cfg:5: t.s: expected true or false, got a string"},
        {ACC_STRING, "i", "types.cfg:2: t.i: expected a string, got an integer"},
        {ACC_STRING, "b", "types.cfg:4: t.b: expected a string, got a boolean"},
        {ACC_STRING, "g", "types.cfg:6: t.g: expected a string, got a group"},
        {ACC_FLOATS, "f", "types.cfg:3: t.f: expected a list of numbers, got a float"},
        {ACC_FLOATS, "s", "types.cfg:5: t.s: expected a list of numbers, got a string"},
        {ACC_FLOATS, "l", "types.cfg:8: t.l[1]: expected a number, got a string"},
    };
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(types_text, "types.cfg", &cfg));
    const struct byol_settings *t = byol_settings_child(byol_config_root(cfg), "t");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        byol_clear_error();
        CU_ASSERT_EQUAL(call_accessor(cases[k].acc, t, cases[k].key), BYOL_ERR_INVALID);
        CU_ASSERT_STRING_EQUAL(byol_last_error(), cases[k].message);
    }
    /* int64 is an integer; an accessor on something that is not a group fails. */
    int64_t big;
    BYOL_CHECK_OK(byol_settings_int(t, "big", 0, &big));
    CU_ASSERT_EQUAL(big, 5000000000LL);
    const struct byol_settings *scalar = byol_settings_child(t, "i");
    CU_ASSERT_EQUAL(call_accessor(ACC_INT, scalar, "x"), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "types.cfg:2: t.i: expected a group, got an integer");
    byol_config_free(cfg);
}

static void test_settings_unknown_keys(void)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(
        byol_config_parse("backend = {\n  name = \"blas\";\n  thread = 2;\n};\n", "my.cfg", &cfg));
    const struct byol_settings *be = byol_settings_child(byol_config_root(cfg), "backend");
    static const char *const known[] = {"name", "threads", "precision", NULL};
    CU_ASSERT_EQUAL(byol_settings_check_keys(be, known), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "my.cfg:3: backend.thread: unknown setting "
                                              "(known: name, threads, precision)");
    static const char *const all[] = {"name", "thread", NULL};
    BYOL_CHECK_OK(byol_settings_check_keys(be, all));
    CU_ASSERT_EQUAL(byol_settings_check_keys(be, (const char *const[]){NULL}), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("my.cfg:2: backend.name: unknown setting (known: none)");
    byol_config_free(cfg);
}

/* ---- settings: files -------------------------------------------------------------------- */

/* A scratch folder for config files, removed with everything in it by tmp_cleanup. */
static const char *tmp_dir;
static char tmp_files[8][512];
static int tmp_count;

static void tmp_init(void)
{
    tmp_dir = byol_test_tmpdir("core");
    tmp_count = 0;
}

/* Write `text` to tmp_dir/name (name may have one folder level, created on demand). */
static const char *tmp_write(const char *name, const char *text)
{
    CU_ASSERT_FATAL(tmp_count < 8);
    char *path = tmp_files[tmp_count++];
    snprintf(path, sizeof tmp_files[0], "%s/%s", tmp_dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (strcmp(path, tmp_dir) != 0)
        mkdir(path, 0700);
    *slash = '/';
    byol_test_write_file(path, text, strlen(text));
    return path;
}

static void tmp_cleanup(void)
{
    /* Files first, then their folders (the deepest first), then the scratch folder. */
    for (int i = tmp_count; i-- > 0;)
        CU_ASSERT_EQUAL(unlink(tmp_files[i]), 0);
    for (int i = tmp_count; i-- > 0;) {
        char *slash = strrchr(tmp_files[i], '/');
        *slash = '\0';
        if (strcmp(tmp_files[i], tmp_dir) != 0)
            rmdir(tmp_files[i]);
    }
    CU_ASSERT_EQUAL(rmdir(tmp_dir), 0);
}

static void test_config_syntax_error(void)
{
    tmp_init();
    const char *path = tmp_write("bad.cfg", "seed = 1;\nbackend = {\n  threads = ;\n};\n");
    struct byol_config *cfg = (struct byol_config *)&cfg; /* must be reset to NULL */
    CU_ASSERT_EQUAL(byol_config_load(path, &cfg), BYOL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(cfg);
    char want[600];
    snprintf(want, sizeof want, "%s:3: ", path);
    CU_ASSERT_EQUAL(strncmp(byol_last_error(), want, strlen(want)), 0);
    BYOL_ASSERT_MSG_HAS("syntax error");
    /* Parsed text is named as the caller says. */
    CU_ASSERT_EQUAL(byol_config_parse("a = 1;\nb = [1, \"x\"];\n", "inline", &cfg),
                    BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("inline:2: ");
    tmp_cleanup();
}

static void test_config_missing_files(void)
{
    tmp_init();
    const char *path = tmp_write("main.cfg", "seed = 1;\n@include \"nope.cfg\"\n");
    struct byol_config *cfg = NULL;
    CU_ASSERT_EQUAL(byol_config_load(path, &cfg), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(cfg);
    char want[600];
    snprintf(want, sizeof want, "%s:2: ", path);
    CU_ASSERT_EQUAL(strncmp(byol_last_error(), want, strlen(want)), 0);
    BYOL_ASSERT_MSG_HAS("include");
    BYOL_ASSERT_MSG_HAS("\"nope.cfg\"");
    char missing[600];
    snprintf(missing, sizeof missing, "%s/absent.cfg", tmp_dir);
    CU_ASSERT_EQUAL(byol_config_load(missing, &cfg), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS(missing);
    BYOL_ASSERT_MSG_HAS("cannot open");
    tmp_cleanup();
}

/* @include is resolved against the including file's folder, not the working directory, and
 * errors in an included setting name the included file. */
static void test_config_include(void)
{
    tmp_init();
    tmp_write("conf/common.cfg", "backend = {\n  threads = \"two\";\n};\n");
    const char *path = tmp_write("conf/main.cfg", "seed = 3;\n@include \"common.cfg\"\n");
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_load(path, &cfg));
    const struct byol_settings *root = byol_config_root(cfg);
    int64_t v;
    BYOL_CHECK_OK(byol_settings_int(root, "seed", 0, &v));
    CU_ASSERT_EQUAL(v, 3);
    const struct byol_settings *be = byol_settings_child(root, "backend");
    CU_ASSERT_PTR_NOT_NULL(be);
    CU_ASSERT_EQUAL(byol_settings_int(be, "threads", 0, &v), BYOL_ERR_INVALID);
    char want[600];
    snprintf(want, sizeof want,
             "%s/conf/common.cfg:2: backend.threads: expected an integer, "
             "got a string",
             tmp_dir);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), want);
    byol_config_free(cfg);
    tmp_cleanup();
}

/* Each @include is resolved against the folder of the file that holds it (top.cfg includes
 * sub/a.cfg, which includes "b.cfg": sub/b.cfg), an absolute one as written; messages from an
 * included setting name its file and line; "@include" in a comment or a string is text. */
static void test_config_include_nested(void)
{
    tmp_init();
    tmp_write("sub/b.cfg", "train = {\n  steps = \"x\";\n};\n");
    tmp_write("sub/a.cfg", "# @include \"nope.cfg\"\nseed = 4;\n@include \"b.cfg\"\n");
    const char *abs = tmp_write("abs.cfg", "note = \"@include \\\"nope.cfg\\\"\";\n");
    char text[1200];
    snprintf(text, sizeof text,
             "@include \"sub/a.cfg\"\n/* @include \"nope.cfg\"\n */\n@include \"%s\"\n", abs);
    const char *top = tmp_write("top.cfg", text);
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_load(top, &cfg));
    const struct byol_settings *root = byol_config_root(cfg);
    int64_t v = 0;
    const char *note = NULL;
    BYOL_CHECK_OK(byol_settings_int(root, "seed", 0, &v));
    CU_ASSERT_EQUAL(v, 4);
    BYOL_CHECK_OK(byol_settings_string(root, "note", NULL, &note));
    CU_ASSERT_STRING_EQUAL(note, "@include \"nope.cfg\"");
    CU_ASSERT_EQUAL(byol_settings_int(byol_settings_child(root, "train"), "steps", 0, &v),
                    BYOL_ERR_INVALID);
    char want[700];
    snprintf(want, sizeof want, "%s/sub/b.cfg:2: train.steps: expected an integer", tmp_dir);
    BYOL_ASSERT_MSG_HAS(want);
    byol_config_free(cfg);
    tmp_cleanup();
}

/* A folder, a FIFO (refused at once, not waited on) and a NUL byte, as a config or an
 * include, each named. */
static void test_config_not_regular(void)
{
    tmp_init();
    const char *top = tmp_write("dot.cfg", "seed = 1;\n@include \".\"\n");
    struct byol_config *cfg = NULL;
    CU_ASSERT_EQUAL(byol_config_load(top, &cfg), BYOL_ERR_IO);
    char want[700];
    snprintf(want, sizeof want, "%s:2: include file \".\": not a regular file", top);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), want);
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/pipe.cfg", tmp_dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    CU_ASSERT_EQUAL(byol_config_load(fifo, &cfg), BYOL_ERR_IO);
    snprintf(want, sizeof want, "%s: not a regular file", fifo);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), want);
    const char *inc = tmp_write("inc.cfg", "@include \"pipe.cfg\"\n");
    CU_ASSERT_EQUAL(byol_config_load(inc, &cfg), BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS("inc.cfg:1: include file \"pipe.cfg\": not a regular file");
    CU_ASSERT_EQUAL(unlink(fifo), 0);
    CU_ASSERT_EQUAL(byol_config_parse("a = 1;\n", "inline", &cfg), BYOL_OK);
    byol_config_free(cfg);
    tmp_cleanup();
}

/* One long string is read in time linear in its length (libconfig's file scanner took 8.7 s
 * for 4 MB, quadratically; this reads 12 MB). The bound is only there to catch a return of the
 * quadratic reader, which would take minutes. */
static void test_config_long_string(void)
{
    size_t n = 12u << 20;
    char *text = malloc(n + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    memcpy(text, "note = \"", 8);
    memset(text + 8, 'x', n);
    memcpy(text + 8 + n, "\";\n", 4);
    tmp_init();
    char path[600];
    snprintf(path, sizeof path, "%s/long.cfg", tmp_dir);
    byol_test_write_file(path, text, n + 11);
    free(text);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_load(path, &cfg));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const char *note = NULL;
    BYOL_CHECK_OK(byol_settings_string(byol_config_root(cfg), "note", NULL, &note));
    CU_ASSERT_EQUAL(strlen(note), n);
    byol_config_free(cfg);
    CU_ASSERT((t1.tv_sec - t0.tv_sec) < 20);
    CU_ASSERT_EQUAL(unlink(path), 0);
    tmp_cleanup();
}

/* Integers beyond 32 bits are read as written (libconfig alone wraps 9999999999 to
 * 1410065407), in files and in --set; beyond 64 bits they are an error naming the number. */
static void test_config_wide_ints(void)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse("a = 9999999999;\nb = -2147483649;\nc = 0x1FFFFFFFF;\n"
                                    "d = 2147483647;\ne-1 = 5;\ns = \"99999999999999999999\";\n"
                                    "# t = 99999999999999999999;\nf = 1e30;\n",
                                    "wide.cfg", &cfg));
    const struct byol_settings *root = byol_config_root(cfg);
    int64_t v = 0;
    BYOL_CHECK_OK(byol_settings_int(root, "a", 0, &v));
    CU_ASSERT_EQUAL(v, 9999999999ll);
    BYOL_CHECK_OK(byol_settings_int(root, "b", 0, &v));
    CU_ASSERT_EQUAL(v, -2147483649ll);
    BYOL_CHECK_OK(byol_settings_int(root, "c", 0, &v));
    CU_ASSERT_EQUAL(v, 0x1FFFFFFFFll);
    BYOL_CHECK_OK(byol_settings_int(root, "d", 0, &v));
    CU_ASSERT_EQUAL(v, 2147483647);
    BYOL_CHECK_OK(byol_settings_int(root, "e-1", 0, &v));
    CU_ASSERT_EQUAL(v, 5);
    const char *s = NULL;
    BYOL_CHECK_OK(byol_settings_string(root, "s", NULL, &s));
    CU_ASSERT_STRING_EQUAL(s, "99999999999999999999");
    BYOL_CHECK_OK(byol_config_set(cfg, "g=-9223372036854775808"));
    BYOL_CHECK_OK(byol_settings_int(root, "g", 0, &v));
    CU_ASSERT_EQUAL(v, INT64_MIN);
    CU_ASSERT_EQUAL(byol_config_set(cfg, "g=9223372036854775808"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("9223372036854775808 does not fit a 64-bit integer");
    byol_config_free(cfg);
    CU_ASSERT_EQUAL(byol_config_parse("x = 1;\ny = 99999999999999999999;\n", "big.cfg", &cfg),
                    BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(),
                           "big.cfg:2: 99999999999999999999 does not fit a 64-bit integer");
}

/* --set: existing and new settings, types kept, the string fallback, lists, bad input. */
static void test_config_set(void)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse("train = { steps = 100; lr = 0.1; };\nbackend = { name = "
                                    "\"onednn\"; };\n",
                                    "set.cfg", &cfg));
    const struct byol_settings *root = byol_config_root(cfg);
    int64_t steps = 0;
    double lr = 0;
    const char *name = NULL;
    BYOL_CHECK_OK(byol_config_set(cfg, "train.steps=20"));
    BYOL_CHECK_OK(byol_config_set(cfg, "train.lr=1"));
    BYOL_CHECK_OK(byol_config_set(cfg, "backend.name=blas"));
    BYOL_CHECK_OK(byol_config_set(cfg, "model.encoder.name=\"resnet34\""));
    BYOL_CHECK_OK(byol_config_set(cfg, "plugin_path=[\"/a\", \"/b\"]"));
    const struct byol_settings *train = byol_settings_child(root, "train");
    BYOL_CHECK_OK(byol_settings_int(train, "steps", 0, &steps));
    CU_ASSERT_EQUAL(steps, 20);
    /* lr was a float, so "1" stays one: an integer would fail float-only readers. */
    BYOL_CHECK_OK(byol_settings_float(train, "lr", 0, &lr));
    CU_ASSERT_DOUBLE_EQUAL(lr, 1.0, 0);
    BYOL_CHECK_OK(byol_settings_string(byol_settings_child(root, "backend"), "name", NULL, &name));
    CU_ASSERT_STRING_EQUAL(name, "blas");
    const struct byol_settings *enc = byol_settings_child(root, "model.encoder");
    BYOL_CHECK_OK(byol_settings_string(enc, "name", NULL, &name));
    CU_ASSERT_STRING_EQUAL(name, "resnet34");
    CU_ASSERT_STRING_EQUAL(byol_settings_path(enc), "model.encoder");
    const char *dirs[4];
    int n = 0;
    BYOL_CHECK_OK(byol_settings_strings(root, "plugin_path", dirs, 4, &n));
    CU_ASSERT_EQUAL(n, 2);
    /* A wrong type set from the command line is reported as such, without a line. */
    BYOL_CHECK_OK(byol_config_set(cfg, "train.steps=\"many\""));
    CU_ASSERT_EQUAL(byol_settings_int(train, "steps", 0, &steps), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("set.cfg: train.steps (from --set): ");
    CU_ASSERT_EQUAL(byol_config_set(cfg, "train.steps"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("--set train.steps: expected KEY.PATH=VALUE");
    CU_ASSERT_EQUAL(byol_config_set(cfg, "=3"), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_config_set(cfg, "train.steps.x=3"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("does not name a setting in a group");
    byol_config_free(cfg);
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"status messages", test_status_messages, 0},
        {"rng deterministic", test_rng_deterministic, 0},
        {"rng streams differ", test_rng_streams_differ, 0},
        {"rng uniform", test_rng_uniform, 0},
        {"rng normal", test_rng_normal, 0},
        {"settings values", test_settings_values, 0},
        {"settings floats", test_settings_floats, 0},
        {"settings strings", test_settings_strings, 0},
        {"settings defaults", test_settings_defaults, 0},
        {"settings paths", test_settings_paths, 0},
        {"settings type errors", test_settings_type_errors, 0},
        {"settings unknown keys", test_settings_unknown_keys, 0},
        {"config syntax error", test_config_syntax_error, 0},
        {"config missing files", test_config_missing_files, 0},
        {"config include", test_config_include, 0},
        {"config include nested", test_config_include_nested, 0},
        {"config not regular", test_config_not_regular, 0},
        {"config long string", test_config_long_string, 0},
        {"config wide integers", test_config_wide_ints, 0},
        {"config --set overrides", test_config_set, 0},
        {NULL, NULL, 0},
    };
    return byol_test_main(argc, argv, "core", cases);
}
