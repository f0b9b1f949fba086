/* The augmentation worker pool: a batch's images are handed out one at a time to the workers
 * and the calling thread. Each image draws from its own stream, so who runs it never matters. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment_pool_internal.h"
#include "byol/augment.h"

struct pool_job {
    byol_pool_fn fn;
    void *ctx;
    size_t n;
};

struct byol_augment_pool {
    int threads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation; /* bumped per batch; workers run each generation once */
    int running;         /* workers still busy with this generation */
    int stop;
    struct pool_job job;
    atomic_size_t next;
    byol_status status; /* the first failure of this batch, and its message */
    char message[1024];
    float **scratch; /* per thread */
    size_t scratch_floats;
};

struct pool_worker_arg {
    struct byol_augment_pool *pool;
    int index;
};

static void pool_fail(struct byol_augment_pool *pool, byol_status st)
{
    pthread_mutex_lock(&pool->mu);
    if (pool->status == BYOL_OK) {
        pool->status = st;
        snprintf(pool->message, sizeof pool->message, "%s", byol_last_error());
    }
    pthread_mutex_unlock(&pool->mu);
}

/* Take images until none are left. */
static void pool_work(struct byol_augment_pool *pool, int index)
{
    const struct pool_job *j = &pool->job;
    for (;;) {
        size_t b = atomic_fetch_add(&pool->next, 1);
        if (b >= j->n)
            return;
        byol_status st = j->fn(j->ctx, b, pool->scratch[index]);
        if (st != BYOL_OK)
            pool_fail(pool, st);
    }
}

static void *pool_main(void *arg)
{
    struct pool_worker_arg *a = arg;
    struct byol_augment_pool *pool = a->pool;
    int index = a->index;
    uint64_t seen = 0;
    free(a);
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mu);
        pool_work(pool, index);
        pthread_mutex_lock(&pool->mu);
        if (--pool->running == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static void pool_stop(struct byol_augment_pool *pool, int started)
{
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < started; i++)
        pthread_join(pool->workers[i], NULL);
}

static byol_status pool_start(struct byol_augment_pool *pool)
{
    for (int i = 0; i < pool->threads - 1; i++) {
        struct pool_worker_arg *a = malloc(sizeof *a);
        if (!a || (a->pool = pool, a->index = i + 1,
                   pthread_create(&pool->workers[i], NULL, pool_main, a) != 0)) {
            free(a);
            pool_stop(pool, i);
            return byol_error(BYOL_ERR_INTERNAL, "augment: cannot start worker thread %d", i + 1);
        }
    }
    return BYOL_OK;
}

byol_status byol_augment_pool_create(int threads, struct byol_augment_pool **out)
{
    if (!out || threads < 1 || threads > 1024)
        return byol_error(BYOL_ERR_INVALID, "augment pool: %d threads (need 1..1024)", threads);
    struct byol_augment_pool *pool = calloc(1, sizeof *pool);
    if (pool) {
        pool->workers = calloc((size_t)threads, sizeof *pool->workers);
        pool->scratch = calloc((size_t)threads, sizeof *pool->scratch);
    }
    if (!pool || !pool->workers || !pool->scratch) {
        if (pool) {
            free(pool->workers);
            free(pool->scratch);
        }
        free(pool);
        return byol_error(BYOL_ERR_NOMEM, "augment pool: out of memory");
    }
    pool->threads = threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    byol_status st = pool_start(pool);
    if (st != BYOL_OK) {
        pool->threads = 1; /* nothing left to join */
        byol_augment_pool_free(pool);
        return st;
    }
    *out = pool;
    return BYOL_OK;
}

void byol_augment_pool_free(struct byol_augment_pool *pool)
{
    if (!pool)
        return;
    pool_stop(pool, pool->threads - 1);
    for (int i = 0; i < pool->threads; i++)
        free(pool->scratch[i]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->scratch);
    free(pool->workers);
    free(pool);
}

/* Every thread's scratch holds at least `floats`. */
static byol_status pool_scratch(struct byol_augment_pool *pool, size_t floats)
{
    if (floats <= pool->scratch_floats)
        return BYOL_OK;
    for (int i = 0; i < pool->threads; i++) {
        float *grown = realloc(pool->scratch[i], floats * sizeof(float));
        if (!grown)
            return byol_error(BYOL_ERR_NOMEM, "augment pool: out of memory for scratch");
        pool->scratch[i] = grown;
    }
    pool->scratch_floats = floats;
    return BYOL_OK;
}

byol_status byol_augment_pool_run(struct byol_augment_pool *pool, size_t n, size_t scratch_floats,
                                  byol_pool_fn fn, void *ctx)
{
    byol_status st = pool_scratch(pool, scratch_floats + 1);
    if (st != BYOL_OK)
        return st;
    pthread_mutex_lock(&pool->mu);
    pool->job = (struct pool_job){fn, ctx, n};
    atomic_store(&pool->next, 0);
    pool->status = BYOL_OK;
    pool->running = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    pool_work(pool, 0);
    pthread_mutex_lock(&pool->mu);
    while (pool->running > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    st = pool->status;
    pthread_mutex_unlock(&pool->mu);
    return st == BYOL_OK ? BYOL_OK : byol_error(st, "%s", pool->message);
}

/* One view of a batch held in memory. */
struct batch_job {
    const struct byol_augment_pipeline *p;
    const float *in;
    float *out;
    size_t first, in_floats, out_floats; /* image b is image first + b of its batch */
    uint64_t seed, step;
    int view;
};

static byol_status batch_image(void *ctx, size_t b, float *scratch)
{
    const struct batch_job *j = ctx;
    struct byol_rng rng;
    byol_augment_rng(&rng, j->seed, j->step, j->first + b, j->view);
    return byol_augment_pipeline_apply(j->p, j->in + b * j->in_floats, j->out + b * j->out_floats,
                                       scratch, &rng);
}

byol_status byol_augment_batch(struct byol_augment_pool *pool,
                               const struct byol_augment_pipeline *p, const float *in, size_t n,
                               float *out, uint64_t seed, uint64_t step, int view)
{
    return byol_augment_batch_at(pool, p, in, n, 0, out, seed, step, view);
}

byol_status byol_augment_batch_at(struct byol_augment_pool *pool,
                                  const struct byol_augment_pipeline *p, const float *in, size_t n,
                                  size_t first, float *out, uint64_t seed, uint64_t step, int view)
{
    if (!pool || !p || (n && (!in || !out)))
        return byol_error(BYOL_ERR_INVALID, "byol_augment_batch: NULL argument");
    int c, h, w;
    byol_augment_pipeline_output(p, &c, &h, &w);
    struct batch_job job = {.p = p,
                            .in = in,
                            .out = out,
                            .first = first,
                            .seed = seed,
                            .step = step,
                            .view = view,
                            .out_floats = (size_t)c * h * w};
    byol_augment_pipeline_input(p, &c, &h, &w);
    job.in_floats = (size_t)c * h * w;
    return byol_augment_pool_run(pool, n, byol_augment_pipeline_scratch(p), batch_image, &job);
}
