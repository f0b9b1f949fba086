/* The ONNX writer's size limits (core/io/onnx.c, compiled into this test: its functions are
 * internal to libbyol). One protobuf message holds at most 2 GiB - 1 bytes, so the writer
 * refuses weights beyond that as they are added, and a whole model beyond it at save, before
 * anything is written. Built twice (tests/CMakeLists.txt):
 *   test_onnx_limits        the real limit: declared sizes past it are refused before a byte
 *                           of their data is read, so no test allocates gigabytes;
 *   test_onnx_limits_small  the same code with the limit lowered to 4 KiB
 *                           (BYOL_ONNX_TEST_MAX_BYTES): both refusals at their exact
 *                           boundaries, with real bytes. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio_internal.h"
#include "onnx_internal.h"
#include "testutil.h"

static const char *dir; /* the scratch folder, made by main */

/* ---- the file layer, replaced: a plain write that counts its calls ---------------------- */

static int replace_calls;
static size_t replace_bytes; /* what the last save wrote */

int byol_write_all(int fd, const void *buf, size_t n)
{
    replace_bytes += n;
    return write(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

byol_status byol_file_replace(const char *path, byol_file_writer_fn fn, void *user)
{
    replace_calls++;
    replace_bytes = 0;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return byol_error(BYOL_ERR_IO, "%s: cannot open", path);
    int rc = fn(fd, user);
    close(fd);
    return rc == 0 ? BYOL_OK : byol_error(BYOL_ERR_IO, "%s: cannot write", path);
}

/* ---- helpers ------------------------------------------------------------------------------ */

#define WEIGHTS_MSG(gb, name)                                                                      \
    "the weights take more than 2 GB (" gb " GB at '" name "'), the most one ONNX file holds "     \
    "without external data, which byol-c does not write"

static void expect_msg(const char *want)
{
    if (strcmp(byol_last_error(), want) != 0)
        fprintf(stderr, "\n  message \"%s\"\n  expected \"%s\"\n", byol_last_error(), want);
    CU_ASSERT_STRING_EQUAL(byol_last_error(), want);
}

/* The file's bytes, or "" when there is none (static buffer). */
static const char *file_text(const char *path)
{
    static char text[64];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    return text;
}

static size_t file_size(const char *path)
{
    size_t n = 0;
    unsigned char *b = byol_test_read_file(path, &n);
    free(b);
    return n;
}

/* A small graph around the weights: input, one node, output. */
static void add_graph(struct byol_onnx *m)
{
    const int64_t in[2] = {-1, 4};
    const char *ins[1] = {"x"};
    BYOL_CHECK_OK(byol_onnx_add_input(m, "x", in, 2));
    BYOL_CHECK_OK(byol_onnx_add_node(m, "Relu", "relu", ins, 1, "y", NULL, 0));
    BYOL_CHECK_OK(byol_onnx_add_output(m, "y", in, 2));
}

#ifndef BYOL_ONNX_TEST_MAX_BYTES

/* ---- the real limit: INT32_MAX bytes --------------------------------------------------- */

/* Never read: a tensor refused for its size must fail before its data is touched (AddressSanitizer
 * and valgrind would report a read past these four floats). */
static const float four[4] = {1, 2, 3, 4};

/* 2^29 floats are 2^31 bytes, one more than the limit: refused, and the model is unchanged. */
static void test_one_tensor_over(void)
{
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t dims[2] = {1 << 20, 1 << 9};
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "fc.weight", dims, 2, four), BYOL_ERR_UNSUPPORTED);
    expect_msg(WEIGHTS_MSG("2.15", "fc.weight"));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 0);
    /* int64 initializers count alike: 2^28 of them are 2^31 bytes. */
    const int64_t n64[1] = {1 << 28};
    const int64_t i4[4] = {0};
    CU_ASSERT_EQUAL(byol_onnx_add_i64(m, "shape", n64, 1, i4), BYOL_ERR_UNSUPPORTED);
    expect_msg(WEIGHTS_MSG("2.15", "shape"));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 0);
    byol_onnx_free(m);
}

/* The limit is on the sum: 2^31 - 4 bytes fit alone (INT32_MAX = 2^31 - 1), but not after 8
 * bytes of earlier weights. */
static void test_sum_over(void)
{
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t one[1] = {1}, v[1] = {7};
    BYOL_CHECK_OK(byol_onnx_add_i64(m, "step", one, 1, v));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 8);
    const int64_t dims[1] = {((int64_t)1 << 29) - 1};
    CU_ASSERT(dims[0] * 4 <= (int64_t)INT32_MAX);
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "fc.weight", dims, 1, four), BYOL_ERR_UNSUPPORTED);
    expect_msg(WEIGHTS_MSG("2.15", "fc.weight"));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 8);
    byol_onnx_free(m);
}

/* Counts whose bytes do not fit 64 bits are over the limit too, not wrapped around into a small
 * size; a negative dimension is refused. */
static void test_overflow(void)
{
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t wraps[2] = {(int64_t)1 << 62, 4}; /* x 4 x 4 bytes = 2^66: 0 mod 2^64 */
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "huge", wraps, 2, four), BYOL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(byol_last_error(), "the weights take more than 2 GB (73786976294.84 GB at 'huge')"));
    const int64_t big[3] = {INT64_MAX, INT64_MAX, 2};
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "huger", big, 3, four), BYOL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), " GB at 'huger'), the most one ONNX file"));
    const int64_t neg[2] = {4, -1};
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "neg", neg, 2, four), BYOL_ERR_INVALID);
    expect_msg("onnx: initializer 'neg': dimension 1 is -1");
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 0);
    byol_onnx_free(m);
}

/* After refusals the model takes weights that fit and saves: an ONNX file (ir_version 8 first:
 * bytes 08 08). */
static void test_refused_then_saved(void)
{
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t over[1] = {(int64_t)1 << 29}, dims[1] = {4};
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "big", over, 1, four), BYOL_ERR_UNSUPPORTED);
    BYOL_CHECK_OK(byol_onnx_add_f32(m, "w", dims, 1, four));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 16);
    add_graph(m);
    const char *path = byol_test_path(dir, "ok.onnx");
    replace_calls = 0;
    BYOL_CHECK_OK(byol_onnx_save(m, path, "test"));
    CU_ASSERT_EQUAL(replace_calls, 1);
    CU_ASSERT(memcmp(file_text(path), "\x08\x08", 2) == 0);
    CU_ASSERT_EQUAL(file_size(path), replace_bytes);
    byol_onnx_free(m);
}

static const struct byol_test_case cases[] = {
    {"one tensor over 2 GB, never read", test_one_tensor_over, 0},
    {"the weights' sum over 2 GB", test_sum_over, 0},
    {"sizes past 64 bits, negative dims", test_overflow, 0},
    {"a refusal leaves the model usable", test_refused_then_saved, 0},
    {NULL, NULL, 0},
};

#else

/* ---- the limit lowered to BYOL_ONNX_TEST_MAX_BYTES (4096) -------------------------------- */

_Static_assert(BYOL_ONNX_TEST_MAX_BYTES == 4096, "the cases below count on a 4 KiB limit");

static float weights[1024];

/* Weights of exactly the limit are taken; one float more is refused. */
static void test_weights_boundary(void)
{
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t half[1] = {512}, one[1] = {1};
    BYOL_CHECK_OK(byol_onnx_add_f32(m, "a", half, 1, weights));
    BYOL_CHECK_OK(byol_onnx_add_f32(m, "b", half, 1, weights));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 4096);
    CU_ASSERT_EQUAL(byol_onnx_add_f32(m, "c", one, 1, weights), BYOL_ERR_UNSUPPORTED);
    expect_msg(WEIGHTS_MSG("0.00", "c"));
    CU_ASSERT_EQUAL(byol_onnx_weight_bytes(m), 4096);
    byol_onnx_free(m);
}

/* A model of 850 floats of weights and a metadata value of `len` bytes; 0 when saved (the
 * bytes written in replace_bytes), else the status. */
static byol_status save_model(const char *path, size_t len)
{
    static char value[4096];
    struct byol_onnx *m = NULL;
    BYOL_CHECK_OK(byol_onnx_create("g", &m));
    const int64_t dims[1] = {850};
    BYOL_CHECK_OK(byol_onnx_add_f32(m, "w", dims, 1, weights));
    add_graph(m);
    CU_ASSERT_FATAL(len < sizeof value);
    memset(value, 'v', len);
    value[len] = '\0';
    BYOL_CHECK_OK(byol_onnx_add_metadata(m, "note", value));
    replace_calls = 0;
    byol_status st = byol_onnx_save(m, path, "test");
    CU_ASSERT_EQUAL(replace_calls, st == BYOL_OK);
    byol_onnx_free(m);
    return st;
}

/* A model whose file would take exactly the limit is written; one byte more (a longer metadata
 * value) is refused naming the path, before anything is written: the file already there is
 * intact. */
static void test_model_boundary(void)
{
    const char *path = byol_test_path(dir, "m.onnx");
    BYOL_CHECK_OK(save_model(path, 200)); /* a 2-byte length, as for every length up to 16383 */
    size_t base = replace_bytes;
    CU_ASSERT_FATAL(base > 3400 && base < 4096);
    size_t len = 200 + (4096 - base);
    BYOL_CHECK_OK(save_model(path, len));
    CU_ASSERT_EQUAL(replace_bytes, 4096);
    CU_ASSERT_EQUAL(file_size(path), 4096);

    byol_test_write_file(path, "keep", 4);
    CU_ASSERT_EQUAL(save_model(path, len + 1), BYOL_ERR_UNSUPPORTED);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: the model takes more than 2 GB, the most one ONNX file holds without external "
             "data, which byol-c does not write",
             path);
    expect_msg(want);
    CU_ASSERT_STRING_EQUAL(file_text(path), "keep");
    /* Nor is a missing file created. */
    const char *none = byol_test_path(dir, "none.onnx");
    CU_ASSERT_EQUAL(save_model(none, len + 1), BYOL_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(access(none, F_OK), -1);
}

static const struct byol_test_case cases[] = {
    {"weights at the limit, and one float over", test_weights_boundary, 0},
    {"a model at the limit, and one byte over", test_model_boundary, 0},
    {NULL, NULL, 0},
};

#endif

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("onnx-limits");
    int rc = byol_test_main(argc, argv, "onnx limits", cases);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
