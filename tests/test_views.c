/* Views cut from the originals (issue 18; core/data/augment_views.c): a region resampled
 * straight from the photo against torchvision's resized_crop on the PIL image
 * (tests/data/photos/rrc_*.npy), exact where the JPEG is decoded at full scale and within a
 * stated tolerance where DCT-domain scaling does the first part of the shrinking; views that do
 * not depend on the thread count or on how a batch is split between processes; the
 * resized-first path equal to byol_dataset_get + the pipelines (byol-pytorch's order); a
 * 6000x4000 JPEG that is not decoded in full for a 96 px view; broken files named. */
#include <math.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "byol/registry.h"
#include "byol/settings.h"
#include "testutil.h"

#define PHOTOS_DIR BYOL_TEST_SOURCE_DIR "/data/photos"
#define BROKEN_DIR BYOL_TEST_SOURCE_DIR "/data/photos-broken"

/* |ours - torchvision| allowed per pixel (ToTensor units) for a region decoded with JPEG's
 * DCT scaling, and for its mean over the region. The scaled IDCT keeps a block's low
 * frequencies where Pillow's triangle filter averages neighbouring pixels: two different
 * low-pass filters, which part at sharp edges. Measured on these photos (Zen 4, libjpeg-turbo
 * 2.1.5): at most 34/255 at a pixel, at most 4.9/255 on average. At full scale the result is
 * exact. */
#define TOL_SCALED_MAX (40.0 / 255.0)
#define TOL_SCALED_MEAN (6.0 / 255.0)

static struct byol_registry *g_reg;

static struct byol_dataset *open_photos(const char *root, int channels, int size)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, channels, size, &ds));
    return ds;
}

/* Both views from config text (augment_fn, and augment_fn2 when the text has it), for images
 * of c x s x s. */
static void make_views(const char *text, int c, int s, struct byol_augment_pipeline *views[2])
{
    struct byol_config *cfg = NULL;
    struct byol_augment_info info = {c, s, s, s};
    BYOL_CHECK_OK(byol_config_parse(text, "views.cfg", &cfg));
    BYOL_CHECK_OK(byol_augment_views_create(g_reg, byol_config_root(cfg), &info, views));
    byol_config_free(cfg);
}

static void free_views(struct byol_augment_pipeline *views[2])
{
    byol_augment_pipeline_free(views[0]);
    byol_augment_pipeline_free(views[1]);
}

/* ---- against torchvision ----------------------------------------------------------------- */

/* The index of photos/<file> in ImageFolder order. */
static size_t photo_index(const struct byol_dataset *ds, const char *file)
{
    static const char *const order[] = {"jpeg/china_baseline.jpg", "jpeg/china_progressive.jpg",
                                        "jpeg/cmyk.jpg", "jpeg/exif_orientation6.jpg",
                                        "jpeg/flower_baseline.jpg"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (strcmp(order[i], file) == 0)
            return i;
    CU_FAIL_FATAL("a box file not in the table");
    (void)ds;
    return 0;
}

/* Whether a box is decoded at full scale: no n/8 < 1 keeps it at least size x size. */
static int full_scale(int h, int w, int size)
{
    return h * 7 < size * 8 || w * 7 < size * 8;
}

static void check_boxes(int size, int *exact, int *scaled)
{
    char path[512], file[128];
    snprintf(path, sizeof path, "%s/rrc_s%d.npy", PHOTOS_DIR, size);
    struct byol_dataset *want = NULL, *ds = open_photos(PHOTOS_DIR, 3, size);
    BYOL_CHECK_OK(byol_dataset_open_npy(path, NULL, &want));
    FILE *f = fopen(PHOTOS_DIR "/rrc_boxes.txt", "r");
    CU_ASSERT_FATAL(f != NULL);
    size_t n = (size_t)3 * size * size;
    float *got[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    float *ref = malloc(n * sizeof(float));
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(1, &pool));
    int t, l, h, w;
    *exact = *scaled = 0;
    for (size_t i = 0; fscanf(f, "%127s %d %d %d %d", file, &t, &l, &h, &w) == 5; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "augment_fn = ( { op = \"%s/test-plugins/byol-augment-fixed_region.so\"; "
                 "size = %d; box = [%d, %d, %d, %d]; } );",
                 BYOL_TEST_BINARY_DIR, size, t, l, h, w);
        struct byol_augment_pipeline *views[2];
        make_views(text, 3, size, views);
        size_t index = photo_index(ds, file);
        CU_ASSERT_EQUAL(byol_augment_views_from_originals(ds, views, 0), 1);
        BYOL_CHECK_OK(byol_augment_views_batch(pool, ds, &index, 1, 0, views, 0, 1, 0, got));
        BYOL_CHECK_OK(byol_dataset_get(want, i, ref));
        double sum = 0, max = 0;
        for (size_t k = 0; k < n; k++) {
            double d = fabs((double)got[0][k] - ref[k]);
            sum += d;
            max = d > max ? d : max;
        }
        int full = full_scale(h, w, size);
        printf("  %s [%d %d %d %d] -> %d: %s, max diff %.1f/255, mean %.3f/255\n", file, t, l, h, w,
               size, full ? "full scale" : "DCT-scaled", max * 255, sum / (double)n * 255);
        if (full) {
            CU_ASSERT_EQUAL(max, 0.0);
            ++*exact;
        } else {
            CU_ASSERT(max <= TOL_SCALED_MAX);
            CU_ASSERT(sum / (double)n <= TOL_SCALED_MEAN);
            ++*scaled;
        }
        CU_ASSERT_EQUAL(memcmp(got[0], got[1], n * sizeof(float)), 0); /* view 2 = view 1 */
        free_views(views);
    }
    fclose(f);
    free(got[0]);
    free(got[1]);
    free(ref);
    byol_augment_pool_free(pool);
    byol_dataset_free(want);
    byol_dataset_free(ds);
}

static void test_boxes_32(void)
{
    int exact, scaled;
    check_boxes(32, &exact, &scaled);
    CU_ASSERT_EQUAL(scaled, 12); /* every box is 37 px or more */
}

static void test_boxes_96(void)
{
    int exact, scaled;
    check_boxes(96, &exact, &scaled);
    CU_ASSERT(exact > 0 && scaled > 0); /* both kinds were checked */
}

/* ---- the same views however the work is shared ------------------------------------------- */

/* Views of images 0..n-1 of ds: with `threads` threads, in slices of `slice` images (each
 * slice placed as a data-parallel process would place its share). */
static void views_of(const struct byol_dataset *ds, struct byol_augment_pipeline *views[2],
                     int threads, size_t slice, int resize_first, float *out[2])
{
    size_t n = byol_dataset_count(ds), per[2];
    size_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[n - 1 - i] = i; /* any order: here backwards */
    for (int v = 0; v < 2; v++) {
        int c, h, w;
        byol_augment_pipeline_output(views[v], &c, &h, &w);
        per[v] = (size_t)c * h * w;
    }
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(threads, &pool));
    for (size_t first = 0; first < n; first += slice) {
        size_t m = n - first < slice ? n - first : slice;
        float *o[2] = {out[0] + first * per[0], out[1] + first * per[1]};
        BYOL_CHECK_OK(byol_augment_views_batch(pool, ds, idx + first, m, first, views, resize_first,
                                               42, 7, o));
    }
    byol_augment_pool_free(pool);
    free(idx);
}

static void check_shared(const char *preset)
{
    char text[256];
    snprintf(text, sizeof text, "augment_fn = \"%s\";", preset);
    struct byol_dataset *ds = open_photos(PHOTOS_DIR, 3, 32);
    struct byol_augment_pipeline *views[2];
    make_views(text, 3, 32, views);
    CU_ASSERT_EQUAL(byol_augment_views_from_originals(ds, views, 0), 1);
    CU_ASSERT_EQUAL(byol_augment_views_from_originals(ds, views, 1), 0);
    size_t n = byol_dataset_count(ds) * 3 * 32 * 32;
    float *a[2] = {malloc(n * 4), malloc(n * 4)}, *b[2] = {malloc(n * 4), malloc(n * 4)};
    views_of(ds, views, 1, n, 0, a);
    views_of(ds, views, 2, 3, 0, b);
    for (int v = 0; v < 2; v++)
        CU_ASSERT_EQUAL(memcmp(a[v], b[v], n * sizeof(float)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a[0], a[1], n * sizeof(float)), 0); /* the views differ */
    for (int v = 0; v < 2; v++) {
        free(a[v]);
        free(b[v]);
    }
    free_views(views);
    byol_dataset_free(ds);
}

static void test_shared_byol_paper(void)
{
    check_shared("byol_paper");
}

static void test_shared_pytorch_default(void)
{
    check_shared("byol_pytorch_default");
}

/* resize_first, and any dataset without originals: byol_dataset_get, then each pipeline, with
 * the streams of byol_augment_batch_at (so runs on idx data are what they were). */
static void check_resized_first(struct byol_dataset *ds, int channels, int resize_first)
{
    int c, s;
    byol_dataset_shape(ds, &c, &s, NULL);
    struct byol_augment_pipeline *views[2];
    make_views("augment_fn = \"byol_paper\";", channels, s, views);
    CU_ASSERT_EQUAL(byol_augment_views_from_originals(ds, views, resize_first), 0);
    size_t n = byol_dataset_count(ds), img = (size_t)channels * s * s, plane = (size_t)s * s;
    float *got[2] = {malloc(n * img * 4), malloc(n * img * 4)};
    float *want = malloc(n * img * 4), *in = malloc(n * img * 4), *one = malloc(img * 4);
    size_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++) {
        idx[n - 1 - i] = i;
        BYOL_CHECK_OK(byol_dataset_get(ds, i, one));
        for (int k = 0; k < channels; k++) /* a 1-channel dataset repeated */
            memcpy(in + (n - 1 - i) * img + k * plane, one + (c == 1 ? 0 : k * plane), plane * 4);
    }
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(2, &pool));
    BYOL_CHECK_OK(byol_augment_views_batch(pool, ds, idx, n, 5, views, resize_first, 3, 11, got));
    for (int v = 0; v < 2; v++) {
        BYOL_CHECK_OK(byol_augment_batch_at(pool, views[v], in, n, 5, want, 3, 11, v + 1));
        CU_ASSERT_EQUAL(memcmp(got[v], want, n * img * sizeof(float)), 0);
    }
    byol_augment_pool_free(pool);
    free_views(views);
    free(got[0]);
    free(got[1]);
    free(want);
    free(in);
    free(one);
    free(idx);
}

static void test_resize_first(void)
{
    struct byol_dataset *ds = open_photos(PHOTOS_DIR, 3, 24);
    check_resized_first(ds, 3, 1);
    byol_dataset_free(ds);
}

static void test_without_originals(void)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_mock(6, 1, 20, 9, &ds));
    check_resized_first(ds, 3, 0); /* gray data into 3-channel views */
    byol_dataset_free(ds);
}

/* ---- multi-crop: local views beside the global ones ----------------------------------- */

#define MC_LOCAL 3
#define MC_SIZE 12

/* The two global views of `text` and its multicrop group's pipeline, for c x s x s images. */
static void make_multicrop(const char *text, int c, int s, struct byol_augment_pipeline *views[2],
                           struct byol_multicrop *mc)
{
    struct byol_config *cfg = NULL;
    struct byol_augment_info info = {c, s, s, s};
    BYOL_CHECK_OK(byol_config_parse(text, "views.cfg", &cfg));
    BYOL_CHECK_OK(byol_augment_views_create(g_reg, byol_config_root(cfg), &info, views));
    BYOL_CHECK_OK(byol_augment_multicrop_create(g_reg, byol_config_root(cfg), &info, mc));
    byol_config_free(cfg);
}

/* All 2 + MC_LOCAL views of ds's images (backwards, as views_of), with `threads` threads in
 * slices of `slice` images; out[v] holds view v of every image. */
static void multicrop_of(const struct byol_dataset *ds, struct byol_augment_pipeline *const *pipes,
                         int threads, size_t slice, float *const *out, const size_t *per)
{
    size_t n = byol_dataset_count(ds);
    size_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[n - 1 - i] = i;
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(threads, &pool));
    for (size_t first = 0; first < n; first += slice) {
        size_t m = n - first < slice ? n - first : slice;
        float *o[2 + MC_LOCAL];
        for (int v = 0; v < 2 + MC_LOCAL; v++)
            o[v] = out[v] + first * per[v];
        BYOL_CHECK_OK(byol_augment_views_batch_n(pool, ds, idx + first, m, first, 2 + MC_LOCAL,
                                                 pipes, 0, 42, 7, o));
    }
    byol_augment_pool_free(pool);
    free(idx);
}

/* From the originals (one decode for all five views) and from data without originals (each
 * pipeline on the dataset's image): local view k draws from view k + 3's stream, every view is
 * the same for any thread count and slicing, and the local views have their own size. */
static void check_multicrop(struct byol_dataset *ds, int originals)
{
    int c, s;
    byol_dataset_shape(ds, &c, &s, NULL);
    c = 3;
    struct byol_augment_pipeline *views[2];
    struct byol_multicrop mc;
    make_multicrop("augment_fn = \"byol_paper\";\n"
                   "multicrop = { views = 3; size = 12; augment_fn = (\n"
                   "  { op = \"random_resized_crop\"; scale = [0.05, 0.4]; },\n"
                   "  { op = \"horizontal_flip\"; } ); };",
                   c, s, views, &mc);
    CU_ASSERT_EQUAL(mc.views, MC_LOCAL);
    CU_ASSERT_EQUAL(mc.size, MC_SIZE);
    struct byol_augment_pipeline *pipes[2 + MC_LOCAL] = {views[0], views[1], mc.pipeline,
                                                        mc.pipeline, mc.pipeline};
    CU_ASSERT_EQUAL(byol_augment_views_from_originals_n(ds, 2 + MC_LOCAL, pipes, 0), originals);
    size_t n = byol_dataset_count(ds), per[2 + MC_LOCAL];
    float *a[2 + MC_LOCAL], *b[2 + MC_LOCAL];
    for (int v = 0; v < 2 + MC_LOCAL; v++) {
        int oc, oh, ow;
        byol_augment_pipeline_output(pipes[v], &oc, &oh, &ow);
        CU_ASSERT_EQUAL(oh, v < 2 ? s : MC_SIZE);
        per[v] = (size_t)oc * oh * ow;
        a[v] = malloc(n * per[v] * sizeof(float));
        b[v] = malloc(n * per[v] * sizeof(float));
    }
    multicrop_of(ds, pipes, 1, n, a, per);
    multicrop_of(ds, pipes, 2, 3, b, per);
    for (int v = 0; v < 2 + MC_LOCAL; v++)
        CU_ASSERT_EQUAL(memcmp(a[v], b[v], n * per[v] * sizeof(float)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a[2], a[3], n * per[2] * sizeof(float)), 0);
    if (!originals) { /* each view is its pipeline on the image, with its own stream */
        size_t img = (size_t)c * s * s, plane = (size_t)s * s;
        float *in = malloc(n * img * sizeof(float)), *one = malloc(img * sizeof(float));
        float *want = malloc(n * per[0] * sizeof(float));
        int dc;
        byol_dataset_shape(ds, &dc, NULL, NULL);
        for (size_t i = 0; i < n; i++) {
            BYOL_CHECK_OK(byol_dataset_get(ds, i, one));
            for (int k = 0; k < c; k++)
                memcpy(in + (n - 1 - i) * img + k * plane, one + (dc == 1 ? 0 : k * plane),
                       plane * sizeof(float));
        }
        struct byol_augment_pool *pool = NULL;
        BYOL_CHECK_OK(byol_augment_pool_create(1, &pool));
        for (int v = 0; v < 2 + MC_LOCAL; v++) {
            BYOL_CHECK_OK(byol_augment_batch_at(pool, pipes[v], in, n, 0, want, 42, 7, v + 1));
            CU_ASSERT_EQUAL(memcmp(a[v], want, n * per[v] * sizeof(float)), 0);
        }
        byol_augment_pool_free(pool);
        free(in);
        free(one);
        free(want);
    }
    for (int v = 0; v < 2 + MC_LOCAL; v++) {
        free(a[v]);
        free(b[v]);
    }
    free_views(views);
    byol_augment_multicrop_free(&mc);
    CU_ASSERT_PTR_NULL(mc.pipeline);
}

static void test_multicrop_originals(void)
{
    struct byol_dataset *ds = open_photos(PHOTOS_DIR, 3, 32);
    check_multicrop(ds, 1);
    byol_dataset_free(ds);
}

static void test_multicrop_dataset(void)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_mock(6, 1, 20, 9, &ds));
    check_multicrop(ds, 0);
    byol_dataset_free(ds);
}

/* The multicrop group's mistakes, each named with its file and line. */
static void test_multicrop_errors(void)
{
    static const char *const cases[][2] = {
        {"multicrop = { views = -1; size = 8; };",
         "views.cfg:1: multicrop.views: local views per image must be in 0..16, got -1"},
        {"multicrop = { views = 17; size = 8; };",
         "views.cfg:1: multicrop.views: local views per image must be in 0..16, got 17"},
        {"multicrop = { views = 2; };",
         "views.cfg:1: multicrop: missing 'size' (the local views' side in pixels, at most "
         "model.image_size = 16)"},
        {"multicrop = { views = 2; size = 0; };",
         "views.cfg:1: multicrop.size: the local views' side must be in 1..16 "
         "(model.image_size), got 0"},
        {"multicrop = { views = 2; size = 17; };",
         "views.cfg:1: multicrop.size: the local views' side must be in 1..16 "
         "(model.image_size), got 17"},
        {"multicrop = { views = 2; size = 8; crops = 3; };", "views.cfg:1: multicrop.crops"},
        {"multicrop = { views = 2; size = 8; augment_fn = ( { op = \"horizontal_flip\"; } ); };",
         "views.cfg:1: multicrop.augment_fn: it makes 3x16x16 images, not the local views' "
         "3x8x8: end it with a random_resized_crop, resize or center_crop to multicrop.size"},
        {"augment_fn = ( { op = \"horizontal_flip\"; } );\nmulticrop = { views = 2; size = 8; };",
         "views.cfg:2: multicrop: augment_fn makes 3x16x16 images, not the local views' 3x8x8: "
         "give multicrop an augment_fn of its own"},
    };
    struct byol_augment_info info = {3, 16, 16, 16};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct byol_config *cfg = NULL;
        struct byol_multicrop mc = {5, 5, NULL};
        BYOL_CHECK_OK(byol_config_parse(cases[i][0], "views.cfg", &cfg));
        CU_ASSERT_NOT_EQUAL(byol_augment_multicrop_create(g_reg, byol_config_root(cfg), &info, &mc),
                            BYOL_OK);
        CU_ASSERT_PTR_NULL(mc.pipeline);
        CU_ASSERT_EQUAL(mc.views, 0);
        if (strncmp(byol_last_error(), cases[i][1], strlen(cases[i][1])) != 0)
            fprintf(stderr, "\ncase %zu: got \"%s\"\n", i, byol_last_error());
        CU_ASSERT_EQUAL(strncmp(byol_last_error(), cases[i][1], strlen(cases[i][1])), 0);
        byol_config_free(cfg);
    }
    /* No group, or views = 0: nothing to build. */
    struct byol_config *cfg = NULL;
    struct byol_multicrop mc;
    BYOL_CHECK_OK(byol_config_parse("multicrop = { views = 0; };", "views.cfg", &cfg));
    BYOL_CHECK_OK(byol_augment_multicrop_create(g_reg, byol_config_root(cfg), &info, &mc));
    CU_ASSERT_EQUAL(mc.views, 0);
    CU_ASSERT_PTR_NULL(mc.pipeline);
    byol_config_free(cfg);
}

/* ---- a large photo --------------------------------------------------------------------- */

static void write_jpeg(const char *path, int w, int h)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 85, TRUE);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++) {
            row[x * 3] = (unsigned char)(x * 255 / w);
            row[x * 3 + 1] = (unsigned char)(y * 255 / h);
            row[x * 3 + 2] = (unsigned char)(((x / 40 + y / 40) % 2) * 200);
        }
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    free(row);
}

/* 6000x4000 and 2 views of 96 px: the regions cover at least 8% of the photo, so JPEG decodes
 * them at 1/8 .. 2/8 scale: far fewer pixels than the photo's 24 million per image. */
static void test_large_photo(void)
{
    const char *dir = byol_test_tmpdir("views");
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/cls", dir);
    CU_ASSERT_FATAL(mkdir(sub, 0777) == 0);
    snprintf(path, sizeof path, "%s/big.jpg", sub);
    write_jpeg(path, 6000, 4000);
    struct byol_dataset *ds = open_photos(dir, 3, 96);
    struct byol_augment_pipeline *views[2];
    make_views("augment_fn = \"byol_paper\";", 3, 96, views);
    size_t n = 3 * 96 * 96, idx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float *out[2] = {malloc(8 * n * 4), malloc(8 * n * 4)};
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(2, &pool));
    uint64_t images0, pixels0, images1, pixels1;
    byol_image_decode_stats(&images0, &pixels0);
    BYOL_CHECK_OK(byol_augment_views_batch(pool, ds, idx, 8, 0, views, 0, 5, 1, out));
    byol_image_decode_stats(&images1, &pixels1);
    double per_image = (double)(pixels1 - pixels0) / (double)(images1 - images0);
    printf("  6000x4000 JPEG, 2 views of 96 px: %llu decodes, %.0f pixels each (%.2f%% of the "
           "photo)\n",
           (unsigned long long)(images1 - images0), per_image, per_image / 24e6 * 100);
    CU_ASSERT_EQUAL(images1 - images0, 8); /* one decode for both views */
    CU_ASSERT(per_image <= 24e6 / 16);
    byol_augment_pool_free(pool);
    free_views(views);
    free(out[0]);
    free(out[1]);
    byol_dataset_free(ds);
    byol_test_remove_tree(dir);
}

/* ---- broken files ------------------------------------------------------------------------ */

static void test_broken(void)
{
    static const char *const cases[][2] = {{"truncated_jpeg", "b_cut.jpg"},
                                           {"truncated_png", "b_cut.png"},
                                           {"zero_byte", "b_empty.jpg"},
                                           {"text_jpeg", "b_notes.jpeg"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char root[512];
        snprintf(root, sizeof root, "%s/%s", BROKEN_DIR, cases[i][0]);
        struct byol_dataset *ds = open_photos(root, 3, 32);
        struct byol_augment_pipeline *views[2];
        make_views("augment_fn = \"byol_paper\";", 3, 32, views);
        size_t idx[2] = {0, 1}, n = 3 * 32 * 32;
        float *out[2] = {malloc(2 * n * 4), malloc(2 * n * 4)};
        struct byol_augment_pool *pool = NULL;
        BYOL_CHECK_OK(byol_augment_pool_create(2, &pool));
        CU_ASSERT_EQUAL(byol_augment_views_batch(pool, ds, idx, 2, 0, views, 0, 1, 0, out),
                        BYOL_ERR_FORMAT);
        BYOL_ASSERT_MSG_HAS(cases[i][1]);
        byol_augment_pool_free(pool);
        free_views(views);
        free(out[0]);
        free(out[1]);
        byol_dataset_free(ds);
    }
}

int main(int argc, char **argv)
{
    g_reg = byol_test_registry();
    static const struct byol_test_case cases[] = {
        {"region against torchvision, 32 px", test_boxes_32, 0},
        {"region against torchvision, 96 px", test_boxes_96, 0},
        {"byol_paper views: threads and slices", test_shared_byol_paper, 0},
        {"byol_pytorch_default views: threads and slices", test_shared_pytorch_default, 0},
        {"resize_first: get, then the pipelines", test_resize_first, 0},
        {"data without originals: as before", test_without_originals, 0},
        {"a 6000x4000 JPEG is not decoded in full", test_large_photo, 1},
        {"broken files are named", test_broken, 0},
        {"multi-crop views from the originals", test_multicrop_originals, 0},
        {"multi-crop views from data without originals", test_multicrop_dataset, 0},
        {"multi-crop settings refused with file and line", test_multicrop_errors, 0},
        {NULL, NULL, 0}};
    int rc = byol_test_main(argc, argv, "views", cases);
    byol_registry_free(g_reg);
    return rc;
}
