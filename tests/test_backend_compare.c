/* Every op of the onednn backend against the blas reference on random inputs of ResNet-like
 * shapes (ggml test-backend-ops style: normalised squared error per output), with the
 * activations and gradients both in the layouts the plans pick and in plain NCHW.
 * `test_backend_compare --bench` instead times ResNet-18's convolutions on both backends. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isa_level.h"
#include "testutil.h"

/* Bound on sum((a-b)^2) / sum(b^2) per compared array. Both backends compute in float32 and
 * differ only in summation order; the longest sums here (a 3x3 conv over 128 channels, a
 * weight gradient over N*OH*OW = 512 pixels, batch statistics over 512 values) carry relative
 * errors of about sqrt(K) * 2^-24 < 1e-5 per element, an NMSE below 1e-10. A wrong index,
 * a layout mix-up or a missed accumulation gives an NMSE of 1e-3 or more. */
#define NMSE_MAX 1e-9
/* precision = "bf16" rounds conv inputs and weights to 8 significant bits (relative error up to
 * 2^-9 each), so products carry ~3e-3 relative error and a K-term sum of them an NMSE near
 * 1e-5; an index or layout error still gives 1e-3 or more. */
#define NMSE_MAX_BF16 1e-4

static double nmse_max = NMSE_MAX;
/* The onednn backend stores spatial activations in bf16: the cases' x values are made bf16
 * first, so that both backends see the same inputs (a max pool's winner, a relu's sign). */
static int inputs_bf16;

static struct byol_registry *reg;
static struct byol_backend *be_ref, *be_dnn;
/* onednn outputs that were not plain NCHW: the "plan" runs must exercise blocked layouts. */
static int blocked_seen;

/* What one backend produced for a case. */
struct outputs {
    float *y, *dx[2], *dx_acc[2], *dweight, *dbias, *running_mean, *running_var;
};

/* The inputs of a case, shared by both backends. */
struct inputs {
    struct byol_op_desc desc;
    int training, plain; /* plain: tensors allocated without a producer (NCHW) */
    size_t nx, ny, nw, nb, nc;
    float *x[2], *dy, *pre, *weight, *bias, *running_mean, *running_var;
};

static float *randn(size_t n, uint64_t seed, float scale, float shift)
{
    struct byol_rng r;
    float *p = malloc(n * sizeof *p + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    byol_rng_init(&r, seed, 7);
    for (size_t i = 0; i < n; i++)
        p[i] = shift + scale * (float)byol_rng_normal(&r);
    return p;
}

static void param_counts(struct inputs *in)
{
    const struct byol_op_desc *d = &in->desc;
    in->nw = in->nb = in->nc = 0;
    if (d->kind == BYOL_OP_CONV2D) {
        in->nw = (size_t)d->u.conv.out_channels * d->in[0].c * d->u.conv.kernel_h *
                 d->u.conv.kernel_w;
        in->nb = d->u.conv.has_bias ? (size_t)d->u.conv.out_channels : 0;
    } else if (d->kind == BYOL_OP_LINEAR) {
        in->nw = (size_t)d->u.linear.out_features * d->in[0].c;
        in->nb = d->u.linear.has_bias ? (size_t)d->u.linear.out_features : 0;
    } else if (d->kind == BYOL_OP_BATCHNORM) {
        in->nw = in->nb = d->u.bn.affine ? (size_t)d->in[0].c : 0;
        in->nc = (size_t)d->in[0].c;
    }
}

/* Round to the nearest bfloat16, ties to even. */
static void round_bf16(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &p[i], sizeof u);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&p[i], &u, sizeof u);
    }
}

static void make_inputs(struct inputs *in, uint64_t seed)
{
    BYOL_CHECK_OK(byol_op_desc_infer(&in->desc));
    param_counts(in);
    in->nx = byol_shape_numel(in->desc.in[0]);
    in->ny = byol_shape_numel(in->desc.out);
    in->x[0] = randn(in->nx, seed, 1.0f, 0.3f); /* a mean, as batch norm inputs have */
    in->x[1] = randn(in->nx, seed + 1, 1.0f, 0.0f);
    if (inputs_bf16) {
        round_bf16(in->x[0], in->nx);
        round_bf16(in->x[1], in->nx);
    }
    in->dy = randn(in->ny, seed + 2, 1.0f, 0.0f);
    in->pre = randn(in->nx, seed + 3, 1.0f, 0.0f);
    in->weight = in->nw ? randn(in->nw, seed + 4, 0.1f, in->nc ? 1.0f : 0.0f) : NULL;
    in->bias = in->nb ? randn(in->nb, seed + 5, 0.1f, 0.0f) : NULL;
    in->running_mean = in->nc ? randn(in->nc, seed + 6, 0.1f, 0.0f) : NULL;
    in->running_var = in->nc ? randn(in->nc, seed + 7, 0.1f, 1.0f) : NULL;
}

static void free_inputs(struct inputs *in)
{
    float *all[] = {in->x[0], in->x[1], in->dy, in->pre, in->weight, in->bias,
                    in->running_mean, in->running_var};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static float *copy_or_zero(const float *src, size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    if (src)
        memcpy(p, src, n * sizeof *p);
    return p;
}

static float *read_back(struct byol_backend *be, const struct byol_tensor *t)
{
    float *p = malloc(byol_shape_numel(t->shape) * sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    BYOL_CHECK_OK(byol_backend_tensor_read(be, t, p));
    return p;
}

/* The tensors of one backend's run. */
struct tensors {
    struct byol_tensor x[2], dx[2], y, dy;
};

static void alloc_tensors(struct byol_backend *be, const struct inputs *in, void *plan,
                          struct tensors *t, int inputs)
{
    /* "Plan" layout: every tensor as a network would allocate it, from a producer of its
     * shape; here the plan itself stands in for the layer upstream. */
    const void *producer = in->plain ? NULL : plan;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < inputs; i++) {
        BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &t->x[i], in->desc.in[i], producer));
        BYOL_CHECK_OK(byol_backend_tensor_write(be, &t->x[i], in->x[i]));
        BYOL_CHECK_OK(byol_backend_grad_alloc(be, &t->dx[i], in->desc.in[i], producer));
    }
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &t->y, in->desc.out, plan));
    blocked_seen += be == be_dnn && t->y.layout != NULL;
    BYOL_CHECK_OK(byol_backend_grad_alloc(be, &t->dy, in->desc.out, in->plain ? NULL : plan));
    BYOL_CHECK_OK(byol_backend_tensor_write(be, &t->dy, in->dy));
}

static void free_tensors(struct byol_backend *be, struct tensors *t)
{
    for (int i = 0; i < 2; i++) {
        byol_backend_tensor_free(be, &t->x[i]);
        byol_backend_tensor_free(be, &t->dx[i]);
    }
    byol_backend_tensor_free(be, &t->y);
    byol_backend_tensor_free(be, &t->dy);
}

/* Forward, a backward that overwrites dx, and one that adds into a pre-filled dx (the
 * parameter gradients accumulate over both). */
static void run_backend(struct byol_backend *be, const struct inputs *in, struct outputs *out)
{
    int inputs = in->desc.kind == BYOL_OP_ADD ? 2 : 1;
    void *plan = NULL;
    size_t saved_bytes = 0;
    BYOL_CHECK_OK(byol_backend_plan_create(be, &in->desc, &plan, &saved_bytes));
    if (be != be_ref) { /* the kernels it runs, and never a reference one */
        char what[512];
        byol_backend_plan_describe(be, plan, what, sizeof what);
        printf("  onednn runs: %s\n", what);
        CU_ASSERT(what[0] != '\0' && strstr(what, "=ref") == NULL);
    }
    void *saved = calloc(1, saved_bytes + 64);
    struct tensors t;
    alloc_tensors(be, in, plan, &t, inputs);
    memset(out, 0, sizeof *out);
    out->dweight = copy_or_zero(NULL, in->nw);
    out->dbias = copy_or_zero(NULL, in->nb);
    out->running_mean = copy_or_zero(in->running_mean, in->nc);
    out->running_var = copy_or_zero(in->running_var, in->nc);
    struct byol_op_args a = {
        .x = {&t.x[0], inputs == 2 ? &t.x[1] : NULL}, .y = &t.y, .weight = in->weight,
        .bias = in->bias, .running_mean = in->nc ? out->running_mean : NULL,
        .running_var = in->nc ? out->running_var : NULL, .saved = saved, .dy = &t.dy,
        .dx = {&t.dx[0], inputs == 2 ? &t.dx[1] : NULL},
        .dweight = in->nw ? out->dweight : NULL, .dbias = in->nb ? out->dbias : NULL};
    BYOL_CHECK_OK(byol_backend_forward(be, plan, in->training, &a));
    out->y = read_back(be, &t.y);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < inputs; i++) {
            a.accumulate[i] = pass;
            if (pass)
                BYOL_CHECK_OK(byol_backend_tensor_write(be, &t.dx[i], in->pre));
        }
        BYOL_CHECK_OK(byol_backend_backward(be, plan, &a));
        for (int i = 0; i < inputs; i++)
            (pass ? out->dx_acc : out->dx)[i] = read_back(be, &t.dx[i]);
    }
    free_tensors(be, &t);
    byol_backend_plan_destroy(be, plan);
    free(saved);
}

static void free_outputs(struct outputs *o)
{
    float *all[] = {o->y,       o->dx[0], o->dx[1],           o->dx_acc[0],
                    o->dx_acc[1], o->dweight, o->dbias, o->running_mean, o->running_var};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* ggml's normalised mean squared error, printed with the max abs diff. */
static int nmse_ok(const char *what, const float *got, const float *ref, size_t n)
{
    double num = 0, den = 0, maxd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        maxd = fabs(d) > maxd || isnan(d) ? (isnan(d) ? INFINITY : fabs(d)) : maxd;
    }
    double e = den > 0 ? num / den : num;
    int ok = e <= nmse_max && isfinite(maxd);
    printf("  %-40s nmse %.3g, max abs diff %.3g%s\n", what, e, maxd, ok ? "" : "  <-- FAIL");
    return ok;
}

static void compare(const struct inputs *in, const struct outputs *r, const struct outputs *o)
{
    int inputs = in->desc.kind == BYOL_OP_ADD ? 2 : 1;
    CU_ASSERT(nmse_ok("y", o->y, r->y, in->ny));
    for (int i = 0; i < inputs; i++) {
        CU_ASSERT(nmse_ok(i ? "dx1" : "dx", o->dx[i], r->dx[i], in->nx));
        CU_ASSERT(nmse_ok(i ? "dx1 (accumulated)" : "dx (accumulated)", o->dx_acc[i],
                          r->dx_acc[i], in->nx));
    }
    if (in->nw)
        CU_ASSERT(nmse_ok("dweight (two passes)", o->dweight, r->dweight, in->nw));
    if (in->nb)
        CU_ASSERT(nmse_ok("dbias (two passes)", o->dbias, r->dbias, in->nb));
    if (in->nc) {
        CU_ASSERT(nmse_ok("running_mean", o->running_mean, r->running_mean, in->nc));
        CU_ASSERT(nmse_ok("running_var", o->running_var, r->running_var, in->nc));
    }
}

static void run_case(const char *name, struct byol_op_desc desc, int training)
{
    for (int plain = 0; plain < 2; plain++) {
        struct inputs in = {.desc = desc, .training = training, .plain = plain};
        struct outputs ref, got;
        printf("\n  case %s, %s layouts\n", name, plain ? "plain" : "plan");
        make_inputs(&in, 1000 + (uint64_t)desc.kind * 10);
        run_backend(be_ref, &in, &ref);
        run_backend(be_dnn, &in, &got);
        compare(&in, &ref, &got);
        free_outputs(&ref);
        free_outputs(&got);
        free_inputs(&in);
    }
}

static struct byol_op_desc conv(struct byol_shape in, int out, int k, int stride, int pad,
                                int bias)
{
    struct byol_op_desc d = {.kind = BYOL_OP_CONV2D, .in = {in}};
    d.u.conv.out_channels = out;
    d.u.conv.kernel_h = d.u.conv.kernel_w = k;
    d.u.conv.stride_h = d.u.conv.stride_w = stride;
    d.u.conv.pad_h = d.u.conv.pad_w = pad;
    d.u.conv.has_bias = bias;
    return d;
}

static struct byol_op_desc simple(enum byol_op_kind kind, struct byol_shape in)
{
    struct byol_op_desc d = {.kind = kind, .in = {in, in}};
    return d;
}

static void test_conv(void)
{
    struct byol_shape act = {2, 64, 16, 16};
    run_case("conv 64->64 3x3/1 (layer1)", conv(act, 64, 3, 1, 1, 0), 1);
    run_case("conv 64->128 3x3/2 (layer2.0.conv1)", conv(act, 128, 3, 2, 1, 0), 1);
    run_case("conv 64->128 1x1/2 (downsample)", conv(act, 128, 1, 2, 0, 0), 1);
    run_case("conv 3->64 7x7/2 (stem)", conv((struct byol_shape){2, 3, 32, 32}, 64, 7, 2, 3, 0),
             1);
    run_case("conv 32->48 3x3/1 with bias", conv((struct byol_shape){2, 32, 8, 8}, 48, 3, 1, 1, 1),
             1);
    run_case("conv 24->40 3x3/1 (channels not a block multiple)",
             conv((struct byol_shape){2, 24, 6, 6}, 40, 3, 1, 1, 0), 1);
    /* Outputs of <= 4 pixels: onednn's backward weights runs one GEMM per kernel tap. */
    run_case("conv 64->64 3x3/1 at 2x2 (layer4 at 64 px)",
             conv((struct byol_shape){4, 64, 2, 2}, 64, 3, 1, 1, 0), 1);
    run_case("conv 32->64 3x3/2 4x4 -> 2x2 (layer4.0.conv1)",
             conv((struct byol_shape){4, 32, 4, 4}, 64, 3, 2, 1, 0), 1);
    run_case("conv 32->32 3x3/1 at 1x1 (layer4 at 32 px)",
             conv((struct byol_shape){8, 32, 1, 1}, 32, 3, 1, 1, 0), 1);
    run_case("conv 24->40 3x3/1 at 2x2 (plain layout)",
             conv((struct byol_shape){4, 24, 2, 2}, 40, 3, 1, 1, 0), 1);
    /* One input channel: on AVX2 oneDNN's backward weights for plain x and blocked dy is a
     * reference kernel, so the plan asks for other layouts and reorders into them. */
    run_case("conv 1->32 3x3/1 (default.cfg's conv1)",
             conv((struct byol_shape){4, 1, 28, 28}, 32, 3, 1, 1, 0), 1);
    run_case("conv 1->64 7x7/2 (a 1-channel ImageNet stem)",
             conv((struct byol_shape){4, 1, 28, 28}, 64, 7, 2, 3, 0), 1);
    printf("\n  onednn outputs in a blocked layout: %d\n", blocked_seen);
    CU_ASSERT(blocked_seen >= 7); /* the seven convs with 16 | output channels */
}

static void test_batchnorm(void)
{
    struct byol_op_desc d = simple(BYOL_OP_BATCHNORM, (struct byol_shape){2, 64, 16, 16});
    d.u.bn.eps = 1e-5f;
    d.u.bn.momentum = 0.1f;
    d.u.bn.affine = 1;
    run_case("batchnorm2d 64 training", d, 1);
    run_case("batchnorm2d 64 inference", d, 0);
    d.u.bn.fuse_relu = 1; /* both backends declare BYOL_BACKEND_FUSES_BN_RELU */
    run_case("batchnorm2d 64 + fused relu, training", d, 1);
    run_case("batchnorm2d 64 + fused relu, inference", d, 0);
    d.u.bn.fuse_relu = 0;
    d.in[0] = d.in[1] = (struct byol_shape){8, 256, 1, 1};
    run_case("batchnorm1d 256 training (projector)", d, 1);
    d.u.bn.affine = 0;
    run_case("batchnorm1d 256 without affine", d, 1);
}

static void test_pool_and_eltwise(void)
{
    struct byol_shape act = {2, 64, 16, 16};
    struct byol_op_desc d = simple(BYOL_OP_MAXPOOL, act);
    d.u.pool.kernel = 3;
    d.u.pool.stride = 2;
    d.u.pool.pad = 1;
    run_case("maxpool 3x3/2 pad 1", d, 1);
    run_case("global avgpool 512x4x4", simple(BYOL_OP_AVGPOOL, (struct byol_shape){2, 512, 4, 4}),
             1);
    run_case("relu", simple(BYOL_OP_RELU, act), 1);
    run_case("add", simple(BYOL_OP_ADD, act), 1);
    run_case("flatten 64x2x2", simple(BYOL_OP_FLATTEN, (struct byol_shape){2, 64, 2, 2}), 1);
}

static void test_linear_softmax(void)
{
    struct byol_op_desc d = simple(BYOL_OP_LINEAR, (struct byol_shape){8, 512, 1, 1});
    d.u.linear.out_features = 256;
    d.u.linear.has_bias = 1;
    run_case("linear 512->256 with bias", d, 1);
    d = simple(BYOL_OP_SOFTMAX, (struct byol_shape){8, 256, 1, 1});
    d.u.softmax.group = 16;
    d.u.softmax.temperature = 0.5f;
    run_case("softmax groups of 16, T 0.5", d, 1);
}

/* ---- --bench: ResNet-18 convolutions at 64 px, batch 64 ---------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Milliseconds per call of forward, backward-data and backward-weights (best of `reps`). */
static void bench_conv(struct byol_backend *be, struct byol_op_desc d, int reps, double ms[3])
{
    struct inputs in = {.desc = d, .training = 1};
    make_inputs(&in, 5);
    void *plan = NULL;
    size_t saved_bytes = 0;
    BYOL_CHECK_OK(byol_backend_plan_create(be, &in.desc, &plan, &saved_bytes));
    struct tensors t;
    alloc_tensors(be, &in, plan, &t, 1);
    float *dw = calloc(in.nw, sizeof *dw);
    struct byol_op_args a = {.x = {&t.x[0]}, .y = &t.y, .weight = in.weight, .dy = &t.dy};
    for (int k = 0; k < 3; k++) {
        a.dx[0] = k == 1 ? &t.dx[0] : NULL;
        a.dweight = k == 2 ? dw : NULL;
        ms[k] = INFINITY;
        for (int r = 0; r <= reps; r++) { /* the first run warms up */
            double t0 = now();
            BYOL_CHECK_OK(k ? byol_backend_backward(be, plan, &a)
                            : byol_backend_forward(be, plan, 1, &a));
            double dt = (now() - t0) * 1e3;
            if (r && dt < ms[k])
                ms[k] = dt;
        }
    }
    free(dw);
    free_tensors(be, &t);
    byol_backend_plan_destroy(be, plan);
    free_inputs(&in);
}

static int bench_reps = 5;

/* A CUnit test so that the assertion macros work; --bench runs only this one. */
static void test_bench(void)
{
    int reps = bench_reps;
    static const struct {
        const char *name;
        int c, hw, o, k, s, p;
    } convs[] = {
        {"conv1 3->64 7x7/2", 3, 64, 64, 7, 2, 3},      {"layer1 64->64 3x3", 64, 16, 64, 3, 1, 1},
        {"layer2.0 64->128 3x3/2", 64, 16, 128, 3, 2, 1}, {"layer2 128->128 3x3", 128, 8, 128, 3, 1, 1},
        {"layer2 down 64->128 1x1/2", 64, 16, 128, 1, 2, 0}, {"layer3 256->256 3x3", 256, 4, 256, 3, 1, 1},
        {"layer4 512->512 3x3", 512, 2, 512, 3, 1, 1},
    };
    printf("ms per call (best of %d), batch 64, 64 px ResNet-18 shapes; fwd / bwd-data / bwd-weights\n",
           reps);
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        struct byol_op_desc d = conv((struct byol_shape){64, convs[i].c, convs[i].hw, convs[i].hw},
                                     convs[i].o, convs[i].k, convs[i].s, convs[i].p, 0);
        double b[3], o[3];
        bench_conv(be_ref, d, reps, b);
        bench_conv(be_dnn, d, reps, o);
        printf("%-28s blas %7.2f %7.2f %7.2f | onednn %7.2f %7.2f %7.2f | speed-up %.2f %.2f %.2f\n",
               convs[i].name, b[0], b[1], b[2], o[0], o[1], o[2], b[0] / o[0], b[1] / o[1],
               b[2] / o[2]);
    }
}

/* bf16 storage (plugins/backend-onednn/storage.c): a conv's spatial output is stored in two
 * bytes per value, its gradient in four, and what is written reads back rounded to nearest
 * even, as oneDNN's own reorders round. */
static void check_bf16_storage(struct byol_backend *be)
{
    struct byol_op_desc d = conv((struct byol_shape){2, 16, 4, 4}, 16, 3, 1, 1, 0);
    void *plan = NULL;
    size_t saved = 0;
    BYOL_CHECK_OK(byol_op_desc_infer(&d));
    BYOL_CHECK_OK(byol_backend_plan_create(be, &d, &plan, &saved));
    struct byol_tensor y, dy;
    size_t n = byol_shape_numel(d.out);
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, &y, d.out, plan));
    BYOL_CHECK_OK(byol_backend_grad_alloc(be, &dy, d.out, plan));
    CU_ASSERT_EQUAL(y.bytes, n * 2);
    CU_ASSERT_EQUAL(dy.bytes, n * 4);
    float *v = malloc(n * sizeof *v), *back = malloc(n * sizeof *back);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    /* 1 + k/512: halfway cases between bf16 neighbours (odd k) go to the even one. */
    for (size_t i = 0; i < n; i++)
        v[i] = (i % 2 ? -1.0f : 1.0f) * (1.0f + (float)(i % 8) / 512.0f) * (float)(1 + i / 8);
    BYOL_CHECK_OK(byol_backend_tensor_write(be, &y, v));
    BYOL_CHECK_OK(byol_backend_tensor_read(be, &y, back));
    int exact = 1;
    float *want = malloc(n * sizeof *want);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    memcpy(want, v, n * sizeof *want);
    round_bf16(want, n);
    for (size_t i = 0; i < n; i++)
        exact &= back[i] == want[i];
    free(want);
    CU_ASSERT(exact);
    free(v);
    free(back);
    byol_backend_tensor_free(be, &y);
    byol_backend_tensor_free(be, &dy);
    byol_backend_plan_destroy(be, plan);
}

/* The ResNet convolutions again with backend.precision = "bf16" (skipped on CPUs without
 * AVX512-BF16, where creating the backend fails). */
static void test_conv_bf16(void) /* and every other op */
{
    struct byol_config *cfg = NULL;
    struct byol_backend *bf16 = NULL, *keep = be_dnn;
    BYOL_CHECK_OK(byol_config_parse("backend = { threads = 2; precision = \"bf16\"; };",
                                    "bf16.cfg", &cfg));
    const struct byol_settings *s = byol_settings_child(byol_config_root(cfg), "backend");
    if (byol_backend_create(reg, "onednn", s, &bf16) != BYOL_OK) {
        printf("\n  no bf16 here: %s\n", byol_last_error());
        CU_ASSERT(strstr(byol_last_error(), "AVX512-BF16") != NULL);
        byol_config_free(cfg);
        return;
    }
    be_dnn = bf16;
    nmse_max = NMSE_MAX_BF16;
    struct byol_shape act = {2, 64, 16, 16};
    run_case("bf16 conv 64->64 3x3/1 (layer1)", conv(act, 64, 3, 1, 1, 0), 1);
    run_case("bf16 conv 64->128 3x3/2 (layer2.0.conv1)", conv(act, 128, 3, 2, 1, 0), 1);
    run_case("bf16 conv 64->128 1x1/2 (downsample)", conv(act, 128, 1, 2, 0, 0), 1);
    run_case("bf16 conv 3->64 7x7/2 (stem)",
             conv((struct byol_shape){2, 3, 32, 32}, 64, 7, 2, 3, 0), 1);
    run_case("bf16 conv 32->48 3x3/1 with bias",
             conv((struct byol_shape){2, 32, 8, 8}, 48, 3, 1, 1, 1), 1);
    run_case("bf16 conv 64->64 3x3/1 at 2x2", conv((struct byol_shape){4, 64, 2, 2}, 64, 3, 1, 1, 0),
             1);
    run_case("bf16 conv 1->32 3x3/1", conv((struct byol_shape){4, 1, 28, 28}, 32, 3, 1, 1, 0), 1);
    /* Every other op, with its spatial inputs and outputs stored in bf16. */
    check_bf16_storage(bf16);
    inputs_bf16 = 1;
    test_batchnorm();
    test_pool_and_eltwise();
    test_linear_softmax();
    inputs_bf16 = 0;
    nmse_max = NMSE_MAX;
    be_dnn = keep;
    byol_backend_free(bf16);
    byol_config_free(cfg);
}

int main(int argc, char **argv)
{
    if (byol_test_isa_unavailable())
        return BYOL_TEST_SKIP;
    reg = byol_test_registry();
    be_ref = byol_test_backend(reg, "blas", 2);
    be_dnn = byol_test_backend(reg, "onednn", 2);
    static const struct byol_test_case cases[] = {
        {"conv2d, ResNet shapes", test_conv, 0},
        {"every op in bf16", test_conv_bf16, 0},
        {"batch norm 2d and 1d", test_batchnorm, 0},
        {"pools, relu, add, flatten", test_pool_and_eltwise, 0},
        {"linear and grouped softmax", test_linear_softmax, 0},
        {NULL, NULL, 0},
    };
    static const struct byol_test_case bench[] = {{"conv timings", test_bench, 1},
                                                  {NULL, NULL, 0}};
    int is_bench = argc > 1 && !strcmp(argv[1], "--bench");
    if (is_bench && argc > 2)
        bench_reps = atoi(argv[2]) > 0 ? atoi(argv[2]) : 1;
    int rc = byol_test_main(argc, argv, "onednn vs blas", is_bench ? bench : cases);
    byol_backend_free(be_dnn);
    byol_backend_free(be_ref);
    byol_registry_free(reg);
    return rc;
}
