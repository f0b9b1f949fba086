/* The format-independent part of the dataset API (include/byol/dataset.h): range checks and
 * dispatch to the reader that opened the handle. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset_internal.h"
#include "fileio_internal.h"
#include "limits_internal.h"

byol_status byol_dataset_wrap(const struct byol_dataset_ops *ops, void *impl, const char *name,
                              size_t count, int c, int h, int w, struct byol_dataset **out)
{
    struct byol_dataset *ds = calloc(1, sizeof *ds);
    char *copy = strdup(name ? name : "");
    if (!ds || !copy) {
        free(ds);
        free(copy);
        ops->destroy(impl);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name ? name : "dataset");
    }
    *ds = (struct byol_dataset){ops, impl, copy, count, c, h, w};
    *out = ds;
    return BYOL_OK;
}

void byol_dataset_free(struct byol_dataset *ds)
{
    if (!ds)
        return;
    ds->ops->destroy(ds->impl);
    free(ds->name);
    free(ds);
}

size_t byol_dataset_count(const struct byol_dataset *ds)
{
    return ds ? ds->count : 0;
}

void byol_dataset_shape(const struct byol_dataset *ds, int *c, int *h, int *w)
{
    if (c)
        *c = ds ? ds->c : 0;
    if (h)
        *h = ds ? ds->h : 0;
    if (w)
        *w = ds ? ds->w : 0;
}

byol_status byol_dataset_get(const struct byol_dataset *ds, size_t index, float *out_chw)
{
    if (!ds || !out_chw)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_get: NULL %s",
                          !ds ? "dataset" : "output");
    if (index >= ds->count)
        return byol_error(BYOL_ERR_INVALID, "%s: image index %zu out of range (%zu images)",
                          ds->name, index, ds->count);
    return ds->ops->get(ds, index, out_chw);
}

int byol_dataset_label(const struct byol_dataset *ds, size_t index)
{
    if (!ds || index >= ds->count)
        return -1;
    return ds->ops->label(ds, index);
}

const char *byol_dataset_format(const struct byol_dataset *ds)
{
    return ds ? ds->ops->format : "";
}

byol_status byol_dataset_join(const char *dir, const char *name, char *out, size_t n)
{
    int k = snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n)
        return byol_error(BYOL_ERR_INVALID, "%s/%s: path too long", dir, name);
    return BYOL_OK;
}

static byol_status read_fd(int fd, const char *path, uint8_t *data, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, data + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return byol_error(BYOL_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (k == 0) /* the file shrank under us */
            return byol_error(BYOL_ERR_IO, "%s: file changed while being read", path);
        got += (size_t)k;
    }
    return BYOL_OK;
}

byol_status byol_dataset_read_file(const char *path, const char *what, uint64_t max_bytes,
                                   uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    struct stat st;
    char opening[128];
    snprintf(opening, sizeof opening, "cannot open %s", what);
    int fd;
    byol_status s = byol_open_input(path, 1, opening, &fd, &st);
    if (s != BYOL_OK)
        return s;
    if ((uint64_t)st.st_size > max_bytes)
        s = byol_error(BYOL_ERR_FORMAT, "%s: %s of %llu bytes is larger than the limit (%llu)",
                       path, what, (unsigned long long)st.st_size, (unsigned long long)max_bytes);
    else
        s = byol_mem_check(path, "reading the file", (uint64_t)st.st_size);
    size_t n = s == BYOL_OK ? (size_t)st.st_size : 0;
    uint8_t *b = s == BYOL_OK ? malloc(n ? n : 1) : NULL;
    if (s == BYOL_OK && !b)
        s = byol_error(BYOL_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    if (s == BYOL_OK)
        s = read_fd(fd, path, b, n);
    close(fd);
    if (s != BYOL_OK) {
        free(b);
        return s;
    }
    *data = b;
    *size = n;
    return BYOL_OK;
}
