/* Augmentation: every standard op against torchvision (fixtures/augment.safetensors), the
 * frequencies and ranges of random ops, bit-identical batches for any thread count, presets,
 * a clear message with the config line for each kind of bad setting, and no plugin taking a
 * standard op's name unnoticed. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"
#include "testutil.h"

static struct byol_registry *g_reg;
static struct byol_st_file *g_fx;

/* A pipeline from config text whose augment_fn is `list`, for images of `in`, from the ops
 * of `reg`. */
static byol_status make_pipeline_in(struct byol_registry *reg, const char *list,
                                    const struct byol_augment_info *in,
                                    struct byol_augment_pipeline **p)
{
    char text[4096];
    struct byol_config *cfg;
    snprintf(text, sizeof text, "seed = 1;\naugment_fn = %s;\n", list);
    byol_status st = byol_config_parse(text, "test.cfg", &cfg);
    if (st == BYOL_OK)
        st = byol_augment_pipeline_create(reg, byol_config_root(cfg), "augment_fn", 1, in, p);
    byol_config_free(cfg);
    return st;
}

static byol_status make_pipeline(const char *list, const struct byol_augment_info *in,
                                 struct byol_augment_pipeline **p)
{
    return make_pipeline_in(g_reg, list, in, p);
}

static byol_status apply_one(const struct byol_augment_pipeline *p, const float *in, float *out,
                             uint64_t stream)
{
    float *scratch = malloc((byol_augment_pipeline_scratch(p) + 1) * sizeof(float));
    struct byol_rng rng;
    byol_rng_init(&rng, 7, stream);
    byol_status st = byol_augment_pipeline_apply(p, in, out, scratch, &rng);
    free(scratch);
    return st;
}

/* ---- torchvision parity ----------------------------------------------------------------- */

static void parity_case(const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s/x", name);
    const struct byol_st_tensor *x = byol_st_find(g_fx, key);
    snprintf(key, sizeof key, "%s/y", name);
    const struct byol_st_tensor *y = byol_st_find(g_fx, key);
    snprintf(key, sizeof key, "%s/op", name);
    const char *op = byol_st_metadata(g_fx, key);
    snprintf(key, sizeof key, "%s/tol", name);
    const char *tol = byol_st_metadata(g_fx, key);
    CU_ASSERT_FATAL(x && y && op && tol);
    struct byol_augment_info in = {(int)x->dims[0], (int)x->dims[1], (int)x->dims[2], 0};
    in.image_size = (int)y->dims[1];
    char list[512];
    snprintf(list, sizeof list, "( %s )", op);
    struct byol_augment_pipeline *p = NULL;
    BYOL_CHECK_OK(make_pipeline(list, &in, &p));
    int c, h, w;
    byol_augment_pipeline_output(p, &c, &h, &w);
    CU_ASSERT(c == y->dims[0] && h == y->dims[1] && w == y->dims[2]);
    float *xin = malloc(x->nbytes), *ref = malloc(y->nbytes), *got = malloc(y->nbytes);
    memcpy(xin, x->data, x->nbytes);
    memcpy(ref, y->data, y->nbytes);
    BYOL_CHECK_OK(apply_one(p, xin, got, 1));
    printf("\n    %-18s", name);
    CU_ASSERT(byol_test_close(op, got, ref, y->numel, atof(tol), 0));
    free(xin);
    free(ref);
    free(got);
    byol_augment_pipeline_free(p);
}

static void test_torchvision_parity(void)
{
    int cases = 0;
    for (size_t i = 0; i < byol_st_count(g_fx); i++) {
        const char *name = byol_st_at(g_fx, i)->name;
        size_t n = strlen(name);
        if (n > 2 && strcmp(name + n - 2, "/x") == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(n - 2), name);
            parity_case(base);
            cases++;
        }
    }
    CU_ASSERT(cases >= 28);
}

/* ---- random ops: frequencies and ranges ------------------------------------------------- */

/* How often `op` changes a random 3x8x8 image, over n images. */
static double change_rate(const char *op, int n)
{
    struct byol_augment_info in = {3, 8, 8, 8};
    struct byol_augment_pipeline *p = NULL;
    float x[192], y[192];
    int changed = 0;
    for (int i = 0; i < 192; i++)
        x[i] = (float)((i * 37) % 101) / 100.0f;
    if (make_pipeline(op, &in, &p) != BYOL_OK)
        return -1;
    for (int i = 0; i < n; i++) {
        apply_one(p, x, y, (uint64_t)i);
        changed += memcmp(x, y, sizeof x) != 0;
    }
    byol_augment_pipeline_free(p);
    return (double)changed / n;
}

static void test_frequencies(void)
{
    /* 4000 draws: one standard deviation of a rate near 0.3 is 0.007; allow 4. */
    static const struct {
        const char *op;
        double p;
    } cases[] = {
        {"( { op = \"horizontal_flip\"; p = 0.3; } )", 0.3},
        {"( { op = \"horizontal_flip\"; } )", 0.5},
        {"( { op = \"grayscale\"; p = 0.2; } )", 0.2},
        {"( { op = \"solarize\"; threshold = 0.0; p = 0.7; } )", 0.7},
        {"( { op = \"random_apply\"; p = 0.25; ops = ( { op = \"solarize\"; threshold = 0.0; p = "
         "1.0; } ); } )",
         0.25},
        {"( { op = \"random_apply\"; p = 0.0; ops = ( { op = \"grayscale\"; p = 1.0; } ); } )",
         0.0},
        {"( { op = \"grayscale\"; p = 1.0; } )", 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double rate = change_rate(cases[i].op, 4000);
        printf("\n    %s: rate %.4f (p %.2f)", cases[i].op, rate, cases[i].p);
        CU_ASSERT(fabs(rate - cases[i].p) < 0.03);
    }
}

/* Crops of a 64x64 coordinate ramp resized to 4x4: the output's corners give the box back
 * (downsampling, so bilinear samples of a linear ramp are exact and never clamp). */
static void test_crop_ranges(void)
{
    enum { H = 64, S = 4, N = 2000 };
    struct byol_augment_info in = {2, H, H, S};
    struct byol_augment_pipeline *p = NULL;
    BYOL_CHECK_OK(make_pipeline("( { op = \"random_resized_crop\"; } )", &in, &p));
    float *x = malloc(2 * H * H * sizeof(float)), y[2 * S * S];
    for (int r = 0; r < H; r++)
        for (int c = 0; c < H; c++) {
            x[r * H + c] = (float)c;
            x[H * H + r * H + c] = (float)r;
        }
    double amin = 1, amax = 0, rmin = 10, rmax = 0;
    int outside = 0;
    for (int i = 0; i < N; i++) {
        BYOL_CHECK_OK(apply_one(p, x, y, (uint64_t)i));
        double w = (y[S - 1] - y[0]) * S / (S - 1),
               h = (y[S * S + S * (S - 1)] - y[S * S]) * S / (S - 1);
        double left = y[0] - (w / S * 0.5 - 0.5), top = y[S * S] - (h / S * 0.5 - 0.5);
        double area = w * h / (H * H), ratio = w / h;
        outside += left < -1e-3 || top < -1e-3 || left + w > H + 1e-3 || top + h > H + 1e-3;
        amin = fmin(amin, area), amax = fmax(amax, area);
        rmin = fmin(rmin, ratio), rmax = fmax(rmax, ratio);
    }
    printf("\n    area fraction [%.3f, %.3f], aspect [%.3f, %.3f]", amin, amax, rmin, rmax);
    /* Whole-pixel boxes: area and aspect may miss the range by a rounding of w and h. */
    CU_ASSERT(outside == 0);
    CU_ASSERT(amin >= 0.08 - 0.01 && amin < 0.12);
    CU_ASSERT(amax <= 1.0 + 1e-6 && amax > 0.9);
    CU_ASSERT(rmin >= 0.75 - 0.05 && rmin < 0.8);
    CU_ASSERT(rmax <= 4.0 / 3.0 + 0.06 && rmax > 1.25);
    free(x);
    byol_augment_pipeline_free(p);
}

/* brightness = 0.4 on a flat 0.5 image: each factor is out / 0.5, in [0.6, 1.4]. */
static void test_jitter_range(void)
{
    struct byol_augment_info in = {3, 4, 4, 4};
    struct byol_augment_pipeline *p = NULL;
    BYOL_CHECK_OK(make_pipeline("( { op = \"color_jitter\"; brightness = 0.4; } )", &in, &p));
    float x[48], y[48];
    double fmin_ = 10, fmax_ = 0;
    for (int i = 0; i < 48; i++)
        x[i] = 0.5f;
    for (int i = 0; i < 2000; i++) {
        BYOL_CHECK_OK(apply_one(p, x, y, (uint64_t)i));
        fmin_ = fmin(fmin_, y[0] / 0.5), fmax_ = fmax(fmax_, y[0] / 0.5);
    }
    printf("\n    brightness factors [%.4f, %.4f]", fmin_, fmax_);
    CU_ASSERT(fmin_ >= 0.6 - 1e-6 && fmin_ < 0.61);
    CU_ASSERT(fmax_ <= 1.4 + 1e-6 && fmax_ > 1.39);
    byol_augment_pipeline_free(p);
}

/* ---- determinism ------------------------------------------------------------------------ */

static float *random_batch(size_t n)
{
    float *x = malloc(n * sizeof(float));
    struct byol_rng r;
    byol_rng_init(&r, 99, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = byol_rng_uniform(&r);
    return x;
}

static void test_determinism(void)
{
    enum { B = 12, C = 3, H = 20, S = 16 };
    struct byol_augment_info in = {C, H, H, S};
    struct byol_augment_pipeline *p = NULL;
    BYOL_CHECK_OK(byol_augment_pipeline_preset(g_reg, "byol_paper", 2, &in, &p));
    float *x = random_batch((size_t)B * C * H * H);
    size_t n = (size_t)B * C * S * S;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    float *c = malloc(n * sizeof(float)), *one = malloc((size_t)C * S * S * sizeof(float));
    struct byol_augment_pool *p1 = NULL, *p2 = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(1, &p1));
    BYOL_CHECK_OK(byol_augment_pool_create(2, &p2));
    BYOL_CHECK_OK(byol_augment_batch(p1, p, x, B, a, 5, 17, 2));
    BYOL_CHECK_OK(byol_augment_batch(p2, p, x, B, b, 5, 17, 2));
    CU_ASSERT(memcmp(a, b, n * sizeof(float)) == 0); /* 1 vs 2 threads */
    BYOL_CHECK_OK(byol_augment_batch(p2, p, x, B, c, 5, 17, 2));
    CU_ASSERT(memcmp(a, c, n * sizeof(float)) == 0); /* a second run */
    BYOL_CHECK_OK(byol_augment_batch(p2, p, x, B, c, 5, 18, 2));
    CU_ASSERT(memcmp(a, c, n * sizeof(float)) != 0); /* another step */
    BYOL_CHECK_OK(byol_augment_batch(p2, p, x, B, c, 5, 17, 1));
    CU_ASSERT(memcmp(a, c, n * sizeof(float)) != 0); /* another view */
    /* Image 7 alone, from its own stream: a pure function of (seed, step, index, view). */
    struct byol_rng rng;
    float *scratch = malloc(byol_augment_pipeline_scratch(p) * sizeof(float));
    byol_rng_init(&rng, 5, byol_rng_stream_id(17, 7, 2, BYOL_AUGMENT_STREAM));
    BYOL_CHECK_OK(byol_augment_pipeline_apply(p, x + 7 * C * H * H, one, scratch, &rng));
    CU_ASSERT(memcmp(one, a + 7 * C * S * S, (size_t)C * S * S * sizeof(float)) == 0);
    /* Different images draw different crops. */
    CU_ASSERT(memcmp(a, a + C * S * S, (size_t)C * S * S * sizeof(float)) != 0);
    byol_augment_pool_free(p1);
    byol_augment_pool_free(p2);
    byol_augment_pipeline_free(p);
    free(scratch);
    free(one);
    free(x);
    free(a);
    free(b);
    free(c);
}

/* ---- presets and the identity ---------------------------------------------------------- */

static void test_presets(void)
{
    struct byol_augment_info rgb = {3, 40, 36, 32}, gray = {1, 28, 28, 28};
    struct byol_augment_pipeline *p = NULL;
    int c, h, w;
    BYOL_CHECK_OK(byol_augment_pipeline_preset(g_reg, "byol_pytorch_default", 1, &rgb, &p));
    byol_augment_pipeline_output(p, &c, &h, &w);
    CU_ASSERT(c == 3 && h == 32 && w == 32 && byol_augment_pipeline_length(p) == 6);
    byol_augment_pipeline_free(p);
    BYOL_CHECK_OK(byol_augment_pipeline_preset(g_reg, "byol_pytorch_default", 1, &gray, &p));
    byol_augment_pipeline_output(p, &c, &h, &w);
    CU_ASSERT(c == 1 && h == 28 && byol_augment_pipeline_length(p) == 5); /* no grayscale */
    byol_augment_pipeline_free(p);
    BYOL_CHECK_OK(byol_augment_pipeline_preset(g_reg, "byol_paper", 1, &rgb, &p));
    CU_ASSERT(byol_augment_pipeline_length(p) == 7);
    byol_augment_pipeline_free(p);
    CU_ASSERT_EQUAL(byol_augment_pipeline_preset(g_reg, "simclr", 1, &rgb, &p), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), "unknown augmentation preset 'simclr'"));
}

/* augment_fn = "byol_paper" without augment_fn2: view 2 is the paper's second view. */
static void test_views(void)
{
    struct byol_augment_info in = {3, 24, 24, 16};
    struct byol_config *cfg;
    struct byol_augment_pipeline *views[2], *ref = NULL;
    BYOL_CHECK_OK(byol_config_parse("augment_fn = \"byol_paper\";", "v.cfg", &cfg));
    BYOL_CHECK_OK(byol_augment_views_create(g_reg, byol_config_root(cfg), &in, views));
    BYOL_CHECK_OK(byol_augment_pipeline_preset(g_reg, "byol_paper", 2, &in, &ref));
    float *x = random_batch(3 * 24 * 24), y[3 * 16 * 16], z[3 * 16 * 16];
    int same = 1;
    for (uint64_t s = 0; s < 20; s++) {
        BYOL_CHECK_OK(apply_one(views[1], x, y, s));
        BYOL_CHECK_OK(apply_one(ref, x, z, s));
        same &= memcmp(y, z, sizeof y) == 0;
    }
    CU_ASSERT(same);
    byol_augment_pipeline_free(views[0]);
    byol_augment_pipeline_free(views[1]);
    byol_augment_pipeline_free(ref);
    byol_config_free(cfg);
    /* () is the identity for both views. */
    BYOL_CHECK_OK(byol_config_parse("augment_fn = ();", "v.cfg", &cfg));
    BYOL_CHECK_OK(byol_augment_views_create(g_reg, byol_config_root(cfg), &in, views));
    CU_ASSERT(byol_augment_pipeline_length(views[0]) == 0 &&
              byol_augment_pipeline_length(views[1]) == 0);
    float id[3 * 24 * 24];
    BYOL_CHECK_OK(apply_one(views[1], x, id, 3));
    CU_ASSERT(memcmp(id, x, sizeof id) == 0);
    byol_augment_pipeline_free(views[0]);
    byol_augment_pipeline_free(views[1]);
    byol_config_free(cfg);
    free(x);
}

/* ---- bad settings ----------------------------------------------------------------------- */

static void expect_bad(const char *list, int channels, byol_status want, const char *message)
{
    struct byol_augment_info in = {channels, 16, 16, 16};
    struct byol_augment_pipeline *p = NULL;
    byol_status st = make_pipeline(list, &in, &p);
    printf("\n    -> %s", byol_last_error());
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), message));
}

static void test_bad_settings(void)
{
    expect_bad("(\n { op = \"horizontal_flip\"; },\n { op = \"nosuch\"; }\n)", 3,
               BYOL_ERR_NOT_FOUND,
               "test.cfg:4: augment_fn[1].op: unknown augmentation op 'nosuch' (known: ");
    expect_bad("(\n { op = \"gaussian_blur\"; sigma = 1.0; }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0]: gaussian_blur: missing required 'kernel_size'");
    expect_bad("(\n { op = \"normalize\"; mean = [0.5, 0.5, 0.5]; }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0]: normalize: missing required 'std'");
    expect_bad("(\n { op = \"horizontal_flip\";\n   p = 1.5; }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:4: augment_fn[0].p: a probability must be in [0, 1], got 1.5");
    expect_bad("(\n { op = \"random_apply\"; p = -0.1; ops = (); }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0].p: a probability must be in [0, 1], got -0.1");
    expect_bad("(\n { op = \"grayscale\"; p = 0.2; }\n)", 1, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0]: grayscale needs 3-channel (RGB) images, these have 1 "
               "channel");
    expect_bad("(\n { op = \"color_jitter\"; brightness = 0.4;\n   hue = 0.1; }\n)", 1,
               BYOL_ERR_INVALID,
               "test.cfg:4: augment_fn[0].hue: needs 3-channel (RGB) images, these have 1 channel");
    expect_bad("( { op = \"normalize\"; mean = [0.5, 0.5, 0.5]; std = [0.2, 0.2, 0.2]; } )", 1,
               BYOL_ERR_INVALID, "augment_fn[0].mean: has 3 values, the images have 1 channel");
    expect_bad("(\n { op = \"horizontal_flip\"; prob = 0.5; }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0].prob: unknown setting (known: op, p)");
    expect_bad("(\n { p = 0.5; }\n)", 3, BYOL_ERR_INVALID,
               "test.cfg:3: augment_fn[0]: missing required 'op'");
    expect_bad("( { op = \"random_apply\"; ops = ( { op = \"resize\"; size = 8; } ); } )", 3,
               BYOL_ERR_SHAPE, "random_apply's ops must keep the image shape");
    expect_bad("\"simclr\"", 3, BYOL_ERR_NOT_FOUND,
               "test.cfg:2: augment_fn: unknown augmentation preset 'simclr'");
    expect_bad("5", 3, BYOL_ERR_INVALID, "test.cfg:2: augment_fn: expected a list of ops");
    expect_bad("( { op = \"random_resized_crop\"; scale = [0.5, 0.1]; } )", 3, BYOL_ERR_INVALID,
               "augment_fn[0].scale: range [0.5, 0.1] must satisfy");
    expect_bad("( { op = \"gaussian_blur\"; kernel_size = 4; } )", 3, BYOL_ERR_INVALID,
               "augment_fn[0].kernel_size: must be odd");
    expect_bad("( { op = \"center_crop\"; size = 20; } )", 3, BYOL_ERR_INVALID,
               "a 20x20 crop does not fit in the 16x16 images");
}

/* ---- plugin names ------------------------------------------------------------------------ */

#define STD_PLUGIN BYOL_TEST_PLUGIN_DIR "/byol-augment-std.so"

/* A copy of the standard ops plugin as dir/name (its real path into `out`): a plugin that
 * registers every standard name. */
static void copy_std(const char *dir, const char *name, char out[PATH_MAX])
{
    size_t n;
    unsigned char *so = byol_test_read_file(STD_PLUGIN, &n);
    const char *path = byol_test_path(dir, name);
    byol_test_write_file(path, so, n);
    free(so);
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(path, out));
}

/* A registry searching `first` (may be NULL), then the build's plugin folder. */
static struct byol_registry *registry_in(const char *first)
{
    struct byol_registry *reg = NULL;
    BYOL_CHECK_OK(byol_registry_create(&reg));
    if (first)
        BYOL_CHECK_OK(byol_registry_add_search_dir(reg, first));
    BYOL_CHECK_OK(byol_registry_add_search_dir(reg, BYOL_TEST_PLUGIN_DIR));
    return reg;
}

/* The file the op `name` comes from when asked for by name. */
static const char *origin(struct byol_registry *reg, const char *name)
{
    const void *ops = NULL;
    byol_status st = byol_registry_require(reg, BYOL_PLUGIN_AUGMENT, name, &ops);
    const struct byol_registry_entry *e = byol_registry_find(reg, BYOL_PLUGIN_AUGMENT, name);
    CU_ASSERT_EQUAL(st, BYOL_OK);
    CU_ASSERT_PTR_EQUAL(e ? e->ops : NULL, ops);
    return st == BYOL_OK && e ? e->path : "";
}

/* A plugin that takes a standard op's name does not shadow it silently: loaded beside the
 * standard plugin (the config's `plugins`, or a plugin_path folder) the lookup by name fails,
 * naming both files; asked for by its path it is used for that op only. A same-named copy of
 * the standard plugin in an earlier folder of the search path takes its place, as on $PATH. */
static void test_plugin_names(void)
{
    char std[PATH_MAX], mine[PATH_MAX], copy[PATH_MAX], own[PATH_MAX], first[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(STD_PLUGIN, std));
    snprintf(own, sizeof own, "%s", byol_test_tmpdir("augment-own"));
    snprintf(first, sizeof first, "%s", byol_test_tmpdir("augment-first"));
    copy_std(own, "byol-augment-mine.so", mine);
    copy_std(first, "byol-augment-std.so", copy);
    struct byol_augment_info in = {1, 8, 8, 8};
    struct byol_augment_pipeline *p = NULL;
    const char *normalize = "( { op = \"normalize\"; mean = [0.5]; std = [0.25]; } )";

    /* Loaded as a file of the config's plugins. */
    struct byol_registry *reg = registry_in(NULL);
    BYOL_CHECK_OK(byol_registry_load_file(reg, mine));
    CU_ASSERT_EQUAL(make_pipeline_in(reg, normalize, &in, &p), BYOL_ERR_DUPLICATE);
    printf("\n    -> %s", byol_last_error());
    CU_ASSERT_PTR_NULL(p);
    BYOL_ASSERT_MSG_HAS("test.cfg:2: augment_fn[0].op: ");
    BYOL_ASSERT_MSG_HAS(mine);
    BYOL_ASSERT_MSG_HAS(std);
    byol_registry_free(reg);

    /* In a folder of the search path. */
    reg = registry_in(own);
    CU_ASSERT_EQUAL(make_pipeline_in(reg, normalize, &in, &p), BYOL_ERR_DUPLICATE);
    BYOL_ASSERT_MSG_HAS(mine);
    BYOL_ASSERT_MSG_HAS(std);
    byol_registry_free(reg);

    /* By path, after or before the standard plugin: its own op there, the standard one by
     * name. */
    for (int std_first = 1; std_first >= 0; std_first--) {
        const void *by_path = NULL;
        reg = registry_in(NULL);
        if (std_first)
            CU_ASSERT_STRING_EQUAL(origin(reg, "horizontal_flip"), std);
        BYOL_CHECK_OK(byol_registry_require(reg, BYOL_PLUGIN_AUGMENT, mine, &by_path));
        CU_ASSERT_STRING_EQUAL(origin(reg, "random_resized_crop"), std);
        CU_ASSERT_PTR_NOT_NULL(by_path);
        CU_ASSERT_PTR_NOT_EQUAL(
            by_path, byol_registry_find(reg, BYOL_PLUGIN_AUGMENT, "random_resized_crop")->ops);
        BYOL_CHECK_OK(make_pipeline_in(reg, normalize, &in, &p));
        byol_augment_pipeline_free(p);
        p = NULL;
        byol_registry_free(reg);
    }

    /* A copy of the standard plugin under its own file name, earlier in the path. */
    reg = registry_in(first);
    CU_ASSERT_STRING_EQUAL(origin(reg, "normalize"), copy);
    CU_ASSERT_STRING_EQUAL(origin(reg, "gaussian_blur"), copy);
    byol_registry_free(reg);

    byol_test_remove_tree(own);
    byol_test_remove_tree(first);
}

int main(int argc, char **argv)
{
    g_reg = byol_test_registry();
    if (byol_st_read(byol_test_fixture("augment.safetensors"), &g_fx) != BYOL_OK) {
        fprintf(stderr, "test_augment: %s\n", byol_last_error());
        return 2;
    }
    static const struct byol_test_case cases[] = {
        {"torchvision parity", test_torchvision_parity, 0},
        {"frequencies of random ops", test_frequencies, 0},
        {"crop area and aspect ranges", test_crop_ranges, 0},
        {"jitter factor ranges", test_jitter_range, 0},
        {"determinism: threads, runs, streams", test_determinism, 0},
        {"presets", test_presets, 0},
        {"views and the identity", test_views, 0},
        {"bad settings", test_bad_settings, 0},
        {"plugin op names: no silent shadowing", test_plugin_names, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "augment", cases);
    byol_st_free(g_fx);
    byol_registry_free(g_reg);
    return rc;
}
