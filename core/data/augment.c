/* Augmentation pipelines (include/byol/augment.h): op lists from the config, or a preset's
 * text (augment_preset.c) parsed here, built from the registry's augment ops; random_apply is
 * handled here because its nested list needs the registry, which plugins do not see. Both views
 * of a config (augment_fn, augment_fn2) are made here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"
#include "byol/registry.h"
#include "byol/settings.h"
#include "plugin_scope_internal.h"
#include "registry_internal.h"

#define AUG_RANDOM_APPLY "random_apply"

struct aug_step {
    const struct byol_augment_ops *ops; /* NULL: random_apply */
    const char *path;                   /* the plugin file of ops, for fault reports */
    void *state;
    double p; /* random_apply */
    struct byol_augment_pipeline *nested;
    int out[3]; /* C, H, W of its output */
};

struct byol_augment_pipeline {
    struct aug_step *steps;
    int n;
    int in[3], out[3]; /* C, H, W */
    size_t max_image;  /* floats of the largest intermediate image */
    size_t scratch;    /* floats apply needs: two intermediates + the largest nested scratch */
};

static size_t aug_floats(const int s[3])
{
    return (size_t)s[0] * (size_t)s[1] * (size_t)s[2];
}

void byol_augment_pipeline_free(struct byol_augment_pipeline *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        if (p->steps[i].ops && p->steps[i].ops->destroy)
            p->steps[i].ops->destroy(p->steps[i].state);
        byol_augment_pipeline_free(p->steps[i].nested);
    }
    free(p->steps);
    free(p);
}

static byol_status aug_build(struct byol_registry *reg, const struct byol_settings *list,
                             const struct byol_augment_info *in,
                             struct byol_augment_pipeline **out);

/* "; known: color_jitter, ..., random_apply" from what the registry holds. */
static void aug_known_ops(const struct byol_registry *reg, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < byol_registry_count(reg) && used < size; i++) {
        const struct byol_registry_entry *e = byol_registry_entry_at(reg, i);
        if (e->kind == BYOL_PLUGIN_AUGMENT)
            used += (size_t)snprintf(buf + used, size - used, "%s, ", e->name);
    }
    if (used < size)
        snprintf(buf + used, size - used, "%s", AUG_RANDOM_APPLY);
}

static byol_status aug_make_random_apply(struct byol_registry *reg, const struct byol_settings *g,
                                         const struct byol_augment_info *in, struct aug_step *st)
{
    static const char *const keys[] = {"op", "p", "ops", NULL};
    const struct byol_settings *ops = byol_settings_child(g, "ops");
    byol_status s = byol_settings_check_keys(g, keys);
    if (s == BYOL_OK)
        s = byol_settings_float(g, "p", 0.5, &st->p);
    if (s == BYOL_OK && !(st->p >= 0.0 && st->p <= 1.0))
        return byol_settings_error(byol_settings_child(g, "p"), BYOL_ERR_INVALID,
                                   "a probability must be in [0, 1], got %g", st->p);
    if (s == BYOL_OK && !byol_settings_is_list(ops))
        return byol_settings_error(ops ? ops : g, BYOL_ERR_INVALID,
                                   "random_apply needs 'ops', a list of op groups");
    if (s == BYOL_OK)
        s = aug_build(reg, ops, in, &st->nested);
    if (s == BYOL_OK && memcmp(st->nested->out, st->nested->in, sizeof st->nested->in) != 0)
        return byol_settings_error(ops, BYOL_ERR_SHAPE,
                                   "random_apply's ops must keep the image shape (%dx%dx%d -> "
                                   "%dx%dx%d): the output shape may not depend on chance",
                                   st->nested->in[0], st->nested->in[1], st->nested->in[2],
                                   st->nested->out[0], st->nested->out[1], st->nested->out[2]);
    return s;
}

/* One element of an op list: look the op up, create it for `in`, record its output shape. */
static byol_status aug_make_step(struct byol_registry *reg, const struct byol_settings *g,
                                 const struct byol_augment_info *in, struct aug_step *st,
                                 int out[3])
{
    const char *name;
    byol_status s = byol_settings_string(g, "op", NULL, &name);
    if (s != BYOL_OK)
        return s;
    if (!name)
        return byol_settings_error(g, BYOL_ERR_INVALID, "missing required 'op' (the op's name)");
    out[0] = in->channels;
    out[1] = in->height;
    out[2] = in->width;
    if (strcmp(name, AUG_RANDOM_APPLY) == 0)
        return aug_make_random_apply(reg, g, in, st);
    const void *ops;
    s = byol_registry_require(reg, BYOL_PLUGIN_AUGMENT, name, &ops);
    if (s != BYOL_OK && s != BYOL_ERR_NOT_FOUND) /* a plugin that fails, or a name two have */
        return byol_settings_error(byol_settings_child(g, "op"), s, "%s", byol_last_error());
    if (s != BYOL_OK) {
        char known[1024];
        aug_known_ops(reg, known, sizeof known);
        return byol_settings_error(byol_settings_child(g, "op"), BYOL_ERR_NOT_FOUND,
                                   "unknown augmentation op '%s' (known: %s)", name, known);
    }
    st->ops = ops;
    if (!st->ops->create || !st->ops->apply)
        return byol_settings_error(g, BYOL_ERR_PLUGIN, "augment op '%s' lacks create or apply",
                                   name);
    st->path = byol_registry_path_of(reg, ops);
    struct byol_plugin_mark mark = byol_plugin_enter(st->path, "augment op", name, "create");
    s = st->ops->create(byol_host_api(), g, in, &st->state);
    byol_plugin_leave(mark);
    if (s == BYOL_OK && st->ops->output_shape)
        st->ops->output_shape(st->state, &out[0], &out[1], &out[2]);
    if (s == BYOL_OK && (out[0] < 1 || out[1] < 1 || out[2] < 1))
        s = byol_settings_error(g, BYOL_ERR_PLUGIN, "augment op '%s' reports an empty output",
                                name);
    return s;
}

static byol_status aug_alloc(int n, const struct byol_augment_info *in,
                             struct byol_augment_pipeline **out)
{
    struct byol_augment_pipeline *p = calloc(1, sizeof *p);
    if (p && n > 0)
        p->steps = calloc((size_t)n, sizeof *p->steps);
    if (!p || (n > 0 && !p->steps)) {
        free(p);
        return byol_error(BYOL_ERR_NOMEM, "augment: out of memory");
    }
    p->in[0] = p->out[0] = in->channels;
    p->in[1] = p->out[1] = in->height;
    p->in[2] = p->out[2] = in->width;
    p->max_image = aug_floats(p->in);
    *out = p;
    return BYOL_OK;
}

/* A pipeline from a list of op groups (NULL: the identity). */
static byol_status aug_build(struct byol_registry *reg, const struct byol_settings *list,
                             const struct byol_augment_info *in, struct byol_augment_pipeline **out)
{
    struct byol_augment_pipeline *p = NULL;
    int n = byol_settings_length(list);
    byol_status s = aug_alloc(n, in, &p);
    if (s != BYOL_OK)
        return s;
    struct byol_augment_info cur = *in;
    size_t nested = 0;
    for (int i = 0; i < n && s == BYOL_OK; i++) {
        int shape[3];
        s = aug_make_step(reg, byol_settings_elem(list, i), &cur, &p->steps[i], shape);
        p->n = i + 1; /* so that free() sees the step even when it failed half-made */
        if (s != BYOL_OK)
            break;
        if (p->steps[i].nested && p->steps[i].nested->scratch > nested)
            nested = p->steps[i].nested->scratch;
        cur.channels = shape[0];
        cur.height = shape[1];
        cur.width = shape[2];
        memcpy(p->out, shape, sizeof shape);
        memcpy(p->steps[i].out, shape, sizeof shape);
        if (aug_floats(shape) > p->max_image)
            p->max_image = aug_floats(shape);
    }
    if (s != BYOL_OK) {
        byol_augment_pipeline_free(p);
        return s;
    }
    p->scratch = 2 * p->max_image + nested;
    *out = p;
    return BYOL_OK;
}

byol_status byol_augment_pipeline_create(struct byol_registry *reg,
                                         const struct byol_settings *parent, const char *name,
                                         int view, const struct byol_augment_info *in,
                                         struct byol_augment_pipeline **out)
{
    if (!reg || !name || !in || !out || in->channels < 1 || in->height < 1 || in->width < 1)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_pipeline_create: bad argument");
    *out = NULL;
    const struct byol_settings *s = byol_settings_child(parent, name);
    if (!s)
        return aug_build(reg, NULL, in, out);
    if (byol_settings_is_list(s))
        return aug_build(reg, s, in, out);
    const char *preset;
    if (byol_settings_string(parent, name, NULL, &preset) != BYOL_OK)
        return byol_settings_error(s, BYOL_ERR_INVALID,
                                   "expected a list of ops ( { op = \"...\"; ... }, ... ) or a "
                                   "preset name");
    byol_status st = byol_augment_pipeline_preset(reg, preset, view, in, out);
    if (st == BYOL_ERR_NOT_FOUND && !*out)
        return byol_settings_error(s, st, "%s", byol_last_error());
    return st;
}

byol_status byol_augment_pipeline_preset(struct byol_registry *reg, const char *name, int view,
                                         const struct byol_augment_info *in,
                                         struct byol_augment_pipeline **out)
{
    char text[2048], label[128];
    if (!reg || !name || !in || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_pipeline_preset: NULL argument");
    *out = NULL;
    byol_status st = byol_augment_preset_text(name, view, in, text, sizeof text);
    if (st != BYOL_OK)
        return st;
    snprintf(label, sizeof label, "preset %s (view %d)", name, view);
    struct byol_config *cfg;
    st = byol_config_parse(text, label, &cfg);
    if (st == BYOL_OK)
        st = byol_augment_pipeline_create(reg, byol_config_root(cfg), "augment", view, in, out);
    byol_config_free(cfg);
    return st;
}

byol_status byol_augment_views_create(struct byol_registry *reg, const struct byol_settings *root,
                                      const struct byol_augment_info *in,
                                      struct byol_augment_pipeline *views[2])
{
    if (!views)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_views_create: NULL argument");
    views[0] = views[1] = NULL;
    int own2 = byol_settings_child(root, "augment_fn2") != NULL;
    byol_status st = byol_augment_pipeline_create(reg, root, "augment_fn", 1, in, &views[0]);
    if (st == BYOL_OK)
        st = byol_augment_pipeline_create(reg, root, own2 ? "augment_fn2" : "augment_fn", 2, in,
                                          &views[1]);
    if (st != BYOL_OK) {
        byol_augment_pipeline_free(views[0]);
        byol_augment_pipeline_free(views[1]);
        views[0] = views[1] = NULL;
    }
    return st;
}

void byol_augment_pipeline_output(const struct byol_augment_pipeline *p, int *c, int *h, int *w)
{
    if (c)
        *c = p ? p->out[0] : 0;
    if (h)
        *h = p ? p->out[1] : 0;
    if (w)
        *w = p ? p->out[2] : 0;
}

void byol_augment_pipeline_input(const struct byol_augment_pipeline *p, int *c, int *h, int *w)
{
    if (c)
        *c = p ? p->in[0] : 0;
    if (h)
        *h = p ? p->in[1] : 0;
    if (w)
        *w = p ? p->in[2] : 0;
}

int byol_augment_pipeline_length(const struct byol_augment_pipeline *p)
{
    return p ? p->n : 0;
}

size_t byol_augment_pipeline_scratch(const struct byol_augment_pipeline *p)
{
    return p ? p->scratch : 0;
}

/* The steps but `skip` (-1: none) on `in`, in order. Intermediates alternate between the two
 * halves of scratch; the last step run writes `out`. */
static byol_status aug_run(const struct byol_augment_pipeline *p, int skip, const float *in,
                           float *out, float *scratch, struct byol_rng *rng)
{
    const float *cur = in;
    int last = p->n - 1 == skip ? p->n - 2 : p->n - 1, ran = 0;
    for (int i = 0; i <= last; i++) {
        const struct aug_step *st = &p->steps[i];
        if (i == skip)
            continue;
        float *dst = i == last ? out : scratch + (size_t)(ran++ % 2) * p->max_image;
        byol_status s = BYOL_OK;
        if (st->ops) {
            struct byol_plugin_mark mark =
                byol_plugin_enter(st->path, "augment op", st->ops->name, "apply");
            s = st->ops->apply(st->state, cur, dst, rng);
            byol_plugin_leave(mark);
        } else if (byol_rng_uniform_f64(rng) < st->p)
            s = byol_augment_pipeline_apply(st->nested, cur, dst, scratch + 2 * p->max_image, rng);
        else
            memcpy(dst, cur, aug_floats(st->nested->in) * sizeof(float));
        if (s != BYOL_OK)
            return s;
        cur = dst;
    }
    if (cur != out) /* nothing ran */
        memcpy(out, in, aug_floats(p->out) * sizeof(float));
    return BYOL_OK;
}

byol_status byol_augment_pipeline_apply(const struct byol_augment_pipeline *p, const float *in,
                                        float *out, float *scratch, struct byol_rng *rng)
{
    if (!p || !in || !out || !rng || (p->n > 0 && !scratch))
        return byol_error(BYOL_ERR_INVALID, "byol_augment_pipeline_apply: NULL argument");
    return aug_run(p, -1, in, out, scratch, rng);
}

/* The step whose region a view takes from the original: the first op with a region, when
 * every op before it keeps the image's shape and, if there are such ops, it makes images of
 * that shape too (so they can run after it instead); -1 when there is none. */
static int aug_region_step(const struct byol_augment_pipeline *p)
{
    for (int i = 0; p && i < p->n; i++) {
        const struct aug_step *st = &p->steps[i];
        int same = memcmp(st->out, p->in, sizeof st->out) == 0;
        if (st->ops && st->ops->region) /* the ops before it then run at its output size */
            return i == 0 || same ? i : -1;
        if (!same)
            return -1;
    }
    return -1;
}

int byol_augment_pipeline_region_shape(const struct byol_augment_pipeline *p, int *c, int *h,
                                       int *w)
{
    int k = aug_region_step(p);
    if (k < 0)
        return 0;
    *c = p->steps[k].out[0];
    *h = p->steps[k].out[1];
    *w = p->steps[k].out[2];
    return 1;
}

byol_status byol_augment_pipeline_region(const struct byol_augment_pipeline *p, int in_h, int in_w,
                                         struct byol_rng *rng, int box[4])
{
    int k = aug_region_step(p);
    if (k < 0 || !rng || in_h < 1 || in_w < 1)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_pipeline_region: no region op");
    const struct aug_step *st = &p->steps[k];
    struct byol_plugin_mark mark =
        byol_plugin_enter(st->path, "augment op", st->ops->name, "region");
    byol_status s = st->ops->region(st->state, in_h, in_w, rng, box);
    byol_plugin_leave(mark);
    if (s == BYOL_OK && (box[0] < 0 || box[1] < 0 || box[2] < 1 || box[3] < 1 ||
                         box[0] + box[2] > in_h || box[1] + box[3] > in_w))
        s = byol_error(BYOL_ERR_PLUGIN,
                       "augment op '%s': region [%d, %d, %d, %d] lies outside the %dx%d image",
                       st->ops->name, box[0], box[1], box[2], box[3], in_h, in_w);
    return s;
}

byol_status byol_augment_pipeline_apply_after_region(const struct byol_augment_pipeline *p,
                                                     const float *in, float *out, float *scratch,
                                                     struct byol_rng *rng)
{
    int k = aug_region_step(p);
    if (k < 0 || !in || !out || !rng || !scratch)
        return byol_error(BYOL_ERR_INVALID,
                          "byol_augment_pipeline_apply_after_region: bad argument");
    return aug_run(p, k, in, out, scratch, rng);
}

/* ---- Multi-crop: the local views' pipeline (byol_augment_multicrop_create). ------------ */

static byol_status aug_multicrop_read(const struct byol_settings *g,
                                      const struct byol_augment_info *in, struct byol_multicrop *m)
{
    static const char *const keys[] = {"views", "size", "augment_fn", NULL};
    int64_t views, size;
    byol_status st = byol_settings_check_keys(g, keys);
    if (st == BYOL_OK)
        st = byol_settings_int(g, "views", 0, &views);
    if (st == BYOL_OK && (views < 0 || views > BYOL_AUGMENT_MAX_VIEWS - 2))
        return byol_settings_error(byol_settings_child(g, "views"), BYOL_ERR_INVALID,
                                   "local views per image must be in 0..%d, got %lld",
                                   BYOL_AUGMENT_MAX_VIEWS - 2, (long long)views);
    if (st == BYOL_OK && views > 0 && !byol_settings_has(g, "size"))
        return byol_settings_error(g, BYOL_ERR_INVALID,
                                   "missing 'size' (the local views' side in pixels, at most "
                                   "model.image_size = %d)",
                                   in->image_size);
    if (st == BYOL_OK)
        st = byol_settings_int(g, "size", in->image_size, &size);
    if (st == BYOL_OK && (size < 1 || size > in->image_size))
        return byol_settings_error(byol_settings_child(g, "size"), BYOL_ERR_INVALID,
                                   "the local views' side must be in 1..%d (model.image_size), "
                                   "got %lld",
                                   in->image_size, (long long)size);
    m->views = (int)views;
    m->size = (int)size;
    return st;
}

byol_status byol_augment_multicrop_create(struct byol_registry *reg,
                                          const struct byol_settings *root,
                                          const struct byol_augment_info *in,
                                          struct byol_multicrop *out)
{
    if (!reg || !in || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_multicrop_create: NULL argument");
    *out = (struct byol_multicrop){0};
    const struct byol_settings *g = byol_settings_child(root, "multicrop");
    if (!g)
        return BYOL_OK;
    struct byol_multicrop m = {0};
    byol_status st = aug_multicrop_read(g, in, &m);
    if (st != BYOL_OK || m.views == 0)
        return st;
    struct byol_augment_info local = *in;
    local.image_size = m.size;
    int own = byol_settings_child(g, "augment_fn") != NULL;
    st = byol_augment_pipeline_create(reg, own ? g : root, "augment_fn", 1, &local, &m.pipeline);
    int c = 0, h = 0, w = 0;
    byol_augment_pipeline_output(m.pipeline, &c, &h, &w);
    if (st == BYOL_OK && (c != in->channels || h != m.size || w != m.size)) {
        byol_augment_pipeline_free(m.pipeline);
        return byol_settings_error(
            own ? byol_settings_child(g, "augment_fn") : g, BYOL_ERR_SHAPE,
            "%s makes %dx%dx%d images, not the local views' %dx%dx%d: %s", own ? "it" : "augment_fn",
            c, h, w, in->channels, m.size, m.size,
            own ? "end it with a random_resized_crop, resize or center_crop to multicrop.size"
                : "give multicrop an augment_fn of its own");
    }
    if (st == BYOL_OK)
        *out = m;
    return st;
}

void byol_augment_multicrop_free(struct byol_multicrop *m)
{
    if (!m)
        return;
    byol_augment_pipeline_free(m->pipeline);
    *m = (struct byol_multicrop){0};
}
