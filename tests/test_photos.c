/* The folder dataset on images as people have them (issue 18, item 3): crops of two real
 * photographs as baseline, progressive, CMYK, grayscale and EXIF-rotated JPEGs, PNGs in palette,
 * palette + tRNS, gray + alpha, 16-bit gray, RGBA and RGB form, tiny images that must be
 * upsampled and a PNG named .jpg (tests/data/photos, written by tests/data/gen_photos.py),
 * against torchvision's ImageFolder + [Grayscale] + Resize + CenterCrop + ToTensor; and broken
 * files (tests/data/photos-broken), each failing with a message naming it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/dataset.h"
#include "testutil.h"

#define PHOTOS_DIR BYOL_TEST_SOURCE_DIR "/data/photos"
#define BROKEN_DIR BYOL_TEST_SOURCE_DIR "/data/photos-broken"

/* The largest |ours - torchvision| allowed per image, by kind of file, in ToTensor units (one
 * grey level is 1/255). All 0 for now: the decoder and resampler reproduce Debian's Pillow
 * (the same libjpeg-turbo, the same 8-bit fixed-point filters) exactly. A decoder that
 * differs (DCT-domain scaling, another IDCT) relaxes its own kind here. */
#define TOL_JPEG_BASELINE 0.0
#define TOL_JPEG_PROGRESSIVE 0.0
#define TOL_JPEG_CMYK 0.0
#define TOL_JPEG_GRAY 0.0
#define TOL_JPEG_EXIF 0.0 /* Orientation 6, not applied (as torchvision's default loader) */
#define TOL_PNG 0.0
#define TOL_PNG_AS_JPG 0.0
#define TOL_TINY_JPEG 0.0
#define TOL_TINY_PNG 0.0

/* The tree in ImageFolder order (classes jpeg, png, tiny = labels 0, 1, 2; files by name). */
static const struct photo {
    const char *file; /* relative to photos/ */
    int label;
    double tol;
} g_photos[] = {
    {"jpeg/china_baseline.jpg", 0, TOL_JPEG_BASELINE},
    {"jpeg/china_progressive.jpg", 0, TOL_JPEG_PROGRESSIVE},
    {"jpeg/cmyk.jpg", 0, TOL_JPEG_CMYK},
    {"jpeg/exif_orientation6.jpg", 0, TOL_JPEG_EXIF},
    {"jpeg/flower_baseline.jpg", 0, TOL_JPEG_BASELINE},
    {"jpeg/flower_progressive.jpg", 0, TOL_JPEG_PROGRESSIVE},
    {"jpeg/gray.jpg", 0, TOL_JPEG_GRAY},
    {"png/gray16.png", 1, TOL_PNG},
    {"png/gray_alpha.png", 1, TOL_PNG},
    {"png/palette.png", 1, TOL_PNG},
    {"png/palette_trns.png", 1, TOL_PNG},
    {"png/really_png.jpg", 1, TOL_PNG_AS_JPG},
    {"png/rgb.png", 1, TOL_PNG},
    {"png/rgba.png", 1, TOL_PNG},
    {"tiny/t1x1.jpg", 2, TOL_TINY_JPEG},
    {"tiny/t1x1.png", 2, TOL_TINY_PNG},
    {"tiny/t3x2.jpg", 2, TOL_TINY_JPEG},
    {"tiny/t3x2.png", 2, TOL_TINY_PNG},
    {"tiny/t7x5.jpg", 2, TOL_TINY_JPEG},
    {"tiny/t7x5.png", 2, TOL_TINY_PNG},
};
#define N_PHOTOS (sizeof g_photos / sizeof g_photos[0])

/* Every image at (channels, size) against ref_c<channels>_s<size>.npy, one line per image. */
static void check_photos(int channels, int size)
{
    char ref[512];
    snprintf(ref, sizeof ref, "%s/ref_c%d_s%d.npy", PHOTOS_DIR, channels, size);
    struct byol_dataset *ds = NULL, *want = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(PHOTOS_DIR, channels, size, &ds));
    BYOL_CHECK_OK(byol_dataset_open_npy(ref, NULL, &want));
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(ds), "folder");
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), N_PHOTOS);
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(want), N_PHOTOS);
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == channels && h == size && w == size);
    byol_dataset_shape(want, &c, &h, &w);
    CU_ASSERT_FATAL(c == channels && h == size && w == size);
    size_t n = (size_t)channels * (size_t)size * (size_t)size;
    float *got = malloc(n * sizeof *got), *exp = malloc(n * sizeof *exp);
    CU_ASSERT_FATAL(got && exp);
    double worst = 0.0;
    for (size_t i = 0; i < N_PHOTOS; i++) {
        const struct photo *p = &g_photos[i];
        CU_ASSERT_EQUAL(byol_dataset_label(ds, i), p->label);
        BYOL_CHECK_OK(byol_dataset_get(ds, i, got));
        BYOL_CHECK_OK(byol_dataset_get(want, i, exp));
        double d = 0.0;
        size_t differ = 0;
        for (size_t k = 0; k < n; k++) {
            double e = fabs((double)got[k] - (double)exp[k]);
            differ += e > 0.0;
            d = e > d ? e : d;
        }
        worst = d > worst ? d : worst;
        printf("  c%d s%-2d [%2zu] %-27s max abs diff %.6g (%.2f/255, %zu of %zu values differ; "
               "tolerance %.6g)\n",
               channels, size, i, p->file, d, d * 255.0, differ, n, p->tol);
        if (!(d <= p->tol))
            fprintf(stderr, "\n  %s c%d s%d: max abs diff %.6g above its tolerance %.6g\n", p->file,
                    channels, size, d, p->tol);
        CU_ASSERT(d <= p->tol);
    }
    printf("  c%d s%d: worst max abs diff %.6g\n", channels, size, worst);
    free(got);
    free(exp);
    byol_dataset_free(ds);
    byol_dataset_free(want);
}

static void test_photos_c3_s32(void)
{
    check_photos(3, 32);
}
static void test_photos_c3_s96(void)
{
    check_photos(3, 96);
}
static void test_photos_c1_s32(void)
{
    check_photos(1, 32);
}
static void test_photos_c1_s96(void)
{
    check_photos(1, 96);
}

/* The labels: ImageFolder's targets (ref_labels.npy) and the table above. */
static void test_photos_labels(void)
{
    struct byol_dataset *ds = NULL, *want = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(PHOTOS_DIR, 3, 32, &ds));
    /* The labels file is 1-d: read it as the labels of a reference image file. */
    BYOL_CHECK_OK(
        byol_dataset_open_npy(PHOTOS_DIR "/ref_c3_s32.npy", PHOTOS_DIR "/ref_labels.npy", &want));
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), N_PHOTOS);
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(want), N_PHOTOS);
    for (size_t i = 0; i < N_PHOTOS; i++) {
        CU_ASSERT_EQUAL(byol_dataset_label(want, i), g_photos[i].label);
        CU_ASSERT_EQUAL(byol_dataset_label(ds, i), byol_dataset_label(want, i));
    }
    byol_dataset_free(ds);
    byol_dataset_free(want);
}

/* photos-broken/<case>/cls/: a_ok.png (image 0, a good 3x2 PNG) and the broken file (image 1).
 * Opening lists the tree; decoding the broken file fails with BYOL_ERR_FORMAT and one line
 * naming it (a reader that refuses it at open instead must name it there). */
static void test_photos_broken(void)
{
    static const struct {
        const char *name, *file;
    } cases[] = {
        {"truncated_jpeg", "b_cut.jpg"}, /* the first 60% of china_baseline.jpg */
        {"truncated_png", "b_cut.png"},  /* the first 60% of rgb.png */
        {"zero_byte", "b_empty.jpg"},    /* 0 bytes */
        {"text_jpeg", "b_notes.jpeg"},   /* a line of text */
    };
    float img[3 * 32 * 32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char root[512], path[600];
        snprintf(root, sizeof root, "%s/%s", BROKEN_DIR, cases[i].name);
        snprintf(path, sizeof path, "%s/cls/%s", root, cases[i].file);
        struct byol_dataset *ds = NULL;
        byol_status st = byol_dataset_open_folder(root, 3, 32, &ds);
        if (st != BYOL_OK) {
            CU_ASSERT_PTR_NULL(ds);
        } else {
            CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), 2);
            BYOL_CHECK_OK(byol_dataset_get(ds, 0, img));
            st = byol_dataset_get(ds, 1, img);
            CU_ASSERT_EQUAL(st, BYOL_ERR_FORMAT);
        }
        printf("  %-15s %s: %s\n", cases[i].name, byol_status_str(st), byol_last_error());
        CU_ASSERT(st != BYOL_OK);
        BYOL_ASSERT_MSG_HAS(path);
        CU_ASSERT(strchr(byol_last_error(), '\n') == NULL);
        byol_dataset_free(ds);
    }
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"photos_c3_s32", test_photos_c3_s32, 0},
        {"photos_c3_s96", test_photos_c3_s96, 0},
        {"photos_c1_s32", test_photos_c1_s32, 0},
        {"photos_c1_s96", test_photos_c1_s96, 0},
        {"photos_labels", test_photos_labels, 0},
        {"photos_broken", test_photos_broken, 0},
        {NULL, NULL, 0},
    };
    return byol_test_main(argc, argv, "photos", cases);
}
