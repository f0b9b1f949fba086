/* Tests of the IDX dataset reader (core/data/dataset_idx.c): small files written here, plain and
 * gzip, good and broken in each way the reader must name, and a sanity read of the installed
 * Fashion-MNIST (skipped with a note when the package is absent). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/dataset.h"
#include "testutil.h"

#define N 5
#define H 4
#define W 3
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *g_dir; /* the scratch folder, made by main */
static uint8_t g_pixels[N * H * W];
static uint8_t g_labels[N] = {3, 0, 9, 1, 7};

/* ---- Writing test files. --------------------------------------------------------------- */

/* An IDX image in memory: magic, dims, data. *len is its size; free() the result. */
static uint8_t *idx_image(uint32_t magic, const uint32_t *dims, int ndim, const uint8_t *data,
                          size_t n, size_t *len)
{
    *len = 4 + 4 * (size_t)ndim + n;
    uint8_t *b = malloc(*len);
    CU_ASSERT_FATAL(b != NULL);
    uint32_t words[4] = {magic};
    memcpy(words + 1, dims, (size_t)ndim * sizeof *dims);
    for (int i = 0; i <= ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(words[i] >> (24 - 8 * k));
    memcpy(b + 4 + 4 * ndim, data, n);
    return b;
}

/* The good image and label files, written plain (`gz` 0) or gzip-compressed under `name`. */
static void write_images(const char *path, int gz, int n_images)
{
    size_t len;
    uint32_t dims[3] = {(uint32_t)n_images, H, W};
    uint8_t *b = idx_image(0x803, dims, 3, g_pixels, (size_t)n_images * H * W, &len);
    (gz ? byol_test_write_gzip : byol_test_write_file)(path, b, len);
    free(b);
}

static void write_labels(const char *path, int gz, int n_labels)
{
    size_t len;
    uint32_t dims[1] = {(uint32_t)n_labels};
    uint8_t *b = idx_image(0x801, dims, 1, g_labels, (size_t)n_labels, &len);
    (gz ? byol_test_write_gzip : byol_test_write_file)(path, b, len);
    free(b);
}

/* ---- Checks. --------------------------------------------------------------------------- */

/* Opening must fail with `want`, and the message must name `path` and contain `needle`. */
static void expect_fail(const char *images, const char *labels, byol_status want, const char *path,
                        const char *needle)
{
    struct byol_dataset *ds = (struct byol_dataset *)&ds;
    byol_status st = byol_dataset_open_idx(images, labels, &ds);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(ds);
    BYOL_ASSERT_MSG_HAS(path);
    BYOL_ASSERT_MSG_HAS(needle);
    printf("  %s\n", byol_last_error());
    if (st == BYOL_OK)
        byol_dataset_free(ds);
}

/* A dataset opened from the good files holds exactly the pixels / 255 and the labels. */
static void check_good(struct byol_dataset *ds, int with_labels)
{
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), N);
    int c = 0, h = 0, w = 0;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == 1 && h == H && w == W);
    float img[H * W], want[H * W];
    for (size_t i = 0; i < N; i++) {
        BYOL_CHECK_OK(byol_dataset_get(ds, i, img));
        for (int k = 0; k < H * W; k++)
            want[k] = (float)g_pixels[i * H * W + (size_t)k] / 255.0f;
        CU_ASSERT(memcmp(img, want, sizeof img) == 0);
        CU_ASSERT_EQUAL(byol_dataset_label(ds, i), with_labels ? g_labels[i] : -1);
    }
    BYOL_CHECK_OK(byol_dataset_get(ds, 0, img));
    CU_ASSERT(img[0] == 0.0f); /* pixel 0 is 0, the last is 255 */
    BYOL_CHECK_OK(byol_dataset_get(ds, N - 1, img));
    CU_ASSERT(img[H * W - 1] == 1.0f);
    CU_ASSERT_EQUAL(byol_dataset_get(ds, N, img), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("index 5 out of range (5 images)");
    CU_ASSERT_EQUAL(byol_dataset_label(ds, N), -1);
}

static void test_good_files(void)
{
    struct {
        const char *images, *labels;
        int gz;
    } cases[] = {
        {"images.idx", "labels.idx", 0},
        {"images.idx.gz", "labels.idx.gz", 1},
        {"images-gzip-no-suffix", "labels-gzip-no-suffix", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ip = byol_test_path(g_dir, cases[i].images),
                   *lp = byol_test_path(g_dir, cases[i].labels);
        write_images(ip, cases[i].gz, N);
        write_labels(lp, cases[i].gz, N);
        struct byol_dataset *ds = NULL;
        BYOL_CHECK_OK(byol_dataset_open_idx(ip, lp, &ds));
        check_good(ds, 1);
        byol_dataset_free(ds);
        BYOL_CHECK_OK(byol_dataset_open_idx(ip, NULL, &ds));
        check_good(ds, 0);
        byol_dataset_free(ds);
    }
}

static void test_null_handles(void)
{
    CU_ASSERT_EQUAL(byol_dataset_count(NULL), 0);
    CU_ASSERT_EQUAL(byol_dataset_label(NULL, 0), -1);
    int c = 7;
    byol_dataset_shape(NULL, &c, NULL, NULL);
    CU_ASSERT_EQUAL(c, 0);
    float x;
    CU_ASSERT_EQUAL(byol_dataset_get(NULL, 0, &x), BYOL_ERR_INVALID);
    byol_dataset_free(NULL);
    struct byol_dataset *ds = NULL;
    CU_ASSERT_EQUAL(byol_dataset_open_idx(NULL, NULL, &ds), BYOL_ERR_INVALID);
}

static void test_missing_and_unreadable(void)
{
    const char *ip = byol_test_path(g_dir, "images.idx");
    write_images(ip, 0, N);
    const char *missing = byol_test_path(g_dir, "no-such-file.gz");
    expect_fail(missing, NULL, BYOL_ERR_NOT_FOUND, missing, "No such file or directory");
    expect_fail(ip, missing, BYOL_ERR_NOT_FOUND, missing, "cannot open");
    expect_fail(g_dir, NULL, BYOL_ERR_IO, g_dir, "not a regular file");
}

static void test_truncated(void)
{
    size_t len;
    uint32_t dims[3] = {N, H, W};
    uint8_t *b = idx_image(0x803, dims, 3, g_pixels, sizeof g_pixels, &len);
    const char *plain = byol_test_path(g_dir, "short.idx"),
               *gz = byol_test_path(g_dir, "short.idx.gz");
    byol_test_write_file(plain, b, len - 10);
    expect_fail(plain, NULL, BYOL_ERR_FORMAT, plain,
                "truncated: the header declares 5x4x3 = 60 data bytes, the file holds 50");
    /* The data complete but the gzip stream cut short (its trailer missing). */
    byol_test_write_gzip(gz, b, len);
    size_t zn;
    uint8_t *z = byol_test_read_file(gz, &zn);
    byol_test_write_file(gz, z, zn - 6);
    expect_fail(gz, NULL, BYOL_ERR_FORMAT, gz, "truncated gzip stream");
    /* Cut in the middle of the header. */
    byol_test_write_file(plain, b, 10);
    expect_fail(plain, NULL, BYOL_ERR_FORMAT, plain, "truncated header");
    byol_test_write_file(plain, b, 2);
    expect_fail(plain, NULL, BYOL_ERR_FORMAT, plain, "too short for an IDX header (2 bytes)");
    byol_test_write_file(plain, b, 0);
    expect_fail(plain, NULL, BYOL_ERR_FORMAT, plain, "too short for an IDX header (0 bytes)");
    /* A gzip stream that is whole but holds too little data. */
    byol_test_write_gzip(gz, b, len - 1);
    expect_fail(gz, NULL, BYOL_ERR_FORMAT, gz, "the file holds 59");
    free(z);
    free(b);
}

static void test_trailing_bytes(void)
{
    size_t len;
    uint32_t dims[3] = {N, H, W};
    uint8_t data[sizeof g_pixels + 1] = {0};
    memcpy(data, g_pixels, sizeof g_pixels);
    uint8_t *b = idx_image(0x803, dims, 3, data, sizeof data, &len);
    const char *plain = byol_test_path(g_dir, "long.idx"),
               *gz = byol_test_path(g_dir, "long.idx.gz");
    byol_test_write_file(plain, b, len);
    expect_fail(plain, NULL, BYOL_ERR_FORMAT, plain, "unexpected bytes after the 60 data bytes");
    byol_test_write_gzip(gz, b, len);
    expect_fail(gz, NULL, BYOL_ERR_FORMAT, gz, "unexpected bytes after the 60 data bytes");
    free(b);
}

static void test_wrong_magic(void)
{
    const char *ip = byol_test_path(g_dir, "images.idx"), *lp = byol_test_path(g_dir, "labels.idx");
    write_images(ip, 0, N);
    write_labels(lp, 1, N);
    /* Swapped arguments. */
    expect_fail(lp, ip, BYOL_ERR_FORMAT, lp,
                "not an IDX image file (magic 0x00000801, an IDX label file, want 0x00000803)");
    expect_fail(ip, ip, BYOL_ERR_FORMAT, ip,
                "not an IDX label file (magic 0x00000803, an IDX image file, want 0x00000801)");
    /* Something else entirely, e.g. a float IDX file (type 0x0d). */
    size_t len;
    uint32_t dims[3] = {N, H, W};
    uint8_t *b = idx_image(0x0d03, dims, 3, g_pixels, sizeof g_pixels, &len);
    const char *odd = byol_test_path(g_dir, "float.idx");
    byol_test_write_file(odd, b, len);
    expect_fail(odd, NULL, BYOL_ERR_FORMAT, odd, "(magic 0x00000d03, want 0x00000803)");
    free(b);
}

static void test_bad_dims(void)
{
    size_t len;
    const char *p = byol_test_path(g_dir, "dims.idx");
    uint32_t zero[3] = {N, 0, W};
    uint8_t *b = idx_image(0x803, zero, 3, g_pixels, 0, &len);
    byol_test_write_file(p, b, len);
    free(b);
    expect_fail(p, NULL, BYOL_ERR_FORMAT, p, "dimension 1 is 0");
    /* 10^15 bytes declared by a 16-byte file: refused before any allocation. */
    uint32_t huge[3] = {100000, 100000, 100000};
    b = idx_image(0x803, huge, 3, g_pixels, 0, &len);
    byol_test_write_file(p, b, len);
    free(b);
    expect_fail(p, NULL, BYOL_ERR_FORMAT, p, "(limit)");
    /* Within the limit but far beyond the plain file's size: refused by size, not malloc. */
    uint32_t big[3] = {1000000, 28, 28};
    b = idx_image(0x803, big, 3, g_pixels, sizeof g_pixels, &len);
    byol_test_write_file(p, b, len);
    free(b);
    expect_fail(p, NULL, BYOL_ERR_FORMAT, p, "1000000x28x28 = 784000000 data bytes");
}

static void test_label_count(void)
{
    const char *ip = byol_test_path(g_dir, "images.idx.gz"),
               *lp = byol_test_path(g_dir, "labels4.idx.gz");
    write_images(ip, 1, N);
    write_labels(lp, 1, N - 1);
    expect_fail(ip, lp, BYOL_ERR_FORMAT, lp, "4 labels for 5 images in ");
    BYOL_ASSERT_MSG_HAS(ip);
}

static void test_corrupt_gzip(void)
{
    /* A valid gzip header, then deflate data whose first block has the reserved type 3. */
    uint8_t b[32] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memset(b + 10, 0xff, sizeof b - 10);
    const char *p = byol_test_path(g_dir, "corrupt.gz");
    byol_test_write_file(p, b, sizeof b);
    expect_fail(p, NULL, BYOL_ERR_FORMAT, p, "corrupt gzip data (invalid block type)");
    /* Good data whose CRC does not match. */
    size_t len, zn;
    uint32_t dims[3] = {N, H, W};
    uint8_t *img = idx_image(0x803, dims, 3, g_pixels, sizeof g_pixels, &len);
    byol_test_write_gzip(p, img, len);
    uint8_t *z = byol_test_read_file(p, &zn);
    z[zn - 8] ^= 0x55; /* the CRC-32 in the trailer */
    byol_test_write_file(p, z, zn);
    expect_fail(p, NULL, BYOL_ERR_FORMAT, p, "corrupt gzip data (incorrect data check)");
    free(z);
    free(img);
}

/* ---- The installed Fashion-MNIST. ------------------------------------------------------ */

static void check_fmnist(const char *split, size_t want_count)
{
    char ip[256], lp[256];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", FMNIST_DIR, split);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", FMNIST_DIR, split);
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0) {
        printf("\n  NOTE: %s not found (install dataset-fashion-mnist); skipped\n", ip);
        return;
    }
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_idx(ip, lp, &ds));
    CU_ASSERT_EQUAL_FATAL(byol_dataset_count(ds), want_count);
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    CU_ASSERT(c == 1 && h == 28 && w == 28);
    size_t per_class[10] = {0}, bad = 0;
    for (size_t i = 0; i < want_count; i++) {
        int l = byol_dataset_label(ds, i);
        if (l >= 0 && l <= 9)
            per_class[l]++;
        else
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int k = 0; k < 10; k++) /* Fashion-MNIST is balanced */
        CU_ASSERT_EQUAL(per_class[k], want_count / 10);
    float img[28 * 28], lo = 1, hi = 0;
    BYOL_CHECK_OK(byol_dataset_get(ds, want_count - 1, img));
    for (int k = 0; k < 28 * 28; k++) {
        lo = img[k] < lo ? img[k] : lo;
        hi = img[k] > hi ? img[k] : hi;
    }
    CU_ASSERT(lo >= 0.0f && hi <= 1.0f && hi > lo);
    printf("\n  %s: %zu images 28x28, labels 0..9 balanced, last image in [%g, %g]\n", split,
           byol_dataset_count(ds), lo, hi);
    byol_dataset_free(ds);
}

static void test_fashion_mnist(void)
{
    check_fmnist("t10k", 10000);
    check_fmnist("train", 60000);
}

/* ---- Main. ----------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof g_pixels; i++)
        g_pixels[i] = (uint8_t)(i * 37 % 251);
    g_pixels[sizeof g_pixels - 1] = 255;
    g_dir = byol_test_tmpdir("dataset");
    static const struct byol_test_case cases[] = {
        {"good_files", test_good_files, 0},
        {"null_handles", test_null_handles, 0},
        {"missing_and_unreadable", test_missing_and_unreadable, 0},
        {"truncated", test_truncated, 0},
        {"trailing_bytes", test_trailing_bytes, 0},
        {"wrong_magic", test_wrong_magic, 0},
        {"bad_dims", test_bad_dims, 0},
        {"label_count", test_label_count, 0},
        {"corrupt_gzip", test_corrupt_gzip, 0},
        {"fashion_mnist", test_fashion_mnist, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "dataset", cases);
    byol_test_remove_tree(g_dir);
    return rc;
}
