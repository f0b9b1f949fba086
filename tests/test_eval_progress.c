/* The evaluation's progress reports (byol_evaluator_set_progress, and the trainer options'
 * eval_progress): the phases in order, each from done 0 up to its end with one last report,
 * the probe's iterations and loss, nothing from the kNN monitor between training steps, and
 * results identical with and without a listener. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/eval.h"
#include "byol/learner.h"
#include "byol/trainer.h"
#include "testutil.h"

#define SIDE 8
#define N_TRAIN 600 /* three chunks of the evaluator's 256 images */
#define N_TEST 300
#define MAX_REPORTS 4096

static const char *dir; /* the scratch folder, made by main */
static struct byol_registry *reg;
static struct byol_backend *be;

/* ---- small IDX files -------------------------------------------------------------------- */

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Class n % 3: horizontal stripes, vertical stripes or a checkerboard, at a phase of n. */
static void write_images(const char *path, int n, int phase0)
{
    size_t bytes = 16 + (size_t)n * SIDE * SIDE;
    unsigned char *b = calloc(1, bytes), *px = b + 16;
    if (!b)
        abort(); /* called from main, outside any test */
    b[2] = 8, b[3] = 3;
    put_be32(b + 4, (unsigned)n);
    put_be32(b + 8, SIDE);
    put_be32(b + 12, SIDE);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                double ph = 0.7 * (i + phase0), v;
                v = i % 3 == 0   ? sin(1.9 * y + ph)
                    : i % 3 == 1 ? sin(1.9 * x + ph)
                                 : sin(1.9 * x + ph) * sin(1.9 * y + ph);
                *px++ = (unsigned char)(127.5 + 120 * v);
            }
    byol_test_write_file(path, b, bytes);
    free(b);
}

static void write_labels(const char *path, int n)
{
    unsigned char *b = calloc(1, 8 + (size_t)n);
    if (!b)
        abort();
    b[2] = 8, b[3] = 1;
    put_be32(b + 4, (unsigned)n);
    for (int i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % 3);
    byol_test_write_file(path, b, 8 + (size_t)n);
    free(b);
}

/* The tiny encoder on the IDX files, with `extra` appended to the eval group. */
static const char *config_text(const char *extra)
{
    static char text[4096];
    snprintf(
        text, sizeof text,
        "seed = 5;\n"
        "backend = { name = \"blas\"; threads = 2; };\n"
        "model = { encoder = { name = \"layers\"; in_channels = 1; layers = (\n"
        "  { type = \"conv\"; name = \"conv1\"; out = 8; kernel = 3; pad = 1; },\n"
        "  { type = \"relu\"; name = \"relu\"; }, { type = \"avgpool\"; name = \"avgpool\"; },\n"
        "  { type = \"flatten\"; }, { type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"
        "  image_size = %d; projection_size = 8; projection_hidden_size = 16; };\n"
        "augment_fn = ( { op = \"normalize\"; mean = [0.5]; std = [0.25]; } );\n"
        "data = { images = \"train.idx\"; };\n"
        "train = { batch_size = 4; steps = 2; checkpoint_every = 0; checkpoint_dir = \"%s\"; };\n"
        "eval = { train_images = \"train.idx\"; train_labels = \"train-labels.idx\";\n"
        "         test_images = \"test.idx\"; test_labels = \"test-labels.idx\"; knn_k = 5;\n"
        "         %s };\n",
        SIDE, byol_test_path(dir, "ck"), extra ? extra : "");
    return text;
}

/* ---- what a listener saw ---------------------------------------------------------------- */

struct seen {
    struct byol_eval_progress r[MAX_REPORTS];
    int n, overflow;
};

static void record(const struct byol_eval_progress *p, void *user)
{
    struct seen *s = user;
    if (s->n < MAX_REPORTS)
        s->r[s->n++] = *p;
    else
        s->overflow = 1;
}

/* One phase as it must be reported. */
struct phase {
    enum byol_eval_phase phase;
    int split, baseline;
    size_t total;
};

/* Check that the reports are exactly the phases `want`, in that order: each starts at done 0,
 * never goes back, moves in time order, and ends with one last report (at its total, but for
 * the probe, which may stop early). Returns the number of phases matched. */
static int check_phases(const struct seen *s, const struct phase *want, int n_want)
{
    int k = 0, i = 0;
    CU_ASSERT_FALSE(s->overflow);
    for (; k < n_want && i < s->n; k++) {
        const struct phase *w = &want[k];
        const struct byol_eval_progress *first = &s->r[i];
        CU_ASSERT_EQUAL(first->phase, w->phase);
        CU_ASSERT_EQUAL(first->split, w->split);
        CU_ASSERT_EQUAL(first->baseline, w->baseline);
        CU_ASSERT_EQUAL(first->done, 0);
        CU_ASSERT_FALSE(first->last);
        size_t done = 0;
        double t = 0;
        for (i++; i < s->n; i++) {
            const struct byol_eval_progress *p = &s->r[i];
            CU_ASSERT(p->phase == w->phase && p->split == w->split && p->baseline == w->baseline &&
                      p->total == w->total);
            CU_ASSERT(p->done >= done && p->done <= p->total);
            CU_ASSERT(p->seconds >= t);
            CU_ASSERT_EQUAL(!!isnan(p->loss), w->phase != BYOL_EVAL_PHASE_PROBE);
            done = p->done;
            t = p->seconds;
            if (p->last)
                break;
        }
        CU_ASSERT_FATAL(i < s->n); /* the phase's last report came */
        if (w->phase != BYOL_EVAL_PHASE_PROBE)
            CU_ASSERT_EQUAL(s->r[i].done, w->total);
        i++;
    }
    CU_ASSERT_EQUAL(k, n_want);
    CU_ASSERT_EQUAL(i, s->n); /* nothing after the last phase */
    return k;
}

/* The reports of phase number k (0-based, counting phase starts) into [*from, *to). */
static void phase_range(const struct seen *s, int k, int *from, int *to)
{
    int starts = -1;
    *from = *to = s->n;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].done == 0 && !s->r[i].last && ++starts == k)
            *from = i;
        if (starts == k && s->r[i].last) {
            *to = i + 1;
            return;
        }
    }
}

static const struct phase run_phases[] = {
    {BYOL_EVAL_PHASE_FEATURES, 0, 0, N_TRAIN},
    {BYOL_EVAL_PHASE_FEATURES, 1, 0, N_TEST},
    {BYOL_EVAL_PHASE_KNN, -1, 0, N_TEST},
    {BYOL_EVAL_PHASE_PROBE, -1, 0, BYOL_PROBE_MAX_ITERATIONS},
    {BYOL_EVAL_PHASE_PIXELS, 0, 1, N_TRAIN},
    {BYOL_EVAL_PHASE_PIXELS, 1, 1, N_TEST},
    {BYOL_EVAL_PHASE_KNN, -1, 1, N_TEST},
    {BYOL_EVAL_PHASE_PROBE, -1, 1, BYOL_PROBE_MAX_ITERATIONS},
};
#define N_RUN_PHASES ((int)(sizeof run_phases / sizeof run_phases[0]))

struct eval_env {
    struct byol_config *cfg;
    struct byol_learner_config c;
    struct byol_learner *l;
    struct byol_evaluator *ev;
};

static void env_open(const char *text, struct eval_env *e)
{
    memset(e, 0, sizeof *e);
    BYOL_CHECK_OK(byol_config_parse(text, "test-eval-progress.cfg", &e->cfg));
    const struct byol_settings *root = byol_config_root(e->cfg);
    byol_learner_config_default(&e->c);
    BYOL_CHECK_OK(byol_learner_config_read(&e->c, byol_settings_child(root, "model"),
                                           byol_settings_child(root, "train")));
    BYOL_CHECK_OK(byol_learner_create(be, reg, &e->c, &e->l));
    BYOL_CHECK_OK(byol_evaluator_open(root, dir, reg, e->c.in_channels, e->c.image_size, &e->ev));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->ev);
}

static void env_close(struct eval_env *e)
{
    byol_evaluator_free(e->ev);
    byol_learner_free(e->l);
    byol_config_free(e->cfg);
}

static struct seen seen; /* large: not on the stack */

/* byol_evaluator_run reports every phase in order; its results are those of a run without a
 * listener, bit for bit. */
static void test_run_phases(void)
{
    struct eval_env e;
    env_open(config_text("baseline_cache = false;"), &e);
    struct byol_eval_result quiet, loud;
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &quiet));
    memset(&seen, 0, sizeof seen);
    byol_evaluator_set_progress(e.ev, record, &seen);
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &loud));
    CU_ASSERT_EQUAL_FATAL(check_phases(&seen, run_phases, N_RUN_PHASES), N_RUN_PHASES);

    /* The features of the train split after each chunk but the last: 256, 512; then the end. */
    int from, to;
    phase_range(&seen, 0, &from, &to);
    CU_ASSERT_EQUAL_FATAL(to - from, 4);
    CU_ASSERT(seen.r[from + 1].done == 256 && seen.r[from + 2].done == 512 &&
              seen.r[from + 3].done == N_TRAIN && seen.r[from + 3].last);
    /* The probe: one report per iteration, 1, 2, ..., each with the objective, which never
     * rises (a line search accepts decreases only); the last one has the iterations and the
     * final objective of the result. */
    phase_range(&seen, 3, &from, &to);
    int iterations = loud.probe_iterations;
    printf("\n  %d reports, %d probe iterations ", seen.n, iterations);
    CU_ASSERT(iterations >= 2);
    CU_ASSERT_EQUAL_FATAL(to - from, iterations + 2);
    for (int k = 1; k <= iterations; k++) {
        const struct byol_eval_progress *p = &seen.r[from + k];
        CU_ASSERT(p->done == (size_t)k && !p->last && isfinite(p->loss) && p->loss > 0);
        if (k > 1)
            CU_ASSERT(p->loss <= seen.r[from + k - 1].loss);
    }
    const struct byol_eval_progress *end = &seen.r[to - 1];
    CU_ASSERT(end->last && end->done == (size_t)iterations);
    CU_ASSERT_DOUBLE_EQUAL(end->loss, seen.r[to - 2].loss, 0);

    /* The same numbers. */
    CU_ASSERT_DOUBLE_EQUAL(loud.knn_top1, quiet.knn_top1, 0);
    CU_ASSERT_DOUBLE_EQUAL(loud.linear_top1, quiet.linear_top1, 0);
    CU_ASSERT_DOUBLE_EQUAL(loud.baseline_knn_top1, quiet.baseline_knn_top1, 0);
    CU_ASSERT_DOUBLE_EQUAL(loud.baseline_linear_top1, quiet.baseline_linear_top1, 0);
    CU_ASSERT_EQUAL(loud.probe_iterations, quiet.probe_iterations);
    CU_ASSERT(loud.n_train == N_TRAIN && loud.n_test == N_TEST && loud.baseline_dim == 64);

    /* Unset: no more reports. */
    byol_evaluator_set_progress(e.ev, NULL, &seen);
    seen.n = 0;
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &loud));
    CU_ASSERT_EQUAL(seen.n, 0);
    env_close(&e);
}

/* byol_evaluator_knn: the features and the kNN; with a cached baseline, run reports its pixels
 * but no second kNN or probe. */
static void test_knn_and_cached(void)
{
    struct eval_env e;
    env_open(config_text(""), &e);
    memset(&seen, 0, sizeof seen);
    byol_evaluator_set_progress(e.ev, record, &seen);
    double top1;
    BYOL_CHECK_OK(byol_evaluator_knn(e.ev, e.l, &top1));
    check_phases(&seen, run_phases, 3);

    struct byol_eval_result r;
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &r)); /* stores the baseline */
    seen.n = 0;
    BYOL_CHECK_OK(byol_evaluator_run(e.ev, e.l, &r));
    CU_ASSERT_EQUAL(r.baseline_cached, 1);
    check_phases(&seen, run_phases, 6);
    env_close(&e);
}

/* Through the trainer: a run's closing evaluation is reported, its kNN monitor (every step
 * here) is not; byol_train_eval reports its evaluation. */
static void test_session(void)
{
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(config_text("every = 1; baseline = false;"),
                                    "test-eval-progress.cfg", &cfg));
    memset(&seen, 0, sizeof seen);
    struct byol_train_options o = {
        .root = byol_config_root(cfg), .config_dir = dir, .user = &seen, .eval_progress = record};
    BYOL_CHECK_OK(byol_train_run(be, reg, &o));
    check_phases(&seen, run_phases, 4);

    seen.n = 0;
    o.checkpoint = "none";
    BYOL_CHECK_OK(byol_train_eval(be, reg, &o));
    check_phases(&seen, run_phases, 4);
    byol_config_free(cfg);
}

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("eval-progress");
    write_images(byol_test_path(dir, "train.idx"), N_TRAIN, 0);
    write_labels(byol_test_path(dir, "train-labels.idx"), N_TRAIN);
    write_images(byol_test_path(dir, "test.idx"), N_TEST, 1000);
    write_labels(byol_test_path(dir, "test-labels.idx"), N_TEST);
    /* The baseline cache goes to the scratch folder, never to the user's ~/.cache. */
    setenv("XDG_CACHE_HOME", byol_test_path(dir, "cache"), 1);
    reg = byol_test_registry();
    be = byol_test_backend(reg, "blas", 2);
    static const struct byol_test_case cases[] = {
        {"evaluator: every phase, in order, same results", test_run_phases, 0},
        {"evaluator: kNN only, and a cached baseline", test_knn_and_cached, 0},
        {"trainer: the closing evaluation, not the monitor", test_session, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "eval progress", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
