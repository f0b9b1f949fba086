/* The .npy writer of byolctl embed (include/byol/eval.h): a NumPy format 1.0 (or 2.0) header
 * padded to 64 bytes, then the raw little-endian data, through a temporary file renamed into
 * place. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/eval.h"
#include "fileio_internal.h"

#define NPY_MAX_DIMS 8

/* The header of an array of dtype `descr` and shape dims: magic, version, length, dict. */
static size_t npy_header(char *out, size_t size, const char *descr, int ndim, const size_t *dims)
{
    char dict[512];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        n +=
            snprintf(dict + n, sizeof dict - (size_t)n, "%zu,%s", dims[i], i + 1 < ndim ? " " : "");
    if (ndim > 1)
        n--; /* (5,) keeps its comma, (5, 3) does not */
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* The data starts at a multiple of 64, the dict ends with '\n' (numpy.lib.format). */
    size_t pre = 10, len = pre + (size_t)n + 1;
    if (len + (-len % 64) - pre > 65535)
        pre = 12, len = pre + (size_t)n + 1;
    size_t padded = len + (-len % 64), hlen = padded - pre;
    if (padded > size)
        return 0;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = pre == 10 ? 1 : 2;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        out[8 + i] = (char)(hlen >> (8 * i));
    memcpy(out + pre, dict, (size_t)n);
    memset(out + pre + n, ' ', padded - pre - (size_t)n - 1);
    out[padded - 1] = '\n';
    return padded;
}

struct npy_file {
    const char *header;
    size_t header_n;
    const void *data;
    size_t nbytes;
};

static int npy_write_file(int fd, void *user)
{
    const struct npy_file *f = user;
    return byol_write_all(fd, f->header, f->header_n) ? -1
                                                      : byol_write_all(fd, f->data, f->nbytes);
}

/* Header and data, replacing `path` atomically. */
static byol_status npy_write(const char *path, const char *descr, const void *data, size_t nbytes,
                             int ndim, const size_t *dims)
{
    char header[1024];
    size_t hn = npy_header(header, sizeof header, descr, ndim, dims);
    if (!hn)
        return byol_error(BYOL_ERR_INVALID, "%s: cannot build the .npy header", path);
    struct npy_file f = {header, hn, data, nbytes};
    return byol_file_replace(path, npy_write_file, &f);
}

static byol_status npy_check_shape(const char *path, const void *data, int ndim, const size_t *dims,
                                   size_t *count)
{
    if (!path || !*path || (!data && ndim > 0) || ndim < 1 || ndim > NPY_MAX_DIMS || !dims)
        return byol_error(BYOL_ERR_INVALID, "npy writer: bad argument for %s",
                          path ? path : "(null)");
    *count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] && *count > SIZE_MAX / 8 / dims[i])
            return byol_error(BYOL_ERR_INVALID, "%s: the shape is too large", path);
        *count *= dims[i];
    }
    return BYOL_OK;
}

byol_status byol_npy_write_f32(const char *path, const float *data, int ndim, const size_t *dims)
{
    size_t count = 0;
    byol_status st = npy_check_shape(path, data, ndim, dims, &count);
    if (st != BYOL_OK)
        return st;
    return npy_write(path, "<f4", data, count * sizeof(float), ndim, dims);
}

byol_status byol_npy_write_labels(const char *path, const int *labels, size_t n)
{
    size_t count = 0;
    byol_status st = npy_check_shape(path, labels, 1, &n, &count);
    if (st != BYOL_OK)
        return st;
    int64_t *wide = malloc((n ? n : 1) * sizeof *wide);
    if (!wide)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        wide[i] = labels[i];
    st = npy_write(path, "<i8", wide, n * sizeof *wide, 1, &n);
    free(wide);
    return st;
}
