/* The learner's settings: defaults, and the model and train groups of a config file read into
 * struct byol_learner_config, every failure naming FILE:LINE and the setting. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "byol/learner.h"
#include "byol/settings.h"

void byol_learner_config_default(struct byol_learner_config *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->encoder = "resnet18";
    c->in_channels = 3;
    c->image_size = 32;
    c->batch_size = 64;
    c->hidden_layer = NULL;
    c->hidden_index = -2;
    c->projection_size = 256;
    c->projection_hidden_size = 4096;
    c->use_momentum = 1;
    c->moving_average_decay = 0.99;
    c->tau_schedule = BYOL_TAU_CONSTANT;
    c->sem_num_simplices = 32;
    c->sem_simplex_dim = 8;
    c->sem_temperature = 0.1;
    byol_optim_config_default(&c->optim);
    c->optim.total_steps = 1000;
    c->local_crops = 0; /* multi-crop is off unless the caller turns it on */
    c->local_size = 0;
}

/* An integer setting in [lo, hi]. */
static byol_status read_int(const struct byol_settings *g, const char *key, int lo, int hi, int *v)
{
    int64_t x;
    byol_status st = byol_settings_int(g, key, *v, &x);
    if (st != BYOL_OK)
        return st;
    if (x < lo || x > hi)
        return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID,
                                   "%lld is out of range [%d, %d]", (long long)x, lo, hi);
    *v = (int)x;
    return BYOL_OK;
}

static byol_status read_int64(const struct byol_settings *g, const char *key, int64_t *v)
{
    int64_t x;
    byol_status st = byol_settings_int(g, key, *v, &x);
    if (st != BYOL_OK)
        return st;
    if (x < 0)
        return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID,
                                   "%lld must not be negative", (long long)x);
    *v = x;
    return BYOL_OK;
}

/* A float setting with lo <= x <= hi (lo_open: lo < x). */
static byol_status read_float(const struct byol_settings *g, const char *key, double lo,
                              int lo_open, double hi, double *v)
{
    double x;
    byol_status st = byol_settings_float(g, key, *v, &x);
    if (st != BYOL_OK)
        return st;
    /* 1e309 reads as inf, which an open upper bound would let through to the optimizer. */
    if (isinf(x))
        return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID,
                                   "%g is not a finite number (beyond the range of a double)", x);
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
        return byol_settings_error(byol_settings_child(g, key), BYOL_ERR_INVALID,
                                   "%g is out of range %s%g, %g]", x, lo_open ? "(" : "[", lo, hi);
    *v = x;
    return BYOL_OK;
}

/* The text after "PATH: " in a message from a parser that names the setting itself. */
static const char *message_tail(const char *msg)
{
    const char *colon = strstr(msg, ": ");
    return colon ? colon + 2 : msg;
}

/* A layer name, or a Python-style index into the encoder's children. */
static byol_status read_hidden_layer(const struct byol_settings *m, struct byol_learner_config *c)
{
    if (!byol_settings_has(m, "hidden_layer"))
        return BYOL_OK;
    int64_t index;
    const char *name;
    if (byol_settings_int(m, "hidden_layer", 0, &index) == BYOL_OK) {
        if (index < INT_MIN || index > INT_MAX)
            return byol_settings_error(byol_settings_child(m, "hidden_layer"), BYOL_ERR_INVALID,
                                       "index %lld is out of range", (long long)index);
        c->hidden_layer = NULL;
        c->hidden_index = (int)index;
        return BYOL_OK;
    }
    if (byol_settings_string(m, "hidden_layer", NULL, &name) != BYOL_OK || !name[0])
        return byol_settings_error(byol_settings_child(m, "hidden_layer"), BYOL_ERR_INVALID,
                                   "expected a layer name (\"avgpool\") or a child index (-2)");
    c->hidden_layer = name;
    return BYOL_OK;
}

static byol_status read_encoder(const struct byol_settings *m, struct byol_learner_config *c)
{
    const struct byol_settings *e = byol_settings_child(m, "encoder");
    if (!e)
        return BYOL_OK;
    int64_t in_channels;
    /* Reading a member also checks that `encoder` is a group. */
    byol_status st = byol_settings_string(e, "name", c->encoder, &c->encoder);
    if (st == BYOL_OK && !c->encoder[0])
        st = byol_settings_error(byol_settings_child(e, "name"), BYOL_ERR_INVALID,
                                 "must not be empty (an encoder name or a plugin file)");
    if (st == BYOL_OK)
        st = byol_settings_int(e, "in_channels", c->in_channels, &in_channels);
    if (st != BYOL_OK)
        return st;
    if (in_channels < 1 || in_channels > 4096)
        return byol_settings_error(byol_settings_child(e, "in_channels"), BYOL_ERR_INVALID,
                                   "%lld is out of range [1, 4096]", (long long)in_channels);
    c->in_channels = (int)in_channels;
    c->encoder_settings = e;
    return BYOL_OK;
}

static byol_status read_tau_schedule(const struct byol_settings *m, struct byol_learner_config *c)
{
    const char *s;
    byol_status st = byol_settings_string(
        m, "tau_schedule", c->tau_schedule == BYOL_TAU_COSINE ? "cosine" : "constant", &s);
    if (st != BYOL_OK || !s)
        return st;
    if (strcmp(s, "constant") == 0)
        c->tau_schedule = BYOL_TAU_CONSTANT;
    else if (strcmp(s, "cosine") == 0)
        c->tau_schedule = BYOL_TAU_COSINE;
    else
        return byol_settings_error(byol_settings_child(m, "tau_schedule"), BYOL_ERR_INVALID,
                                   "unknown schedule '%s' (known: constant, cosine)", s);
    return BYOL_OK;
}

static byol_status read_model(const struct byol_settings *m, struct byol_learner_config *c)
{
    static const char *const keys[] = {"encoder",
                                       "image_size",
                                       "hidden_layer",
                                       "projection_size",
                                       "projection_hidden_size",
                                       "use_momentum",
                                       "moving_average_decay",
                                       "tau_schedule",
                                       "use_simplicial_embeddings",
                                       "sem_num_simplices",
                                       "sem_simplex_dim",
                                       "sem_temperature",
                                       "sync_batchnorm",
                                       NULL};
    int sync_bn = 1; /* used by the training session (data parallelism); checked here */
    const int big = 1 << 24;
    byol_status st = byol_settings_check_keys(m, keys);
    if (st == BYOL_OK)
        st = read_encoder(m, c);
    if (st == BYOL_OK)
        st = read_int(m, "image_size", 1, 1 << 16, &c->image_size);
    if (st == BYOL_OK)
        st = read_hidden_layer(m, c);
    if (st == BYOL_OK)
        st = read_int(m, "projection_size", 1, big, &c->projection_size);
    if (st == BYOL_OK)
        st = read_int(m, "projection_hidden_size", 1, big, &c->projection_hidden_size);
    if (st == BYOL_OK)
        st = byol_settings_bool(m, "use_momentum", c->use_momentum, &c->use_momentum);
    if (st == BYOL_OK)
        st = read_float(m, "moving_average_decay", 0.0, 0, 1.0, &c->moving_average_decay);
    if (st == BYOL_OK)
        st = read_tau_schedule(m, c);
    if (st == BYOL_OK)
        st = byol_settings_bool(m, "use_simplicial_embeddings", c->use_simplicial_embeddings,
                                &c->use_simplicial_embeddings);
    if (st == BYOL_OK)
        st = read_int(m, "sem_num_simplices", 1, big, &c->sem_num_simplices);
    if (st == BYOL_OK)
        st = read_int(m, "sem_simplex_dim", 1, big, &c->sem_simplex_dim);
    if (st == BYOL_OK)
        st = read_float(m, "sem_temperature", 0.0, 1, INFINITY, &c->sem_temperature);
    if (st == BYOL_OK)
        st = byol_settings_bool(m, "sync_batchnorm", 1, &sync_bn);
    return st;
}

/* train.optimizer and train.lr_schedule, with the parsers' messages placed at the setting. */
static byol_status read_optim_names(const struct byol_settings *t, struct byol_optim_config *o)
{
    static const char *const kinds[] = {"adam", "adamw", "sgd", "lars"};
    const char *kind, *sched;
    /* The defaults are the config's current values, named, so that the resolved config
     * (byolctl check) shows them. */
    byol_status st = byol_settings_string(t, "optimizer", kinds[o->kind & 3], &kind);
    if (st == BYOL_OK)
        st = byol_settings_string(t, "lr_schedule",
                                  o->lr_schedule == BYOL_LR_COSINE ? "cosine" : "constant", &sched);
    if (st != BYOL_OK)
        return st;
    if (kind && (st = byol_optim_kind_parse(kind, &o->kind)) != BYOL_OK)
        return byol_settings_error(byol_settings_child(t, "optimizer"), st, "%s",
                                   message_tail(byol_last_error()));
    if (sched && (st = byol_lr_schedule_parse(sched, &o->lr_schedule)) != BYOL_OK)
        return byol_settings_error(byol_settings_child(t, "lr_schedule"), st, "%s",
                                   message_tail(byol_last_error()));
    return BYOL_OK;
}

static byol_status read_train(const struct byol_settings *t, struct byol_learner_config *c)
{
    /* The last five belong to the trainer, which reads them from the same group. */
    static const char *const keys[] = {"batch_size",
                                       "optimizer",
                                       "lr",
                                       "momentum",
                                       "nesterov",
                                       "weight_decay",
                                       "warmup_steps",
                                       "lr_schedule",
                                       "steps",
                                       "init_from",
                                       "checkpoint_every",
                                       "checkpoint_dir",
                                       "keep_checkpoints",
                                       "on_checkpoint_error",
                                       "on_nonfinite",
                                       "stop_on_collapse",
                                       "collapse_threshold",
                                       "collapse_steps",
                                       NULL};
    struct byol_optim_config *o = &c->optim;
    byol_status st = byol_settings_check_keys(t, keys);
    if (st == BYOL_OK)
        st = read_int(t, "batch_size", 1, 1 << 20, &c->batch_size);
    if (st == BYOL_OK)
        st = read_optim_names(t, o);
    if (st == BYOL_OK)
        st = read_float(t, "lr", 0.0, 0, INFINITY, &o->lr);
    if (st == BYOL_OK)
        st = read_float(t, "momentum", 0.0, 0, 1.0, &o->momentum);
    if (st == BYOL_OK)
        st = byol_settings_bool(t, "nesterov", o->nesterov, &o->nesterov);
    if (st == BYOL_OK)
        st = read_float(t, "weight_decay", 0.0, 0, INFINITY, &o->weight_decay);
    if (st == BYOL_OK)
        st = read_int64(t, "warmup_steps", &o->warmup_steps);
    if (st == BYOL_OK)
        st = read_int64(t, "steps", &o->total_steps);
    return st;
}

byol_status byol_learner_config_read(struct byol_learner_config *c,
                                     const struct byol_settings *model,
                                     const struct byol_settings *train)
{
    if (!c)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_config_read: NULL config");
    byol_status st = read_model(model, c);
    if (st == BYOL_OK)
        st = read_train(train, c);
    if (st != BYOL_OK)
        return st;
    if (c->use_simplicial_embeddings &&
        c->sem_num_simplices * (long long)c->sem_simplex_dim > (1 << 24))
        return byol_settings_error(byol_settings_child(model, "sem_num_simplices"),
                                   BYOL_ERR_INVALID, "%d simplices of %d are too many features",
                                   c->sem_num_simplices, c->sem_simplex_dim);
    return BYOL_OK;
}
