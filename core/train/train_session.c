/* The session that the core prepares for a trainer (include/byol/trainer.h): config, data,
 * augmentation pipelines and their prefetch thread, learner, checkpoints, progress, and the
 * table of calls (struct byol_train_api) through which a trainer's loop drives it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "byol/augment.h"
#include "byol/byol.h"
#include "byol/dataset.h"
#include "byol/eval.h"
#include "byol/learner.h"
#include "byol/metrics.h"
#include "byol/plot.h"
#include "byol/rng.h"
#include "dist_internal.h"
#include "fileio_internal.h"
#include "learner_internal.h"
#include "log_internal.h"
#include "train_internal.h"

/* Stream ids that keep the loop's random draws apart from everything else seeded alike. */
#define STREAM_SHUFFLE 0x5348554646ull /* "SHUFF" */

struct train_data {
    struct byol_dataset *ds;
    int shuffle;
    int resize_first; /* views from Resize + CenterCrop copies, not the originals (folder) */
    size_t *order;    /* this epoch's sample order */
    int64_t epoch;    /* the epoch `order` belongs to (-1: none yet) */
    /* This process's slice of every global batch (byol_dist_shard): all of it in a run of
     * one process. */
    int64_t shard_first, shard_count;
};

struct train_checkpoints {
    const char *dir;
    int keep_going; /* on_checkpoint_error = "continue": a failed write is only reported */
    int swept;      /* stale temporary files removed (before this run's first write) */
    int64_t every;
    int64_t keep;        /* step-<N> files kept (latest always is); 0 keeps all */
    int skip_nonfinite;  /* on_nonfinite = "skip_step": a non-finite step is skipped, not fatal */
    char last[PATH_MAX]; /* the last checkpoint this run wrote, or "" */
};

/* The collapse monitor: a warning when the projection std (byol_learner_projection_std) stays
 * below fraction / sqrt(projection_size) for `steps` consecutive steps, given once per such
 * episode (it ends when the std rises above the threshold again), and with stop_on_collapse
 * the end of the run (a checkpoint first). */
#define COLLAPSE_FRACTION 0.2
#define COLLAPSE_STEPS 50
struct train_collapse {
    double fraction; /* train.collapse_threshold; 0: no monitor */
    int64_t steps;   /* train.collapse_steps */
    int stop;        /* train.stop_on_collapse */
    int64_t run;     /* consecutive steps below the threshold so far */
    int warned;      /* this episode's warning was given */
    char message[512];
};

/* This process's curves, for curves.png when there is no metrics file: one entry per step. */
struct train_history {
    double *v[5]; /* step, loss, lr, kNN top-1, projection std */
    size_t n, cap;
};

/* A batch being prepared on the prefetch thread. */
struct train_prefetch {
    struct byol_train_session *t;
    int64_t step;
    int slot;
    byol_status status;
    char message[1024];
    pthread_t thread;
    int running;
};

struct byol_train_session {
    const struct byol_train_options *o;
    const struct byol_settings *own; /* the trainer's group, or NULL */
    uint32_t needs;
    struct byol_learner_config c;
    struct train_data data;
    struct train_checkpoints ck;
    struct train_collapse collapse;
    struct byol_learner *learner;
    uint64_t seed;
    struct byol_augment_pipeline *views[2]; /* augment_fn, augment_fn2 */
    struct byol_multicrop multicrop;        /* the local views (multicrop group), if any */
    struct byol_augment_pool *pool;
    struct train_history history;
    /* [slot][view]: the step in training and the one being prepared; view 2 holds the local
     * views (multicrop.views x the batch, view-major), or is NULL. */
    float *view_buf[2][3];
    int64_t slot_step[2]; /* the batch each slot holds (-1: none) */
    struct train_prefetch next;
    int64_t first; /* steps done when the session opened */
    double t0;
    char init_from[PATH_MAX];
    char start_path[PATH_MAX]; /* the state the session started from, or "" */
    float last_loss;           /* of the last forward_backward */
    int64_t skipped;           /* steps skipped for a non-finite loss or gradient */
    float *saved_buffers;      /* skip_step: both networks' buffers before the step's forward */
    char *digest_text;         /* the config's digest (byol_config_digest), saved in checkpoints */
    struct byol_metrics *metrics; /* the metrics group's files, or NULL */
    struct byol_evaluator *eval;  /* the eval group's splits, or NULL */
    int eval_at_end;              /* eval.at_end: evaluate after the last step */
    char digest_hex[17];
    /* Data parallelism: this process's rank, the number of processes (1: none), and the stop
     * that all of them agreed on at the end of the last step. Rank 0 alone writes
     * checkpoints, metrics and progress and runs the evaluations. */
    int rank, size;
    int sync_batchnorm; /* model.sync_batchnorm: the encoder's batch norms synchronised too */
    int stopping;
};

/* The data group: the loader's own keys here, the dataset's (per format) in dataset.h. */
static byol_status open_data(const struct byol_settings *g, const char *dir,
                             const struct byol_learner_config *c, uint64_t seed,
                             struct train_data *d)
{
    byol_status st = byol_settings_bool(g, "shuffle", 1, &d->shuffle);
    if (st == BYOL_OK)
        st = byol_settings_bool(g, "resize_first", 0, &d->resize_first);
    if (st != BYOL_OK)
        return st;
    return byol_dataset_open_settings(g, dir, c->in_channels, c->image_size, seed, &d->ds);
}

/* The dataset's channels must be what the encoder takes (1-channel data may feed 3 channels);
 * the image size is the pipelines' business (check_view_shapes). */
static byol_status check_data_shape(const struct train_data *d, const struct byol_learner_config *c)
{
    int ch;
    byol_dataset_shape(d->ds, &ch, NULL, NULL);
    if (ch != c->in_channels && ch != 1)
        return byol_error(BYOL_ERR_SHAPE,
                          "model.encoder.in_channels = %d but the data's images have %d channels",
                          c->in_channels, ch);
    if (byol_dataset_count(d->ds) < (size_t)c->batch_size)
        return byol_error(BYOL_ERR_INVALID, "train.batch_size = %d but the data has %zu images",
                          c->batch_size, byol_dataset_count(d->ds));
    return BYOL_OK;
}

static void shuffle_epoch(struct train_data *d, uint64_t seed, int64_t epoch)
{
    size_t n = byol_dataset_count(d->ds);
    for (size_t i = 0; i < n; i++)
        d->order[i] = i;
    d->epoch = epoch;
    if (!d->shuffle)
        return;
    struct byol_rng r;
    byol_rng_init(&r, seed, byol_rng_stream_id(STREAM_SHUFFLE, (uint64_t)epoch, 0, 0));
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(byol_rng_u64(&r) % (i + 1));
        size_t t = d->order[i];
        d->order[i] = d->order[j];
        d->order[j] = t;
    }
}

/* The dataset indices of this process's slice of global batch `step` (drop-last epochs of
 * train.batch_size images, in an order every process computes alike): shard_count of them. */
static const size_t *batch_indices(struct train_data *d, const struct byol_learner_config *c,
                                   uint64_t seed, int64_t step)
{
    size_t per_epoch = byol_dataset_count(d->ds) / (size_t)c->batch_size;
    int64_t epoch = step / (int64_t)per_epoch;
    size_t first =
        (size_t)(step % (int64_t)per_epoch) * (size_t)c->batch_size + (size_t)d->shard_first;
    if (epoch != d->epoch)
        shuffle_epoch(d, seed, epoch);
    return d->order + first;
}

/* A run killed while writing a checkpoint leaves its temporary file (<name>.tmp.XXXXXX, see
 * byol_st_writer_save) behind; the next run in the folder removes them. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *tmp = strstr(e->d_name, ".safetensors.tmp.");
        char path[PATH_MAX];
        if (tmp && strlen(tmp) == strlen(".safetensors.tmp.XXXXXX") && e->d_name[0] != '.' &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    }
    if (d)
        closedir(d);
}

/* Remove step-<N> checkpoints older than the `keep` newest. Only files this loop names are
 * touched; a failure to remove one is reported but does not stop training. */
static void prune_checkpoints(const struct train_checkpoints *ck, int64_t newest)
{
    if (ck->keep <= 0 || ck->every <= 0)
        return;
    for (int64_t step = newest - ck->keep * ck->every; step > 0; step -= ck->every) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/step-%lld.safetensors", ck->dir, (long long)step);
        if (unlink(path) != 0 && errno == ENOENT)
            break; /* older ones went in earlier rounds */
    }
}

/* latest.safetensors becomes a second name of `path` (a hard link made under a temporary
 * name, then renamed over the old latest: atomic), so it costs no second write; where links
 * are not supported it is written out in full. */
static byol_status link_latest(struct byol_learner *l, const char *dir, const char *path,
                               const char *const *kv)
{
    char latest[PATH_MAX], tmp[PATH_MAX];
    snprintf(latest, sizeof latest, "%s/latest.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s/latest.safetensors.tmp.link00", dir);
    unlink(tmp);
    if (link(path, tmp) != 0)
        return byol_learner_save_state_meta(l, latest, 1, kv);
    if (rename(tmp, latest) != 0) {
        int err = errno;
        unlink(tmp);
        return byol_error(BYOL_ERR_IO, "%s: cannot replace: %s", latest, strerror(err));
    }
    if (byol_fsync_dir(dir) != 0)
        return byol_error(BYOL_ERR_IO, "%s: fsync of the folder failed: %s", dir, strerror(errno));
    return BYOL_OK;
}

/* step-<N> first, then latest: both atomic, so a crash at any point leaves a latest that
 * loads (the previous one, or this one). The metadata records the run: the config's resolved
 * settings and digest (checked by --resume), the step and the seed. The run's randomness is
 * counter-based, keyed by (seed, step), so no generator state needs saving. */
static byol_status save_checkpoint(struct byol_train_session *t, int64_t step, char *path, size_t n)
{
    struct train_checkpoints *ck = &t->ck;
    char step_s[24], seed_s[24], total_s[24];
    snprintf(step_s, sizeof step_s, "%lld", (long long)step);
    snprintf(total_s, sizeof total_s, "%lld", (long long)t->c.optim.total_steps);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)t->seed);
    const char *kv[] = {"config", t->digest_text, "config_digest",  t->digest_hex,
                        "step",   step_s,         "train_steps",    total_s,
                        "seed",   seed_s,         "byol_c_version", BYOL_VERSION_STRING,
                        NULL};
    byol_status st = byol_make_dirs(ck->dir, 0777);
    if (st != BYOL_OK)
        return byol_error(st, "train.checkpoint_dir: %s", byol_last_error());
    if (!ck->swept) {
        remove_stale_temps(ck->dir);
        ck->swept = 1;
    }
    snprintf(path, n, "%s/step-%lld.safetensors", ck->dir, (long long)step);
    st = byol_learner_save_state_meta(t->learner, path, 1, kv);
    if (st == BYOL_OK)
        st = link_latest(t->learner, ck->dir, path, kv);
    if (st == BYOL_OK && step % (ck->every > 0 ? ck->every : step) == 0)
        prune_checkpoints(ck, step);
    return st;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A train setting that is "stop" (the default) or `other`: *is_other says which.
 * train.on_checkpoint_error: "stop" ends the run with the write's error; "continue" reports it
 * and trains on (the last checkpoint of a run must still succeed).
 * train.on_nonfinite: "stop" ends the run at a NaN or infinite loss or gradient, before the
 * optimizer step, so no checkpoint holds it; "skip_step" skips that step's update (the step
 * still counts) and trains on. */
static byol_status read_stop_or(const struct byol_settings *train, const char *key,
                                const char *other, int *is_other)
{
    const char *mode;
    byol_status st = byol_settings_string(train, key, "stop", &mode);
    if (st != BYOL_OK)
        return st;
    *is_other = strcmp(mode, other) == 0;
    if (!*is_other && strcmp(mode, "stop") != 0)
        return byol_settings_error(byol_settings_child(train, key), BYOL_ERR_INVALID,
                                   "must be \"stop\" or \"%s\", got \"%s\"", other, mode);
    return BYOL_OK;
}

/* train.collapse_threshold, collapse_steps and stop_on_collapse: run-only settings (outside
 * the config digest), so a checkpoint written before the monitor existed still resumes. */
static byol_status read_collapse(const struct byol_settings *train, struct train_collapse *c)
{
    byol_status st =
        byol_settings_float(train, "collapse_threshold", COLLAPSE_FRACTION, &c->fraction);
    if (st == BYOL_OK && !(c->fraction >= 0 && c->fraction < 1))
        return byol_settings_error(byol_settings_child(train, "collapse_threshold"),
                                   BYOL_ERR_INVALID,
                                   "must be in [0, 1), a fraction of 1/sqrt(model.projection_size) "
                                   "(0: no collapse monitor), got %g",
                                   c->fraction);
    if (st == BYOL_OK)
        st = byol_settings_int(train, "collapse_steps", COLLAPSE_STEPS, &c->steps);
    if (st == BYOL_OK && c->steps < 1)
        return byol_settings_error(byol_settings_child(train, "collapse_steps"), BYOL_ERR_INVALID,
                                   "must be >= 1, got %lld", (long long)c->steps);
    if (st == BYOL_OK)
        st = byol_settings_bool(train, "stop_on_collapse", 0, &c->stop);
    if (st == BYOL_OK && c->stop && c->fraction == 0)
        return byol_settings_error(byol_settings_child(train, "stop_on_collapse"), BYOL_ERR_INVALID,
                                   "needs the collapse monitor, which train.collapse_threshold = "
                                   "0 turns off");
    return st;
}

static byol_status read_train_extras(const struct byol_settings *train, const char *dir,
                                     struct train_checkpoints *ck, char *init_from, size_t n)
{
    const char *init = NULL;
    int64_t every;
    byol_status st = byol_settings_string(train, "checkpoint_dir", "checkpoints", &ck->dir);
    if (st == BYOL_OK)
        st = byol_settings_int(train, "checkpoint_every", 500, &every);
    if (st == BYOL_OK)
        st = byol_settings_int(train, "keep_checkpoints", 3, &ck->keep);
    if (st == BYOL_OK && ck->keep < 0)
        return byol_settings_error(byol_settings_child(train, "keep_checkpoints"), BYOL_ERR_INVALID,
                                   "must be >= 0 (0: keep all)");
    if (st == BYOL_OK)
        st = read_stop_or(train, "on_checkpoint_error", "continue", &ck->keep_going);
    if (st == BYOL_OK)
        st = read_stop_or(train, "on_nonfinite", "skip_step", &ck->skip_nonfinite);
    if (st == BYOL_OK)
        st = byol_settings_string(train, "init_from", NULL, &init);
    if (st != BYOL_OK)
        return st;
    if (every < 0)
        return byol_settings_error(byol_settings_child(train, "checkpoint_every"), BYOL_ERR_INVALID,
                                   "must be >= 0 (0: only at the end)");
    ck->every = every;
    init_from[0] = '\0';
    if (init && !*init)
        return byol_settings_error(byol_settings_child(train, "init_from"), BYOL_ERR_INVALID,
                                   "must not be empty (a checkpoint file)");
    if (init)
        byol_path_resolve(dir, init, init_from, n);
    return BYOL_OK;
}

static volatile sig_atomic_t train_stop_flag;

void byol_train_request_stop(void)
{
    train_stop_flag = 1;
}

/* The pipelines must turn the data's images into what the encoder takes. */
static byol_status check_view_shapes(const struct byol_train_session *t)
{
    for (int v = 0; v < 2; v++) {
        int c, h, w, s = t->c.image_size;
        byol_augment_pipeline_output(t->views[v], &c, &h, &w);
        if (c != t->c.in_channels || h != s || w != s)
            return byol_error(BYOL_ERR_SHAPE,
                              "%s makes %dx%dx%d images but the model takes %dx%dx%d "
                              "(model.encoder.in_channels x model.image_size^2): end it with a "
                              "random_resized_crop, resize or center_crop to %d",
                              v ? "augment_fn2" : "augment_fn", c, h, w, t->c.in_channels, s, s, s);
    }
    return BYOL_OK;
}

/* Pipelines, worker pool (backend.threads workers) and the per-view batch buffers. */
static byol_status setup_augment(struct byol_train_session *t, struct byol_registry *reg,
                                 const struct byol_settings *root)
{
    int64_t threads;
    int h, w;
    byol_dataset_shape(t->data.ds, NULL, &h, &w);
    struct byol_augment_info info = {t->c.in_channels, h, w, t->c.image_size};
    byol_status st =
        byol_settings_int(byol_settings_child(root, "backend"), "threads", 1, &threads);
    if (st == BYOL_OK)
        st = byol_augment_views_create(reg, root, &info, t->views);
    if (st == BYOL_OK)
        st = check_view_shapes(t);
    if (st == BYOL_OK)
        st = byol_augment_multicrop_create(reg, root, &info, &t->multicrop);
    if (st == BYOL_OK)
        st = byol_augment_pool_create(threads < 1 ? 1 : threads > 64 ? 64 : (int)threads, &t->pool);
    /* The learner runs the local views through the online network too. */
    t->c.local_crops = t->multicrop.views;
    t->c.local_size = t->multicrop.size;
    size_t view = (size_t)t->data.shard_count * (size_t)t->c.in_channels * (size_t)t->c.image_size *
                  (size_t)t->c.image_size;
    size_t local = (size_t)t->multicrop.views * (size_t)t->data.shard_count *
                   (size_t)t->c.in_channels * (size_t)t->multicrop.size * (size_t)t->multicrop.size;
    for (int i = 0; i < 6 && st == BYOL_OK; i++) {
        size_t floats = i % 3 < 2 ? view : local;
        if (floats && !(t->view_buf[i / 3][i % 3] = malloc(floats * sizeof(float))))
            st = byol_error(BYOL_ERR_NOMEM, "out of memory for the augmented views");
    }
    return st;
}

/* checkpoint_dir/latest.safetensors, for --resume (in place of init_from) and evaluation.
 * Shuffling and augmentation are functions of (seed, step), so a resumed run ends where an
 * uninterrupted one would. */
static byol_status resume_path(const struct train_checkpoints *ck, char *path, size_t n,
                               const char *what)
{
    snprintf(path, n, "%s/latest.safetensors", ck->dir);
    if (access(path, R_OK) != 0)
        return byol_error(BYOL_ERR_NOT_FOUND, "%s: %s: %s", what, path, strerror(errno));
    return BYOL_OK;
}

/* The eval group (kNN monitor, final and `byol_train_eval` evaluations), when there is one;
 * in a data-parallel run only rank 0 evaluates, so only it reads the eval data. */
static byol_status setup_eval(struct byol_train_session *t, struct byol_registry *reg)
{
    const struct byol_settings *g = byol_settings_child(t->o->root, "eval");
    byol_status st = byol_settings_bool(g, "at_end", 1, &t->eval_at_end);
    if (st == BYOL_OK && t->rank == 0)
        st = byol_evaluator_open(t->o->root, t->o->config_dir, reg, t->c.in_channels,
                                 t->c.image_size, &t->eval);
    return st;
}

/* The learner (in a data-parallel run: for this process's slice of each global batch, its
 * gradients summed over the processes) and the encoder's pretrained weights. */
static byol_status setup_learner(struct byol_train_session *t, struct byol_backend *be,
                                 struct byol_registry *reg)
{
    char path[PATH_MAX];
    const char *weights = NULL;
    struct byol_learner_config local = t->c;
    local.batch_size = (int)t->data.shard_count;
    byol_status st = t->size > 1 ? learner_create_dist(be, reg, &local, t->c.batch_size,
                                                       t->sync_batchnorm, &t->learner)
                                 : byol_learner_create(be, reg, &t->c, &t->learner);
    if (st == BYOL_ERR_SHAPE && t->multicrop.views) {
        char why[1024];
        snprintf(why, sizeof why, "%s", byol_last_error());
        return byol_settings_error(
            byol_settings_child(byol_settings_child(t->o->root, "multicrop"), "size"), st,
            "the encoder cannot take %d px local views: its representation must not depend on "
            "the image size (pool the feature map, e.g. an avgpool before the hidden layer): %s",
            t->multicrop.size, why);
    }
    if (st == BYOL_OK)
        st = byol_settings_string(t->c.encoder_settings, "weights", NULL, &weights);
    if (st == BYOL_OK && weights && !*weights)
        st = byol_settings_error(byol_settings_child(t->c.encoder_settings, "weights"),
                                 BYOL_ERR_INVALID, "must not be empty (a safetensors file)");
    if (st == BYOL_OK && weights) {
        byol_path_resolve(t->o->config_dir, weights, path, sizeof path);
        st = byol_learner_load_encoder_weights(t->learner, path);
    }
    return st;
}

/* train.steps may grow on --resume (a longer run) unless a schedule runs over the total: then
 * the steps already taken would differ from those of the longer run. */
static byol_status check_total_steps(const struct byol_train_session *t, const char *path,
                                     long long there)
{
    long long here = (long long)t->c.optim.total_steps;
    const char *why = t->c.optim.lr_schedule == BYOL_LR_COSINE ? "train.lr_schedule"
                      : t->c.tau_schedule == BYOL_TAU_COSINE   ? "model.tau_schedule"
                                                               : NULL;
    if (here == there || !why)
        return BYOL_OK;
    return byol_error(BYOL_ERR_INVALID,
                      "%s: written by another config: train.steps = %lld there, %lld here, and "
                      "the cosine %s runs over it (start a new run with train.init_from)",
                      path, there, here, why);
}

/* --resume refuses a checkpoint written under another config (byol_config_digest: the
 * settings that decide the trained state); one from before digests resumes unchecked. */
static byol_status check_digest(const struct byol_train_session *t, const char *path)
{
    char *old = NULL, *steps = NULL;
    byol_status st = byol_state_read_metadata(path, "config", &old);
    if (st == BYOL_OK && old)
        st = byol_config_digest_compare(path, old, t->digest_text);
    if (st == BYOL_OK)
        st = byol_state_read_metadata(path, "train_steps", &steps);
    if (st == BYOL_OK && steps)
        st = check_total_steps(t, path, strtoll(steps, NULL, 10));
    free(old);
    free(steps);
    return st;
}

/* Load `path`: the whole state (whole: weights, optimizer state and step), else the weights
 * of a checkpoint written under any optimizer, with a fresh optimizer whose step is the
 * file's (keep_step: what an evaluation reports) or 0 (a new run). */
static byol_status load_state_from(struct byol_train_session *t, const char *path, int whole,
                                   int keep_step)
{
    int64_t step = -1;
    if (whole)
        return byol_learner_load_state(t->learner, path);
    byol_status st = byol_learner_load_weights(t->learner, path, &step);
    if (st == BYOL_OK && keep_step && step > 0)
        byol_optim_set_steps_done(byol_learner_optim(t->learner), step);
    return st;
}

/* The state to start from: the checkpoint to evaluate (NEEDS_CHECKPOINT: its weights; all of
 * it for a trainer that also trains), else latest for --resume (all of it), else the weights
 * of train.init_from (a new run: step 0, a fresh optimizer), else none. */
static byol_status load_start_state(struct byol_train_session *t)
{
    char path[PATH_MAX];
    byol_status st = BYOL_OK;
    int evaluate = (t->needs & BYOL_TRAINER_NEEDS_CHECKPOINT) != 0;
    int whole = evaluate ? (t->needs & BYOL_TRAINER_NEEDS_DATA) != 0 : t->o->resume;
    path[0] = '\0';
    if (evaluate) {
        if (!t->o->checkpoint)
            st = resume_path(&t->ck, path, sizeof path,
                             "no checkpoint to evaluate (train "
                             "first, or name one with --checkpoint "
                             "FILE; --checkpoint none evaluates the "
                             "initial weights)");
        else if (strcmp(t->o->checkpoint, "none") != 0)
            snprintf(path, sizeof path, "%s", t->o->checkpoint);
    } else if (t->o->resume) {
        st = resume_path(&t->ck, path, sizeof path, "--resume: no checkpoint to resume from");
        if (st == BYOL_OK)
            st = check_digest(t, path);
    } else {
        snprintf(path, sizeof path, "%s", t->init_from);
    }
    if (st == BYOL_OK && path[0])
        st = load_state_from(t, path, whole, evaluate);
    if (st == BYOL_OK)
        snprintf(t->start_path, sizeof t->start_path, "%s", path);
    return st;
}

/* Before a training does any work: every place it writes to takes a new file (a probe file is
 * created and removed; missing folders are made as the run makes them and removed again), so
 * a checkpoint_dir that cannot be written fails now and not when the first checkpoint is due.
 * An evaluation (NEEDS_CHECKPOINT) writes nothing. */
static byol_status probe_outputs(const struct byol_train_session *t)
{
    if (t->needs & BYOL_TRAINER_NEEDS_CHECKPOINT)
        return BYOL_OK;
    byol_status st = byol_probe_dir(t->ck.dir, 1);
    if (st != BYOL_OK)
        return byol_error(st, "train.checkpoint_dir: %s", byol_last_error());
    /* latest.safetensors is replaced by a rename: never a FIFO's or a device's. */
    char latest[PATH_MAX];
    struct stat sb;
    snprintf(latest, sizeof latest, "%s/latest.safetensors", t->ck.dir);
    if (lstat(latest, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
        return byol_error(BYOL_ERR_IO,
                          "train.checkpoint_dir: %s: not a regular file: it would be replaced",
                          latest);
    return (t->needs & BYOL_TRAINER_NEEDS_DATA) ? byol_metrics_probe(t->o->root) : BYOL_OK;
}

byol_status byol_train_session_start(struct byol_train_session *t, int check_only)
{
    byol_status st =
        byol_config_digest(byol_settings_config(t->o->root), &t->digest_text, t->digest_hex);
    if (st == BYOL_OK && !check_only && t->rank == 0)
        st = probe_outputs(t);
    /* In a data-parallel run rank 0 reads the state (so only its node needs the checkpoint
     * folder) and hands it to the others: every process starts from the same weights, even
     * where initialisation or a file could differ between them. */
    if (st == BYOL_OK && t->rank == 0)
        st = load_start_state(t);
    if (st == BYOL_OK && t->size > 1)
        st = learner_broadcast(t->learner);
    if (st != BYOL_OK)
        return st;
    t->first = byol_learner_steps_done(t->learner);
    /* Metrics belong to training (rank 0's); a check only checks their settings. */
    if ((t->needs & BYOL_TRAINER_NEEDS_DATA) && t->rank == 0)
        st = check_only ? byol_metrics_check(t->o->root)
                        : byol_metrics_open(t->o->root, t->first, &t->metrics);
    if (st != BYOL_OK)
        return st;
    t->t0 = now_s();
    return BYOL_OK;
}

/* The data, its order and the batch buffers (NEEDS_DATA). */
static byol_status setup_data(struct byol_train_session *t, struct byol_registry *reg)
{
    const struct byol_settings *root = t->o->root;
    byol_status st =
        open_data(byol_settings_child(root, "data"), t->o->config_dir, &t->c, t->seed, &t->data);
    if (st == BYOL_OK)
        st = check_data_shape(&t->data, &t->c);
    if (st == BYOL_OK)
        st = setup_augment(t, reg, root);
    if (st != BYOL_OK)
        return st;
    t->data.order = malloc(byol_dataset_count(t->data.ds) * sizeof *t->data.order);
    if (!t->data.order)
        return byol_error(BYOL_ERR_NOMEM, "out of memory for the data's order");
    t->data.epoch = -1;
    return BYOL_OK;
}

/* This process's place in a data-parallel run and its slice of each global batch: every
 * process needs at least one image per view. */
static byol_status setup_shard(struct byol_train_session *t)
{
    const struct byol_settings *model = byol_settings_child(t->o->root, "model");
    byol_status st = byol_settings_bool(model, "sync_batchnorm", 1, &t->sync_batchnorm);
    if (st != BYOL_OK)
        return st;
    t->rank = byol_dist_rank();
    t->size = byol_dist_size();
    if (t->size > 1 && t->c.batch_size < t->size)
        return byol_settings_error(
            byol_settings_child(byol_settings_child(t->o->root, "train"), "batch_size"),
            BYOL_ERR_INVALID,
            "%d is the global batch, split over the %d processes: each needs at least one "
            "image",
            t->c.batch_size, t->size);
    byol_dist_shard(t->c.batch_size, t->rank, t->size, &t->data.shard_first, &t->data.shard_count);
    return BYOL_OK;
}

static byol_status session_setup(struct byol_train_session *t, struct byol_backend *be,
                                 struct byol_registry *reg)
{
    const struct byol_settings *root = t->o->root;
    int64_t seed;
    byol_learner_config_default(&t->c);
    byol_status st = byol_settings_int(root, "seed", 0, &seed);
    if (st == BYOL_OK)
        st = byol_learner_config_read(&t->c, byol_settings_child(root, "model"),
                                      byol_settings_child(root, "train"));
    if (st == BYOL_OK)
        st = read_train_extras(byol_settings_child(root, "train"), t->o->config_dir, &t->ck,
                               t->init_from, sizeof t->init_from);
    if (st == BYOL_OK)
        st = read_collapse(byol_settings_child(root, "train"), &t->collapse);
    if (st != BYOL_OK)
        return st;
    t->seed = (uint64_t)seed;
    t->c.seed = t->seed;
    if ((st = setup_shard(t)) != BYOL_OK)
        return st;
    if ((t->needs & BYOL_TRAINER_NEEDS_DATA) && (st = setup_data(t, reg)) != BYOL_OK)
        return st;
    if ((st = setup_eval(t, reg)) != BYOL_OK)
        return st;
    return setup_learner(t, be, reg);
}

byol_status byol_train_session_open(struct byol_backend *be, struct byol_registry *reg,
                                    const struct byol_train_options *o, uint32_t needs,
                                    const struct byol_settings *own,
                                    struct byol_train_session **out)
{
    *out = NULL;
    struct byol_train_session *t = calloc(1, sizeof *t);
    if (!t)
        return byol_error(BYOL_ERR_NOMEM, "out of memory for the training session");
    t->o = o;
    t->own = own;
    t->needs = needs;
    t->slot_step[0] = t->slot_step[1] = -1;
    byol_status st = session_setup(t, be, reg);
    if (st != BYOL_OK) {
        byol_train_session_close(t);
        return st;
    }
    *out = t;
    return BYOL_OK;
}

static void prefetch_join(struct byol_train_session *t)
{
    if (t->next.running) {
        pthread_join(t->next.thread, NULL);
        t->next.running = 0;
    }
}

struct byol_learner *byol_train_session_learner(struct byol_train_session *t)
{
    return t->learner;
}

const struct byol_learner_config *
byol_train_session_learner_config(const struct byol_train_session *t)
{
    return &t->c;
}

void byol_train_session_close(struct byol_train_session *t)
{
    if (!t)
        return;
    prefetch_join(t);
    byol_learner_free(t->learner);
    byol_dataset_free(t->data.ds);
    free(t->data.order);
    byol_augment_pool_free(t->pool);
    for (int i = 0; i < 6; i++)
        free(t->view_buf[i / 3][i % 3]);
    byol_augment_pipeline_free(t->views[0]);
    byol_augment_pipeline_free(t->views[1]);
    byol_augment_multicrop_free(&t->multicrop);
    for (int i = 0; i < 5; i++)
        free(t->history.v[i]);
    free(t->digest_text);
    free(t->saved_buffers);
    byol_metrics_close(t->metrics);
    byol_evaluator_free(t->eval);
    free(t);
}

/* ---- the calls a trainer makes (struct byol_train_api) ------------------------------------ */

/* Load this process's slice of batch `step` and augment its views (both global ones, and the
 * local ones of a multi-crop run) into slot `slot`. Image b of view v draws from the stream
 * (seed, step, b, v), b its position in the global batch: a resumed run augments exactly as an
 * uninterrupted one, and any number of processes as one. */
static byol_status prepare_batch(struct byol_train_session *t, int64_t step, int slot)
{
    t->slot_step[slot] = -1;
    const size_t *indices = batch_indices(&t->data, &t->c, t->seed, step);
    struct byol_augment_pipeline *pipes[BYOL_AUGMENT_MAX_VIEWS] = {t->views[0], t->views[1]};
    float *out[BYOL_AUGMENT_MAX_VIEWS] = {t->view_buf[slot][0], t->view_buf[slot][1]};
    size_t local = (size_t)t->data.shard_count * (size_t)t->c.in_channels *
                   (size_t)t->multicrop.size * (size_t)t->multicrop.size;
    for (int k = 0; k < t->multicrop.views; k++) {
        pipes[2 + k] = t->multicrop.pipeline;
        out[2 + k] = t->view_buf[slot][2] + (size_t)k * local;
    }
    byol_status st = byol_augment_views_batch_n(
        t->pool, t->data.ds, indices, (size_t)t->data.shard_count, (size_t)t->data.shard_first,
        2 + t->multicrop.views, pipes, t->data.resize_first, t->seed, (uint64_t)step, out);
    if (st == BYOL_OK)
        t->slot_step[slot] = step;
    return st;
}

static void *prefetch_main(void *arg)
{
    struct train_prefetch *p = arg;
    p->status = prepare_batch(p->t, p->step, p->slot);
    if (p->status != BYOL_OK)
        snprintf(p->message, sizeof p->message, "%s", byol_last_error());
    return NULL;
}

static byol_status api_views(struct byol_train_session *t, int64_t k, const float **view1,
                             const float **view2)
{
    if (!(t->needs & BYOL_TRAINER_NEEDS_DATA) || k < 0)
        return byol_error(BYOL_ERR_INVALID, "views: %s",
                          k < 0 ? "negative step" : "this trainer did not ask for data");
    if (t->next.running) {
        prefetch_join(t);
        if (t->next.status != BYOL_OK && t->next.step == k)
            return byol_error(t->next.status, "%s", t->next.message);
    }
    int slot = t->slot_step[0] == k ? 0 : t->slot_step[1] == k ? 1 : -1;
    byol_status st = BYOL_OK;
    if (slot < 0 && (st = prepare_batch(t, k, slot = 0)) != BYOL_OK)
        return st;
    if (k + 1 < t->c.optim.total_steps) {
        t->next = (struct train_prefetch){.t = t, .step = k + 1, .slot = slot ^ 1};
        if (pthread_create(&t->next.thread, NULL, prefetch_main, &t->next) != 0)
            return byol_error(BYOL_ERR_INTERNAL, "cannot start the prefetch thread");
        t->next.running = 1;
    }
    *view1 = t->view_buf[slot][0];
    *view2 = t->view_buf[slot][1];
    return BYOL_OK;
}

/* The batch-norm running statistics of the online and target networks, which a forward in
 * training mode updates: saved before each step with skip_step, so that a skipped step leaves
 * no trace. */
static byol_status buffers_copy(struct byol_train_session *t, int save)
{
    struct byol_net *nets[2] = {byol_learner_online(t->learner), byol_learner_target(t->learner)};
    size_t n[2], off = 0;
    for (int k = 0; k < 2; k++)
        n[k] = nets[k] ? byol_net_num_buffers(nets[k]) : 0;
    if (save && !t->saved_buffers && n[0] + n[1] > 0 &&
        !(t->saved_buffers = malloc((n[0] + n[1]) * sizeof(float))))
        return byol_error(BYOL_ERR_NOMEM, "out of memory for train.on_nonfinite = \"skip_step\"");
    for (int k = 0; k < 2 && t->saved_buffers; k++) {
        float *b = n[k] ? byol_net_buffers(nets[k]) : NULL;
        if (b && save)
            memcpy(t->saved_buffers + off, b, n[k] * sizeof(float));
        else if (b)
            memcpy(b, t->saved_buffers + off, n[k] * sizeof(float));
        off += n[k];
    }
    return BYOL_OK;
}

static byol_status api_forward_backward(struct byol_train_session *t, const float *view1,
                                        const float *view2, float *loss)
{
    if (t->ck.skip_nonfinite && buffers_copy(t, 1) != BYOL_OK)
        return BYOL_ERR_NOMEM;
    /* A multi-crop run's local views are those of the batch whose global views these are. */
    const float *local = NULL;
    for (int slot = 0; slot < 2 && t->multicrop.views; slot++)
        if (view1 == t->view_buf[slot][0] && view2 == t->view_buf[slot][1])
            local = t->view_buf[slot][2];
    if (t->multicrop.views && !local)
        return byol_error(BYOL_ERR_INVALID,
                          "forward_backward: with multicrop.views = %d the trainer must pass the "
                          "views api->views returned (their local views go with them)",
                          t->multicrop.views);
    byol_status st = byol_learner_forward_backward_views(t->learner, view1, view2, local, loss);
    t->last_loss = st == BYOL_OK ? *loss : 0.0f;
    return st;
}

/* A NaN or infinite loss (one process's: in a data-parallel run the summed gradient decides,
 * the same on every process) or gradient: the step is skipped, or the run stops before the
 * update, so the last checkpoint stays the last good state. */
static byol_status nonfinite_step(struct byol_train_session *t)
{
    int64_t step = byol_learner_steps_done(t->learner) + 1;
    char why[512];
    snprintf(why, sizeof why, "%s", byol_last_error());
    if (t->ck.skip_nonfinite) {
        byol_optim_set_steps_done(byol_learner_optim(t->learner), step);
        buffers_copy(t, 0);
        t->skipped++;
        byol_log(BYOL_LOG_WARN,
                 "step %lld: %s: step skipped (train.on_nonfinite = \"skip_step\"; "
                 "%lld so far)",
                 (long long)step, why, (long long)t->skipped);
        return BYOL_OK;
    }
    return byol_error(BYOL_ERR_NONFINITE,
                      "step %lld: %s: training diverged (lr %g at this step): lower train.lr or "
                      "raise train.warmup_steps; %s%s (train.on_nonfinite = \"skip_step\" skips "
                      "such steps)",
                      (long long)step, why, byol_optim_lr_at(&t->c.optim, step - 1),
                      t->ck.last[0] ? "the last checkpoint is intact: "
                                    : "no checkpoint was written",
                      t->ck.last);
}

static byol_status api_optimizer_step(struct byol_train_session *t)
{
    byol_status st = t->size == 1 && !isfinite(t->last_loss)
                         ? byol_error(BYOL_ERR_NONFINITE, "the loss is %s",
                                      isnan(t->last_loss) ? "NaN" : "infinite")
                         : byol_learner_optimizer_step(t->learner);
    return st == BYOL_ERR_NONFINITE ? nonfinite_step(t) : st;
}

static void api_zero_grad(struct byol_train_session *t)
{
    byol_learner_zero_grad(t->learner);
}

static byol_status api_update_target(struct byol_train_session *t)
{
    return byol_learner_update_target(t->learner);
}

/* One process alone must never leave the loop: in a data-parallel run the answer is the stop
 * that every process agreed on in end_step. */
static int api_stop_requested(const struct byol_train_session *t)
{
    return t->size > 1 ? t->stopping : train_stop_flag != 0;
}

byol_status byol_train_session_blame(const struct byol_train_session *t, byol_status st)
{
    if (st != BYOL_ERR_NONFINITE || !(t->needs & BYOL_TRAINER_NEEDS_CHECKPOINT))
        return st;
    return byol_error(st, "%s: %s", t->start_path[0] ? t->start_path : "the initial weights",
                      byol_last_error());
}

static byol_status api_evaluate(struct byol_train_session *t, int linear,
                                struct byol_train_eval_report *out)
{
    struct byol_eval_result res;
    memset(out, 0, sizeof *out);
    out->step = byol_learner_steps_done(t->learner);
    out->linear_top1 = NAN;
    /* Only rank 0 of a data-parallel run evaluates (the weights are the same everywhere). */
    if (t->rank != 0) {
        out->knn_top1 = NAN;
        return BYOL_OK;
    }
    if (!t->eval)
        return byol_error(BYOL_ERR_INVALID,
                          "evaluation needs an eval group: eval = { train_images = ...; "
                          "train_labels = ...; test_images = ...; test_labels = ...; }");
    double t0 = now_s();
    /* Reports for this evaluation only: the kNN monitor between steps stays quiet. */
    byol_evaluator_set_progress(t->eval, t->o->eval_progress, t->o->user);
    byol_status st = linear ? byol_evaluator_run(t->eval, t->learner, &res)
                            : byol_evaluator_knn(t->eval, t->learner, &out->knn_top1);
    byol_evaluator_set_progress(t->eval, NULL, NULL);
    if (st != BYOL_OK)
        return byol_train_session_blame(t, st);
    out->knn_k = byol_evaluator_knn_k(t->eval);
    /* The encoder's evaluation alone (features, kNN, probe); a raw-pixel baseline has its own
     * time in the detail. */
    out->seconds = linear ? res.seconds : now_s() - t0;
    if (linear) {
        out->knn_top1 = res.knn_top1;
        out->linear_top1 = res.linear_top1;
        out->n_train = res.n_train;
        out->n_test = res.n_test;
        out->dim = res.dim;
        out->detail = &res;
        if (t->o->evaluated)
            t->o->evaluated(out, t->o->user);
        out->detail = NULL; /* it lives on this stack */
    }
    return BYOL_OK;
}

/* Before a data-parallel checkpoint: the processes' weights must still be one state (the
 * reductions give every process the same sums), or rank 0's file would not be the run's. */
static byol_status check_replicas(struct byol_train_session *t, int64_t done)
{
    int same = 1;
    byol_status st = dist_same_u64(learner_fingerprint(t->learner), &same);
    if (st == BYOL_OK && !same)
        st = byol_error(BYOL_ERR_INTERNAL,
                        "after step %lld the processes' weights differ: the MPI reductions did "
                        "not give every process the same sums",
                        (long long)done);
    return st;
}

/* The collapse monitor after step `done` with projection std `std`: *warning is the warning
 * when it is given now (rank 0 also logs it), else NULL. 1 when the run is to stop. Every
 * process of a data-parallel run sees the same std (the global batch's), so all decide
 * alike. */
static int collapse_watch(struct byol_train_session *t, int64_t done, double std,
                          const char **warning)
{
    struct train_collapse *c = &t->collapse;
    double healthy = 1.0 / sqrt((double)t->c.projection_size);
    *warning = NULL;
    if (!(c->fraction > 0))
        return 0;
    if (!(std < c->fraction * healthy)) { /* NAN (a skipped step) ends an episode too */
        c->run = 0;
        c->warned = 0;
        return 0;
    }
    if (++c->run < c->steps || c->warned)
        return 0;
    c->warned = 1;
    snprintf(c->message, sizeof c->message,
             "collapse: projection std %.2g (healthy \u2248 %.2g) for %lld steps (to step %lld) "
             "\u2014 lower the learning rate (train.lr) or train.weight_decay, or raise "
             "train.warmup_steps; keep the predictor and the momentum target "
             "(model.use_momentum = true); see \"Is my run healthy?\" in the README",
             std, healthy, (long long)c->run, (long long)done);
    if (t->rank == 0 && !c->stop) /* else the run's error says it */
        byol_log(BYOL_LOG_WARN, "%s", c->message);
    *warning = c->message;
    return c->stop;
}

/* Step `row`'s values into the history; a failed allocation only ends the history. */
static void history_add(struct train_history *h, const struct byol_metrics_row *row)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        for (int i = 0; i < 5; i++) {
            double *grown = realloc(h->v[i], cap * sizeof *grown);
            if (!grown)
                return;
            h->v[i] = grown;
        }
        h->cap = cap;
    }
    double v[5] = {(double)row->step, row->loss, row->lr, 100 * row->knn_top1, row->proj_std};
    for (int i = 0; i < 5; i++)
        h->v[i][h->n] = v[i];
    h->n++;
}

/* curves.png beside the checkpoints: drawn from the metrics file when the run writes one (the
 * whole run, resumes included), else from this process's history. A picture never stops a
 * run: a failure is a warning. */
static void write_curves(const struct byol_train_session *t)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/curves.png", t->ck.dir);
    const char *table = byol_metrics_table_path(t->metrics);
    byol_status st;
    if (table)
        st = byol_plot_metrics(table, path);
    else {
        const struct train_history *h = &t->history;
        const double *x = h->v[0];
        struct byol_plot_panel p[4] = {
            {"loss", {{"loss", x, h->v[1], h->n}}, 1, 0},
            {"learning rate", {{"lr", x, h->v[2], h->n}}, 1, 0},
            {"knn top-1 (%)", {{"knn", x, h->v[3], h->n}}, 1, 0},
            {"projection std (0: collapse)", {{"std", x, h->v[4], h->n}}, 1, 1}};
        st = h->n ? byol_plot_write_png(path, "step", p, 4) : BYOL_OK;
    }
    if (st != BYOL_OK)
        byol_log(BYOL_LOG_WARN, "curves.png not written: %s", byol_last_error());
}

/* After step k: a checkpoint when due (every N, the last step, a requested stop), the kNN
 * monitor when due, the metrics row and progress report, and after the last step the run's
 * evaluation. In a data-parallel run every process takes the decisions alike (a stop asked of
 * any of them counts for all) and rank 0 does the writing and evaluating. */
static byol_status api_end_step(struct byol_train_session *t, int64_t k, double loss)
{
    int64_t total = t->c.optim.total_steps, done = k + 1;
    char ckpt[PATH_MAX];
    struct byol_train_report r = {
        .step = done, .start_step = t->first, .total_steps = total, .loss = loss, .knn_top1 = NAN};
    r.lr = byol_optim_lr_at(&t->c.optim, k);
    char why[1024];
    byol_status st = dist_any(train_stop_flag, &t->stopping);
    if (st != BYOL_OK)
        return st;
    r.proj_std = byol_learner_projection_std(t->learner);
    r.eff_rank = NAN;
    int collapsed = collapse_watch(t, done, r.proj_std, &r.collapse);
    if (done == total || (t->ck.every > 0 && done % t->ck.every == 0) || t->stopping || collapsed) {
        if (t->size > 1 && (st = check_replicas(t, done)) != BYOL_OK)
            return st;
        if (t->rank == 0)
            st = save_checkpoint(t, done, ckpt, sizeof ckpt);
        if (st == BYOL_OK && t->rank == 0)
            snprintf(t->ck.last, sizeof t->ck.last, "%s", ckpt);
        if (st != BYOL_OK && (!t->ck.keep_going || done == total || t->stopping || collapsed))
            return st;
        if (st != BYOL_OK) {
            snprintf(why, sizeof why, "%s", byol_last_error());
            r.checkpoint_error = why;
        } else if (t->rank == 0) {
            r.checkpoint = ckpt;
        }
    }
    int64_t every = byol_evaluator_every(t->eval);
    if (every > 0 && done % every == 0 && done != total &&
        (st = byol_evaluator_knn_rank(t->eval, t->learner, &r.knn_top1, &r.eff_rank)) != BYOL_OK)
        return st;
    r.tau = t->c.use_momentum ? byol_learner_tau(t->learner) : 0;
    r.elapsed_s = now_s() - t->t0;
    r.images_per_s = (double)(done - t->first) * t->c.batch_size / r.elapsed_s;
    struct byol_metrics_row row = {done,        r.loss,     r.lr,       r.tau,     r.images_per_s,
                                   r.elapsed_s, r.knn_top1, r.proj_std, r.eff_rank};
    st = byol_metrics_log(t->metrics, &row);
    if (t->rank == 0)
        history_add(&t->history, &row);
    if (st == BYOL_OK && r.checkpoint)
        write_curves(t);
    if (t->o->progress && t->rank == 0)
        t->o->progress(&r, t->o->user);
    if (st == BYOL_OK && collapsed)
        return byol_error(BYOL_ERR_INVALID,
                          "step %lld: %s; the run stopped (train.stop_on_collapse = true): %s%s",
                          (long long)done, t->collapse.message,
                          t->ck.last[0] ? "the last checkpoint is " : "no checkpoint was written",
                          t->ck.last);
    /* The run's evaluation (kNN only with at_end = false and a monitor) comes last. */
    struct byol_train_eval_report ev;
    if (st == BYOL_OK && done == total && t->eval && (t->eval_at_end || every > 0))
        st = api_evaluate(t, t->eval_at_end, &ev);
    return st;
}

static const struct byol_settings *api_config(const struct byol_train_session *t)
{
    return t->o->root;
}

static const struct byol_settings *api_own_settings(const struct byol_train_session *t)
{
    return t->own;
}

static int64_t api_first_step(const struct byol_train_session *t)
{
    return t->first;
}

static int64_t api_total_steps(const struct byol_train_session *t)
{
    return t->c.optim.total_steps;
}

/* Images per view in api->views: this process's slice of train.batch_size. */
static int api_batch_size(const struct byol_train_session *t)
{
    return (int)t->data.shard_count;
}

static double api_lr_at(const struct byol_train_session *t, int64_t k)
{
    return byol_optim_lr_at(&t->c.optim, k);
}

static const struct byol_train_api train_api = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_train_api),
    .config = api_config,
    .own_settings = api_own_settings,
    .first_step = api_first_step,
    .total_steps = api_total_steps,
    .batch_size = api_batch_size,
    .lr_at = api_lr_at,
    .views = api_views,
    .forward_backward = api_forward_backward,
    .optimizer_step = api_optimizer_step,
    .zero_grad = api_zero_grad,
    .update_target = api_update_target,
    .end_step = api_end_step,
    .evaluate = api_evaluate,
    .stop_requested = api_stop_requested,
};

const struct byol_train_api *byol_train_api(void)
{
    return &train_api;
}
