/* The safetensors reader and writer: round trips of every dtype, metadata, and one broken
 * in-memory image per format rule, each checked for its status and message. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* A safetensors image: the 8-byte length of `json`, `json`, then `data_len` bytes 0, 1, 2... */
static unsigned char *make_image(const char *json, size_t data_len, size_t *len)
{
    size_t hlen = strlen(json);
    *len = 8 + hlen + data_len;
    unsigned char *b = malloc(*len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, json, hlen);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hlen + i] = (unsigned char)i;
    return b;
}

/* Parses an image that must fail with `want` and a message containing `needle`. */
static void expect_fail(const unsigned char *img, size_t len, byol_status want, const char *needle)
{
    struct byol_st_file *f = (struct byol_st_file *)0x1;
    byol_status st = byol_st_parse(img, len, "w.safetensors", &f);
    const char *msg = byol_last_error();
    if (st != want || !strstr(msg, needle) || strncmp(msg, "w.safetensors: ", 15) != 0)
        fprintf(stderr, "\n    want %s with \"%s\", got %s: \"%s\"\n", byol_status_str(want),
                needle, byol_status_str(st), msg);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, needle));
    CU_ASSERT_EQUAL(strncmp(msg, "w.safetensors: ", 15), 0);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_PTR_NULL(strchr(msg, '\n'));
}

static void expect_json_fail(const char *json, size_t data_len, const char *needle)
{
    size_t len;
    unsigned char *img = make_image(json, data_len, &len);
    expect_fail(img, len, BYOL_ERR_FORMAT, needle);
    free(img);
}

static struct byol_st_file *parse_ok(const char *json, size_t data_len)
{
    size_t len;
    unsigned char *img = make_image(json, data_len, &len);
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_parse(img, len, "ok.safetensors", &f));
    free(img);
    return f;
}

/* Number of entries in `dir` other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_round_trip(void)
{
    const float f32[6] = {1.5f, -2.25f, 3e-8f, 0.0f, -0.0f, 1e30f};
    const double f64[4] = {1.0 / 3.0, -1e300, 0.5, 42.0};
    const int64_t i64 = -1234567890123LL; /* the [] scalar BN's num_batches_tracked uses */
    const int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    const uint8_t u8[5] = {0, 1, 127, 128, 255}; /* odd length: later tensors start unaligned */
    const uint16_t bf16[3] = {0x3f80, 0xbf80, 0x7f80};
    const uint16_t f16[2] = {0x3c00, 0xfbff};
    const int64_t d23[] = {2, 3}, d4[] = {4}, d22[] = {2, 2}, d5[] = {5}, d3[] = {3},
                  d21[] = {2, 1}, d04[] = {0, 4};
    struct byol_st_writer *w = NULL;
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_add(w, "fc.weight", BYOL_ST_F32, 2, d23, f32));
    BYOL_CHECK_OK(byol_st_writer_add(w, "d", BYOL_ST_F64, 1, d4, f64));
    BYOL_CHECK_OK(byol_st_writer_add(w, "bn.num_batches_tracked", BYOL_ST_I64, 0, NULL, &i64));
    BYOL_CHECK_OK(byol_st_writer_add(w, "u8", BYOL_ST_U8, 1, d5, u8));
    BYOL_CHECK_OK(byol_st_writer_add(w, "i32", BYOL_ST_I32, 2, d22, i32));
    BYOL_CHECK_OK(byol_st_writer_add(w, "bf16", BYOL_ST_BF16, 1, d3, bf16));
    BYOL_CHECK_OK(byol_st_writer_add(w, "f16 \"quoted\"\\\n\xc3\xa9", BYOL_ST_F16, 2, d21, f16));
    BYOL_CHECK_OK(byol_st_writer_add(w, "empty", BYOL_ST_F32, 2, d04, NULL));
    BYOL_CHECK_OK(byol_st_writer_metadata(w, "format", "pt"));
    BYOL_CHECK_OK(byol_st_writer_metadata(w, "note", "tab\there \"q\" \\ \xe2\x82\xac"));
    /* Names are unique, and __metadata__ is not a tensor name. */
    CU_ASSERT_EQUAL(byol_st_writer_add(w, "d", BYOL_ST_F64, 1, d4, f64), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_st_writer_add(w, "__metadata__", BYOL_ST_F64, 1, d4, f64),
                    BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_st_writer_metadata(w, "format", "x"), BYOL_ERR_DUPLICATE);

    const char *dir = byol_test_tmpdir("st");
    char path[600];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    /* Saving again replaces the file in place. */
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    byol_st_writer_free(w);
    CU_ASSERT_EQUAL(count_entries(dir), 1);

    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(path, &f));
    CU_ASSERT_EQUAL(byol_st_count(f), 8);
    /* Header order is insertion order. */
    CU_ASSERT_STRING_EQUAL(byol_st_at(f, 0)->name, "fc.weight");
    CU_ASSERT_STRING_EQUAL(byol_st_at(f, 7)->name, "empty");
    CU_ASSERT_PTR_NULL(byol_st_at(f, 8));

    const struct byol_st_tensor *t = byol_st_find(f, "fc.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_F32);
    CU_ASSERT_EQUAL(t->ndim, 2);
    CU_ASSERT_EQUAL(t->dims[0], 2);
    CU_ASSERT_EQUAL(t->dims[1], 3);
    CU_ASSERT_EQUAL(t->numel, 6);
    CU_ASSERT_EQUAL(t->nbytes, 24);
    CU_ASSERT_EQUAL(memcmp(t->data, f32, sizeof f32), 0);
    /* The first tensor starts the data section, which the reader aligns. */
    CU_ASSERT_EQUAL((uintptr_t)t->data % 64, 0);

    t = byol_st_find(f, "d");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_F64);
    CU_ASSERT_EQUAL(memcmp(t->data, f64, sizeof f64), 0);

    t = byol_st_find(f, "bn.num_batches_tracked");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_I64);
    CU_ASSERT_EQUAL(t->ndim, 0);
    CU_ASSERT_EQUAL(t->numel, 1);
    CU_ASSERT_EQUAL(t->nbytes, 8);
    int64_t got64;
    memcpy(&got64, t->data, 8);
    CU_ASSERT_EQUAL(got64, i64);

    t = byol_st_find(f, "u8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_U8);
    CU_ASSERT_EQUAL(memcmp(t->data, u8, sizeof u8), 0);
    t = byol_st_find(f, "i32");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_I32);
    CU_ASSERT_EQUAL(memcmp(t->data, i32, sizeof i32), 0);
    t = byol_st_find(f, "bf16");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_BF16);
    CU_ASSERT_EQUAL(memcmp(t->data, bf16, sizeof bf16), 0);
    t = byol_st_find(f, "f16 \"quoted\"\\\n\xc3\xa9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, BYOL_ST_F16);
    CU_ASSERT_EQUAL(t->nbytes, 4);
    CU_ASSERT_EQUAL(memcmp(t->data, f16, sizeof f16), 0);
    t = byol_st_find(f, "empty");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->numel, 0);
    CU_ASSERT_EQUAL(t->nbytes, 0);
    CU_ASSERT_PTR_NULL(byol_st_find(f, "missing"));

    CU_ASSERT_STRING_EQUAL(byol_st_metadata(f, "format"), "pt");
    CU_ASSERT_STRING_EQUAL(byol_st_metadata(f, "note"), "tab\there \"q\" \\ \xe2\x82\xac");
    CU_ASSERT_PTR_NULL(byol_st_metadata(f, "missing"));
    byol_st_free(f);

    /* The header is padded so that the data section starts at a multiple of 8. */
    FILE *fp = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    unsigned char prefix[8];
    CU_ASSERT_EQUAL(fread(prefix, 1, 8, fp), 8);
    fclose(fp);
    CU_ASSERT_EQUAL(prefix[0] % 8, 0);

    byol_test_remove_tree(dir);
}

static void test_empty_writer(void)
{
    struct byol_st_writer *w = NULL;
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    const char *dir = byol_test_tmpdir("st");
    char path[600];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    byol_st_writer_free(w);
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(path, &f));
    CU_ASSERT_EQUAL(byol_st_count(f), 0);
    byol_st_free(f);
    byol_test_remove_tree(dir);
}

/* Things other writers produce that the format allows. */
static void test_parse_accepts(void)
{
    /* Padding spaces, whitespace between tokens, out-of-order offsets, \u escapes. */
    struct byol_st_file *f =
        parse_ok(" {\n \"__metadata__\" : {\"k\":\"v\\u00e9\\ud83d\\ude00\\/\"},"
                 "\"b\":{\"shape\":[2],\"dtype\":\"U8\",\"data_offsets\":[4,6]},\t"
                 "\"a\\u0041\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                 "\"z\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[6,6]}}     ",
                 6);
    CU_ASSERT_EQUAL(byol_st_count(f), 3);
    CU_ASSERT_STRING_EQUAL(byol_st_metadata(f, "k"), "v\xc3\xa9\xf0\x9f\x98\x80/");
    const struct byol_st_tensor *t = byol_st_find(f, "aA");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->ndim, 0);
    CU_ASSERT_EQUAL(((const unsigned char *)t->data)[3], 3);
    t = byol_st_find(f, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(((const unsigned char *)t->data)[0], 4);
    byol_st_free(f);

    /* A file with no tensors at all. */
    f = parse_ok("{}", 0);
    CU_ASSERT_EQUAL(byol_st_count(f), 0);
    byol_st_free(f);
}

static void test_bad_prefix(void)
{
    unsigned char short_img[5] = {2, 0, 0, 0, 0};
    expect_fail(short_img, sizeof short_img, BYOL_ERR_FORMAT, "too short");
    expect_fail(short_img, 0, BYOL_ERR_FORMAT, "too short");

    size_t len;
    unsigned char *img = make_image("{}", 0, &len);
    img[0] = 100; /* header length 100 in a 10-byte file */
    expect_fail(img, len, BYOL_ERR_FORMAT, "header length 100 runs past the end of the file");
    /* 200 MB: over the limit, whatever the file size. */
    uint64_t big = 200ull * 1024 * 1024;
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)(big >> (8 * i));
    expect_fail(img, len, BYOL_ERR_FORMAT, "exceeds the limit");
    memset(img, 0xff, 8);
    expect_fail(img, len, BYOL_ERR_FORMAT, "exceeds the limit");
    free(img);
}

static void test_bad_json(void)
{
    expect_json_fail("", 0, "not a JSON object");
    expect_json_fail("[1, 2]", 0, "not a JSON object");
    expect_json_fail("\"a\"", 0, "not a JSON object");
    expect_json_fail("{\"a\":", 0, "invalid JSON header: unexpected end");
    expect_json_fail("{\"a\" 1}", 0, "expected ':'");
    expect_json_fail("{\"a\":{},}", 0, "expected a string key");
    expect_json_fail("{a:{}}", 0, "expected a string key");
    expect_json_fail("{\"a\":{}} x", 0, "trailing characters");
    expect_json_fail("{\"a\":{}}{}", 0, "trailing characters");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5]}}", 0, "non-integer number");
    expect_json_fail("{\"a\":{\"shape\":[1e3]}}", 0, "non-integer number");
    expect_json_fail("{\"a\":{\"shape\":[01]}}", 0, "leading zero");
    expect_json_fail("{\"a\":{\"shape\":[99999999999999999999]}}", 0, "integer out of range");
    expect_json_fail("{\"a\":{\"shape\":[-]}}", 0, "expected a digit");
    expect_json_fail("{\"a\":true}", 0, "unsupported or invalid value");
    expect_json_fail("{\"a\":null}", 0, "unsupported or invalid value");
    expect_json_fail("{\"a\":{\"shape\":[1 2]}}", 0, "expected ',' or ']'");
    expect_json_fail("{\"a\":{\"shape\":[1]", 0, "unterminated object");
    expect_json_fail("{\"a\":{\"dtype\":\"F32", 0, "unterminated string");
    expect_json_fail("{\"a\\q\":{}}", 0, "unknown escape");
    expect_json_fail("{\"a\\u00g0\":{}}", 0, "bad hex digit");
    expect_json_fail("{\"a\\u0000\":{}}", 0, "\\u0000");
    expect_json_fail("{\"a\\ud800\":{}}", 0, "unpaired high surrogate");
    expect_json_fail("{\"a\\udc00\":{}}", 0, "unpaired low surrogate");
    expect_json_fail("{\"a\x01\":{}}", 0, "control character");
    expect_json_fail("{\"a\xc3\":{}}", 0, "invalid UTF-8");
    expect_json_fail("{\"a\xc0\xaf\":{}}", 0, "invalid UTF-8");
    expect_json_fail("{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]}", 0, "nested too deeply");
}

static void test_bad_entries(void)
{
    /* Schema: each entry is an object with exactly dtype, shape and data_offsets. */
    expect_json_fail("{\"t\":[]}", 0, "tensor 't': entry is not an object");
    expect_json_fail("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                     "tensor 't': missing dtype");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                     "tensor 't': missing shape");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                     "tensor 't': missing data_offsets");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                     "tensor 't': unknown key 'x'");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                     "\"data_offsets\":[0,4]}}",
                     4, "tensor 't': duplicate key 'dtype'");
    expect_json_fail("{\"t\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                     "tensor 't': unknown dtype 'F8_E4M3'");
    expect_json_fail("{\"t\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                     "dtype is not a string");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4,
                     "shape is not an array");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                     "shape holds a non-integer");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                     "tensor 't': shape has a negative dimension -1");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                     "\"data_offsets\":[0,4]}}",
                     4, "9 dimensions");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                     "data_offsets is not an array of two integers");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                     "is not a range");
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                     "is not a range");
    expect_json_fail("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    expect_json_fail("{\"__metadata__\":{\"k\":1}}", 0, "value of 'k' is not a string");
    expect_json_fail("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate key 'k'");
}

static void test_bad_layout(void)
{
    /* The size rule, with the message the format's users see. */
    expect_json_fail("{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}",
                     12,
                     "w.safetensors: tensor 'fc.weight': data_offsets [0, 12] span 12 bytes, "
                     "shape [2, 3] F32 needs 24");
    /* numel x dtype size overflows 64 bits. */
    expect_json_fail("{\"t\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                     "\"data_offsets\":[0,0]}}",
                     0, "tensor 't': shape [4294967296, 4294967296] F64 overflows");
    expect_json_fail("{\"t\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                     "\"data_offsets\":[0,0]}}",
                     0, "overflows");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                     12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                     12, "gap of 4 bytes in the data section before tensor 'b'");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                     "gap of 4 bytes in the data section before tensor 'a'");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 7,
                     "3 trailing bytes after the last tensor");
    expect_json_fail("{}", 1, "1 trailing bytes");
    expect_json_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                     "run past the data section (4 bytes)");
    expect_json_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                     2, "duplicate tensor name 'a'");
}

static void set_prefix(unsigned char *img, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)(n >> (8 * i));
}

static void accept_json(const char *json, size_t data_len, size_t want_count)
{
    struct byol_st_file *f = parse_ok(json, data_len);
    CU_ASSERT_EQUAL(byol_st_count(f), want_count);
    byol_st_free(f);
}

/* The format's rules one by one, each at its edge: what passes right at a limit and what
 * fails just past it (the rules of huggingface/safetensors' reference reader). */
static void test_format_rules(void)
{
    /* 1. The header length is at most BYOL_ST_MAX_HEADER (the reference's 100,000,000) and
     *    covers exactly the JSON. */
    size_t len;
    unsigned char *img = make_image("{}", 0, &len);
    set_prefix(img, (uint64_t)BYOL_ST_MAX_HEADER + 1);
    expect_fail(img, len, BYOL_ERR_FORMAT,
                "header length 100000001 exceeds the limit of 100000000 bytes");
    set_prefix(img, BYOL_ST_MAX_HEADER); /* allowed, but this file is too short for it */
    expect_fail(img, len, BYOL_ERR_FORMAT, "header length 100000000 runs past the end");
    set_prefix(img, 1); /* "{" as the header and "}" as data */
    expect_fail(img, len, BYOL_ERR_FORMAT, "invalid JSON header");
    static const unsigned char nul_pad[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
    expect_fail(nul_pad, sizeof nul_pad, BYOL_ERR_FORMAT, "trailing characters after the header");
    free(img);

    /* 2. The offsets tile the data section from 0 without overlap or gap, in any header
     *    order; an empty tensor may sit at any boundary, not past the end. */
    accept_json("{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
                "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                8, 3);
    expect_json_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[3,7]}}",
                     7, "tensor 'b': data_offsets [3, 7] overlap tensor 'a'");
    expect_json_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[5,9]}}",
                     9, "gap of 1 bytes in the data section before tensor 'b'");
    expect_json_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                     "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]}}",
                     4, "tensor 'z': data_offsets [5, 5] run past the data section (4 bytes)");

    /* 3. A tensor's bytes are the product of its shape times its dtype size, with overflow
     *    checks: [] is one element, a zero dimension empties the tensor whatever the others. */
    accept_json("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, 1);
    accept_json("{\"e\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],"
                "\"data_offsets\":[0,0]}}",
                0, 1);
    expect_json_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                     "\"data_offsets\":[0,0]}}",
                     0, "tensor 't': shape [4611686018427387904] F32 overflows the size type");
    expect_json_fail("{\"t\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,5]}}", 5,
                     "tensor 't': data_offsets [0, 5] span 5 bytes, shape [3] BF16 needs 6");

    /* 4. Nothing after the last tensor. */
    expect_json_fail("{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 3,
                     "1 trailing bytes after the last tensor");

    /* 5. Names are unique, compared after JSON decoding ("\u0061" is "a"). */
    expect_json_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                     "\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                     2, "duplicate tensor name 'a'");

    /* 6. The header's parse tree is bounded by memory before it is built. */
    img = make_image("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, &len);
    setenv("BYOL_MEMORY_LIMIT", "1K", 1);
    expect_fail(img, len, BYOL_ERR_NOMEM, "reading the file needs 1843 bytes of memory");
    unsetenv("BYOL_MEMORY_LIMIT");
    free(img);
}

static void test_read_errors(void)
{
    struct byol_st_file *f = NULL;
    byol_status st = byol_st_read("/nonexistent-byol/w.safetensors", &f);
    CU_ASSERT_EQUAL(st, BYOL_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), "/nonexistent-byol/w.safetensors: "));

    /* A folder is not a file. */
    const char *dir = byol_test_tmpdir("st");
    CU_ASSERT_EQUAL(byol_st_read(dir, &f), BYOL_ERR_IO);
    CU_ASSERT_PTR_NULL(f);

    /* Format errors from a file name the file. */
    char path[600];
    snprintf(path, sizeof path, "%s/trunc.safetensors", dir);
    byol_test_write_file(path, "\x10\0\0\0", 4);
    CU_ASSERT_EQUAL(byol_st_read(path, &f), BYOL_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), "too short"));
    byol_test_remove_tree(dir);
}

static void test_failed_save(void)
{
    const float x = 1.0f;
    const int64_t d1[] = {1};
    struct byol_st_writer *w = NULL;
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_add(w, "x", BYOL_ST_F32, 1, d1, &x));

    /* The folder does not exist: nothing can be created. */
    const char *dir = byol_test_tmpdir("st");
    char path[600];
    snprintf(path, sizeof path, "%s/missing/w.safetensors", dir);
    CU_ASSERT_EQUAL(byol_st_writer_save(w, path), BYOL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), strerror(ENOENT)));
    CU_ASSERT_EQUAL(count_entries(dir), 0);

    /* The temp file is written, then the rename fails (PATH is a folder): the temp file is
     * removed and PATH is left as it was. */
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
    CU_ASSERT_EQUAL(byol_st_writer_save(w, path), BYOL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), "rename"));
    CU_ASSERT_EQUAL(count_entries(dir), 1);
    struct stat sb;
    CU_ASSERT(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
    byol_test_remove_tree(dir);
    byol_st_writer_free(w);
}

/* NaN and infinity found by their bits in every float dtype; integers are never flagged. */
static void test_first_nonfinite(void)
{
    const float f32[] = {1.0f, -0.0f, INFINITY, NAN};
    const double f64[] = {1e308, -NAN};
    const uint16_t bf16[] = {0x3f80, 0xff80}, f16[] = {0x7bff, 0x7e00};
    const int64_t i64[] = {-1, 0x7ff0000000000000ll};
    struct byol_st_tensor t = {.dtype = BYOL_ST_F32, .numel = 4, .data = f32};
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 2);
    t.numel = 2;
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 2); /* none among the first two */
    t = (struct byol_st_tensor){.dtype = BYOL_ST_F64, .numel = 2, .data = f64};
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 1);
    t = (struct byol_st_tensor){.dtype = BYOL_ST_BF16, .numel = 2, .data = bf16};
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 1);
    t = (struct byol_st_tensor){.dtype = BYOL_ST_F16, .numel = 2, .data = f16};
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 1);
    t = (struct byol_st_tensor){.dtype = BYOL_ST_I64, .numel = 2, .data = i64};
    CU_ASSERT_EQUAL(byol_st_first_nonfinite(&t), 2);
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"first non-finite element", test_first_nonfinite, 0},
        {"round trip of every dtype and metadata", test_round_trip, 0},
        {"a file with no tensors", test_empty_writer, 0},
        {"valid headers from other writers", test_parse_accepts, 0},
        {"bad length prefix", test_bad_prefix, 0},
        {"bad JSON", test_bad_json, 0},
        {"bad tensor entries", test_bad_entries, 0},
        {"bad data layout", test_bad_layout, 0},
        {"the format's rules at their edges", test_format_rules, 0},
        {"read errors", test_read_errors, 0},
        {"failed save leaves nothing behind", test_failed_save, 0},
        {NULL, NULL, 0},
    };
    return byol_test_main(argc, argv, "safetensors", cases);
}
