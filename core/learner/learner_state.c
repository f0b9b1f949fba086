/* Learner checkpoints (include/byol/learner.h): the networks under byol-pytorch's state_dict
 * names, batch-norm counters as I64 scalars, optionally the optimizer state and metadata;
 * loading (the whole state, or the weights only) checks every tensor's presence, dtype and
 * shape before it writes anything. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/safetensors.h"
#include "dist_internal.h"
#include "learner_internal.h"

#define STATE_SHOWN_MISSING 3

void learner_state_name(char *buf, size_t size, int target, const char *net_name)
{
    const char *owner = target ? "target_encoder" : "online_encoder";
    if (strncmp(net_name, "projector.", 10) == 0)
        snprintf(buf, size, "%s.%s", owner, net_name);
    else if (strncmp(net_name, "predictor.", 10) == 0)
        snprintf(buf, size, "online_%s", net_name);
    else
        snprintf(buf, size, "%s.net.%s", owner, net_name);
}

/* One tensor of the learner's state: where it lives and what the file must hold. */
struct state_item {
    char name[LEARNER_NAME_MAX + 64];
    enum byol_st_dtype dtype;
    int ndim;
    int64_t dims[4];
    size_t numel;
    void *data;
};

struct state_list {
    struct state_item *items;
    size_t n, cap;
};

static byol_status list_push(struct state_list *s, const struct state_item *it)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        struct state_item *g = realloc(s->items, cap * sizeof *g);
        if (!g)
            return byol_error(BYOL_ERR_NOMEM, "learner state: out of memory");
        s->items = g;
        s->cap = cap;
    }
    s->items[s->n++] = *it;
    return BYOL_OK;
}

static byol_status list_param(struct state_list *s, const char *name, const struct byol_param *p,
                              float *data)
{
    struct state_item it = {.dtype = BYOL_ST_F32, .ndim = p->ndim, .numel = p->numel, .data = data};
    int len = snprintf(it.name, sizeof it.name, "%s", name);
    if (len < 0 || (size_t)len >= sizeof it.name) /* a cut name would not match on load */
        return byol_error(BYOL_ERR_INVALID, "learner state: tensor name '%.64s...' is too long",
                          name);
    for (int k = 0; k < p->ndim; k++)
        it.dims[k] = p->dims[k];
    return list_push(s, &it);
}

/* Every parameter, buffer and batch-norm counter of one network. */
static byol_status list_net(struct state_list *s, struct byol_net *net, int target)
{
    char name[LEARNER_NAME_MAX + 32];
    byol_status st = BYOL_OK;
    for (size_t i = 0; st == BYOL_OK && i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        learner_state_name(name, sizeof name, target, p->name);
        st = list_param(s, name, p, p->data);
    }
    for (size_t i = 0; st == BYOL_OK && i < byol_net_layer_count(net); i++) {
        const char *layer = byol_net_layer_name(net, i);
        int64_t *count = byol_net_bn_batches_tracked(net, layer);
        if (!count)
            continue;
        struct state_item it = {.dtype = BYOL_ST_I64, .ndim = 0, .numel = 1, .data = count};
        learner_state_name(name, sizeof name, target, layer);
        snprintf(it.name, sizeof it.name, "%s.num_batches_tracked", name);
        st = list_push(s, &it);
    }
    return st;
}

/* "optim.<buffer>.<state name>" for each optimizer buffer and parameter, and "optim.step". */
static byol_status list_optim(struct state_list *s, struct byol_learner *l, int64_t *step)
{
    char name[LEARNER_NAME_MAX + 64];
    const float *base = byol_net_params(l->online);
    byol_status st = BYOL_OK;
    for (size_t k = 0; st == BYOL_OK && k < byol_optim_state_count(l->opt); k++) {
        float *buf = byol_optim_state_data(l->opt, k);
        for (size_t i = 0; st == BYOL_OK && i < byol_net_param_count(l->online); i++) {
            const struct byol_param *p = byol_net_param_at(l->online, i);
            if (p->role != BYOL_ROLE_PARAM)
                continue;
            learner_state_name(name, sizeof name, 0, p->name);
            char full[sizeof name + 64];
            snprintf(full, sizeof full, "optim.%s.%s", byol_optim_state_name(l->opt, k), name);
            st = list_param(s, full, p, buf + (p->data - base));
        }
    }
    struct state_item it = {.dtype = BYOL_ST_I64, .ndim = 0, .numel = 1, .data = step};
    snprintf(it.name, sizeof it.name, "optim.step");
    return st == BYOL_OK ? list_push(s, &it) : st;
}

static byol_status list_model(struct state_list *s, struct byol_learner *l)
{
    byol_status st = list_net(s, l->online, 0);
    if (st == BYOL_OK && l->target)
        st = list_net(s, l->target, 1);
    return st;
}

/* ---- Saving. -------------------------------------------------------------------------- */

/* Every key of kv: paired with a value, given once, and not the "format" save_state writes. */
static byol_status check_metadata(const char *path, const char *const *kv)
{
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (!kv[i + 1])
            return byol_error(BYOL_ERR_INVALID, "%s: metadata key '%s' has no value", path, kv[i]);
        if (strcmp(kv[i], "format") == 0)
            return byol_error(BYOL_ERR_DUPLICATE, "%s: metadata key 'format' is the learner's",
                              path);
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(kv[i], kv[j]) == 0)
                return byol_error(BYOL_ERR_DUPLICATE, "%s: metadata key '%s' given twice", path,
                                  kv[i]);
    }
    return BYOL_OK;
}

/* A state that holds NaN or infinity is never written: it would replace a good one. */
static byol_status check_finite_item(const char *path, const struct state_item *it)
{
    if (it->dtype != BYOL_ST_F32)
        return BYOL_OK;
    const float *v = it->data;
    for (size_t k = 0; k < it->numel; k++)
        if (!isfinite(v[k]))
            return byol_error(BYOL_ERR_NONFINITE,
                              "%s: not written: tensor '%s' holds NaN or infinity (element %zu), "
                              "the run has diverged",
                              path, it->name, k);
    return BYOL_OK;
}

byol_status byol_learner_save_state_meta(struct byol_learner *l, const char *path, int with_optim,
                                         const char *const *kv)
{
    if (!l || !path)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_save_state: NULL argument");
    struct state_list s = {0};
    struct byol_st_writer *w = NULL;
    int64_t step = byol_optim_steps_done(l->opt);
    byol_status st = check_metadata(path, kv);
    if (st == BYOL_OK)
        st = list_model(&s, l);
    if (st == BYOL_OK && with_optim)
        st = list_optim(&s, l, &step);
    if (st == BYOL_OK)
        st = byol_st_writer_create(&w);
    for (size_t i = 0; st == BYOL_OK && i < s.n; i++)
        st = check_finite_item(path, &s.items[i]);
    for (size_t i = 0; st == BYOL_OK && i < s.n; i++)
        st = byol_st_writer_add(w, s.items[i].name, s.items[i].dtype, s.items[i].ndim,
                                s.items[i].dims, s.items[i].data);
    if (st == BYOL_OK)
        st = byol_st_writer_metadata(w, "format", "byol-c learner state");
    for (size_t i = 0; st == BYOL_OK && kv && kv[i]; i += 2)
        st = byol_st_writer_metadata(w, kv[i], kv[i + 1]);
    if (st == BYOL_OK)
        st = byol_st_writer_save(w, path);
    byol_st_writer_free(w);
    free(s.items);
    return st;
}

byol_status byol_learner_save_state(struct byol_learner *l, const char *path, int with_optim)
{
    return byol_learner_save_state_meta(l, path, with_optim, NULL);
}

byol_status byol_state_read_metadata(const char *path, const char *key, char **out)
{
    if (!path || !key || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_state_read_metadata: NULL argument");
    *out = NULL;
    struct byol_st_file *f = NULL;
    byol_status st = byol_st_read(path, &f);
    const char *v = st == BYOL_OK ? byol_st_metadata(f, key) : NULL;
    if (v && !(*out = strdup(v)))
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory reading metadata '%s'", path, key);
    byol_st_free(f);
    return st;
}

/* ---- Loading. ------------------------------------------------------------------------- */

/* The file's tensor for `it`, checked; a missing one is counted, not an error yet. */
static byol_status check_item(const char *path, const struct byol_st_file *f,
                              const struct state_item *it, const struct byol_st_tensor **out)
{
    const struct byol_st_tensor *t = byol_st_find(f, it->name);
    *out = t;
    if (!t)
        return BYOL_OK;
    if (t->dtype != it->dtype)
        return byol_error(BYOL_ERR_FORMAT, "%s: tensor '%s' has dtype %s, the learner's is %s",
                          path, it->name, byol_st_dtype_name(t->dtype),
                          byol_st_dtype_name(it->dtype));
    int same = t->ndim == it->ndim;
    for (int k = 0; same && k < it->ndim; k++)
        same = t->dims[k] == it->dims[k];
    size_t bad = same ? byol_st_first_nonfinite(t) : t->numel;
    if (bad < t->numel)
        return byol_error(BYOL_ERR_NONFINITE,
                          "%s: tensor '%s' holds NaN or infinity (element %zu): not a usable "
                          "state",
                          path, it->name, bad);
    if (same)
        return BYOL_OK;
    char have[160], want[160];
    byol_st_format_dims(have, sizeof have, t->dims, t->ndim);
    byol_st_format_dims(want, sizeof want, it->dims, it->ndim);
    return byol_error(BYOL_ERR_SHAPE,
                      "%s: tensor '%s' has shape %s in the file, the learner's is %s", path,
                      it->name, have, want);
}

/* Every item must be in the file, with its dtype and shape. */
static byol_status check_items(const char *path, const struct byol_st_file *f,
                               const struct state_list *s, const char *what)
{
    char missing[400] = "";
    size_t n_missing = 0, used = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct byol_st_tensor *t;
        byol_status st = check_item(path, f, &s->items[i], &t);
        if (st != BYOL_OK)
            return st;
        if (!t && n_missing++ < STATE_SHOWN_MISSING && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s'%s'",
                                     n_missing > 1 ? ", " : "", s->items[i].name);
    }
    if (n_missing)
        return byol_error(BYOL_ERR_NOT_FOUND, "%s: %zu %s tensor%s missing: %s%s", path, n_missing,
                          what, n_missing > 1 ? "s are" : " is", missing,
                          n_missing > STATE_SHOWN_MISSING ? ", ..." : "");
    return BYOL_OK;
}

static int in_list(const struct state_list *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0)
            return 1;
    return 0;
}

/* An optimizer tensor of this model under any optimizer: "optim.step", or
 * "optim.<buffer>.<tensor>" with <tensor> one of the model's (exp_avg, momentum_buffer, ...). */
static int is_any_optim_item(const char *name, const struct state_list *model)
{
    if (strcmp(name, "optim.step") == 0)
        return 1;
    const char *buffer = strncmp(name, "optim.", 6) == 0 ? name + 6 : NULL;
    const char *dot = buffer ? strchr(buffer, '.') : NULL;
    return dot && dot > buffer && in_list(model, dot + 1);
}

/* Tensors the learner does not have: byol-pytorch's BYOL.net (a second name for the online
 * encoder) and run state are skipped, and so is any optimizer's state of this model when
 * only the weights are loaded (`optim` is then empty); anything else is an error. */
static byol_status check_extra(const char *path, const struct byol_st_file *f,
                               const struct state_list *model, const struct state_list *optim,
                               int weights_only)
{
    static const char *const skipped[] = {"net.", "rng.", "run.", "trainer.", NULL};
    for (size_t i = 0; i < byol_st_count(f); i++) {
        const char *name = byol_st_at(f, i)->name;
        int ok = in_list(model, name) || in_list(optim, name) ||
                 (weights_only && is_any_optim_item(name, model));
        for (int k = 0; !ok && skipped[k]; k++)
            ok = strncmp(name, skipped[k], strlen(skipped[k])) == 0;
        if (!ok && !weights_only && strncmp(name, "optim.", 6) == 0)
            return byol_error(BYOL_ERR_FORMAT,
                              "%s: optimizer tensor '%s' does not belong to this optimizer", path,
                              name);
        if (!ok)
            return byol_error(BYOL_ERR_FORMAT, "%s: tensor '%s' is not part of this learner", path,
                              name);
    }
    return BYOL_OK;
}

static int has_prefix_tensor(const struct byol_st_file *f, const char *prefix)
{
    for (size_t i = 0; i < byol_st_count(f); i++)
        if (strncmp(byol_st_at(f, i)->name, prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void apply_items(const struct byol_st_file *f, const struct state_list *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct byol_st_tensor *t = byol_st_find(f, s->items[i].name);
        memcpy(s->items[i].data, t->data, t->nbytes);
    }
}

/* The file's "optim.step" (checked: an I64 scalar, >= 0) into *step; -1 without one. */
static byol_status read_step(const char *path, const struct byol_st_file *f, int64_t *step)
{
    struct state_item it = {.name = "optim.step", .dtype = BYOL_ST_I64, .numel = 1};
    const struct byol_st_tensor *t;
    byol_status st = check_item(path, f, &it, &t);
    *step = -1;
    if (st != BYOL_OK || !t)
        return st;
    memcpy(step, t->data, sizeof *step);
    if (*step < 0)
        return byol_error(BYOL_ERR_FORMAT, "%s: optim.step is %lld", path, (long long)*step);
    return BYOL_OK;
}

/* The whole state, or (weights_only) the model's tensors with the optimizer left alone; *step
 * gets the file's optim.step (-1: none). Nothing is written unless every check passes. */
static byol_status load_checked(struct byol_learner *l, const char *path,
                                const struct byol_st_file *f, int weights_only,
                                struct state_list *model, struct state_list *optim, int64_t *step)
{
    int64_t unused = 0;
    int with_optim = !weights_only && has_prefix_tensor(f, "optim.");
    byol_status st = list_model(model, l);
    if (st == BYOL_OK && with_optim)
        st = list_optim(optim, l, &unused);
    if (st == BYOL_OK)
        st = check_items(path, f, model, "model");
    if (st == BYOL_OK)
        st = check_items(path, f, optim, "optimizer");
    if (st == BYOL_OK)
        st = check_extra(path, f, model, optim, weights_only);
    if (st == BYOL_OK)
        st = read_step(path, f, step);
    if (st != BYOL_OK)
        return st;
    apply_items(f, model);
    apply_items(f, optim);
    if (with_optim)
        byol_optim_set_steps_done(l->opt, *step);
    return BYOL_OK;
}

static byol_status load_file(struct byol_learner *l, const char *path, int weights_only,
                             int64_t *step)
{
    struct byol_st_file *f = NULL;
    struct state_list model = {0}, optim = {0};
    int64_t file_step = -1;
    byol_status st = byol_st_read(path, &f);
    if (st == BYOL_OK)
        st = load_checked(l, path, f, weights_only, &model, &optim, &file_step);
    if (st == BYOL_OK && step)
        *step = file_step;
    free(model.items);
    free(optim.items);
    byol_st_free(f);
    return st;
}

byol_status byol_learner_load_state(struct byol_learner *l, const char *path)
{
    if (!l || !path)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_load_state: NULL argument");
    return load_file(l, path, 0, NULL);
}

byol_status byol_learner_load_weights(struct byol_learner *l, const char *path, int64_t *step)
{
    if (!l || !path)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_load_weights: NULL argument");
    return load_file(l, path, 1, step);
}

/* ---- Encoder weights. ----------------------------------------------------------------- */

static int is_encoder_param(const char *name)
{
    return strncmp(name, "projector.", 10) != 0 && strncmp(name, "predictor.", 10) != 0;
}

/* Every encoder parameter and buffer must be in the file (torchvision names). */
static byol_status check_encoder_complete(struct byol_learner *l, const char *path,
                                          const struct byol_st_file *f)
{
    for (size_t i = 0; i < byol_net_param_count(l->online); i++) {
        const char *name = byol_net_param_at(l->online, i)->name;
        if (is_encoder_param(name) && !byol_st_find(f, name))
            return byol_error(BYOL_ERR_NOT_FOUND, "%s: encoder tensor '%s' is missing", path, name);
    }
    return BYOL_OK;
}

/* The target's encoder entries (a prefix-aligned copy of online's) and counters. */
static void copy_encoder_to_target(struct byol_learner *l)
{
    for (size_t i = 0; i < byol_net_param_count(l->target); i++) {
        const struct byol_param *t = byol_net_param_at(l->target, i);
        const struct byol_param *o = byol_net_param_at(l->online, i);
        if (is_encoder_param(t->name))
            memcpy(t->data, o->data, t->numel * sizeof(float));
    }
    for (size_t i = 0; i < byol_net_layer_count(l->target); i++) {
        const char *name = byol_net_layer_name(l->target, i);
        int64_t *t = byol_net_bn_batches_tracked(l->target, name);
        if (t && is_encoder_param(name))
            *t = *byol_net_bn_batches_tracked(l->online, name);
    }
}

byol_status byol_learner_load_encoder_weights(struct byol_learner *l, const char *path)
{
    if (!l || !path)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_load_encoder_weights: NULL argument");
    struct byol_st_file *f = NULL;
    byol_status st = byol_st_read(path, &f);
    if (st == BYOL_OK)
        st = check_encoder_complete(l, path, f);
    if (st == BYOL_OK) {
        st = byol_net_load_weights(l->online, f, "", 0);
        if (st != BYOL_OK)
            byol_error(st, "%s: %s", path, byol_last_error());
    }
    if (st == BYOL_OK && l->target)
        copy_encoder_to_target(l);
    byol_st_free(f);
    return st;
}

/* ---- Data parallelism: one state on every process. ------------------------------------ */

/* The batch-norm counters of both networks, packed (into `out` when it is not NULL). */
static size_t pack_counters(struct byol_learner *l, int64_t *out, int unpack)
{
    size_t n = 0;
    struct byol_net *nets[2] = {l->online, l->target};
    for (int k = 0; k < 2 && nets[k]; k++)
        for (size_t i = 0; i < byol_net_layer_count(nets[k]); i++) {
            int64_t *count = byol_net_bn_batches_tracked(nets[k], byol_net_layer_name(nets[k], i));
            if (count && out && unpack)
                *count = out[n];
            else if (count && out)
                out[n] = *count;
            n += count != NULL;
        }
    return n;
}

/* The flat arrays go as they are: a few large broadcasts, no packing copy of the weights. */
byol_status learner_broadcast(struct byol_learner *l)
{
    size_t np = byol_net_num_params(l->online);
    byol_status st = dist_broadcast(byol_net_params(l->online), np * sizeof(float));
    if (st == BYOL_OK)
        st = dist_broadcast(byol_net_buffers(l->online),
                            byol_net_num_buffers(l->online) * sizeof(float));
    if (st == BYOL_OK && l->target)
        st = dist_broadcast(byol_net_params(l->target), l->target_params * sizeof(float));
    if (st == BYOL_OK && l->target)
        st = dist_broadcast(byol_net_buffers(l->target), l->target_buffers * sizeof(float));
    for (size_t k = 0; st == BYOL_OK && k < byol_optim_state_count(l->opt); k++)
        st = dist_broadcast(byol_optim_state_data(l->opt, k), np * sizeof(float));
    size_t n = pack_counters(l, NULL, 0);
    int64_t *counters = malloc((n + 1) * sizeof *counters);
    if (st == BYOL_OK && !counters)
        st = byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    if (st == BYOL_OK) {
        pack_counters(l, counters, 0);
        counters[n] = byol_optim_steps_done(l->opt);
        st = dist_broadcast(counters, (n + 1) * sizeof *counters);
    }
    if (st == BYOL_OK) {
        pack_counters(l, counters, 1);
        byol_optim_set_steps_done(l->opt, counters[n]);
    }
    free(counters);
    return st;
}

/* 64 bits at a time through a multiply-xorshift mix: fast enough to run at every checkpoint
 * (tens of ms for a ResNet-50); two states that differ anywhere collide with a chance of about
 * 2^-64. */
static uint64_t fingerprint_add(uint64_t h, const float *x, size_t n)
{
    const unsigned char *p = (const unsigned char *)x;
    size_t bytes = n * sizeof *x;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    if (bytes % 8) {
        uint64_t w = 0;
        memcpy(&w, p + bytes - bytes % 8, bytes % 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    }
    return h ^ (h >> 32);
}

uint64_t learner_fingerprint(struct byol_learner *l)
{
    size_t np = byol_net_num_params(l->online);
    uint64_t h = fingerprint_add(0x62796f6c2d630000ull, byol_net_params(l->online), np);
    if (l->target)
        h = fingerprint_add(h, byol_net_params(l->target), l->target_params);
    for (size_t k = 0; k < byol_optim_state_count(l->opt); k++)
        h = fingerprint_add(h, byol_optim_state_data(l->opt, k), np);
    return h;
}
