/* Tests of the cifar, npy, folder and mock dataset readers and of byol_dataset_open_settings:
 * files written here (good and broken in each way a reader must name) and the small image
 * trees under tests/data, compared with torchvision's decode (tests/data/gen_images.py). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "byol/dataset.h"
#include "byol/settings.h"
#include "testutil.h"

#define DATA_DIR BYOL_TEST_SOURCE_DIR "/data"

static const char *g_dir; /* the scratch folder, made by main */

/* ---- Files. ---------------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = byol_test_read_file(from, &n);
    byol_test_write_file(to, b, n);
    free(b);
}

/* The status must be `want`, with a one-line message naming `path` and containing `needle`. */
static void expect_error(byol_status st, byol_status want, const char *path, const char *needle)
{
    CU_ASSERT_EQUAL(st, want);
    BYOL_ASSERT_MSG_HAS(path);
    BYOL_ASSERT_MSG_HAS(needle);
    CU_ASSERT(strchr(byol_last_error(), '\n') == NULL);
    printf("  %s\n", byol_last_error());
}

/* ---- CIFAR-10. ------------------------------------------------------------------------- */

#define CIFAR_REC 3073

/* `n` records: record r has label (r + first) % 10 and pixel i = (i * 7 + r + first) % 256. */
static uint8_t *cifar_records(int first, int n)
{
    uint8_t *b = malloc((size_t)n * CIFAR_REC);
    CU_ASSERT_FATAL(b != NULL);
    for (int r = 0; r < n; r++) {
        b[(size_t)r * CIFAR_REC] = (uint8_t)((r + first) % 10);
        for (int i = 0; i < 3072; i++)
            b[(size_t)r * CIFAR_REC + 1 + (size_t)i] = (uint8_t)((i * 7 + r + first) % 256);
    }
    return b;
}

static void write_cifar(const char *path, int first, int n)
{
    uint8_t *b = cifar_records(first, n);
    byol_test_write_file(path, b, (size_t)n * CIFAR_REC);
    free(b);
}

static void check_cifar(struct byol_dataset *ds, int n)
{
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), (size_t)n);
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == 3 && h == 32 && w == 32);
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(ds), "cifar");
    float *img = malloc(3072 * sizeof *img);
    CU_ASSERT_FATAL(img != NULL);
    int bad = 0;
    for (int r = 0; r < n; r++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, (size_t)r, img));
        for (int i = 0; i < 3072; i++)
            bad += img[i] != (float)((i * 7 + r) % 256) / 255.0f;
        CU_ASSERT_EQUAL(byol_dataset_label(ds, (size_t)r), r % 10);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* CHW: pixel (c=1, y=0, x=0) is byte 1024 of the image. */
    BYOL_CHECK_OK(byol_dataset_get(ds, 0, img));
    CU_ASSERT(img[1024] == (float)(1024 * 7 % 256) / 255.0f);
    free(img);
}

static void test_cifar_good(void)
{
    CU_ASSERT_FATAL(mkdir(byol_test_path(g_dir, "cifar"), 0700) == 0);
    write_cifar(byol_test_path(g_dir, "cifar/data_batch_1.bin"), 0, 3);
    write_cifar(byol_test_path(g_dir, "cifar/data_batch_2.bin"), 3, 2);
    write_cifar(byol_test_path(g_dir, "cifar/test_batch.bin"), 0, 4);
    struct byol_dataset *ds = NULL;
    const char *files[2] = {byol_test_path(g_dir, "cifar/data_batch_1.bin"),
                            byol_test_path(g_dir, "cifar/data_batch_2.bin")};
    BYOL_CHECK_OK(byol_dataset_open_cifar(files, 2, &ds));
    check_cifar(ds, 5);
    byol_dataset_free(ds);
    /* A folder: its data_batch_*.bin in name order, test_batch.bin left out. */
    const char *dir[1] = {byol_test_path(g_dir, "cifar")};
    BYOL_CHECK_OK(byol_dataset_open_cifar(dir, 1, &ds));
    check_cifar(ds, 5);
    byol_dataset_free(ds);
    const char *test[1] = {byol_test_path(g_dir, "cifar/test_batch.bin")};
    BYOL_CHECK_OK(byol_dataset_open_cifar(test, 1, &ds));
    check_cifar(ds, 4);
    byol_dataset_free(ds);
}

static void test_cifar_broken(void)
{
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    const char *p = byol_test_path(g_dir, "short.bin");
    const char *one[1] = {p};
    uint8_t *b = cifar_records(0, 2);
    byol_test_write_file(p, b, 2 * CIFAR_REC - 100);
    expect_error(byol_dataset_open_cifar(one, 1, &ds), BYOL_ERR_FORMAT, p,
                 "6046 bytes is not a whole number of CIFAR-10 records (3073 bytes");
    CU_ASSERT_PTR_NULL(ds);
    BYOL_ASSERT_MSG_HAS("truncated");
    byol_test_write_file(p, b, 0);
    expect_error(byol_dataset_open_cifar(one, 1, &ds), BYOL_ERR_FORMAT, p, "0 bytes is not");
    b[CIFAR_REC] = 12; /* record 1's label */
    byol_test_write_file(p, b, 2 * CIFAR_REC);
    expect_error(byol_dataset_open_cifar(one, 1, &ds), BYOL_ERR_FORMAT, p, "record 1 has label 12");
    free(b);
    const char *missing[2] = {byol_test_path(g_dir, "cifar/data_batch_1.bin"),
                              byol_test_path(g_dir, "nope.bin")};
    expect_error(byol_dataset_open_cifar(missing, 2, &ds), BYOL_ERR_NOT_FOUND, missing[1],
                 "cannot open CIFAR batch");
    CU_ASSERT_FATAL(mkdir(byol_test_path(g_dir, "nocifar"), 0700) == 0);
    const char *empty[1] = {byol_test_path(g_dir, "nocifar")};
    expect_error(byol_dataset_open_cifar(empty, 1, &ds), BYOL_ERR_NOT_FOUND, empty[0],
                 "no data_batch_*.bin files");
    CU_ASSERT_PTR_NULL(ds);
    CU_ASSERT_EQUAL(byol_dataset_open_cifar(empty, 0, &ds), BYOL_ERR_INVALID);
}

/* ---- .npy. ----------------------------------------------------------------------------- */

/* An .npy file: magic, version, header dict padded to 64 bytes, data. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t n)
{
    char header[256];
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    size_t padded = (pre + len + 63) / 64 * 64 - pre;
    memset(header, ' ', sizeof header);
    memcpy(header, dict, strlen(dict));
    header[padded - 1] = '\n';
    uint8_t *b = malloc(pre + padded + n);
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++)
        b[8 + k] = (uint8_t)(padded >> (8 * k));
    memcpy(b + pre, header, padded);
    memcpy(b + pre + padded, data, n);
    byol_test_write_file(path, b, pre + padded + n);
    free(b);
}

#define NPY_N 3
#define NPY_C 2
#define NPY_H 3
#define NPY_W 4
#define NPY_IMG (NPY_C * NPY_H * NPY_W)

static uint8_t g_u8[NPY_N * NPY_IMG];
static float g_f32[NPY_N * NPY_IMG];

static void check_npy(struct byol_dataset *ds, int is_float, const int *labels)
{
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), NPY_N);
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == NPY_C && h == NPY_H && w == NPY_W);
    float img[NPY_IMG];
    for (int i = 0; i < NPY_N; i++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, (size_t)i, img));
        int bad = 0;
        for (int k = 0; k < NPY_IMG; k++)
            bad += img[k] !=
                   (is_float ? g_f32[i * NPY_IMG + k] : (float)g_u8[i * NPY_IMG + k] / 255.0f);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(byol_dataset_label(ds, (size_t)i), labels ? labels[i] : -1);
    }
}

static void test_npy_good(void)
{
    const char *u8 = byol_test_path(g_dir, "u8.npy"), *f32 = byol_test_path(g_dir, "f32.npy"),
               *lab = byol_test_path(g_dir, "lab.npy");
    write_npy(u8, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", g_u8,
              sizeof g_u8);
    write_npy(f32, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 4)}", g_f32,
              sizeof g_f32);
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_npy(u8, NULL, &ds));
    check_npy(ds, 0, NULL);
    byol_dataset_free(ds);
    int want[NPY_N] = {7, 0, 123456};
    int64_t l64[NPY_N] = {7, 0, 123456};
    int32_t l32[NPY_N] = {7, 0, 123456};
    write_npy(lab, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", l64, sizeof l64);
    BYOL_CHECK_OK(byol_dataset_open_npy(f32, lab, &ds));
    check_npy(ds, 1, want);
    byol_dataset_free(ds);
    write_npy(lab, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", l32, sizeof l32);
    BYOL_CHECK_OK(byol_dataset_open_npy(u8, lab, &ds));
    check_npy(ds, 0, want);
    byol_dataset_free(ds);
    uint8_t l8[NPY_N] = {7, 0, 200};
    int want8[NPY_N] = {7, 0, 200};
    write_npy(lab, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", l8, 3);
    BYOL_CHECK_OK(byol_dataset_open_npy(u8, lab, &ds));
    check_npy(ds, 0, want8);
    byol_dataset_free(ds);
    /* (N, H, W) reads as one channel. */
    write_npy(u8, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 6, 4), }", g_u8,
              sizeof g_u8);
    BYOL_CHECK_OK(byol_dataset_open_npy(u8, NULL, &ds));
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == 1 && h == 6 && w == 4 && byol_dataset_count(ds) == 3);
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(ds), "npy");
    byol_dataset_free(ds);
}

struct npy_case {
    int major;
    const char *dict;
    size_t bytes; /* of g_f32 */
    const char *needle;
};

static void test_npy_broken(void)
{
    static const struct npy_case cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", 280,
         "truncated: the header declares 288 data bytes, the file holds 280"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 3), }", 288,
         "72 unexpected bytes after the 216 data bytes"},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", 288,
         ".npy version 3.0 is not supported"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2, 3, 2), }", 288,
         "dtype '<f8' is not supported"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", 288,
         "dtype '>f4' is not supported"},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2, 3, 4), }", 288,
         "fortran_order is True"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (72,), }", 288, "not 1 dimensions"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 3, 4), }", 0,
         "dimension 1 is 0"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 4) ", 288,
         "malformed .npy header (expected ',' or '}')"},
        {1, "{'descr': '<f4', 'fortran_order': False}", 288,
         "missing descr, fortran_order or shape"},
        {1, "{'descr': '<f4', 'fortran_order': Nope, 'shape': (3, 2, 3, 4), }", 288,
         "fortran_order is neither True nor False"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, x), }", 288,
         "a dimension is not a non-negative integer"},
    };
    const char *p = byol_test_path(g_dir, "bad.npy");
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_npy(p, cases[i].major, cases[i].dict, g_f32, cases[i].bytes);
        expect_error(byol_dataset_open_npy(p, NULL, &ds), BYOL_ERR_FORMAT, p, cases[i].needle);
        CU_ASSERT_PTR_NULL(ds);
    }
    byol_test_write_file(p, "PK\x03\x04 this is a zip, an .npz perhaps", 36);
    expect_error(byol_dataset_open_npy(p, NULL, &ds), BYOL_ERR_FORMAT, p, "not a .npy file");
    byol_test_write_file(p, "\x93NUMPY\x01\x00\xff\x00{", 11);
    expect_error(byol_dataset_open_npy(p, NULL, &ds), BYOL_ERR_FORMAT, p,
                 "truncated .npy header (255 header bytes declared, 1 present)");
    float nan[NPY_IMG * NPY_N];
    memcpy(nan, g_f32, sizeof nan);
    nan[30] = NAN;
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", nan,
              sizeof nan);
    expect_error(byol_dataset_open_npy(p, NULL, &ds), BYOL_ERR_FORMAT, p,
                 "value 30 (image 1) is nan");
    const char *missing = byol_test_path(g_dir, "missing.npy");
    expect_error(byol_dataset_open_npy(missing, NULL, &ds), BYOL_ERR_NOT_FOUND, missing,
                 "cannot open");
}

static void test_npy_labels_broken(void)
{
    const char *u8 = byol_test_path(g_dir, "u8.npy"), *lab = byol_test_path(g_dir, "badlab.npy");
    write_npy(u8, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 3, 4), }", g_u8,
              sizeof g_u8);
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    int64_t l[4] = {1, 2, 3, 4};
    write_npy(lab, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", l, sizeof l);
    expect_error(byol_dataset_open_npy(u8, lab, &ds), BYOL_ERR_FORMAT, lab,
                 "4 labels for 3 images in");
    BYOL_ASSERT_MSG_HAS(u8);
    CU_ASSERT_PTR_NULL(ds);
    write_npy(lab, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), }", l, 24);
    expect_error(byol_dataset_open_npy(u8, lab, &ds), BYOL_ERR_FORMAT, lab, "shape (N,), not 2");
    l[2] = -5;
    write_npy(lab, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", l, 24);
    expect_error(byol_dataset_open_npy(u8, lab, &ds), BYOL_ERR_FORMAT, lab, "label 2 is -5");
    write_npy(lab, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", l, 12);
    expect_error(byol_dataset_open_npy(u8, lab, &ds), BYOL_ERR_FORMAT, lab,
                 "dtype '<f4' is not supported (labels:");
    write_npy(lab, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", l, 11);
    expect_error(byol_dataset_open_npy(u8, lab, &ds), BYOL_ERR_FORMAT, lab, "truncated");
}

/* ---- Image folders. -------------------------------------------------------------------- */

/* Every image of `tree` at (channels, size) against torchvision's, within `atol`. */
static void check_tree(const char *tree, int channels, int size, double atol)
{
    char root[512], ref[512], what[128];
    snprintf(root, sizeof root, "%s/%s", DATA_DIR, tree);
    snprintf(ref, sizeof ref, "%s/ref/%s_c%d_s%d.npy", DATA_DIR, tree, channels, size);
    struct byol_dataset *ds = NULL, *want = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, channels, size, &ds));
    BYOL_CHECK_OK(byol_dataset_open_npy(ref, NULL, &want));
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), byol_dataset_count(want));
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == channels && h == size && w == size);
    size_t n = (size_t)channels * (size_t)size * (size_t)size;
    float *got = malloc(n * sizeof *got), *exp = malloc(n * sizeof *exp);
    CU_ASSERT_FATAL(got && exp);
    for (size_t i = 0; i < byol_dataset_count(ds); i++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, i, got));
        BYOL_CHECK_OK(byol_dataset_get(want, i, exp));
        snprintf(what, sizeof what, "%s[%zu] c%d s%d vs torchvision", tree, i, channels, size);
        CU_ASSERT(byol_test_close(what, got, exp, n, atol, 0.0));
    }
    free(got);
    free(exp);
    byol_dataset_free(ds);
    byol_dataset_free(want);
}

static void check_labels(const char *tree)
{
    char root[512], ref[512];
    snprintf(root, sizeof root, "%s/%s", DATA_DIR, tree);
    snprintf(ref, sizeof ref, "%s/ref/%s_labels.npy", DATA_DIR, tree);
    struct byol_dataset *ds = NULL, *want = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, 3, 4, &ds));
    /* The labels file is 1-d: read it as the labels of a reference image file. */
    char imgs[512];
    snprintf(imgs, sizeof imgs, "%s/ref/%s_c3_s5.npy", DATA_DIR, tree);
    BYOL_CHECK_OK(byol_dataset_open_npy(imgs, ref, &want));
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), byol_dataset_count(want));
    for (size_t i = 0; i < byol_dataset_count(ds); i++)
        CU_ASSERT_EQUAL(byol_dataset_label(ds, i), byol_dataset_label(want, i));
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(ds), "folder");
    byol_dataset_free(ds);
    byol_dataset_free(want);
}

static void test_folder_vs_torchvision(void)
{
    /* PNG: the same 8-bit fixed-point resampling as Pillow, so equal. JPEG: the same
     * libjpeg-turbo as Debian's Pillow, so equal as well; other builds of libjpeg may differ
     * in the IDCT's last bit, hence one grey level of slack. */
    static const int sizes[] = {5, 8, 12};
    for (int s = 0; s < 3; s++)
        for (int c = 1; c <= 3; c += 2) {
            check_tree("folder", c, sizes[s], 1.0 / 255 + 1e-6);
            check_tree("variants", c, sizes[s], 1.0 / 255 + 1e-6);
        }
    check_labels("folder");
    check_labels("variants");
}

/* PNG pixels against the values gen_images.py wrote: dog/c.png is 8x8 gray (7x + 3y) % 256,
 * and at size 8 nothing is resized, so decoding alone is checked, exactly. */
static void test_folder_known_pixels(void)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(DATA_DIR "/folder", 1, 8, &ds));
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), 4); /* notes.txt skipped */
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 0), 0);
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 1), 0);
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 2), 1);
    CU_ASSERT_EQUAL(byol_dataset_label(ds, 3), 1);
    float got[8 * 8], want[8 * 8], rgb[3 * 8 * 8];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            want[y * 8 + x] = (float)((7 * x + 3 * y) % 256) / 255.0f;
    BYOL_CHECK_OK(byol_dataset_get(ds, 2, got));
    CU_ASSERT(memcmp(got, want, sizeof got) == 0);
    byol_dataset_free(ds);
    /* Gray expanded to three equal channels. */
    BYOL_CHECK_OK(byol_dataset_open_folder(DATA_DIR "/folder", 3, 8, &ds));
    BYOL_CHECK_OK(byol_dataset_get(ds, 2, rgb));
    for (int k = 0; k < 3; k++)
        CU_ASSERT(memcmp(rgb + k * 64, want, sizeof want) == 0);
    byol_dataset_free(ds);
}

static void make_class_dir(const char *tree, const char *cls)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, tree);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/%s/%s", g_dir, tree, cls);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
}

/* A one-image tree tmp/<tree>/x/<name> holding `b`; opening it succeeds, getting fails. */
static void expect_bad_image(const char *tree, const char *name, const uint8_t *b, size_t n,
                             const char *needle)
{
    char root[512], file[600];
    make_class_dir(tree, "x");
    snprintf(root, sizeof root, "%s/%s", g_dir, tree);
    snprintf(file, sizeof file, "%s/x/%s", root, name);
    byol_test_write_file(file, b, n);
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, 3, 8, &ds));
    float img[3 * 8 * 8];
    expect_error(byol_dataset_get(ds, 0, img), BYOL_ERR_FORMAT, file, needle);
    byol_dataset_free(ds);
    unlink(file);
    snprintf(file, sizeof file, "%s/x", root);
    rmdir(file);
    rmdir(root);
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put_be(uint8_t *b, uint32_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        b[k] = (uint8_t)(v >> (8 * (bytes - 1 - k)));
}

static void test_folder_corrupt_png(void)
{
    size_t n;
    uint8_t *b = byol_test_read_file(DATA_DIR "/folder/cat/a.png", &n);
    expect_bad_image("t1", "cut.png", b, n / 2, "corrupt PNG (");
    expect_bad_image("t2", "cut.png", b, 20, "corrupt PNG (truncated file)");
    /* A flipped bit in the image data: IDAT's CRC no longer matches. */
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    size_t idat = 8;
    while (idat + 8 < n && memcmp(c + idat + 4, "IDAT", 4) != 0)
        idat += 12 + be32(c + idat);
    CU_ASSERT_FATAL(idat + 8 < n);
    c[idat + 10] ^= 0x10;
    expect_bad_image("t3", "flip.png", c, n, "corrupt PNG (");
    memcpy(c, b, n);
    c[idat + 8 + be32(c + idat)] ^= 0x01; /* IDAT's CRC itself */
    expect_bad_image("t6", "crc.png", c, n, "corrupt PNG (IDAT: CRC error)");
    /* 20000 x 20000 in IHDR, with a correct CRC: refused from the header. */
    memcpy(c, b, n);
    put_be(c + 16, 20000, 4);
    put_be(c + 20, 20000, 4);
    put_be(c + 29, (uint32_t)crc32(0, c + 12, 17), 4);
    expect_bad_image("t4", "huge.png", c, n, "image too large (20000x20000 PNG");
    /* Not an image at all, under an image's name. */
    expect_bad_image("t5", "text.png", (const uint8_t *)"hello, world", 12,
                     "not a PNG or JPEG file");
    free(c);
    free(b);
}

/* The offset of the JPEG marker 0xFF `code` in b, or 0. */
static size_t jpeg_marker(const uint8_t *b, size_t n, uint8_t code)
{
    for (size_t i = 2; i + 1 < n;) {
        if (b[i] != 0xff)
            return 0;
        if (b[i + 1] == code)
            return i;
        i += 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
    }
    return 0;
}

static void test_folder_corrupt_jpeg(void)
{
    size_t n;
    uint8_t *b = byol_test_read_file(DATA_DIR "/folder/cat/b.jpg", &n);
    expect_bad_image("j1", "cut.jpg", b, n - 200, "corrupt JPEG (Premature end of JPEG file)");
    expect_bad_image("j2", "head.jpg", b, 40, "corrupt JPEG (");
    uint8_t *c = malloc(n);
    size_t sof = jpeg_marker(b, n, 0xc0), sos = jpeg_marker(b, n, 0xda);
    CU_ASSERT_FATAL(sof && sos);
    /* A marker in the middle of the entropy-coded data. */
    memcpy(c, b, n);
    c[sos + 40] = 0xff;
    c[sos + 41] = 0xd0;
    expect_bad_image("j3", "marker.jpg", c, n, "corrupt JPEG (Corrupt JPEG data");
    /* A frame header declaring 0 lines: libjpeg's error_exit, which must come back here. */
    memcpy(c, b, n);
    put_be(c + sof + 5, 0, 2);
    expect_bad_image("j4", "empty.jpg", c, n, "corrupt JPEG (");
    memcpy(c, b, n);
    put_be(c + sof + 5, 30000, 2);
    put_be(c + sof + 7, 9000, 2);
    expect_bad_image("j5", "huge.jpg", c, n, "image too large (9000x30000 JPEG");
    free(c);
    free(b);
}

static void test_folder_layout_errors(void)
{
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    const char *empty = byol_test_path(g_dir, "emptytree");
    CU_ASSERT_FATAL(mkdir(empty, 0700) == 0);
    expect_error(byol_dataset_open_folder(empty, 3, 8, &ds), BYOL_ERR_NOT_FOUND, empty,
                 "empty folder: no class subfolders");
    CU_ASSERT_PTR_NULL(ds);
    make_class_dir("emptytree", "a");
    make_class_dir("emptytree", "b");
    byol_test_write_file(byol_test_path(g_dir, "emptytree/a/readme.txt"), "x", 1);
    copy_file(DATA_DIR "/folder/cat/a.png", byol_test_path(g_dir, "emptytree/b/img.PNG"));
    expect_error(byol_dataset_open_folder(empty, 3, 8, &ds), BYOL_ERR_NOT_FOUND, empty,
                 "no .png, .jpg or .jpeg images in class folder 'a'");
    /* Nested folders and upper-case extensions count; dot names do not. */
    CU_ASSERT_FATAL(mkdir(byol_test_path(g_dir, "emptytree/a/sub"), 0700) == 0);
    copy_file(DATA_DIR "/folder/cat/b.jpg", byol_test_path(g_dir, "emptytree/a/sub/deep.JPEG"));
    copy_file(DATA_DIR "/folder/cat/b.jpg", byol_test_path(g_dir, "emptytree/a/.hidden.jpg"));
    BYOL_CHECK_OK(byol_dataset_open_folder(empty, 3, 8, &ds));
    CU_ASSERT_EQUAL(byol_dataset_count(ds), 2);
    CU_ASSERT(byol_dataset_label(ds, 0) == 0 && byol_dataset_label(ds, 1) == 1);
    byol_dataset_free(ds);
    const char *missing = byol_test_path(g_dir, "no-such-tree");
    expect_error(byol_dataset_open_folder(missing, 3, 8, &ds), BYOL_ERR_NOT_FOUND, missing,
                 "cannot list the folder");
    expect_error(byol_dataset_open_folder(empty, 2, 8, &ds), BYOL_ERR_INVALID, empty,
                 "2 channels requested");
    expect_error(byol_dataset_open_folder(empty, 3, 0, &ds), BYOL_ERR_INVALID, empty,
                 "image size 0");
    unlink(byol_test_path(g_dir, "emptytree/a/sub/deep.JPEG"));
    unlink(byol_test_path(g_dir, "emptytree/a/.hidden.jpg"));
    rmdir(byol_test_path(g_dir, "emptytree/a/sub"));
    unlink(byol_test_path(g_dir, "emptytree/a/readme.txt"));
    unlink(byol_test_path(g_dir, "emptytree/b/img.PNG"));
    rmdir(byol_test_path(g_dir, "emptytree/a"));
    rmdir(byol_test_path(g_dir, "emptytree/b"));
}

/* byol_dataset_get from several threads at once (the loader's prefetch thread and workers)
 * gives what it gives alone: decoders share no state. */
#define THREADS 4
#define ROUNDS 5

struct get_job {
    const struct byol_dataset *ds;
    const float *serial; /* every image, as read by one thread */
    size_t image;
    int mismatches;
};

static void *get_all(void *arg)
{
    struct get_job *j = arg;
    float *img = malloc(j->image * sizeof *img);
    for (int r = 0; img && r < ROUNDS; r++)
        for (size_t i = 0; i < byol_dataset_count(j->ds); i++) {
            size_t k = (i + (size_t)r) % byol_dataset_count(j->ds);
            if (byol_dataset_get(j->ds, k, img) != BYOL_OK ||
                memcmp(img, j->serial + k * j->image, j->image * sizeof *img) != 0)
                j->mismatches++;
        }
    free(img);
    return NULL;
}

static void test_folder_threads(void)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(DATA_DIR "/variants", 3, 8, &ds));
    size_t n = byol_dataset_count(ds), image = 3 * 8 * 8;
    float *serial = malloc(n * image * sizeof *serial);
    CU_ASSERT_FATAL(serial != NULL);
    for (size_t i = 0; i < n; i++)
        BYOL_CHECK_OK(byol_dataset_get(ds, i, serial + i * image));
    struct get_job jobs[THREADS];
    pthread_t tids[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct get_job){ds, serial, image, 0};
        CU_ASSERT_FATAL(pthread_create(&tids[t], NULL, get_all, &jobs[t]) == 0);
    }
    int mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        mismatches += jobs[t].mismatches;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    printf("\n  %d threads x %d rounds x %zu images: %d mismatches\n", THREADS, ROUNDS, n,
           mismatches);
    free(serial);
    byol_dataset_free(ds);
}

/* ---- Mock. ----------------------------------------------------------------------------- */

static void test_mock(void)
{
    struct byol_dataset *a = NULL, *b = NULL, *c = NULL;
    BYOL_CHECK_OK(byol_dataset_open_mock(10, 3, 6, 42, &a));
    BYOL_CHECK_OK(byol_dataset_open_mock(10, 3, 6, 42, &b));
    BYOL_CHECK_OK(byol_dataset_open_mock(10, 3, 6, 43, &c));
    CU_ASSERT_EQUAL(byol_dataset_count(a), 10);
    int ch, h, w;
    byol_dataset_shape(a, &ch, &h, &w);
    CU_ASSERT(ch == 3 && h == 6 && w == 6);
    CU_ASSERT_EQUAL(byol_dataset_label(a, 3), -1);
    float x[108], y[108], z[108], x9[108];
    BYOL_CHECK_OK(byol_dataset_get(a, 7, x));
    BYOL_CHECK_OK(byol_dataset_get(b, 7, y));
    BYOL_CHECK_OK(byol_dataset_get(c, 7, z));
    BYOL_CHECK_OK(byol_dataset_get(a, 9, x9));
    CU_ASSERT(memcmp(x, y, sizeof x) == 0);  /* a function of (seed, index) */
    CU_ASSERT(memcmp(x, z, sizeof x) != 0);  /* another seed */
    CU_ASSERT(memcmp(x, x9, sizeof x) != 0); /* another image */
    double sum = 0;
    int in_range = 1;
    for (int i = 0; i < 108; i++) {
        in_range &= x[i] >= 0.0f && x[i] < 1.0f;
        sum += x[i];
    }
    CU_ASSERT(in_range);
    CU_ASSERT(fabs(sum / 108 - 0.5) < 0.1);
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(a), "mock");
    byol_dataset_free(a);
    byol_dataset_free(b);
    byol_dataset_free(c);
    CU_ASSERT_EQUAL(byol_dataset_open_mock(0, 3, 6, 1, &a), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_dataset_open_mock(5, 3, 0, 1, &a), BYOL_ERR_INVALID);
}

/* ---- Settings. ------------------------------------------------------------------------- */

/* Parse `text` as config "data.cfg" and open its data group relative to g_dir. */
static byol_status open_text(const char *text, int channels, int size, struct byol_dataset **out)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(text, "data.cfg", &cfg));
    const struct byol_settings *g = byol_settings_child(byol_config_root(cfg), "data");
    byol_status st = byol_dataset_open_settings(g, g_dir, channels, size, 5, out);
    byol_config_free(cfg);
    return st;
}

static void expect_opens(const char *text, const char *format, size_t count, int c, int s)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(open_text(text, 3, 16, &ds));
    int ch, h, w;
    byol_dataset_shape(ds, &ch, &h, &w);
    CU_ASSERT_STRING_EQUAL(byol_dataset_format(ds), format);
    CU_ASSERT(byol_dataset_count(ds) == count && ch == c && h == s && w == s);
    byol_dataset_free(ds);
}

static void test_settings_formats(void)
{
    write_npy(byol_test_path(g_dir, "u8.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 6, 6), }", g_u8,
              sizeof g_u8);
    expect_opens("data = { format = \"npy\"; images = \"u8.npy\"; shuffle = false; };", "npy", 2, 1,
                 6);
    expect_opens("data = { format = \"cifar\"; images = \"cifar\"; };", "cifar", 5, 3, 32);
    expect_opens("data = { format = \"cifar\"; images = [\"cifar/data_batch_2.bin\", "
                 "\"cifar/test_batch.bin\"]; };",
                 "cifar", 6, 3, 32);
    expect_opens("data = { format = \"mock\"; length = 7; };", "mock", 7, 3, 16);
    expect_opens("data = { format = \"mock\"; };", "mock", 10000, 3, 16);
    expect_opens("data = { format = \"folder\"; images = \"" DATA_DIR "/folder\"; };", "folder", 4,
                 3, 16);
    /* The mock images come from the seed given. */
    struct byol_dataset *a = NULL;
    BYOL_CHECK_OK(open_text("data = { format = \"mock\"; length = 2; };", 1, 4, &a));
    struct byol_dataset *b = NULL;
    BYOL_CHECK_OK(byol_dataset_open_mock(2, 1, 4, 5, &b));
    float x[16], y[16];
    BYOL_CHECK_OK(byol_dataset_get(a, 1, x));
    BYOL_CHECK_OK(byol_dataset_get(b, 1, y));
    CU_ASSERT(memcmp(x, y, sizeof x) == 0);
    byol_dataset_free(a);
    byol_dataset_free(b);
}

static void expect_settings_error(const char *text, byol_status want, const char *needle)
{
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    expect_error(open_text(text, 3, 8, &ds), want, "data.cfg", needle);
    CU_ASSERT_PTR_NULL(ds);
}

static void test_settings_errors(void)
{
    expect_settings_error("data = {\n format = \"npy\";\n images = \"u8.npy\";\n length = 3; };",
                          BYOL_ERR_INVALID,
                          "data.cfg:4: data.length: unknown setting (known: "
                          "format, shuffle, images, labels)");
    expect_settings_error("data = {\n format = \"mock\";\n labels = \"x\"; };", BYOL_ERR_INVALID,
                          "data.cfg:3: data.labels: unknown setting");
    expect_settings_error("data = {\n format = \"parquet\"; };", BYOL_ERR_UNSUPPORTED,
                          "data.cfg:2: data.format: unknown format 'parquet' (known: idx, cifar, "
                          "folder, npy, mock)");
    expect_settings_error("data = {\n format = \"cifar\"; };", BYOL_ERR_INVALID,
                          "data.cfg:1: data: missing 'images'");
    expect_settings_error("data = {\n format = \"idx\"; };", BYOL_ERR_INVALID,
                          "data.cfg:1: data: missing 'images' (the IDX image file)");
    expect_settings_error("data = {\n format = \"folder\";\n images = 3; };", BYOL_ERR_INVALID,
                          "data.cfg:3: data.images: expected a string");
    expect_settings_error("data = {\n format = \"cifar\";\n images = [1, 2]; };", BYOL_ERR_INVALID,
                          "data.cfg:3: data.images[0]: expected a string");
    expect_settings_error("data = {\n format = \"mock\";\n length = 0; };", BYOL_ERR_INVALID,
                          "data.cfg:3: data.length: 0 is not a valid number of images");
    expect_settings_error("data = {\n format = \"mock\";\n length = \"many\"; };", BYOL_ERR_INVALID,
                          "data.cfg:3: data.length: expected an integer");
    /* A path that does not fit once joined to the config's folder is refused, naming the
     * setting: one of a pair, and an element of a list. */
    static char text[PATH_MAX + 256];
    char name[PATH_MAX];
    memset(name, 'x', sizeof name - 1 - strlen(g_dir));
    name[sizeof name - 1 - strlen(g_dir)] = '\0'; /* fits alone, not after "g_dir/" */
    snprintf(text, sizeof text,
             "data = {\n format = \"npy\";\n images = \"u8.npy\";\n labels = \"%s\"; };", name);
    expect_settings_error(text, BYOL_ERR_INVALID, "data.cfg:4: data.labels: path too long");
    snprintf(text, sizeof text, "data = {\n format = \"cifar\";\n images = [\"cifar\", \"%s\"]; };",
             name);
    expect_settings_error(text, BYOL_ERR_INVALID, "data.cfg:3: data.images: path too long");
    /* A reader's own error names the file, resolved against the config's folder. */
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    CU_ASSERT_EQUAL(open_text("data = { format = \"npy\"; images = \"absent.npy\"; };", 3, 8, &ds),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS(byol_test_path(g_dir, "absent.npy"));
    CU_ASSERT_PTR_NULL(ds);
}

/* ---- Main. ----------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof g_u8; i++) {
        g_u8[i] = (uint8_t)(i * 29 % 256);
        g_f32[i] = (float)i / (float)sizeof g_u8;
    }
    g_dir = byol_test_tmpdir("dataset-formats");
    static const struct byol_test_case cases[] = {
        {"cifar_good", test_cifar_good, 0},
        {"cifar_broken", test_cifar_broken, 0},
        {"npy_good", test_npy_good, 0},
        {"npy_broken", test_npy_broken, 0},
        {"npy_labels_broken", test_npy_labels_broken, 0},
        {"folder_vs_torchvision", test_folder_vs_torchvision, 0},
        {"folder_known_pixels", test_folder_known_pixels, 0},
        {"folder_corrupt_png", test_folder_corrupt_png, 0},
        {"folder_corrupt_jpeg", test_folder_corrupt_jpeg, 0},
        {"folder_layout_errors", test_folder_layout_errors, 0},
        {"folder_threads", test_folder_threads, 0},
        {"mock", test_mock, 0},
        {"settings_formats", test_settings_formats, 0},
        {"settings_errors", test_settings_errors, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "dataset_formats", cases);
    byol_test_remove_tree(g_dir);
    return rc;
}
