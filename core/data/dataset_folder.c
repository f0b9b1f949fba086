/* An ImageFolder tree (root/<class>/.../<image>) as a dataset, listed in torchvision's order at
 * open time and decoded image by image in byol_dataset_get (core/data/image_decode.c), so opening
 * a tree of many thousands of files costs one directory walk. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dataset_internal.h"
#include "image_internal.h"

#define FOLDER_MAX_DEPTH 32 /* below a class folder; deeper is a symlink loop, most likely */

struct folder_entry {
    char *path;
    size_t dir_len; /* path[0 .. dir_len) is its folder */
    int label;
};

struct folder_dataset {
    struct folder_entry *files;
    size_t n, cap;
    int channels, size;
};

/* ---- Listing. -------------------------------------------------------------------------- */

static int has_image_ext(const char *name)
{
    static const char *const exts[] = {".png", ".jpg", ".jpeg"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0)
            return 1;
    }
    return 0;
}

static byol_status add_file(struct folder_dataset *d, const char *path, size_t dir_len, int label)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        struct folder_entry *f = realloc(d->files, cap * sizeof *f);
        if (!f)
            return byol_error(BYOL_ERR_NOMEM, "%s: out of memory listing images", path);
        d->files = f;
        d->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory listing images", path);
    d->files[d->n++] = (struct folder_entry){copy, dir_len, label};
    return BYOL_OK;
}

static byol_status open_dir(const char *path, DIR **out)
{
    if ((*out = opendir(path)))
        return BYOL_OK;
    return byol_error(errno == ENOENT ? BYOL_ERR_NOT_FOUND : BYOL_ERR_IO,
                      "%s: cannot list the folder: %s", path, strerror(errno));
}

/* Every image file under `dir` (following symlinks, skipping dot names), unsorted. */
static byol_status walk(struct folder_dataset *d, const char *dir, int label, int depth)
{
    if (depth > FOLDER_MAX_DEPTH)
        return byol_error(BYOL_ERR_FORMAT, "%s: folders nested deeper than %d (a symlink loop?)",
                          dir, FOLDER_MAX_DEPTH);
    DIR *dp;
    byol_status st = open_dir(dir, &dp);
    char path[PATH_MAX];
    for (struct dirent *e; st == BYOL_OK && (e = readdir(dp));) {
        struct stat s;
        if (e->d_name[0] == '.')
            continue;
        st = byol_dataset_join(dir, e->d_name, path, sizeof path);
        if (st != BYOL_OK || stat(path, &s) != 0) /* a dangling link: not an image */
            continue;
        if (S_ISDIR(s.st_mode))
            st = walk(d, path, label, depth + 1);
        else if (S_ISREG(s.st_mode) && has_image_ext(e->d_name))
            st = add_file(d, path, strlen(dir), label);
    }
    if (dp)
        closedir(dp);
    return st;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* torchvision's order: by class, then folder path, then file name (byte-wise, as Python). */
static int cmp_entry(const void *pa, const void *pb)
{
    const struct folder_entry *a = pa, *b = pb;
    if (a->label != b->label)
        return a->label < b->label ? -1 : 1;
    size_t n = a->dir_len < b->dir_len ? a->dir_len : b->dir_len;
    int c = memcmp(a->path, b->path, n);
    if (c == 0 && a->dir_len != b->dir_len)
        return a->dir_len < b->dir_len ? -1 : 1;
    return c ? c : strcmp(a->path + a->dir_len, b->path + b->dir_len);
}

/* The class folders of `root`, sorted by name: *names (malloc'ed array of strdup'ed names). */
static byol_status list_classes(const char *root, char ***names, int *count)
{
    DIR *dp;
    byol_status st = open_dir(root, &dp);
    char path[PATH_MAX];
    *names = NULL;
    *count = 0;
    for (struct dirent *e; st == BYOL_OK && (e = readdir(dp));) {
        struct stat s;
        if (e->d_name[0] == '.' || byol_dataset_join(root, e->d_name, path, sizeof path) ||
            stat(path, &s) != 0 || !S_ISDIR(s.st_mode))
            continue;
        char **grown =
            *count < INT_MAX ? realloc(*names, (size_t)(*count + 1) * sizeof *grown) : NULL;
        char *copy = grown ? strdup(e->d_name) : NULL;
        if (grown)
            *names = grown;
        if (!copy)
            st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory listing classes", root);
        else
            (*names)[(*count)++] = copy;
    }
    if (dp)
        closedir(dp);
    if (st == BYOL_OK && *count == 0)
        st = byol_error(BYOL_ERR_NOT_FOUND,
                        "%s: empty folder: no class subfolders (an ImageFolder tree is "
                        "root/<class>/<image>)",
                        root);
    if (st == BYOL_OK)
        qsort(*names, (size_t)*count, sizeof **names, cmp_name);
    return st;
}

/* Each class's images; a class without any is refused, as torchvision does. */
static byol_status list_images(struct folder_dataset *d, const char *root, char **classes,
                               int n_classes)
{
    char path[PATH_MAX];
    byol_status st = BYOL_OK;
    for (int k = 0; st == BYOL_OK && k < n_classes; k++) {
        size_t before = d->n;
        st = byol_dataset_join(root, classes[k], path, sizeof path);
        if (st == BYOL_OK)
            st = walk(d, path, k, 0);
        if (st == BYOL_OK && d->n == before)
            st = byol_error(BYOL_ERR_NOT_FOUND,
                            "%s: no .png, .jpg or .jpeg images in class folder '%s'", root,
                            classes[k]);
    }
    if (st == BYOL_OK)
        qsort(d->files, d->n, sizeof *d->files, cmp_entry);
    return st;
}

/* ---- The dataset. ---------------------------------------------------------------------- */

static byol_status folder_get(const struct byol_dataset *ds, size_t index, float *out)
{
    const struct folder_dataset *d = ds->impl;
    struct byol_image img;
    byol_status st = byol_image_decode_file(d->files[index].path, d->channels, &img);
    if (st != BYOL_OK)
        return st;
    st = byol_image_resize_crop(&img, d->size, out);
    free(img.px);
    return st;
}

static byol_status folder_original(const struct byol_dataset *ds, size_t index,
                                   struct byol_image_file *f)
{
    const struct folder_dataset *d = ds->impl;
    return byol_image_file_read(d->files[index].path, f);
}

static int folder_label(const struct byol_dataset *ds, size_t index)
{
    const struct folder_dataset *d = ds->impl;
    return d->files[index].label;
}

static void folder_destroy(void *impl)
{
    struct folder_dataset *d = impl;
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->files[i].path);
    free(d->files);
    free(d);
}

static const struct byol_dataset_ops folder_ops = {"folder", folder_get, folder_label,
                                                   folder_destroy, folder_original};

byol_status byol_dataset_open_folder(const char *root, int channels, int image_size,
                                     struct byol_dataset **out)
{
    if (!out || !root)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_folder: NULL %s",
                          !out ? "out" : "root");
    *out = NULL;
    if (channels != 1 && channels != 3)
        return byol_error(BYOL_ERR_INVALID, "%s: %d channels requested (images give 1 or 3)", root,
                          channels);
    if (image_size < 1 || image_size > 4096)
        return byol_error(BYOL_ERR_INVALID, "%s: image size %d (must be 1..4096)", root,
                          image_size);
    struct folder_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", root);
    d->channels = channels;
    d->size = image_size;
    char **classes;
    int n_classes;
    byol_status st = list_classes(root, &classes, &n_classes);
    if (st == BYOL_OK)
        st = list_images(d, root, classes, n_classes);
    for (int k = 0; k < n_classes; k++)
        free(classes[k]);
    free(classes);
    if (st != BYOL_OK) {
        folder_destroy(d);
        return st;
    }
    return byol_dataset_wrap(&folder_ops, d, root, d->n, channels, image_size, image_size, out);
}
