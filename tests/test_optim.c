/* Tests of the optimizers and schedules (core/nn/optim.c): five steps of every optimizer case in
 * fixtures/optim_steps.safetensors (torch.optim Adam / AdamW / SGD and a LARS reference, see
 * gen_optim.py) on a small net, learning-rate schedules, parsing, validation and state. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/optim.h"
#include "testutil.h"

/* Tolerance, relative to max|reference| of each tensor. Adam, AdamW and SGD run the backend's
 * kernels, which follow PyTorch's operation order (test_backend_ops); what differs is at most
 * a rounding of lr on its way to float, so a few float ulps (u = 6e-8) of the largest value.
 * LARS adds a double-precision norm whose summation order differs from torch's (~1e-16
 * relative) and float products in a slightly different grouping: again a few ulps. Five
 * steps compound that to ~10 ulps, 6e-7; a wrong formula (a missed weight decay, trust ratio,
 * bias correction or lr step) shows as 1e-3 or more. */
#define RTOL 1e-6
#define ATOL 1e-9
#define STEPS 5

static struct byol_registry *g_reg;
static struct byol_backend *g_be;
static struct byol_st_file *g_fx;

/* ---- Helpers. -------------------------------------------------------------------------- */

static const struct byol_st_tensor *fx_find(const char *name)
{
    const struct byol_st_tensor *t = byol_st_find(g_fx, name);
    if (!t)
        fprintf(stderr, "\n  fixture has no tensor %s\n", name);
    return t;
}

/* Copy fixture tensor `name` (F32, `n` values) into dst; 0 when missing or mismatched. */
static int fx_copy(const char *name, float *dst, size_t n)
{
    const struct byol_st_tensor *t = fx_find(name);
    if (!t || t->dtype != BYOL_ST_F32 || t->numel != n)
        return 0;
    memcpy(dst, t->data, n * sizeof(float));
    return 1;
}

/* conv (bias) -> bn -> relu -> avgpool -> flatten -> fc, with detinit parameters. */
static struct byol_net *small_net(void)
{
    struct byol_net *net = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &net));
    BYOL_CHECK_OK(byol_net_add_input(net, "x", (struct byol_shape){2, 3, 6, 6}));
    BYOL_CHECK_OK(byol_net_add_conv2d(net, "conv", NULL, 4, 3, 1, 1, 1));
    BYOL_CHECK_OK(byol_net_add_batchnorm(net, "bn", NULL, 1));
    BYOL_CHECK_OK(byol_net_add_relu(net, "relu", NULL));
    BYOL_CHECK_OK(byol_net_add_avgpool(net, "avgpool", NULL));
    BYOL_CHECK_OK(byol_net_add_flatten(net, "flatten", NULL));
    BYOL_CHECK_OK(byol_net_add_linear(net, "fc", NULL, 5, 1));
    BYOL_CHECK_OK(byol_net_build(net, 0));
    byol_test_detinit_net(net, "");
    return net;
}

/* Set every parameter gradient to the fixture's gradient set k (1..STEPS). */
static void load_grads(struct byol_net *net, int k)
{
    char key[128];
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role != BYOL_ROLE_PARAM)
            continue;
        snprintf(key, sizeof key, "grad%d.%s", k, p->name);
        CU_ASSERT_FATAL(fx_copy(key, p->grad, p->numel));
    }
}

static void config_from_fixture(const double *v, struct byol_optim_config *c)
{
    byol_optim_config_default(c);
    c->kind = (enum byol_optim_kind)v[0];
    c->lr = v[1];
    c->beta1 = v[2];
    c->beta2 = v[3];
    c->eps = v[4];
    c->weight_decay = v[5];
    c->momentum = v[6];
    c->nesterov = (int)v[7];
    c->trust_coefficient = v[8];
    c->lr_schedule = (enum byol_lr_schedule)v[9];
    c->warmup_steps = (int64_t)v[10];
    c->total_steps = (int64_t)v[11];
}

/* ---- Parity with PyTorch. -------------------------------------------------------------- */

/* The worst relative difference seen in one case, for one kind of array. */
struct worst {
    double rel, abs;
    char where[96];
};

/* Compare got with the fixture's `key`; fold the result into *w. */
static void compare(const char *key, const float *got, size_t n, struct worst *w)
{
    float *ref = malloc(n * sizeof *ref);
    CU_ASSERT_FATAL(ref != NULL);
    CU_ASSERT_FATAL(fx_copy(key, ref, n));
    double maxdiff = 0, maxref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= maxdiff)) /* also catches NaN */
            maxdiff = isnan(d) ? INFINITY : d;
        maxref = fmax(maxref, fabs(ref[i]));
    }
    int ok = maxdiff <= ATOL + RTOL * maxref;
    if (!ok) /* the full report, with the worst coordinate */
        byol_test_close(key, got, ref, n, ATOL, RTOL);
    CU_ASSERT(ok);
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    if (rel > w->rel || !w->where[0]) {
        w->rel = rel;
        w->abs = maxdiff;
        snprintf(w->where, sizeof w->where, "%.80s", key + strcspn(key, "/") + 1);
    }
    free(ref);
}

static void check_after_step(const char *cs, struct byol_net *net, struct byol_optim *opt, int k,
                             struct worst *wp, struct worst *ws)
{
    char key[256];
    const float *base = byol_net_params(net);
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role != BYOL_ROLE_PARAM)
            continue;
        snprintf(key, sizeof key, "%s/param%d.%s", cs, k, p->name);
        compare(key, p->data, p->numel, wp);
        for (size_t s = 0; s < byol_optim_state_count(opt); s++) {
            snprintf(key, sizeof key, "%s/%s%d.%s", cs, byol_optim_state_name(opt, s), k, p->name);
            compare(key, byol_optim_state_data(opt, s) + (p->data - base), p->numel, ws);
        }
    }
}

static void run_case(struct byol_net *net, const char *cs)
{
    char key[160];
    double cfgv[12], lrs[STEPS];
    snprintf(key, sizeof key, "%s/config", cs);
    const struct byol_st_tensor *t = fx_find(key);
    CU_ASSERT_FATAL(t && t->dtype == BYOL_ST_F64 && t->numel == 12);
    memcpy(cfgv, t->data, sizeof cfgv);
    snprintf(key, sizeof key, "%s/lr", cs);
    t = fx_find(key);
    CU_ASSERT_FATAL(t && t->dtype == BYOL_ST_F64 && t->numel == STEPS);
    memcpy(lrs, t->data, sizeof lrs);

    struct byol_optim_config c;
    config_from_fixture(cfgv, &c);
    byol_test_detinit_net(net, "");
    struct byol_optim *opt = NULL;
    BYOL_CHECK_OK(byol_optim_create(g_be, net, &c, &opt));
    struct worst wp = {0}, ws = {0};
    double lr_diff = 0;
    for (int k = 1; k <= STEPS; k++) {
        double lr = byol_optim_lr_at(&c, k - 1);
        lr_diff = fmax(lr_diff, fabs(lr - lrs[k - 1]));
        load_grads(net, k);
        BYOL_CHECK_OK(byol_optim_step(opt));
        CU_ASSERT_EQUAL(byol_optim_steps_done(opt), k);
        check_after_step(cs, net, opt, k, &wp, &ws);
    }
    CU_ASSERT(lr_diff <= 1e-15 * c.lr);
    printf("  %-22s params: max rel diff %.2g (abs %.2g, %s)", cs, wp.rel, wp.abs, wp.where);
    if (byol_optim_state_count(opt))
        printf("; state: max rel diff %.2g (abs %.2g, %s)", ws.rel, ws.abs, ws.where);
    printf("; lr diff %.2g\n", lr_diff);
    byol_optim_free(opt);
}

static void test_torch_parity(void)
{
    struct byol_net *net = small_net();
    printf("\n");
    size_t cases = 0;
    for (size_t i = 0; i < byol_st_count(g_fx); i++) {
        const char *name = byol_st_at(g_fx, i)->name;
        const char *slash = strchr(name, '/');
        if (!slash || strcmp(slash, "/config") != 0 || !strncmp(name, "schedule/", 9))
            continue;
        char cs[64];
        snprintf(cs, sizeof cs, "%.*s", (int)(slash - name), name);
        run_case(net, cs);
        cases++;
    }
    CU_ASSERT_EQUAL(cases, 16); /* 8 optimizer settings x 2 schedules */
    byol_net_free(net);
}

/* The test net and the script agree on names, shapes and detinit values. */
static void test_fixture_net(void)
{
    struct byol_net *net = small_net();
    size_t n = 0;
    char key[128];
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role != BYOL_ROLE_PARAM)
            continue;
        float *ref = malloc(p->numel * sizeof *ref);
        snprintf(key, sizeof key, "init.%s", p->name);
        CU_ASSERT_FATAL(ref && fx_copy(key, ref, p->numel));
        CU_ASSERT(memcmp(ref, p->data, p->numel * sizeof *ref) == 0);
        free(ref);
        n += p->numel;
    }
    CU_ASSERT_EQUAL(n, byol_net_num_params(net));
    CU_ASSERT_EQUAL(n, 4 * 3 * 3 * 3 + 4 + 4 + 4 + 5 * 4 + 5);
    byol_net_free(net);
}

/* ---- Schedules. ------------------------------------------------------------------------ */

static void test_lr_schedule(void)
{
    struct byol_optim_config c;
    byol_optim_config_default(&c);
    c.lr = 0.1;
    /* torch's LinearLR + CosineAnnealingLR chained by SequentialLR: warmup 3, total 10. */
    c.lr_schedule = BYOL_LR_COSINE;
    c.warmup_steps = 3;
    c.total_steps = 10;
    const struct byol_st_tensor *t = fx_find("schedule/lr");
    CU_ASSERT_FATAL(t && t->dtype == BYOL_ST_F64 && t->numel == 10);
    double ref[10], maxdiff = 0;
    memcpy(ref, t->data, sizeof ref);
    for (int s = 0; s < 10; s++)
        maxdiff = fmax(maxdiff, fabs(byol_optim_lr_at(&c, s) - ref[s]));
    printf("\n  lr_at vs torch SequentialLR: max abs diff %.3g\n", maxdiff);
    CU_ASSERT(maxdiff < 1e-12);
    /* Hand-computed points of the documented formula. */
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 0), 0.1 / 3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 2), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 3), 0.1, 1e-15);
    c.total_steps = 13; /* (step - 3) / 10 = 1/2 at step 8 */
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 8), 0.05, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 12), 0.1 * 0.5 * (1 + cos(M_PI * 0.9)), 1e-15);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 13), 0.0);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 1000), 0.0);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, -1), 0.0);
    /* Cosine without warmup starts at lr. */
    c.warmup_steps = 0;
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 0), 0.1, 1e-15);
    /* Constant, with and without warmup. */
    c.lr_schedule = BYOL_LR_CONSTANT;
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 0), 0.1);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 123456), 0.1);
    c.warmup_steps = 4;
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 0), 0.025, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(byol_optim_lr_at(&c, 1), 0.05, 1e-15);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 3), 0.1);
    CU_ASSERT_EQUAL(byol_optim_lr_at(&c, 99), 0.1);
    CU_ASSERT_EQUAL(byol_optim_lr_at(NULL, 0), 0.0);
}

/* ---- Parsing and validation. ----------------------------------------------------------- */

static void test_parse(void)
{
    static const char *const kinds[] = {"adam", "adamw", "sgd", "lars"};
    for (int i = 0; i < 4; i++) {
        enum byol_optim_kind k = BYOL_OPTIM_ADAM;
        BYOL_CHECK_OK(byol_optim_kind_parse(kinds[i], &k));
        CU_ASSERT_EQUAL((int)k, i);
    }
    enum byol_optim_kind k = BYOL_OPTIM_LARS;
    CU_ASSERT_EQUAL(byol_optim_kind_parse("adamx", &k), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("train.optimizer: unknown optimizer 'adamx' (known: adam, adamw, sgd, lars)");
    CU_ASSERT_EQUAL(k, BYOL_OPTIM_LARS); /* untouched on failure */
    CU_ASSERT_EQUAL(byol_optim_kind_parse("Adam", &k), BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_optim_kind_parse(NULL, &k), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("train.optimizer");

    enum byol_lr_schedule s = BYOL_LR_CONSTANT;
    BYOL_CHECK_OK(byol_lr_schedule_parse("cosine", &s));
    CU_ASSERT_EQUAL(s, BYOL_LR_COSINE);
    BYOL_CHECK_OK(byol_lr_schedule_parse("constant", &s));
    CU_ASSERT_EQUAL(s, BYOL_LR_CONSTANT);
    CU_ASSERT_EQUAL(byol_lr_schedule_parse("step", &s), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("train.lr_schedule: unknown schedule 'step' (known: constant, cosine)");
}

/* byol_optim_create with one setting changed from a valid config must fail naming it. */
static void expect_invalid(struct byol_net *net, const struct byol_optim_config *c,
                           const char *needle)
{
    struct byol_optim *opt = (struct byol_optim *)&opt;
    CU_ASSERT_EQUAL(byol_optim_create(g_be, net, c, &opt), BYOL_ERR_INVALID);
    CU_ASSERT_PTR_NULL(opt);
    BYOL_ASSERT_MSG_HAS(needle);
}

static void test_validation(void)
{
    struct byol_net *net = small_net();
    struct byol_optim_config base, c;
    byol_optim_config_default(&base);
    c = base, c.lr = -1;
    expect_invalid(net, &c, "train.lr");
    c = base, c.lr = NAN;
    expect_invalid(net, &c, "train.lr");
    c = base, c.weight_decay = -1e-4;
    expect_invalid(net, &c, "train.weight_decay");
    c = base, c.beta2 = 1.0;
    expect_invalid(net, &c, "train.betas");
    c = base, c.kind = BYOL_OPTIM_SGD, c.momentum = 1.5;
    expect_invalid(net, &c, "train.momentum");
    c = base, c.kind = BYOL_OPTIM_SGD, c.momentum = 0, c.nesterov = 1;
    expect_invalid(net, &c, "train.nesterov");
    c = base, c.kind = BYOL_OPTIM_LARS, c.trust_coefficient = 0;
    expect_invalid(net, &c, "train.trust_coefficient");
    c = base, c.warmup_steps = -1;
    expect_invalid(net, &c, "train.warmup_steps");
    c = base, c.lr_schedule = BYOL_LR_COSINE, c.warmup_steps = 10, c.total_steps = 10;
    expect_invalid(net, &c, "train.steps: 10 must exceed train.warmup_steps (10)");
    c = base, c.kind = (enum byol_optim_kind)7;
    expect_invalid(net, &c, "train.optimizer");
    /* An unbuilt network has no parameters to train. */
    struct byol_net *empty = NULL;
    BYOL_CHECK_OK(byol_net_create(g_be, &empty));
    expect_invalid(empty, &base, "no trainable parameters");
    byol_net_free(empty);
    CU_ASSERT_EQUAL(byol_optim_create(g_be, NULL, &base, &(struct byol_optim *){NULL}),
                    BYOL_ERR_INVALID);
    CU_ASSERT_EQUAL(byol_optim_step(NULL), BYOL_ERR_INVALID);
    byol_optim_free(NULL);
    byol_net_free(net);
}

/* ---- State. ---------------------------------------------------------------------------- */

static void test_state_accessors(void)
{
    struct byol_net *net = small_net();
    size_t n = byol_net_num_params(net);
    struct {
        enum byol_optim_kind kind;
        double momentum;
        size_t count;
        const char *names[2];
    } want[] = {
        {BYOL_OPTIM_ADAM, 0.9, 2, {"exp_avg", "exp_avg_sq"}},
        {BYOL_OPTIM_ADAMW, 0.9, 2, {"exp_avg", "exp_avg_sq"}},
        {BYOL_OPTIM_SGD, 0.9, 1, {"momentum_buffer", NULL}},
        {BYOL_OPTIM_SGD, 0.0, 0, {NULL, NULL}},
        {BYOL_OPTIM_LARS, 0.9, 1, {"momentum_buffer", NULL}},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        struct byol_optim_config c;
        byol_optim_config_default(&c);
        c.kind = want[w].kind;
        c.momentum = want[w].momentum;
        struct byol_optim *opt = NULL;
        BYOL_CHECK_OK(byol_optim_create(g_be, net, &c, &opt));
        CU_ASSERT_EQUAL_FATAL(byol_optim_state_count(opt), want[w].count);
        for (size_t i = 0; i < want[w].count; i++) {
            CU_ASSERT_STRING_EQUAL(byol_optim_state_name(opt, i), want[w].names[i]);
            float *d = byol_optim_state_data(opt, i);
            CU_ASSERT_PTR_NOT_NULL_FATAL(d);
            /* zero at creation, num_params long (valgrind checks the bound) */
            CU_ASSERT(d[0] == 0.0f && d[n - 1] == 0.0f);
        }
        CU_ASSERT_PTR_NULL(byol_optim_state_name(opt, want[w].count));
        CU_ASSERT_PTR_NULL(byol_optim_state_data(opt, want[w].count));
        CU_ASSERT_EQUAL(byol_optim_steps_done(opt), 0);
        byol_optim_set_steps_done(opt, 42);
        CU_ASSERT_EQUAL(byol_optim_steps_done(opt), 42);
        byol_optim_set_steps_done(opt, -3);
        CU_ASSERT_EQUAL(byol_optim_steps_done(opt), 0);
        byol_optim_free(opt);
    }
    CU_ASSERT_EQUAL(byol_optim_state_count(NULL), 0);
    CU_ASSERT_PTR_NULL(byol_optim_state_name(NULL, 0));
    byol_net_free(net);
}

/* Steps first..last (1-based) of the fixture's gradients. */
static void run_steps(struct byol_net *net, struct byol_optim *opt, int first, int last)
{
    for (int k = first; k <= last; k++) {
        load_grads(net, k);
        BYOL_CHECK_OK(byol_optim_step(opt));
    }
}

/* Five steps in one go equal three steps, a save and restore of parameters and optimizer
 * state into a fresh optimizer, and two more steps: bit for bit, for every kind (Adam's step
 * counter and SGD's first-step buffer both come back through set_steps_done). */
static void resume_case(struct byol_net *net, const struct byol_optim_config *c)
{
    size_t n = byol_net_num_params(net), bytes = n * sizeof(float);
    struct byol_optim *opt = NULL;
    byol_test_detinit_net(net, "");
    BYOL_CHECK_OK(byol_optim_create(g_be, net, c, &opt));
    run_steps(net, opt, 1, STEPS);
    float *straight = malloc(bytes), *saved = malloc(bytes), *states[2] = {NULL, NULL};
    CU_ASSERT_FATAL(straight && saved);
    memcpy(straight, byol_net_params(net), bytes);
    byol_optim_free(opt);

    byol_test_detinit_net(net, "");
    BYOL_CHECK_OK(byol_optim_create(g_be, net, c, &opt));
    run_steps(net, opt, 1, 3);
    memcpy(saved, byol_net_params(net), bytes);
    size_t ns = byol_optim_state_count(opt);
    for (size_t s = 0; s < ns; s++) {
        states[s] = malloc(bytes);
        CU_ASSERT_FATAL(states[s] != NULL);
        memcpy(states[s], byol_optim_state_data(opt, s), bytes);
    }
    byol_optim_free(opt);

    byol_test_detinit_net(net, ""); /* scramble, then restore */
    BYOL_CHECK_OK(byol_optim_create(g_be, net, c, &opt));
    memcpy(byol_net_params(net), saved, bytes);
    for (size_t s = 0; s < ns; s++)
        memcpy(byol_optim_state_data(opt, s), states[s], bytes);
    byol_optim_set_steps_done(opt, 3);
    run_steps(net, opt, 4, STEPS);
    CU_ASSERT(memcmp(straight, byol_net_params(net), bytes) == 0);
    CU_ASSERT(memcmp(saved, byol_net_params(net), bytes) != 0);
    byol_optim_free(opt);
    for (size_t s = 0; s < ns; s++)
        free(states[s]);
    free(straight);
    free(saved);
}

static void test_resume(void)
{
    struct byol_net *net = small_net();
    enum byol_optim_kind kinds[] = {BYOL_OPTIM_ADAM, BYOL_OPTIM_ADAMW, BYOL_OPTIM_SGD,
                                    BYOL_OPTIM_LARS};
    for (int i = 0; i < 4; i++) {
        struct byol_optim_config c;
        byol_optim_config_default(&c);
        c.kind = kinds[i];
        c.lr = 0.05;
        c.weight_decay = 1e-3;
        c.lr_schedule = BYOL_LR_COSINE;
        c.warmup_steps = 2;
        c.total_steps = 6;
        resume_case(net, &c);
    }
    byol_net_free(net);
}

/* LARS's fallbacks: a zero weight tensor (||p|| = 0) and a zero gradient without weight
 * decay (||d|| = 0) both take trust 1 rather than 0 or NaN. */
static void test_lars_zero_norms(void)
{
    struct byol_net *net = small_net();
    const struct byol_param *conv = byol_net_find_param(net, "conv.weight");
    const struct byol_param *fc = byol_net_find_param(net, "fc.weight");
    CU_ASSERT_FATAL(conv && fc);
    load_grads(net, 1);
    memset(conv->data, 0, conv->numel * sizeof(float));
    memset(fc->grad, 0, fc->numel * sizeof(float));
    float *fc_before = malloc(fc->numel * sizeof(float));
    CU_ASSERT_FATAL(fc_before != NULL);
    memcpy(fc_before, fc->data, fc->numel * sizeof(float));

    struct byol_optim_config c;
    byol_optim_config_default(&c);
    c.kind = BYOL_OPTIM_LARS;
    c.lr = 0.5;
    struct byol_optim *opt = NULL;
    BYOL_CHECK_OK(byol_optim_create(g_be, net, &c, &opt));
    BYOL_CHECK_OK(byol_optim_step(opt));
    int ok = 1;
    for (size_t i = 0; i < conv->numel; i++)
        ok &= conv->data[i] == -(0.5f * conv->grad[i]);
    CU_ASSERT(ok);
    CU_ASSERT(memcmp(fc_before, fc->data, fc->numel * sizeof(float)) == 0);
    byol_optim_free(opt);
    free(fc_before);
    byol_net_free(net);
}

int main(int argc, char **argv)
{
    g_reg = byol_test_registry();
    g_be = byol_test_backend(g_reg, "blas", 1);
    if (byol_st_read(byol_test_fixture("optim_steps.safetensors"), &g_fx) != BYOL_OK) {
        fprintf(stderr, "test_optim: %s\n", byol_last_error());
        return 2;
    }
    static const struct byol_test_case cases[] = {
        {"fixture_net", test_fixture_net, 0},
        {"torch_parity", test_torch_parity, 0},
        {"lr_schedule", test_lr_schedule, 0},
        {"parse", test_parse, 0},
        {"validation", test_validation, 0},
        {"state_accessors", test_state_accessors, 0},
        {"resume", test_resume, 0},
        {"lars_zero_norms", test_lars_zero_norms, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "optim", cases);
    byol_st_free(g_fx);
    byol_backend_free(g_be);
    byol_registry_free(g_reg);
    return rc;
}
