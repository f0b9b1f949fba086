/* Resource limits on untrusted files: every reader refuses, with a one-line message naming the
 * file, an input that would need more memory than there is (a sparse 1 TiB file, a gzip or
 * PNG bomb, a header whose dimensions overflow) before it allocates for it, and honours
 * $BYOL_MEMORY_LIMIT. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "byol/dataset.h"
#include "byol/safetensors.h"
#include "byol/settings.h"
#include "testutil.h"

static const char *g_dir;

/* ---- Writing test files. --------------------------------------------------------------- */

static void put_be32(uint8_t *b, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        b[k] = (uint8_t)(v >> (24 - 8 * k));
}

/* An IDX image header for n x h x w, followed by `data_len` bytes of `fill`. */
static uint8_t *idx_file(uint32_t n, uint32_t h, uint32_t w, size_t data_len, size_t *len)
{
    *len = 16 + data_len;
    uint8_t *b = malloc(*len);
    CU_ASSERT_FATAL(b != NULL);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    memset(b + 16, 0, data_len);
    return b;
}

static void png_chunk(FILE *f, const char *kind, const uint8_t *body, uint32_t n)
{
    uint8_t len[4], crc[4];
    put_be32(len, n);
    uLong c = crc32(0, (const Bytef *)kind, 4);
    c = crc32(c, body, n);
    put_be32(crc, (uint32_t)c);
    fwrite(len, 1, 4, f);
    fwrite(kind, 1, 4, f);
    fwrite(body, 1, n, f);
    fwrite(crc, 1, 4, f);
}

/* An 8-bit gray PNG of w x h whose IDAT holds only `rows` rows of zeros (all of them when
 * rows == h), in a class folder of its own under g_dir; returns the dataset root. */
static const char *png_tree(const char *name, uint32_t w, uint32_t h, uint32_t rows)
{
    const char *root = byol_test_path(g_dir, name);
    char cls[512], path[600];
    snprintf(cls, sizeof cls, "%s/c", root);
    CU_ASSERT_FATAL(mkdir(root, 0755) == 0 && mkdir(cls, 0755) == 0);
    snprintf(path, sizeof path, "%s/x.png", cls);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    uint8_t ihdr[13] = {0};
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = 8; /* depth; color type 0: gray */
    png_chunk(f, "IHDR", ihdr, 13);
    uLong raw = (uLong)rows * (w + 1), cap = compressBound(raw);
    uint8_t *zeros = calloc(raw ? raw : 1, 1), *z = malloc(cap);
    CU_ASSERT_FATAL(zeros && z && compress2(z, &cap, zeros, raw, 9) == Z_OK);
    png_chunk(f, "IDAT", z, (uint32_t)cap);
    png_chunk(f, "IEND", ihdr, 0);
    fclose(f);
    free(zeros);
    free(z);
    return root;
}

/* Opening the folder works (it only lists); reading image 0 gives `want` and `needle`. */
static void expect_image_fail(const char *root, byol_status want, const char *needle)
{
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, 3, 8, &ds));
    float out[3 * 8 * 8];
    CU_ASSERT_EQUAL(byol_dataset_get(ds, 0, out), want);
    BYOL_ASSERT_MSG_HAS("x.png");
    BYOL_ASSERT_MSG_HAS(needle);
    byol_dataset_free(ds);
}

/* ---- Tests. ---------------------------------------------------------------------------- */

/* A sparse 1 TiB safetensors file: refused from its size, without reading or allocating. */
static void test_st_larger_than_memory(void)
{
    const char *path = byol_test_path(g_dir, "huge.safetensors");
    unsigned char head[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    byol_test_write_file(path, head, sizeof head);
    if (truncate(path, (off_t)1 << 40) != 0) {
        printf("\n  SKIP: this filesystem has no 1 TiB sparse files\n");
        return;
    }
    struct byol_st_file *f = NULL;
    CU_ASSERT_EQUAL(byol_st_read(path, &f), BYOL_ERR_NOMEM);
    CU_ASSERT_PTR_NULL(f);
    BYOL_ASSERT_MSG_HAS("huge.safetensors: reading the file needs 1099511627");
    BYOL_ASSERT_MSG_HAS("bytes of memory, more than the ");
    unlink(path);
}

/* $BYOL_MEMORY_LIMIT caps every reader; a value that is not a memory size is an error. */
static void test_env_limit(void)
{
    const char *st_path = byol_test_path(g_dir, "w.safetensors");
    struct byol_st_writer *w;
    int64_t dims[1] = {1024};
    float *x = calloc(1024, sizeof *x);
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_add(w, "x", BYOL_ST_F32, 1, dims, x));
    BYOL_CHECK_OK(byol_st_writer_save(w, st_path));
    byol_st_writer_free(w);
    free(x);

    struct byol_st_file *f = NULL;
    setenv("BYOL_MEMORY_LIMIT", "2K", 1);
    CU_ASSERT_EQUAL(byol_st_read(st_path, &f), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("w.safetensors: reading the file needs ");
    BYOL_ASSERT_MSG_HAS("more than the 2048 available (BYOL_MEMORY_LIMIT)");

    /* The .npy and CIFAR readers read through the same check. */
    const char *cifar = byol_test_path(g_dir, "data_batch_1.bin");
    uint8_t rec[3073] = {1};
    byol_test_write_file(cifar, rec, sizeof rec);
    struct byol_dataset *ds = NULL;
    CU_ASSERT_EQUAL(byol_dataset_open_cifar(&cifar, 1, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("data_batch_1.bin: reading the file needs 3073 bytes");

    setenv("BYOL_MEMORY_LIMIT", "5000", 1); /* one batch fits, two do not */
    const char *two[2] = {cifar, cifar};
    CU_ASSERT_EQUAL(byol_dataset_open_cifar(two, 2, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("data_batch_1.bin: the CIFAR-10 data needs 6146 bytes");
    BYOL_CHECK_OK(byol_dataset_open_cifar(two, 1, &ds));
    byol_dataset_free(ds);

    /* A value that is not a memory size fails every check, naming the variable and value. */
    static const char *const bad[][2] = {
        {"lots", "BYOL_MEMORY_LIMIT=\"lots\" is not a memory size"},
        {"-1", "BYOL_MEMORY_LIMIT=\"-1\" is not a memory size"},
        {"1.5G", "BYOL_MEMORY_LIMIT=\"1.5G\" is not a memory size"},
        {"2X", "BYOL_MEMORY_LIMIT=\"2X\" is not a memory size"},
        {"2MB", "BYOL_MEMORY_LIMIT=\"2MB\" is not a memory size"},
        {" 2M", "BYOL_MEMORY_LIMIT=\" 2M\" is not a memory size"},
        {"18446744073709551616", "BYOL_MEMORY_LIMIT=\"18446744073709551616\" is 2^64 bytes"},
        {"17179869184G", "BYOL_MEMORY_LIMIT=\"17179869184G\" is 2^64 bytes or more"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("BYOL_MEMORY_LIMIT", bad[i][0], 1);
        CU_ASSERT_EQUAL(byol_st_read(st_path, &f), BYOL_ERR_INVALID);
        CU_ASSERT_PTR_NULL(f);
        BYOL_ASSERT_MSG_HAS(bad[i][1]);
        CU_ASSERT_EQUAL(byol_dataset_open_mock(4, 1, 4, 0, &ds), BYOL_ERR_INVALID);
        CU_ASSERT_PTR_NULL(ds);
    }
    /* The largest value that fits, and an empty one (no cap), are accepted. */
    static const char *const good[] = {"17179869183G", "18446744073709551615", "64m", ""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("BYOL_MEMORY_LIMIT", good[i], 1);
        BYOL_CHECK_OK(byol_st_read(st_path, &f));
        byol_st_free(f);
        f = NULL;
    }
    unsetenv("BYOL_MEMORY_LIMIT");
}

/* A mock dataset whose index order cannot fit in memory is refused before anything is made
 * (the config layer then names data.length: tests/bad-inputs, mock_length_memory). */
static void test_mock_length(void)
{
    struct byol_dataset *ds = NULL;
    setenv("BYOL_MEMORY_LIMIT", "1K", 1);
    CU_ASSERT_EQUAL(byol_dataset_open_mock(1000, 1, 4, 0, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("mock dataset: the order of 1000 images needs 8000 bytes of memory, "
                        "more than the 1024 available (BYOL_MEMORY_LIMIT)");
    BYOL_CHECK_OK(byol_dataset_open_mock(100, 1, 4, 0, &ds));
    byol_dataset_free(ds);
    ds = NULL;
    unsetenv("BYOL_MEMORY_LIMIT");
    CU_ASSERT_EQUAL(byol_dataset_open_mock((size_t)1 << 62, 1, 4, 0, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("mock dataset: the order of 4611686018427387904 images needs more "
                        "than 2^64 bytes");
    CU_ASSERT_EQUAL(byol_dataset_open_mock((size_t)1 << 50, 1, 4, 0, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("mock dataset: the order of 1125899906842624 images needs ");
    CU_ASSERT_PTR_NULL(ds);
}

/* IDX: a tiny gzip file that declares gigabytes is refused before the allocation; a highly
 * compressible but honest one still opens; the memory check covers the declared data. */
static void test_idx_bombs(void)
{
    size_t len;
    uint8_t *b = idx_file(4000, 1000, 1000, 0, &len); /* 4 GB, just under the format cap */
    const char *bomb = byol_test_path(g_dir, "bomb.idx.gz");
    byol_test_write_gzip(bomb, b, len);
    free(b);
    struct byol_dataset *ds = NULL;
    CU_ASSERT_EQUAL(byol_dataset_open_idx(bomb, NULL, &ds), BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("bomb.idx.gz: truncated: the header declares 4000x1000x1000 = "
                        "4000000000 data bytes, more than a gzip file of ");

    b = idx_file(1, 1000, 1000, 1000000, &len); /* 1 MB of zeros: about 1 kB of gzip */
    const char *zeros = byol_test_path(g_dir, "zeros.idx.gz");
    byol_test_write_gzip(zeros, b, len);
    BYOL_CHECK_OK(byol_dataset_open_idx(zeros, NULL, &ds));
    CU_ASSERT_EQUAL(byol_dataset_count(ds), 1);
    byol_dataset_free(ds);

    setenv("BYOL_MEMORY_LIMIT", "512K", 1);
    CU_ASSERT_EQUAL(byol_dataset_open_idx(zeros, NULL, &ds), BYOL_ERR_NOMEM);
    BYOL_ASSERT_MSG_HAS("zeros.idx.gz: the IDX data needs 1000000 bytes of memory");
    unsetenv("BYOL_MEMORY_LIMIT");
    free(b);
}

/* .npy: dimensions whose product wraps 64 bits must not pass as an empty array. */
static void test_npy_dims_overflow(void)
{
    static const char *const shapes[] = {"(17179869184, 1073741824)", "(4294967296, 4294967296, 1)",
                                         "(65536, 65536, 65536, 65536)"};
    const char *path = byol_test_path(g_dir, "wrap.npy");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char head[128 + 1];
        int n = snprintf(head, sizeof head,
                         "\x93NUMPY\x01%c%c%c{'descr': '|u1', 'fortran_order': "
                         "False, 'shape': %s, }",
                         0, 118, 0, shapes[i]);
        memset(head + n, ' ', sizeof head - 1 - (size_t)n);
        head[127] = '\n';
        byol_test_write_file(path, head, 128);
        struct byol_dataset *ds = NULL;
        CU_ASSERT_EQUAL(byol_dataset_open_npy(path, NULL, &ds), BYOL_ERR_FORMAT);
        BYOL_ASSERT_MSG_HAS("wrap.npy: the shape declares too much data");
    }
}

/* PNG: dimensions beyond the limits, and a file far too small for the pixels it declares. */
static void test_png_limits(void)
{
    expect_image_fail(png_tree("wide", 20000, 2, 2), BYOL_ERR_FORMAT,
                      "image too large (20000x2 PNG; limits: 16384 per side");
    expect_image_fail(png_tree("bomb", 16000, 4000, 1), BYOL_ERR_FORMAT,
                      "corrupt PNG (a 16000x4000 image needs 64004000 bytes of pixel data, "
                      "more than a file of ");
    /* Highly compressible but complete: decodes. */
    const char *ok = png_tree("flat", 2000, 8, 8);
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(ok, 3, 8, &ds));
    float out[3 * 8 * 8];
    BYOL_CHECK_OK(byol_dataset_get(ds, 0, out));
    byol_dataset_free(ds);
    setenv("BYOL_MEMORY_LIMIT", "100K", 1);
    expect_image_fail(ok, BYOL_ERR_NOMEM, "decoding a 2000x8 PNG needs 112000 bytes of memory");
    unsetenv("BYOL_MEMORY_LIMIT");
}

/* JPEG: a header that declares more pixels than allowed fails before decoding. */
static void test_jpeg_limits(void)
{
    size_t n;
    char src[1024];
    snprintf(src, sizeof src, "%s/data/folder/cat/b.jpg", BYOL_TEST_SOURCE_DIR);
    uint8_t *b = byol_test_read_file(src, &n);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < n && !sof; i++)
        if (b[i] == 0xff && (b[i + 1] == 0xc0 || b[i + 1] == 0xc2))
            sof = i;
    CU_ASSERT_FATAL(sof != 0);
    b[sof + 5] = b[sof + 7] = 0x80; /* 32768 x 32768 (libjpeg's own limit is 65500) */
    b[sof + 6] = b[sof + 8] = 0x00;
    const char *root = byol_test_path(g_dir, "jpeg");
    char path[600];
    snprintf(path, sizeof path, "%s/c", root);
    CU_ASSERT_FATAL(mkdir(root, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/c/x.jpg", root);
    byol_test_write_file(path, b, n);
    free(b);
    struct byol_dataset *ds = NULL;
    BYOL_CHECK_OK(byol_dataset_open_folder(root, 3, 8, &ds));
    float out[3 * 8 * 8];
    CU_ASSERT_EQUAL(byol_dataset_get(ds, 0, out), BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("x.jpg: image too large (32768x32768 JPEG");
    byol_dataset_free(ds);
}

/* Config files: a folder, and a file far larger than any config, are refused before libconfig
 * reads them. */
static void test_config_limits(void)
{
    struct byol_config *cfg = NULL;
    CU_ASSERT_EQUAL(byol_config_load(g_dir, &cfg), BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS(": not a regular file");
    const char *path = byol_test_path(g_dir, "huge.cfg");
    byol_test_write_file(path, "seed = 0;\n", 10);
    CU_ASSERT_FATAL(truncate(path, (off_t)17 << 20) == 0); /* sparse: NULs after the text */
    CU_ASSERT_EQUAL(byol_config_load(path, &cfg), BYOL_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(cfg);
    BYOL_ASSERT_MSG_HAS("huge.cfg: 17825792 bytes is too large for a config file (limit 16777216)");
    unlink(path);
}

int main(int argc, char **argv)
{
    unsetenv("BYOL_MEMORY_LIMIT");
    g_dir = byol_test_tmpdir("limits");
    static const struct byol_test_case cases[] = {
        {"safetensors file larger than memory", test_st_larger_than_memory, 0},
        {"BYOL_MEMORY_LIMIT", test_env_limit, 0},
        {"mock data.length larger than memory", test_mock_length, 0},
        {"IDX gzip bombs", test_idx_bombs, 0},
        {".npy dimensions that overflow", test_npy_dims_overflow, 0},
        {"PNG dimensions and decompressed size", test_png_limits, 0},
        {"JPEG dimensions", test_jpeg_limits, 0},
        {"config files", test_config_limits, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "limits", cases);
    byol_test_remove_tree(g_dir);
    return rc;
}
