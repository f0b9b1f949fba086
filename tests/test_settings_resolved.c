/* What a config resolved to (core/runtime/settings.c, core/runtime/config_digest.c): the record of reads with
 * defaults and --set values marked, the digest of the settings that decide the trained state
 * and its comparison message, and checkpoint metadata (byol_learner_save_state_meta). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/learner.h"
#include "byol/safetensors.h"
#include "byol/trainer.h"
#include "testutil.h"

static const char *dir; /* scratch folder, made by main */
static struct byol_registry *reg;
static struct byol_backend *be;

static struct byol_config *parse_ok(const char *text)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(text, "resolved.cfg", &cfg));
    return cfg;
}

static char *resolved(const struct byol_config *cfg)
{
    char *text = NULL;
    BYOL_CHECK_OK(byol_config_resolved_text(cfg, &text));
    return text;
}

#define ASSERT_HAS(text, needle)                                                                   \
    do {                                                                                           \
        if (!strstr((text), (needle)))                                                             \
            fprintf(stderr, "\n  text lacks \"%s\":\n%s\n", (needle), (text));                     \
        CU_ASSERT_PTR_NOT_NULL(strstr((text), (needle)));                                          \
    } while (0)

/* ---- the record --------------------------------------------------------------------------- */

static const char *record_text =
    "seed = 3;\n"
    "train = { lr = 1; steps = 10; name = \"a \\\"b\\\"\"; };\n"
    "aug = ( { op = \"flip\"; }, { op = \"crop\"; scale = (0.5, 1); } );\n"
    "aug2 = ();\n";

/* Read what a run would: values from the file, defaults, a list of op groups. */
static void read_like_a_run(struct byol_config *cfg)
{
    const struct byol_settings *root = byol_config_root(cfg);
    const struct byol_settings *train = byol_settings_child(root, "train");
    const struct byol_settings *aug = byol_settings_child(root, "aug");
    int64_t i;
    double d;
    int b;
    const char *s;
    BYOL_CHECK_OK(byol_settings_int(root, "seed", 0, &i));
    BYOL_CHECK_OK(byol_settings_float(train, "lr", 0.5, &d)); /* an integer read as a float */
    BYOL_CHECK_OK(byol_settings_int(train, "steps", 0, &i));
    BYOL_CHECK_OK(byol_settings_int(train, "batch_size", 64, &i));
    BYOL_CHECK_OK(byol_settings_string(train, "name", NULL, &s));
    BYOL_CHECK_OK(byol_settings_string(train, "init_from", NULL, &s));
    BYOL_CHECK_OK(byol_settings_float(train, "weight_decay", 3e-4, &d));
    BYOL_CHECK_OK(byol_settings_bool(byol_settings_child(root, "model.encoder"), "zero", 0, &b));
    for (int k = 0; k < byol_settings_length(aug); k++) {
        const struct byol_settings *e = byol_settings_elem(aug, k);
        double v[2];
        int n;
        BYOL_CHECK_OK(byol_settings_string(e, "op", NULL, &s));
        BYOL_CHECK_OK(byol_settings_float(e, "p", 0.5, &d));
        BYOL_CHECK_OK(byol_settings_floats(e, "scale", v, 2, &n));
    }
    CU_ASSERT_EQUAL(byol_settings_length(byol_settings_child(root, "aug2")), 0);
}

/* File values as they were used, defaults marked, unset ones as comments; lists as lists. */
static void test_resolved_text(void)
{
    struct byol_config *cfg = parse_ok(record_text);
    read_like_a_run(cfg);
    char *text = resolved(cfg);
    ASSERT_HAS(text, "seed = 3;\n");
    ASSERT_HAS(text, "train = {\n  lr = 1.0;\n  steps = 10;\n  batch_size = 64;  # default\n");
    ASSERT_HAS(text, "  name = \"a \\\"b\\\"\";\n  # init_from: not set\n");
    ASSERT_HAS(text, "  weight_decay = 0.0003;  # default\n");
    ASSERT_HAS(text, "model = {\n  encoder = {\n    zero = false;  # default\n  };\n};\n");
    ASSERT_HAS(text, "aug = (\n  {\n    op = \"flip\";\n    p = 0.5;  # default\n"
                     "    # scale: not set\n  },\n  {\n    op = \"crop\";\n");
    ASSERT_HAS(text, "    scale = [0.5, 1.0];\n  }\n);\n");
    ASSERT_HAS(text, "aug2 = ();\n");
    /* It is a config: read back, it resolves to the same values (now all from the file). */
    struct byol_config *again = parse_ok(text);
    read_like_a_run(again);
    char *text2 = resolved(again);
    CU_ASSERT_PTR_NULL(strstr(text2, "# default"));
    char *d1 = NULL, *d2 = NULL, h1[17], h2[17];
    BYOL_CHECK_OK(byol_config_digest(cfg, &d1, h1));
    BYOL_CHECK_OK(byol_config_digest(again, &d2, h2));
    CU_ASSERT_STRING_EQUAL(d1, d2);
    CU_ASSERT_STRING_EQUAL(h1, h2);
    CU_ASSERT_EQUAL(strlen(h1), 16);
    free(d1);
    free(d2);
    free(text2);
    free(text);
    byol_config_free(again);
    byol_config_free(cfg);
}

/* model, model.encoder, ... are stand-ins when the file leaves them out: reads from them are
 * recorded, but presence and key checks do not see them, and errors say "(not set)". */
static void test_standin_groups(void)
{
    struct byol_config *cfg = parse_ok("seed = 1;\n");
    const struct byol_settings *root = byol_config_root(cfg);
    const struct byol_settings *model = byol_settings_child(root, "model");
    CU_ASSERT_PTR_NOT_NULL_FATAL(model);
    CU_ASSERT_STRING_EQUAL(byol_settings_path(model), "model");
    CU_ASSERT_PTR_EQUAL(byol_settings_child(model, "encoder"),
                        byol_settings_child(root, "model.encoder"));
    CU_ASSERT_EQUAL(byol_settings_has(root, "model"), 0);
    CU_ASSERT_PTR_NULL(byol_settings_child(root, "eval")); /* not a group every run reads */
    CU_ASSERT_PTR_NULL(byol_settings_child(model, "hidden_layer"));
    BYOL_CHECK_OK(byol_settings_check_keys(root, (const char *const[]){"seed", NULL}));
    BYOL_CHECK_OK(byol_settings_check_keys(model, (const char *const[]){NULL}));
    CU_ASSERT_EQUAL(byol_settings_length(model), 0);
    CU_ASSERT_EQUAL(byol_settings_error(model, BYOL_ERR_INVALID, "missing 'x'"), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "resolved.cfg: model (not set): missing 'x'");
    int64_t v;
    BYOL_CHECK_OK(byol_settings_int(model, "image_size", 32, &v));
    CU_ASSERT_EQUAL(v, 32);
    char *text = resolved(cfg);
    ASSERT_HAS(text, "model = {\n  image_size = 32;  # default\n};\n");
    free(text);
    /* A --set into a missing group makes a real one. */
    BYOL_CHECK_OK(byol_config_set(cfg, "model.image_size=28"));
    CU_ASSERT_EQUAL(byol_settings_has(root, "model"), 1);
    BYOL_CHECK_OK(byol_settings_int(byol_settings_child(root, "model"), "image_size", 32, &v));
    CU_ASSERT_EQUAL(v, 28);
    byol_config_free(cfg);
}

/* --set values are marked; a --set replacing a recorded setting drops the old record; two
 * readers of one path with different defaults are both shown. */
static void test_resolved_set_and_conflicts(void)
{
    struct byol_config *cfg = parse_ok("train = { lr = 0.1; steps = 5; };\n");
    const struct byol_settings *root = byol_config_root(cfg);
    double lr;
    int64_t v;
    BYOL_CHECK_OK(byol_settings_float(byol_settings_child(root, "train"), "lr", 0, &lr));
    BYOL_CHECK_OK(byol_config_set(cfg, "train.lr=0.25"));
    BYOL_CHECK_OK(byol_config_set(cfg, "data.format=mock"));
    const struct byol_settings *train = byol_settings_child(root, "train");
    BYOL_CHECK_OK(byol_settings_int(train, "steps", 0, &v));
    BYOL_CHECK_OK(byol_settings_float(train, "lr", 0, &lr));
    const char *s;
    BYOL_CHECK_OK(byol_settings_string(byol_settings_child(root, "data"), "format", "idx", &s));
    const struct byol_settings *backend = byol_settings_child(root, "backend");
    BYOL_CHECK_OK(byol_settings_int(backend, "threads", 4, &v));
    BYOL_CHECK_OK(byol_settings_int(backend, "threads", 1, &v));
    char *text = resolved(cfg);
    ASSERT_HAS(text, "train = {\n  steps = 5;\n  lr = 0.25;  # --set\n};\n");
    CU_ASSERT_PTR_NULL(strstr(text, "0.1;"));
    ASSERT_HAS(text, "data = {\n  format = \"mock\";  # --set\n};\n");
    ASSERT_HAS(text, "  threads = 4;  # default; also read as 1\n");
    free(text);
    byol_config_free(cfg);
}

/* Two threads reading at once: every read recorded once. */
static void *read_many(void *arg)
{
    const struct byol_settings *train = arg;
    for (int k = 0; k < 200; k++) {
        char name[16];
        int64_t v;
        snprintf(name, sizeof name, "k%d", k % 50);
        if (byol_settings_int(train, name, k % 50, &v) != BYOL_OK)
            return arg;
    }
    return NULL;
}

static void test_record_threads(void)
{
    struct byol_config *cfg = parse_ok("train = { k0 = 7; };\n");
    const struct byol_settings *train = byol_settings_child(byol_config_root(cfg), "train");
    pthread_t t[2];
    void *r[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, read_many, (void *)train), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], &r[i]);
        CU_ASSERT_PTR_NULL(r[i]);
    }
    char *digest = NULL, hex[17];
    BYOL_CHECK_OK(byol_config_digest(cfg, &digest, hex));
    int lines = 0;
    for (const char *p = digest; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 50);
    ASSERT_HAS(digest, "train.k0 = 7\ntrain.k1 = 1\ntrain.k10 = 10\n");
    free(digest);
    byol_config_free(cfg);
}

/* ---- digests of whole runs (byol_train_check) ---------------------------------------------- */

static const char *run_text(const char *aug, int image_size)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "seed = 3;\n"
             "backend = { threads = 1; };\n"
             "model = { encoder = { name = \"layers\"; in_channels = 1; layers = (\n"
             "  { type = \"conv\"; name = \"conv1\"; out = 4; kernel = 3; pad = 1; },\n"
             "  { type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; name = \"relu\"; },\n"
             "  { type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; },\n"
             "  { type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"
             "  image_size = %d; projection_size = 8; projection_hidden_size = 16; };\n"
             "augment_fn = ( %s { op = \"random_resized_crop\"; scale = [0.5, 1.0]; } );\n"
             "data = { format = \"mock\"; length = 8; };\n"
             "train = { steps = 10; batch_size = 4; lr = 0.001; checkpoint_dir = \"ck\"; };\n",
             image_size, aug);
    return text;
}

static const char *flip = "{ op = \"horizontal_flip\"; p = 0.5; },";

/* Check a run's config (with --set assignments) and take its digest. */
static void run_digest(const char *text, const char *const *sets, char **digest, char hex[17],
                       char **resolved_out)
{
    struct byol_config *cfg = parse_ok(text);
    for (const char *const *s = sets; s && *s; s++)
        BYOL_CHECK_OK(byol_config_set(cfg, *s));
    struct byol_train_options o = {.root = byol_config_root(cfg), .config_dir = dir};
    BYOL_CHECK_OK(byol_train_check(be, reg, &o));
    /* What the trainer does: it holds the root view only. */
    CU_ASSERT_PTR_EQUAL(byol_settings_config(o.root), cfg);
    CU_ASSERT_PTR_EQUAL(byol_settings_config(byol_settings_child(o.root, "model.encoder")), cfg);
    BYOL_CHECK_OK(byol_config_digest(byol_settings_config(o.root), digest, hex));
    if (resolved_out)
        *resolved_out = resolved(cfg);
    byol_config_free(cfg);
}

/* After byol_train_check the record holds the core's and the plugins' settings. */
static void test_check_records_everything(void)
{
    char *digest, hex[17], *text;
    run_digest(run_text(flip, 8), NULL, &digest, hex, &text);
    ASSERT_HAS(text, "  batch_size = 4;\n");
    ASSERT_HAS(text, "  weight_decay = 0.0;  # default\n");
    ASSERT_HAS(text, "      bias = true;  # default\n"); /* a layer's, in a list in a group */
    ASSERT_HAS(text, "augment_fn = (\n  {\n    op = \"horizontal_flip\";\n    p = 0.5;\n");
    ASSERT_HAS(text, "    scale = [0.5, 1.0];\n");
    ASSERT_HAS(text, "  checkpoint_dir = \"ck\";\n");
    ASSERT_HAS(digest, "augment_fn[0].op = \"horizontal_flip\"\n");
    ASSERT_HAS(digest, "model.image_size = 8\n");
    ASSERT_HAS(digest, "train.lr = 0.001\n");
    CU_ASSERT_PTR_NULL(strstr(digest, "checkpoint_dir"));
    CU_ASSERT_PTR_NULL(strstr(digest, "threads"));
    free(digest);
    free(text);
}

/* Run-only settings leave the digest alone; lr, image size and augment ops change it. */
static void test_digest_run_only(void)
{
    static const char *const run_only[] = {"train.checkpoint_dir=\"elsewhere\"",
                                           "backend.threads=2", "train.keep_checkpoints=9",
                                           "train.checkpoint_every=1", NULL};
    static const char *const lr[] = {"train.lr=0.01", NULL};
    char *base, *other, hb[17], ho[17];
    run_digest(run_text(flip, 8), NULL, &base, hb, NULL);
    run_digest(run_text(flip, 8), run_only, &other, ho, NULL);
    CU_ASSERT_STRING_EQUAL(base, other);
    CU_ASSERT_STRING_EQUAL(hb, ho);
    BYOL_CHECK_OK(byol_config_digest_compare("ck/latest.safetensors", base, other));
    free(other);

    run_digest(run_text(flip, 8), lr, &other, ho, NULL);
    CU_ASSERT_STRING_NOT_EQUAL(hb, ho);
    CU_ASSERT_EQUAL(byol_config_digest_compare("ck/latest.safetensors", base, other),
                    BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "ck/latest.safetensors: written by another config: "
                                              "train.lr = 0.001 there, 0.01 here");
    free(other);

    run_digest(run_text(flip, 6), NULL, &other, ho, NULL);
    CU_ASSERT_STRING_NOT_EQUAL(hb, ho);
    CU_ASSERT_EQUAL(byol_config_digest_compare("x", base, other), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("model.image_size = 8 there, 6 here");
    free(other);

    /* Another op, and one op fewer: the differing keys are named with both values. */
    run_digest(run_text("{ op = \"horizontal_flip\"; p = 0.7; },", 8), NULL, &other, ho, NULL);
    CU_ASSERT_STRING_NOT_EQUAL(hb, ho);
    CU_ASSERT_EQUAL(byol_config_digest_compare("x", base, other), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("augment_fn[0].p = 0.5 there, 0.7 here");
    free(other);
    run_digest(run_text("", 8), NULL, &other, ho, NULL);
    CU_ASSERT_EQUAL(byol_config_digest_compare("x", base, other), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("augment_fn[0].op = \"horizontal_flip\" there, \"random_resized_crop\" "
                        "here");
    BYOL_ASSERT_MSG_HAS("augment_fn[1].op = \"random_resized_crop\" there, (not set) here");
    free(other);
    free(base);
}

/* The message: at most three keys, "(and N more)", "(not set)", long values cut, one line. */
static void test_digest_compare_message(void)
{
    const char *there = "a = 1\nb = 2\nc = 3\nd = 4\ne = \"x\"\n";
    const char *here =
        "a = 1\nb = 20\nc = 30\nd = 40\nf = \"0123456789012345678901234567890123456789"
        "0123456789\"\n";
    CU_ASSERT_EQUAL(byol_config_digest_compare("ck.st", there, here), BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), "ck.st: written by another config: b = 2 there, 20 "
                                              "here; c = 3 there, 30 here; d = 4 there, 40 here "
                                              "(and 2 more)");
    CU_ASSERT_EQUAL(byol_config_digest_compare("ck.st", "e = 1\n",
                                               "f = \"0123456789012345678901"
                                               "2345678901234567890123456789\"\n"),
                    BYOL_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(byol_last_error(),
                           "ck.st: written by another config: e = 1 there, (not set) here; f = "
                           "(not set) there, \"012345678901234567890123456789012345... here");
    BYOL_CHECK_OK(byol_config_digest_compare("ck.st", there, there));
    BYOL_CHECK_OK(byol_config_digest_compare("ck.st", "a = 1\nb = 2\n", "b = 2\na = 1"));
    CU_ASSERT_EQUAL(byol_config_digest_compare("ck.st", NULL, there), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("ck.st: no config digest");
}

/* ---- checkpoint metadata -------------------------------------------------------------------- */

static struct byol_learner *tiny_learner(struct byol_config **cfg)
{
    struct byol_learner_config c;
    struct byol_learner *l = NULL;
    byol_learner_config_default(&c);
    *cfg = parse_ok(run_text("", 8));
    const struct byol_settings *root = byol_config_root(*cfg);
    BYOL_CHECK_OK(byol_learner_config_read(&c, byol_settings_child(root, "model"),
                                           byol_settings_child(root, "train")));
    BYOL_CHECK_OK(byol_learner_create(be, reg, &c, &l));
    return l;
}

static void test_save_state_meta(void)
{
    struct byol_config *cfg;
    struct byol_learner *l = tiny_learner(&cfg);
    char *digest, hex[17], *v = NULL;
    BYOL_CHECK_OK(byol_config_digest(cfg, &digest, hex));
    const char *path = byol_test_path(dir, "meta.safetensors");
    const char *const kv[] = {"config", digest, "config_digest", hex, "step", "12", NULL};
    BYOL_CHECK_OK(byol_learner_save_state_meta(l, path, 1, kv));
    BYOL_CHECK_OK(byol_state_read_metadata(path, "config", &v));
    CU_ASSERT_STRING_EQUAL(v, digest); /* multi-line text survives the JSON header */
    free(v);
    BYOL_CHECK_OK(byol_state_read_metadata(path, "config_digest", &v));
    CU_ASSERT_STRING_EQUAL(v, hex);
    free(v);
    BYOL_CHECK_OK(byol_state_read_metadata(path, "format", &v));
    CU_ASSERT_STRING_EQUAL(v, "byol-c learner state");
    free(v);
    BYOL_CHECK_OK(byol_state_read_metadata(path, "seed", &v));
    CU_ASSERT_PTR_NULL(v);
    BYOL_CHECK_OK(byol_learner_load_state(l, path)); /* still a learner state */

    /* The plain save has no config: an old checkpoint reads as "absent". */
    const char *plain = byol_test_path(dir, "plain.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(l, plain, 0));
    BYOL_CHECK_OK(byol_state_read_metadata(plain, "config", &v));
    CU_ASSERT_PTR_NULL(v);

    const char *const odd[] = {"config", NULL};
    CU_ASSERT_EQUAL(byol_learner_save_state_meta(l, plain, 0, odd), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("metadata key 'config' has no value");
    const char *const twice[] = {"a", "1", "a", "2", NULL};
    CU_ASSERT_EQUAL(byol_learner_save_state_meta(l, plain, 0, twice), BYOL_ERR_DUPLICATE);
    BYOL_ASSERT_MSG_HAS("metadata key 'a' given twice");
    const char *const format[] = {"format", "x", NULL};
    CU_ASSERT_EQUAL(byol_learner_save_state_meta(l, plain, 0, format), BYOL_ERR_DUPLICATE);
    CU_ASSERT_NOT_EQUAL(
        byol_state_read_metadata(byol_test_path(dir, "none.safetensors"), "config", &v), BYOL_OK);
    BYOL_ASSERT_MSG_HAS("none.safetensors");
    free(digest);
    byol_learner_free(l);
    byol_config_free(cfg);
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"resolved text", test_resolved_text, 0},
        {"stand-in groups", test_standin_groups, 0},
        {"--set and two defaults", test_resolved_set_and_conflicts, 0},
        {"reads from two threads", test_record_threads, 0},
        {"check records everything", test_check_records_everything, 0},
        {"digest and run-only keys", test_digest_run_only, 0},
        {"digest compare message", test_digest_compare_message, 0},
        {"save_state_meta round trip", test_save_state_meta, 0},
        {NULL, NULL, 0},
    };
    dir = byol_test_tmpdir("resolved");
    reg = byol_test_registry();
    be = byol_test_backend(reg, "blas", 1);
    int rc = byol_test_main(argc, argv, "settings resolved", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    byol_test_remove_tree(dir);
    return rc;
}
