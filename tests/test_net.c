/* Tests of the network engine (core/nn/net.c) on a backend (blas unless argv[1] or
 * BYOL_TEST_BACKEND names another): finite-difference gradients
 * and PyTorch parity on a small residual net, name lookups, partial forward, training vs
 * inference, gradient accumulation, and build / free cycles. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static struct byol_registry *g_reg;
static struct byol_backend *g_be;

#define SMALL_N 4
#define SMALL_C 3
#define SMALL_HW 16
#define SMALL_CLASSES 10
#define SMALL_IN (SMALL_N * SMALL_C * SMALL_HW * SMALL_HW)
#define SMALL_OUT (SMALL_N * SMALL_CLASSES)
/* The gradient check runs the same network on 8x8 images: it takes ~2000 forward and
 * backward passes, and it has to stay quick under valgrind. */
#define GC_HW 8
#define GC_IN (SMALL_N * SMALL_C * GC_HW * GC_HW)

/* ---- Helpers. ------------------------------------------------------------------------ */

static void fill_normal(float *x, size_t n, uint64_t seed)
{
    struct byol_rng r;
    byol_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)byol_rng_normal(&r);
}

static int contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* A residual block in torchvision's layout: conv-bn-relu-conv-bn, plus a shortcut that is
 * either the block input or a 1x1 conv + bn ("downsample"), then add and relu. */
static void add_block(struct byol_net *net, const char *prefix, const char *input, int planes,
                      int stride, int downsample)
{
    char n[8][64];
    const char *sfx[8] = {"conv1", "bn1",          "relu1",        "conv2",
                          "bn2",   "downsample.0", "downsample.1", "add"};
    for (int i = 0; i < 8; i++)
        snprintf(n[i], sizeof n[i], "%s.%s", prefix, sfx[i]);
    char out[64];
    snprintf(out, sizeof out, "%s.relu2", prefix);
    BYOL_CHECK_OK(byol_net_add_conv2d(net, n[0], input, planes, 3, stride, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, n[1], NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, n[2], NULL));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, n[3], NULL, planes, 3, 1, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, n[4], NULL, 1));
    const char *shortcut = input;
    if (downsample) {
        BYOL_CHECK_OK(byol_net_add_conv2d(net, n[5], input, planes, 1, stride, 0, 0));
        BYOL_CHECK_OK(byol_net_add_batchnorm(net, n[6], NULL, 1));
        shortcut = n[6];
    }
    BYOL_CHECK_OK(byol_net_add_add(net, n[7], n[4], shortcut));
    BYOL_CHECK_OK(byol_net_add_relu(net, out, NULL));
}

/* The network of tests/fixtures/gen_net.py, with the same layer names. */
static struct byol_net *small_net_sized(uint64_t seed, int hw)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    struct byol_shape in = {SMALL_N, SMALL_C, hw, hw};
    BYOL_CHECK_OK(byol_net_add_input(net, "x", in));
    BYOL_CHECK_OK(byol_net_set_requires_grad(net, "x", 1)); /* the tests check dL/dx */
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv1", NULL, 8, 3, 1, 1, 1));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "bn1", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "relu", NULL));
    BYOL_CHECK_OK(byol_net_add_maxpool(net, "maxpool", NULL, 3, 2, 1));
    add_block(net, "layer1.0", "maxpool", 16, 2, 1);
    add_block(net, "layer1.1", "layer1.0.relu2", 16, 1, 0);
    BYOL_CHECK_OK(byol_net_add_avgpool(net, "avgpool", NULL));
    BYOL_CHECK_OK(byol_net_add_flatten(net, "flatten", NULL));
    BYOL_CHECK_OK(byol_net_add_linear(net, "fc", NULL, SMALL_CLASSES, 1));
    BYOL_CHECK_OK(byol_net_build(net, seed));
    return net;
}

static struct byol_net *small_net(uint64_t seed)
{
    return small_net_sized(seed, SMALL_HW);
}

/* Batch norm starts as the identity map; move it so its parameters matter in the checks. */
static void perturb_bn(struct byol_net *net, uint64_t seed)
{
    struct byol_rng r;
    byol_rng_init(&r, seed, 1);
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        int is_w = contains(p->name, "bn") || contains(p->name, "downsample.1");
        if (!is_w || p->role != BYOL_ROLE_PARAM)
            continue;
        int weight = contains(p->name, ".weight");
        for (size_t k = 0; k < p->numel; k++)
            p->data[k] = weight ? 0.5f + byol_rng_uniform(&r) : byol_rng_uniform(&r) - 0.5f;
    }
}

/* loss = sum(fc * R) in double, after a full training forward (batch statistics). */
static double small_loss(struct byol_net *net, const float *x, const float *R)
{
    float out[SMALL_OUT];
    BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", out));
    double s = 0;
    for (int i = 0; i < SMALL_OUT; i++)
        s += (double)out[i] * (double)R[i];
    return s;
}

/* ---- Finite differences. ------------------------------------------------------------- */

/* Step, quadrature and tolerance.
 *
 * The loss is built from ReLU and max-pool, so it is only piecewise smooth, and densely so:
 * one conv1 weight moves ~1000 pre-activations at once and batch norm in training mode
 * couples all of them, so its derivative jumps many times inside any step float32 can
 * resolve (in double, the central difference for a conv1 weight still misses the gradient by
 * 1% at h = 1e-4 and converges only near 1e-5; in float32, rounding leaves ~1e-6 on the O(1)
 * loss, i.e. ~1e-6 / 2h on a central difference). Comparing the central difference with the
 * gradient at the centre alone therefore fails (by up to 30% here) for reasons that have
 * nothing to do with the code.
 *
 * What holds exactly for a continuous, piecewise smooth loss is the fundamental theorem of
 * calculus: (L(v+h) - L(v-h)) / 2h is the mean of dL/dv over [v-h, v+h]. So the check
 * compares the central difference with the mean of the analytic gradient at FD_POINTS
 * midpoints of that interval (each a full training forward and backward, so batch-norm
 * statistics are always those of the perturbed batch). With h = 5e-4: float noise on the
 * quotient ~1e-3; midpoint-rule error: a jump J in the derivative costs at most
 * J / (2 FD_POINTS), and single jumps reach ~0.05 (a batch-norm bias shifts all 16 units of
 * its channel across a ReLU at once); smooth curvature costs O(h^2). Hence 5e-3 absolute +
 * 3e-2 relative. These seeds use 0.23 of it at worst; over 20 seeds the median worst was
 * 0.3 and one seed reached 1.2 (one large jump). A wrong gradient is off
 * throughout the interval, so it cannot hide in the mean: dropping the fan-out accumulation
 * fails 67 of the 121 coordinates, by up to 50x the tolerance. */
#define FD_STEP 5e-4f
#define FD_POINTS 16
#define FD_ATOL 5e-3
#define FD_RTOL 3e-2

/* Which coordinate is being checked: an element of the input, or of the flat parameters. */
struct fd_coord {
    const char *name;
    float *v;     /* the float to vary: &x[i] or &param->data[j] */
    size_t index; /* i or j, for the report */
    size_t flat;  /* index into the input or the flat gradients */
    int is_input;
};

struct fd_stats {
    double max_abs;   /* |mean analytic - central difference| */
    double max_naive; /* |analytic at the centre - central difference|, for the report */
    double worst;     /* the largest |mean analytic - central difference| / tolerance */
    int checked, failed;
};

/* dL/dv at the current parameters and input: a full training forward and backward. */
static double analytic_at(struct byol_net *net, const struct fd_coord *c, const float *x,
                          const float *R, float *gx)
{
    byol_net_zero_grad(net);
    small_loss(net, x, R);
    BYOL_CHECK_OK(byol_net_backward(net, "fc", R));
    if (!c->is_input)
        return byol_net_grads(net)[c->flat];
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", gx));
    return gx[c->flat];
}

static void fd_check(struct fd_stats *s, struct byol_net *net, const struct fd_coord *c,
                     const float *x, const float *R, float *gx)
{
    const float h = FD_STEP, keep = *c->v;
    const int k_points = FD_POINTS;
    double centre = analytic_at(net, c, x, R, gx), mean = 0;
    for (int k = 0; k < k_points; k++) {
        *c->v = keep + h * (2.0f * ((float)k + 0.5f) / (float)k_points - 1.0f);
        mean += analytic_at(net, c, x, R, gx) / k_points;
    }
    *c->v = keep + h;
    double hp = (double)*c->v - keep, lp = small_loss(net, x, R);
    *c->v = keep - h;
    double hm = (double)keep - *c->v, lm = small_loss(net, x, R);
    *c->v = keep;
    double central = (lp - lm) / (hp + hm), d = fabs(mean - central);
    s->max_abs = fmax(s->max_abs, d);
    s->max_naive = fmax(s->max_naive, fabs(centre - central));
    s->worst = fmax(s->worst, d / (FD_ATOL + FD_RTOL * fabs(central)));
    s->checked++;
    if (!(d <= FD_ATOL + FD_RTOL * fabs(central))) {
        s->failed++;
        printf("    %s[%zu]: mean analytic %.6g (at the centre %.6g), central difference "
               "%.6g\n",
               c->name, c->index, mean, centre, central);
    }
}

static void test_gradcheck(void)
{
    struct byol_net *net = small_net_sized(7, GC_HW);
    perturb_bn(net, 8);
    float *x = malloc(GC_IN * sizeof *x), *gx = malloc(GC_IN * sizeof *gx);
    float R[SMALL_OUT], *params = byol_net_params(net);
    fill_normal(x, GC_IN, 11);
    fill_normal(R, SMALL_OUT, 12);

    struct fd_stats s = {0};
    struct byol_rng r;
    byol_rng_init(&r, 13, 0);
    /* A random sample of input coordinates, and a few of every parameter tensor (each
     * coordinate costs FD_POINTS + 1 forward-backward passes and two forwards). */
    for (int k = 0; k < 16; k++) {
        size_t i = byol_rng_u32(&r) % GC_IN;
        struct fd_coord c = {"x", &x[i], i, i, 1};
        fd_check(&s, net, &c, x, R, gx);
    }
    for (size_t e = 0; e < byol_net_param_count(net); e++) {
        const struct byol_param *p = byol_net_param_at(net, e);
        /* Five distinct coordinates, spread over the tensor from a random start. */
        size_t start = byol_rng_u32(&r) % p->numel, stride = p->numel / 5 ? p->numel / 5 : 1;
        for (size_t k = 0; p->role == BYOL_ROLE_PARAM && k < 5 && k < p->numel; k++) {
            size_t j = (start + k * stride) % p->numel;
            struct fd_coord c = {p->name, &p->data[j], j, (size_t)(p->data - params) + j, 0};
            fd_check(&s, net, &c, x, R, gx);
        }
    }
    printf("  gradcheck: %d coordinates, max |mean analytic - central difference| %.3g "
           "(analytic at the centre: %.3g), worst %.2f of the tolerance, %d failed\n",
           s.checked, s.max_abs, s.max_naive, s.worst, s.failed);
    CU_ASSERT(s.checked > 100);
    CU_ASSERT_EQUAL(s.failed, 0);
    free(x);
    free(gx);
    byol_net_free(net);
}

/* ---- PyTorch parity. ----------------------------------------------------------------- */

static const float *fixture_f32(const struct byol_st_file *f, const char *name, size_t numel)
{
    const struct byol_st_tensor *t = byol_st_find(f, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, BYOL_ST_F32);
    CU_ASSERT_EQUAL_FATAL(t->numel, numel);
    return t->data;
}

static void fixture_name(char *buf, size_t len, const char *prefix, const char *name)
{
    snprintf(buf, len, "%s.%s", prefix, name);
}

/* Parity tolerance: PyTorch and the blas backend sum convolutions and batch statistics in
 * different orders, so float32 results differ by a few ulps per op (~1e-6 relative). Batch
 * norm's backward subtracts means of products of such values, which can lose a decimal digit
 * or two in channels whose gradients nearly cancel; 1e-4 of each tensor's largest value
 * leaves room for that and still catches any formula error (those are O(1e-2) and up).
 * PARITY_ATOL is for gradients that are zero in exact arithmetic: a conv bias feeding a
 * training-mode batch norm (which subtracts the batch mean) has only rounding residue,
 * ~1e-6 in both implementations, for a gradient. */
#define PARITY_RTOL 1e-4
#define PARITY_ATOL 1e-5

static void compare_params(struct byol_net *net, const struct byol_st_file *f, const char *pfx,
                           enum byol_tensor_role role, int use_grad)
{
    char key[256];
    for (size_t e = 0; e < byol_net_param_count(net); e++) {
        const struct byol_param *p = byol_net_param_at(net, e);
        if (p->role != role)
            continue;
        fixture_name(key, sizeof key, pfx, p->name);
        const float *ref = fixture_f32(f, key, p->numel);
        CU_ASSERT(byol_test_close(key, use_grad ? p->grad : p->data, ref, p->numel, PARITY_ATOL,
                                  PARITY_RTOL));
    }
}

static void check_batches_tracked(struct byol_net *net, const struct byol_st_file *f)
{
    char key[256];
    for (size_t i = 0; i < byol_net_layer_count(net); i++) {
        const char *layer = byol_net_layer_name(net, i);
        int64_t *nbt = byol_net_bn_batches_tracked(net, layer);
        if (!nbt)
            continue;
        snprintf(key, sizeof key, "state.%s.num_batches_tracked", layer);
        const struct byol_st_tensor *t = byol_st_find(f, key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL(t->dtype, BYOL_ST_I64);
        int64_t want;
        memcpy(&want, t->data, sizeof want);
        CU_ASSERT_EQUAL(*nbt, want);
    }
}

static void test_torch_parity(void)
{
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(byol_test_fixture("net_small.safetensors"), &f));
    struct byol_net *net = small_net(1);
    char key[256];
    /* Load every parameter and buffer by name. */
    for (size_t e = 0; e < byol_net_param_count(net); e++) {
        const struct byol_param *p = byol_net_param_at(net, e);
        fixture_name(key, sizeof key, "param", p->name);
        memcpy(p->data, fixture_f32(f, key, p->numel), p->numel * sizeof(float));
    }
    float out[SMALL_OUT], *gx = malloc(SMALL_IN * sizeof *gx);
    BYOL_CHECK_OK(byol_net_set_input(net, "x", fixture_f32(f, "input.x", SMALL_IN)));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", out));
    CU_ASSERT(byol_test_close("output.fc", out, fixture_f32(f, "output.fc", SMALL_OUT), SMALL_OUT,
                              0, PARITY_RTOL));

    byol_net_zero_grad(net);
    BYOL_CHECK_OK(byol_net_backward(net, "fc", fixture_f32(f, "input.dy", SMALL_OUT)));
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", gx));
    CU_ASSERT(byol_test_close("grad.x", gx, fixture_f32(f, "grad.x", SMALL_IN), SMALL_IN, 0,
                              PARITY_RTOL));
    compare_params(net, f, "grad", BYOL_ROLE_PARAM, 1);
    compare_params(net, f, "state", BYOL_ROLE_BUFFER, 0);
    check_batches_tracked(net, f);

    /* Inference with the updated running statistics. */
    BYOL_CHECK_OK(byol_net_forward(net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", out));
    CU_ASSERT(byol_test_close("output_eval.fc", out, fixture_f32(f, "output_eval.fc", SMALL_OUT),
                              SMALL_OUT, 0, PARITY_RTOL));
    free(gx);
    byol_net_free(net);
    byol_st_free(f);
}

/* ---- Lookups, layout and errors. ----------------------------------------------------- */

static void expect_shape(struct byol_net *net, const char *layer, int n, int c, int h, int w)
{
    struct byol_shape s;
    BYOL_CHECK_OK(byol_net_output_shape(net, layer, &s));
    struct byol_shape want = {n, c, h, w};
    CU_ASSERT(byol_shape_eq(s, want));
}

static void test_shapes(void)
{
    struct byol_net *net = small_net(1);
    expect_shape(net, "x", 4, 3, 16, 16);
    expect_shape(net, "conv1", 4, 8, 16, 16);
    expect_shape(net, "maxpool", 4, 8, 8, 8);
    expect_shape(net, "layer1.0.conv1", 4, 16, 4, 4);
    expect_shape(net, "layer1.0.downsample.1", 4, 16, 4, 4);
    expect_shape(net, "layer1.1.relu2", 4, 16, 4, 4);
    expect_shape(net, "avgpool", 4, 16, 1, 1);
    expect_shape(net, "flatten", 4, 16, 1, 1);
    expect_shape(net, "fc", 4, 10, 1, 1);
    /* stem 5 + downsample block 9 + identity block 7 + head 3 */
    CU_ASSERT_EQUAL(byol_net_layer_count(net), 24);
    CU_ASSERT_STRING_EQUAL(byol_net_layer_name(net, 0), "x");
    CU_ASSERT_STRING_EQUAL(byol_net_layer_name(net, 23), "fc");
    CU_ASSERT_PTR_NULL(byol_net_layer_name(net, 24));
    CU_ASSERT(byol_net_has_layer(net, "layer1.0.add"));
    CU_ASSERT(!byol_net_has_layer(net, "layer1.0.relu"));
    byol_net_free(net);
}

static void test_unknown_names(void)
{
    struct byol_net *net = small_net(1);
    struct byol_shape s;
    float buf[SMALL_OUT];
    CU_ASSERT_EQUAL(byol_net_output_shape(net, "layer9", &s), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "layer9"));
    CU_ASSERT_EQUAL(byol_net_read_output(net, "nope", buf), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "nope"));
    CU_ASSERT_EQUAL(byol_net_read_grad(net, "nope", buf), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(byol_net_forward(net, 1, "nope"), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(byol_net_backward(net, "nope", buf), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(byol_net_set_input(net, "nope", buf), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(byol_net_find_param(net, "fc.nope"));
    CU_ASSERT_PTR_NULL(byol_net_bn_batches_tracked(net, "conv1"));
    CU_ASSERT_PTR_NULL(byol_net_bn_batches_tracked(net, "nope"));
    CU_ASSERT_EQUAL(byol_net_set_input(net, "conv1", buf), BYOL_ERR_INVALID);
    byol_net_free(net);

    /* A short network lists its valid names in the message. */
    struct byol_net *tiny = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &tiny));
    BYOL_CHECK_OK(byol_net_add_input(tiny, "in", (struct byol_shape){2, 3, 1, 1}));
    BYOL_CHECK_OK(byol_net_add_relu(tiny, "act", NULL));
    BYOL_CHECK_OK(byol_net_build(tiny, 0));
    CU_ASSERT_EQUAL(byol_net_output_shape(tiny, "ac", &s), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "'ac'"));
    CU_ASSERT(contains(byol_last_error(), "in, act"));
    byol_net_free(tiny);
}

static void test_build_errors(void)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    /* A first layer has no previous layer to read. */
    CU_ASSERT_EQUAL(byol_net_add_relu(net, "r", NULL), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_net_build(net, 0), BYOL_ERR_INVALID);
    BYOL_CHECK_OK(byol_net_add_input(net, "in", (struct byol_shape){2, 3, 4, 4}));
    CU_ASSERT_EQUAL(byol_net_add_input(net, "in", (struct byol_shape){2, 3, 4, 4}),
                    BYOL_ERR_DUPLICATE);
    CU_ASSERT(contains(byol_last_error(), "'in'"));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv", "in", 4, 3, 1, 1, 0));
    CU_ASSERT_EQUAL(byol_net_add_relu(net, "conv", NULL), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_net_add_relu(net, "r", "convv"), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "'convv'"));
    CU_ASSERT_EQUAL(byol_net_add_add(net, "sum", "conv", "missing"), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "'missing'"));
    CU_ASSERT(!byol_net_has_layer(net, "sum"));
    /* Not built yet. */
    float buf[2 * 4 * 4 * 4];
    CU_ASSERT_EQUAL(byol_net_forward(net, 1, NULL), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_net_read_output(net, "conv", buf), BYOL_ERR_INVALID);

    BYOL_CHECK_OK(byol_net_build(net, 0));
    CU_ASSERT_EQUAL(byol_net_add_relu(net, "late", NULL), BYOL_ERR_INVALID);
    CU_ASSERT(contains(byol_last_error(), "late"));
    CU_ASSERT_EQUAL(byol_net_build(net, 0), BYOL_ERR_INVALID);
    /* Forward on an input that was never set names it; backward needs a forward. */
    CU_ASSERT_EQUAL(byol_net_forward(net, 1, NULL), BYOL_ERR_INVALID);
    CU_ASSERT(contains(byol_last_error(), "'in'"));
    CU_ASSERT_EQUAL(byol_net_backward(net, "conv", buf), BYOL_ERR_INVALID);
    byol_net_free(net);

    /* Shapes that do not fit fail at build and name the layer. */
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_add_input(net, "a", (struct byol_shape){2, 3, 4, 4}));
    BYOL_CHECK_OK(byol_net_add_input(net, "b", (struct byol_shape){2, 5, 4, 4}));
    BYOL_CHECK_OK(byol_net_add_add(net, "bad_sum", "a", "b"));
    CU_ASSERT_NOT_EQUAL(byol_net_build(net, 0), BYOL_OK);
    CU_ASSERT(contains(byol_last_error(), "bad_sum"));
    byol_net_free(net);
}

static void test_param_layout(void)
{
    struct byol_net *net = small_net(1);
    const char *first[] = {
        "conv1.weight",     "conv1.bias",      "bn1.weight",           "bn1.bias",
        "bn1.running_mean", "bn1.running_var", "layer1.0.conv1.weight"};
    for (size_t i = 0; i < sizeof first / sizeof *first; i++)
        CU_ASSERT_STRING_EQUAL(byol_net_param_at(net, i)->name, first[i]);
    const struct byol_param *w = byol_net_find_param(net, "layer1.0.conv2.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT(w->ndim == 4 && w->dims[0] == 16 && w->dims[1] == 16 && w->dims[2] == 3 &&
              w->dims[3] == 3 && w->numel == 2304 && w->role == BYOL_ROLE_PARAM);
    const struct byol_param *fc = byol_net_find_param(net, "fc.weight");
    CU_ASSERT_FATAL(fc != NULL);
    CU_ASSERT(fc->ndim == 2 && fc->dims[0] == 10 && fc->dims[1] == 16);
    const struct byol_param *rv = byol_net_find_param(net, "layer1.1.bn2.running_var");
    CU_ASSERT_FATAL(rv != NULL);
    CU_ASSERT(rv->ndim == 1 && rv->dims[0] == 16 && rv->role == BYOL_ROLE_BUFFER &&
              rv->grad == NULL);

    /* Parameters tile the flat arrays in order, grads mirror them, buffers likewise. */
    size_t p_off = 0, b_off = 0;
    float *params = byol_net_params(net), *grads = byol_net_grads(net);
    float *bufs = byol_net_buffers(net);
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role == BYOL_ROLE_PARAM) {
            CU_ASSERT(p->data == params + p_off && p->grad == grads + p_off);
            p_off += p->numel;
        } else {
            CU_ASSERT(p->data == bufs + b_off);
            b_off += p->numel;
        }
    }
    CU_ASSERT_EQUAL(p_off, byol_net_num_params(net));
    CU_ASSERT_EQUAL(b_off, byol_net_num_buffers(net));
    /* Counted by hand, layer by layer in small_net's order; buffers: 2 x (8 + 5 x 16). */
    CU_ASSERT_EQUAL(byol_net_num_params(net),
                    224 + 16 + 1152 + 32 + 2304 + 32 + 128 + 32 + 2304 + 32 + 2304 + 32 + 170);
    CU_ASSERT_EQUAL(byol_net_num_buffers(net), 16 + 5 * 32);
    CU_ASSERT((uintptr_t)params % 64 == 0 && (uintptr_t)grads % 64 == 0 &&
              (uintptr_t)bufs % 64 == 0);
    byol_net_free(net);
}

static void test_init_default(void)
{
    struct byol_net *a = small_net(5), *b = small_net(5), *c = small_net(6);
    size_t np = byol_net_num_params(a);
    CU_ASSERT(memcmp(byol_net_params(a), byol_net_params(b), np * sizeof(float)) == 0);
    CU_ASSERT(memcmp(byol_net_params(a), byol_net_params(c), np * sizeof(float)) != 0);
    /* Bounds 1/sqrt(fan_in), and the values fill the range rather than sit at zero. */
    const char *names[] = {"conv1.weight", "conv1.bias", "layer1.0.downsample.0.weight",
                           "fc.weight", "fc.bias"};
    double fan_in[] = {27, 27, 8, 16, 16};
    for (int k = 0; k < 5; k++) {
        const struct byol_param *p = byol_net_find_param(a, names[k]);
        double bound = 1 / sqrt(fan_in[k]), maxabs = 0;
        for (size_t i = 0; i < p->numel; i++)
            maxabs = fmax(maxabs, fabs(p->data[i]));
        CU_ASSERT(maxabs <= bound && maxabs > 0.5 * bound);
    }
    /* Weight and bias of one layer come from different streams. */
    CU_ASSERT(byol_net_find_param(a, "fc.weight")->data[0] !=
              byol_net_find_param(a, "fc.bias")->data[0]);
    const struct byol_param *bw = byol_net_find_param(a, "bn1.weight");
    const struct byol_param *bb = byol_net_find_param(a, "bn1.bias");
    const struct byol_param *bm = byol_net_find_param(a, "bn1.running_mean");
    const struct byol_param *bv = byol_net_find_param(a, "bn1.running_var");
    for (int i = 0; i < 8; i++)
        CU_ASSERT(bw->data[i] == 1 && bb->data[i] == 0 && bm->data[i] == 0 && bv->data[i] == 1);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(a, "bn1"), 0);
    byol_net_free(a);
    byol_net_free(b);
    byol_net_free(c);
}

/* Aliases name a layer everywhere a layer name goes; children index the top level. */
static void test_aliases_children(void)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_add_input(net, "in", (struct byol_shape){2, 3, 4, 4}));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv", NULL, 4, 3, 1, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "block.bn", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "block.relu_1", NULL));
    BYOL_CHECK_OK(byol_net_add_alias(net, "block", "block.relu_1"));
    BYOL_CHECK_OK(byol_net_add_alias(net, "stage", "block")); /* an alias of an alias */
    CU_ASSERT_EQUAL(byol_net_add_alias(net, "stage", "conv"), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_net_add_alias(net, "conv", "in"), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_net_add_alias(net, "x", "nope"), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "nope"));
    CU_ASSERT_EQUAL(byol_net_add_relu(net, "block", NULL), BYOL_ERR_DUPLICATE);
    /* An alias as a layer's input; NULL still means the last layer added, not the alias. */
    BYOL_CHECK_OK(byol_net_add_add(net, "sum", "stage", NULL));
    CU_ASSERT(byol_net_has_layer(net, "stage") && byol_net_has_layer(net, "block"));
    CU_ASSERT_EQUAL(byol_net_layer_count(net), 5);

    BYOL_CHECK_OK(byol_net_add_child(net, "conv"));
    BYOL_CHECK_OK(byol_net_add_child(net, "stage"));
    BYOL_CHECK_OK(byol_net_add_child(net, "sum"));
    CU_ASSERT_EQUAL(byol_net_add_child(net, "stage"), BYOL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(byol_net_add_child(net, "nope"), BYOL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(byol_net_child_count(net), 3);
    CU_ASSERT_STRING_EQUAL(byol_net_child_name(net, 1), "stage");
    CU_ASSERT_PTR_NULL(byol_net_child_name(net, 3));
    const char *name = NULL;
    BYOL_CHECK_OK(byol_net_child_at(net, -2, &name));
    CU_ASSERT_STRING_EQUAL(name, "stage");
    BYOL_CHECK_OK(byol_net_child_at(net, 0, &name));
    CU_ASSERT_STRING_EQUAL(name, "conv");
    CU_ASSERT_EQUAL(byol_net_child_at(net, 3, &name), BYOL_ERR_NOT_FOUND);
    CU_ASSERT(contains(byol_last_error(), "conv, stage, sum"));
    CU_ASSERT_EQUAL(byol_net_child_at(net, -4, &name), BYOL_ERR_NOT_FOUND);

    BYOL_CHECK_OK(byol_net_build(net, 1));
    float x[96], a[128], b[128], dy[128];
    fill_normal(x, 96, 61);
    fill_normal(dy, 128, 62);
    BYOL_CHECK_OK(byol_net_set_input(net, "in", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, "stage")); /* computes up to block.relu_1 */
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "block.bn"), 1);
    CU_ASSERT_PTR_NULL(byol_net_bn_batches_tracked(net, "stage")); /* a relu, not a bn */
    struct byol_shape sh;
    BYOL_CHECK_OK(byol_net_output_shape(net, "stage", &sh));
    CU_ASSERT(sh.n == 2 && sh.c == 4 && sh.h == 4 && sh.w == 4);
    BYOL_CHECK_OK(byol_net_read_output(net, "stage", a));
    BYOL_CHECK_OK(byol_net_read_output(net, "block.relu_1", b));
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    BYOL_CHECK_OK(byol_net_backward(net, "block", dy));
    BYOL_CHECK_OK(byol_net_read_grad(net, "stage", a));
    CU_ASSERT(memcmp(a, dy, sizeof a) == 0);
    /* sum = relu + relu (the alias and the last layer are the same layer). */
    BYOL_CHECK_OK(byol_net_forward(net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "block", a));
    BYOL_CHECK_OK(byol_net_read_output(net, "sum", b));
    for (int i = 0; i < 128; i++)
        CU_ASSERT_DOUBLE_EQUAL(b[i], 2 * a[i], 1e-6);
    byol_net_free(net);
}

/* ---- Running. ------------------------------------------------------------------------ */

static void test_partial_forward(void)
{
    struct byol_net *net = small_net(2);
    float *x = malloc(SMALL_IN * sizeof *x);
    float fc1[SMALL_OUT], fc2[SMALL_OUT], pool1[64], pool2[64];
    fill_normal(x, SMALL_IN, 21);
    BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", fc1));
    BYOL_CHECK_OK(byol_net_read_output(net, "avgpool", pool1));

    /* A new input, computed only up to the hidden layer: fc keeps the old values. */
    fill_normal(x, SMALL_IN, 22);
    BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, "avgpool"));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", fc2));
    BYOL_CHECK_OK(byol_net_read_output(net, "avgpool", pool2));
    CU_ASSERT(memcmp(fc1, fc2, sizeof fc1) == 0);
    CU_ASSERT(memcmp(pool1, pool2, sizeof pool1) != 0);
    /* fc now belongs to an older input, so a backward through it is refused... */
    CU_ASSERT_EQUAL(byol_net_backward(net, "fc", fc1), BYOL_ERR_INVALID);
    CU_ASSERT(contains(byol_last_error(), "fc"));
    /* ...while one from the hidden layer works and reaches the input. */
    float *gx = calloc(SMALL_IN, sizeof *gx);
    BYOL_CHECK_OK(byol_net_backward(net, "avgpool", pool2));
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", gx));
    double sum = 0;
    for (int i = 0; i < SMALL_IN; i++)
        sum += fabs(gx[i]);
    CU_ASSERT(sum > 0);
    /* fc's parameters got no gradient from a backward that starts below it. */
    const struct byol_param *fw = byol_net_find_param(net, "fc.weight");
    for (size_t i = 0; i < fw->numel; i++)
        CU_ASSERT_EQUAL_FATAL(fw->grad[i], 0.0f);
    free(gx);
    free(x);
    byol_net_free(net);
}

static void test_modes(void)
{
    struct byol_net *net = small_net(3);
    float *x = malloc(SMALL_IN * sizeof *x);
    float train[SMALL_OUT], eval1[SMALL_OUT], eval2[SMALL_OUT];
    fill_normal(x, SMALL_IN, 31);
    size_t nb = byol_net_num_buffers(net);
    float *before = malloc(nb * sizeof *before);
    memcpy(before, byol_net_buffers(net), nb * sizeof *before);

    BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
    BYOL_CHECK_OK(byol_net_forward(net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", eval1));
    CU_ASSERT(memcmp(before, byol_net_buffers(net), nb * sizeof *before) == 0);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "bn1"), 0);

    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", train));
    CU_ASSERT(memcmp(before, byol_net_buffers(net), nb * sizeof *before) != 0);
    CU_ASSERT(memcmp(train, eval1, sizeof train) != 0);
    BYOL_CHECK_OK(byol_net_forward(net, 1, "maxpool"));
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "bn1"), 2);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "layer1.1.bn2"), 1);
    /* bn1's running mean moved by momentum 0.1 towards the batch mean of conv1. */
    const struct byol_param *rm = byol_net_find_param(net, "bn1.running_mean");
    float *conv = malloc(SMALL_N * 8 * 256 * sizeof *conv);
    BYOL_CHECK_OK(byol_net_read_output(net, "conv1", conv));
    double mean = 0;
    for (int n = 0; n < SMALL_N; n++)
        for (int i = 0; i < 256; i++)
            mean += conv[(n * 8 + 0) * 256 + i];
    mean /= SMALL_N * 256;
    /* Two training forwards on the same batch: m = 0.19 * batch mean. */
    CU_ASSERT(fabs(rm->data[0] - 0.19 * mean) < 1e-5 + 1e-4 * fabs(mean));

    /* Inference is repeatable and uses the (new) running statistics. */
    memcpy(before, byol_net_buffers(net), nb * sizeof *before);
    BYOL_CHECK_OK(byol_net_forward(net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", eval1));
    BYOL_CHECK_OK(byol_net_forward(net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "fc", eval2));
    CU_ASSERT(memcmp(eval1, eval2, sizeof eval1) == 0);
    CU_ASSERT(memcmp(before, byol_net_buffers(net), nb * sizeof *before) == 0);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "bn1"), 2);
    /* init_default resets the counters with the buffers. */
    byol_net_init_default(net, 3);
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(net, "bn1"), 0);
    free(conv);
    free(before);
    free(x);
    byol_net_free(net);
}

static void test_grad_accumulate(void)
{
    struct byol_net *net = small_net(4);
    float *x = malloc(SMALL_IN * sizeof *x), *gx1 = malloc(SMALL_IN * sizeof *gx1);
    float *gx2 = malloc(SMALL_IN * sizeof *gx2), R[SMALL_OUT];
    fill_normal(x, SMALL_IN, 41);
    fill_normal(R, SMALL_OUT, 42);
    size_t np = byol_net_num_params(net);
    float *g1 = malloc(np * sizeof *g1), *g2 = malloc(np * sizeof *g2);

    byol_net_zero_grad(net);
    BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_backward(net, "fc", R));
    memcpy(g1, byol_net_grads(net), np * sizeof *g1);
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", gx1));
    BYOL_CHECK_OK(byol_net_backward(net, "fc", R));
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", gx2));
    /* Parameter gradients add up; the input gradient is recomputed, not added. */
    for (size_t i = 0; i < np; i++)
        g2[i] = 0.5f * byol_net_grads(net)[i];
    CU_ASSERT(byol_test_close("grads after two backwards / 2", g2, g1, np, 0, 1e-6));
    CU_ASSERT(byol_test_close("input grad after two backwards", gx2, gx1, SMALL_IN, 0, 1e-6));
    double sum = 0;
    for (size_t i = 0; i < np; i++)
        sum += fabs(g1[i]);
    CU_ASSERT(sum > 0);

    byol_net_zero_grad(net);
    for (size_t i = 0; i < np; i++)
        CU_ASSERT_EQUAL_FATAL(byol_net_grads(net)[i], 0.0f);
    free(g1);
    free(g2);
    free(x);
    free(gx1);
    free(gx2);
    byol_net_free(net);
}

/* ADD of a layer with itself, and an output consumed twice: gradients of all uses sum. */
static void test_fan_out(void)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_add_input(net, "in", (struct byol_shape){2, 3, 2, 2}));
    BYOL_CHECK_OK(byol_net_set_requires_grad(net, "in", 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "r", "in"));
    BYOL_CHECK_OK(byol_net_add_add(net, "double", "r", "r"));
    BYOL_CHECK_OK(byol_net_add_add(net, "triple", "double", "r"));
    BYOL_CHECK_OK(byol_net_build(net, 0));
    float x[24], dy[24], y[24], gx[24];
    for (int i = 0; i < 24; i++) {
        x[i] = (float)(i - 12) + 0.5f;
        dy[i] = 0.25f * (float)i;
    }
    BYOL_CHECK_OK(byol_net_set_input(net, "in", x));
    BYOL_CHECK_OK(byol_net_forward(net, 1, NULL));
    BYOL_CHECK_OK(byol_net_read_output(net, "triple", y));
    BYOL_CHECK_OK(byol_net_backward(net, "triple", dy));
    BYOL_CHECK_OK(byol_net_read_grad(net, "in", gx));
    for (int i = 0; i < 24; i++) {
        CU_ASSERT_DOUBLE_EQUAL(y[i], x[i] > 0 ? 3 * x[i] : 0, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(gx[i], x[i] > 0 ? 3 * dy[i] : 0, 1e-6);
    }
    /* A second pass gives the same input gradient (overwritten, not summed across passes). */
    BYOL_CHECK_OK(byol_net_backward(net, "triple", dy));
    BYOL_CHECK_OK(byol_net_read_grad(net, "in", gx));
    for (int i = 0; i < 24; i++)
        CU_ASSERT_DOUBLE_EQUAL(gx[i], x[i] > 0 ? 3 * dy[i] : 0, 1e-6);
    byol_net_free(net);
}

static void test_many_builds(void)
{
    float *x = malloc(SMALL_IN * sizeof *x), R[SMALL_OUT];
    fill_normal(x, SMALL_IN, 51);
    fill_normal(R, SMALL_OUT, 52);
    for (int it = 0; it < 20; it++) {
        struct byol_net *net = small_net((uint64_t)it);
        BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
        BYOL_CHECK_OK(byol_net_forward(net, it % 2, NULL));
        BYOL_CHECK_OK(byol_net_backward(net, "fc", R));
        byol_net_free(net);
    }
    /* A network freed before build leaks nothing either (failed builds: build errors). */
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_add_input(net, "in", (struct byol_shape){1, 1, 1, 1}));
    byol_net_free(net);
    byol_net_free(NULL);
    free(x);
}

int main(int argc, char **argv)
{
    /* The backend: argv[1], else BYOL_TEST_BACKEND, else the blas reference. */
    const char *backend = getenv("BYOL_TEST_BACKEND");
    if (argc > 1)
        backend = argv[1];
    g_reg = byol_test_registry();
    g_be = byol_test_backend(g_reg, backend && *backend ? backend : "blas", 2);
    printf("backend: %s\n", byol_backend_name(g_be));
    static const struct byol_test_case cases[] = {
        {"shapes", test_shapes, 0},
        {"unknown names", test_unknown_names, 0},
        {"build errors", test_build_errors, 0},
        {"parameter layout", test_param_layout, 0},
        {"default init", test_init_default, 0},
        {"aliases and children", test_aliases_children, 0},
        {"partial forward", test_partial_forward, 0},
        {"training and inference", test_modes, 0},
        {"gradients accumulate", test_grad_accumulate, 0},
        {"fan-out", test_fan_out, 0},
        {"gradient check", test_gradcheck, 0},
        {"pytorch parity", test_torch_parity, 0},
        {"many builds", test_many_builds, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "net", cases);
    byol_backend_free(g_be);
    byol_registry_free(g_reg);
    return rc;
}
