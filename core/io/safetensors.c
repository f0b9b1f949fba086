/* safetensors reader and writer (see byol/safetensors.h): a strict JSON header parser that
 * enforces the format's rules, and an atomic writer (temp file, fsync, rename, fsync dir). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/safetensors.h"
#include "fileio_internal.h"
#include "limits_internal.h"
#include "sbuf_internal.h"

/* The data section starts at this alignment in memory, so that a file whose tensors are
 * aligned within the data section (every file this writer makes, F32 tensors at multiples of
 * 4) can be read through typed pointers. */
#define ST_DATA_ALIGN 64
/* Deep enough for {"t": {"shape": [..]}}; a bound keeps the recursion bounded on hostile
 * input. */
#define ST_MAX_DEPTH 8

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [BYOL_ST_F32] = {"F32", 4}, [BYOL_ST_F64] = {"F64", 8}, [BYOL_ST_I64] = {"I64", 8},
    [BYOL_ST_I32] = {"I32", 4}, [BYOL_ST_U8] = {"U8", 1},   [BYOL_ST_BF16] = {"BF16", 2},
    [BYOL_ST_F16] = {"F16", 2},
};
#define ST_NDTYPES (sizeof dtype_info / sizeof dtype_info[0])

struct st_meta {
    const char *key, *value;
};

struct byol_st_file {
    char *alloc;         /* the allocation holding the image */
    const uint8_t *data; /* start of the data section, ST_DATA_ALIGN-aligned */
    size_t data_len;
    char *strings;                  /* decoded JSON strings: tensor names, metadata */
    struct byol_st_tensor *tensors; /* in header order */
    size_t count;
    const struct byol_st_tensor **by_name; /* sorted by name, for lookup */
    struct st_meta *meta;
    size_t nmeta;
};

/* ---- errors ------------------------------------------------------------------------- */

/* Every format error reads "FILE: what is wrong". */
static byol_status st_fail(const char *file, const char *fmt, ...) BYOL_PRINTF(2, 3);
static byol_status st_fail(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    byol_verror_about(BYOL_ERR_FORMAT, file, fmt, ap);
    va_end(ap);
    return BYOL_ERR_FORMAT;
}

/* ---- a strict JSON parser for the header --------------------------------------------- */

/* Only what a safetensors header needs: objects, arrays, strings and integers. The parsed
 * tree lives in a node array; strings are decoded into one arena that outlives the parse
 * (tensor names and metadata point into it).
 *
 * Why not jansson (libjansson-dev, which parses strictly and can reject duplicate keys): the
 * header is a small subset of JSON (no floats, booleans or null), and a checkpoint's messages
 * say where it is broken: "invalid JSON header: expected a string key at byte 60",
 * "tensor 't': duplicate key 'dtype'". jansson reports neither the byte nor the tensor, would
 * accept the whole grammar only for us to re-check every type on its tree, and caps integers at
 * int64 the same way. This parser is fuzzed in CI (tests/fuzz/fuzz_safetensors.c, ASan and
 * UBSan) and its broken inputs are tests (test_safetensors, tests/bad-inputs). */
enum jtype { J_OBJECT, J_ARRAY, J_STRING, J_INT };

struct jnode {
    enum jtype type;
    int64_t ival;
    size_t str;   /* J_STRING: offset of the decoded, NUL-terminated text in the arena */
    size_t key;   /* member of an object: offset of its key in the arena */
    long first;   /* first child (object member / array element), -1 if none */
    long next;    /* next sibling, -1 if last */
    size_t count; /* number of children */
    size_t pos;   /* byte offset in the header, for messages */
};

struct jparser {
    const char *file;
    const char *s;
    size_t len, pos;
    struct jnode *nodes;
    size_t nnodes, cap;
    char *arena;
    size_t arena_used;
    byol_status st;
};

static int jerr(struct jparser *p, const char *what)
{
    if (p->st == BYOL_OK)
        p->st = st_fail(p->file, "invalid JSON header: %s at byte %zu", what, p->pos);
    return -1;
}

static void jskip_ws(struct jparser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static long jnew(struct jparser *p, enum jtype type)
{
    if (p->nnodes == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        struct jnode *n = realloc(p->nodes, cap * sizeof *n);
        if (!n) {
            p->st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory parsing the header", p->file);
            return -1;
        }
        p->nodes = n;
        p->cap = cap;
    }
    struct jnode *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->first = n->next = -1;
    n->pos = p->pos;
    return (long)p->nnodes++;
}

static int jhex4(struct jparser *p, unsigned *out)
{
    if (p->len - p->pos < 4)
        return jerr(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return jerr(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static void jput_utf8(struct jparser *p, unsigned cp)
{
    char *o = p->arena + p->arena_used;
    if (cp < 0x80) {
        o[0] = (char)cp;
        p->arena_used += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        p->arena_used += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        p->arena_used += 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        p->arena_used += 4;
    }
}

/* \uXXXX, with surrogate pairs joined. A \uXXXX escape is 6 bytes of input and yields at
 * most 3 bytes (a pair: 12 bytes in, 4 out), so decoding never outgrows the raw text. */
static int jescape_u(struct jparser *p)
{
    unsigned cp;
    if (jhex4(p, &cp))
        return -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jerr(p, "unpaired low surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        unsigned lo;
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return jerr(p, "unpaired high surrogate in \\u escape");
        p->pos += 2;
        if (jhex4(p, &lo))
            return -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return jerr(p, "unpaired high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) /* names are C strings */
        return jerr(p, "\\u0000 in a string");
    jput_utf8(p, cp);
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 if invalid (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Parses a string at p->pos (on the opening quote); stores its arena offset in *off. */
static int jstring(struct jparser *p, size_t *off)
{
    p->pos++; /* the opening quote */
    *off = p->arena_used;
    for (;;) {
        if (p->pos >= p->len)
            return jerr(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return jerr(p, "control character in a string");
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (!n)
                return jerr(p, "invalid UTF-8 in a string");
            memcpy(p->arena + p->arena_used, p->s + p->pos, n);
            p->arena_used += n;
            p->pos += n;
            continue;
        }
        if (++p->pos >= p->len)
            return jerr(p, "unterminated string");
        char e = p->s[p->pos++];
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u':
            if (jescape_u(p))
                return -1;
            continue;
        default: p->pos--; return jerr(p, "unknown escape in a string");
        }
        p->arena[p->arena_used++] = out;
    }
    p->arena[p->arena_used++] = '\0';
    return 0;
}

static int jinteger(struct jparser *p, int64_t *out)
{
    int neg = 0;
    if (p->s[p->pos] == '-') {
        neg = 1;
        p->pos++;
    }
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return jerr(p, "expected a digit");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' &&
        p->s[p->pos + 1] <= '9')
        return jerr(p, "leading zero in a number");
    /* Accumulate as a negative number so INT64_MIN fits. */
    int64_t v = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        int d = p->s[p->pos] - '0';
        if (v < (INT64_MIN + d) / 10)
            return jerr(p, "integer out of range");
        v = v * 10 - d;
        p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return jerr(p, "non-integer number");
    if (!neg) {
        if (v == INT64_MIN)
            return jerr(p, "integer out of range");
        v = -v;
    }
    *out = v;
    return 0;
}

static long jvalue(struct jparser *p, int depth);

/* An object or array: the caller has seen '{' or '['. */
static long jcontainer(struct jparser *p, int depth, int is_object)
{
    long self = jnew(p, is_object ? J_OBJECT : J_ARRAY);
    if (self < 0)
        return -1;
    char close = is_object ? '}' : ']';
    long last = -1;
    p->pos++;
    jskip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return self;
    }
    for (;;) {
        size_t key = 0;
        jskip_ws(p);
        if (is_object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return jerr(p, "expected a string key");
            if (jstring(p, &key))
                return -1;
            jskip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return jerr(p, "expected ':'");
            p->pos++;
        }
        long child = jvalue(p, depth + 1);
        if (child < 0)
            return -1;
        p->nodes[child].key = key;
        if (last < 0)
            p->nodes[self].first = child;
        else
            p->nodes[last].next = child;
        last = child;
        p->nodes[self].count++;
        jskip_ws(p);
        if (p->pos >= p->len)
            return jerr(p, is_object ? "unterminated object" : "unterminated array");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return self;
        }
        return jerr(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static long jvalue(struct jparser *p, int depth)
{
    if (depth > ST_MAX_DEPTH)
        return jerr(p, "nested too deeply");
    jskip_ws(p);
    if (p->pos >= p->len)
        return jerr(p, "unexpected end");
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return jcontainer(p, depth, c == '{');
    if (c == '"') {
        long n = jnew(p, J_STRING);
        if (n < 0)
            return -1;
        size_t off = 0;
        if (jstring(p, &off))
            return -1;
        p->nodes[n].str = off;
        return n;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        long n = jnew(p, J_INT);
        if (n < 0)
            return -1;
        int64_t v = 0;
        if (jinteger(p, &v))
            return -1;
        p->nodes[n].ival = v;
        return n;
    }
    return jerr(p, "unsupported or invalid value");
}

/* ---- header validation --------------------------------------------------------------- */

static const char *jkey(const struct jparser *p, const struct jnode *n)
{
    return p->arena + n->key;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails naming the first key that appears twice in an object. */
static byol_status check_unique_keys(const struct jparser *p, const struct jnode *obj,
                                     const char *where)
{
    if (obj->count < 2)
        return BYOL_OK;
    const char **keys = malloc(obj->count * sizeof *keys);
    if (!keys)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", p->file);
    size_t i = 0;
    for (long c = obj->first; c >= 0; c = p->nodes[c].next)
        keys[i++] = jkey(p, &p->nodes[c]);
    qsort(keys, obj->count, sizeof *keys, cmp_str);
    byol_status st = BYOL_OK;
    for (i = 1; i < obj->count; i++)
        if (!strcmp(keys[i - 1], keys[i])) {
            st = st_fail(p->file, "%s: duplicate %s '%s'", where,
                         obj == &p->nodes[0] ? "tensor name" : "key", keys[i]);
            break;
        }
    free(keys);
    return st;
}

static byol_status parse_metadata(const struct jparser *p, const struct jnode *obj,
                                  struct byol_st_file *f)
{
    if (obj->type != J_OBJECT)
        return st_fail(p->file, "__metadata__ is not an object");
    byol_status st = check_unique_keys(p, obj, "__metadata__");
    if (st)
        return st;
    f->meta = calloc(obj->count ? obj->count : 1, sizeof *f->meta);
    if (!f->meta)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", p->file);
    for (long c = obj->first; c >= 0; c = p->nodes[c].next) {
        const struct jnode *v = &p->nodes[c];
        if (v->type != J_STRING)
            return st_fail(p->file, "__metadata__: value of '%s' is not a string", jkey(p, v));
        f->meta[f->nmeta].key = f->strings + v->key;
        f->meta[f->nmeta].value = f->strings + v->str;
        f->nmeta++;
    }
    return BYOL_OK;
}

const char *byol_st_dtype_name(enum byol_st_dtype dtype)
{
    return (unsigned)dtype < ST_NDTYPES ? dtype_info[dtype].name : "unknown";
}

/* By the exponent bits (all ones: infinity or NaN), so no float is loaded from a bit pattern
 * and unaligned data is read with memcpy. */
size_t byol_st_first_nonfinite(const struct byol_st_tensor *t)
{
    const unsigned char *d = t ? t->data : NULL;
    if (!d)
        return t ? t->numel : 0;
    for (size_t i = 0; i < t->numel; i++) {
        uint64_t v = 0;
        switch (t->dtype) {
        case BYOL_ST_F32:
            memcpy(&v, d + 4 * i, 4);
            if ((v & 0x7f800000u) == 0x7f800000u)
                return i;
            break;
        case BYOL_ST_F64:
            memcpy(&v, d + 8 * i, 8);
            if ((v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull)
                return i;
            break;
        case BYOL_ST_BF16:
        case BYOL_ST_F16:
            memcpy(&v, d + 2 * i, 2);
            if ((t->dtype == BYOL_ST_BF16 && (v & 0x7f80u) == 0x7f80u) ||
                (t->dtype == BYOL_ST_F16 && (v & 0x7c00u) == 0x7c00u))
                return i;
            break;
        default: return t->numel;
        }
    }
    return t->numel;
}

char *byol_st_format_dims(char *buf, size_t cap, const int64_t *dims, int ndim)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

struct tensor_offsets {
    uint64_t begin, end;
};

static byol_status parse_dtype(const struct jparser *p, const char *tname, const struct jnode *v,
                               enum byol_st_dtype *out)
{
    if (v->type != J_STRING)
        return st_fail(p->file, "tensor '%s': dtype is not a string", tname);
    const char *s = p->arena + v->str;
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (!strcmp(s, dtype_info[i].name)) {
            *out = (enum byol_st_dtype)i;
            return BYOL_OK;
        }
    return st_fail(p->file, "tensor '%s': unknown dtype '%s'", tname, s);
}

static byol_status parse_shape(const struct jparser *p, const char *tname, const struct jnode *v,
                               struct byol_st_tensor *t)
{
    if (v->type != J_ARRAY)
        return st_fail(p->file, "tensor '%s': shape is not an array", tname);
    if (v->count > BYOL_ST_MAX_DIMS)
        return st_fail(p->file, "tensor '%s': shape has %zu dimensions, at most %d supported",
                       tname, v->count, BYOL_ST_MAX_DIMS);
    t->ndim = 0;
    for (long c = v->first; c >= 0; c = p->nodes[c].next) {
        const struct jnode *d = &p->nodes[c];
        if (d->type != J_INT)
            return st_fail(p->file, "tensor '%s': shape holds a non-integer", tname);
        if (d->ival < 0)
            return st_fail(p->file, "tensor '%s': shape has a negative dimension %" PRId64, tname,
                           d->ival);
        t->dims[t->ndim++] = d->ival;
    }
    return BYOL_OK;
}

static byol_status parse_offsets(const struct jparser *p, const char *tname, const struct jnode *v,
                                 struct tensor_offsets *o)
{
    if (v->type != J_ARRAY || v->count != 2)
        return st_fail(p->file, "tensor '%s': data_offsets is not an array of two integers", tname);
    const struct jnode *b = &p->nodes[v->first], *e = &p->nodes[b->next];
    if (b->type != J_INT || e->type != J_INT)
        return st_fail(p->file, "tensor '%s': data_offsets is not an array of two integers", tname);
    if (b->ival < 0 || e->ival < b->ival)
        return st_fail(p->file,
                       "tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] is not a range", tname,
                       b->ival, e->ival);
    o->begin = (uint64_t)b->ival;
    o->end = (uint64_t)e->ival;
    return BYOL_OK;
}

/* numel and nbytes with overflow checks, then the size rule: end - begin == nbytes. */
static byol_status check_size(const struct jparser *p, struct byol_st_tensor *t,
                              const struct tensor_offsets *o)
{
    char dims[256];
    size_t numel = 1, esize = dtype_info[t->dtype].size;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->dims[i];
        if (d && numel > SIZE_MAX / d)
            overflow = 1;
        else
            numel *= (size_t)d;
    }
    /* A zero dimension makes the product 0 whatever overflowed before it. */
    for (int i = 0; i < t->ndim; i++)
        if (t->dims[i] == 0)
            numel = 0, overflow = 0;
    if (overflow || numel > SIZE_MAX / esize) {
        byol_st_format_dims(dims, sizeof dims, t->dims, t->ndim);
        return st_fail(p->file, "tensor '%s': shape %s %s overflows the size type", t->name, dims,
                       dtype_info[t->dtype].name);
    }
    t->numel = numel;
    t->nbytes = numel * esize;
    if (o->end - o->begin != (uint64_t)t->nbytes) {
        byol_st_format_dims(dims, sizeof dims, t->dims, t->ndim);
        return st_fail(p->file,
                       "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                       " bytes, shape %s %s needs %zu",
                       t->name, o->begin, o->end, o->end - o->begin, dims,
                       dtype_info[t->dtype].name, t->nbytes);
    }
    return BYOL_OK;
}

static byol_status parse_tensor(const struct jparser *p, const struct jnode *obj,
                                struct byol_st_file *f, struct byol_st_tensor *t,
                                struct tensor_offsets *o)
{
    t->name = f->strings + obj->key;
    if (obj->type != J_OBJECT)
        return st_fail(p->file, "tensor '%s': entry is not an object", t->name);
    char where[300];
    snprintf(where, sizeof where, "tensor '%s'", t->name);
    byol_status st = check_unique_keys(p, obj, where);
    if (st)
        return st;
    const struct jnode *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (long c = obj->first; c >= 0; c = p->nodes[c].next) {
        const char *k = jkey(p, &p->nodes[c]);
        if (!strcmp(k, "dtype"))
            dtype = &p->nodes[c];
        else if (!strcmp(k, "shape"))
            shape = &p->nodes[c];
        else if (!strcmp(k, "data_offsets"))
            offsets = &p->nodes[c];
        else
            return st_fail(p->file, "tensor '%s': unknown key '%s'", t->name, k);
    }
    if (!dtype || !shape || !offsets)
        return st_fail(p->file, "tensor '%s': missing %s", t->name,
                       !dtype   ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");
    if ((st = parse_dtype(p, t->name, dtype, &t->dtype)) ||
        (st = parse_shape(p, t->name, shape, t)) || (st = parse_offsets(p, t->name, offsets, o)) ||
        (st = check_size(p, t, o)))
        return st;
    if (o->end > f->data_len)
        return st_fail(p->file,
                       "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] run past the data section (%zu bytes)",
                       t->name, o->begin, o->end, f->data_len);
    t->data = f->data + o->begin;
    return BYOL_OK;
}

struct order_item {
    struct tensor_offsets o;
    const char *name;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order_item *x = a, *y = b;
    if (x->o.begin != y->o.begin)
        return x->o.begin < y->o.begin ? -1 : 1;
    if (x->o.end != y->o.end)
        return x->o.end < y->o.end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The tensors must tile the data section: sorted by offset, each starts where the previous
 * ended, the first at 0, the last at the end of the file. */
static byol_status check_layout(const char *file, struct order_item *items, size_t n,
                                size_t data_len)
{
    qsort(items, n, sizeof *items, cmp_order);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].o.begin < at)
            return st_fail(
                file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s'",
                items[i].name, items[i].o.begin, items[i].o.end, items[i - 1].name);
        if (items[i].o.begin > at)
            return st_fail(file, "gap of %" PRIu64 " bytes in the data section before tensor '%s'",
                           items[i].o.begin - at, items[i].name);
        at = items[i].o.end;
    }
    if (at != data_len)
        return st_fail(file, "%" PRIu64 " trailing bytes after the last tensor",
                       (uint64_t)data_len - at);
    return BYOL_OK;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const struct byol_st_tensor *x = *(const struct byol_st_tensor *const *)a;
    const struct byol_st_tensor *y = *(const struct byol_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static byol_status build_tensors(const char *file, const struct jparser *p,
                                 const struct jnode *root, struct byol_st_file *f)
{
    size_t n = root->count;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    struct order_item *items = calloc(n ? n : 1, sizeof *items);
    if (!f->tensors || !items) {
        free(items);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", file);
    }
    byol_status st = BYOL_OK;
    for (long c = root->first; c >= 0 && !st; c = p->nodes[c].next) {
        const struct jnode *e = &p->nodes[c];
        if (!strcmp(jkey(p, e), "__metadata__")) {
            st = parse_metadata(p, e, f);
            continue;
        }
        struct byol_st_tensor *t = &f->tensors[f->count];
        st = parse_tensor(p, e, f, t, &items[f->count].o);
        items[f->count].name = t->name;
        f->count++;
    }
    if (!st)
        st = check_layout(file, items, f->count, f->data_len);
    free(items);
    if (st)
        return st;
    f->by_name = malloc((f->count ? f->count : 1) * sizeof *f->by_name);
    if (!f->by_name)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < f->count; i++)
        f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->count, sizeof *f->by_name, cmp_tensor_name);
    return BYOL_OK;
}

/* Parses and validates the header at `hdr` (hlen bytes); f->data/data_len are set. */
static byol_status parse_header(const char *file, const char *hdr, size_t hlen,
                                struct byol_st_file *f)
{
    struct jparser p = {.file = file, .s = hdr, .len = hlen};
    /* Decoded strings plus their NULs never exceed the raw header (each string has two
     * quotes that make room for its NUL). */
    f->strings = p.arena = malloc(hlen + 1);
    if (!p.arena)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", file);
    jskip_ws(&p);
    if (p.pos >= p.len || p.s[p.pos] != '{') {
        free(p.nodes);
        return st_fail(file, "header is not a JSON object");
    }
    long root = jvalue(&p, 0);
    if (root >= 0) {
        jskip_ws(&p); /* the format pads the header with spaces */
        if (p.pos != p.len)
            jerr(&p, "trailing characters after the header object");
    }
    byol_status st = p.st;
    if (!st)
        st = check_unique_keys(&p, &p.nodes[root], "header");
    if (!st)
        st = build_tensors(file, &p, &p.nodes[root], f);
    free(p.nodes);
    return st;
}

/* ---- reading ------------------------------------------------------------------------- */

static uint64_t read_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* Checks the 8-byte length prefix against the file size; *hlen gets the header length. */
static byol_status check_prefix(const char *file, const unsigned char *prefix, size_t len,
                                size_t *hlen)
{
    if (len < 8)
        return st_fail(file, "file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t n = read_le64(prefix);
    if (n > BYOL_ST_MAX_HEADER)
        return st_fail(file, "header length %" PRIu64 " exceeds the limit of %u bytes", n,
                       BYOL_ST_MAX_HEADER);
    if (n > len - 8)
        return st_fail(file, "header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                       n, len);
    *hlen = (size_t)n;
    return BYOL_OK;
}

/* An allocation for a file of `len` bytes whose data section (at 8 + hlen) lands on an
 * ST_DATA_ALIGN boundary; *image gets where the file's first byte goes. */
static byol_status alloc_image(const char *file, size_t len, size_t hlen, struct byol_st_file *f,
                               char **image)
{
    /* The image, and the worst case of the header's parse tree: a node for every two bytes
     * ("0,") plus the decoded strings. Checked before anything is allocated. */
    uint64_t tree = (uint64_t)hlen / 2 * sizeof(struct jnode) + hlen;
    uint64_t need = (uint64_t)len + ST_DATA_ALIGN + tree;
    byol_status st = byol_mem_check(file, "reading the file", need);
    if (st)
        return st;
    f->alloc = malloc(len + ST_DATA_ALIGN);
    if (!f->alloc)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory for %zu bytes", file, len);
    uintptr_t data = (uintptr_t)f->alloc + 8 + hlen;
    size_t shift = (ST_DATA_ALIGN - data % ST_DATA_ALIGN) % ST_DATA_ALIGN;
    *image = f->alloc + shift;
    f->data = (const uint8_t *)*image + 8 + hlen;
    f->data_len = len - 8 - hlen;
    return BYOL_OK;
}

static byol_status finish(const char *file, const char *image, size_t hlen, struct byol_st_file *f,
                          struct byol_st_file **out)
{
    byol_status st = parse_header(file, image + 8, hlen, f);
    if (st) {
        byol_st_free(f);
        return st;
    }
    *out = f;
    return BYOL_OK;
}

byol_status byol_st_parse(const void *bytes, size_t len, const char *name,
                          struct byol_st_file **out)
{
    if (!out || (!bytes && len))
        return byol_error(BYOL_ERR_INVALID, "byol_st_parse: NULL argument");
    *out = NULL;
    if (!name)
        name = "<memory>";
    size_t hlen = 0;
    byol_status st = check_prefix(name, bytes, len, &hlen);
    if (st)
        return st;
    struct byol_st_file *f = calloc(1, sizeof *f);
    if (!f)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name);
    char *image = NULL;
    if ((st = alloc_image(name, len, hlen, f, &image))) {
        byol_st_free(f);
        return st;
    }
    memcpy(image, bytes, len);
    return finish(name, image, hlen, f, out);
}

/* Reads exactly n bytes; a short read is a format error (the file changed under us or the
 * size lied), a failed one an I/O error. */
static byol_status read_full(int fd, const char *path, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return byol_error(BYOL_ERR_IO, "%s: %s", path, strerror(errno));
        if (r == 0)
            return st_fail(path, "unexpected end of file");
        p += r;
        n -= (size_t)r;
    }
    return BYOL_OK;
}

byol_status byol_st_read(const char *path, struct byol_st_file **out)
{
    if (!path || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_st_read: NULL argument");
    *out = NULL;
    struct stat sb;
    int fd;
    byol_status st = byol_open_input(path, 1, NULL, &fd, &sb);
    if (st != BYOL_OK)
        return st;
    size_t len = (size_t)sb.st_size, hlen = 0;
    unsigned char prefix[8];
    if (len >= 8)
        st = read_full(fd, path, prefix, 8);
    if (!st)
        st = check_prefix(path, prefix, len, &hlen);
    struct byol_st_file *f = NULL;
    char *image = NULL;
    if (!st && !(f = calloc(1, sizeof *f)))
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    if (!st)
        st = alloc_image(path, len, hlen, f, &image);
    if (!st) {
        memcpy(image, prefix, 8);
        st = read_full(fd, path, image + 8, len - 8);
    }
    close(fd);
    if (st) {
        byol_st_free(f);
        return st;
    }
    return finish(path, image, hlen, f, out);
}

void byol_st_free(struct byol_st_file *f)
{
    if (!f)
        return;
    free(f->alloc);
    free(f->strings);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f);
}

size_t byol_st_count(const struct byol_st_file *f)
{
    return f ? f->count : 0;
}

const struct byol_st_tensor *byol_st_at(const struct byol_st_file *f, size_t i)
{
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const struct byol_st_tensor *byol_st_find(const struct byol_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (!c)
            return f->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *byol_st_metadata(const struct byol_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (size_t i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key))
            return f->meta[i].value;
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------- */

struct st_wtensor {
    char *name;
    enum byol_st_dtype dtype;
    int ndim;
    int64_t dims[BYOL_ST_MAX_DIMS];
    size_t nbytes;
    void *data;
};

struct byol_st_writer {
    struct st_wtensor *t;
    size_t count, cap;
    char **meta; /* key, value pairs */
    size_t nmeta, meta_cap;
};

byol_status byol_st_writer_create(struct byol_st_writer **out)
{
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_st_writer_create: NULL argument");
    *out = calloc(1, sizeof **out);
    return *out ? BYOL_OK : byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
}

void byol_st_writer_free(struct byol_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < 2 * w->nmeta; i++)
        free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

byol_status byol_st_writer_add(struct byol_st_writer *w, const char *name, enum byol_st_dtype dtype,
                               int ndim, const int64_t *dims, const void *data)
{
    if (!w || !name || !*name || (ndim > 0 && !dims))
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: NULL or empty argument");
    if (!strcmp(name, "__metadata__"))
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: '__metadata__' is reserved");
    if ((unsigned)dtype >= ST_NDTYPES)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: tensor '%s': bad dtype %d", name,
                          (int)dtype);
    if (ndim < 0 || ndim > BYOL_ST_MAX_DIMS)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: tensor '%s': %d dimensions", name,
                          ndim);
    for (size_t i = 0; i < w->count; i++)
        if (!strcmp(w->t[i].name, name))
            return byol_error(BYOL_ERR_DUPLICATE, "safetensors writer: tensor '%s' added twice",
                              name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] && numel > SIZE_MAX / (uint64_t)dims[i]))
            return byol_error(BYOL_ERR_INVALID,
                              "safetensors writer: tensor '%s': bad dimension %" PRId64, name,
                              dims[i]);
        numel *= (size_t)dims[i];
    }
    if (numel > SIZE_MAX / dtype_info[dtype].size)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: tensor '%s' is too large", name);
    size_t nbytes = numel * dtype_info[dtype].size;
    if (nbytes && !data)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: tensor '%s': NULL data", name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        struct st_wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
        w->t = t;
        w->cap = cap;
    }
    struct st_wtensor *t = &w->t[w->count];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
    }
    if (nbytes)
        memcpy(t->data, data, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->nbytes = nbytes;
    w->count++;
    return BYOL_OK;
}

byol_status byol_st_writer_metadata(struct byol_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: NULL argument");
    for (size_t i = 0; i < w->nmeta; i++)
        if (!strcmp(w->meta[2 * i], key))
            return byol_error(BYOL_ERR_DUPLICATE, "safetensors writer: metadata key '%s' set twice",
                              key);
    if (w->nmeta == w->meta_cap) {
        size_t cap = w->meta_cap ? 2 * w->meta_cap : 8;
        char **m = realloc(w->meta, 2 * cap * sizeof *m);
        if (!m)
            return byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
        w->meta = m;
        w->meta_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return BYOL_OK;
}

/* A JSON string literal; non-ASCII bytes pass through as UTF-8. */
static void sb_json_string(struct byol_sbuf *b, const char *s)
{
    byol_sbuf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            byol_sbuf_put(b, e, 2);
        } else if (c < 0x20) {
            byol_sbuf_printf(b, "\\u%04x", c);
        } else {
            byol_sbuf_put(b, (const char *)&c, 1);
        }
    }
    byol_sbuf_put(b, "\"", 1);
}

/* The header JSON, padded with spaces so that the data section starts at a multiple of 8. */
static byol_status build_header(const struct byol_st_writer *w, struct byol_sbuf *b)
{
    byol_sbuf_put(b, "{", 1);
    if (w->nmeta) {
        byol_sbuf_put(b, "\"__metadata__\":{", 16);
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i)
                byol_sbuf_put(b, ",", 1);
            sb_json_string(b, w->meta[2 * i]);
            byol_sbuf_put(b, ":", 1);
            sb_json_string(b, w->meta[2 * i + 1]);
        }
        byol_sbuf_put(b, "}", 1);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->count; i++) {
        const struct st_wtensor *t = &w->t[i];
        if (i || w->nmeta)
            byol_sbuf_put(b, ",", 1);
        sb_json_string(b, t->name);
        byol_sbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", dtype_info[t->dtype].name);
        for (int d = 0; d < t->ndim; d++)
            byol_sbuf_printf(b, "%s%" PRId64, d ? "," : "", t->dims[d]);
        byol_sbuf_printf(b, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    byol_sbuf_put(b, "}", 1);
    while (!b->oom && (8 + b->len) % 8)
        byol_sbuf_put(b, " ", 1);
    if (b->oom)
        return byol_error(BYOL_ERR_NOMEM, "safetensors writer: out of memory");
    return BYOL_OK;
}

static int write_contents(int fd, const struct byol_st_writer *w, const struct byol_sbuf *hdr)
{
    unsigned char prefix[8];
    uint64_t n = hdr->len;
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)(n >> (8 * i));
    if (byol_write_all(fd, prefix, 8) || byol_write_all(fd, hdr->s, hdr->len))
        return -1;
    /* Tensor data is written as it lies in memory: little-endian on every host we build for. */
    for (size_t i = 0; i < w->count; i++)
        if (byol_write_all(fd, w->t[i].data, w->t[i].nbytes))
            return -1;
    return 0;
}

struct st_file {
    const struct byol_st_writer *w;
    const struct byol_sbuf *hdr;
};

static int st_write_file(int fd, void *user)
{
    const struct st_file *f = user;
    return write_contents(fd, f->w, f->hdr);
}

byol_status byol_st_writer_save(struct byol_st_writer *w, const char *path)
{
    if (!w || !path || !*path)
        return byol_error(BYOL_ERR_INVALID, "safetensors writer: NULL or empty path");
    struct byol_sbuf hdr = {0};
    byol_status st = build_header(w, &hdr);
    if (st == BYOL_OK) {
        struct st_file f = {w, &hdr};
        st = byol_file_replace(path, st_write_file, &f);
    }
    free(hdr.s);
    return st;
}
