/* The training loop (include/byol/trainer.h): dataset from the data group, shuffled batches,
 * learner steps, progress reports and checkpoints. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "byol/learner.h"
#include "byol/rng.h"
#include "byol/trainer.h"

/* Stream ids that keep the loop's random draws apart from everything else seeded alike. */
#define STREAM_SHUFFLE 0x5348554646ull /* "SHUFF" */

struct train_data {
    struct byol_dataset *ds;
    int shuffle;
    size_t *order; /* this epoch's sample order */
    int64_t epoch; /* the epoch `order` belongs to (-1: none yet) */
};

struct train_checkpoints {
    const char *dir;
    int64_t every;
    int64_t keep; /* step-<N> files kept (latest always is); 0 keeps all */
};

static void config_path(const char *dir, const char *path, char *out, size_t n)
{
    if (path[0] == '/' || !dir || !dir[0])
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%s/%s", dir, path);
}

/* The data group: the loader's own keys here, the dataset's (per format) in dataset.h. */
static byol_status open_data(const struct byol_settings *g, const char *dir,
                             const struct byol_learner_config *c, uint64_t seed,
                             struct train_data *d)
{
    byol_status st = byol_settings_bool(g, "shuffle", 1, &d->shuffle);
    if (st != BYOL_OK)
        return st;
    return byol_dataset_open_settings(g, dir, c->in_channels, c->image_size, seed, &d->ds);
}

/* The dataset's channels must be what the encoder takes (1-channel data may feed 3 channels);
 * the image size is the pipelines' business (check_view_shapes). */
static byol_status check_data_shape(const struct train_data *d,
                                    const struct byol_learner_config *c)
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

/* Batch `step` (drop-last epochs) as B images of in_channels x H x W (the data's size). */
static byol_status load_batch(struct train_data *d, const struct byol_learner_config *c,
                              uint64_t seed, int64_t step, float *out, float *scratch)
{
    size_t per_epoch = byol_dataset_count(d->ds) / (size_t)c->batch_size;
    int64_t epoch = step / (int64_t)per_epoch;
    size_t first = (size_t)(step % (int64_t)per_epoch) * (size_t)c->batch_size;
    if (epoch != d->epoch)
        shuffle_epoch(d, seed, epoch);
    int ch, h, w;
    byol_dataset_shape(d->ds, &ch, &h, &w);
    size_t plane = (size_t)h * (size_t)w;
    size_t image = plane * (size_t)c->in_channels;
    for (int b = 0; b < c->batch_size; b++) {
        float *dst = out + (size_t)b * image;
        byol_status st = byol_dataset_get(d->ds, d->order[first + (size_t)b], scratch);
        if (st != BYOL_OK)
            return st;
        /* Grayscale into a multi-channel encoder: the same plane in every channel. */
        for (int k = 0; k < c->in_channels; k++)
            memcpy(dst + (size_t)k * plane, scratch + (ch == 1 ? 0 : (size_t)k * plane),
                   plane * sizeof(float));
    }
    return BYOL_OK;
}

static byol_status make_dir(const char *dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return byol_error(BYOL_ERR_IO, "train.checkpoint_dir: cannot create %s: %s", tmp,
                                  strerror(errno));
            if (!c)
                break;
            *p = c;
        }
    }
    return BYOL_OK;
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

/* step-<N> first, then latest: both written atomically, so a crash at any point leaves a
 * latest that loads (the previous one, or this one). */
static byol_status save_checkpoint(struct byol_learner *l, const struct train_checkpoints *ck,
                                   int64_t step, char *path, size_t n)
{
    char latest[PATH_MAX];
    byol_status st = make_dir(ck->dir);
    if (st != BYOL_OK)
        return st;
    snprintf(path, n, "%s/step-%lld.safetensors", ck->dir, (long long)step);
    snprintf(latest, sizeof latest, "%s/latest.safetensors", ck->dir);
    st = byol_learner_save_state(l, path, 1);
    if (st == BYOL_OK)
        st = byol_learner_save_state(l, latest, 1);
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
        return byol_settings_error(byol_settings_child(train, "keep_checkpoints"),
                                   BYOL_ERR_INVALID, "must be >= 0 (0: keep all)");
    if (st == BYOL_OK)
        st = byol_settings_string(train, "init_from", NULL, &init);
    if (st != BYOL_OK)
        return st;
    if (every < 0)
        return byol_settings_error(byol_settings_child(train, "checkpoint_every"),
                                   BYOL_ERR_INVALID, "must be >= 0 (0: only at the end)");
    ck->every = every;
    init_from[0] = '\0';
    if (init)
        config_path(dir, init, init_from, n);
    return BYOL_OK;
}

struct train_run {
    struct byol_learner_config c;
    struct train_data data;
    struct train_checkpoints ck;
    struct byol_learner *learner;
    float *batch, *scratch;
    uint64_t seed;
    struct byol_augment_pipeline *views[2]; /* augment_fn, augment_fn2 */
    struct byol_augment_pool *pool;
    float *view_buf[2][2]; /* [slot][view]: the step in training and the one being prepared */
};

/* The pipelines must turn the data's images into what the encoder takes. */
static byol_status check_view_shapes(const struct train_run *t)
{
    for (int v = 0; v < 2; v++) {
        int c, h, w, s = t->c.image_size;
        byol_augment_pipeline_output(t->views[v], &c, &h, &w);
        if (c != t->c.in_channels || h != s || w != s)
            return byol_error(BYOL_ERR_SHAPE,
                              "%s makes %dx%dx%d images but the model takes %dx%dx%d "
                              "(model.encoder.in_channels x model.image_size^2): end it with a "
                              "random_resized_crop, resize or center_crop to %d",
                              v ? "augment_fn2" : "augment_fn", c, h, w, t->c.in_channels, s, s,
                              s);
    }
    return BYOL_OK;
}

/* Pipelines, worker pool (backend.threads workers) and the per-view batch buffers. */
static byol_status setup_augment(struct train_run *t, struct byol_registry *reg,
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
        st = byol_augment_pool_create(threads < 1 ? 1 : threads > 64 ? 64 : (int)threads,
                                      &t->pool);
    size_t view = (size_t)t->c.batch_size * (size_t)t->c.in_channels * (size_t)t->c.image_size *
                  (size_t)t->c.image_size;
    for (int i = 0; i < 4 && st == BYOL_OK; i++)
        if (!(t->view_buf[i / 2][i % 2] = malloc(view * sizeof(float))))
            st = byol_error(BYOL_ERR_NOMEM, "out of memory for the augmented views");
    return st;
}

/* --resume: the run continues from checkpoint_dir/latest.safetensors (in place of init_from).
 * Shuffling and augmentation are functions of (seed, step), so it ends where an uninterrupted
 * run would. */
static byol_status resume_path(const struct train_checkpoints *ck, char *path, size_t n)
{
    snprintf(path, n, "%s/latest.safetensors", ck->dir);
    if (access(path, R_OK) != 0)
        return byol_error(BYOL_ERR_NOT_FOUND, "--resume: no checkpoint to resume from: %s: %s",
                          path, strerror(errno));
    return BYOL_OK;
}

static byol_status setup(struct train_run *t, struct byol_backend *be, struct byol_registry *reg,
                         const struct byol_train_options *o)
{
    const struct byol_settings *root = o->root;
    char init_from[PATH_MAX];
    int64_t seed;
    byol_learner_config_default(&t->c);
    byol_status st = byol_settings_int(root, "seed", 0, &seed);
    if (st == BYOL_OK)
        st = byol_learner_config_read(&t->c, byol_settings_child(root, "model"),
                                      byol_settings_child(root, "train"));
    if (st == BYOL_OK)
        st = read_train_extras(byol_settings_child(root, "train"), o->config_dir, &t->ck,
                               init_from, sizeof init_from);
    if (st == BYOL_OK)
        st = open_data(byol_settings_child(root, "data"), o->config_dir, &t->c,
                       (uint64_t)seed, &t->data);
    if (st == BYOL_OK)
        st = check_data_shape(&t->data, &t->c);
    if (st == BYOL_OK)
        st = setup_augment(t, reg, root);
    if (st != BYOL_OK)
        return st;
    t->seed = (uint64_t)seed;
    t->c.seed = t->seed;
    size_t n = byol_dataset_count(t->data.ds);
    int dh, dw;
    byol_dataset_shape(t->data.ds, NULL, &dh, &dw);
    size_t image = (size_t)t->c.in_channels * (size_t)dh * (size_t)dw;
    t->data.order = malloc(n * sizeof *t->data.order);
    t->batch = malloc((size_t)t->c.batch_size * image * sizeof(float));
    t->scratch = malloc(image * sizeof(float));
    if (!t->data.order || !t->batch || !t->scratch)
        return byol_error(BYOL_ERR_NOMEM, "out of memory for the batch buffers");
    t->data.epoch = -1;
    st = byol_learner_create(be, reg, &t->c, &t->learner);
    const char *weights = NULL;
    if (st == BYOL_OK)
        st = byol_settings_string(t->c.encoder_settings, "weights", NULL, &weights);
    if (st == BYOL_OK && weights) {
        char wpath[PATH_MAX];
        config_path(o->config_dir, weights, wpath, sizeof wpath);
        st = byol_learner_load_encoder_weights(t->learner, wpath);
    }
    if (st == BYOL_OK && o->resume)
        st = resume_path(&t->ck, init_from, sizeof init_from);
    if (st == BYOL_OK && init_from[0])
        st = byol_learner_load_state(t->learner, init_from);
    return st;
}

static void teardown(struct train_run *t)
{
    byol_learner_free(t->learner);
    byol_dataset_free(t->data.ds);
    free(t->data.order);
    free(t->batch);
    free(t->scratch);
    byol_augment_pool_free(t->pool);
    for (int i = 0; i < 4; i++)
        free(t->view_buf[i / 2][i % 2]);
    byol_augment_pipeline_free(t->views[0]);
    byol_augment_pipeline_free(t->views[1]);
}

/* Load batch `step` and augment both views into slot `slot`. Image b of view v draws from the
 * stream (seed, step, b, v): a resumed run augments exactly as an uninterrupted one. */
static byol_status prepare_batch(struct train_run *t, int64_t step, int slot)
{
    byol_status st = load_batch(&t->data, &t->c, t->seed, step, t->batch, t->scratch);
    for (int v = 0; v < 2 && st == BYOL_OK; v++)
        st = byol_augment_batch(t->pool, t->views[v], t->batch, (size_t)t->c.batch_size,
                                t->view_buf[slot][v], t->seed, (uint64_t)step, v + 1);
    return st;
}

/* The prefetch thread: prepares the next batch while the learner trains on this one. */
struct train_prefetch {
    struct train_run *t;
    int64_t step;
    int slot;
    byol_status status;
    char message[1024];
};

static void *prefetch_main(void *arg)
{
    struct train_prefetch *p = arg;
    p->status = prepare_batch(p->t, p->step, p->slot);
    if (p->status != BYOL_OK)
        snprintf(p->message, sizeof p->message, "%s", byol_last_error());
    return NULL;
}

/* One learner step on slot `slot`, with batch step + 1 prepared into the other slot meanwhile. */
static byol_status step_overlapped(struct train_run *t, int64_t step, int slot, float *loss)
{
    struct train_prefetch next = {.t = t, .step = step + 1, .slot = slot ^ 1};
    pthread_t th;
    int started = 0;
    if (step + 1 < t->c.optim.total_steps) {
        if (pthread_create(&th, NULL, prefetch_main, &next) != 0)
            return byol_error(BYOL_ERR_INTERNAL, "cannot start the prefetch thread");
        started = 1;
    }
    byol_status st =
        byol_learner_step(t->learner, t->view_buf[slot][0], t->view_buf[slot][1], loss);
    if (started) {
        pthread_join(th, NULL);
        if (st == BYOL_OK && next.status != BYOL_OK)
            st = byol_error(next.status, "%s", next.message);
    }
    return st;
}

static byol_status train_loop(struct train_run *t, const struct byol_train_options *o)
{
    int64_t total = t->c.optim.total_steps;
    double t0 = now_s();
    char ckpt[PATH_MAX];
    int64_t first = byol_learner_steps_done(t->learner);
    if (first < total) {
        byol_status st = prepare_batch(t, first, 0);
        if (st != BYOL_OK)
            return st;
    }
    for (int64_t step = first; step < total; step++) {
        struct byol_train_report r = {.step = step + 1, .start_step = first, .total_steps = total};
        r.lr = byol_optim_lr_at(&t->c.optim, step);
        float loss = 0;
        byol_status st = step_overlapped(t, step, (int)((step - first) % 2), &loss);
        if (st != BYOL_OK)
            return st;
        int last = step + 1 == total;
        if (last || (t->ck.every > 0 && (step + 1) % t->ck.every == 0)) {
            st = save_checkpoint(t->learner, &t->ck, step + 1, ckpt, sizeof ckpt);
            if (st != BYOL_OK)
                return st;
            r.checkpoint = ckpt;
        }
        r.loss = loss;
        r.tau = t->c.use_momentum ? byol_learner_tau(t->learner) : 0;
        r.elapsed_s = now_s() - t0;
        r.images_per_s = (double)(step + 1 - first) * t->c.batch_size / r.elapsed_s;
        if (o->progress)
            o->progress(&r, o->user);
    }
    return BYOL_OK;
}

byol_status byol_train_run(struct byol_backend *be, struct byol_registry *reg,
                           const struct byol_train_options *o)
{
    if (!be || !reg || !o)
        return byol_error(BYOL_ERR_INVALID, "byol_train_run: NULL argument");
    struct train_run t;
    memset(&t, 0, sizeof t);
    byol_status st = setup(&t, be, reg, o);
    if (st == BYOL_OK)
        st = train_loop(&t, o);
    teardown(&t);
    return st;
}

byol_status byol_train_check(struct byol_backend *be, struct byol_registry *reg,
                             const struct byol_train_options *o)
{
    if (!be || !reg || !o)
        return byol_error(BYOL_ERR_INVALID, "byol_train_check: NULL argument");
    struct train_run t;
    memset(&t, 0, sizeof t);
    byol_status st = setup(&t, be, reg, o);
    teardown(&t);
    return st;
}
