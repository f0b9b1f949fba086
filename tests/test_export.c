/* byolctl export (core/io/export.c): a learner's checkpoint becomes the online encoder with
 * torchvision's names, dtypes and shapes (ResNet-18 against tests/fixtures/export_resnet18.txt,
 * written by gen_export.py), its values, dtype conversion, --drop, and broken inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byol/export.h"
#include "byol/learner.h"
#include "testutil.h"

static const char *dir; /* the scratch folder, made by main */
static struct byol_registry *reg;
static struct byol_backend *be;

/* ---- Helpers. ----------------------------------------------------------------------------- */

struct trained {
    struct byol_config *cfg;
    struct byol_learner *l;
};

/* A learner from config text, after one training step on pseudo-random views, so that the
 * online and target networks differ and the batch-norm counters are 1. */
static void train_one_step(const char *text, int image_size, struct trained *t)
{
    struct byol_learner_config c;
    byol_learner_config_default(&c);
    BYOL_CHECK_OK(byol_config_parse(text, "export-test.cfg", &t->cfg));
    const struct byol_settings *root = byol_config_root(t->cfg);
    BYOL_CHECK_OK(byol_learner_config_read(&c, byol_settings_child(root, "model"),
                                           byol_settings_child(root, "train")));
    BYOL_CHECK_OK(byol_learner_create(be, reg, &c, &t->l));
    size_t n = (size_t)c.batch_size * (size_t)c.in_channels * (size_t)image_size * image_size;
    float *views = malloc(2 * n * sizeof *views), loss = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    for (size_t i = 0; i < 2 * n; i++)
        views[i] = (float)sin(0.37 * (double)i) * 0.8f;
    BYOL_CHECK_OK(byol_learner_step(t->l, views, views + n, &loss));
    free(views);
}

static void trained_free(struct trained *t)
{
    byol_learner_free(t->l);
    byol_config_free(t->cfg);
}

static const struct byol_st_tensor *find(const struct byol_st_file *f, const char *name)
{
    const struct byol_st_tensor *t = byol_st_find(f, name);
    if (!t)
        fprintf(stderr, "\n  exported file lacks '%s'\n", name);
    return t;
}

/* Every exported tensor equals the online network's (F32) or its BN counter (I64), and the
 * file holds nothing else; returns how many tensors it holds. */
static size_t check_values(const struct byol_st_file *f, struct trained *t, int64_t batches)
{
    struct byol_net *online = byol_learner_online(t->l), *target = byol_learner_target(t->l);
    int differs_from_target = 0;
    for (size_t i = 0; i < byol_st_count(f); i++) {
        const struct byol_st_tensor *e = byol_st_at(f, i);
        const char *suffix = strrchr(e->name, '.');
        if (suffix && strcmp(suffix, ".num_batches_tracked") == 0) {
            int64_t v;
            CU_ASSERT_EQUAL(e->dtype, BYOL_ST_I64);
            CU_ASSERT_EQUAL(e->ndim, 0);
            memcpy(&v, e->data, sizeof v);
            CU_ASSERT_EQUAL(v, batches);
            continue;
        }
        const struct byol_param *p = byol_net_find_param(online, e->name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(e->dtype, BYOL_ST_F32);
        CU_ASSERT_EQUAL_FATAL(e->numel, p->numel);
        CU_ASSERT_EQUAL(memcmp(e->data, p->data, p->numel * sizeof(float)), 0);
        const struct byol_param *q = byol_net_find_param(target, e->name);
        differs_from_target |= memcmp(e->data, q->data, q->numel * sizeof(float)) != 0;
    }
    CU_ASSERT(differs_from_target); /* the online encoder, not the EMA target */
    return byol_st_count(f);
}

static void check_metadata(const struct byol_st_file *f, const char *ckpt)
{
    CU_ASSERT_STRING_EQUAL(byol_st_metadata(f, "format"), "pt");
    CU_ASSERT_STRING_EQUAL(byol_st_metadata(f, "source"), ckpt);
}

/* "name DTYPE d0,d1,..." lines of the fixture against the exported file: same names, dtypes
 * and shapes, skipping names that start with `skip` (NULL: none). Returns the lines used. */
static size_t check_manifest(const struct byol_st_file *f, const char *skip)
{
    size_t size, used = 0;
    char *text = (char *)byol_test_read_file(byol_test_fixture("export_resnet18.txt"), &size);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128], dtype[8], shape[64];
        CU_ASSERT_EQUAL_FATAL(sscanf(line, "%127s %7s %63s", name, dtype, shape), 3);
        if (skip && strncmp(name, skip, strlen(skip)) == 0)
            continue;
        used++;
        const struct byol_st_tensor *t = find(f, name);
        if (!t) {
            CU_FAIL("missing tensor");
            continue;
        }
        CU_ASSERT_STRING_EQUAL(byol_st_dtype_name(t->dtype), dtype);
        char got[64] = "-";
        size_t n = 0;
        for (int k = 0; k < t->ndim; k++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", k ? "," : "",
                                  (long long)t->dims[k]);
        if (strcmp(got, shape) != 0)
            fprintf(stderr, "\n  %s: shape %s, torchvision's %s\n", name, got, shape);
        CU_ASSERT_STRING_EQUAL(got, shape);
    }
    free(text);
    return used;
}

/* ---- ResNet-18 against torchvision's names. ----------------------------------------------- */

static void test_resnet18(void)
{
    struct trained t = {0};
    train_one_step("model = { encoder = { name = \"resnet18\"; in_channels = 3; };\n"
                   "  image_size = 32; projection_size = 8; projection_hidden_size = 16; };\n"
                   "train = { batch_size = 2; };",
                   32, &t);
    const char *ckpt = byol_test_path(dir, "r18.safetensors");
    const char *out = byol_test_path(dir, "r18-encoder.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(t.l, ckpt, 1));
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_export_encoder(ckpt, out, NULL));
    BYOL_CHECK_OK(byol_st_read(out, &f));
    size_t listed = check_manifest(f, NULL);
    CU_ASSERT_EQUAL(listed, 122);
    CU_ASSERT_EQUAL(check_values(f, &t, 1), listed); /* nothing beyond torchvision's names */
    check_metadata(f, ckpt);
    byol_st_free(f);
    /* Without fc: torchvision's names less fc.weight and fc.bias. */
    BYOL_CHECK_OK(byol_export_encoder(ckpt, out, "fc"));
    BYOL_CHECK_OK(byol_st_read(out, &f));
    listed = check_manifest(f, "fc.");
    CU_ASSERT_EQUAL(listed, 120);
    CU_ASSERT_EQUAL(byol_st_count(f), listed);
    CU_ASSERT_PTR_NULL(byol_st_find(f, "fc.weight"));
    byol_st_free(f);
    unlink(ckpt);
    unlink(out);
    trained_free(&t);
}

/* ---- A small config-defined encoder (fast, also under valgrind). -------------------------- */

static const char small_cfg[] =
    "model = { encoder = { name = \"layers\"; in_channels = 1; layers = (\n"
    "  { type = \"conv\"; name = \"conv1\"; out = 4; kernel = 3; pad = 1; },\n"
    "  { type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; name = \"relu\"; },\n"
    "  { type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; },\n"
    "  { type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"
    "  image_size = 8; projection_size = 8; projection_hidden_size = 16; };\n"
    "train = { batch_size = 4; };";

static void test_small(void)
{
    static const char *const names[] = {"conv1.weight",
                                        "conv1.bias",
                                        "bn1.weight",
                                        "bn1.bias",
                                        "bn1.running_mean",
                                        "bn1.running_var",
                                        "bn1.num_batches_tracked",
                                        "fc.weight",
                                        "fc.bias"};
    struct trained t = {0};
    train_one_step(small_cfg, 8, &t);
    const char *ckpt = byol_test_path(dir, "small.safetensors");
    const char *out = byol_test_path(dir, "small-encoder.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(t.l, ckpt, 1)); /* with optimizer state */
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_export_encoder(ckpt, out, NULL));
    BYOL_CHECK_OK(byol_st_read(out, &f));
    size_t have = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        have += find(f, names[i]) != NULL;
    CU_ASSERT_EQUAL(have, byol_st_count(f)); /* nothing else */
    CU_ASSERT(have >= 8);                    /* conv1.bias is optional */
    CU_ASSERT_EQUAL(check_values(f, &t, 1), have);
    check_metadata(f, ckpt);
    byol_st_free(f);
    /* --drop fc keeps conv1 and bn1; "f" is no layer and drops nothing. */
    BYOL_CHECK_OK(byol_export_encoder(ckpt, out, "fc"));
    BYOL_CHECK_OK(byol_st_read(out, &f));
    CU_ASSERT_PTR_NULL(byol_st_find(f, "fc.weight"));
    CU_ASSERT_PTR_NULL(byol_st_find(f, "fc.bias"));
    CU_ASSERT_PTR_NOT_NULL(byol_st_find(f, "bn1.num_batches_tracked"));
    CU_ASSERT_EQUAL(byol_st_count(f), have - 2);
    byol_st_free(f);
    CU_ASSERT_EQUAL(byol_export_encoder(ckpt, out, "f"), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("small.safetensors: the encoder has no layer 'f' to drop");
    trained_free(&t);
}

/* F64, F16 and BF16 encoder tensors come out as F32; I64 counters stay I64. An infinity is
 * refused: a checkpoint holding one is not a usable state. */
static void test_dtypes(void)
{
    const char *ckpt = byol_test_path(dir, "dtypes.safetensors");
    const char *out = byol_test_path(dir, "dtypes-encoder.safetensors");
    struct byol_st_writer *w = NULL;
    const double d[3] = {1.5, -2.25, 1e-3};
    const uint16_t half[3] = {0x3C00, 0xC000, 0x0001}; /* 1, -2, 2^-24 */
    uint16_t bf16[3] = {0x3F80, 0xC040, 0x7F7F};       /* 1, -3, the largest finite bf16 */
    const int64_t count = 7, dims[1] = {3};
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_add(w, "online_encoder.net.a.weight", BYOL_ST_F64, 1, dims, d));
    BYOL_CHECK_OK(byol_st_writer_add(w, "online_encoder.net.b.weight", BYOL_ST_F16, 1, dims, half));
    BYOL_CHECK_OK(
        byol_st_writer_add(w, "online_encoder.net.c.weight", BYOL_ST_BF16, 1, dims, bf16));
    BYOL_CHECK_OK(byol_st_writer_add(w, "online_encoder.net.b.num_batches_tracked", BYOL_ST_I64, 0,
                                     dims, &count));
    BYOL_CHECK_OK(byol_st_writer_add(w, "target_encoder.net.a.weight", BYOL_ST_F64, 1, dims, d));
    BYOL_CHECK_OK(byol_st_writer_save(w, ckpt));
    byol_st_writer_free(w);
    BYOL_CHECK_OK(byol_export_encoder(ckpt, out, NULL));
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(out, &f));
    CU_ASSERT_EQUAL(byol_st_count(f), 4);
    const float want[3][3] = {{1.5f, -2.25f, 1e-3f}, {1, -2, 0x1p-24f}, {1, -3, 0x1.fep127f}};
    const char *const names[3] = {"a.weight", "b.weight", "c.weight"};
    for (int k = 0; k < 3; k++) {
        const struct byol_st_tensor *t = find(f, names[k]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL(t->dtype, BYOL_ST_F32);
        CU_ASSERT_EQUAL(memcmp(t->data, want[k], sizeof want[k]), 0);
    }
    const struct byol_st_tensor *c = find(f, "b.num_batches_tracked");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->dtype, BYOL_ST_I64);
    int64_t got; /* tensor data need not be 8-byte aligned: read it with memcpy */
    memcpy(&got, c->data, sizeof got);
    CU_ASSERT_EQUAL(got, 7);
    byol_st_free(f);
    bf16[2] = 0x7F80; /* infinity */
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(
        byol_st_writer_add(w, "online_encoder.net.c.weight", BYOL_ST_BF16, 1, dims, bf16));
    BYOL_CHECK_OK(byol_st_writer_save(w, ckpt));
    byol_st_writer_free(w);
    CU_ASSERT_EQUAL(byol_export_encoder(ckpt, out, NULL), BYOL_ERR_NONFINITE);
    BYOL_ASSERT_MSG_HAS("dtypes.safetensors: tensor 'online_encoder.net.c.weight' holds NaN or "
                        "infinity (element 2)");
}

/* ---- Broken inputs. ----------------------------------------------------------------------- */

/* A safetensors file holding one F32 [2] tensor per name (NULL-terminated). */
static const char *write_tensors(const char *file, const char *const *names,
                                 enum byol_st_dtype dtype)
{
    const char *path = byol_test_path(dir, file);
    struct byol_st_writer *w = NULL;
    const int64_t dims[1] = {2};
    const int32_t v[2] = {1, 2};
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    for (int i = 0; names[i]; i++)
        BYOL_CHECK_OK(byol_st_writer_add(w, names[i], dtype, 1, dims, v));
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    byol_st_writer_free(w);
    return path;
}

/* export fails with `want`, one line holding `msg`, and leaves no output file behind. */
static void expect_fail(const char *ckpt, const char *drop, byol_status want, const char *msg)
{
    const char *out = byol_test_path(dir, "never.safetensors");
    CU_ASSERT_EQUAL(byol_export_encoder(ckpt, out, drop), want);
    BYOL_ASSERT_MSG_HAS(msg);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0);
}

static void test_broken(void)
{
    static const char *const exported[] = {"conv1.weight", "bn1.weight", NULL};
    static const char *const heads[] = {"online_encoder.projector.0.weight",
                                        "online_predictor.0.weight", NULL};
    static const char *const ints[] = {"online_encoder.net.conv1.weight", NULL};
    static const char *const one[] = {"online_encoder.net.fc.weight", NULL};
    const char *missing = byol_test_path(dir, "missing.safetensors");
    expect_fail(missing, NULL, BYOL_ERR_NOT_FOUND, "missing.safetensors: No such file");
    const char *junk = byol_test_path(dir, "junk.safetensors");
    byol_test_write_file(junk, "not a checkpoint", 16);
    expect_fail(junk, NULL, BYOL_ERR_FORMAT, "junk.safetensors: ");
    expect_fail(write_tensors("exported.safetensors", exported, BYOL_ST_F32), NULL, BYOL_ERR_FORMAT,
                "exported.safetensors: not a learner checkpoint: it has no online_encoder.* "
                "tensors");
    expect_fail(write_tensors("heads.safetensors", heads, BYOL_ST_F32), NULL, BYOL_ERR_FORMAT,
                "heads.safetensors: no online_encoder.net.* tensors to export");
    expect_fail(write_tensors("ints.safetensors", ints, BYOL_ST_I32), NULL, BYOL_ERR_FORMAT,
                "ints.safetensors: tensor 'online_encoder.net.conv1.weight' has dtype I32, "
                "expected a float type");
    expect_fail(write_tensors("one.safetensors", one, BYOL_ST_F32), "fc", BYOL_ERR_INVALID,
                "one.safetensors: dropping 'fc' leaves nothing to export");
    /* The output folder does not exist: the writer's message names the output. */
    const char *ok = write_tensors("ok.safetensors", one, BYOL_ST_F32);
    CU_ASSERT_EQUAL(byol_export_encoder(ok, byol_test_path(dir, "no/such/out.safetensors"), NULL),
                    BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS("no/such/out.safetensors: ");
    CU_ASSERT_EQUAL(byol_export_encoder(NULL, "x", NULL), BYOL_ERR_INVALID);
}

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("export");
    reg = byol_test_registry();
    be = byol_test_backend(reg, "blas", 2);
    static const struct byol_test_case cases[] = {
        {"ResNet-18 with torchvision's names", test_resnet18, 1},
        {"a config-defined encoder", test_small, 0},
        {"dtype conversion", test_dtypes, 0},
        {"broken inputs", test_broken, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "export", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
