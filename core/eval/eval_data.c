/* The data side of evaluation (include/byol/eval.h): the eval group's keys, the deterministic
 * eval transform (training's preparation without its randomness), the split byolctl embed
 * names, and a whole dataset through the transform and the learner's online network. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "eval_internal.h"
#include "learner_internal.h"

#define EVAL_CHUNK 256   /* images transformed and embedded per round */
#define EVAL_MAX_NORM 64 /* normalize values read from a config */
#define EVAL_VIEW 0      /* the stream word of eval images (training's views are 1 and 2) */

/* at_end and trainer are read by the trainer (core/train/train_session.c, core/train/trainer.c). */
#define EVAL_COMMON_KEYS                                                                           \
    "format", "every", "knn_k", "knn_temperature", "probe_l2", "probe_iterations", "transform",    \
        "baseline", "baseline_cache", "at_end", "trainer"

int eval_format_has_label_files(const char *format)
{
    return strcmp(format, "idx") == 0 || strcmp(format, "npy") == 0;
}

byol_status eval_check_group(const struct byol_settings *eval, const char **format)
{
    static const char *const two_files[] = {EVAL_COMMON_KEYS, "train_images", "train_labels",
                                            "test_images",    "test_labels",  NULL};
    static const char *const one_path[] = {EVAL_COMMON_KEYS, "train_images", "test_images", NULL};
    byol_status st = byol_settings_string(eval, "format", "idx", format);
    if (st != BYOL_OK)
        return st;
    if (eval_format_has_label_files(*format))
        return byol_settings_check_keys(eval, two_files);
    if (strcmp(*format, "cifar") == 0 || strcmp(*format, "folder") == 0)
        return byol_settings_check_keys(eval, one_path);
    return byol_settings_error(byol_settings_child(eval, "format"), BYOL_ERR_UNSUPPORTED,
                               "'%s' is not a labelled format (eval takes idx, cifar, folder, npy)",
                               *format);
}

/* ---- the eval transform ---------------------------------------------------------------- */

/* "{ op = "normalize"; mean = [...]; std = [...]; }" for the last top-level normalize of an
 * op list ("" when it has none). Values are printed so that they read back bit-identical. */
static void eval_find_normalize(const struct byol_settings *list, char *out, size_t n)
{
    const struct byol_settings *found = NULL;
    for (int i = 0; i < byol_settings_length(list); i++) {
        const struct byol_settings *e = byol_settings_elem(list, i);
        const char *op = NULL;
        if (byol_settings_string(e, "op", NULL, &op) == BYOL_OK && op &&
            strcmp(op, "normalize") == 0)
            found = e;
    }
    out[0] = '\0';
    if (!found)
        return;
    size_t used = (size_t)snprintf(out, n, "{ op = \"normalize\";");
    static const char *const keys[] = {"mean", "std"};
    for (int k = 0; k < 2 && used < n; k++) {
        double v[EVAL_MAX_NORM];
        int count = 0;
        if (byol_settings_floats(found, keys[k], v, EVAL_MAX_NORM, &count) != BYOL_OK || count == 0)
            continue; /* left out: the op itself reports it, as it did for training */
        used += (size_t)snprintf(out + used, n - used, " %s = [", keys[k]);
        for (int i = 0; i < count && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, "%s%.17e", i ? ", " : "", v[i]);
        if (used < n)
            used += (size_t)snprintf(out + used, n - used, "];");
    }
    if (used < n)
        snprintf(out + used, n - used, " }");
}

/* The normalize that training's view 1 ends with: augment_fn's list, or its preset's. */
static byol_status eval_training_normalize(const struct byol_settings *root,
                                           const struct byol_augment_info *info, char *out,
                                           size_t n)
{
    const struct byol_settings *aug = byol_settings_child(root, "augment_fn");
    const char *preset = NULL;
    out[0] = '\0';
    if (!aug)
        return BYOL_OK;
    if (byol_settings_is_list(aug)) {
        eval_find_normalize(aug, out, n);
        return BYOL_OK;
    }
    if (byol_settings_string(root, "augment_fn", NULL, &preset) != BYOL_OK || !preset)
        return byol_settings_error(aug, BYOL_ERR_INVALID,
                                   "expected a list of ops or a preset name");
    char text[4096];
    struct byol_config *cfg = NULL;
    byol_status st = byol_augment_preset_text(preset, 1, info, text, sizeof text);
    if (st != BYOL_OK)
        return byol_settings_error(aug, st, "%s", byol_last_error());
    st = byol_config_parse(text, "preset", &cfg);
    if (st == BYOL_OK)
        eval_find_normalize(byol_settings_child(byol_config_root(cfg), "augment"), out, n);
    byol_config_free(cfg);
    return st;
}

/* The default transform as config text: resize, center_crop (each only when needed), and
 * training's normalize. */
static byol_status eval_default_text(const struct byol_settings *root,
                                     const struct byol_augment_info *info, char *out, size_t n)
{
    char norm[2048];
    byol_status st = eval_training_normalize(root, info, norm, sizeof norm);
    if (st != BYOL_OK)
        return st;
    int s = info->image_size, h = info->height, w = info->width;
    int resize = (h < w ? h : w) != s, crop = h != w;
    int k = snprintf(out, n, "transform = ( %s%s%s%s%s );\n", resize ? "{ op = \"resize\"; }" : "",
                     resize && (crop || norm[0]) ? ", " : "",
                     crop ? "{ op = \"center_crop\"; }" : "", crop && norm[0] ? ", " : "", norm);
    if (k < 0 || (size_t)k >= n)
        return byol_error(BYOL_ERR_INTERNAL, "eval transform: text too long");
    return BYOL_OK;
}

static byol_status eval_check_transform(const struct byol_augment_pipeline *p,
                                        const struct byol_settings *where,
                                        const struct byol_augment_info *info)
{
    int c, h, w, s = info->image_size;
    byol_augment_pipeline_output(p, &c, &h, &w);
    if (c == info->channels && h == s && w == s)
        return BYOL_OK;
    return byol_settings_error(where, BYOL_ERR_SHAPE,
                               "the eval transform makes %dx%dx%d images but the model takes "
                               "%dx%dx%d (model.encoder.in_channels x model.image_size^2)",
                               c, h, w, info->channels, s, s);
}

byol_status byol_eval_transform_create(struct byol_registry *reg, const struct byol_settings *root,
                                       const struct byol_dataset *ds, int in_channels,
                                       int image_size, struct byol_augment_pipeline **out)
{
    if (!reg || !ds || !out || in_channels < 1 || image_size < 1)
        return byol_error(BYOL_ERR_INVALID, "byol_eval_transform_create: bad argument");
    *out = NULL;
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    if (c != in_channels && c != 1)
        return byol_error(BYOL_ERR_SHAPE,
                          "eval: the %s images have %d channels but model.encoder.in_channels "
                          "is %d",
                          byol_dataset_format(ds), c, in_channels);
    struct byol_augment_info info = {in_channels, h, w, image_size};
    const struct byol_settings *eval = byol_settings_child(root, "eval");
    const struct byol_settings *user = byol_settings_child(eval, "transform");
    if (user && !byol_settings_is_list(user))
        return byol_settings_error(user, BYOL_ERR_INVALID,
                                   "expected a list of ops ( { op = \"...\"; ... }, ... )");
    byol_status st;
    if (user) {
        st = byol_augment_pipeline_create(reg, eval, "transform", 1, &info, out);
    } else {
        char text[4096];
        struct byol_config *cfg = NULL;
        st = eval_default_text(root, &info, text, sizeof text);
        if (st == BYOL_OK)
            st = byol_config_parse(text, "eval transform", &cfg);
        if (st == BYOL_OK)
            st = byol_augment_pipeline_create(reg, byol_config_root(cfg), "transform", 1, &info,
                                              out);
        byol_config_free(cfg);
    }
    if (st == BYOL_OK)
        st = eval_check_transform(*out, user, &info);
    if (st != BYOL_OK) {
        byol_augment_pipeline_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- a dataset through the transform and the network ---------------------------------- */

/* Images [start, start + m) of ds into `raw`, 1-channel images replicated to `ic` channels. */
static byol_status eval_load(const struct byol_dataset *ds, size_t start, int m, int ic, float *one,
                             float *raw)
{
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    size_t plane = (size_t)h * (size_t)w;
    for (int b = 0; b < m; b++) {
        byol_status st = byol_dataset_get(ds, start + (size_t)b, one);
        if (st != BYOL_OK)
            return st;
        float *dst = raw + (size_t)b * plane * (size_t)ic;
        for (int k = 0; k < ic; k++)
            memcpy(dst + (size_t)k * plane, one + (c == 1 ? 0 : (size_t)k * plane),
                   plane * sizeof(float));
    }
    return BYOL_OK;
}

struct eval_buffers {
    float *one, *raw, *img;
    struct byol_augment_pool *own_pool;
};

/* The loading buffers, and `img` for one chunk of transformed images when they go to a model
 * (l; NULL: they are written straight to the caller's array, and any size is right). */
static byol_status eval_buffers_alloc(struct eval_buffers *b, const struct byol_dataset *ds,
                                      const struct byol_augment_pipeline *t,
                                      const struct byol_learner *l)
{
    int c, h, w, ic, ih, iw, oc, oh, ow;
    byol_dataset_shape(ds, &c, &h, &w);
    byol_augment_pipeline_input(t, &ic, &ih, &iw);
    byol_augment_pipeline_output(t, &oc, &oh, &ow);
    size_t in = (size_t)ic * ih * iw, img = (size_t)oc * oh * ow;
    size_t want = l ? l->image_numel : img;
    if (ih != h || iw != w || (c != ic && c != 1) || img != want)
        return byol_error(BYOL_ERR_SHAPE,
                          "eval: the transform takes %dx%dx%d and makes %zu values per image, "
                          "but the data is %dx%dx%d and the model takes %zu",
                          ic, ih, iw, img, c, h, w, want);
    b->one = malloc((size_t)c * h * w * sizeof(float));
    b->raw = malloc(EVAL_CHUNK * in * sizeof(float));
    b->img = l ? malloc(EVAL_CHUNK * img * sizeof(float)) : NULL;
    if (!b->one || !b->raw || (l && !b->img))
        return byol_error(BYOL_ERR_NOMEM, "eval: out of memory for the image buffers");
    return BYOL_OK;
}

/* Images [start, start + m) of ds through `t` into dst (m x its output), each drawing from its
 * own fixed stream, so a random op in eval.transform gives the same image every time. */
static byol_status eval_transform_chunk(const struct byol_dataset *ds,
                                        const struct byol_augment_pipeline *t,
                                        struct byol_augment_pool *pool, size_t start, int m,
                                        const struct eval_buffers *b, float *dst)
{
    int ic;
    byol_augment_pipeline_input(t, &ic, NULL, NULL);
    byol_status st = eval_load(ds, start, m, ic, b->one, b->raw);
    if (st == BYOL_OK)
        st = byol_augment_batch(pool, t, b->raw, (size_t)m, dst, 0, start, EVAL_VIEW);
    return st;
}

/* Rows of features must be finite: a NaN would make every distance and the probe's loss NaN. */
static byol_status eval_check_finite(const float *f, size_t rows, int dim, size_t first,
                                     const char *what)
{
    for (size_t r = 0; r < rows; r++) {
        float acc = 0.0f;
        for (int k = 0; k < dim; k++)
            acc += f[r * (size_t)dim + (size_t)k] * 0.0f; /* NaN iff an element is not finite */
        if (acc != 0.0f)
            return byol_error(
                BYOL_ERR_NONFINITE,
                "the %s of image %zu holds NaN or infinity: the weights are not usable", what,
                first + r);
    }
    return BYOL_OK;
}

byol_status eval_embed_dataset(struct byol_learner *l, const struct byol_dataset *ds,
                               const struct byol_augment_pipeline *transform,
                               struct byol_augment_pool *pool, float *embedding, float *projection,
                               struct eval_progress *r)
{
    if (!l || !ds || !transform)
        return byol_error(BYOL_ERR_INVALID, "byol_eval_embed_dataset: NULL argument");
    struct eval_buffers b = {0};
    byol_status st = eval_buffers_alloc(&b, ds, transform, l);
    if (st == BYOL_OK && !pool)
        st = byol_augment_pool_create(1, &b.own_pool);
    int dim = l->embedding_dim, proj = l->cfg.projection_size;
    size_t n = byol_dataset_count(ds);
    for (size_t start = 0; st == BYOL_OK && start < n; start += EVAL_CHUNK) {
        int m = (int)(n - start < EVAL_CHUNK ? n - start : EVAL_CHUNK);
        st = eval_transform_chunk(ds, transform, pool ? pool : b.own_pool, start, m, &b, b.img);
        if (st == BYOL_OK)
            st = byol_learner_embed(l, b.img, m, projection ? projection + start * proj : NULL,
                                    embedding ? embedding + start * dim : NULL);
        if (st == BYOL_OK && embedding)
            st =
                eval_check_finite(embedding + start * dim, (size_t)m, dim, start, "representation");
        if (st == BYOL_OK && projection)
            st = eval_check_finite(projection + start * proj, (size_t)m, proj, start, "projection");
        if (st == BYOL_OK && start + (size_t)m < n) /* the caller reports the end */
            eval_progress_step(r, start + (size_t)m, NAN);
    }
    byol_augment_pool_free(b.own_pool);
    free(b.one);
    free(b.raw);
    free(b.img);
    return st;
}

byol_status byol_eval_embed_dataset(struct byol_learner *l, const struct byol_dataset *ds,
                                    const struct byol_augment_pipeline *transform,
                                    struct byol_augment_pool *pool, float *embedding,
                                    float *projection)
{
    return eval_embed_dataset(l, ds, transform, pool, embedding, projection, NULL);
}

size_t eval_transform_numel(const struct byol_augment_pipeline *t)
{
    int c, h, w;
    byol_augment_pipeline_output(t, &c, &h, &w);
    return (size_t)c * (size_t)h * (size_t)w;
}

byol_status eval_transform_dataset(const struct byol_dataset *ds,
                                   const struct byol_augment_pipeline *transform,
                                   struct byol_augment_pool *pool, float *out,
                                   struct eval_progress *r)
{
    if (!ds || !transform || !pool || !out)
        return byol_error(BYOL_ERR_INVALID, "eval_transform_dataset: NULL argument");
    struct eval_buffers b = {0};
    byol_status st = eval_buffers_alloc(&b, ds, transform, NULL);
    size_t numel = eval_transform_numel(transform), n = byol_dataset_count(ds);
    for (size_t start = 0; st == BYOL_OK && start < n; start += EVAL_CHUNK) {
        int m = (int)(n - start < EVAL_CHUNK ? n - start : EVAL_CHUNK);
        st = eval_transform_chunk(ds, transform, pool, start, m, &b, out + start * numel);
        if (st == BYOL_OK && start + (size_t)m < n) /* the caller reports the end */
            eval_progress_step(r, start + (size_t)m, NAN);
    }
    free(b.one);
    free(b.raw);
    return st;
}

/* ---- the split byolctl embed names ----------------------------------------------------- */

byol_status byol_eval_open_split(const struct byol_settings *root, const char *config_dir,
                                 const char *split, int in_channels, int image_size,
                                 struct byol_dataset **out)
{
    if (!out || !split)
        return byol_error(BYOL_ERR_INVALID, "byol_eval_open_split: NULL argument");
    *out = NULL;
    const struct byol_settings *eval = byol_settings_child(root, "eval");
    int train = strcmp(split, "train") == 0;
    if (!train && strcmp(split, "test") != 0)
        return byol_error(BYOL_ERR_INVALID, "split '%s': must be 'train' or 'test'", split);
    if (train && !eval)
        return byol_dataset_open_settings(byol_settings_child(root, "data"), config_dir,
                                          in_channels, image_size, 0, out);
    if (!eval)
        return byol_error(BYOL_ERR_INVALID,
                          "the config has no eval group: the test split is eval.test_images");
    if (!train && !byol_settings_has(eval, "test_images"))
        return byol_settings_error(eval, BYOL_ERR_INVALID,
                                   "missing 'test_images' (the test split's images)");
    const char *format;
    byol_status st = eval_check_group(eval, &format);
    if (st != BYOL_OK)
        return st;
    const char *labels = train ? "train_labels" : "test_labels";
    if (!eval_format_has_label_files(format) || !byol_settings_has(eval, labels))
        labels = NULL;
    return byol_dataset_open_settings_keys(eval, config_dir, train ? "train_images" : "test_images",
                                           labels, in_channels, image_size, 0, out);
}
