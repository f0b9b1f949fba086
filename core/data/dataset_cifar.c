/* CIFAR-10 binary batches as a dataset: fixed-size records of one label byte and a 3x32x32
 * u8 image in CHW order (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"). */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"
#include "limits_internal.h"

#define CIFAR_SIDE 32
#define CIFAR_IMAGE (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_IMAGE)
#define CIFAR_CLASSES 10
/* The whole CIFAR-10 is 60000 records (184 MB); a much larger "batch" is a wrong file. */
#define CIFAR_MAX_BYTES (UINT64_C(4) << 30)

struct cifar_dataset {
    uint8_t *records; /* count records of CIFAR_RECORD bytes */
};

static byol_status cifar_get(const struct byol_dataset *ds, size_t index, float *out)
{
    const struct cifar_dataset *d = ds->impl;
    const uint8_t *px = d->records + index * CIFAR_RECORD + 1;
    for (size_t i = 0; i < CIFAR_IMAGE; i++)
        out[i] = (float)px[i] / 255.0f;
    return BYOL_OK;
}

static int cifar_label(const struct byol_dataset *ds, size_t index)
{
    const struct cifar_dataset *d = ds->impl;
    return d->records[index * CIFAR_RECORD];
}

static void cifar_destroy(void *impl)
{
    struct cifar_dataset *d = impl;
    if (!d)
        return;
    free(d->records);
    free(d);
}

static const struct byol_dataset_ops cifar_ops = {"cifar", cifar_get, cifar_label, cifar_destroy,
                                                  NULL};

/* ---- The files. ------------------------------------------------------------------------ */

/* A growing list of file paths (owned strings). */
struct path_list {
    char **items;
    size_t n, cap;
};

static byol_status path_list_add(struct path_list *l, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
        l->items = items;
        l->cap = cap;
    }
    if (!(l->items[l->n] = strdup(path)))
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    l->n++;
    return BYOL_OK;
}

static void path_list_free(struct path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_train_batch(const char *name)
{
    size_t n = strlen(name);
    return strncmp(name, "data_batch_", 11) == 0 && n > 15 && strcmp(name + n - 4, ".bin") == 0;
}

/* A folder's data_batch_*.bin files, in name order. */
static byol_status add_folder(struct path_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return byol_error(BYOL_ERR_IO, "%s: cannot list the CIFAR folder", dir);
    struct path_list found = {0};
    byol_status st = BYOL_OK;
    char path[PATH_MAX];
    for (struct dirent *e; st == BYOL_OK && (e = readdir(d));)
        if (is_train_batch(e->d_name)) {
            st = byol_dataset_join(dir, e->d_name, path, sizeof path);
            if (st == BYOL_OK)
                st = path_list_add(&found, path);
        }
    closedir(d);
    if (st == BYOL_OK && found.n == 0)
        st = byol_error(BYOL_ERR_NOT_FOUND, "%s: no data_batch_*.bin files in the CIFAR folder",
                        dir);
    if (st == BYOL_OK)
        qsort(found.items, found.n, sizeof *found.items, cmp_str);
    for (size_t i = 0; st == BYOL_OK && i < found.n; i++)
        st = path_list_add(l, found.items[i]);
    path_list_free(&found);
    return st;
}

/* Read one batch file and append its records to *all (of *bytes bytes). */
static byol_status append_batch(const char *path, uint8_t **all, size_t *bytes)
{
    uint8_t *b;
    size_t n;
    byol_status st = byol_dataset_read_file(path, "CIFAR batch", CIFAR_MAX_BYTES, &b, &n);
    if (st != BYOL_OK)
        return st;
    if (n == 0 || n % CIFAR_RECORD != 0)
        st = byol_error(BYOL_ERR_FORMAT,
                        "%s: %zu bytes is not a whole number of CIFAR-10 records (%d bytes: a "
                        "label byte and 3x32x32 pixels)%s",
                        path, n, CIFAR_RECORD, n ? "; truncated, or not a CIFAR-10 batch" : "");
    for (size_t r = 0; st == BYOL_OK && r < n / CIFAR_RECORD; r++)
        if (b[r * CIFAR_RECORD] >= CIFAR_CLASSES)
            st = byol_error(BYOL_ERR_FORMAT,
                            "%s: record %zu has label %u (CIFAR-10 labels are 0..9): not a "
                            "CIFAR-10 batch",
                            path, r, (unsigned)b[r * CIFAR_RECORD]);
    if (st == BYOL_OK) /* the batches so far and this one, in one block */
        st = byol_mem_check(path, "the CIFAR-10 data", (uint64_t)*bytes + n);
    uint8_t *grown = st == BYOL_OK ? realloc(*all, *bytes + n) : NULL;
    if (st == BYOL_OK && !grown)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    if (st == BYOL_OK) {
        memcpy(grown + *bytes, b, n);
        *all = grown;
        *bytes += n;
    }
    free(b);
    return st;
}

static byol_status collect_paths(const char *const *paths, int n_paths, struct path_list *l)
{
    byol_status st = BYOL_OK;
    for (int i = 0; st == BYOL_OK && i < n_paths; i++) {
        struct stat s;
        if (!paths[i])
            return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_cifar: NULL path %d", i);
        if (stat(paths[i], &s) == 0 && S_ISDIR(s.st_mode))
            st = add_folder(l, paths[i]);
        else /* a file, or a missing path that reading then names */
            st = path_list_add(l, paths[i]);
    }
    return st;
}

byol_status byol_dataset_open_cifar(const char *const *paths, int n_paths,
                                    struct byol_dataset **out)
{
    if (!out || !paths || n_paths <= 0)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_cifar: %s",
                          !out ? "NULL out" : "no paths");
    *out = NULL;
    struct path_list files = {0};
    uint8_t *all = NULL;
    size_t bytes = 0;
    byol_status st = collect_paths(paths, n_paths, &files);
    for (size_t i = 0; st == BYOL_OK && i < files.n; i++)
        st = append_batch(files.items[i], &all, &bytes);
    struct cifar_dataset *d = st == BYOL_OK ? calloc(1, sizeof *d) : NULL;
    if (st == BYOL_OK && !d)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", paths[0]);
    path_list_free(&files);
    if (st != BYOL_OK) {
        free(all);
        return st;
    }
    d->records = all;
    return byol_dataset_wrap(&cifar_ops, d, paths[0], bytes / CIFAR_RECORD, 3, CIFAR_SIDE,
                             CIFAR_SIDE, out);
}
