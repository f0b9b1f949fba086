/* NumPy .npy files as a dataset: images (N,C,H,W) float32 or uint8, labels (N) int64, int32 or
 * uint8. Format: "\x93NUMPY", version, a little-endian header length, then a Python dict
 * literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces; see
 * numpy.lib.format. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

#define NPY_MAX_DIMS 8

/* What a header says. */
struct npy_header {
    char descr[16];
    int fortran_order;
    int ndim;
    uint64_t dims[NPY_MAX_DIMS];
    size_t data_offset; /* where the data begins */
};

/* ---- The header dict. ------------------------------------------------------------------ */

struct npy_parser {
    const char *path;
    const char *p, *end;
};

static void skip_space(struct npy_parser *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'))
        s->p++;
}

static int accept(struct npy_parser *s, char c)
{
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static byol_status malformed(const struct npy_parser *s, const char *what)
{
    return byol_error(BYOL_ERR_FORMAT, "%s: malformed .npy header (%s)", s->path, what);
}

/* A quoted string (no escapes: the keys and dtypes never need them). */
static byol_status parse_string(struct npy_parser *s, char *out, size_t n)
{
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return malformed(s, "expected a quoted string");
    char q = *s->p++;
    const char *start = s->p;
    while (s->p < s->end && *s->p != q)
        s->p++;
    if (s->p >= s->end || (size_t)(s->p - start) >= n)
        return malformed(s, "unterminated or overlong string");
    memcpy(out, start, (size_t)(s->p - start));
    out[s->p - start] = '\0';
    s->p++;
    return BYOL_OK;
}

static byol_status parse_bool(struct npy_parser *s, int *out)
{
    skip_space(s);
    size_t left = (size_t)(s->end - s->p);
    if (left >= 4 && memcmp(s->p, "True", 4) == 0) {
        s->p += 4;
        *out = 1;
    } else if (left >= 5 && memcmp(s->p, "False", 5) == 0) {
        s->p += 5;
        *out = 0;
    } else {
        return malformed(s, "fortran_order is neither True nor False");
    }
    return BYOL_OK;
}

/* "(3, 4)", "(5,)", "()" */
static byol_status parse_shape(struct npy_parser *s, struct npy_header *h)
{
    if (!accept(s, '('))
        return malformed(s, "shape is not a tuple");
    h->ndim = 0;
    while (!accept(s, ')')) {
        skip_space(s);
        if (h->ndim == NPY_MAX_DIMS)
            return malformed(s, "more than 8 dimensions");
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return malformed(s, "a dimension is not a non-negative integer");
        uint64_t v = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (v > (UINT64_C(1) << 48))
                return malformed(s, "a dimension is too large");
            v = v * 10 + (uint64_t)(*s->p++ - '0');
        }
        h->dims[h->ndim++] = v;
        if (!accept(s, ',')) {
            if (!accept(s, ')'))
                return malformed(s, "expected ',' or ')' in shape");
            break;
        }
    }
    return BYOL_OK;
}

static byol_status parse_dict(struct npy_parser *s, struct npy_header *h)
{
    int seen = 0; /* bits: descr, fortran_order, shape */
    byol_status st = BYOL_OK;
    if (!accept(s, '{'))
        return malformed(s, "no dict");
    while (st == BYOL_OK && !accept(s, '}')) {
        char key[32];
        st = parse_string(s, key, sizeof key);
        if (st == BYOL_OK && !accept(s, ':'))
            st = malformed(s, "expected ':'");
        if (st != BYOL_OK)
            break;
        if (strcmp(key, "descr") == 0) {
            seen |= 1;
            st = parse_string(s, h->descr, sizeof h->descr);
        } else if (strcmp(key, "fortran_order") == 0) {
            seen |= 2;
            st = parse_bool(s, &h->fortran_order);
        } else if (strcmp(key, "shape") == 0) {
            seen |= 4;
            st = parse_shape(s, h);
        } else {
            st = malformed(s, "unknown key");
        }
        if (st != BYOL_OK || accept(s, ','))
            continue;
        if (!accept(s, '}'))
            st = malformed(s, "expected ',' or '}'");
        break;
    }
    if (st == BYOL_OK && seen != 7)
        st = malformed(s, "missing descr, fortran_order or shape");
    return st;
}

static uint32_t le16(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8;
}

static uint32_t le32(const uint8_t *b)
{
    return le16(b) | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static byol_status npy_header_read(const char *path, const uint8_t *b, size_t n,
                                   struct npy_header *h)
{
    memset(h, 0, sizeof *h);
    if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return byol_error(BYOL_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    if (b[6] != 1 && b[6] != 2)
        return byol_error(BYOL_ERR_FORMAT, "%s: .npy version %u.%u is not supported (1.0, 2.0)",
                          path, b[6], b[7]);
    size_t pre = b[6] == 1 ? 10 : 12;
    if (n < pre)
        return byol_error(BYOL_ERR_FORMAT, "%s: truncated .npy header", path);
    uint64_t len = b[6] == 1 ? le16(b + 8) : le32(b + 8);
    if (len > n - pre)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: truncated .npy header (%llu header bytes declared, %zu present)",
                          path, (unsigned long long)len, n - pre);
    struct npy_parser s = {path, (const char *)b + pre, (const char *)b + pre + len};
    h->data_offset = pre + (size_t)len;
    return parse_dict(&s, h);
}

/* ---- Arrays. --------------------------------------------------------------------------- */

/* One .npy file in memory, its header checked against the dtypes `allowed` (NULL-terminated). */
struct npy_array {
    uint8_t *file;
    const uint8_t *data;
    struct npy_header h;
    size_t itemsize;
    uint64_t count; /* elements */
};

/* The allowed dtypes are all "<kN" / "|kN" with a one-digit size N; 0 when not allowed. */
static size_t dtype_size(const char *descr, const char *const *allowed)
{
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(descr, *a) == 0)
            return (size_t)(descr[2] - '0');
    return 0;
}

static byol_status npy_check(const char *path, struct npy_array *a, const char *const *allowed,
                             const char *allowed_text, size_t file_size)
{
    const struct npy_header *h = &a->h;
    a->itemsize = dtype_size(h->descr, allowed);
    if (!a->itemsize)
        return byol_error(BYOL_ERR_FORMAT, "%s: dtype '%s' is not supported (%s)", path, h->descr,
                          allowed_text);
    if (h->fortran_order)
        return byol_error(
            BYOL_ERR_FORMAT,
            "%s: fortran_order is True (save a C-ordered array: np.ascontiguousarray)", path);
    /* A zero dimension makes the array empty whatever the others say; otherwise every
     * partial product stays below the limit, so it cannot wrap. */
    a->count = 1;
    for (int d = 0; d < h->ndim; d++)
        if (h->dims[d] == 0)
            a->count = 0;
    for (int d = 0; d < h->ndim && a->count; d++) {
        if (h->dims[d] > BYOL_NPY_MAX_BYTES / a->count)
            return byol_error(BYOL_ERR_FORMAT, "%s: the shape declares too much data", path);
        a->count *= h->dims[d];
    }
    uint64_t want = a->count * a->itemsize, have = file_size - h->data_offset;
    if (have < want)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: truncated: the header declares %llu data bytes, the file holds %llu",
                          path, (unsigned long long)want, (unsigned long long)have);
    if (have > want)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: %llu unexpected bytes after the %llu data bytes the header declares",
                          path, (unsigned long long)(have - want), (unsigned long long)want);
    a->data = a->file + h->data_offset;
    return BYOL_OK;
}

static byol_status npy_load(const char *path, const char *const *allowed, const char *allowed_text,
                            struct npy_array *a)
{
    size_t n;
    memset(a, 0, sizeof *a);
    byol_status st = byol_dataset_read_file(path, ".npy file", BYOL_NPY_MAX_BYTES, &a->file, &n);
    if (st == BYOL_OK)
        st = npy_header_read(path, a->file, n, &a->h);
    if (st == BYOL_OK)
        st = npy_check(path, a, allowed, allowed_text, n);
    if (st != BYOL_OK) {
        free(a->file);
        a->file = NULL;
    }
    return st;
}

/* ---- The dataset. ---------------------------------------------------------------------- */

struct npy_dataset {
    struct npy_array images;
    int *labels; /* (N) or NULL */
    size_t image_size;
    int is_float;
};

static byol_status npy_get(const struct byol_dataset *ds, size_t index, float *out)
{
    const struct npy_dataset *d = ds->impl;
    const uint8_t *src = d->images.data + index * d->image_size * d->images.itemsize;
    if (d->is_float) {
        memcpy(out, src, d->image_size * sizeof(float)); /* '<f4' on a little-endian host */
    } else {
        for (size_t i = 0; i < d->image_size; i++)
            out[i] = (float)src[i] / 255.0f;
    }
    return BYOL_OK;
}

static int npy_label(const struct byol_dataset *ds, size_t index)
{
    const struct npy_dataset *d = ds->impl;
    return d->labels ? d->labels[index] : -1;
}

static void npy_destroy(void *impl)
{
    struct npy_dataset *d = impl;
    if (!d)
        return;
    free(d->images.file);
    free(d->labels);
    free(d);
}

static const struct byol_dataset_ops npy_ops = {"npy", npy_get, npy_label, npy_destroy, NULL};

static byol_status check_images(const char *path, struct npy_dataset *d)
{
    const struct npy_header *h = &d->images.h;
    if (h->ndim != 4 && h->ndim != 3)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: images must have shape (N, C, H, W) or (N, H, W), not %d dimensions",
                          path, h->ndim);
    for (int k = 0; k < h->ndim; k++)
        if (h->dims[k] == 0 || h->dims[k] > INT_MAX)
            return byol_error(BYOL_ERR_FORMAT, "%s: dimension %d is %llu", path, k,
                              (unsigned long long)h->dims[k]);
    d->is_float = h->descr[1] == 'f';
    d->image_size = (size_t)(d->images.count / h->dims[0]);
    if (!d->is_float)
        return BYOL_OK;
    float v;
    for (uint64_t i = 0; i < d->images.count; i++) {
        memcpy(&v, d->images.data + 4 * i, sizeof v);
        if (!isfinite(v))
            return byol_error(BYOL_ERR_FORMAT, "%s: value %llu (image %llu) is %g", path,
                              (unsigned long long)i, (unsigned long long)(i / d->image_size),
                              (double)v);
    }
    return BYOL_OK;
}

static int64_t label_at(const struct npy_array *a, uint64_t i)
{
    if (a->itemsize == 1)
        return a->data[i];
    if (a->itemsize == 4) {
        int32_t v;
        memcpy(&v, a->data + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, a->data + 8 * i, 8);
    return v;
}

static byol_status load_labels(const char *path, const char *images_path, uint64_t n_images,
                               struct npy_dataset *d)
{
    static const char *const dtypes[] = {"<i8", "<i4", "|u1", NULL};
    struct npy_array a;
    byol_status st = npy_load(path, dtypes, "labels: int64 '<i8', int32 '<i4' or uint8 '|u1'", &a);
    if (st != BYOL_OK)
        return st;
    if (a.h.ndim != 1)
        st = byol_error(BYOL_ERR_FORMAT, "%s: labels must have shape (N,), not %d dimensions", path,
                        a.h.ndim);
    else if (a.count != n_images)
        st = byol_error(BYOL_ERR_FORMAT, "%s: %llu labels for %llu images in %s", path,
                        (unsigned long long)a.count, (unsigned long long)n_images, images_path);
    d->labels = st == BYOL_OK ? malloc((size_t)n_images * sizeof *d->labels) : NULL;
    if (st == BYOL_OK && !d->labels)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; st == BYOL_OK && i < n_images; i++) {
        int64_t v = label_at(&a, i);
        if (v < 0 || v > INT_MAX)
            st = byol_error(BYOL_ERR_FORMAT, "%s: label %llu is %lld (must be 0 .. %d)", path,
                            (unsigned long long)i, (long long)v, INT_MAX);
        else
            d->labels[i] = (int)v;
    }
    free(a.file);
    return st;
}

byol_status byol_dataset_open_npy(const char *images_path, const char *labels_path,
                                  struct byol_dataset **out)
{
    static const char *const dtypes[] = {"<f4", "|u1", NULL};
    if (!out || !images_path)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_npy: NULL %s",
                          !out ? "out" : "images path");
    *out = NULL;
    struct npy_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", images_path);
    byol_status st =
        npy_load(images_path, dtypes, "images: float32 '<f4' or uint8 '|u1'", &d->images);
    if (st == BYOL_OK)
        st = check_images(images_path, d);
    const struct npy_header *h = &d->images.h;
    if (st == BYOL_OK && labels_path)
        st = load_labels(labels_path, images_path, h->dims[0], d);
    if (st != BYOL_OK) {
        npy_destroy(d);
        return st;
    }
    int three = h->ndim == 3;
    return byol_dataset_wrap(&npy_ops, d, images_path, (size_t)h->dims[0],
                             three ? 1 : (int)h->dims[1], (int)h->dims[2 - three],
                             (int)h->dims[3 - three], out);
}
