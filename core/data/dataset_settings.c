/* byol_dataset_open_settings: a config's data group to an open dataset, dispatching on
 * data.format with the keys each format takes (include/byol/dataset.h lists them). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/settings.h"
#include "dataset_internal.h"
#include "fileio_internal.h"

#define MAX_CIFAR_PATHS 64

/* Keys every format accepts: the format itself, and the loader's, which it reads from the
 * same group (add a new loader key here). */
#define LOADER_KEYS "format", "shuffle"

static const char *const idx_keys[] = {LOADER_KEYS, "images", "labels", NULL};
static const char *const cifar_keys[] = {LOADER_KEYS, "images", NULL};
/* resize_first: the loader's too, for the one format that keeps larger originals. */
static const char *const folder_keys[] = {LOADER_KEYS, "images", "resize_first", NULL};
static const char *const npy_keys[] = {LOADER_KEYS, "images", "labels", NULL};
static const char *const mock_keys[] = {LOADER_KEYS, "length", NULL};

/* The names of a group's image and label settings: data's, or another group's (eval's
 * train_images / train_labels); labels NULL: none read. */
struct ds_keys {
    const char *images, *labels;
};
static const struct ds_keys data_keys = {"images", "labels"};

static byol_status resolve(const struct byol_settings *g, const char *key, const char *dir,
                           const char *path, char *out, size_t n)
{
    if (byol_path_resolve(dir, path, out, n) != 0)
        return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID, "path too long");
    return BYOL_OK;
}

/* A required path setting, resolved against dir; `what` says what it should name. */
static byol_status required_path(const struct byol_settings *g, const char *key, const char *dir,
                                 const char *what, char *out, size_t n)
{
    const char *v;
    byol_status st = byol_settings_string(g, key, NULL, &v);
    if (st != BYOL_OK)
        return st;
    if (!v)
        return byol_settings_error(g, BYOL_ERR_INVALID, "missing '%s' (%s)", key, what);
    return resolve(g, key, dir, v, out, n);
}

/* An optional path setting: out[0] = '\0' when unset. */
static byol_status optional_path(const struct byol_settings *g, const char *key, const char *dir,
                                 char *out, size_t n)
{
    const char *v;
    out[0] = '\0';
    byol_status st = byol_settings_string(g, key, NULL, &v);
    if (st != BYOL_OK || !v)
        return st;
    return resolve(g, key, dir, v, out, n);
}

static byol_status open_two_files(const struct byol_settings *g, const struct ds_keys *k,
                                  const char *dir, int npy, struct byol_dataset **out)
{
    char images[PATH_MAX], labels[PATH_MAX] = "";
    byol_status st =
        required_path(g, k->images, dir, npy ? "the .npy image file" : "the IDX image file", images,
                      sizeof images);
    if (st == BYOL_OK && k->labels)
        st = optional_path(g, k->labels, dir, labels, sizeof labels);
    if (st != BYOL_OK)
        return st;
    const char *lp = labels[0] ? labels : NULL;
    return npy ? byol_dataset_open_npy(images, lp, out) : byol_dataset_open_idx(images, lp, out);
}

/* data.images (or k->images) as one path or a list of them. */
static byol_status open_cifar(const struct byol_settings *g, const char *key, const char *dir,
                              struct byol_dataset **out)
{
    const char *names[MAX_CIFAR_PATHS], *ptrs[MAX_CIFAR_PATHS];
    int n = 0;
    byol_status st = BYOL_OK;
    if (!byol_settings_has(g, key))
        return byol_settings_error(g, BYOL_ERR_INVALID,
                                   "missing '%s' (CIFAR-10 batch files or their folder)", key);
    if (byol_settings_string(g, key, NULL, &names[0]) == BYOL_OK)
        n = 1;
    else
        st = byol_settings_strings(g, key, names, MAX_CIFAR_PATHS, &n);
    if (st == BYOL_OK && n == 0)
        st = byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID,
                                 "an empty list (name CIFAR-10 batch files or their folder)");
    char(*paths)[PATH_MAX] = st == BYOL_OK ? malloc((size_t)n * sizeof *paths) : NULL;
    if (st == BYOL_OK && !paths)
        st = byol_error(BYOL_ERR_NOMEM, "%s.%s: out of memory", byol_settings_path(g), key);
    for (int i = 0; st == BYOL_OK && i < n; i++) {
        st = resolve(g, key, dir, names[i], paths[i], sizeof paths[i]);
        ptrs[i] = paths[i];
    }
    if (st == BYOL_OK)
        st = byol_dataset_open_cifar(ptrs, n, out);
    free(paths);
    return st;
}

static byol_status open_mock(const struct byol_settings *g, int channels, int image_size,
                             uint64_t seed, struct byol_dataset **out)
{
    int64_t length;
    byol_status st = byol_settings_int(g, "length", 10000, &length);
    if (st != BYOL_OK)
        return st;
    const struct byol_settings *setting = byol_settings_child(g, "length");
    if (length < 1 || (uint64_t)length > SIZE_MAX / 2)
        return byol_settings_error(setting, BYOL_ERR_INVALID,
                                   "%lld is not a valid number of images", (long long)length);
    st = byol_dataset_open_mock((size_t)length, channels, image_size, seed, out);
    /* A length too large for memory is the setting's fault: name it, with its file and line. */
    if (st == BYOL_ERR_NOMEM)
        return byol_settings_error(setting, st, "%s", byol_last_error());
    return st;
}

static byol_status open_format(const struct byol_settings *g, const struct ds_keys *k,
                               const char *format, const char *dir, int channels, int image_size,
                               uint64_t seed, struct byol_dataset **out)
{
    char root[PATH_MAX];
    byol_status st;
    if (strcmp(format, "idx") == 0 || strcmp(format, "npy") == 0)
        return open_two_files(g, k, dir, format[0] == 'n', out);
    if (strcmp(format, "cifar") == 0)
        return open_cifar(g, k->images, dir, out);
    if (strcmp(format, "folder") == 0) {
        st = required_path(g, k->images, dir, "the ImageFolder root", root, sizeof root);
        return st == BYOL_OK ? byol_dataset_open_folder(root, channels, image_size, out) : st;
    }
    return open_mock(g, channels, image_size, seed, out);
}

byol_status byol_dataset_open_settings(const struct byol_settings *data_group,
                                       const char *config_dir, int channels, int image_size,
                                       uint64_t seed, struct byol_dataset **out)
{
    static const struct {
        const char *name;
        const char *const *keys;
    } formats[] = {{"idx", idx_keys},
                   {"cifar", cifar_keys},
                   {"folder", folder_keys},
                   {"npy", npy_keys},
                   {"mock", mock_keys}};
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_settings: NULL out");
    *out = NULL;
    const char *format;
    byol_status st = byol_settings_string(data_group, "format", "idx", &format);
    if (st != BYOL_OK)
        return st;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(format, formats[i].name) != 0)
            continue;
        st = byol_settings_check_keys(data_group, formats[i].keys);
        if (st == BYOL_OK)
            st = open_format(data_group, &data_keys, format, config_dir, channels, image_size, seed,
                             out);
        return st;
    }
    return byol_settings_error(byol_settings_child(data_group, "format"), BYOL_ERR_UNSUPPORTED,
                               "unknown format '%s' (known: idx, cifar, folder, npy, mock)",
                               format);
}

byol_status byol_dataset_open_settings_keys(const struct byol_settings *group,
                                            const char *config_dir, const char *images_key,
                                            const char *labels_key, int channels, int image_size,
                                            uint64_t seed, struct byol_dataset **out)
{
    static const char *const known[] = {"idx", "cifar", "folder", "npy", "mock"};
    if (!out || !images_key)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_settings_keys: NULL argument");
    *out = NULL;
    const char *format;
    byol_status st = byol_settings_string(group, "format", "idx", &format);
    if (st != BYOL_OK)
        return st;
    struct ds_keys k = {images_key, labels_key};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(format, known[i]) == 0)
            return open_format(group, &k, format, config_dir, channels, image_size, seed, out);
    return byol_settings_error(byol_settings_child(group, "format"), BYOL_ERR_UNSUPPORTED,
                               "unknown format '%s' (known: idx, cifar, folder, npy, mock)",
                               format);
}
