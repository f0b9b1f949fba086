/* byol_train_embed (include/byol/trainer.h): the learner from the same session an evaluation
 * opens, then one split's representations (and projections, labels) written as .npy. */
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"
#include "byol/dataset.h"
#include "byol/eval.h"
#include "train_internal.h"

struct embed_run {
    struct byol_dataset *ds;
    struct byol_augment_pipeline *transform;
    struct byol_augment_pool *pool;
    float *emb, *proj;
    int *labels;
};

static void embed_run_free(struct embed_run *e)
{
    byol_augment_pool_free(e->pool);
    byol_augment_pipeline_free(e->transform);
    byol_dataset_free(e->ds);
    free(e->emb);
    free(e->proj);
    free(e->labels);
}

/* The split, its transform and a pool of backend.threads workers. */
static byol_status embed_open(struct byol_registry *reg, const struct byol_train_options *o,
                              const struct byol_learner_config *c,
                              const struct byol_train_embed_request *r, struct embed_run *e)
{
    int64_t threads;
    byol_status st = byol_eval_open_split(o->root, o->config_dir, r->split, c->in_channels,
                                          c->image_size, &e->ds);
    if (st == BYOL_OK)
        st = byol_eval_transform_create(reg, o->root, e->ds, c->in_channels, c->image_size,
                                        &e->transform);
    if (st == BYOL_OK)
        st = byol_settings_int(byol_settings_child(o->root, "backend"), "threads", 1, &threads);
    if (st == BYOL_OK)
        st = byol_augment_pool_create(threads < 1 ? 1 : threads > 64 ? 64 : (int)threads, &e->pool);
    if (st == BYOL_OK && r->labels && byol_dataset_label(e->ds, 0) < 0)
        st = byol_error(BYOL_ERR_INVALID, "--labels: the %s split has no labels", r->split);
    return st;
}

static byol_status embed_write(struct byol_learner *l, const struct byol_learner_config *c,
                               struct byol_train_embed_request *r, struct embed_run *e)
{
    size_t n = byol_dataset_count(e->ds), dim = (size_t)byol_learner_embedding_dim(l);
    size_t proj = (size_t)c->projection_size;
    e->emb = malloc(n * dim * sizeof *e->emb);
    e->proj = r->projection ? malloc(n * proj * sizeof *e->proj) : NULL;
    e->labels = r->labels ? malloc(n * sizeof *e->labels) : NULL;
    if (!e->emb || (r->projection && !e->proj) || (r->labels && !e->labels))
        return byol_error(BYOL_ERR_NOMEM, "embed: out of memory for %zu x %zu features", n, dim);
    byol_status st = byol_eval_embed_dataset(l, e->ds, e->transform, e->pool, e->emb, e->proj);
    if (st == BYOL_OK)
        st = byol_npy_write_f32(r->out, e->emb, 2, (const size_t[]){n, dim});
    if (st == BYOL_OK && r->projection)
        st = byol_npy_write_f32(r->projection, e->proj, 2, (const size_t[]){n, proj});
    for (size_t i = 0; st == BYOL_OK && e->labels && i < n; i++)
        e->labels[i] = byol_dataset_label(e->ds, i);
    if (st == BYOL_OK && r->labels)
        st = byol_npy_write_labels(r->labels, e->labels, n);
    if (st == BYOL_OK) {
        r->count = n;
        r->dim = dim;
    }
    return st;
}

byol_status byol_train_embed(struct byol_backend *be, struct byol_registry *reg,
                             const struct byol_train_options *o, struct byol_train_embed_request *r)
{
    if (!be || !reg || !o || !o->root || !r || !r->split || !r->out)
        return byol_error(BYOL_ERR_INVALID, "byol_train_embed: NULL argument");
    struct byol_train_session *s = NULL;
    struct embed_run e = {0};
    byol_status st = byol_train_session_open(be, reg, o, BYOL_TRAINER_NEEDS_CHECKPOINT, NULL, &s);
    if (st == BYOL_OK)
        st = embed_open(reg, o, byol_train_session_learner_config(s), r, &e);
    if (st == BYOL_OK)
        st = byol_train_session_start(s, 0);
    if (st == BYOL_OK)
        st = byol_train_session_blame(
            s, embed_write(byol_train_session_learner(s), byol_train_session_learner_config(s), r,
                           &e));
    embed_run_free(&e);
    byol_train_session_close(s);
    return st;
}
