/* The training-step benchmark behind `byolctl bench` (include/byol/bench.h): a learner from the
 * config, synthetic images (augmented by the config's pipelines, or already normalised noise),
 * warm-up, then per-step wall-clock times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "byol/augment.h"
#include "byol/bench.h"
#include "byol/dataset.h"
#include "byol/learner.h"
#include "byol/net.h"
#include "byol/rng.h"
#include "learner_internal.h"

#define BENCH_STREAM 0x42454e4348ull /* "BENCH" */

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Raw images in [0, 1) for the augmentations, or, without them, images like a normalised
 * dataset's: roughly zero mean, unit spread. */
static void fill_images(float *x, size_t n, uint64_t seed, int raw)
{
    struct byol_rng r;
    byol_rng_init(&r, seed, byol_rng_stream_id(BENCH_STREAM, 0, 0, 0));
    for (size_t i = 0; i < n; i++)
        x[i] = raw ? byol_rng_uniform(&r) : 4.0f * byol_rng_uniform(&r) - 2.0f;
}

/* What a benchmark run holds. */
struct bench_run {
    struct byol_learner_config c;
    struct byol_learner *l;
    float *images;  /* one view's batch */
    float *view[2]; /* augmented views (augment only) */
    struct byol_augment_pipeline *views[2];
    struct byol_multicrop mc; /* the config's local views (multicrop group), if any */
    float *local;             /* mc.views x the batch of them, view-major */
    struct byol_augment_pool *pool;
    int threads;
    double *times;
};

/* The config's two pipelines for images of h x w and a pool of backend.threads threads, as
 * the trainer makes them; the view buffers hold a batch of their outputs. */
static byol_status bench_augment_setup(struct bench_run *b, struct byol_registry *reg,
                                       const struct byol_settings *root, int h, int w)
{
    const struct byol_learner_config *c = &b->c;
    struct byol_augment_info info = {c->in_channels, h, w, c->image_size};
    int64_t threads = 1;
    byol_status st =
        byol_settings_int(byol_settings_child(root, "backend"), "threads", 1, &threads);
    b->threads = threads < 1 ? 1 : threads > 64 ? 64 : (int)threads;
    if (st == BYOL_OK)
        st = byol_augment_views_create(reg, root, &info, b->views);
    if (st == BYOL_OK)
        st = byol_augment_pool_create(b->threads, &b->pool);
    for (int v = 0; v < 2 && st == BYOL_OK; v++) {
        int oc, oh, ow;
        byol_augment_pipeline_output(b->views[v], &oc, &oh, &ow);
        size_t n = (size_t)c->batch_size * (size_t)oc * (size_t)oh * (size_t)ow;
        if (!(b->view[v] = malloc(n * sizeof(float))))
            st = byol_error(BYOL_ERR_NOMEM, "bench: out of memory for the views");
    }
    return st;
}

/* Floats of one local view of the batch. */
static size_t bench_local_floats(const struct bench_run *b)
{
    return (size_t)b->c.batch_size * (size_t)b->c.in_channels * (size_t)b->mc.size *
           (size_t)b->mc.size;
}

/* The multicrop group, as the trainer reads it: the learner then runs the local views too
 * (augmented by their pipeline, or like the batch itself without augmentation). */
static byol_status bench_multicrop_setup(struct bench_run *b, struct byol_registry *reg,
                                         const struct byol_settings *root, int h, int w)
{
    struct byol_augment_info info = {b->c.in_channels, h, w, b->c.image_size};
    byol_status st = byol_augment_multicrop_create(reg, root, &info, &b->mc);
    b->c.local_crops = b->mc.views;
    b->c.local_size = b->mc.size;
    size_t n = (size_t)b->mc.views * bench_local_floats(b);
    if (st == BYOL_OK && n && !(b->local = malloc(n * sizeof(float))))
        st = byol_error(BYOL_ERR_NOMEM, "bench: out of memory for the local views");
    return st;
}

static void bench_free(struct bench_run *b)
{
    byol_learner_free(b->l);
    byol_augment_pool_free(b->pool);
    byol_augment_pipeline_free(b->views[0]);
    byol_augment_pipeline_free(b->views[1]);
    byol_augment_multicrop_free(&b->mc);
    free(b->local);
    free(b->view[0]);
    free(b->view[1]);
    free(b->images);
    free(b->times);
}

/* FLOP of one step: 3 forwards' worth on the online network (forward, backward data and
 * weights) and on the local views' network of a multi-crop run, one forward on the target:
 * the EMA network, or in SimSiam mode the online encoder and projector run again. */
static byol_status step_gflop(struct byol_learner *l, double *gflop)
{
    double online = 0, target = 0, local = 0;
    byol_status st = byol_net_forward_macs(byol_learner_online(l), NULL, &online);
    if (st == BYOL_OK && l->local && (st = byol_net_forward_macs(l->local, NULL, &local)) == BYOL_OK)
        online += local;
    if (st == BYOL_OK)
        st = l->target ? byol_net_forward_macs(l->target, NULL, &target)
                       : byol_net_forward_macs(l->online, l->projection, &target);
    *gflop = 2.0 * (3.0 * online + target) * 1e-9;
    return st;
}

static byol_status bench_setup(const struct byol_bench_options *o, struct byol_learner_config *c)
{
    int64_t seed;
    byol_learner_config_default(c);
    byol_status st = byol_settings_int(o->root, "seed", 0, &seed);
    if (st == BYOL_OK)
        st = byol_learner_config_read(c, byol_settings_child(o->root, "model"),
                                      byol_settings_child(o->root, "train"));
    if (st != BYOL_OK)
        return st;
    if (o->steps < 1 || o->warmup < 0)
        return byol_error(BYOL_ERR_INVALID, "bench: steps %d must be >= 1 and warmup %d >= 0",
                          o->steps, o->warmup);
    c->seed = (uint64_t)seed;
    return BYOL_OK;
}

/* Seconds of each part of a step, added up over the timed steps. */
struct bench_parts {
    double augment, fwd_bwd, optimizer, zero_grad, ema;
};

/* The two views of step `step`: augmented (in the loop, not overlapped with training as the
 * trainer's prefetch thread does, so this is a lower bound), or the batch itself twice. */
static byol_status bench_views(struct bench_run *b, int64_t step, const float *v[2])
{
    v[0] = v[1] = b->images;
    for (int k = 0; k < 2 + b->mc.views && b->pool; k++) {
        float *out = k < 2 ? b->view[k] : b->local + (size_t)(k - 2) * bench_local_floats(b);
        byol_status st = byol_augment_batch(b->pool, k < 2 ? b->views[k] : b->mc.pipeline,
                                            b->images, (size_t)b->c.batch_size, out, b->c.seed,
                                            (uint64_t)step, k + 1);
        if (st != BYOL_OK)
            return st;
        if (k < 2)
            v[k] = b->view[k];
    }
    return BYOL_OK;
}

/* One step as byol_learner_step takes it, with each part timed. */
static byol_status bench_step(struct bench_run *b, int64_t step, float *loss, struct bench_parts *t)
{
    struct byol_learner *l = b->l;
    const float *v[2];
    double ta = bench_now();
    byol_status st = bench_views(b, step, v);
    double t0 = bench_now();
    if (st == BYOL_OK)
        st = byol_learner_forward_backward_views(l, v[0], v[1], b->local, loss);
    double t1 = bench_now();
    if (st == BYOL_OK)
        st = byol_learner_optimizer_step(l);
    double t2 = bench_now();
    if (st == BYOL_OK)
        byol_learner_zero_grad(l);
    double t3 = bench_now();
    if (st == BYOL_OK)
        st = byol_learner_update_target(l);
    double t4 = bench_now();
    t->augment += t0 - ta;
    t->fwd_bwd += t1 - t0;
    t->optimizer += t2 - t1;
    t->zero_grad += t3 - t2;
    t->ema += t4 - t3;
    return st;
}

static void bench_set_profiling(struct byol_learner *l, int on)
{
    byol_net_set_profiling(byol_learner_online(l), on);
    byol_net_set_profiling(l->local, on);
    byol_net_set_profiling(byol_learner_target(l), on);
}

/* Warm-up and timed steps; times[] gets each timed step's seconds. */
static byol_status bench_loop(struct bench_run *b, const struct byol_bench_options *o, float *loss,
                              struct bench_parts *parts)
{
    struct byol_learner *l = b->l;
    for (int i = 0; i < o->warmup + o->steps; i++) {
        if (i == o->warmup) {
            memset(parts, 0, sizeof *parts);
            bench_set_profiling(l, o->profile);
        }
        double t0 = bench_now();
        byol_status st = bench_step(b, i, loss, parts);
        if (st != BYOL_OK)
            return byol_error(st, "bench: step %d: %s", i + 1, byol_last_error());
        if (i >= o->warmup)
            b->times[i - o->warmup] = bench_now() - t0;
    }
    bench_set_profiling(l, 0);
    return BYOL_OK;
}

/* Counts layer (kind, impl) under its kernels entry, adding one when it is new. */
static void bench_kernel_add(struct byol_bench_profile *p, int kind, const char *impl, double ms)
{
    int i = 0;
    while (i < p->n_kernels && (p->kernels[i].kind != kind || strcmp(p->kernels[i].impl, impl)))
        i++;
    if (i == BYOL_BENCH_KERNELS)
        return;
    if (i == p->n_kernels) {
        p->kernels[i].kind = kind;
        snprintf(p->kernels[i].impl, sizeof p->kernels[i].impl, "%s", impl);
        p->n_kernels++;
    }
    p->kernels[i].layers++;
    p->kernels[i].ms += ms;
}

/* Keep the BYOL_BENCH_TOP slowest layers, slowest first. */
static void bench_top_insert(struct byol_bench_profile *p, const char *net, const char *layer,
                             const char *impl, double fwd_ms, double bwd_ms)
{
    int n = p->n_top, at = n;
    while (at > 0 && p->top[at - 1].forward_ms + p->top[at - 1].backward_ms < fwd_ms + bwd_ms)
        at--;
    if (at >= BYOL_BENCH_TOP)
        return;
    if (n == BYOL_BENCH_TOP)
        n--;
    memmove(&p->top[at + 1], &p->top[at], (size_t)(n - at) * sizeof p->top[0]);
    snprintf(p->top[at].name, sizeof p->top[at].name, "%s %s", net, layer);
    p->top[at].forward_ms = fwd_ms;
    p->top[at].backward_ms = bwd_ms;
    snprintf(p->top[at].impl, sizeof p->top[at].impl, "%s", impl);
    p->n_top = n + 1;
}

/* Per-op totals of one network, in ms per step; returns its layers' total. */
static double bench_net_profile(struct byol_net *net, const char *which, int steps,
                                struct byol_bench_profile *p)
{
    double total = 0;
    for (size_t i = 0; net && i < byol_net_layer_count(net); i++) {
        int kind = 0;
        double f = 0, b = 0;
        if (byol_net_layer_time(net, i, &kind, &f, &b) != BYOL_OK || kind <= 0 ||
            kind >= BYOL_BENCH_KINDS)
            continue;
        f *= 1e3 / steps;
        b *= 1e3 / steps;
        p->forward_ms[kind] += f;
        p->backward_ms[kind] += b;
        total += f + b;
        char impl[BYOL_BENCH_IMPL_LEN];
        byol_net_layer_describe(net, i, impl, sizeof impl);
        if (!impl[0]) /* no plan of its own: a relu fused into the batch norm before it */
            snprintf(impl, sizeof impl, "fused into the layer before");
        bench_top_insert(p, which, byol_net_layer_name(net, i), impl, f, b);
        bench_kernel_add(p, kind, impl, f + b);
    }
    return total;
}

static void bench_profile(struct byol_learner *l, const struct bench_parts *t, int steps,
                          struct byol_bench_profile *p)
{
    double online = bench_net_profile(byol_learner_online(l), "online", steps, p) +
                    bench_net_profile(l->local, "local", steps, p);
    p->target_ms = bench_net_profile(byol_learner_target(l), "target", steps, p);
    p->optimizer_ms = 1e3 * t->optimizer / steps;
    p->zero_grad_ms = 1e3 * t->zero_grad / steps;
    p->ema_ms = 1e3 * t->ema / steps;
    p->augment_ms = 1e3 * t->augment / steps;
    p->other_ms = 1e3 * t->fwd_bwd / steps - online - p->target_ms;
}

static void bench_summarise(double *times, int n, double gflop, int batch,
                            struct byol_bench_result *r)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += times[i];
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    r->steps = n;
    r->seconds = total;
    r->ms_per_step = 1e3 * total / n;
    r->ms_min = 1e3 * times[0];
    r->ms_median = 1e3 * (n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]));
    r->images_per_s = (double)batch * n / total;
    r->gflop_per_step = gflop;
    r->gflops = gflop * n / total;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_mib = (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* The data pipeline alone: the config's dataset, pipelines and pool; batch after batch of the
 * first images (the shuffle does not change what a read costs). */
struct bench_data {
    struct byol_dataset *ds;
    size_t *indices;
};

static byol_status bench_data_batches(struct bench_run *b, const struct bench_data *d,
                                      const struct byol_bench_options *o, int resize_first)
{
    size_t batch = (size_t)b->c.batch_size, n = byol_dataset_count(d->ds);
    for (int i = 0; i < o->warmup + o->steps; i++) {
        double t0 = bench_now();
        size_t first = (size_t)i * batch % (n - n % batch);
        struct byol_augment_pipeline *pipes[BYOL_AUGMENT_MAX_VIEWS] = {b->views[0], b->views[1]};
        float *out[BYOL_AUGMENT_MAX_VIEWS] = {b->view[0], b->view[1]};
        for (int k = 0; k < b->mc.views; k++) {
            pipes[2 + k] = b->mc.pipeline;
            out[2 + k] = b->local + (size_t)k * bench_local_floats(b);
        }
        byol_status st = byol_augment_views_batch_n(b->pool, d->ds, d->indices + first, batch, 0,
                                                    2 + b->mc.views, pipes, resize_first,
                                                    b->c.seed, (uint64_t)i, out);
        if (st != BYOL_OK)
            return byol_error(st, "bench: batch %d: %s", i + 1, byol_last_error());
        if (i >= o->warmup)
            b->times[i - o->warmup] = bench_now() - t0;
    }
    return BYOL_OK;
}

static byol_status bench_data_run(struct bench_run *b, struct byol_registry *reg,
                                  const struct byol_bench_options *o, struct byol_bench_result *r)
{
    const struct byol_settings *g = byol_settings_child(o->root, "data");
    struct bench_data d = {0};
    int resize_first = 0;
    byol_status st = byol_settings_bool(g, "resize_first", 0, &resize_first);
    if (st == BYOL_OK)
        st = byol_dataset_open_settings(g, o->config_dir, b->c.in_channels, b->c.image_size,
                                        b->c.seed, &d.ds);
    size_t n = byol_dataset_count(d.ds), batch = (size_t)b->c.batch_size;
    if (st == BYOL_OK && n < batch)
        st = byol_error(BYOL_ERR_INVALID, "train.batch_size = %zu but the data has %zu images",
                        batch, n);
    if (st == BYOL_OK && !(d.indices = malloc(n * sizeof *d.indices)))
        st = byol_error(BYOL_ERR_NOMEM, "bench: out of memory");
    for (size_t i = 0; st == BYOL_OK && i < n; i++)
        d.indices[i] = i;
    int c, h = 0, w = 0;
    if (st == BYOL_OK) {
        byol_dataset_shape(d.ds, NULL, &h, &w);
        st = bench_augment_setup(b, reg, o->root, h, w);
    }
    if (st == BYOL_OK)
        st = bench_multicrop_setup(b, reg, o->root, h, w);
    uint64_t images0, pixels0, images1, pixels1;
    byol_image_decode_stats(&images0, &pixels0);
    if (st == BYOL_OK)
        st = bench_data_batches(b, &d, o, resize_first);
    byol_image_decode_stats(&images1, &pixels1);
    if (st == BYOL_OK) {
        byol_augment_pipeline_output(b->views[0], &c, &h, &w);
        r->batch_size = b->c.batch_size;
        r->image_size = h;
        r->from_originals = byol_augment_views_from_originals(d.ds, b->views, resize_first);
        r->decoded_pixels_per_image =
            images1 > images0 ? (double)(pixels1 - pixels0) / (double)(images1 - images0) : 0;
        bench_summarise(b->times, o->steps, 0, b->c.batch_size, r);
    }
    byol_dataset_free(d.ds);
    free(d.indices);
    return st;
}

byol_status byol_bench_run(struct byol_backend *be, struct byol_registry *reg,
                           const struct byol_bench_options *o, struct byol_bench_result *r)
{
    if (!be || !reg || !o || !r)
        return byol_error(BYOL_ERR_INVALID, "byol_bench_run: NULL argument");
    memset(r, 0, sizeof *r);
    struct bench_run b;
    memset(&b, 0, sizeof b);
    byol_status st = bench_setup(o, &b.c);
    if (st == BYOL_OK && o->data_only) {
        b.times = malloc((size_t)o->steps * sizeof *b.times);
        st = b.times ? bench_data_run(&b, reg, o, r)
                     : byol_error(BYOL_ERR_NOMEM, "bench: out of memory");
        r->threads = b.threads;
        bench_free(&b);
        return st;
    }
    if (st != BYOL_OK)
        return st;
    size_t n = (size_t)b.c.batch_size * (size_t)b.c.in_channels * (size_t)b.c.image_size *
               (size_t)b.c.image_size;
    b.images = malloc(n * sizeof *b.images);
    b.times = malloc((size_t)o->steps * sizeof *b.times);
    if (!b.images || !b.times)
        st = byol_error(BYOL_ERR_NOMEM, "bench: out of memory for the batch");
    if (st == BYOL_OK && o->augment)
        st = bench_augment_setup(&b, reg, o->root, b.c.image_size, b.c.image_size);
    if (st == BYOL_OK)
        st = bench_multicrop_setup(&b, reg, o->root, b.c.image_size, b.c.image_size);
    if (st == BYOL_OK)
        st = byol_learner_create(be, reg, &b.c, &b.l);
    double gflop = 0;
    float loss = 0;
    struct bench_parts parts = {0};
    if (st == BYOL_OK)
        st = step_gflop(b.l, &gflop);
    if (st == BYOL_OK) {
        fill_images(b.images, n, b.c.seed, o->augment);
        if (b.local && !o->augment) /* stand-ins for the local views, like the batch */
            fill_images(b.local, (size_t)b.mc.views * bench_local_floats(&b), b.c.seed + 1, 0);
        st = bench_loop(&b, o, &loss, &parts);
    }
    if (st == BYOL_OK) {
        r->batch_size = b.c.batch_size;
        r->image_size = b.c.image_size;
        r->loss = loss;
        bench_summarise(b.times, o->steps, gflop, b.c.batch_size, r);
        if (o->profile)
            bench_profile(b.l, &parts, o->steps, &r->profile);
    }
    bench_free(&b);
    return st;
}
