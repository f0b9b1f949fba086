/* The training loop (include/byol/trainer.h): dataset from the data group, shuffled batches,
 * learner steps, progress reports and checkpoints. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
};

static void config_path(const char *dir, const char *path, char *out, size_t n)
{
    if (path[0] == '/' || !dir || !dir[0])
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%s/%s", dir, path);
}

static byol_status open_data(const struct byol_settings *g, const char *dir,
                             struct train_data *d)
{
    static const char *const keys[] = {"format", "images", "labels", "shuffle", "length", NULL};
    const char *format, *images, *labels;
    byol_status st = byol_settings_check_keys(g, keys);
    if (st == BYOL_OK)
        st = byol_settings_string(g, "format", "idx", &format);
    if (st == BYOL_OK)
        st = byol_settings_string(g, "images", NULL, &images);
    if (st == BYOL_OK)
        st = byol_settings_string(g, "labels", NULL, &labels);
    if (st == BYOL_OK)
        st = byol_settings_bool(g, "shuffle", 1, &d->shuffle);
    if (st != BYOL_OK)
        return st;
    if (strcmp(format, "idx") != 0)
        return byol_settings_error(byol_settings_child(g, "format"), BYOL_ERR_UNSUPPORTED,
                                   "'%s' is not supported yet (supported: idx)", format);
    if (!images)
        return byol_settings_error(g, BYOL_ERR_INVALID, "missing 'images' (the IDX image file)");
    char ipath[PATH_MAX], lpath[PATH_MAX];
    config_path(dir, images, ipath, sizeof ipath);
    if (labels)
        config_path(dir, labels, lpath, sizeof lpath);
    return byol_dataset_open_idx(ipath, labels ? lpath : NULL, &d->ds);
}

/* The dataset's images must be what the encoder takes (1-channel data may feed 3 channels). */
static byol_status check_data_shape(const struct train_data *d,
                                    const struct byol_learner_config *c)
{
    int ch, h, w;
    byol_dataset_shape(d->ds, &ch, &h, &w);
    if (h != c->image_size || w != c->image_size)
        return byol_error(BYOL_ERR_SHAPE,
                          "model.image_size = %d but the data's images are %dx%d (resizing comes "
                          "with the augmentation pipelines)",
                          c->image_size, h, w);
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

/* Batch `step` (drop-last epochs) as B images of in_channels x S x S. */
static byol_status load_batch(struct train_data *d, const struct byol_learner_config *c,
                              uint64_t seed, int64_t step, float *out, float *scratch)
{
    size_t per_epoch = byol_dataset_count(d->ds) / (size_t)c->batch_size;
    int64_t epoch = step / (int64_t)per_epoch;
    size_t first = (size_t)(step % (int64_t)per_epoch) * (size_t)c->batch_size;
    if (epoch != d->epoch)
        shuffle_epoch(d, seed, epoch);
    int ch;
    byol_dataset_shape(d->ds, &ch, NULL, NULL);
    size_t plane = (size_t)c->image_size * (size_t)c->image_size;
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
};

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
        st = open_data(byol_settings_child(root, "data"), o->config_dir, &t->data);
    if (st == BYOL_OK)
        st = check_data_shape(&t->data, &t->c);
    if (st != BYOL_OK)
        return st;
    t->seed = (uint64_t)seed;
    t->c.seed = t->seed;
    size_t n = byol_dataset_count(t->data.ds);
    size_t image = (size_t)t->c.in_channels * (size_t)t->c.image_size * (size_t)t->c.image_size;
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
}

static byol_status train_loop(struct train_run *t, const struct byol_train_options *o)
{
    int64_t total = t->c.optim.total_steps;
    double t0 = now_s();
    char ckpt[PATH_MAX];
    int64_t first = byol_learner_steps_done(t->learner);
    for (int64_t step = first; step < total; step++) {
        struct byol_train_report r = {.step = step + 1, .total_steps = total};
        r.lr = byol_optim_lr_at(&t->c.optim, step);
        float loss = 0;
        byol_status st = load_batch(&t->data, &t->c, t->seed, step, t->batch, t->scratch);
        /* Identity augmentation: both views are the batch as loaded. */
        if (st == BYOL_OK)
            st = byol_learner_step(t->learner, t->batch, t->batch, &loss);
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
