/* The training loop behind `byolctl run` (core/train/trainer.c): a short run on a small IDX file
 * written by the test, its progress reports and checkpoints, continuing from a checkpoint,
 * and the messages of broken data settings. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/learner.h"
#include "byol/trainer.h"
#include "testutil.h"

#define IMAGES 20
#define SIDE 8

static const char *dir; /* the scratch folder, made by main */
static struct byol_registry *reg;
static struct byol_backend *be;

/* An IDX image file of IMAGES x SIDE x SIDE u8 with a smooth, image-dependent pattern. */
static void write_idx(const char *path)
{
    static const unsigned char hdr[16] = {0, 0, 8, 3,    0, 0, 0, IMAGES,
                                          0, 0, 0, SIDE, 0, 0, 0, SIDE};
    unsigned char b[sizeof hdr + IMAGES * SIDE * SIDE];
    memcpy(b, hdr, sizeof hdr);
    unsigned char *px = b + sizeof hdr;
    for (int n = 0; n < IMAGES; n++)
        for (int i = 0; i < SIDE * SIDE; i++)
            *px++ =
                (unsigned char)(127.5 + 120 * sin(0.3 * n + 0.7 * (i % SIDE) + 0.4 * (i / SIDE)));
    byol_test_write_file(path, b, sizeof b);
}

struct seen {
    int calls;
    int64_t last_step;
    int checkpoints;
    int finite;
    int proj_std_ok;    /* every step's projection std is in (0, 1] */
    int eff_rank_seen;  /* steps with an effective rank (kNN checks) */
    int collapse_warns; /* steps whose report carries the collapse warning */
};

static void on_progress(const struct byol_train_report *r, void *user)
{
    struct seen *s = user;
    s->calls++;
    s->last_step = r->step;
    s->checkpoints += r->checkpoint != NULL;
    s->finite &= isfinite(r->loss) && r->loss >= 0 && r->loss <= 8;
    s->proj_std_ok &= r->proj_std > 0 && r->proj_std <= 1;
    s->eff_rank_seen += !isnan(r->eff_rank);
    s->collapse_warns += r->collapse != NULL;
}

/* A config for the loop: a tiny config-defined encoder on the test's IDX file. */
static const char *config_text(const char *data, const char *train_extra)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "seed = 3;\n"
             "model = { encoder = { name = \"layers\"; in_channels = 1; layers = (\n"
             "  { type = \"conv\"; name = \"conv1\"; out = 4; kernel = 3; pad = 1; },\n"
             "  { type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; name = \"relu\"; },\n"
             "  { type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; },\n"
             "  { type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"
             "  image_size = %d; projection_size = 8; projection_hidden_size = 16; };\n"
             "data = { %s };\n"
             "train = { %s checkpoint_dir = \"%s/ck\"; %s };\n",
             SIDE, data, strstr(train_extra, "batch_size") ? "" : "batch_size = 4;", dir,
             train_extra);
    return text;
}

static int g_resume; /* passed as byol_train_options.resume by run_text */

static byol_status run_text(const char *text, struct seen *s)
{
    struct byol_config *cfg = NULL;
    byol_status st = byol_config_parse(text, "trainer-test.cfg", &cfg);
    if (st == BYOL_OK) {
        struct byol_train_options o = {.root = byol_config_root(cfg),
                                       .config_dir = dir,
                                       .progress = on_progress,
                                       .user = s,
                                       .resume = g_resume};
        st = byol_train_run(be, reg, &o);
    }
    if (st != BYOL_OK)
        printf("  -> %s\n", byol_last_error());
    byol_config_free(cfg);
    return st;
}

static int exists_in(const char *sub, const char *name)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

static int exists(const char *name)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof path, "%s/ck/%s", dir, name);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

static void test_short_run(void)
{
    struct seen s = {.finite = 1, .proj_std_ok = 1};
    CU_ASSERT_EQUAL_FATAL(run_text(config_text("images = \"imgs.idx\";", "steps = 5; "
                                                                         "checkpoint_every = 2;"),
                                   &s),
                          BYOL_OK);
    CU_ASSERT_EQUAL(s.calls, 5);
    CU_ASSERT_EQUAL(s.last_step, 5);
    CU_ASSERT(s.finite);
    CU_ASSERT(s.proj_std_ok);
    CU_ASSERT_EQUAL(s.eff_rank_seen, 0); /* no kNN monitor */
    CU_ASSERT_EQUAL(s.collapse_warns, 0);
    CU_ASSERT_EQUAL(s.checkpoints, 3); /* steps 2, 4 and the end */
    CU_ASSERT(exists("step-2.safetensors") && exists("step-4.safetensors") &&
              exists("step-5.safetensors") && exists("latest.safetensors"));

    /* latest holds the finished run: 5 optimizer steps. */
    struct byol_st_file *f = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/ck/latest.safetensors", dir);
    BYOL_CHECK_OK(byol_st_read(path, &f));
    CU_ASSERT_PTR_NOT_NULL(byol_st_find(f, "online_encoder.net.conv1.weight"));
    CU_ASSERT_PTR_NOT_NULL(byol_st_find(f, "target_encoder.projector.3.weight"));
    CU_ASSERT_PTR_NOT_NULL(byol_st_find(f, "online_predictor.0.weight"));
    byol_st_free(f);
}

/* The collapse monitor's stop, with a threshold every step falls under (0.99 of the healthy
 * 1/sqrt(8)): the warning after collapse_steps = 2 steps, then the end of the run with a
 * checkpoint of step 2; collapse_threshold = 0 turns the monitor off. (tests/cli/collapse.sh
 * makes a run collapse for real.) */
static void test_stop_on_collapse(void)
{
    struct seen s = {.finite = 1, .proj_std_ok = 1};
    CU_ASSERT_EQUAL(run_text(config_text("images = \"imgs.idx\";",
                                         "steps = 6; checkpoint_every = 0; "
                                         "collapse_threshold = 0.99; collapse_steps = 2; "
                                         "stop_on_collapse = true;"),
                             &s),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("step 2: collapse: projection std ");
    BYOL_ASSERT_MSG_HAS(" for 2 steps (to step 2) ");
    BYOL_ASSERT_MSG_HAS("the run stopped (train.stop_on_collapse = true): the last checkpoint is ");
    BYOL_ASSERT_MSG_HAS("/ck/step-2.safetensors");
    CU_ASSERT_EQUAL(s.calls, 2);
    CU_ASSERT_EQUAL(s.collapse_warns, 1);
    CU_ASSERT(exists("step-2.safetensors") && exists("latest.safetensors"));
    struct seen off = {.finite = 1, .proj_std_ok = 1};
    CU_ASSERT_EQUAL(
        run_text(config_text("images = \"imgs.idx\";", "steps = 3; checkpoint_every = 0; "
                                                       "collapse_threshold = 0.0;"),
                 &off),
        BYOL_OK);
    CU_ASSERT_EQUAL(off.collapse_warns, 0);
    CU_ASSERT(off.proj_std_ok);
}

static void test_continue_from_checkpoint(void)
{
    /* init_from starts a new run from the 4-step checkpoint's weights: all 6 steps run (the
     * step counter and the optimizer start afresh; --resume is what continues a run). */
    struct seen s = {.finite = 1};
    char extra[256];
    snprintf(extra, sizeof extra,
             "steps = 6; checkpoint_every = 0; init_from = \"%s/ck/step-4.safetensors\";", dir);
    CU_ASSERT_EQUAL_FATAL(run_text(config_text("images = \"imgs.idx\";", extra), &s), BYOL_OK);
    CU_ASSERT_EQUAL(s.calls, 6);
    CU_ASSERT_EQUAL(s.last_step, 6);
    CU_ASSERT(exists("step-6.safetensors"));
}

static void expect_error(const char *data, const char *train, byol_status want, const char *msg)
{
    struct seen s = {.finite = 1};
    CU_ASSERT_EQUAL(run_text(config_text(data, train), &s), want);
    CU_ASSERT_PTR_NOT_NULL(strstr(byol_last_error(), msg));
    CU_ASSERT_EQUAL(s.calls, 0);
}

static void test_bad_data(void)
{
    expect_error("format = \"parquet\"; images = \"imgs.idx\";", "steps = 1;", BYOL_ERR_UNSUPPORTED,
                 "trainer-test.cfg:8: data.format: unknown format 'parquet'");
    expect_error("images = \"missing.idx\";", "steps = 1;", BYOL_ERR_NOT_FOUND, "missing.idx");
    expect_error("", "steps = 1;", BYOL_ERR_INVALID, "trainer-test.cfg:8: data: missing 'images'");
    expect_error("images = \"imgs.idx\"; colour = true;", "steps = 1;", BYOL_ERR_INVALID,
                 "data.colour: unknown setting");
    expect_error("images = \"imgs.idx\";", "steps = 1; batch_size = 64;", BYOL_ERR_INVALID,
                 "train.batch_size = 64 but the data has 20 images");
    expect_error("images = \"imgs.idx\";", "steps = 1; checkpoint_every = -1;", BYOL_ERR_INVALID,
                 "train.checkpoint_every: must be >= 0");
}

static void test_image_size_mismatch(void)
{
    struct seen s = {.finite = 1};
    char text[2048];
    snprintf(text, sizeof text, "%s", config_text("images = \"imgs.idx\";", "steps = 1;"));
    char *p = strstr(text, "image_size = 8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p[13] = '9';
    CU_ASSERT_EQUAL(run_text(text, &s), BYOL_ERR_SHAPE);
    /* Without a resizing pipeline, the identity's 8x8 images cannot feed a 9x9 model. */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(byol_last_error(), "augment_fn makes 1x8x8 images but the model takes 1x9x9"));
}

/* An augmented config: 8x8 data cropped to the model's 6x6, written to checkpoint folder `ck`. */
static const char *augmented_text(const char *train_extra, const char *ck)
{
    static char text[4096];
    char base[2048], *p;
    snprintf(base, sizeof base, "%s", config_text("images = \"imgs.idx\";", train_extra));
    if ((p = strstr(base, "image_size = 8")))
        p[13] = '6';
    if ((p = strstr(base, "/ck\"")))
        memmove(p + 1 + strlen(ck), p + 3, strlen(p + 3) + 1), memcpy(p + 1, ck, strlen(ck));
    snprintf(text, sizeof text,
             "%saugment_fn = ( { op = \"random_resized_crop\"; scale = [0.3, 1.0]; },\n"
             "  { op = \"horizontal_flip\"; }, { op = \"solarize\"; p = 0.3; } );\n"
             "backend = { threads = 2; };\n",
             base);
    return text;
}

/* Every tensor of two checkpoint files is bit-identical. */
static int same_checkpoints(const char *a, const char *b)
{
    char pa[256], pb[256];
    struct byol_st_file *fa = NULL, *fb = NULL;
    snprintf(pa, sizeof pa, "%s/%s", dir, a);
    snprintf(pb, sizeof pb, "%s/%s", dir, b);
    int same = byol_st_read(pa, &fa) == BYOL_OK && byol_st_read(pb, &fb) == BYOL_OK &&
               byol_st_count(fa) == byol_st_count(fb) && byol_st_count(fa) > 0;
    for (size_t i = 0; same && i < byol_st_count(fa); i++) {
        const struct byol_st_tensor *t = byol_st_at(fa, i), *u = byol_st_find(fb, t->name);
        same = u && u->nbytes == t->nbytes && memcmp(u->data, t->data, t->nbytes) == 0;
    }
    byol_st_free(fa);
    byol_st_free(fb);
    return same;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[1 << 16];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

/* Augmented views (crop to a smaller image_size): a resumed run equals an uninterrupted one,
 * because each image's stream depends only on (seed, step, index, view). */
static void test_augmented_resume(void)
{
    struct seen s = {.finite = 1};
    char extra[256];
    CU_ASSERT_EQUAL_FATAL(run_text(augmented_text("steps = 4; checkpoint_every = 2;", "cka"), &s),
                          BYOL_OK);
    CU_ASSERT(s.finite && s.calls == 4);
    /* Resume run b from a's step 2 (its latest), as --resume does. */
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/cka/step-2.safetensors", dir);
    snprintf(to, sizeof to, "%s/ckb", dir);
    mkdir(to, 0700);
    snprintf(to, sizeof to, "%s/ckb/latest.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(copy_file(from, to), 0);
    snprintf(extra, sizeof extra, "steps = 4;");
    g_resume = 1;
    CU_ASSERT_EQUAL_FATAL(run_text(augmented_text(extra, "ckb"), &s), BYOL_OK);
    g_resume = 0;
    CU_ASSERT(same_checkpoints("cka/step-4.safetensors", "ckb/step-4.safetensors"));
    /* And steps 3 and 4 did train: the weights moved. */
    CU_ASSERT(!same_checkpoints("cka/step-2.safetensors", "cka/step-4.safetensors"));
}

static void test_keep_and_resume(void)
{
    /* keep_checkpoints = 2 with a checkpoint every step: only the two newest stay. */
    struct seen s = {.finite = 1};
    char extra[256];
    snprintf(extra, sizeof extra,
             "steps = 5; checkpoint_every = 1; keep_checkpoints = 2; checkpoint_dir = \"%s/keep\";",
             dir);
    char text[2048];
    snprintf(text, sizeof text, "%s", config_text("images = \"imgs.idx\";", extra));
    /* The config's own checkpoint_dir comes first; drop it so the one above is used. */
    char *own = strstr(text, "checkpoint_dir = \"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(own);
    memset(own, ' ', (size_t)(strchr(own, ';') - own + 1));
    CU_ASSERT_EQUAL_FATAL(run_text(text, &s), BYOL_OK);
    char path[256];
    int present[6];
    for (int i = 1; i <= 5; i++) {
        snprintf(path, sizeof path, "%s/keep/step-%d.safetensors", dir, i);
        present[i] = access(path, F_OK) == 0;
    }
    CU_ASSERT(!present[1] && !present[2] && !present[3] && present[4] && present[5]);

    /* --resume continues from latest (step 5) to step 7. */
    char *steps = strstr(text, "steps = 5");
    steps[8] = '7';
    struct seen r = {.finite = 1};
    g_resume = 1;
    CU_ASSERT_EQUAL(run_text(text, &r), BYOL_OK);
    CU_ASSERT_EQUAL(r.calls, 2);
    CU_ASSERT_EQUAL(r.last_step, 7);

    /* Nothing to resume from: a clear error, no training. */
    char *k = strstr(text, "/keep\"");
    memcpy(k, "/none", 5);
    struct seen z = {.finite = 1};
    CU_ASSERT_EQUAL(run_text(text, &z), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("--resume: no checkpoint to resume from: ");
    CU_ASSERT_EQUAL(z.calls, 0);
    g_resume = 0;
}

/* The augmented config with `extra` appended at the top level, into checkpoint folder `ck`. */
static byol_status run_with(const char *train_extra, const char *ck, const char *extra)
{
    char text[6144];
    struct seen s = {.finite = 1};
    snprintf(text, sizeof text, "%s%s\n", augmented_text(train_extra, ck), extra);
    return run_text(text, &s);
}

/* A trainer plugin (plugins/examples/trainer-lazy-target) drives the same session through the
 * api table: with target_every = 1 it is the built-in loop bit for bit; with target_every = 3
 * the first two steps never move the target, which is the built-in loop with tau = 1. */
static void test_trainer_plugin(void)
{
    char trainer[512];
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 3;", "tp_byol", "trainer = \"byol\";"), BYOL_OK);
    snprintf(trainer, sizeof trainer, "trainer = { name = \"%s\"; target_every = 1; };",
             BYOL_TEST_EXAMPLE_TRAINER);
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 3;", "tp_lazy1", trainer), BYOL_OK);
    CU_ASSERT(same_checkpoints("tp_byol/latest.safetensors", "tp_lazy1/latest.safetensors"));

    snprintf(trainer, sizeof trainer, "trainer = { name = \"%s\"; target_every = 3; };",
             BYOL_TEST_EXAMPLE_TRAINER);
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 2;", "tp_lazy3", trainer), BYOL_OK);
    CU_ASSERT(!same_checkpoints("tp_byol/step-3.safetensors", "tp_lazy3/step-2.safetensors"));
    char base[6144], text[6144], *p;
    snprintf(base, sizeof base, "%s", augmented_text("steps = 2;", "tp_tau1"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p = strstr(base, "projection_size = 8;"));
    snprintf(text, sizeof text, "%.*smoving_average_decay = 1.0; %s", (int)(p - base), base, p);
    struct seen s = {.finite = 1};
    CU_ASSERT_EQUAL_FATAL(run_text(text, &s), BYOL_OK);
    CU_ASSERT(same_checkpoints("tp_lazy3/step-2.safetensors", "tp_tau1/step-2.safetensors"));
}

static void expect_trainer_error(const char *extra, byol_status want, const char *msg)
{
    CU_ASSERT_EQUAL(run_with("steps = 1;", "tp_bad", extra), want);
    BYOL_ASSERT_MSG_HAS(msg);
}

static void test_trainer_errors(void)
{
    char trainer[512];
    expect_trainer_error("trainer = \"nope\";", BYOL_ERR_NOT_FOUND,
                         "trainer-test.cfg:13: trainer: ");
    expect_trainer_error("trainer = 3;", BYOL_ERR_INVALID, "trainer-test.cfg:13: trainer: ");
    snprintf(trainer, sizeof trainer, "trainer = { name = \"%s\"; target_every = 0; };",
             BYOL_TEST_EXAMPLE_TRAINER);
    expect_trainer_error(trainer, BYOL_ERR_INVALID,
                         "trainer-test.cfg:13: trainer.target_every: must be >= 1, got 0");
    snprintf(trainer, sizeof trainer, "trainer = { name = \"%s\"; every = 2; };",
             BYOL_TEST_EXAMPLE_TRAINER);
    expect_trainer_error(trainer, BYOL_ERR_INVALID, "trainer.every: unknown setting");
}

/* A full disk while writing a checkpoint, simulated with RLIMIT_FSIZE (writes past the limit
 * fail with EFBIG once SIGXFSZ is ignored): the previous checkpoint stays intact; "stop" ends
 * the run with the write's message, "continue" reports it and trains on. */
static struct rlimit fs_saved;

static void fs_limit(rlim_t bytes)
{
    struct rlimit r = fs_saved;
    r.rlim_cur = bytes;
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static void on_progress_lift(const struct byol_train_report *r, void *user)
{
    on_progress(r, user);
    if (r->checkpoint_error) {
        ((struct seen *)user)->checkpoints += 100; /* counts failures apart */
        CU_ASSERT_PTR_NOT_NULL(strstr(r->checkpoint_error, "step-3.safetensors"));
        setrlimit(RLIMIT_FSIZE, &fs_saved);
    }
}

static void test_checkpoint_write_failure(void)
{
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &fs_saved), 0);
    signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 2; checkpoint_every = 1;", "full", ""), BYOL_OK);

    fs_limit(4096);
    g_resume = 1;
    CU_ASSERT_EQUAL(run_with("steps = 4; checkpoint_every = 1;", "full", ""), BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS("full/step-3.safetensors: ");
    BYOL_ASSERT_MSG_HAS("File too large");
    setrlimit(RLIMIT_FSIZE, &fs_saved);
    CU_ASSERT(same_checkpoints("full/latest.safetensors", "full/step-2.safetensors"));

    /* continue: step 3's checkpoint fails and is reported; the callback frees the disk, so
     * step 4's is written. */
    struct config_and_seen {
        char text[6144];
        struct seen s;
    } c = {.s = {.finite = 1}};
    snprintf(c.text, sizeof c.text, "%s",
             augmented_text("steps = 4; checkpoint_every = 1; on_checkpoint_error = "
                            "\"continue\";",
                            "full"));
    struct byol_config *cfg = NULL;
    BYOL_CHECK_OK(byol_config_parse(c.text, "trainer-test.cfg", &cfg));
    struct byol_train_options o = {.root = byol_config_root(cfg),
                                   .config_dir = dir,
                                   .progress = on_progress_lift,
                                   .user = &c.s,
                                   .resume = 1};
    fs_limit(4096);
    CU_ASSERT_EQUAL(byol_train_run(be, reg, &o), BYOL_OK);
    setrlimit(RLIMIT_FSIZE, &fs_saved);
    byol_config_free(cfg);
    g_resume = 0;
    CU_ASSERT_EQUAL(c.s.checkpoints, 101); /* step 3 failed, step 4 written */
    CU_ASSERT(exists_in("full", "step-4.safetensors") && !exists_in("full", "step-3.safetensors"));
    CU_ASSERT(same_checkpoints("full/latest.safetensors", "full/step-4.safetensors"));
    expect_error("images = \"imgs.idx\";", "steps = 1; on_checkpoint_error = \"retry\";",
                 BYOL_ERR_INVALID,
                 "train.on_checkpoint_error: must be \"stop\" or \"continue\", got \"retry\"");
}

/* --resume refuses a checkpoint of another config, naming what differs; train.steps may grow
 * unless a cosine schedule runs over it. */
static void test_resume_other_config(void)
{
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 2;", "other", ""), BYOL_OK);
    g_resume = 1;
    CU_ASSERT_EQUAL(run_with("steps = 3; lr = 0.001;", "other", ""), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("other/latest.safetensors: written by another config: train.lr = ");
    BYOL_ASSERT_MSG_HAS(" there, 0.001 here");
    CU_ASSERT_EQUAL(
        run_with("steps = 3;", "other", "augment_fn2 = ( { op = \"random_resized_crop\"; } );"),
        BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("augment_fn2[0].op = (not set) there, \"random_resized_crop\" here");
    CU_ASSERT_EQUAL(run_with("steps = 2; lr_schedule = \"cosine\";", "other", ""),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("train.lr_schedule");
    /* Where only run-only settings differ, it resumes: */
    CU_ASSERT_EQUAL(run_with("steps = 3; keep_checkpoints = 1; checkpoint_every = 3;", "other", ""),
                    BYOL_OK);
    g_resume = 0;
    CU_ASSERT_EQUAL_FATAL(run_with("steps = 2; lr_schedule = \"cosine\";", "othercos", ""),
                          BYOL_OK);
    g_resume = 1;
    CU_ASSERT_EQUAL(run_with("steps = 4; lr_schedule = \"cosine\";", "othercos", ""),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("train.steps = 2 there, 4 here, and the cosine train.lr_schedule runs "
                        "over it");
    g_resume = 0;
}

/* An IDX label file of IMAGES labels: all zero, or a scramble of 0..9. */
static void write_labels(const char *path, int scrambled)
{
    unsigned char b[8 + IMAGES] = {0, 0, 8, 1, 0, 0, 0, IMAGES};
    for (int i = 0; i < IMAGES; i++)
        b[8 + i] = scrambled ? (unsigned char)((i * 7 + 3) % 10) : 0;
    byol_test_write_file(path, b, sizeof b);
}

/* Nothing on the training path reads labels: training with zeroed or scrambled label files
 * ends with the same weights, bit for bit (issue 9's check that BYOL stays unsupervised). */
static void test_labels_unused(void)
{
    char data[256];
    write_labels(byol_test_path(dir, "zero.idx"), 0);
    write_labels(byol_test_path(dir, "scrambled.idx"), 1);
    struct seen s = {.finite = 1};
    snprintf(data, sizeof data, "images = \"imgs.idx\"; labels = \"zero.idx\";");
    char text[4096], *p;
    snprintf(text, sizeof text, "%s", config_text(data, "steps = 3;"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p = strstr(text, "/ck\""));
    memcpy(p, "/lz\"", 4);
    CU_ASSERT_EQUAL_FATAL(run_text(text, &s), BYOL_OK);
    snprintf(data, sizeof data, "images = \"imgs.idx\"; labels = \"scrambled.idx\";");
    snprintf(text, sizeof text, "%s", config_text(data, "steps = 3;"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p = strstr(text, "/ck\""));
    memcpy(p, "/ls\"", 4);
    CU_ASSERT_EQUAL_FATAL(run_text(text, &s), BYOL_OK);
    CU_ASSERT(same_checkpoints("lz/latest.safetensors", "ls/latest.safetensors"));
}

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("trainer");
    write_idx(byol_test_path(dir, "imgs.idx"));
    reg = byol_test_registry();
    be = byol_test_backend(reg, "blas", 2);
    static const struct byol_test_case cases[] = {
        {"a short run: progress and checkpoints", test_short_run, 0},
        {"continue from a checkpoint", test_continue_from_checkpoint, 0},
        {"the collapse monitor stops a run", test_stop_on_collapse, 0},
        {"keep_checkpoints and --resume", test_keep_and_resume, 0},
        {"broken data settings", test_bad_data, 0},
        {"image size mismatch", test_image_size_mismatch, 0},
        {"augmented views resume exactly", test_augmented_resume, 0},
        {"a trainer plugin drives the session", test_trainer_plugin, 0},
        {"trainer selection errors", test_trainer_errors, 0},
        {"a checkpoint write fails", test_checkpoint_write_failure, 0},
        {"--resume with another config", test_resume_other_config, 0},
        {"training reads no labels", test_labels_unused, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "trainer", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
