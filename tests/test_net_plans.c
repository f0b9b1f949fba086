/* The network engine's execution plans, on any backend (argv[1]): input layers without a
 * gradient, batch norm + relu fusion, shared output and gradient storage (memory plans), the
 * multiply-add count and per-layer profiling. Each plan must give the same numbers as the plain
 * engine, over two steps so that storage reused across steps is covered too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PN 4  /* batch */
#define PC 3  /* input channels */
#define PHW 8 /* input size */
#define PK 6  /* classes */
#define P_IN (PN * PC * PHW * PHW)
#define P_OUT (PN * PK)
/* The plans change no arithmetic but oneDNN's fused kernel may order a sum differently. */
#define PLAN_RTOL 1e-5

static struct byol_registry *g_reg;
static struct byol_backend *g_be;

static void fill(float *x, size_t n, uint64_t seed)
{
    struct byol_rng r;
    byol_rng_init(&r, seed, 3);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)byol_rng_normal(&r);
}

/* conv-bn-relu, a residual block with a fan-out, and a head: fusable pairs (bn1/relu,
 * b.bn1/b.relu1), a batch norm read by an add (b.bn2), a relu after the add. */
static struct byol_net *plan_net(enum byol_net_memory memory, int fuse, int input_grad)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_set_memory(net, memory));
    BYOL_CHECK_OK(byol_net_set_fusion(net, fuse));
    BYOL_CHECK_OK(byol_net_add_input(net, "x", (struct byol_shape){PN, PC, PHW, PHW}));
    if (input_grad)
        BYOL_CHECK_OK(byol_net_set_requires_grad(net, "x", 1));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv1", NULL, 16, 3, 1, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "bn1", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "relu", NULL));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "b.conv1", "relu", 16, 3, 1, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "b.bn1", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "b.relu1", NULL));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "b.conv2", NULL, 16, 3, 1, 1, 0));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "b.bn2", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_add(net, "b.add", "b.bn2", "relu"));
    BYOL_CHECK_OK(byol_net_add_relu(net, "b.relu2", NULL));
    BYOL_CHECK_OK(byol_net_add_avgpool(net, "avgpool", NULL));
    BYOL_CHECK_OK(byol_net_add_flatten(net, "flatten", NULL));
    BYOL_CHECK_OK(byol_net_add_linear(net, "fc", NULL, PK, 1));
    BYOL_CHECK_OK(byol_net_build(net, 5));
    /* Batch norm starts as the identity; move it so that its parameters matter. */
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role == BYOL_ROLE_PARAM && strstr(p->name, "bn"))
            fill(p->data, p->numel, 100 + i);
    }
    return net;
}

/* What a step leaves: the output, every parameter gradient, the input gradient. */
struct step_out {
    float y[P_OUT], gx[P_IN];
    float *grads;
};

/* Two forward + backward steps (gradients add up); `training` 0 runs batch norm on running
 * statistics (the fused backward then masks by hand). */
static void run_steps(struct byol_net *net, int training, int backward, struct step_out *o)
{
    float x[P_IN], dy[P_OUT];
    byol_net_zero_grad(net);
    for (int step = 0; step < 2; step++) {
        fill(x, P_IN, 10 + (uint64_t)step);
        fill(dy, P_OUT, 20 + (uint64_t)step);
        BYOL_CHECK_OK(byol_net_set_input(net, "x", x));
        BYOL_CHECK_OK(byol_net_forward(net, training, NULL));
        BYOL_CHECK_OK(byol_net_read_output(net, "fc", o->y));
        if (backward)
            BYOL_CHECK_OK(byol_net_backward(net, "fc", dy));
    }
    o->grads = malloc(byol_net_num_params(net) * sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->grads);
    memcpy(o->grads, byol_net_grads(net), byol_net_num_params(net) * sizeof(float));
}

static void compare_plan(enum byol_net_memory memory, int fuse, int training)
{
    struct byol_net *ref = plan_net(BYOL_NET_KEEP_ALL, 0, 1), *net = plan_net(memory, fuse, 1);
    struct step_out a, b;
    run_steps(ref, training, 1, &a);
    run_steps(net, training, 1, &b);
    BYOL_CHECK_OK(byol_net_read_grad(ref, "x", a.gx));
    BYOL_CHECK_OK(byol_net_read_grad(net, "x", b.gx));
    printf("\n  memory %d, fusion %d, %s:", (int)memory, fuse, training ? "training" : "inference");
    CU_ASSERT(byol_test_close("output", b.y, a.y, P_OUT, 0, PLAN_RTOL));
    CU_ASSERT(byol_test_close("parameter gradients", b.grads, a.grads, byol_net_num_params(ref),
                              1e-6, PLAN_RTOL));
    CU_ASSERT(byol_test_close("input gradient", b.gx, a.gx, P_IN, 1e-7, PLAN_RTOL));
    free(a.grads);
    free(b.grads);
    byol_net_free(ref);
    byol_net_free(net);
}

static void test_fusion(void)
{
    compare_plan(BYOL_NET_KEEP_ALL, 1, 1);
    compare_plan(BYOL_NET_KEEP_ALL, 1, 0);
    /* Both names still resolve: the fused relu reads as max(bn, 0). */
    struct byol_net *net = plan_net(BYOL_NET_KEEP_ALL, 1, 0);
    struct step_out o;
    run_steps(net, 1, 0, &o);
    float *r = malloc(PN * 16 * PHW * PHW * sizeof *r);
    BYOL_CHECK_OK(byol_net_read_output(net, "relu", r));
    int negative = 0, positive = 0;
    for (int i = 0; i < PN * 16 * PHW * PHW; i++) {
        negative += r[i] < 0.0f;
        positive += r[i] > 0.0f;
    }
    CU_ASSERT_EQUAL(negative, 0);
    CU_ASSERT(positive > 0);
    free(r);
    free(o.grads);
    byol_net_free(net);
}

static void test_shared_grads(void)
{
    compare_plan(BYOL_NET_SHARE_GRADS, 0, 1);
    compare_plan(BYOL_NET_SHARE_GRADS, 1, 1);
    compare_plan(BYOL_NET_SHARE_GRADS, 1, 0);
    /* b.add runs in place over b.bn2 (read by nothing else) and b.relu2 over b.add; relu, read
     * by b.conv1 and b.add, keeps its own. What was overwritten cannot be read back. */
    struct byol_net *net = plan_net(BYOL_NET_SHARE_GRADS, 1, 1);
    struct step_out o;
    run_steps(net, 1, 1, &o);
    float *r = malloc(PN * 16 * PHW * PHW * sizeof *r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(byol_net_read_output(net, "b.bn2", r), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("'b.add' writes its output over it in place");
    CU_ASSERT_EQUAL(byol_net_read_output(net, "b.add", r), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("'b.relu2'");
    BYOL_CHECK_OK(byol_net_read_output(net, "b.relu2", r));
    BYOL_CHECK_OK(byol_net_read_output(net, "relu", r));
    free(r);
    free(o.grads);
    byol_net_free(net);
}

static void test_forward_only(void)
{
    struct byol_net *ref = plan_net(BYOL_NET_KEEP_ALL, 0, 0);
    struct byol_net *net = plan_net(BYOL_NET_FORWARD_ONLY, 1, 0);
    struct step_out a, b;
    run_steps(ref, 1, 0, &a);
    run_steps(net, 1, 0, &b);
    printf("\n  forward only:");
    CU_ASSERT(byol_test_close("output", b.y, a.y, P_OUT, 0, PLAN_RTOL));
    /* Running statistics move the same way. */
    CU_ASSERT(byol_test_close("buffers", byol_net_buffers(net), byol_net_buffers(ref),
                              byol_net_num_buffers(ref), 0, PLAN_RTOL));
    float dy[P_OUT] = {0};
    CU_ASSERT_EQUAL(byol_net_backward(net, "fc", dy), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("forward-only");
    CU_ASSERT_EQUAL(byol_net_set_memory(net, BYOL_NET_KEEP_ALL), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_net_set_fusion(net, 0), BYOL_ERR_INVALID);
    free(a.grads);
    free(b.grads);
    byol_net_free(ref);
    byol_net_free(net);
}

/* Without requires_grad the input has no gradient, and nothing else changes. */
static void test_input_grad(void)
{
    struct byol_net *with = plan_net(BYOL_NET_KEEP_ALL, 0, 1);
    struct byol_net *without = plan_net(BYOL_NET_KEEP_ALL, 0, 0);
    float gx[P_IN];
    CU_ASSERT_EQUAL(byol_net_read_grad(with, "x", gx), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("before any backward");
    struct step_out a, b;
    run_steps(with, 1, 1, &a);
    run_steps(without, 1, 1, &b);
    printf("\n  input without a gradient:");
    CU_ASSERT(
        byol_test_close("parameter gradients", b.grads, a.grads, byol_net_num_params(with), 0, 0));
    CU_ASSERT_EQUAL(byol_net_read_grad(without, "x", gx), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("requires_grad");
    CU_ASSERT_EQUAL(byol_net_set_requires_grad(without, "conv1", 1), BYOL_ERR_INVALID);
    free(a.grads);
    free(b.grads);
    byol_net_free(with);
    byol_net_free(without);
}

static void test_macs_and_profile(void)
{
    struct byol_net *net = plan_net(BYOL_NET_KEEP_ALL, 0, 0);
    double macs = 0, conv1 = 0;
    BYOL_CHECK_OK(byol_net_forward_macs(net, NULL, &macs));
    BYOL_CHECK_OK(byol_net_forward_macs(net, "conv1", &conv1));
    double conv = (double)PN * 16 * PHW * PHW * 9; /* per input channel */
    CU_ASSERT_DOUBLE_EQUAL(conv1, conv * PC, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(macs, conv * (PC + 16 + 16) + (double)PN * PK * 16, 0.5);
    CU_ASSERT_EQUAL(byol_net_forward_macs(net, "nope", &macs), BYOL_ERR_NOT_FOUND);

    byol_net_set_profiling(net, 1);
    struct step_out o;
    run_steps(net, 1, 1, &o);
    byol_net_set_profiling(net, 0);
    int kind = -1;
    double f = 0, b = 0;
    BYOL_CHECK_OK(byol_net_layer_time(net, 1, &kind, &f, &b)); /* conv1 */
    CU_ASSERT_EQUAL(kind, BYOL_OP_CONV2D);
    CU_ASSERT(f > 0 && b > 0);
    BYOL_CHECK_OK(byol_net_layer_time(net, 0, &kind, &f, &b)); /* the input */
    CU_ASSERT(kind == 0 && f == 0 && b == 0);
    CU_ASSERT_EQUAL(byol_net_layer_time(net, 99, NULL, NULL, NULL), BYOL_ERR_INVALID);
    free(o.grads);
    byol_net_free(net);
}

/* A backend without BYOL_BACKEND_FUSES_BN_RELU: the wrapper refuses a fused plan and the
 * engine runs the relu on its own, with the same numbers. */
static void test_backend_without_fusion(void)
{
    static struct byol_backend_ops ops;
    const void *found = NULL;
    BYOL_CHECK_OK(
        byol_registry_require(g_reg, BYOL_PLUGIN_BACKEND, byol_backend_name(g_be), &found));
    ops = *(const struct byol_backend_ops *)found;
    ops.flags = 0;
    struct byol_backend *plain = NULL, *keep = g_be;
    BYOL_CHECK_OK(byol_backend_create_from_ops(&ops, NULL, &plain));
    struct byol_op_desc d = {.kind = BYOL_OP_BATCHNORM, .in = {{2, 16, 4, 4}}};
    d.u.bn.eps = 1e-5f;
    d.u.bn.fuse_relu = 1;
    void *plan = NULL;
    size_t saved = 0;
    CU_ASSERT_EQUAL(byol_backend_plan_create(plain, &d, &plan, &saved), BYOL_ERR_UNSUPPORTED);
    BYOL_ASSERT_MSG_HAS("fused relu");
    g_be = plain;
    struct byol_net *net = plan_net(BYOL_NET_SHARE_GRADS, 1, 1);
    g_be = keep;
    struct byol_net *ref = plan_net(BYOL_NET_KEEP_ALL, 0, 1);
    struct step_out a, b;
    run_steps(ref, 1, 1, &a);
    run_steps(net, 1, 1, &b);
    printf("\n  backend without fusion:");
    CU_ASSERT(byol_test_close("output", b.y, a.y, P_OUT, 0, PLAN_RTOL));
    CU_ASSERT(byol_test_close("parameter gradients", b.grads, a.grads, byol_net_num_params(ref),
                              1e-6, PLAN_RTOL));
    free(a.grads);
    free(b.grads);
    byol_net_free(ref);
    byol_net_free(net);
    byol_backend_free(plain);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : getenv("BYOL_TEST_BACKEND");
    g_reg = byol_test_registry();
    g_be = byol_test_backend(g_reg, backend && *backend ? backend : "blas", 2);
    printf("backend: %s\n", byol_backend_name(g_be));
    static const struct byol_test_case cases[] = {
        {"input without a gradient", test_input_grad, 0},
        {"batch norm + relu fusion", test_fusion, 0},
        {"shared gradients", test_shared_grads, 0},
        {"forward only", test_forward_only, 0},
        {"multiply-adds and profiling", test_macs_and_profile, 0},
        {"backend without fusion", test_backend_without_fusion, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "net plans", cases);
    byol_backend_free(g_be);
    byol_registry_free(g_reg);
    return rc;
}
