/* The BYOL learner (core/learner*.c) against PyTorch (fixtures/gen_learner.py) on a backend
 * (blas unless argv[1] or BYOL_TEST_BACKEND names another): loss,
 * gradients, optimizer step, EMA and running statistics for BYOL, SimSiam, a cosine tau and
 * simplicial embeddings on a small config-defined net, one step of ResNet-18, embeddings,
 * checkpoint round trips and the messages of bad configs and bad checkpoints. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byol/eval.h"
#include "byol/learner.h"
#include "learner_check.h"
#include "testutil.h"

/* Tolerances: the small cases use learner_check.h's (RTOL_GRAD, ATOL_GRAD, DRIFT_FACTOR,
 * RTOL_FLOOR and ATOL_STATE, derived there), relative to max|reference| of each tensor.
 *
 * ResNet-18, one step: per-tensor L2 norms within rtol, sampled coordinates within 10 x rtol
 * of the tensor's rms value (norm / sqrt(numel)), rtol = the larger of RTOL_RESNET and
 * DRIFT_FACTOR x the fixture's float32-vs-float64 drift (2.8e-5 for the gradients: conv1's,
 * at the end of 20 batch norms). Measured against PyTorch: norms 8e-6 (blas), 2.5e-6
 * (onednn; 3.8e-6 with ONEDNN_MAX_CPU_ISA=AVX2), samples 9e-5 (blas), 3.3e-5 (onednn) of the
 * rms, parameters and statistics after the step 1e-6; every backend gets the same bounds.
 *
 * What no float32 bound absorbs is a relu whose input lies within rounding of zero: its
 * gradient is dy or 0 by the sign rounding gave it, and one flip moves every earlier gradient
 * by about |dy_i| / ||dy|| ~ 1 / sqrt(numel), 0.4% at layer4. Among ~4.5M relu inputs such
 * near-ties occur (here 2.7e-7 and 9.4e-7 from zero in the adds of layer3.0 and layer2.1,
 * where rounding errors are ~1e-6), so reproducing every mask is partly down to summation
 * order: blas and onednn (AVX-512, AVX2) do here, oneDNN's SSE4.1 kernels flip those two, and
 * with other input images blas flips one too. While backend-onednn took oneDNN's float32
 * batch statistics (5e-6 relative at 8192 values per channel, 50x PyTorch's), four flipped
 * and the gradients missed by 1e-3 (norms) and 8e-2 of the rms (samples). Bounds that wide
 * would hide real errors; these catch one batch norm's weight scaled by 1 + 3e-4 (in its own
 * gradient). A gradient failure with the loss, the state and the small cases passing is most
 * likely a flipped tie. */
#define RTOL_RESNET 1e-4
/* The gradients of a linear bias right before a batch norm (projector.0, predictor.0, and
 * projector.3 before the predictor's) are zero up to rounding: norms of ~1e-8 on both sides,
 * where the other gradients are ~1e-3 .. 1e-1. */
#define ATOL_RESNET 1e-7

#define SMALL_STEPS 5

static struct byol_registry *reg;
static struct byol_backend *be;
static const char *g_dir; /* the scratch folder for saved states, made by main */

/* ---- Learners from fixture configs. --------------------------------------------------- */

/* A learner from config text (messages name it learner-test.cfg). */
static byol_status learner_from_text(const char *text, struct byol_config **cfg,
                                     struct byol_learner **out)
{
    return lc_learner_from_text(be, reg, text, "learner-test.cfg", 0, 0, cfg, out);
}

/* The fixture's learner, its parameters from detinit by state_dict name (the target a copy). */
static struct byol_learner *fixture_learner(const struct byol_st_file *f, struct byol_config **cfg)
{
    return lc_fixture_learner(be, reg, f, "learner-test.cfg", 0, 0, cfg);
}

/* ---- The small cases. ----------------------------------------------------------------- */

/* byol-pytorch's online_encoder(x, return_embedding) in inference mode, on 1 and 3 images
 * (fewer than the 2B the networks are built for), after the five steps. */
static void check_embeddings(struct byol_learner *l, const struct byol_st_file *f, double rtol)
{
    size_t nx = 0;
    float *x = lc_fx_floats(f, "embed/x3", &nx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    int e = byol_learner_embedding_dim(l);
    const size_t p = 32; /* projection_size of the small cases */
    for (int n = 1; n <= 3; n += 2) {
        char key[64];
        float *proj = calloc((size_t)n * p, sizeof *proj), *emb = calloc((size_t)n * e, 4);
        float *emb_only = calloc((size_t)n * e, 4);
        CU_ASSERT_FATAL(proj && emb && emb_only);
        BYOL_CHECK_OK(byol_learner_embed(l, x, n, proj, emb));
        BYOL_CHECK_OK(byol_learner_embed(l, x, n, NULL, emb_only));
        size_t len = 0;
        snprintf(key, sizeof key, "embed/projection%d", n);
        float *ref = lc_fx_floats(f, key, &len);
        CU_ASSERT_FATAL(ref && len == (size_t)n * p);
        CU_ASSERT(byol_test_close(key, proj, ref, len, ATOL_STATE, rtol));
        free(ref);
        snprintf(key, sizeof key, "embed/embedding%d", n);
        ref = lc_fx_floats(f, key, &len);
        CU_ASSERT_FATAL(ref && len == (size_t)n * e);
        CU_ASSERT(byol_test_close(key, emb, ref, len, ATOL_STATE, rtol));
        CU_ASSERT(memcmp(emb, emb_only, len * sizeof *emb) == 0);
        free(ref);
        free(proj);
        free(emb);
        free(emb_only);
    }
    CU_ASSERT_EQUAL(byol_learner_embed(l, x, 0, NULL, NULL), BYOL_ERR_INVALID);
    free(x);
}

/* views: [batch][view] of B images each. */
static const float *view_of(const float *views, size_t per_view, int batch, int view)
{
    return views + ((size_t)batch * 2 + (size_t)view) * per_view;
}

static void run_small(const char *file, int momentum)
{
    printf("\n  fixture %s\n", file);
    struct byol_st_file *f = lc_open_fixture(file);
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    CU_ASSERT_EQUAL(byol_learner_target(l) != NULL, momentum);
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews);
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    size_t per_view = nviews / 4;
    double *loss = lc_fx_doubles(f, "loss", SMALL_STEPS, 1),
           *tau = lc_fx_doubles(f, "tau", SMALL_STEPS, 1);
    double *drift = lc_fx_doubles(f, "drift", 3, 1), rtol[3];
    lc_drift_rtols(drift, rtol);
    printf("  tolerances: step 1 %.2g, step 5 %.2g, loss %.2g\n", rtol[0], rtol[1], rtol[2]);

    float value = 0;
    BYOL_CHECK_OK(byol_learner_forward_backward(l, view_of(views, per_view, 0, 0),
                                                view_of(views, per_view, 0, 1), &value));
    lc_check_loss("loss of step 1", value, loss[0], rtol[2]);
    lc_check_grads(l, f, lc_grad_close, RTOL_GRAD, 11);
    BYOL_CHECK_OK(byol_learner_optimizer_step(l));
    byol_learner_zero_grad(l);
    BYOL_CHECK_OK(byol_learner_update_target(l));
    if (momentum)
        CU_ASSERT_DOUBLE_EQUAL(byol_learner_tau(l), tau[0], 1e-12);
    lc_check_state(l, f, "step1", rtol[0], g_dir);

    for (int k = 1; k < SMALL_STEPS; k++) {
        char what[64];
        BYOL_CHECK_OK(byol_learner_step(l, view_of(views, per_view, k % 2, 0),
                                        view_of(views, per_view, k % 2, 1), &value));
        snprintf(what, sizeof what, "loss of step %d", k + 1);
        lc_check_loss(what, value, loss[k], rtol[2]);
        if (momentum)
            CU_ASSERT_DOUBLE_EQUAL(byol_learner_tau(l), tau[k], 1e-12);
    }
    CU_ASSERT_EQUAL(byol_learner_steps_done(l), SMALL_STEPS);
    lc_check_state(l, f, "step5", rtol[1], g_dir);
    if (byol_st_find(f, "embed/x3"))
        check_embeddings(l, f, rtol[1]);

    free(views);
    free(loss);
    free(tau);
    free(drift);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

static void test_byol(void)
{
    run_small("learner_byol.safetensors", 1);
}

static void test_simsiam(void)
{
    run_small("learner_simsiam.safetensors", 0);
}

static void test_cosine_tau(void)
{
    run_small("learner_cosine.safetensors", 1);
}

static void test_sem(void)
{
    run_small("learner_sem.safetensors", 1);
}

/* 16 images in two chunks and a padded third against one image at a time. */
static void test_embed_chunks(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews);
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    const int n = 16, e = byol_learner_embedding_dim(l);
    size_t per_image = nviews / (size_t)n;
    CU_ASSERT_EQUAL(e, 16);
    float *all = malloc((size_t)n * e * sizeof *all), *one = malloc((size_t)n * e * 4);
    CU_ASSERT_FATAL(all && one);
    BYOL_CHECK_OK(byol_learner_embed(l, views, n, NULL, all));
    for (int i = 0; i < n; i++)
        BYOL_CHECK_OK(byol_learner_embed(l, views + i * per_image, 1, NULL, one + i * e));
    CU_ASSERT(
        byol_test_close("16 images at once vs one at a time", all, one, (size_t)n * e, 1e-7, 1e-6));
    free(all);
    free(one);
    free(views);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

/* ---- ResNet-18. ----------------------------------------------------------------------- */

/* A tensor against its summary <group>/<name>/{norm,index,value}. */
static void check_summary(const struct byol_st_file *f, const char *group, const char *name,
                          const float *data, size_t numel, double rtol)
{
    char key[600];
    snprintf(key, sizeof key, "%s/%s/norm", group, name);
    double *norm = lc_fx_doubles(f, key, 1, 1);
    snprintf(key, sizeof key, "%s/%s/index", group, name);
    const struct byol_st_tensor *idx = byol_st_find(f, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    double sq = 0;
    for (size_t i = 0; i < numel; i++)
        sq += (double)data[i] * data[i];
    double scale = numel ? *norm / sqrt((double)numel) : 0; /* the rms value */
    snprintf(key, sizeof key, "%s/%s/value", group, name);
    double *want = lc_fx_doubles(f, key, idx->numel, 1);
    double worst = 0;
    for (size_t i = 0; i < idx->numel; i++) {
        int64_t at;
        memcpy(&at, (const char *)idx->data + i * 8, 8);
        CU_ASSERT_FATAL(at >= 0 && (size_t)at < numel);
        worst = fmax(worst, fabs(data[at] - want[i]));
    }
    double dnorm = fabs(sqrt(sq) - *norm);
    int ok = dnorm <= rtol * *norm + ATOL_RESNET && worst <= rtol * 10 * scale + ATOL_RESNET;
    printf("  %-56s norm %.6g (diff %.2g), samples max diff %.2g (rms %.2g)%s\n", key + 0, *norm,
           dnorm, worst, scale, ok ? "" : "  <-- FAIL");
    CU_ASSERT(ok);
    free(norm);
    free(want);
}

/* An lc_grad_check against the summary grad/<name>/{norm,index,value}. */
static int resnet_grad(const struct byol_st_file *f, const char *name, const float *grad,
                       size_t numel, double rtol)
{
    char key[600];
    snprintf(key, sizeof key, "grad/%s/norm", name);
    if (!byol_st_find(f, key))
        return 0;
    check_summary(f, "grad", name, grad, numel, rtol);
    return 1;
}

static void check_resnet_state(struct byol_learner *l, const struct byol_st_file *f, double rtol)
{
    const char *path = byol_test_path(g_dir, "resnet.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(l, path, 0));
    struct byol_st_file *s = NULL;
    BYOL_CHECK_OK(byol_st_read(path, &s));
    char key[600];
    for (size_t i = 0; i < byol_st_count(s); i++) {
        const struct byol_st_tensor *t = byol_st_at(s, i);
        if (t->dtype == BYOL_ST_I64) {
            snprintf(key, sizeof key, "step1/%s", t->name);
            const struct byol_st_tensor *r = byol_st_find(f, key);
            CU_ASSERT_FATAL(r != NULL && r->dtype == BYOL_ST_I64);
            CU_ASSERT_EQUAL(lc_st_i64(t), lc_st_i64(r));
            continue;
        }
        float *got = lc_fx_floats(s, t->name, NULL);
        check_summary(f, "step1", t->name, got, t->numel, rtol);
        free(got);
    }
    byol_st_free(s);
    unlink(path);
}

static void test_resnet18(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_resnet18.safetensors");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews);
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    double *loss = lc_fx_doubles(f, "loss", 1, 1), *drift = lc_fx_doubles(f, "drift", 3, 1);
    double rtol_grad = fmax(RTOL_RESNET, DRIFT_FACTOR * drift[0]);
    double rtol_state = fmax(RTOL_RESNET, DRIFT_FACTOR * drift[1]);
    printf("  tolerances: gradients %.2g, state %.2g\n", rtol_grad, rtol_state);
    float value = 0;
    BYOL_CHECK_OK(byol_learner_forward_backward(l, views, views + nviews / 2, &value));
    lc_check_loss("ResNet-18 loss", value, *loss, fmax(RTOL_FLOOR, DRIFT_FACTOR * drift[2]));
    lc_check_grads(l, f, resnet_grad, rtol_grad, 60);
    BYOL_CHECK_OK(byol_learner_optimizer_step(l));
    byol_learner_zero_grad(l);
    BYOL_CHECK_OK(byol_learner_update_target(l));
    check_resnet_state(l, f, rtol_state);
    free(drift);
    CU_ASSERT_EQUAL(byol_learner_embedding_dim(l), 512);
    free(views);
    free(loss);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

/* ---- Checkpoints. --------------------------------------------------------------------- */

/* Two training steps of `l` on the fixture's views; the views (free them) and one view's
 * floats in *per_view. */
static float *two_steps(struct byol_learner *l, const struct byol_st_file *f, size_t *per_view)
{
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews), loss;
    *per_view = nviews / 4;
    BYOL_CHECK_OK(byol_learner_step(l, views, views + *per_view, &loss));
    BYOL_CHECK_OK(byol_learner_step(l, views + 2 * *per_view, views + 3 * *per_view, &loss));
    return views;
}

/* Both networks of a and b hold the same parameters, buffers and batch-norm counters. */
static void check_same_networks(struct byol_learner *a, struct byol_learner *b)
{
    struct byol_net *nets[2][2] = {{byol_learner_online(a), byol_learner_target(a)},
                                   {byol_learner_online(b), byol_learner_target(b)}};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT(lc_same_floats(byol_net_params(nets[0][k]), byol_net_params(nets[1][k]),
                                 byol_net_num_params(nets[0][k])));
        CU_ASSERT(lc_same_floats(byol_net_buffers(nets[0][k]), byol_net_buffers(nets[1][k]),
                                 byol_net_num_buffers(nets[0][k])));
        CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(nets[0][k], "bn1"),
                        *byol_net_bn_batches_tracked(nets[1][k], "bn1"));
    }
}

/* The two learners of a checkpoint test, their configs and their fixture. */
static void free_pair(struct byol_learner *a, struct byol_learner *b, struct byol_config *c1,
                      struct byol_config *c2, struct byol_st_file *f)
{
    byol_learner_free(a);
    byol_learner_free(b);
    byol_config_free(c1);
    byol_config_free(c2);
    byol_st_free(f);
}

/* Saved and loaded with the optimizer state, a second learner continues bit for bit. */
static void test_round_trip(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *c1 = NULL, *c2 = NULL;
    struct byol_learner *a = fixture_learner(f, &c1), *b = NULL;
    BYOL_CHECK_OK(learner_from_text(byol_st_metadata(f, "config"), &c2, &b));
    size_t per_view;
    float *views = two_steps(a, f, &per_view), la, lb;
    const char *path = byol_test_path(g_dir, "roundtrip.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(a, path, 1));
    BYOL_CHECK_OK(byol_learner_load_state(b, path));
    CU_ASSERT_EQUAL(byol_learner_steps_done(b), 2);
    check_same_networks(a, b);
    struct byol_net *nets[2][2] = {{byol_learner_online(a), byol_learner_target(a)},
                                   {byol_learner_online(b), byol_learner_target(b)}};
    struct byol_optim *oa = byol_learner_optim(a), *ob = byol_learner_optim(b);
    CU_ASSERT_EQUAL_FATAL(byol_optim_state_count(oa), 1); /* SGD's momentum_buffer */
    CU_ASSERT(lc_same_floats(byol_optim_state_data(oa, 0), byol_optim_state_data(ob, 0),
                             byol_net_num_params(nets[0][0])));
    BYOL_CHECK_OK(byol_learner_step(a, views, views + per_view, &la));
    BYOL_CHECK_OK(byol_learner_step(b, views, views + per_view, &lb));
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT(lc_same_floats(byol_net_params(nets[0][0]), byol_net_params(nets[1][0]),
                             byol_net_num_params(nets[0][0])));
    CU_ASSERT(lc_same_floats(byol_net_params(nets[0][1]), byol_net_params(nets[1][1]),
                             byol_net_num_params(nets[0][1])));
    unlink(path);
    free(views);
    free_pair(a, b, c1, c2, f);
}

/* A copy of a saved state with tensor `change` given shape [3, 5] (NULL: none), `drop`
 * left out and `extra` added (each may be NULL). */
static void write_variant(const char *from, const char *to, const char *change, const char *drop,
                          const char *extra)
{
    struct byol_st_file *s = NULL;
    struct byol_st_writer *w = NULL;
    BYOL_CHECK_OK(byol_st_read(from, &s));
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    static const float zeros[15];
    const int64_t odd[2] = {3, 5};
    for (size_t i = 0; i < byol_st_count(s); i++) {
        const struct byol_st_tensor *t = byol_st_at(s, i);
        if (drop && !strcmp(t->name, drop))
            continue;
        if (change && !strcmp(t->name, change)) {
            BYOL_CHECK_OK(byol_st_writer_add(w, t->name, BYOL_ST_F32, 2, odd, zeros));
            continue;
        }
        /* Everything else zeroed, so a load that writes before it checks shows. */
        float *z = calloc(t->numel + 1, sizeof *z);
        BYOL_CHECK_OK(byol_st_writer_add(w, t->name, t->dtype, t->ndim, t->dims,
                                         t->dtype == BYOL_ST_F32 ? (const void *)z : t->data));
        free(z);
    }
    if (extra)
        BYOL_CHECK_OK(byol_st_writer_add(w, extra, BYOL_ST_F32, 2, odd, zeros));
    BYOL_CHECK_OK(byol_st_writer_save(w, to));
    byol_st_writer_free(w);
    byol_st_free(s);
}

/* load_state (weights_only = 0) or load_weights fails with `want` and every needle, writing
 * nothing. */
static void expect_load_error(struct byol_learner *l, const char *path, int weights_only,
                              byol_status want, const char *const needles[3])
{
    float before = byol_net_params(byol_learner_online(l))[0];
    byol_status st =
        weights_only ? byol_learner_load_weights(l, path, NULL) : byol_learner_load_state(l, path);
    printf("  load: %s\n", byol_last_error());
    CU_ASSERT_EQUAL(st, want);
    for (int i = 0; i < 3 && needles[i]; i++)
        BYOL_ASSERT_MSG_HAS(needles[i]);
    CU_ASSERT_EQUAL(byol_net_params(byol_learner_online(l))[0], before);
}

static void test_bad_states(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    const char *good = byol_test_path(g_dir, "good.safetensors"),
               *bad = byol_test_path(g_dir, "bad.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(l, good, 0));

    write_variant(good, bad, "online_predictor.0.weight", NULL, NULL);
    const char *shape[3] = {"online_predictor.0.weight", "[3, 5]", "[64, 32]"};
    expect_load_error(l, bad, 0, BYOL_ERR_SHAPE, shape);

    write_variant(good, bad, NULL, "target_encoder.projector.3.bias", NULL);
    const char *missing[3] = {"target_encoder.projector.3.bias", "missing", NULL};
    expect_load_error(l, bad, 0, BYOL_ERR_NOT_FOUND, missing);

    write_variant(good, bad, NULL, NULL, "online_encoder.net.conv9.weight");
    const char *extra[3] = {"online_encoder.net.conv9.weight", "not part", NULL};
    expect_load_error(l, bad, 0, BYOL_ERR_FORMAT, extra);

    write_variant(good, bad, NULL, NULL, "optim.exp_avg.online_predictor.0.weight");
    /* An optimizer part: then all of this optimizer's state must be there. */
    const char *optim[3] = {"optimizer tensors are missing", "optim.momentum_buffer.", NULL};
    expect_load_error(l, bad, 0, BYOL_ERR_NOT_FOUND, optim);

    /* byol-pytorch's state_dict also names the encoder "net.*": accepted and skipped. */
    write_variant(good, bad, NULL, NULL, "net.conv1.weight");
    BYOL_CHECK_OK(byol_learner_load_state(l, bad));
    CU_ASSERT_EQUAL(byol_net_params(byol_learner_online(l))[0], 0.0f);

    unlink(good);
    unlink(bad);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

/* The weights of a checkpoint written under another optimizer (SGD's momentum_buffer into an
 * Adam learner): load_state refuses them, load_weights takes the networks, batch-norm buffers
 * and counters and leaves the optimizer fresh at step 0, while still checking every model
 * tensor and refusing tensors of no part of the learner. */
static void test_load_weights(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *c1 = NULL, *c2 = NULL;
    struct byol_learner *a = fixture_learner(f, &c1), *b = NULL;
    char text[4096];
    snprintf(text, sizeof text, "%s", byol_st_metadata(f, "config"));
    char *sgd = strstr(text, "optimizer = \"sgd\";");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sgd);
    memcpy(sgd, "optimizer = \"adam\"", 18);
    BYOL_CHECK_OK(learner_from_text(text, &c2, &b));
    size_t per_view;
    float *views = two_steps(a, f, &per_view), loss;
    const char *path = byol_test_path(g_dir, "sgd.safetensors"),
               *bad = byol_test_path(g_dir, "sgd-bad.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(a, path, 1));

    const char *whole[3] = {"optimizer tensors are missing", "optim.exp_avg.", NULL};
    expect_load_error(b, path, 0, BYOL_ERR_NOT_FOUND, whole);
    int64_t step = -5;
    BYOL_CHECK_OK(byol_learner_load_weights(b, path, &step));
    CU_ASSERT_EQUAL(step, 2);
    CU_ASSERT_EQUAL(byol_learner_steps_done(b), 0);
    check_same_networks(a, b);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(byol_learner_target(b), "bn1"), 2);
    struct byol_optim *ob = byol_learner_optim(b);
    CU_ASSERT_EQUAL_FATAL(byol_optim_state_count(ob), 2); /* Adam's exp_avg, exp_avg_sq */
    const float *m = byol_optim_state_data(ob, 0);
    int fresh = 1;
    for (size_t i = 0; i < byol_net_num_params(byol_learner_online(b)); i++)
        fresh &= m[i] == 0.0f;
    CU_ASSERT(fresh);
    BYOL_CHECK_OK(byol_learner_step(b, views, views + per_view, &loss));
    CU_ASSERT_EQUAL(byol_learner_steps_done(b), 1);

    /* A file without optimizer state: no step. */
    BYOL_CHECK_OK(byol_learner_save_state(a, bad, 0));
    BYOL_CHECK_OK(byol_learner_load_weights(b, bad, &step));
    CU_ASSERT_EQUAL(step, -1);

    /* Every model tensor is still checked, and a tensor of no part of the learner refused. */
    write_variant(path, bad, "online_predictor.0.weight", NULL, NULL);
    const char *shape[3] = {"online_predictor.0.weight", "[3, 5]", "[64, 32]"};
    expect_load_error(b, bad, 1, BYOL_ERR_SHAPE, shape);
    write_variant(path, bad, NULL, "target_encoder.net.bn1.running_var", NULL);
    const char *missing[3] = {"1 model tensor is missing", "target_encoder.net.bn1.running_var",
                              NULL};
    expect_load_error(b, bad, 1, BYOL_ERR_NOT_FOUND, missing);
    write_variant(path, bad, NULL, NULL, "online_encoder.net.conv9.weight");
    const char *extra[3] = {"tensor 'online_encoder.net.conv9.weight' is not part", NULL, NULL};
    expect_load_error(b, bad, 1, BYOL_ERR_FORMAT, extra);
    write_variant(path, bad, NULL, NULL, "optim.exp_avg.online_encoder.net.conv9.weight");
    const char *no_model[3] = {"'optim.exp_avg.online_encoder.net.conv9.weight' is not part", NULL,
                               NULL};
    expect_load_error(b, bad, 1, BYOL_ERR_FORMAT, no_model);
    write_variant(path, bad, NULL, NULL, "optim.online_predictor.0.weight");
    const char *no_buffer[3] = {"'optim.online_predictor.0.weight' is not part", NULL, NULL};
    expect_load_error(b, bad, 1, BYOL_ERR_FORMAT, no_buffer);
    BYOL_CHECK_OK(byol_learner_save_state(a, path, 0));
    write_variant(path, bad, NULL, NULL, "optim.step");
    const char *step_dtype[3] = {"tensor 'optim.step' has dtype F32, the learner's is I64", NULL,
                                 NULL};
    expect_load_error(b, bad, 1, BYOL_ERR_FORMAT, step_dtype);
    /* Any optimizer's state of this model is skipped: SGD's here, or another's. */
    write_variant(path, bad, NULL, NULL, "optim.exp_avg.online_predictor.0.weight");
    BYOL_CHECK_OK(byol_learner_load_weights(b, bad, NULL));
    CU_ASSERT_EQUAL(byol_net_params(byol_learner_online(b))[0], 0.0f);

    unlink(path);
    unlink(bad);
    free(views);
    free_pair(a, b, c1, c2, f);
}

/* Torchvision-named encoder weights go into the online encoder and the target's; the
 * projectors keep their values; a file without one of the encoder's tensors fails. */
static void test_encoder_weights(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *c1 = NULL, *c2 = NULL;
    struct byol_learner *src = fixture_learner(f, &c1), *dst = NULL;
    BYOL_CHECK_OK(learner_from_text(byol_st_metadata(f, "config"), &c2, &dst));
    struct byol_net *from = byol_learner_online(src), *to = byol_learner_online(dst);
    const char *path = byol_test_path(g_dir, "weights.safetensors"),
               *partial = byol_test_path(g_dir, "partial.safetensors");
    struct byol_st_writer *w = NULL, *wp = NULL;
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_create(&wp));
    for (size_t i = 0; i < byol_net_param_count(from); i++) {
        const struct byol_param *p = byol_net_param_at(from, i);
        int64_t dims[4] = {p->dims[0], p->dims[1], p->dims[2], p->dims[3]};
        if (!strncmp(p->name, "projector.", 10) || !strncmp(p->name, "predictor.", 10))
            continue;
        BYOL_CHECK_OK(byol_st_writer_add(w, p->name, BYOL_ST_F32, p->ndim, dims, p->data));
        if (strcmp(p->name, "layer2.bn2.running_var") != 0)
            BYOL_CHECK_OK(byol_st_writer_add(wp, p->name, BYOL_ST_F32, p->ndim, dims, p->data));
    }
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    BYOL_CHECK_OK(byol_st_writer_save(wp, partial));
    float proj0 = byol_net_find_param(to, "projector.0.weight")->data[0];
    CU_ASSERT_EQUAL(byol_learner_load_encoder_weights(dst, partial), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("layer2.bn2.running_var");
    BYOL_CHECK_OK(byol_learner_load_encoder_weights(dst, path));
    const char *names[3] = {"conv1.weight", "layer2.downsample.1.running_mean", "fc.bias"};
    for (int k = 0; k < 3; k++) {
        const struct byol_param *a = byol_net_find_param(from, names[k]);
        const struct byol_param *b = byol_net_find_param(to, names[k]);
        const struct byol_param *t = byol_net_find_param(byol_learner_target(dst), names[k]);
        CU_ASSERT_FATAL(a && b && t);
        CU_ASSERT(lc_same_floats(a->data, b->data, a->numel));
        CU_ASSERT(lc_same_floats(a->data, t->data, a->numel));
    }
    CU_ASSERT_EQUAL(byol_net_find_param(to, "projector.0.weight")->data[0], proj0);
    unlink(path);
    unlink(partial);
    byol_st_writer_free(w);
    byol_st_writer_free(wp);
    byol_learner_free(src);
    byol_learner_free(dst);
    byol_config_free(c1);
    byol_config_free(c2);
    byol_st_free(f);
}

/* ---- Configs. ------------------------------------------------------------------------- */

#define SMALL_ENCODER                                                                              \
    "model = { encoder = { name = \"layers\"; in_channels = 1; layers = ("                         \
    "{ type = \"conv\"; name = \"conv1\"; out = 4; kernel = 3; pad = 1; },"                        \
    "{ type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; name = \"relu\"; },"                   \
    "{ type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; name = \"flatten\"; },"    \
    "{ type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"                                       \
    "  image_size = 8; projection_size = 8; projection_hidden_size = 16;\n"

/* ---- The collapse monitor's statistics. ------------------------------------------------- */

/* byol_projection_std against hand computations, and the learner's value after a step. */
static void test_projection_std(void)
{
    enum { D = 4 };
    float rows[2 * D * D];
    /* Every row the same (at any scale): 0. */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < D; j++)
            rows[i * D + j] = (float)((j + 1) * (i % 2 ? 3 : 1));
    CU_ASSERT_DOUBLE_EQUAL(byol_projection_std(rows, 8, D), 0.0, 1e-12);
    /* +e_j and -e_j for every j: each dimension holds 1, -1 and 2D - 2 zeros, mean 0, so its
     * std is sqrt(2 / 2D) = 1/sqrt(D), the healthy value. Scale does not matter. */
    memset(rows, 0, sizeof rows);
    for (int j = 0; j < D; j++) {
        rows[(2 * j) * D + j] = 5.0f;
        rows[(2 * j + 1) * D + j] = -0.5f;
    }
    CU_ASSERT_DOUBLE_EQUAL(byol_projection_std(rows, 2 * D, D), 1.0 / sqrt(D), 1e-12);
    /* The D orthonormal rows e_j: each dimension holds one 1 and D - 1 zeros, mean 1/D,
     * variance 1/D - 1/D^2: std sqrt(D - 1) / D. */
    memset(rows, 0, sizeof rows);
    for (int j = 0; j < D; j++)
        rows[j * D + j] = 1.0f;
    CU_ASSERT_DOUBLE_EQUAL(byol_projection_std(rows, D, D), sqrt((double)(D - 1)) / D, 1e-12);
    CU_ASSERT(isnan(byol_projection_std(rows, 0, D)));

    /* The learner's: NAN before a step, then the statistic of its online projections (both
     * views), read back from the network. */
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    CU_ASSERT(isnan(byol_learner_projection_std(l)));
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews), value = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    size_t per_view = nviews / 4;
    BYOL_CHECK_OK(byol_learner_forward_backward(l, view_of(views, per_view, 0, 0),
                                                view_of(views, per_view, 0, 1), &value));
    printf("\n");
    CU_ASSERT(lc_check_projection_std(l, "projector.3") > 0);
    free(views);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

/* A rank-k matrix of n rows and d columns whose k nonzero singular values are equal after
 * centring: row i holds +-scale at column (i mod k) * d / k, the sign flipping every k rows
 * (n a multiple of 2k keeps every column's mean 0). */
static float *rank_k(int n, int d, int k, float scale)
{
    float *x = calloc((size_t)n * (size_t)d, sizeof *x);
    for (int i = 0; i < n; i++)
        x[(size_t)i * d + (size_t)((i % k) * (d / k))] = (i / k) % 2 ? -scale : scale;
    return x;
}

static void test_effective_rank(void)
{
    double r = 0;
    /* Gram path (rows <= columns) and covariance path (rows > columns): exactly k. */
    float *x = rank_k(40, 50, 5, 3.0f);
    BYOL_CHECK_OK(byol_effective_rank(x, 40, 50, 0, &r));
    CU_ASSERT_DOUBLE_EQUAL(r, 5.0, 1e-9);
    free(x);
    x = rank_k(420, 8, 3, 0.25f);
    BYOL_CHECK_OK(byol_effective_rank(x, 420, 8, 0, &r));
    CU_ASSERT_DOUBLE_EQUAL(r, 3.0, 1e-9);
    /* Plus a constant row offset (centring removes it) and a little noise: about k. */
    for (int i = 0; i < 420; i++)
        for (int j = 0; j < 8; j++)
            x[i * 8 + j] += 7.0f + 1e-3f * (float)(((i * 37 + j * 11) % 17) - 8) / 8.0f;
    BYOL_CHECK_OK(byol_effective_rank(x, 420, 8, 0, &r));
    printf("\n  rank 3 plus noise: effective rank %.4f\n", r);
    CU_ASSERT(fabs(r - 3.0) < 0.2);
    free(x);
    /* Subsampled to max_rows evenly spaced rows (3072 rows, 1024 taken: every 3rd, which
     * visits the k = 8 columns in turn, with both signs about equally often): about k. */
    x = rank_k(3072, 64, 8, 1.0f);
    BYOL_CHECK_OK(byol_effective_rank(x, 3072, 64, 1024, &r));
    printf("  rank 8, every 3rd row: effective rank %.4f\n", r);
    CU_ASSERT(fabs(r - 8.0) < 0.05);
    free(x);
    /* Every row the same: 0. Full rank with equal spread: the dimension. */
    float same[6 * 3] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
    BYOL_CHECK_OK(byol_effective_rank(same, 6, 3, 0, &r));
    CU_ASSERT_DOUBLE_EQUAL(r, 0.0, 0);
    x = rank_k(60, 6, 6, 2.0f);
    BYOL_CHECK_OK(byol_effective_rank(x, 60, 6, 0, &r));
    CU_ASSERT_DOUBLE_EQUAL(r, 6.0, 1e-9);
    /* One direction far stronger than the rest: close to 1. */
    x[0] = 1000.0f;
    x[6 * 6] = -1000.0f;
    BYOL_CHECK_OK(byol_effective_rank(x, 60, 6, 0, &r));
    CU_ASSERT(r > 1.0 && r < 2.0);
    free(x);
    CU_ASSERT_EQUAL(byol_effective_rank(NULL, 6, 3, 0, &r), BYOL_ERR_INVALID);
}

static byol_status try_config(const char *model_extra, const char *train)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s};\ntrain = { %s };\n", SMALL_ENCODER, model_extra, train);
    struct byol_config *cfg = NULL;
    struct byol_learner *l = NULL;
    byol_status st = learner_from_text(text, &cfg, &l);
    printf("  %s\n", st == BYOL_OK ? "ok" : byol_last_error());
    byol_learner_free(l);
    byol_config_free(cfg);
    return st;
}

static void test_configs(void)
{
    CU_ASSERT_EQUAL(try_config("", "batch_size = 2;"), BYOL_OK);
    CU_ASSERT_EQUAL(try_config("", "batch_size = 1;"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("batch_size = 1: BYOL needs at least 2 images");
    CU_ASSERT_EQUAL(try_config("", "batch_size = 2; epochs = 3;"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("learner-test.cfg:4: train.epochs");
    CU_ASSERT_EQUAL(try_config("", "batch_size = 2; checkpoint_dir = \"x\"; init_from = \"y\";"
                                   " checkpoint_every = 5; keep_checkpoints = 2;"),
                    BYOL_OK);
    CU_ASSERT_EQUAL(try_config("  hiddenlayer = 1;\n", "batch_size = 2;"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("learner-test.cfg:3: model.hiddenlayer");
    CU_ASSERT_EQUAL(try_config("  hidden_layer = \"nope\";\n", "batch_size = 2;"),
                    BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("conv1, bn1, relu, avgpool, flatten, fc");
    CU_ASSERT_EQUAL(try_config("  hidden_layer = 1.5;\n", "batch_size = 2;"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("learner-test.cfg:3: model.hidden_layer");
    CU_ASSERT_EQUAL(try_config("  hidden_layer = -7;\n", "batch_size = 2;"), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("hidden_layer = -7");
    CU_ASSERT_EQUAL(try_config("  hidden_layer = \"relu\";\n", "batch_size = 2;"), BYOL_OK);
    CU_ASSERT_EQUAL(try_config("  tau_schedule = \"linear\";\n", "batch_size = 2;"),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("model.tau_schedule: unknown schedule 'linear'");
    CU_ASSERT_EQUAL(try_config("  moving_average_decay = 1.5;\n", "batch_size = 2;"),
                    BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("model.moving_average_decay");
    CU_ASSERT_EQUAL(try_config("", "batch_size = 2; optimizer = \"rmsprop\";"), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("learner-test.cfg:4: train.optimizer: unknown");
    CU_ASSERT_EQUAL(try_config("  sync_batchnorm = true; use_simplicial_embeddings = true;\n"
                               "  sem_num_simplices = 2; sem_simplex_dim = 4;\n",
                               "batch_size = 2;"),
                    BYOL_OK);
}

/* Every online parameter the loss reaches trains; the fc after the hidden layer does not,
 * even with weight decay (PyTorch leaves its .grad None, so SGD skips it). */
static void test_frozen_fc(void)
{
    struct byol_st_file *f = lc_open_fixture("learner_byol.safetensors");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, &cfg);
    struct byol_net *net = byol_learner_online(l);
    const struct byol_param *fc = byol_net_find_param(net, "fc.weight");
    const struct byol_param *conv = byol_net_find_param(net, "conv1.weight");
    CU_ASSERT_FATAL(fc && conv);
    float fc0 = fc->data[0], conv0 = conv->data[0];
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews), loss;
    BYOL_CHECK_OK(byol_learner_step(l, views, views + nviews / 4, &loss));
    CU_ASSERT_EQUAL(fc->data[0], fc0);
    CU_ASSERT_NOT_EQUAL(conv->data[0], conv0);
    CU_ASSERT_EQUAL(
        byol_optim_state_data(byol_learner_optim(l), 0)[fc->data - byol_net_params(net)], 0.0f);
    free(views);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

int main(int argc, char **argv)
{
    /* The backend: argv[1], else BYOL_TEST_BACKEND, else the blas reference. */
    const char *backend = getenv("BYOL_TEST_BACKEND");
    if (argc > 1)
        backend = argv[1];
    g_dir = byol_test_tmpdir("learner");
    reg = byol_test_registry();
    be = byol_test_backend(reg, backend && *backend ? backend : "blas", 2);
    printf("backend: %s\n", byol_backend_name(be));
    static const struct byol_test_case cases[] = {
        {"BYOL: 5 SGD steps, EMA, hidden layer -2, embeddings", test_byol, 0},
        {"SimSiam (use_momentum = false)", test_simsiam, 0},
        {"collapse monitor: projection std", test_projection_std, 0},
        {"collapse monitor: effective rank", test_effective_rank, 0},
        {"cosine tau schedule", test_cosine_tau, 0},
        {"simplicial embeddings", test_sem, 0},
        {"embeddings in chunks", test_embed_chunks, 0},
        {"ResNet-18 one step", test_resnet18, 1},
        {"save / load round trip", test_round_trip, 0},
        {"bad states: shape, missing, extra", test_bad_states, 0},
        {"weights only: another optimizer's checkpoint", test_load_weights, 0},
        {"torchvision encoder weights", test_encoder_weights, 0},
        {"config reading and errors", test_configs, 0},
        {"the unused fc is not trained", test_frozen_fc, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "learner", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    byol_test_remove_tree(g_dir);
    return rc;
}
