/* MNIST-style IDX files (plain or gzip) as a dataset: u8 images (N,H,W) and u8 labels (N).
 * Header: a big-endian magic 0x0000TTDD (TT = 0x08 for u8, DD = number of dims), DD
 * big-endian u32 dims, then the data; see http://yann.lecun.com/exdb/mnist/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset_internal.h"
#include "fileio_internal.h"
#include "limits_internal.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_DIMS 3
#define IDX_GZIP_MAX_RATIO 1032

/* One IDX file read into memory. */
struct idx_file {
    uint8_t *data; /* the data after the header, `bytes` long */
    uint64_t bytes;
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
};

/* An open file: plain or gzip, through zlib (which passes plain files through). */
struct idx_reader {
    const char *path;
    gzFile gz;
    off_t file_size;
};

/* ---- Reading. -------------------------------------------------------------------------- */

static byol_status idx_open(struct idx_reader *r, const char *path)
{
    r->path = path;
    struct stat st;
    int fd;
    byol_status s = byol_open_input(path, 1, "cannot open IDX file", &fd, &st);
    if (s != BYOL_OK)
        return s;
    r->file_size = st.st_size;
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    return BYOL_OK;
}

/* Read up to n bytes into buf; *got says how many arrived (fewer at the end of the data).
 * Fails on an I/O error, corrupt gzip data, or a gzip stream that ends too early. */
static byol_status idx_read(struct idx_reader *r, void *buf, uint64_t n, uint64_t *got)
{
    *got = 0;
    while (*got < n) {
        uint64_t left = n - *got;
        unsigned chunk = left > (1u << 30) ? 1u << 30 : (unsigned)left;
        int k = gzread(r->gz, (char *)buf + *got, chunk);
        if (k <= 0)
            break;
        *got += (uint64_t)k;
    }
    int err = Z_OK;
    const char *msg = gzerror(r->gz, &err);
    /* zlib prefixes "<fd:N>: " for a gzdopen'ed file; our messages name the path instead. */
    const char *sep = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ": ") : NULL;
    msg = sep ? sep + 2 : msg;
    if (err == Z_ERRNO)
        return byol_error(BYOL_ERR_IO, "%s: read error: %s", r->path, strerror(errno));
    if (err == Z_BUF_ERROR)
        return byol_error(BYOL_ERR_FORMAT, "%s: truncated gzip stream (%s)", r->path, msg);
    if (err != Z_OK)
        return byol_error(BYOL_ERR_FORMAT, "%s: corrupt gzip data (%s)", r->path, msg);
    return BYOL_OK;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static const char *magic_kind(uint32_t magic)
{
    return magic == IDX_MAGIC_IMAGES ? "image" : magic == IDX_MAGIC_LABELS ? "label" : "";
}

/* The magic and dims; returns the number of data bytes the header declares in *bytes. */
static byol_status idx_header(struct idx_reader *r, uint32_t want, struct idx_file *f)
{
    uint8_t b[4 * (1 + IDX_MAX_DIMS)];
    uint64_t got;
    byol_status st = idx_read(r, b, 4, &got);
    if (st != BYOL_OK)
        return st;
    if (got < 4)
        return byol_error(BYOL_ERR_FORMAT, "%s: too short for an IDX header (%llu bytes)", r->path,
                          (unsigned long long)got);
    uint32_t magic = be32(b);
    if (magic != want)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: not an IDX %s file (magic 0x%08x%s%s%s, want 0x%08x)", r->path,
                          magic_kind(want), (unsigned)magic, *magic_kind(magic) ? ", an IDX " : "",
                          magic_kind(magic), *magic_kind(magic) ? " file" : "", (unsigned)want);
    f->ndim = (int)(magic & 0xff);
    st = idx_read(r, b, 4u * (unsigned)f->ndim, &got);
    if (st != BYOL_OK)
        return st;
    if (got < 4u * (unsigned)f->ndim)
        return byol_error(BYOL_ERR_FORMAT, "%s: truncated header (%llu of %d dimension bytes)",
                          r->path, (unsigned long long)got, 4 * f->ndim);
    f->bytes = 1;
    for (int d = 0; d < f->ndim; d++) {
        f->dims[d] = be32(b + 4 * d);
        if (f->dims[d] == 0 || f->dims[d] > INT_MAX)
            return byol_error(BYOL_ERR_FORMAT, "%s: dimension %d is %u", r->path, d,
                              (unsigned)f->dims[d]);
        f->bytes *= f->dims[d]; /* < 2^31 each: exceeds the limit long before overflowing */
        if (f->bytes > BYOL_IDX_MAX_BYTES)
            return byol_error(BYOL_ERR_FORMAT,
                              "%s: the header declares more than %llu bytes of data (limit)",
                              r->path, (unsigned long long)BYOL_IDX_MAX_BYTES);
    }
    return BYOL_OK;
}

/* "10000x28x28" */
static void dims_str(const struct idx_file *f, char *s, size_t n)
{
    int k = 0;
    s[0] = '\0';
    for (int d = 0; d < f->ndim && k >= 0 && (size_t)k < n; d++)
        k += snprintf(s + k, n - (size_t)k, "%s%u", d ? "x" : "", (unsigned)f->dims[d]);
}

static byol_status idx_truncated(const struct idx_reader *r, const struct idx_file *f, uint64_t got)
{
    char dims[64];
    dims_str(f, dims, sizeof dims);
    return byol_error(
        BYOL_ERR_FORMAT,
        "%s: truncated: the header declares %s = %llu data bytes, the file holds %llu", r->path,
        dims, (unsigned long long)f->bytes, (unsigned long long)got);
}

/* The data: exactly f->bytes of them, then the end of the file. */
static byol_status idx_data(struct idx_reader *r, struct idx_file *f)
{
    uint64_t header = 4u + 4u * (unsigned)f->ndim, got;
    /* A plain file's size is known: refuse a short one before allocating for it. */
    if (gzdirect(r->gz) && (uint64_t)r->file_size < header + f->bytes)
        return idx_truncated(r, f, (uint64_t)r->file_size - header);
    /* Deflate expands at most 1032:1 (a 258-byte match in 2 bits), so a gzip file that small
     * cannot hold the data its header declares: a truncated file or a bomb. */
    if (!gzdirect(r->gz) && f->bytes / IDX_GZIP_MAX_RATIO > (uint64_t)r->file_size) {
        char dims[64];
        dims_str(f, dims, sizeof dims);
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: truncated: the header declares %s = %llu data bytes, more than a "
                          "gzip file of %llu bytes can hold",
                          r->path, dims, (unsigned long long)f->bytes,
                          (unsigned long long)r->file_size);
    }
    byol_status st = byol_mem_check(r->path, "the IDX data", f->bytes);
    if (st != BYOL_OK)
        return st;
    f->data = malloc((size_t)f->bytes);
    if (!f->data)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory for %llu data bytes", r->path,
                          (unsigned long long)f->bytes);
    st = idx_read(r, f->data, f->bytes, &got);
    if (st != BYOL_OK)
        return st;
    if (got < f->bytes)
        return idx_truncated(r, f, got);
    uint8_t extra[256];
    st = idx_read(r, extra, sizeof extra, &got);
    if (st != BYOL_OK)
        return st;
    if (got > 0)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: unexpected bytes after the %llu data bytes the header declares",
                          r->path, (unsigned long long)f->bytes);
    return BYOL_OK;
}

/* Read and validate a whole IDX file whose magic must be `want`. */
static byol_status idx_load(const char *path, uint32_t want, struct idx_file *f)
{
    memset(f, 0, sizeof *f);
    struct idx_reader r = {0};
    byol_status st = idx_open(&r, path);
    if (st != BYOL_OK)
        return st;
    st = idx_header(&r, want, f);
    if (st == BYOL_OK)
        st = idx_data(&r, f);
    gzclose_r(r.gz);
    if (st != BYOL_OK) {
        free(f->data);
        f->data = NULL;
    }
    return st;
}

/* ---- The dataset. ---------------------------------------------------------------------- */

struct idx_dataset {
    uint8_t *pixels; /* (N, H, W) */
    uint8_t *labels; /* (N) or NULL */
    size_t image_size;
};

static byol_status idx_get(const struct byol_dataset *ds, size_t index, float *out)
{
    const struct idx_dataset *d = ds->impl;
    const uint8_t *px = d->pixels + index * d->image_size;
    for (size_t i = 0; i < d->image_size; i++)
        out[i] = (float)px[i] / 255.0f; /* torchvision's ToTensor */
    return BYOL_OK;
}

static int idx_label(const struct byol_dataset *ds, size_t index)
{
    const struct idx_dataset *d = ds->impl;
    return d->labels ? d->labels[index] : -1;
}

static void idx_destroy(void *impl)
{
    struct idx_dataset *d = impl;
    if (!d)
        return;
    free(d->pixels);
    free(d->labels);
    free(d);
}

static const struct byol_dataset_ops idx_ops = {"idx", idx_get, idx_label, idx_destroy, NULL};

/* Labels for `images` (already read from images_path). */
static byol_status idx_load_labels(const char *path, const char *images_path,
                                   const struct idx_file *images, struct idx_file *labels)
{
    byol_status st = idx_load(path, IDX_MAGIC_LABELS, labels);
    if (st != BYOL_OK)
        return st;
    if (labels->dims[0] != images->dims[0]) {
        free(labels->data);
        labels->data = NULL;
        return byol_error(BYOL_ERR_FORMAT, "%s: %u labels for %u images in %s", path,
                          (unsigned)labels->dims[0], (unsigned)images->dims[0], images_path);
    }
    return BYOL_OK;
}

byol_status byol_dataset_open_idx(const char *images_path, const char *labels_path,
                                  struct byol_dataset **out)
{
    if (!out || !images_path)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_idx: NULL %s",
                          !out ? "out" : "images path");
    *out = NULL;
    struct idx_file images, labels = {0};
    byol_status st = idx_load(images_path, IDX_MAGIC_IMAGES, &images);
    if (st != BYOL_OK)
        return st;
    if (labels_path)
        st = idx_load_labels(labels_path, images_path, &images, &labels);
    struct idx_dataset *d = st == BYOL_OK ? calloc(1, sizeof *d) : NULL;
    if (st == BYOL_OK && !d)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", images_path);
    if (st != BYOL_OK) {
        free(images.data);
        free(labels.data);
        return st;
    }
    d->pixels = images.data;
    d->labels = labels.data;
    d->image_size = (size_t)images.dims[1] * images.dims[2];
    return byol_dataset_wrap(&idx_ops, d, images_path, images.dims[0], 1, (int)images.dims[1],
                             (int)images.dims[2], out);
}
