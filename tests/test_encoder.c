/* Encoder tests: the resnet plugin against torchvision (state_dict names and shapes, children,
 * forward and gradient parity from tests/fixtures/encoders.safetensors), hidden layers by name
 * and index, initialisation, settings errors, the config-defined "layers" encoder, a user's own
 * encoder .so, and byol_net_load_weights. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byol/encoder.h"
#include "testutil.h"

static struct byol_registry *g_reg;
static struct byol_backend *g_be;
static struct byol_st_file *g_fix;

/* Relative tolerance for parity with PyTorch. Both sides compute in float32 from identical
 * parameters; they differ only in summation order (im2col + sgemm blocks vs. MKL-DNN / THNN
 * kernels, and batch-norm statistics), i.e. a few ulps (~1e-7) per reduction of up to
 * 4608 terms, which training-mode batch norm then rescales by 1/std at every one of the ~20
 * layers. Measured differences are ~1e-6 of the largest value; 1e-4 leaves a wide margin yet
 * still catches any wrong stride, padding, name or parameter (those give O(1) errors). */
#define PARITY_RTOL 1e-4

/* ---- Building encoders from config text. ---------------------------------------------- */

struct enc {
    struct byol_config *cfg;
    struct byol_net *net;
    const char *output;
};

/* Parse `text` (a whole config, named "enc.cfg" in messages), build model.encoder on an input
 * named "input" of shape `in`, and optionally run the encoder's init. */
static byol_status enc_try(const char *text, struct byol_shape in, int run_init, struct enc *e)
{
    memset(e, 0, sizeof *e);
    byol_status st = byol_config_parse(text, "enc.cfg", &e->cfg);
    const struct byol_settings *s = byol_settings_child(byol_config_root(e->cfg), "model.encoder");
    const char *name = NULL;
    const void *ops = NULL;
    if (st == BYOL_OK)
        st = byol_settings_string(s, "name", NULL, &name);
    if (st == BYOL_OK)
        st = byol_registry_require(g_reg, BYOL_PLUGIN_ENCODER, name ? name : "", &ops);
    if (st == BYOL_OK)
        st = byol_net_create(g_be, &e->net);
    if (st == BYOL_OK)
        st = byol_net_add_input(e->net, "input", in);
    if (st == BYOL_OK) /* the parity checks compare dL/dinput too */
        st = byol_net_set_requires_grad(e->net, "input", 1);
    const struct byol_encoder_ops *enc = ops;
    if (st == BYOL_OK)
        st = enc->build(byol_host_api(), s, e->net, "input", in, &e->output);
    if (st == BYOL_OK)
        st = byol_net_build(e->net, 1);
    if (st == BYOL_OK && run_init && enc->init)
        st = enc->init(byol_host_api(), s, e->net, 42);
    return st;
}

static void enc_free(struct enc *e)
{
    byol_net_free(e->net);
    byol_config_free(e->cfg);
    memset(e, 0, sizeof *e);
}

static void enc_build(const char *text, struct byol_shape in, int run_init, struct enc *e)
{
    BYOL_CHECK_OK(enc_try(text, in, run_init, e));
}

static const char *const R18_CIFAR1 =
    "model = { encoder = { name = \"resnet18\"; stem = \"cifar\"; in_channels = 1;\n"
    "                      num_classes = 10; }; };\n";

/* ---- Fixtures. ---------------------------------------------------------------------- */

/* A fixture tensor as an aligned copy (free it); fails the test if its size is not `numel`. */
static float *fix(const char *name, size_t numel)
{
    const struct byol_st_tensor *t = byol_st_find(g_fix, name);
    if (!t || t->dtype != BYOL_ST_F32 || t->numel != numel) {
        fprintf(stderr, "\n  fixture %s: missing or not %zu floats\n", name, numel);
        CU_FAIL_FATAL("bad fixture");
    }
    float *x = malloc(numel * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    memcpy(x, t->data, numel * sizeof *x);
    return x;
}

/* Compare a layer's output (or gradient) with a fixture tensor. */
static void check_layer(struct byol_net *net, const char *layer, int grad, const char *ref_name,
                        size_t n)
{
    float *ref = fix(ref_name, n), *got = malloc(n * sizeof *got);
    struct byol_shape s;
    BYOL_CHECK_OK(byol_net_output_shape(net, layer, &s));
    CU_ASSERT_EQUAL_FATAL(byol_shape_numel(s), n);
    BYOL_CHECK_OK(grad ? byol_net_read_grad(net, layer, got)
                       : byol_net_read_output(net, layer, got));
    CU_ASSERT(byol_test_close(ref_name, got, ref, n, 0, PARITY_RTOL));
    free(ref);
    free(got);
}

/* One "[name, [d0, d1]]" entry of a manifest; returns the text after it, NULL at the end. */
static const char *manifest_next(const char *p, char *name, size_t size, int *dims, int *ndim)
{
    p = strstr(p, "[\"");
    if (!p)
        return NULL;
    p += 2;
    const char *q = strchr(p, '"');
    snprintf(name, size, "%.*s", (int)(q - p), p);
    p = strchr(q, '[') + 1;
    *ndim = 0;
    while (*p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        dims[(*ndim)++] = (int)v;
        p = end + (*end == ',');
    }
    return p;
}

/* The net's parameters and buffers equal torchvision's state_dict (names, shapes, order);
 * num_batches_tracked entries match a batch-norm layer's counter. */
static void check_manifest(struct byol_net *net, const char *key)
{
    const char *m = byol_st_metadata(g_fix, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char name[256];
    int dims[8], ndim, mismatches = 0;
    size_t j = 0, n = byol_net_param_count(net);
    for (const char *p = m; (p = manifest_next(p, name, sizeof name, dims, &ndim));) {
        size_t len = strlen(name), sfx = strlen(".num_batches_tracked");
        if (len > sfx && strcmp(name + len - sfx, ".num_batches_tracked") == 0) {
            name[len - sfx] = '\0';
            CU_ASSERT_PTR_NOT_NULL(byol_net_bn_batches_tracked(net, name));
            continue;
        }
        const struct byol_param *q = byol_net_param_at(net, j++);
        int same = q && strcmp(q->name, name) == 0 && q->ndim == ndim;
        for (int k = 0; same && k < ndim; k++)
            same = q->dims[k] == dims[k];
        if (!same && mismatches++ < 3)
            fprintf(stderr, "\n  %s entry %zu: torch %s, net %s\n", key, j - 1, name,
                    q ? q->name : "(none)");
    }
    printf("  %s: %zu tensors compared\n", key, j);
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(j, n);
}

/* The net's children equal torch's named_children(), less the names in `skip`. */
static void check_children(struct byol_net *net, const char *key, const char *skip)
{
    const char *m = byol_st_metadata(g_fix, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    size_t j = 0;
    for (const char *p = strchr(m, '"'); p; p = strchr(p, '"')) {
        const char *q = strchr(p + 1, '"');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(q - p - 1), p + 1);
        p = q + 1;
        if (skip && strcmp(name, skip) == 0)
            continue;
        const char *c = byol_net_child_name(net, j++);
        CU_ASSERT(c && strcmp(c, name) == 0);
    }
    CU_ASSERT_EQUAL(byol_net_child_count(net), j);
}

/* ---- ResNets against torchvision. ------------------------------------------------------- */

static void test_resnet_manifests(void)
{
    static const char *const archs[] = {"resnet18", "resnet34", "resnet50"};
    struct byol_shape in = {1, 3, 32, 32};
    for (int i = 0; i < 3; i++) {
        char text[256], key[64];
        snprintf(text, sizeof text, "model = { encoder = { name = \"%s\"; }; };", archs[i]);
        snprintf(key, sizeof key, "manifest.%s", archs[i]);
        struct enc e;
        enc_build(text, in, 0, &e);
        check_manifest(e.net, key);
        check_children(e.net, "children.resnet18", NULL); /* the same for every ResNet */
        CU_ASSERT_STRING_EQUAL(e.output, "fc");
        enc_free(&e);
    }
    struct enc e;
    enc_build(R18_CIFAR1, (struct byol_shape){1, 1, 16, 16}, 0, &e);
    check_manifest(e.net, "manifest.resnet18_cifar1");
    /* torch keeps maxpool as an nn.Identity child; the cifar stem has no maxpool at all. */
    check_children(e.net, "children.resnet18_cifar1", "maxpool");
    enc_free(&e);
}

/* Sum and L2 norm (in double) and NSAMPLE samples of a parameter's gradient. */
static void check_grad_summary(struct byol_net *net, const char *name)
{
    const struct byol_param *p = byol_net_find_param(net, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char key[160];
    snprintf(key, sizeof key, "r18.gsum.%s", name);
    float *sum = fix(key, 2);
    snprintf(key, sizeof key, "r18.gsample.%s", name);
    float *ref = fix(key, 32);
    double s = 0, ss = 0;
    for (size_t i = 0; i < p->numel; i++) {
        s += p->grad[i];
        ss += (double)p->grad[i] * p->grad[i];
    }
    float got[32], norm = (float)sqrt(ss);
    for (size_t k = 0; k < 32; k++)
        got[k] = p->grad[k * p->numel / 32];
    CU_ASSERT(byol_test_close(key, got, ref, 32, 0, PARITY_RTOL));
    /* The sum cancels: compare it against the norm's scale, not its own. */
    float sum_got = (float)s;
    CU_ASSERT(fabs(sum_got - sum[0]) <= PARITY_RTOL * sum[1] + 1e-12);
    CU_ASSERT(byol_test_close("  norm", &norm, &sum[1], 1, 0, PARITY_RTOL));
    free(sum);
    free(ref);
}

/* torchvision resnet18 (cifar stem, 1 channel, 10 classes), detinit parameters, training mode:
 * features, output, input gradient, parameter gradients and running statistics. */
static void test_resnet18_parity(void)
{
    static const char *const grads[] = {"conv1.weight",
                                        "bn1.weight",
                                        "layer1.0.conv1.weight",
                                        "layer2.0.downsample.0.weight",
                                        "layer3.1.bn2.bias",
                                        "layer4.1.conv2.weight",
                                        "fc.weight",
                                        "fc.bias"};
    struct enc e;
    enc_build(R18_CIFAR1, (struct byol_shape){4, 1, 16, 16}, 1, &e);
    byol_test_detinit_net(e.net, "");
    float *x = fix("r18.x", 4 * 16 * 16), *dy = fix("r18.dy", 40);
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 1, NULL));
    check_layer(e.net, "avgpool", 0, "r18.avgpool", 4 * 512);
    check_layer(e.net, "fc", 0, "r18.fc", 40);
    byol_net_zero_grad(e.net);
    BYOL_CHECK_OK(byol_net_backward(e.net, e.output, dy));
    check_layer(e.net, "input", 1, "r18.grad.x", 4 * 16 * 16);
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++)
        check_grad_summary(e.net, grads[i]);
    static const char *const state[] = {"bn1.running_mean", "bn1.running_var",
                                        "layer4.1.bn2.running_var"};
    for (int i = 0; i < 3; i++) {
        const struct byol_param *p = byol_net_find_param(e.net, state[i]);
        char key[96];
        snprintf(key, sizeof key, "r18.state.%s", state[i]);
        float *ref = fix(key, p->numel);
        CU_ASSERT(byol_test_close(key, p->data, ref, p->numel, 0, PARITY_RTOL));
        free(ref);
    }
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(e.net, "layer2.1.bn1"), 1);
    free(x);
    free(dy);
    enc_free(&e);
}

/* torchvision resnet50 (imagenet stem), inference mode with detinit running statistics. */
static void test_resnet50_parity(void)
{
    struct enc e;
    enc_build("model = { encoder = { name = \"resnet50\"; }; };", (struct byol_shape){2, 3, 32, 32},
              0, &e);
    byol_test_detinit_net(e.net, "");
    float *x = fix("r50.x", 2 * 3 * 32 * 32);
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 0, "avgpool"));
    check_layer(e.net, "avgpool", 0, "r50.avgpool", 2 * 2048);
    free(x);
    enc_free(&e);
}

/* ---- Hidden layers. ------------------------------------------------------------------- */

static void expect_shape(struct byol_net *net, const char *layer, struct byol_shape want)
{
    struct byol_shape s = {0, 0, 0, 0};
    BYOL_CHECK_OK(byol_net_output_shape(net, layer, &s));
    if (!byol_shape_eq(s, want))
        fprintf(stderr, "\n  %s: (%d,%d,%d,%d)\n", layer, s.n, s.c, s.h, s.w);
    CU_ASSERT(byol_shape_eq(s, want));
}

static void test_hidden_by_index(void)
{
    struct enc e;
    enc_build("model = { encoder = { name = \"resnet18\"; }; };", (struct byol_shape){2, 3, 32, 32},
              0, &e);
    const char *name = NULL;
    CU_ASSERT_EQUAL(byol_net_child_count(e.net), 10);
    BYOL_CHECK_OK(byol_net_child_at(e.net, -2, &name));
    CU_ASSERT_STRING_EQUAL(name, "avgpool");
    BYOL_CHECK_OK(byol_net_child_at(e.net, -1, &name));
    CU_ASSERT_STRING_EQUAL(name, "fc");
    BYOL_CHECK_OK(byol_net_child_at(e.net, 0, &name));
    CU_ASSERT_STRING_EQUAL(name, "conv1");
    BYOL_CHECK_OK(byol_net_child_at(e.net, 4, &name));
    CU_ASSERT_STRING_EQUAL(name, "layer1");
    BYOL_CHECK_OK(byol_net_child_at(e.net, -10, &name));
    CU_ASSERT_STRING_EQUAL(name, "conv1");
    CU_ASSERT_EQUAL(byol_net_child_at(e.net, 10, &name), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("10");
    BYOL_ASSERT_MSG_HAS("conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc");
    CU_ASSERT_EQUAL(byol_net_child_at(e.net, -11, &name), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("-11");
    enc_free(&e);
    /* cifar stem: no maxpool child, yet -2 is still avgpool. */
    enc_build(R18_CIFAR1, (struct byol_shape){2, 1, 16, 16}, 0, &e);
    CU_ASSERT_EQUAL(byol_net_child_count(e.net), 9);
    BYOL_CHECK_OK(byol_net_child_at(e.net, -2, &name));
    CU_ASSERT_STRING_EQUAL(name, "avgpool");
    BYOL_CHECK_OK(byol_net_child_at(e.net, 3, &name));
    CU_ASSERT_STRING_EQUAL(name, "layer1");
    enc_free(&e);
}

static void test_hidden_by_name(void)
{
    struct enc e;
    enc_build("model = { encoder = { name = \"resnet18\"; }; };", (struct byol_shape){2, 3, 32, 32},
              0, &e);
    expect_shape(e.net, "avgpool", (struct byol_shape){2, 512, 1, 1});
    expect_shape(e.net, "flatten", (struct byol_shape){2, 512, 1, 1});
    expect_shape(e.net, "layer4", (struct byol_shape){2, 512, 1, 1});
    expect_shape(e.net, "layer3.1", (struct byol_shape){2, 256, 2, 2});
    expect_shape(e.net, "layer1", (struct byol_shape){2, 64, 8, 8});
    expect_shape(e.net, "maxpool", (struct byol_shape){2, 64, 8, 8});
    CU_ASSERT(byol_net_has_layer(e.net, "layer2.0.downsample.1"));
    CU_ASSERT(byol_net_has_layer(e.net, "layer3.1.relu_1"));
    CU_ASSERT(!byol_net_has_layer(e.net, "layer1.0.downsample.0")); /* same shape: none */
    struct byol_shape s;
    CU_ASSERT_EQUAL(byol_net_output_shape(e.net, "layer9", &s), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("'layer9'");
    BYOL_ASSERT_MSG_HAS("conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc");

    /* An alias reads the very output of the layer it names. */
    size_t n = 2 * 3 * 32 * 32, nf = 2 * 64 * 8 * 8;
    float *x = malloc(n * sizeof *x), *a = malloc(nf * sizeof *a), *b = malloc(nf * sizeof *b);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)sin(0.37 * (double)i);
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 0, "layer1"));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "layer1", a));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "layer1.1.relu_1", b));
    CU_ASSERT_EQUAL(memcmp(a, b, nf * sizeof *a), 0);

    /* Forward until the hidden layer leaves fc alone: after a new input, fc still holds the
     * old output while avgpool moved. */
    float fc_old[2000], fc_new[2000], pool_old[1024], pool_new[1024];
    BYOL_CHECK_OK(byol_net_forward(e.net, 0, NULL));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "fc", fc_old));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "avgpool", pool_old));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)cos(0.11 * (double)i);
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 0, "avgpool"));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "fc", fc_new));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "avgpool", pool_new));
    CU_ASSERT_EQUAL(memcmp(fc_old, fc_new, sizeof fc_old), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(pool_old, pool_new, sizeof pool_old), 0);
    free(x);
    free(a);
    free(b);
    enc_free(&e);
}

/* ---- Initialisation and settings. ----------------------------------------------------- */

static double param_std(const struct byol_param *p)
{
    double s = 0, ss = 0;
    for (size_t i = 0; i < p->numel; i++) {
        s += p->data[i];
        ss += (double)p->data[i] * p->data[i];
    }
    double m = s / (double)p->numel;
    return sqrt(ss / (double)p->numel - m * m);
}

static int all_equal(const struct byol_param *p, float v)
{
    for (size_t i = 0; i < p->numel; i++)
        if (p->data[i] != v)
            return 0;
    return 1;
}

/* torchvision's scheme: kaiming-normal fan-out convs, BN 1/0, fc U(+-1/sqrt(fan_in)). */
static void test_resnet_init(void)
{
    struct enc e, f;
    const char *text =
        "model = { encoder = { name = \"resnet18\"; zero_init_residual = true; }; };";
    enc_build(text, (struct byol_shape){1, 3, 32, 32}, 1, &e);
    const struct byol_param *c1 = byol_net_find_param(e.net, "conv1.weight");
    const struct byol_param *l4 = byol_net_find_param(e.net, "layer4.0.conv2.weight");
    double want1 = sqrt(2.0 / (64 * 49)), want4 = sqrt(2.0 / (512 * 9));
    printf("  conv1 std %.5f (want %.5f), layer4.0.conv2 std %.6f (want %.6f)\n", param_std(c1),
           want1, param_std(l4), want4);
    CU_ASSERT(fabs(param_std(c1) / want1 - 1) < 0.03); /* 9408 draws: sd of the ratio 0.7% */
    CU_ASSERT(fabs(param_std(l4) / want4 - 1) < 0.01); /* 2.4M draws */
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "bn1.weight"), 1.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "bn1.bias"), 0.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "layer1.0.bn1.weight"), 1.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "layer1.0.bn2.weight"), 0.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "layer4.1.bn2.weight"), 0.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "layer2.0.downsample.1.weight"), 1.0f));
    CU_ASSERT(all_equal(byol_net_find_param(e.net, "layer3.0.bn1.running_var"), 1.0f));
    const struct byol_param *fc = byol_net_find_param(e.net, "fc.weight");
    const struct byol_param *fcb = byol_net_find_param(e.net, "fc.bias");
    float bound = 1.0f / sqrtf(512.0f), mx = 0;
    for (size_t i = 0; i < fc->numel; i++)
        mx = fmaxf(mx, fabsf(fc->data[i]));
    CU_ASSERT(mx <= bound && mx > 0.99f * bound);
    CU_ASSERT(fabs(param_std(fc) / (bound / sqrt(3.0)) - 1) < 0.01);
    CU_ASSERT(!all_equal(fcb, 0.0f) && fabsf(fcb->data[0]) <= bound);
    /* Same seed, same values; zero_init_residual off: bn2 starts at 1. */
    enc_build("model = { encoder = { name = \"resnet18\"; }; };", (struct byol_shape){1, 3, 32, 32},
              1, &f);
    const struct byol_param *c1f = byol_net_find_param(f.net, "conv1.weight");
    CU_ASSERT_EQUAL(memcmp(c1->data, c1f->data, c1->numel * sizeof(float)), 0);
    CU_ASSERT(all_equal(byol_net_find_param(f.net, "layer1.0.bn2.weight"), 1.0f));
    enc_free(&e);
    enc_free(&f);
}

static void expect_build_error(const char *text, struct byol_shape in, byol_status want,
                               const char *msg1, const char *msg2)
{
    struct enc e;
    byol_status st = enc_try(text, in, 1, &e);
    if (st != want)
        fprintf(stderr, "\n  got %s: %s\n", byol_status_str(st), byol_last_error());
    CU_ASSERT_EQUAL(st, want);
    BYOL_ASSERT_MSG_HAS(msg1);
    if (msg2)
        BYOL_ASSERT_MSG_HAS(msg2);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    enc_free(&e);
}

static void test_resnet_settings(void)
{
    struct byol_shape in = {1, 3, 32, 32};
    expect_build_error("model = { encoder = { name = \"resnet18\";\n depth = 3; }; };", in,
                       BYOL_ERR_INVALID, "enc.cfg:2: model.encoder.depth: unknown setting", "stem");
    expect_build_error("model = { encoder = { name = \"resnet34\"; stem = \"tiny\"; }; };", in,
                       BYOL_ERR_INVALID, "stem = \"tiny\"", "\"imagenet\" or \"cifar\"");
    expect_build_error("model = { encoder = { name = \"resnet50\"; in_channels = 1; }; };", in,
                       BYOL_ERR_INVALID, "in_channels = 1, but the input has 3 channels", NULL);
    expect_build_error(
        "model = { encoder = { name = \"resnet18\";\n\n num_classes = \"ten\"; }; };", in,
        BYOL_ERR_INVALID, "enc.cfg:3: model.encoder.num_classes", NULL);
    expect_build_error("model = { encoder = { name = \"resnet180\"; }; };", in, BYOL_ERR_NOT_FOUND,
                       "byol-encoder-resnet180.so", "known: layers, resnet18, resnet34, resnet50");
    /* Weights and the name are the core's keys, allowed in the group. */
    struct enc e;
    enc_build("model = { encoder = { name = \"resnet18\"; weights = \"w.safetensors\";\n"
              "  stem = \"cifar\"; zero_init_residual = false; num_classes = 3; }; };",
              in, 0, &e);
    expect_shape(e.net, "fc", (struct byol_shape){1, 3, 1, 1});
    expect_shape(e.net, "layer1", (struct byol_shape){1, 64, 32, 32});
    enc_free(&e);
}

/* ---- The config-defined encoder. ------------------------------------------------------ */

static const char *const LAYERS_CFG =
    "model = {\n"
    "  encoder = {\n"
    "    name = \"layers\";\n"
    "    layers = (\n"
    "      { type = \"conv\"; name = \"conv1\"; out = 16; kernel = 3; stride = 1; pad = 1; "
    "bias = false; },\n"
    "      { type = \"bn\"; name = \"bn1\"; },\n"
    "      { type = \"relu\"; name = \"relu\"; },\n"
    "      { type = \"maxpool\"; kernel = 3; stride = 2; pad = 1; },\n"
    "      { type = \"residual\"; name = \"block1\"; out = 32; stride = 2; },\n"
    "      { type = \"avgpool\"; name = \"avgpool\"; },\n"
    "      { type = \"flatten\"; },\n"
    "      { type = \"linear\"; name = \"fc\"; out = 10; }\n"
    "    );\n"
    "  };\n"
    "};\n";

static void test_layers_encoder(void)
{
    struct enc e;
    enc_build(LAYERS_CFG, (struct byol_shape){2, 3, 16, 16}, 1, &e);
    check_manifest(e.net, "manifest.layers");
    check_children(e.net, "children.layers", NULL);
    CU_ASSERT_STRING_EQUAL(e.output, "fc");
    expect_shape(e.net, "maxpool3", (struct byol_shape){2, 16, 8, 8});
    expect_shape(e.net, "block1", (struct byol_shape){2, 32, 4, 4});
    expect_shape(e.net, "flatten6", (struct byol_shape){2, 32, 1, 1});
    const char *name;
    BYOL_CHECK_OK(byol_net_child_at(e.net, -3, &name));
    CU_ASSERT_STRING_EQUAL(name, "avgpool");

    byol_test_detinit_net(e.net, "");
    float *x = fix("ly.x", 2 * 3 * 16 * 16), *dy = fix("ly.dy", 20);
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 1, NULL));
    check_layer(e.net, "avgpool", 0, "ly.avgpool", 2 * 32);
    check_layer(e.net, "fc", 0, "ly.fc", 20);
    BYOL_CHECK_OK(byol_net_backward(e.net, e.output, dy));
    check_layer(e.net, "input", 1, "ly.grad.x", 2 * 3 * 16 * 16);
    free(x);
    free(dy);
    enc_free(&e);
}

/* A layer list with `entry` as its line 3 after a valid first entry. */
static void expect_layers_error(const char *entry, byol_status want, const char *msg1,
                                const char *msg2)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model = { encoder = { name = \"layers\"; layers = (\n"
             "  { type = \"conv\"; name = \"c\"; out = 4; kernel = 3; pad = 1; },\n"
             "  %s\n"
             "); }; };\n",
             entry);
    expect_build_error(text, (struct byol_shape){1, 3, 8, 8}, want, msg1, msg2);
}

static void test_layers_errors(void)
{
    expect_layers_error("{ type = \"dense\"; out = 3; }", BYOL_ERR_INVALID,
                        "enc.cfg:3: model.encoder.layers[1]: unknown layer type 'dense'",
                        "conv, bn, relu, maxpool, avgpool, flatten, linear, residual");
    expect_layers_error("{ type = \"linear\"; name = \"head\"; }", BYOL_ERR_INVALID,
                        "enc.cfg:3: model.encoder.layers[1]: missing 'out'", NULL);
    expect_layers_error("{ type = \"conv\"; out = 4; kernel = 0; }", BYOL_ERR_INVALID,
                        "enc.cfg:3: model.encoder.layers[1]: bad kernel 0", NULL);
    expect_layers_error("{ name = \"x\"; out = 4; }", BYOL_ERR_INVALID,
                        "enc.cfg:3: model.encoder.layers[1]: missing 'type'", NULL);
    expect_layers_error("{ type = \"relu\"; inplace = true; }", BYOL_ERR_INVALID,
                        "enc.cfg:3: model.encoder.layers[1].inplace: unknown setting", NULL);
    /* (libconfig places a scalar on the line where its list goes on, so no line here.) */
    expect_layers_error("\"relu\"", BYOL_ERR_INVALID,
                        "enc.cfg:", "model.encoder.layers[1]: expected a group, got a string");
    /* A kernel larger than the 8x8 input: a shape error, still naming the entry. */
    struct enc e;
    CU_ASSERT_EQUAL(enc_try("model = { encoder = { name = \"layers\"; layers = (\n"
                            "  { type = \"maxpool\"; kernel = 11; } ); }; };",
                            (struct byol_shape){1, 3, 8, 8}, 0, &e),
                    BYOL_ERR_SHAPE);
    BYOL_ASSERT_MSG_HAS("enc.cfg:2: model.encoder.layers[0]: bad kernel 11");
    enc_free(&e);
    CU_ASSERT_EQUAL(enc_try("model = { encoder = { name = \"layers\"; layers = (\n"
                            "  { type = \"relu\"; name = \"c\"; } ); }; };",
                            (struct byol_shape){1, 3, 8, 8}, 0, &e),
                    BYOL_OK);
    enc_free(&e);
    /* Duplicates: an entry's own name, and a name a residual block made. */
    expect_layers_error("{ type = \"bn\"; name = \"c\"; }", BYOL_ERR_DUPLICATE,
                        "enc.cfg:3: model.encoder.layers[1]: duplicate name 'c'", NULL);
    CU_ASSERT_EQUAL(enc_try("model = { encoder = { name = \"layers\"; layers = (\n"
                            "  { type = \"residual\"; name = \"b\"; out = 4; },\n"
                            "  { type = \"relu\"; name = \"b.conv1\"; } ); }; };",
                            (struct byol_shape){1, 3, 8, 8}, 0, &e),
                    BYOL_ERR_DUPLICATE);
    BYOL_ASSERT_MSG_HAS("enc.cfg:3: model.encoder.layers[1]: duplicate name 'b.conv1'");
    enc_free(&e);
    expect_build_error("model = { encoder = {\n name = \"layers\"; }; };",
                       (struct byol_shape){1, 3, 8, 8}, BYOL_ERR_INVALID,
                       "enc.cfg:1: model.encoder: encoder 'layers' needs a list", NULL);
    expect_build_error("model = { encoder = { name = \"layers\";\n layers = (); }; };",
                       (struct byol_shape){1, 3, 8, 8}, BYOL_ERR_INVALID,
                       "enc.cfg:2: model.encoder.layers: expected a non-empty list", NULL);
}

/* ---- A user's encoder .so. ------------------------------------------------------------ */

static void test_user_encoder(void)
{
    struct enc e;
    enc_build("model = { encoder = { name = \"" BYOL_TEST_BAD_PLUGIN_DIR
              "/byol-encoder-tiny.so\"; width = 2; }; };",
              (struct byol_shape){2, 3, 4, 4}, 1, &e);
    CU_ASSERT_STRING_EQUAL(e.output, "pool");
    expect_shape(e.net, "features", (struct byol_shape){2, 2, 1, 1});
    const char *name;
    BYOL_CHECK_OK(byol_net_child_at(e.net, -1, &name));
    CU_ASSERT_STRING_EQUAL(name, "pool");
    CU_ASSERT_EQUAL(byol_net_param_count(e.net), 2);
    /* Ones in, weights 1/27, bias 0.5: a 3x3 window over 4x4 with zero padding covers 4, 6 or
     * 9 pixels (corners, edges, inside), 100 of 16*9 in all, times 3 channels. */
    float x[2 * 3 * 16], y[4], want = 100.0f / 16.0f * 3.0f / 27.0f + 0.5f;
    for (int i = 0; i < 96; i++)
        x[i] = 1.0f;
    BYOL_CHECK_OK(byol_net_set_input(e.net, "input", x));
    BYOL_CHECK_OK(byol_net_forward(e.net, 1, e.output));
    BYOL_CHECK_OK(byol_net_read_output(e.net, "features", y));
    float ref[4] = {want, want, want, want};
    CU_ASSERT(byol_test_close("tiny encoder", y, ref, 4, 1e-6, 0));
    enc_free(&e);
    /* The plugin's own settings check comes through. */
    expect_build_error("model = { encoder = { name = \"" BYOL_TEST_BAD_PLUGIN_DIR
                       "/byol-encoder-tiny.so\"; depth = 2; }; };",
                       (struct byol_shape){2, 3, 4, 4}, BYOL_ERR_INVALID,
                       "model.encoder.depth: unknown setting", NULL);
}

/* ---- byol_net_load_weights. ------------------------------------------------------------ */

/* Write every parameter of `net` as prefix + name (F32), every num_batches_tracked as I64
 * `count`, skipping names that contain `skip`. */
static void save_net(struct byol_net *net, const char *path, const char *prefix, int64_t count,
                     const char *skip)
{
    struct byol_st_writer *w = NULL;
    char full[256];
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        int64_t dims[4];
        for (int k = 0; k < p->ndim; k++)
            dims[k] = p->dims[k];
        if (skip && strstr(p->name, skip))
            continue;
        snprintf(full, sizeof full, "%s%s", prefix, p->name);
        BYOL_CHECK_OK(byol_st_writer_add(w, full, BYOL_ST_F32, p->ndim, dims, p->data));
    }
    for (size_t i = 0; i < byol_net_layer_count(net); i++) {
        const char *layer = byol_net_layer_name(net, i);
        if (!byol_net_bn_batches_tracked(net, layer))
            continue;
        snprintf(full, sizeof full, "%s%s.num_batches_tracked", prefix, layer);
        BYOL_CHECK_OK(byol_st_writer_add(w, full, BYOL_ST_I64, 0, NULL, &count));
    }
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    byol_st_writer_free(w);
}

static int same_params(struct byol_net *a, struct byol_net *b)
{
    return byol_net_num_params(a) == byol_net_num_params(b) &&
           memcmp(byol_net_params(a), byol_net_params(b), byol_net_num_params(a) * sizeof(float)) ==
               0 &&
           memcmp(byol_net_buffers(a), byol_net_buffers(b),
                  byol_net_num_buffers(a) * sizeof(float)) == 0;
}

/* A small torchvision-named network for the weight tests: conv1, bn1, a residual block
 * "layer1.0" with a downsample shortcut, fc. Quick enough for valgrind, unlike a ResNet. */
static void lw_build(int classes, struct enc *e)
{
    char text[512];
    snprintf(
        text, sizeof text,
        "model = { encoder = { name = \"layers\"; layers = (\n"
        "  { type = \"conv\"; name = \"conv1\"; out = 16; kernel = 3; pad = 1; bias = false; },\n"
        "  { type = \"bn\"; name = \"bn1\"; }, { type = \"relu\"; },\n"
        "  { type = \"residual\"; name = \"layer1.0\"; out = 64; stride = 2; },\n"
        "  { type = \"avgpool\"; name = \"avgpool\"; }, { type = \"flatten\"; },\n"
        "  { type = \"linear\"; name = \"fc\"; out = %d; } ); }; };\n",
        classes);
    enc_build(text, (struct byol_shape){2, 1, 8, 8}, 1, e);
}

static void test_load_weights(void)
{
    const char *dir = byol_test_tmpdir("encoder");
    const char *path = byol_test_path(dir, "weights.safetensors");
    struct enc src, dst;
    lw_build(10, &src);
    CU_ASSERT_EQUAL(byol_net_param_count(src.net), 22);
    byol_test_detinit_net(src.net, "");
    save_net(src.net, path, "enc.", 7, NULL);
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(path, &f));

    /* A good load round-trips, counters included. */
    lw_build(10, &dst);
    CU_ASSERT(!same_params(src.net, dst.net));
    BYOL_CHECK_OK(byol_net_load_weights(dst.net, f, "enc.", 1));
    CU_ASSERT(same_params(src.net, dst.net));
    CU_ASSERT_EQUAL(*byol_net_bn_batches_tracked(dst.net, "layer1.0.downsample.1"), 7);
    /* Without the prefix nothing matches: strict fails listing the first few, lax loads none. */
    enc_free(&dst);
    lw_build(10, &dst);
    CU_ASSERT_EQUAL(byol_net_load_weights(dst.net, f, "", 1), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS(
        "22 of 22 tensors missing: conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, ...");
    BYOL_CHECK_OK(byol_net_load_weights(dst.net, f, "", 0));
    CU_ASSERT(!same_params(src.net, dst.net));
    enc_free(&dst);

    /* A wrong shape names the tensor and both shapes, and writes nothing. */
    lw_build(1000, &dst);
    float first = byol_net_params(dst.net)[0];
    CU_ASSERT_EQUAL(byol_net_load_weights(dst.net, f, "enc.", 0), BYOL_ERR_SHAPE);
    BYOL_ASSERT_MSG_HAS("enc.fc.weight: file has [10, 64], network has [1000, 64]");
    CU_ASSERT_EQUAL(byol_net_params(dst.net)[0], first);
    enc_free(&dst);
    byol_st_free(f);

    /* Missing tensors: strict fails, lax loads the rest. */
    save_net(src.net, path, "", 0, "layer1.0.bn2.");
    BYOL_CHECK_OK(byol_st_read(path, &f));
    lw_build(10, &dst);
    CU_ASSERT_EQUAL(byol_net_load_weights(dst.net, f, NULL, 1), BYOL_ERR_NOT_FOUND);
    BYOL_ASSERT_MSG_HAS("4 of 22 tensors missing: layer1.0.bn2.weight, layer1.0.bn2.bias, "
                   "layer1.0.bn2.running_mean, layer1.0.bn2.running_var");
    BYOL_CHECK_OK(byol_net_load_weights(dst.net, f, NULL, 0));
    const struct byol_param *a = byol_net_find_param(dst.net, "layer1.0.conv2.weight");
    const struct byol_param *b = byol_net_find_param(src.net, "layer1.0.conv2.weight");
    CU_ASSERT_EQUAL(memcmp(a->data, b->data, a->numel * sizeof(float)), 0);
    a = byol_net_find_param(dst.net, "layer1.0.bn2.bias");
    b = byol_net_find_param(src.net, "layer1.0.bn2.bias");
    CU_ASSERT_NOT_EQUAL(memcmp(a->data, b->data, a->numel * sizeof(float)), 0);
    enc_free(&dst);
    byol_st_free(f);

    /* Another dtype fails naming the tensor; so does a counter that is no I64 scalar. */
    struct byol_st_writer *w = NULL;
    int64_t dims[1] = {16};
    double d64[16] = {0};
    BYOL_CHECK_OK(byol_st_writer_create(&w));
    BYOL_CHECK_OK(byol_st_writer_add(w, "bn1.weight", BYOL_ST_F64, 1, dims, d64));
    BYOL_CHECK_OK(byol_st_writer_add(w, "bn1.num_batches_tracked", BYOL_ST_F64, 1, dims, d64));
    BYOL_CHECK_OK(byol_st_writer_save(w, path));
    byol_st_writer_free(w);
    BYOL_CHECK_OK(byol_st_read(path, &f));
    CU_ASSERT_EQUAL(byol_net_load_weights(src.net, f, "", 0), BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("bn1.weight: file has dtype F64, network wants F32");
    byol_st_free(f);
    enc_free(&src);
    byol_test_remove_tree(dir);
}

int main(int argc, char **argv)
{
    static const struct byol_test_case cases[] = {
        {"resnet state_dict manifests", test_resnet_manifests, 1},
        {"resnet18 cifar parity (training)", test_resnet18_parity, 1},
        {"resnet50 parity (inference)", test_resnet50_parity, 1},
        {"hidden layer by index", test_hidden_by_index, 0},
        {"hidden layer by name", test_hidden_by_name, 0},
        {"resnet init", test_resnet_init, 1},
        {"resnet settings", test_resnet_settings, 0},
        {"layers encoder", test_layers_encoder, 0},
        {"layers encoder errors", test_layers_errors, 0},
        {"user encoder .so", test_user_encoder, 0},
        {"load weights", test_load_weights, 0},
        {NULL, NULL, 0},
    };
    g_reg = byol_test_registry();
    g_be = byol_test_backend(g_reg, "blas", 2);
    if (byol_st_read(byol_test_fixture("encoders.safetensors"), &g_fix) != BYOL_OK) {
        fprintf(stderr, "fixture: %s\n", byol_last_error());
        return 2;
    }
    int rc = byol_test_main(argc, argv, "encoder", cases);
    byol_st_free(g_fix);
    byol_backend_free(g_be);
    byol_registry_free(g_reg);
    return rc;
}
