/* Multi-crop in the learner (byol_learner_step_views) and the network engine's shared build
 * (byol_net_build_shared) on a backend (blas unless argv[1] or BYOL_TEST_BACKEND names
 * another): without local views the step is bit for bit the two-view one; with N = 2 local
 * views it matches PyTorch (fixtures/gen_multicrop.py) for BYOL and SimSiam; ResNet-18 takes
 * local views at half its size; bad settings fail naming the field. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/learner.h"
#include "learner_check.h"
#include "testutil.h"

/* Tolerances: learner_check.h's, as test_learner.c's (gradients of the first step within
 * RTOL_GRAD; loss and state after steps 1 and STEPS within DRIFT_FACTOR times the fixture's
 * float32-vs-float64 drift of PyTorch against itself, at least RTOL_FLOOR). */
#define STEPS 3

static struct byol_registry *reg;
static struct byol_backend *be;
static const char *g_dir;

/* ---- Fixtures. -------------------------------------------------------------------------- */

static int meta_int(const struct byol_st_file *f, const char *key)
{
    const char *v = byol_st_metadata(f, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return atoi(v);
}

/* ---- Learners. -------------------------------------------------------------------------- */

/* A learner from config text with the multi-crop fields (which no config setting fills). */
static byol_status learner_from_text(const char *text, int local_crops, int local_size,
                                     struct byol_config **cfg, struct byol_learner **out)
{
    return lc_learner_from_text(be, reg, text, "multicrop-test.cfg", local_crops, local_size, cfg,
                                out);
}

/* The fixture's learner, its parameters from detinit by state_dict name (the target a copy). */
static struct byol_learner *fixture_learner(const struct byol_st_file *f, int local_crops,
                                            int local_size, struct byol_config **cfg)
{
    return lc_fixture_learner(be, reg, f, "multicrop-test.cfg", local_crops, local_size, cfg);
}

static float *pattern(size_t n, float phase);

/* ---- N = 0: the two-view step, bit for bit. --------------------------------------------- */

/* Every parameter, gradient, buffer, batch-norm counter and optimizer state of a and b. */
static void check_identical(struct byol_learner *a, struct byol_learner *b)
{
    struct byol_net *na[2] = {byol_learner_online(a), byol_learner_target(a)};
    struct byol_net *nb[2] = {byol_learner_online(b), byol_learner_target(b)};
    for (int k = 0; k < 2 && na[k]; k++) {
        size_t np = byol_net_num_params(na[k]);
        CU_ASSERT(lc_same_floats(byol_net_params(na[k]), byol_net_params(nb[k]), np));
        CU_ASSERT(lc_same_floats(byol_net_grads(na[k]), byol_net_grads(nb[k]), np));
        CU_ASSERT(lc_same_floats(byol_net_buffers(na[k]), byol_net_buffers(nb[k]),
                                 byol_net_num_buffers(na[k])));
        for (size_t i = 0; i < byol_net_layer_count(na[k]); i++) {
            const char *layer = byol_net_layer_name(na[k], i);
            const int64_t *ca = byol_net_bn_batches_tracked(na[k], layer);
            if (ca)
                CU_ASSERT_EQUAL(*ca, *byol_net_bn_batches_tracked(nb[k], layer));
        }
    }
    struct byol_optim *oa = byol_learner_optim(a), *ob = byol_learner_optim(b);
    for (size_t s = 0; s < byol_optim_state_count(oa); s++)
        CU_ASSERT(lc_same_floats(byol_optim_state_data(oa, s), byol_optim_state_data(ob, s),
                                 byol_net_num_params(na[0])));
    CU_ASSERT_EQUAL(byol_learner_steps_done(a), byol_learner_steps_done(b));
}

/* byol_learner_step against byol_learner_step_views without local views (local = NULL, and
 * a pointer that local_crops = 0 must not read), and the parts of a step likewise. */
static void test_no_local_views(void)
{
    struct byol_st_file *f = lc_open_fixture("multicrop_byol.safetensors");
    struct byol_config *c1 = NULL, *c2 = NULL, *c3 = NULL;
    struct byol_learner *a = fixture_learner(f, 0, 0, &c1), *b = fixture_learner(f, 0, 0, &c2);
    /* local_size is not looked at without local views. */
    struct byol_learner *c = fixture_learner(f, 0, 99, &c3);
    size_t nviews = 0;
    float *views = lc_fx_floats(f, "views", &nviews);
    CU_ASSERT_PTR_NOT_NULL_FATAL(views);
    size_t per_view = nviews / 4;
    float junk[4] = {NAN, NAN, NAN, NAN};
    for (int k = 0; k < 4; k++) {
        const float *v1 = views + (size_t)(k % 2) * 2 * per_view, *v2 = v1 + per_view;
        float la = 0, lb = 1, lc = 2;
        if (k == 0) { /* the parts of the step */
            BYOL_CHECK_OK(byol_learner_forward_backward(a, v1, v2, &la));
            BYOL_CHECK_OK(byol_learner_forward_backward_views(b, v1, v2, NULL, &lb));
            BYOL_CHECK_OK(byol_learner_forward_backward_views(c, v1, v2, junk, &lc));
            check_identical(a, b);
            check_identical(a, c);
            struct byol_learner *all[3] = {a, b, c};
            for (int i = 0; i < 3; i++) {
                BYOL_CHECK_OK(byol_learner_optimizer_step(all[i]));
                byol_learner_zero_grad(all[i]);
                BYOL_CHECK_OK(byol_learner_update_target(all[i]));
            }
        } else {
            BYOL_CHECK_OK(byol_learner_step(a, v1, v2, &la));
            BYOL_CHECK_OK(byol_learner_step_views(b, v1, v2, NULL, &lb));
            BYOL_CHECK_OK(byol_learner_step_views(c, v1, v2, junk, &lc));
        }
        printf("\n  step %d: loss %.9g, %.9g, %.9g", k + 1, la, lb, lc);
        CU_ASSERT(memcmp(&la, &lb, sizeof la) == 0 && memcmp(&la, &lc, sizeof la) == 0);
        double pa = byol_learner_projection_std(a), pb = byol_learner_projection_std(b);
        CU_ASSERT(memcmp(&pa, &pb, sizeof pa) == 0);
        check_identical(a, b);
        check_identical(a, c);
    }
    printf("\n");
    free(views);
    byol_learner_free(a);
    byol_learner_free(b);
    byol_learner_free(c);
    byol_config_free(c1);
    byol_config_free(c2);
    byol_config_free(c3);
    byol_st_free(f);
}

/* ---- N = 2 against PyTorch. ------------------------------------------------------------- */

static void run_case(const char *file, int momentum, const char *projection)
{
    printf("\n  fixture %s\n", file);
    struct byol_st_file *f = lc_open_fixture(file);
    int n_local = meta_int(f, "local_crops"), local_size = meta_int(f, "local_size");
    struct byol_config *cfg = NULL;
    struct byol_learner *l = fixture_learner(f, n_local, local_size, &cfg);
    CU_ASSERT_EQUAL(byol_learner_target(l) != NULL, momentum);
    size_t nviews = 0, nlocal = 0;
    float *views = lc_fx_floats(f, "views", &nviews), *local = lc_fx_floats(f, "local", &nlocal);
    CU_ASSERT_FATAL(views && local);
    size_t per_view = nviews / 4, per_local = nlocal / 2;
    CU_ASSERT_EQUAL(per_local, per_view / 4 * (size_t)n_local); /* 8x8 views of 16x16 images */
    double *loss = lc_fx_doubles(f, "loss", STEPS, 0), *drift = lc_fx_doubles(f, "drift", 3, 0),
           rtol[3];
    lc_drift_rtols(drift, rtol);
    printf("  drift %.2g %.2g %.2g: tolerances step 1 %.2g, step %d %.2g, loss %.2g\n", drift[0],
           drift[1], drift[2], rtol[0], STEPS, rtol[1], rtol[2]);

    /* Without its local views a multi-crop learner refuses to step, and changes nothing. */
    float value = 0, first = byol_net_params(byol_learner_online(l))[0];
    CU_ASSERT_EQUAL(byol_learner_step(l, views, views + per_view, &value), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("local_crops = 2");
    CU_ASSERT_EQUAL(byol_learner_forward_backward_views(l, views, views + per_view, NULL, &value),
                    BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_net_params(byol_learner_online(l))[0], first);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(byol_learner_online(l), "bn1"), 0);

    BYOL_CHECK_OK(byol_learner_forward_backward_views(l, views, views + per_view, local, &value));
    lc_check_loss("loss of step 1", value, loss[0], rtol[2]);
    lc_check_projection_std(l, projection);
    lc_check_grads(l, f, lc_grad_close, RTOL_GRAD, 11);
    BYOL_CHECK_OK(byol_learner_optimizer_step(l));
    byol_learner_zero_grad(l);
    BYOL_CHECK_OK(byol_learner_update_target(l));
    lc_check_state(l, f, "step1", rtol[0], g_dir);
    for (int k = 1; k < STEPS; k++) {
        char what[64];
        const float *v1 = views + (size_t)(k % 2) * 2 * per_view;
        BYOL_CHECK_OK(byol_learner_step_views(l, v1, v1 + per_view,
                                              local + (size_t)(k % 2) * per_local, &value));
        snprintf(what, sizeof what, "loss of step %d", k + 1);
        lc_check_loss(what, value, loss[k], rtol[2]);
    }
    CU_ASSERT_EQUAL(byol_learner_steps_done(l), STEPS);
    lc_check_state(l, f, "step3", rtol[1], g_dir);

    free(views);
    free(local);
    free(loss);
    free(drift);
    byol_learner_free(l);
    byol_config_free(cfg);
    byol_st_free(f);
}

static void test_byol(void)
{
    run_case("multicrop_byol.safetensors", 1, "projector.3");
}

static void test_simsiam(void)
{
    run_case("multicrop_simsiam.safetensors", 0, "projector.7");
}

/* ---- Settings. -------------------------------------------------------------------------- */

#define SMALL_MODEL                                                                                \
    "model = { encoder = { name = \"layers\"; in_channels = 1; layers = ("                         \
    "{ type = \"conv\"; name = \"conv1\"; out = 4; kernel = 3; pad = 1; },"                        \
    "{ type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; name = \"relu\"; },"                   \
    "{ type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; name = \"flatten\"; },"    \
    "{ type = \"linear\"; name = \"fc\"; out = 3; } ); };\n"                                       \
    "  image_size = 8; projection_size = 8; projection_hidden_size = 16; };\n"                     \
    "train = { batch_size = 2; };\n"

/* An encoder whose representation (fc, after a flatten of the whole feature map) has a
 * weight that depends on the input size. */
#define SIZED_MODEL                                                                                \
    "model = { encoder = { name = \"layers\"; in_channels = 1; layers = ("                         \
    "{ type = \"conv\"; name = \"conv1\"; out = 2; kernel = 3; pad = 1; },"                        \
    "{ type = \"flatten\"; name = \"flatten\"; }, { type = \"linear\"; name = \"fc\"; out = 6; }," \
    "{ type = \"relu\"; name = \"relu\"; } ); };\n"                                                \
    "  image_size = 8; hidden_layer = \"fc\"; projection_size = 8;"                                \
    " projection_hidden_size = 16; };\n"                                                           \
    "train = { batch_size = 2; };\n"

static byol_status try_local(const char *text, int local_crops, int local_size)
{
    struct byol_config *cfg = NULL;
    struct byol_learner *l = NULL;
    byol_status st = learner_from_text(text, local_crops, local_size, &cfg, &l);
    printf("  local_crops %d, local_size %d: %s\n", local_crops, local_size,
           st == BYOL_OK ? "ok" : byol_last_error());
    byol_learner_free(l);
    byol_config_free(cfg);
    return st;
}

static void test_settings(void)
{
    printf("\n");
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, 0, 0), BYOL_OK);
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, 3, 4), BYOL_OK);
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, 1, 8), BYOL_OK); /* local_size = image_size */
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, BYOL_LEARNER_LOCAL_CROPS_MAX, 1), BYOL_OK);
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, -1, 4), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("local_crops = -1");
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, BYOL_LEARNER_LOCAL_CROPS_MAX + 1, 4), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("local_crops = 17");
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, 2, 0), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("local_size = 0");
    CU_ASSERT_EQUAL(try_local(SMALL_MODEL, 2, 9), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("local_size = 9");
    BYOL_ASSERT_MSG_HAS("image_size (8)");
    /* The encoder does not fit the local size: the parameter and both shapes are named. */
    CU_ASSERT_EQUAL(try_local(SIZED_MODEL, 0, 0), BYOL_OK);
    CU_ASSERT_EQUAL(try_local(SIZED_MODEL, 2, 4), BYOL_ERR_SHAPE);
    BYOL_ASSERT_MSG_HAS("local_size = 4");
    BYOL_ASSERT_MSG_HAS("fc.weight has shape [6, 32]");
    BYOL_ASSERT_MSG_HAS("[6, 128]");
}

/* A torchvision ResNet-18 (its residual adds, fused batch norms and in-place memory plan) with
 * local views at half the size: one step, each network call counted once. */
static void test_resnet18(void)
{
    const char *text =
        "model = { encoder = { name = \"resnet18\"; in_channels = 1; stem = \"cifar\"; };"
        " image_size = 32; projection_size = 32; projection_hidden_size = 64; };\n"
        "train = { batch_size = 2; };\n";
    struct byol_config *cfg = NULL;
    struct byol_learner *l = NULL;
    BYOL_CHECK_OK(learner_from_text(text, 3, 16, &cfg, &l));
    float *global = pattern(2 * 2 * 32 * 32, 0.5f), *local = pattern(3 * 2 * 16 * 16, 1.5f), loss;
    BYOL_CHECK_OK(byol_learner_step_views(l, global, global + 2 * 32 * 32, local, &loss));
    printf("\n  loss %.6g, projection std %.4g\n", loss, byol_learner_projection_std(l));
    CU_ASSERT(isfinite(loss) && loss > 0 && loss < 4);
    struct byol_net *online = byol_learner_online(l), *target = byol_learner_target(l);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(online, "layer4.1.bn2"), 2);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(online, "predictor.1"), 2);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(target, "layer4.1.bn2"), 1);
    CU_ASSERT_EQUAL(byol_learner_steps_done(l), 1);
    free(global);
    free(local);
    byol_learner_free(l);
    byol_config_free(cfg);
}

/* ---- byol_net_build_shared. ------------------------------------------------------------- */

/* input (n, 1, side, side), conv, bn + relu, avgpool, flatten, linear; `odd` renames the
 * linear layer. */
static struct byol_net *small_net(int n, int side, int odd)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(be, &net));
    BYOL_CHECK_OK(byol_net_set_memory(net, BYOL_NET_SHARE_GRADS));
    BYOL_CHECK_OK(byol_net_set_fusion(net, 1));
    BYOL_CHECK_OK(byol_net_add_input(net, "input", (struct byol_shape){n, 1, side, side}));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv", NULL, 4, 3, 1, 1, 1));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "bn", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "relu", NULL));
    BYOL_CHECK_OK(byol_net_add_avgpool(net, "pool", NULL));
    BYOL_CHECK_OK(byol_net_add_flatten(net, "flat", NULL));
    BYOL_CHECK_OK(byol_net_add_linear(net, odd ? "linear2" : "linear", NULL, 3, 1));
    return net;
}

static float *pattern(size_t n, float phase)
{
    float *x = malloc(n * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < n; i++)
        x[i] = sinf(0.37f * (float)i + phase);
    return x;
}

/* Forward and backward of `net` on x with the output gradient dy (n x 3). */
static void run_net(struct byol_net *net, const float *x, const float *dy)
{
    BYOL_CHECK_OK(byol_net_set_input(net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_backward(net, "linear", dy));
}

/* The shared network reads and moves the owner's memory: parameters, running statistics and
 * counters; its gradients add to the owner's. Mismatched layers are refused. */
static void test_build_shared(void)
{
    struct byol_net *owner = small_net(4, 8, 0), *shared = small_net(6, 5, 0);
    BYOL_CHECK_OK(byol_net_build(owner, 7));
    CU_ASSERT_EQUAL(byol_net_build_shared(shared, shared), BYOL_ERR_INVALID);
    BYOL_CHECK_OK(byol_net_build_shared(shared, owner));
    CU_ASSERT_EQUAL(byol_net_build_shared(shared, owner), BYOL_ERR_INVALID); /* built */
    CU_ASSERT_PTR_EQUAL(byol_net_params(shared), byol_net_params(owner));
    CU_ASSERT_PTR_EQUAL(byol_net_grads(shared), byol_net_grads(owner));
    CU_ASSERT_PTR_EQUAL(byol_net_buffers(shared), byol_net_buffers(owner));
    CU_ASSERT_EQUAL(byol_net_num_params(shared), byol_net_num_params(owner));
    CU_ASSERT_EQUAL(byol_net_param_count(shared), byol_net_param_count(owner));
    CU_ASSERT_PTR_EQUAL(byol_net_find_param(shared, "conv.weight")->data,
                        byol_net_find_param(owner, "conv.weight")->data);
    CU_ASSERT_PTR_EQUAL(byol_net_bn_batches_tracked(shared, "bn"),
                        byol_net_bn_batches_tracked(owner, "bn"));

    size_t np = byol_net_num_params(owner), nb = byol_net_num_buffers(owner);
    float *x1 = pattern(4 * 64, 0.0f), *x2 = pattern(6 * 25, 1.0f);
    float *dy1 = pattern(4 * 3, 2.0f), *dy2 = pattern(6 * 3, 3.0f);
    float *g1 = malloc(np * sizeof *g1), *g2 = malloc(np * sizeof *g2);
    float *stats = malloc(nb * sizeof *stats);
    CU_ASSERT_FATAL(g1 && g2 && stats);
    byol_net_zero_grad(owner);
    run_net(owner, x1, dy1);
    memcpy(g1, byol_net_grads(owner), np * sizeof *g1);
    memcpy(stats, byol_net_buffers(owner), nb * sizeof *stats);
    byol_net_zero_grad(owner);
    run_net(shared, x2, dy2);
    memcpy(g2, byol_net_grads(owner), np * sizeof *g2);
    CU_ASSERT(!lc_same_floats(stats, byol_net_buffers(owner), nb)); /* moved by the shared net */
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(owner, "bn"), 2);
    /* Both backward passes into one set of gradients: the sum. */
    byol_net_zero_grad(shared);
    run_net(owner, x1, dy1);
    run_net(shared, x2, dy2);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(owner, "bn"), 4);
    for (size_t i = 0; i < np; i++)
        g1[i] += g2[i];
    CU_ASSERT(byol_test_close("owner + shared gradients vs the sum of each", byol_net_grads(owner),
                              g1, np, 1e-7, 1e-6));
    /* A parameter the owner changes is the shared net's too. */
    byol_net_find_param(owner, "linear.bias")->data[0] += 1.0f;
    float out[6 * 3], out2[6 * 3];
    BYOL_CHECK_OK(byol_net_read_output(shared, "linear", out));
    BYOL_CHECK_OK(byol_net_forward(shared, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(shared, "linear", out2));
    byol_net_find_param(owner, "linear.bias")->data[0] -= 1.0f;
    BYOL_CHECK_OK(byol_net_forward(shared, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(shared, "linear", out));
    CU_ASSERT_DOUBLE_EQUAL(out2[0] - out[0], 1.0, 1e-6);

    /* Other layers, or an unbuilt owner. */
    struct byol_net *odd = small_net(4, 8, 1), *unbuilt = small_net(4, 8, 0);
    CU_ASSERT_EQUAL(byol_net_build_shared(odd, owner), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("'linear2' is not the owner's 'linear'");
    struct byol_net *fresh = small_net(4, 8, 0);
    CU_ASSERT_EQUAL(byol_net_build_shared(fresh, unbuilt), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("before byol_net_build");
    byol_net_free(fresh);
    byol_net_free(unbuilt);
    byol_net_free(odd);

    /* The shared net goes first; the owner's arrays are still its own to free. */
    byol_net_free(shared);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(owner, "bn"), 4);
    run_net(owner, x1, dy1);
    byol_net_free(owner);
    free(x1);
    free(x2);
    free(dy1);
    free(dy2);
    free(g1);
    free(g2);
    free(stats);
}

int main(int argc, char **argv)
{
    const char *backend = getenv("BYOL_TEST_BACKEND");
    if (argc > 1)
        backend = argv[1];
    g_dir = byol_test_tmpdir("multicrop");
    reg = byol_test_registry();
    be = byol_test_backend(reg, backend && *backend ? backend : "blas", 2);
    printf("backend: %s\n", byol_backend_name(be));
    static const struct byol_test_case cases[] = {
        {"no local views: the two-view step, bit for bit", test_no_local_views, 0},
        {"BYOL, 2 local views, 3 SGD steps vs PyTorch", test_byol, 0},
        {"SimSiam, 2 local views, 3 SGD steps vs PyTorch", test_simsiam, 0},
        {"local_crops / local_size errors", test_settings, 0},
        {"ResNet-18 with 3 local views at 16x16: one step", test_resnet18, 1},
        {"byol_net_build_shared", test_build_shared, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "multicrop", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    byol_test_remove_tree(g_dir);
    return rc;
}
