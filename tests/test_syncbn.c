/* SyncBatchNorm (bn_sync) on a backend (argv[1] or BYOL_TEST_BACKEND; default "blas"): K
 * processes simulated by K threads, each with its own backend and plan on its shard of a batch,
 * reducing through a shared buffer, must give what one plan gives on the whole batch (PyTorch's
 * SyncBatchNorm is batch norm over the concatenation): y, running statistics, dx, and dweight /
 * dbias summed over the ranks. Also: how many reductions each call makes, inference ignoring
 * sync, and the errors (a failed reduction, a global batch of one, a sync without sum_f64). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_RANKS 3

/* Tolerances, relative to max|reference| (byol_test_close). The ranks' statistics differ from
 * the single plan's only in the order of double additions, so y and the running statistics
 * come out bit-identical on both backends (measured: 0); a float rounding of the mean or
 * variance that flipped would move them by ~1e-8, hence 2e-7. dx on blas follows the same
 * arithmetic (measured 0); on onednn the single plan runs oneDNN's own backward, with float
 * sums, against our double sums (measured up to 2.7e-7). Summed over the ranks, dweight and
 * dbias add K float roundings (measured up to 2.9e-7 on onednn, 6.3e-8 on blas). */
#define RTOL_Y 2e-7
#define RTOL_GRAD 1e-6
#define ATOL 1e-7

static const char *backend_name = "blas";
static struct byol_registry *g_reg;

/* ---- the simulated processes ------------------------------------------------------------- */

/* A sum over the ranks: each call waits until every rank has arrived with its buffer; the
 * last to arrive adds the buffers in rank order (so the result does not depend on timing)
 * and wakes the others, who copy the sum. A rank that finishes (or fails) without arriving
 * breaks the world, so ranks that disagree on the number of reductions fail instead of
 * hanging. */
struct world {
    int ranks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long gen; /* completed reductions */
    int arrived;
    int broken; /* a rank left while others may still wait */
    int agreed; /* the last reduction's ranks all passed the same n */
    double *bufs[MAX_RANKS];
    size_t lens[MAX_RANKS];
    double acc[1024];
    int fail_call; /* > 0: this call (counting from 1) of a lone rank fails */
};

struct rank {
    struct world *world; /* NULL: the single-plan reference, without sync */
    int index;
    struct byol_allreduce sync;
    int calls; /* sum_f64 calls so far */
};

static void reduce_locked(struct world *w, size_t n)
{
    w->agreed = n <= sizeof w->acc / sizeof w->acc[0];
    for (int r = 0; r < w->ranks; r++)
        w->agreed = w->agreed && w->lens[r] == n;
    for (size_t i = 0; w->agreed && i < n; i++) {
        double s = 0.0;
        for (int r = 0; r < w->ranks; r++)
            s += w->bufs[r][i];
        w->acc[i] = s;
    }
}

static byol_status world_sum(void *ctx, double *buf, size_t n)
{
    struct rank *r = ctx;
    struct world *w = r->world;
    r->calls++;
    if (w->fail_call == r->calls)
        return byol_error(BYOL_ERR_IO, "simulated reduction failure (call %d)", r->calls);
    pthread_mutex_lock(&w->mu);
    w->bufs[r->index] = buf;
    w->lens[r->index] = n;
    int ok = !w->broken;
    if (ok && ++w->arrived == w->ranks) {
        w->arrived = 0;
        reduce_locked(w, n);
        w->gen++;
        pthread_cond_broadcast(&w->cv);
    } else if (ok) {
        unsigned long gen = w->gen;
        while (gen == w->gen && !w->broken)
            pthread_cond_wait(&w->cv, &w->mu);
        ok = gen != w->gen;
    }
    ok = ok && w->agreed;
    if (ok)
        memcpy(buf, w->acc, n * sizeof *buf);
    pthread_mutex_unlock(&w->mu);
    return ok ? BYOL_OK
              : byol_error(BYOL_ERR_INTERNAL, "test reduction: the ranks disagree on the number "
                                              "or the size of the reductions");
}

static void world_leave(struct world *w)
{
    pthread_mutex_lock(&w->mu);
    w->broken = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- one layer on one rank ---------------------------------------------------------------- */

struct sb_case {
    const char *name;
    int ranks;
    int shard[MAX_RANKS]; /* each rank's batch */
    int c, h, w;
    int affine, fuse_relu, threads;
};

/* The whole batch's inputs and parameters, and where a rank writes its results: each rank
 * fills its shard of y, dx and the rest, and its own copies of the per-channel arrays. */
struct layer_io {
    const float *x, *dy, *weight, *bias, *running_mean0, *running_var0;
    float *y, *dx, *dx_acc, *y_eval; /* (N,C,H,W) */
    float *running_mean[MAX_RANKS], *running_var[MAX_RANKS], *dweight[MAX_RANKS],
        *dbias[MAX_RANKS]; /* (C) per rank */
};

struct job {
    const struct sb_case *c;
    const struct layer_io *io;
    struct rank rank;
    struct byol_backend *be;
    int n, first; /* this rank's batch, and its first sample in the whole batch */
    int calls_fwd, calls_bwd, calls_bwd2, calls_eval;
    byol_status st;
    char where[64], msg[512];
};

static int job_check(struct job *j, byol_status st, const char *where)
{
    if (st == BYOL_OK)
        return 1;
    j->st = st;
    snprintf(j->where, sizeof j->where, "%s", where);
    snprintf(j->msg, sizeof j->msg, "%s", byol_last_error());
    return 0;
}

/* A training forward, backward into dx, backward adding into dx, then an inference forward,
 * each result read back into this rank's shard. Runs on the rank's own thread, so it records
 * failures in the job rather than asserting (CUnit is not thread-safe). */
static void job_run(struct job *j)
{
    const struct sb_case *c = j->c;
    const struct layer_io *io = j->io;
    int r = j->rank.index;
    size_t per = (size_t)c->c * c->h * c->w, off = (size_t)j->first * per;
    struct byol_op_desc desc = {.kind = BYOL_OP_BATCHNORM, .in = {{j->n, c->c, c->h, c->w}}};
    desc.u.bn.eps = 1e-5f;
    desc.u.bn.momentum = 0.1f;
    desc.u.bn.affine = c->affine;
    desc.u.bn.fuse_relu = c->fuse_relu;
    desc.bn_sync = j->rank.world ? &j->rank.sync : NULL;
    void *plan = NULL, *saved = NULL;
    size_t saved_bytes = 0;
    struct byol_tensor x = {0}, y = {0}, dy = {0}, dx = {0};
    struct byol_shape s = desc.in[0];
    if (!job_check(j, byol_backend_plan_create(j->be, &desc, &plan, &saved_bytes), "plan_create"))
        return;
    saved = calloc(1, saved_bytes);
    if (!saved) {
        job_check(j, byol_error(BYOL_ERR_NOMEM, "saved"), "calloc");
        goto out;
    }
    if (!job_check(j, byol_backend_tensor_alloc(j->be, &x, s, NULL), "alloc x") ||
        !job_check(j, byol_backend_tensor_alloc(j->be, &y, s, plan), "alloc y") ||
        !job_check(j, byol_backend_tensor_alloc(j->be, &dy, s, NULL), "alloc dy") ||
        !job_check(j, byol_backend_tensor_alloc(j->be, &dx, s, NULL), "alloc dx") ||
        !job_check(j, byol_backend_tensor_write(j->be, &x, io->x + off), "write x") ||
        !job_check(j, byol_backend_tensor_write(j->be, &dy, io->dy + off), "write dy"))
        goto out;
    memcpy(io->running_mean[r], io->running_mean0, (size_t)c->c * sizeof(float));
    memcpy(io->running_var[r], io->running_var0, (size_t)c->c * sizeof(float));
    struct byol_op_args a = {
        .x = {&x},
        .y = &y,
        .weight = c->affine ? io->weight : NULL,
        .bias = c->affine ? io->bias : NULL,
        .running_mean = io->running_mean[r],
        .running_var = io->running_var[r],
        .saved = saved,
        .dy = &dy,
        .dx = {&dx},
        .dweight = c->affine ? io->dweight[r] : NULL,
        .dbias = c->affine ? io->dbias[r] : NULL,
    };
    if (!job_check(j, byol_backend_forward(j->be, plan, 1, &a), "training forward") ||
        !job_check(j, byol_backend_tensor_read(j->be, &y, io->y + off), "read y"))
        goto out;
    j->calls_fwd = j->rank.calls;
    if (!job_check(j, byol_backend_backward(j->be, plan, &a), "backward") ||
        !job_check(j, byol_backend_tensor_read(j->be, &dx, io->dx + off), "read dx"))
        goto out;
    j->calls_bwd = j->rank.calls;
    a.accumulate[0] = 1;
    if (!job_check(j, byol_backend_backward(j->be, plan, &a), "accumulating backward") ||
        !job_check(j, byol_backend_tensor_read(j->be, &dx, io->dx_acc + off), "read dx"))
        goto out;
    j->calls_bwd2 = j->rank.calls;
    if (!job_check(j, byol_backend_forward(j->be, plan, 0, &a), "inference forward") ||
        !job_check(j, byol_backend_tensor_read(j->be, &y, io->y_eval + off), "read y"))
        goto out;
    j->calls_eval = j->rank.calls;
out:
    byol_backend_tensor_free(j->be, &x);
    byol_backend_tensor_free(j->be, &y);
    byol_backend_tensor_free(j->be, &dy);
    byol_backend_tensor_free(j->be, &dx);
    byol_backend_plan_destroy(j->be, plan);
    free(saved);
}

static void *job_thread(void *arg)
{
    struct job *j = arg;
    job_run(j);
    world_leave(j->rank.world);
    return NULL;
}

/* ---- data -------------------------------------------------------------------------------- */

/* Values in [-1, 1) hashed from (seed, i). */
static float hashed(uint64_t seed, size_t i)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *array(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* x drifts with the sample index and has a per-channel offset, so the shards' own means and
 * variances differ from the whole batch's: a plan that ignored sync would miss by O(1). */
static void fill_inputs(float *x, float *dy, int n, int c, int hw)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                x[at] = 2.0f * hashed(1, at) + 0.4f * (float)b + 0.1f * (float)ch;
                dy[at] = hashed(2, at) + 0.2f * (float)b;
            }
}

/* ---- the comparison ---------------------------------------------------------------------- */

struct layer_out {
    float *y, *dx, *dx_acc, *y_eval;
    float *running_mean[MAX_RANKS], *running_var[MAX_RANKS], *dweight[MAX_RANKS], *dbias[MAX_RANKS];
};

static void out_alloc(struct layer_out *o, struct layer_io *io, size_t numel, int c, int ranks)
{
    memset(o, 0, sizeof *o);
    io->y = o->y = array(numel);
    io->dx = o->dx = array(numel);
    io->dx_acc = o->dx_acc = array(numel);
    io->y_eval = o->y_eval = array(numel);
    for (int r = 0; r < ranks; r++) {
        io->running_mean[r] = o->running_mean[r] = array((size_t)c);
        io->running_var[r] = o->running_var[r] = array((size_t)c);
        io->dweight[r] = o->dweight[r] = array((size_t)c);
        io->dbias[r] = o->dbias[r] = array((size_t)c);
    }
}

static void out_free(struct layer_out *o)
{
    free(o->y);
    free(o->dx);
    free(o->dx_acc);
    free(o->y_eval);
    for (int r = 0; r < MAX_RANKS; r++) {
        free(o->running_mean[r]);
        free(o->running_var[r]);
        free(o->dweight[r]);
        free(o->dbias[r]);
    }
}

static int job_ok(const struct job *j)
{
    if (j->st != BYOL_OK)
        fprintf(stderr, "\n  rank %d: %s: %s: %s\n", j->rank.index, j->where,
                byol_status_str(j->st), j->msg);
    return j->st == BYOL_OK;
}

static void close_to(const char *what, const float *got, const float *ref, size_t n, double rtol)
{
    CU_ASSERT(byol_test_close(what, got, ref, n, ATOL, rtol));
}

static void run_case(const struct sb_case *c)
{
    int total = 0;
    for (int r = 0; r < c->ranks; r++)
        total += c->shard[r];
    size_t hw = (size_t)c->h * c->w, numel = (size_t)total * c->c * hw;
    float *x = array(numel), *dy = array(numel), *weight = array((size_t)c->c),
          *bias = array((size_t)c->c), *rm0 = array((size_t)c->c), *rv0 = array((size_t)c->c);
    fill_inputs(x, dy, total, c->c, (int)hw);
    for (int ch = 0; ch < c->c; ch++) {
        weight[ch] = 1.0f + 0.1f * hashed(3, (size_t)ch);
        bias[ch] = 0.05f * hashed(4, (size_t)ch);
        rm0[ch] = 0.1f * hashed(5, (size_t)ch);
        rv0[ch] = 1.0f + 0.2f * fabsf(hashed(6, (size_t)ch));
    }
    struct layer_io ref_io = {.x = x,
                              .dy = dy,
                              .weight = weight,
                              .bias = bias,
                              .running_mean0 = rm0,
                              .running_var0 = rv0};
    struct layer_io io = ref_io;
    struct layer_out ref, got;
    out_alloc(&ref, &ref_io, numel, c->c, 1);
    out_alloc(&got, &io, numel, c->c, c->ranks);

    /* The reference: one plan, the whole batch, no sync. */
    struct job ref_job = {.c = c, .io = &ref_io, .n = total};
    ref_job.be = byol_test_backend(g_reg, backend_name, c->threads);
    job_run(&ref_job);
    byol_backend_free(ref_job.be);
    CU_ASSERT_FATAL(job_ok(&ref_job));

    struct world w = {.ranks = c->ranks};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    struct job jobs[MAX_RANKS];
    pthread_t th[MAX_RANKS];
    memset(jobs, 0, sizeof jobs);
    for (int r = 0, first = 0; r < c->ranks; first += c->shard[r], r++) {
        jobs[r] = (struct job){.c = c, .io = &io, .n = c->shard[r], .first = first};
        jobs[r].rank = (struct rank){.world = &w, .index = r};
        jobs[r].rank.sync = (struct byol_allreduce){world_sum, &jobs[r].rank};
        jobs[r].be = byol_test_backend(g_reg, backend_name, c->threads);
    }
    int started = 0;
    for (; started < c->ranks; started++)
        if (pthread_create(&th[started], NULL, job_thread, &jobs[started]) != 0)
            break;
    if (started < c->ranks)
        world_leave(&w); /* the started ranks fail rather than wait for the missing ones */
    for (int r = 0; r < started; r++)
        pthread_join(th[r], NULL);
    CU_ASSERT_EQUAL(started, c->ranks);
    int ok = started == c->ranks;
    for (int r = 0; r < c->ranks; r++) {
        ok = job_ok(&jobs[r]) && ok;
        byol_backend_free(jobs[r].be);
        /* The contract: two reductions in a training forward, one in a backward that wants dx,
         * none in inference. */
        CU_ASSERT_EQUAL(jobs[r].calls_fwd, 2);
        CU_ASSERT_EQUAL(jobs[r].calls_bwd, 3);
        CU_ASSERT_EQUAL(jobs[r].calls_bwd2, 4);
        CU_ASSERT_EQUAL(jobs[r].calls_eval, 4);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);

    if (ok) {
        size_t cc = (size_t)c->c;
        close_to("y", got.y, ref.y, numel, RTOL_Y);
        close_to("dx", got.dx, ref.dx, numel, RTOL_GRAD);
        close_to("dx (accumulated)", got.dx_acc, ref.dx_acc, numel, RTOL_GRAD);
        close_to("y (inference)", got.y_eval, ref.y_eval, numel, RTOL_Y);
        for (int r = 0; r < c->ranks; r++) {
            char what[64];
            snprintf(what, sizeof what, "rank %d running_mean", r);
            close_to(what, got.running_mean[r], ref.running_mean[0], cc, RTOL_Y);
            snprintf(what, sizeof what, "rank %d running_var", r);
            close_to(what, got.running_var[r], ref.running_var[0], cc, RTOL_Y);
        }
        if (c->affine) {
            /* Each rank keeps its own parameter gradients; their sum is the whole batch's. */
            float *dw = array(cc), *db = array(cc);
            for (int r = 0; r < c->ranks; r++)
                for (size_t ch = 0; ch < cc; ch++) {
                    dw[ch] += got.dweight[r][ch];
                    db[ch] += got.dbias[r][ch];
                }
            close_to("sum of dweight", dw, ref.dweight[0], cc, RTOL_GRAD);
            close_to("sum of dbias", db, ref.dbias[0], cc, RTOL_GRAD);
            /* Not already reduced: a rank's own dbias is not the whole batch's. */
            double gap = 0.0;
            for (size_t ch = 0; ch < cc; ch++)
                gap = fmax(gap, fabs((double)got.dbias[0][ch] - ref.dbias[0][ch]));
            CU_ASSERT(gap > 1e-3);
            free(dw);
            free(db);
        }
    }
    out_free(&ref);
    out_free(&got);
    free(x);
    free(dy);
    free(weight);
    free(bias);
    free(rm0);
    free(rv0);
}

static const struct sb_case g_cases[] = {
    {"2 ranks, 4-d, affine", 2, {4, 4}, 16, 5, 5, 1, 0, 1},
    {"3 ranks, uneven 4-d, affine, 2 threads", 3, {3, 2, 2}, 16, 5, 5, 1, 0, 2},
    {"3 ranks, uneven 1-d, affine", 3, {3, 2, 2}, 48, 1, 1, 1, 0, 1},
    {"2 ranks, 4-d, not affine, 5 channels", 2, {3, 3}, 5, 4, 3, 0, 0, 1},
    {"3 ranks, uneven 4-d, fused relu", 3, {3, 2, 2}, 16, 5, 5, 1, 1, 1},
    {"3 ranks, 1-d, fused relu, a rank with one sample", 3, {1, 3, 3}, 32, 1, 1, 1, 1, 1},
};

#define CASE_FN(i)                                                                                 \
    static void test_case_##i(void)                                                                \
    {                                                                                              \
        printf("\n  %s (%s)\n", g_cases[i].name, backend_name);                                    \
        run_case(&g_cases[i]);                                                                     \
    }
CASE_FN(0)
CASE_FN(1)
CASE_FN(2)
CASE_FN(3)
CASE_FN(4)
CASE_FN(5)

/* ---- errors ------------------------------------------------------------------------------ */

/* One rank alone (no waiting) whose reduction number `fail_call` fails: the forward (calls 1
 * and 2) or the backward (call 3) returns the reducer's status, its message intact. */
static void check_failure(int fail_call)
{
    struct world w = {.ranks = 1, .fail_call = fail_call};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    struct byol_backend *be = byol_test_backend(g_reg, backend_name, 1);
    struct rank rank = {.world = &w};
    rank.sync = (struct byol_allreduce){world_sum, &rank};
    struct byol_op_desc desc = {.kind = BYOL_OP_BATCHNORM, .in = {{4, 8, 2, 2}}};
    desc.u.bn.eps = 1e-5f;
    desc.u.bn.momentum = 0.1f;
    desc.u.bn.affine = 1;
    desc.bn_sync = &rank.sync;
    void *plan = NULL;
    size_t saved_bytes = 0, numel = byol_shape_numel(desc.in[0]);
    BYOL_CHECK_OK(byol_backend_plan_create(be, &desc, &plan, &saved_bytes));
    void *saved = calloc(1, saved_bytes);
    float *x = array(numel), *dy = array(numel), wb[16], rm[8] = {0}, rv[8], dwb[16] = {0};
    fill_inputs(x, dy, 4, 8, 4);
    for (int i = 0; i < 8; i++) {
        wb[i] = 1.0f;
        wb[8 + i] = 0.0f;
        rv[i] = 1.0f;
    }
    struct byol_tensor tx = {0}, ty = {0}, tdy = {0}, tdx = {0};
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &tx, desc.in[0], NULL));
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &ty, desc.in[0], plan));
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &tdy, desc.in[0], NULL));
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &tdx, desc.in[0], NULL));
    BYOL_CHECK_OK(byol_backend_tensor_write(be, &tx, x));
    BYOL_CHECK_OK(byol_backend_tensor_write(be, &tdy, dy));
    struct byol_op_args a = {.x = {&tx},
                             .y = &ty,
                             .weight = wb,
                             .bias = wb + 8,
                             .running_mean = rm,
                             .running_var = rv,
                             .saved = saved,
                             .dy = &tdy,
                             .dx = {&tdx},
                             .dweight = dwb,
                             .dbias = dwb + 8};
    byol_status st = byol_backend_forward(be, plan, 1, &a);
    if (fail_call <= 2) {
        CU_ASSERT_EQUAL(st, BYOL_ERR_IO);
    } else {
        BYOL_CHECK_OK(st);
        st = byol_backend_backward(be, plan, &a);
        CU_ASSERT_EQUAL(st, BYOL_ERR_IO);
    }
    char want[64];
    snprintf(want, sizeof want, "simulated reduction failure (call %d)", fail_call);
    BYOL_ASSERT_MSG_HAS(want);
    CU_ASSERT_EQUAL(rank.calls, fail_call);
    byol_backend_tensor_free(be, &tx);
    byol_backend_tensor_free(be, &ty);
    byol_backend_tensor_free(be, &tdy);
    byol_backend_tensor_free(be, &tdx);
    byol_backend_plan_destroy(be, plan);
    byol_backend_free(be);
    free(saved);
    free(x);
    free(dy);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

static void test_reduction_fails(void)
{
    for (int call = 1; call <= 3; call++)
        check_failure(call);
}

/* A lone rank with one 1-d sample: the local count may be 1 under sync (other processes add
 * theirs), but a global count of 1 cannot give an unbiased variance and is refused, after both
 * reductions. A sync without sum_f64 is refused at plan creation. */
static void test_global_count_and_missing_sum(void)
{
    struct world w = {.ranks = 1};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    struct byol_backend *be = byol_test_backend(g_reg, backend_name, 1);
    struct rank rank = {.world = &w};
    rank.sync = (struct byol_allreduce){world_sum, &rank};
    struct byol_op_desc desc = {.kind = BYOL_OP_BATCHNORM, .in = {{1, 8, 1, 1}}};
    desc.u.bn.eps = 1e-5f;
    desc.u.bn.momentum = 0.1f;
    desc.bn_sync = &rank.sync;
    void *plan = NULL;
    size_t saved_bytes = 0;
    BYOL_CHECK_OK(byol_backend_plan_create(be, &desc, &plan, &saved_bytes));
    void *saved = calloc(1, saved_bytes);
    float x[8], rm[8] = {0}, rv[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 8; i++)
        x[i] = (float)i;
    struct byol_tensor tx = {0}, ty = {0};
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &tx, desc.in[0], NULL));
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &ty, desc.in[0], plan));
    BYOL_CHECK_OK(byol_backend_tensor_write(be, &tx, x));
    struct byol_op_args a = {
        .x = {&tx}, .y = &ty, .running_mean = rm, .running_var = rv, .saved = saved};
    CU_ASSERT_EQUAL(byol_backend_forward(be, plan, 1, &a), BYOL_ERR_SHAPE);
    BYOL_ASSERT_MSG_HAS("got 1 over all processes");
    CU_ASSERT_EQUAL(rank.calls, 2);
    CU_ASSERT_EQUAL(rm[0], 0.0f); /* nothing updated */
    byol_backend_tensor_free(be, &tx);
    byol_backend_tensor_free(be, &ty);
    byol_backend_plan_destroy(be, plan);
    free(saved);

    struct byol_allreduce no_sum = {NULL, NULL};
    desc.bn_sync = &no_sum;
    CU_ASSERT_EQUAL(byol_backend_plan_create(be, &desc, &plan, &saved_bytes), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("sum_f64");
    byol_backend_free(be);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

int main(int argc, char **argv)
{
    const char *env = getenv("BYOL_TEST_BACKEND");
    if (argc > 1)
        backend_name = argv[1];
    else if (env && *env)
        backend_name = env;
    g_reg = byol_test_registry();
    static const struct byol_test_case cases[] = {
        {"2 ranks, 4-d, affine", test_case_0, 0},
        {"3 ranks, uneven 4-d, affine, 2 threads", test_case_1, 0},
        {"3 ranks, uneven 1-d, affine", test_case_2, 0},
        {"2 ranks, 4-d, not affine, 5 channels", test_case_3, 0},
        {"3 ranks, uneven 4-d, fused relu", test_case_4, 0},
        {"3 ranks, 1-d, fused relu, a rank with one sample", test_case_5, 0},
        {"a failed reduction is returned by forward and backward", test_reduction_fails, 0},
        {"global count of one; sync without sum_f64", test_global_count_and_missing_sum, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "syncbn", cases);
    byol_registry_free(g_reg);
    return rc;
}
