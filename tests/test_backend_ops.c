/* Op-by-op conformance of a backend against PyTorch: every case in fixtures/ops.safetensors
 * and fixtures/optim.safetensors (see gen_fixtures.py) runs through the public backend
 * wrappers and is compared output by output, gradient by gradient.
 * Usage: test_backend_ops [BACKEND]   (or BYOL_TEST_BACKEND=name; default "blas"). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Tolerances, relative to max|reference| of each compared array (byol_test_close).
 *
 * A float32 sum of K terms in another order than PyTorch's differs by up to ~K * u * sum|terms|
 * (u = 2^-24 = 6e-8), typically ~sqrt(K) * u * sum|terms|. Our largest reductions are the conv
 * weight gradient (K = N*OH*OW = 2*8*8 = 128) and the conv forward (K = C*KH*KW = 5*49 = 245):
 * K * u ~ 1.5e-5, and sum|terms| stays within a few times max|ref| for random data, so 1e-4
 * leaves a margin of a few without hiding a wrong index (which shows as O(1) relative error).
 * Batch norm reduces over N*H*W <= 150 values per channel and then divides by a standard
 * deviation; the same bound applies.
 *
 * relu, max pool, add and flatten compute nothing or select: they are exact up to the order of
 * at most four additions (max-pool windows overlap at stride 2), hence 1e-6. The global
 * average pool sums H*W <= 49 terms: up to 49 * u ~ 3e-6 in the worst case, so its forward
 * gets 1e-5; its backward (dy / HW) is one rounding, 1e-6.
 *
 * The grouped softmax divides, exponentiates and normalises over at most 8 values: a few ulps
 * of each output (expf is within 1 ulp, the sum of <= 8 terms adds ~8u), and its backward
 * subtracts a dot product of as many terms, so 1e-5 relative to the largest value.
 *
 * The optimizer and EMA kernels are a handful of element-wise float operations per value, but
 * the reference rounds in its own order (and the bias corrections in double): a few ulps of
 * the largest value, so 1e-6 relative. */
#define RTOL_GEMM 1e-4
#define RTOL_EXACT 1e-6
#define RTOL_AVGPOOL_FWD 1e-5
#define RTOL_UPDATE 1e-6
#define RTOL_SOFTMAX 1e-5
/* An absolute floor, for arrays whose reference is all zeros (e.g. a relu gradient). */
#define ATOL 1e-7

static const char *backend_name = "blas";
static struct byol_registry *reg;
static struct byol_backend *be;
static struct byol_st_file *ops_fx, *optim_fx;

/* ---- fixture access ------------------------------------------------------------------ */

static const struct byol_st_tensor *fx_tensor(const struct byol_st_file *f, const char *prefix,
                                              const char *what)
{
    char name[256];
    snprintf(name, sizeof name, "%s/%s", prefix, what);
    return byol_st_find(f, name);
}

/* A malloc'd float copy of PREFIX/WHAT (F32 of `numel` values), or NULL when the fixture has
 * no such tensor. A wrong dtype or size is a broken fixture and fails the test. */
static float *fx_floats(const struct byol_st_file *f, const char *prefix, const char *what,
                        size_t numel)
{
    const struct byol_st_tensor *t = fx_tensor(f, prefix, what);
    if (!t)
        return NULL;
    if (t->dtype != BYOL_ST_F32 || t->numel != numel) {
        fprintf(stderr, "\n  fixture %s/%s: want F32 of %zu values, have dtype %d of %zu\n", prefix,
                what, numel, (int)t->dtype, t->numel);
        CU_FAIL("fixture tensor has the wrong dtype or size");
        return NULL;
    }
    float *p = malloc(numel * sizeof *p + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memcpy(p, t->data, t->nbytes); /* the file's data may be unaligned for the type */
    return p;
}

/* Reads an I64 or F64 vector of up to `max` values; returns how many (0 if absent). */
static size_t fx_vector(const struct byol_st_file *f, const char *prefix, const char *what,
                        enum byol_st_dtype dtype, void *out, size_t max)
{
    const struct byol_st_tensor *t = fx_tensor(f, prefix, what);
    if (!t || t->dtype != dtype || t->ndim != 1 || t->numel > max)
        return 0;
    memcpy(out, t->data, t->nbytes);
    return t->numel;
}

static const char *fx_op(const struct byol_st_file *f, const char *prefix)
{
    char key[256];
    snprintf(key, sizeof key, "%s/op", prefix);
    return byol_st_metadata(f, key);
}

/* The case names of a fixture: the prefixes of tensors named PREFIX/<marker>, in file order.
 * Returns a malloc'd array of pointers into the file's names (each cut at the '/'). */
static char **fx_cases(const struct byol_st_file *f, const char *marker, size_t *count)
{
    size_t n = byol_st_count(f), k = 0;
    char **names = calloc(n + 1, sizeof *names);
    CU_ASSERT_PTR_NOT_NULL_FATAL(names);
    for (size_t i = 0; i < n; i++) {
        const char *name = byol_st_at(f, i)->name;
        const char *slash = strrchr(name, '/');
        if (slash && !strcmp(slash + 1, marker) && (size_t)(slash - name) > 0)
            names[k++] = strndup(name, (size_t)(slash - name));
    }
    *count = k;
    return names;
}

static void free_cases(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- one layer case --------------------------------------------------------------------- */

struct layer_case {
    const char *name;
    const char *op;
    int64_t cfg[16];
    size_t ncfg;
    struct byol_op_desc desc;
    int training;  /* the forward's mode (batch norm's cfg; 1 for the others) */
    int inputs;    /* 2 for add */
    double rtol_y; /* tolerance of the forward output */
    double rtol_g; /* tolerance of the gradients */
};

/* Fills the op description from the fixture's cfg vector; 0 on a malformed case. */
static int describe_case(struct layer_case *c)
{
    struct byol_op_desc *d = &c->desc;
    const int64_t *v = c->cfg;
    memset(d, 0, sizeof *d);
    c->training = 1;
    c->inputs = 1;
    c->rtol_y = c->rtol_g = RTOL_EXACT;
    struct byol_shape s = {(int)v[0], (int)v[1], (int)v[2], (int)v[3]};
    if (!strcmp(c->op, "conv2d") && c->ncfg == 12) {
        d->kind = BYOL_OP_CONV2D;
        d->u.conv.out_channels = (int)v[4];
        d->u.conv.kernel_h = (int)v[5];
        d->u.conv.kernel_w = (int)v[6];
        d->u.conv.stride_h = (int)v[7];
        d->u.conv.stride_w = (int)v[8];
        d->u.conv.pad_h = (int)v[9];
        d->u.conv.pad_w = (int)v[10];
        d->u.conv.has_bias = (int)v[11];
        c->rtol_y = c->rtol_g = RTOL_GEMM;
    } else if (!strcmp(c->op, "batchnorm") && c->ncfg == 6) {
        double hp[2];
        if (fx_vector(ops_fx, c->name, "hparams", BYOL_ST_F64, hp, 2) != 2)
            return 0;
        d->kind = BYOL_OP_BATCHNORM;
        d->u.bn.eps = (float)hp[0];
        d->u.bn.momentum = (float)hp[1];
        d->u.bn.affine = (int)v[4];
        c->training = (int)v[5];
        c->rtol_y = c->rtol_g = RTOL_GEMM;
    } else if (!strcmp(c->op, "maxpool") && c->ncfg == 7) {
        d->kind = BYOL_OP_MAXPOOL;
        d->u.pool.kernel = (int)v[4];
        d->u.pool.stride = (int)v[5];
        d->u.pool.pad = (int)v[6];
    } else if (!strcmp(c->op, "linear") && c->ncfg == 4) {
        d->kind = BYOL_OP_LINEAR;
        s = (struct byol_shape){(int)v[0], (int)v[1], 1, 1};
        d->u.linear.out_features = (int)v[2];
        d->u.linear.has_bias = (int)v[3];
        c->rtol_y = c->rtol_g = RTOL_GEMM;
    } else if (!strcmp(c->op, "avgpool") && c->ncfg == 4) {
        d->kind = BYOL_OP_AVGPOOL;
        c->rtol_y = RTOL_AVGPOOL_FWD;
    } else if (!strcmp(c->op, "relu") && c->ncfg == 4) {
        d->kind = BYOL_OP_RELU;
    } else if (!strcmp(c->op, "add") && c->ncfg == 4) {
        d->kind = BYOL_OP_ADD;
        c->inputs = 2;
    } else if (!strcmp(c->op, "flatten") && c->ncfg == 4) {
        d->kind = BYOL_OP_FLATTEN;
    } else if (!strcmp(c->op, "softmax") && c->ncfg == 3) {
        double t;
        if (fx_vector(ops_fx, c->name, "hparams", BYOL_ST_F64, &t, 1) != 1)
            return 0;
        d->kind = BYOL_OP_SOFTMAX;
        s = (struct byol_shape){(int)v[0], (int)v[1], 1, 1};
        d->u.softmax.group = (int)v[2];
        d->u.softmax.temperature = (float)t;
        c->rtol_y = c->rtol_g = RTOL_SOFTMAX;
    } else {
        return 0;
    }
    d->in[0] = s;
    if (c->inputs == 2)
        d->in[1] = s;
    return 1;
}

/* Parameters and state of a case, as plain float arrays (the caller's side of the ABI). */
struct layer_params {
    size_t nw, nb, nc; /* weight, bias, per-channel counts */
    float *weight, *bias, *running_mean, *running_var;
    float *dweight, *dbias;
};

static size_t weight_numel(const struct byol_op_desc *d)
{
    switch (d->kind) {
    case BYOL_OP_CONV2D:
        return (size_t)d->u.conv.out_channels * (size_t)d->in[0].c * (size_t)d->u.conv.kernel_h *
               (size_t)d->u.conv.kernel_w;
    case BYOL_OP_LINEAR: return (size_t)d->u.linear.out_features * (size_t)d->in[0].c;
    case BYOL_OP_BATCHNORM: return d->u.bn.affine ? (size_t)d->in[0].c : 0;
    default: return 0;
    }
}

static size_t bias_numel(const struct byol_op_desc *d)
{
    switch (d->kind) {
    case BYOL_OP_CONV2D: return d->u.conv.has_bias ? (size_t)d->u.conv.out_channels : 0;
    case BYOL_OP_LINEAR: return d->u.linear.has_bias ? (size_t)d->u.linear.out_features : 0;
    case BYOL_OP_BATCHNORM: return d->u.bn.affine ? (size_t)d->in[0].c : 0;
    default: return 0;
    }
}

static void load_params(const struct layer_case *c, struct layer_params *p)
{
    memset(p, 0, sizeof *p);
    p->nw = weight_numel(&c->desc);
    p->nb = bias_numel(&c->desc);
    if (p->nw) {
        p->weight = fx_floats(ops_fx, c->name, "weight", p->nw);
        p->dweight = calloc(p->nw, sizeof *p->dweight);
        CU_ASSERT_PTR_NOT_NULL(p->weight);
    }
    if (p->nb) {
        p->bias = fx_floats(ops_fx, c->name, "bias", p->nb);
        p->dbias = calloc(p->nb, sizeof *p->dbias);
        CU_ASSERT_PTR_NOT_NULL(p->bias);
    }
    if (c->desc.kind == BYOL_OP_BATCHNORM) {
        p->nc = (size_t)c->desc.in[0].c;
        p->running_mean = fx_floats(ops_fx, c->name, "running_mean", p->nc);
        p->running_var = fx_floats(ops_fx, c->name, "running_var", p->nc);
        CU_ASSERT_PTR_NOT_NULL(p->running_mean);
        CU_ASSERT_PTR_NOT_NULL(p->running_var);
    }
}

static void free_params(struct layer_params *p)
{
    free(p->weight);
    free(p->bias);
    free(p->running_mean);
    free(p->running_var);
    free(p->dweight);
    free(p->dbias);
}

/* Reads a backend tensor and compares it with PREFIX/WHAT (+ `extra` element-wise if given). */
static void check_tensor(const struct layer_case *c, const struct byol_tensor *t, const char *what,
                         const float *extra, double rtol)
{
    size_t n = byol_shape_numel(t->shape);
    float *ref = fx_floats(ops_fx, c->name, what, n);
    float *got = malloc(n * sizeof *got + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_PTR_NOT_NULL(ref);
    if (ref && byol_backend_tensor_read(be, t, got) == BYOL_OK) {
        char label[300];
        snprintf(label, sizeof label, "%s/%s%s", c->name, what, extra ? " (accumulated)" : "");
        for (size_t i = 0; extra && i < n; i++)
            ref[i] += extra[i];
        CU_ASSERT(byol_test_close(label, got, ref, n, ATOL, rtol));
    } else if (ref) {
        CU_FAIL("tensor_read failed");
    }
    free(ref);
    free(got);
}

/* Compares a caller-owned array with PREFIX/WHAT times `scale`. */
static void check_array(const struct layer_case *c, const float *got, size_t n, const char *what,
                        float scale, double rtol)
{
    float *ref = fx_floats(ops_fx, c->name, what, n);
    CU_ASSERT_PTR_NOT_NULL(ref);
    if (!ref)
        return;
    char label[300];
    snprintf(label, sizeof label, "%s/%s%s", c->name, what, scale != 1 ? " (accumulated)" : "");
    for (size_t i = 0; i < n; i++)
        ref[i] *= scale;
    CU_ASSERT(byol_test_close(label, got, ref, n, ATOL, rtol));
    free(ref);
}

static void alloc_write(struct byol_tensor *t, struct byol_shape s, const void *producer,
                        const float *src)
{
    BYOL_CHECK_OK(byol_backend_tensor_alloc(be, t, s, producer));
    if (src)
        BYOL_CHECK_OK(byol_backend_tensor_write(be, t, src));
}

/* A plain array of `n` copies of `v` (NaN shows a kernel that reads what it should overwrite). */
static float *filled(size_t n, float v)
{
    float *p = malloc(n * sizeof *p + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

/* An arbitrary, non-constant pattern to accumulate onto. */
static float *pattern(size_t n)
{
    float *p = malloc(n * sizeof *p + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)sin(0.37 * (double)i + 0.1);
    return p;
}

/* Batch-norm state: a training forward moves the running statistics to the fixture's values;
 * an inference forward must leave them bit for bit as they were. */
static void check_running_stats(const struct layer_case *c, const struct layer_params *p)
{
    if (c->desc.kind != BYOL_OP_BATCHNORM)
        return;
    float *before_m = fx_floats(ops_fx, c->name, "running_mean", p->nc);
    float *before_v = fx_floats(ops_fx, c->name, "running_var", p->nc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before_m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before_v);
    int same = !memcmp(before_m, p->running_mean, p->nc * sizeof(float)) &&
               !memcmp(before_v, p->running_var, p->nc * sizeof(float));
    CU_ASSERT_EQUAL(same, !c->training);
    check_array(c, p->running_mean, p->nc, "running_mean_out", 1, RTOL_GEMM);
    check_array(c, p->running_var, p->nc, "running_var_out", 1, RTOL_GEMM);
    free(before_m);
    free(before_v);
}

/* Runs backward with dx pre-filled (NaN for overwrite, a pattern for accumulate) and checks dx
 * against the reference (+ the pattern), and dweight / dbias against `pass` x the reference,
 * since parameter gradients always accumulate. */
static void backward_pass(const struct layer_case *c, void *plan, struct byol_op_args *a,
                          struct byol_tensor *dx, struct layer_params *p, int pass)
{
    static const char *dx_names[2] = {"dx", "dx1"};
    size_t nx = byol_shape_numel(c->desc.in[0]);
    float *pre = pass == 1 ? filled(nx, NAN) : pattern(nx);
    for (int i = 0; i < c->inputs; i++) {
        BYOL_CHECK_OK(byol_backend_tensor_write(be, &dx[i], pre));
        a->accumulate[i] = pass == 2;
    }
    BYOL_CHECK_OK(byol_backend_backward(be, plan, a));
    for (int i = 0; i < c->inputs; i++)
        check_tensor(c, &dx[i], dx_names[i], pass == 2 ? pre : NULL, c->rtol_g);
    if (p->nw)
        check_array(c, p->dweight, p->nw, "dweight", (float)pass, c->rtol_g);
    if (p->nb)
        check_array(c, p->dbias, p->nb, "dbias", (float)pass, c->rtol_g);
    free(pre);
}

static void run_layer_case(struct layer_case *c)
{
    printf("\n  case %s (%s)\n", c->name, c->op);
    CU_ASSERT_FATAL(describe_case(c));
    BYOL_CHECK_OK(byol_op_desc_infer(&c->desc));
    size_t nx = byol_shape_numel(c->desc.in[0]), ny = byol_shape_numel(c->desc.out);
    const struct byol_st_tensor *y_fx = fx_tensor(ops_fx, c->name, "y");
    CU_ASSERT_PTR_NOT_NULL_FATAL(y_fx);
    CU_ASSERT_EQUAL_FATAL(y_fx->numel, ny); /* the inferred shape agrees with PyTorch's */

    void *plan = NULL;
    size_t saved_bytes = 0;
    byol_status st = byol_backend_plan_create(be, &c->desc, &plan, &saved_bytes);
    if (st == BYOL_ERR_UNSUPPORTED && strcmp(backend_name, "blas") != 0) {
        printf("  skipped: %s\n", byol_last_error());
        return;
    }
    BYOL_CHECK_OK(st);
    void *saved = calloc(1, saved_bytes ? saved_bytes : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(saved);

    struct layer_params p;
    load_params(c, &p);
    float *xs[2] = {fx_floats(ops_fx, c->name, "x", nx),
                    c->inputs == 2 ? fx_floats(ops_fx, c->name, "x1", nx) : NULL};
    float *dys = fx_floats(ops_fx, c->name, "dy", ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xs[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dys);

    struct byol_tensor x[2], dx[2], y, dy;
    memset(x, 0, sizeof x);
    memset(dx, 0, sizeof dx);
    memset(&y, 0, sizeof y);
    memset(&dy, 0, sizeof dy);
    for (int i = 0; i < c->inputs; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(xs[i]);
        alloc_write(&x[i], c->desc.in[i], NULL, xs[i]);
        alloc_write(&dx[i], c->desc.in[i], NULL, NULL);
    }
    alloc_write(&y, c->desc.out, plan, NULL);
    alloc_write(&dy, c->desc.out, NULL, dys);

    struct byol_op_args a = {
        .x = {&x[0], c->inputs == 2 ? &x[1] : NULL},
        .y = &y,
        .weight = p.weight,
        .bias = p.bias,
        .running_mean = p.running_mean,
        .running_var = p.running_var,
        .saved = saved,
        .dy = &dy,
        .dx = {&dx[0], c->inputs == 2 ? &dx[1] : NULL},
        .dweight = p.dweight,
        .dbias = p.dbias,
    };
    BYOL_CHECK_OK(byol_backend_forward(be, plan, c->training, &a));
    check_tensor(c, &y, "y", NULL, c->rtol_y);
    check_running_stats(c, &p);

    /* Pass 1 overwrites dx; pass 2 adds into a pre-filled dx, and the parameter gradients
     * accumulate to twice the reference. */
    backward_pass(c, plan, &a, dx, &p, 1);
    backward_pass(c, plan, &a, dx, &p, 2);

    for (int i = 0; i < c->inputs; i++) {
        byol_backend_tensor_free(be, &x[i]);
        byol_backend_tensor_free(be, &dx[i]);
        free(xs[i]);
    }
    byol_backend_tensor_free(be, &y);
    byol_backend_tensor_free(be, &dy);
    byol_backend_plan_destroy(be, plan);
    free(dys);
    free(saved);
    free_params(&p);
}

/* Runs every case of the ops fixture whose op is `op` (all cases when NULL); returns how many. */
static size_t run_layer_cases(const char *op)
{
    size_t n, ran = 0;
    char **names = fx_cases(ops_fx, "cfg", &n);
    for (size_t i = 0; i < n; i++) {
        struct layer_case c = {.name = names[i], .op = fx_op(ops_fx, names[i])};
        if (!c.op || (op && strcmp(c.op, op) != 0))
            continue;
        c.ncfg = fx_vector(ops_fx, c.name, "cfg", BYOL_ST_I64, c.cfg, 16);
        run_layer_case(&c);
        ran++;
    }
    free_cases(names, n);
    return ran;
}

static void test_conv2d(void)
{
    CU_ASSERT(run_layer_cases("conv2d") >= 5);
}
static void test_batchnorm(void)
{
    CU_ASSERT(run_layer_cases("batchnorm") >= 6);
}
static void test_relu(void)
{
    CU_ASSERT(run_layer_cases("relu") >= 1);
}
static void test_maxpool(void)
{
    CU_ASSERT(run_layer_cases("maxpool") >= 2);
}
static void test_avgpool(void)
{
    CU_ASSERT(run_layer_cases("avgpool") >= 1);
}
static void test_linear(void)
{
    CU_ASSERT(run_layer_cases("linear") >= 2);
}
static void test_add(void)
{
    CU_ASSERT(run_layer_cases("add") >= 1);
}
static void test_flatten(void)
{
    CU_ASSERT(run_layer_cases("flatten") >= 1);
}
static void test_softmax(void)
{
    CU_ASSERT(run_layer_cases("softmax") >= 2);
}

/* Every case names an op this suite knows, so a new case never goes silently untested. */
static void test_fixture_complete(void)
{
    static const char *known[] = {"conv2d", "batchnorm", "relu",    "maxpool", "avgpool",
                                  "linear", "add",       "flatten", "softmax"};
    size_t n;
    char **names = fx_cases(ops_fx, "cfg", &n);
    CU_ASSERT(n >= 20);
    for (size_t i = 0; i < n; i++) {
        const char *op = fx_op(ops_fx, names[i]);
        int ok = 0;
        for (size_t k = 0; op && k < sizeof known / sizeof known[0]; k++)
            ok |= !strcmp(op, known[k]);
        if (!ok)
            fprintf(stderr, "\n  case %s: unknown op %s\n", names[i], op ? op : "(none)");
        CU_ASSERT(ok);
    }
    free_cases(names, n);
    names = fx_cases(optim_fx, "hparams", &n);
    CU_ASSERT(n >= 7);
    for (size_t i = 0; i < n; i++) {
        const char *op = fx_op(optim_fx, names[i]);
        CU_ASSERT(op && (!strcmp(op, "adam") || !strcmp(op, "sgd") || !strcmp(op, "ema")));
    }
    free_cases(names, n);
}

/* ---- optimizers ------------------------------------------------------------------------ */

#define OPT_STEPS 3

/* param0 / target0 and the parameter count of an optimizer case. */
static float *optim_start(const char *name, const char *what, size_t *n)
{
    const struct byol_st_tensor *t = fx_tensor(optim_fx, name, what);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    *n = t->numel;
    float *p = fx_floats(optim_fx, name, what, t->numel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Compares `got` with NAME/WHAT<k> when the fixture has it. */
static void check_step(const char *name, const char *what, int k, const float *got, size_t n)
{
    char key[64], label[300];
    snprintf(key, sizeof key, "%s%d", what, k);
    float *ref = fx_floats(optim_fx, name, key, n);
    if (!ref)
        return;
    snprintf(label, sizeof label, "%s/%s", name, key);
    CU_ASSERT(byol_test_close(label, got, ref, n, ATOL, RTOL_UPDATE));
    free(ref);
}

static float *step_input(const char *name, const char *what, int k, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "%s%d", what, k);
    float *p = fx_floats(optim_fx, name, key, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void run_adam(const char *name)
{
    double hp[6];
    CU_ASSERT_EQUAL_FATAL(fx_vector(optim_fx, name, "hparams", BYOL_ST_F64, hp, 6), 6);
    size_t n;
    float *param = optim_start(name, "param0", &n);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    CU_ASSERT_FATAL(m && v);
    struct byol_adam_hparams h = {.lr = hp[0],
                                  .beta1 = hp[1],
                                  .beta2 = hp[2],
                                  .eps = hp[3],
                                  .weight_decay = hp[4],
                                  .decoupled_weight_decay = (int)hp[5]};
    for (int k = 1; k <= OPT_STEPS; k++) {
        float *grad = step_input(name, "grad", k, n);
        h.step = k;
        BYOL_CHECK_OK(byol_backend_adam(be, param, grad, m, v, n, &h));
        check_step(name, "param", k, param, n);
        check_step(name, "exp_avg", k, m, n);
        check_step(name, "exp_avg_sq", k, v, n);
        free(grad);
    }
    free(param);
    free(m);
    free(v);
}

static void run_sgd(const char *name)
{
    double hp[4];
    CU_ASSERT_EQUAL_FATAL(fx_vector(optim_fx, name, "hparams", BYOL_ST_F64, hp, 4), 4);
    size_t n;
    float *param = optim_start(name, "param0", &n);
    float *buf = calloc(n, sizeof *buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    struct byol_sgd_hparams h = {
        .lr = hp[0], .momentum = hp[1], .weight_decay = hp[2], .nesterov = (int)hp[3]};
    for (int k = 1; k <= OPT_STEPS; k++) {
        float *grad = step_input(name, "grad", k, n);
        h.first_step = k == 1;
        BYOL_CHECK_OK(byol_backend_sgd(be, param, grad, buf, n, &h));
        check_step(name, "param", k, param, n);
        check_step(name, "momentum_buffer", k, buf, n);
        free(grad);
    }
    free(param);
    free(buf);
}

static void run_ema(const char *name)
{
    double tau;
    CU_ASSERT_EQUAL_FATAL(fx_vector(optim_fx, name, "hparams", BYOL_ST_F64, &tau, 1), 1);
    size_t n;
    float *target = optim_start(name, "target0", &n);
    for (int k = 1; k <= OPT_STEPS; k++) {
        float *online = step_input(name, "online", k, n);
        BYOL_CHECK_OK(byol_backend_ema(be, target, online, n, tau));
        check_step(name, "target", k, target, n);
        free(online);
    }
    free(target);
}

static size_t run_optim_cases(const char *op)
{
    size_t n, ran = 0;
    char **names = fx_cases(optim_fx, "hparams", &n);
    for (size_t i = 0; i < n; i++) {
        const char *o = fx_op(optim_fx, names[i]);
        if (!o || strcmp(o, op) != 0)
            continue;
        printf("\n  case %s (%s)\n", names[i], o);
        if (!strcmp(op, "adam"))
            run_adam(names[i]);
        else if (!strcmp(op, "sgd"))
            run_sgd(names[i]);
        else
            run_ema(names[i]);
        ran++;
    }
    free_cases(names, n);
    return ran;
}

static void test_adam(void)
{
    CU_ASSERT(run_optim_cases("adam") >= 3);
}
static void test_sgd(void)
{
    CU_ASSERT(run_optim_cases("sgd") >= 3);
}
static void test_ema(void)
{
    CU_ASSERT(run_optim_cases("ema") >= 1);
}

int main(int argc, char **argv)
{
    const char *env = getenv("BYOL_TEST_BACKEND");
    if (argc > 1)
        backend_name = argv[1];
    else if (env && *env)
        backend_name = env;
    if (byol_st_read(byol_test_fixture("ops.safetensors"), &ops_fx) != BYOL_OK ||
        byol_st_read(byol_test_fixture("optim.safetensors"), &optim_fx) != BYOL_OK) {
        fprintf(stderr, "fixtures: %s\n", byol_last_error());
        return 2;
    }
    reg = byol_test_registry();
    be = byol_test_backend(reg, backend_name, 2);
    printf("backend: %s\n", byol_backend_name(be));

    static const struct byol_test_case cases[] = {
        {"fixture cases all have known ops", test_fixture_complete, 0},
        {"conv2d", test_conv2d, 0},
        {"batchnorm (training updates, inference keeps running stats)", test_batchnorm, 0},
        {"relu", test_relu, 0},
        {"maxpool", test_maxpool, 0},
        {"global avgpool", test_avgpool, 0},
        {"linear", test_linear, 0},
        {"add", test_add, 0},
        {"flatten", test_flatten, 0},
        {"grouped softmax (simplicial embeddings)", test_softmax, 0},
        {"adam / adamw", test_adam, 0},
        {"sgd (momentum, nesterov, plain)", test_sgd, 0},
        {"ema", test_ema, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "backend ops", cases);
    byol_backend_free(be);
    byol_registry_free(reg);
    byol_st_free(ops_fx);
    byol_st_free(optim_fx);
    return rc;
}
