/* Checks shared by test_learner.c and test_multicrop.c (learner_check.h). */
#include "learner_check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Learners. ---- */

byol_status lc_learner_from_text(struct byol_backend *be, struct byol_registry *reg,
                                 const char *text, const char *config_name, int local_crops,
                                 int local_size, struct byol_config **cfg,
                                 struct byol_learner **out)
{
    struct byol_learner_config c;
    byol_learner_config_default(&c);
    CU_ASSERT_EQUAL(c.local_crops, 0);
    byol_status st = byol_config_parse(text, config_name, cfg);
    if (st != BYOL_OK)
        return st;
    const struct byol_settings *root = byol_config_root(*cfg);
    st = byol_learner_config_read(&c, byol_settings_child(root, "model"),
                                  byol_settings_child(root, "train"));
    c.local_crops = local_crops;
    c.local_size = local_size;
    if (st == BYOL_OK)
        st = byol_learner_create(be, reg, &c, out);
    return st;
}

void lc_detinit(struct byol_learner *l)
{
    struct byol_net *online = byol_learner_online(l), *target = byol_learner_target(l);
    char name[512];
    for (size_t i = 0; i < byol_net_param_count(online); i++) {
        const struct byol_param *p = byol_net_param_at(online, i);
        lc_state_name(name, sizeof name, 0, p->name);
        byol_test_detinit(name, p->dims, p->ndim, p->data);
    }
    if (!target)
        return;
    memcpy(byol_net_params(target), byol_net_params(online),
           byol_net_num_params(target) * sizeof(float));
    memcpy(byol_net_buffers(target), byol_net_buffers(online),
           byol_net_num_buffers(target) * sizeof(float));
}

struct byol_learner *lc_fixture_learner(struct byol_backend *be, struct byol_registry *reg,
                                        const struct byol_st_file *f, const char *config_name,
                                        int local_crops, int local_size, struct byol_config **cfg)
{
    const char *text = byol_st_metadata(f, "config");
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    struct byol_learner *l = NULL;
    BYOL_CHECK_OK(
        lc_learner_from_text(be, reg, text, config_name, local_crops, local_size, cfg, &l));
    lc_detinit(l);
    return l;
}

/* ---- Fixture readers. ---- */

struct byol_st_file *lc_open_fixture(const char *file)
{
    struct byol_st_file *f = NULL;
    BYOL_CHECK_OK(byol_st_read(byol_test_fixture(file), &f));
    return f;
}

float *lc_fx_floats(const struct byol_st_file *f, const char *name, size_t *numel)
{
    const struct byol_st_tensor *t = byol_st_find(f, name);
    if (!t)
        return NULL;
    CU_ASSERT_EQUAL_FATAL(t->dtype, BYOL_ST_F32);
    float *p = malloc(t->nbytes + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memcpy(p, t->data, t->nbytes);
    if (numel)
        *numel = t->numel;
    return p;
}

double *lc_fx_doubles(const struct byol_st_file *f, const char *name, size_t numel, int f32_too)
{
    const struct byol_st_tensor *t = byol_st_find(f, name);
    if (!t || t->numel != numel ||
        (t->dtype != BYOL_ST_F64 && !(f32_too && t->dtype == BYOL_ST_F32))) {
        fprintf(stderr, "\n  fixture tensor %s is missing or malformed\n", name);
        CU_FAIL_FATAL("fixture tensor missing or malformed");
    }
    double *d = malloc(numel * sizeof *d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < numel; i++) {
        if (t->dtype == BYOL_ST_F64) {
            memcpy(&d[i], (const char *)t->data + i * 8, 8);
        } else {
            float v;
            memcpy(&v, (const char *)t->data + i * 4, 4);
            d[i] = v;
        }
    }
    return d;
}

int64_t lc_st_i64(const struct byol_st_tensor *t)
{
    int64_t v;
    memcpy(&v, t->data, sizeof v);
    return v;
}

void lc_state_name(char *buf, size_t size, int target, const char *name)
{
    const char *owner = target ? "target_encoder" : "online_encoder";
    if (!strncmp(name, "projector.", 10))
        snprintf(buf, size, "%s.%s", owner, name);
    else if (!strncmp(name, "predictor.", 10))
        snprintf(buf, size, "online_%s", name);
    else
        snprintf(buf, size, "%s.net.%s", owner, name);
}

/* ---- Comparisons. ---- */

int lc_same_floats(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

void lc_drift_rtols(const double drift[3], double rtol[3])
{
    for (int k = 0; k < 3; k++)
        rtol[k] = fmax(RTOL_FLOOR, DRIFT_FACTOR * drift[k]);
}

void lc_check_loss(const char *what, double got, double ref, double rtol)
{
    int ok = fabs(got - ref) <= rtol * fabs(ref);
    printf("  %-48s %.9g vs PyTorch %.9g%s\n", what, got, ref, ok ? "" : "  <-- FAIL");
    CU_ASSERT(ok);
}

int lc_grad_close(const struct byol_st_file *f, const char *name, const float *grad, size_t numel,
                  double rtol)
{
    char key[600];
    snprintf(key, sizeof key, "grad/%s", name);
    size_t n = 0;
    float *ref = lc_fx_floats(f, key, &n);
    if (!ref)
        return 0;
    CU_ASSERT_EQUAL_FATAL(n, numel);
    CU_ASSERT(byol_test_close(key, grad, ref, n, ATOL_GRAD, rtol));
    free(ref);
    return 1;
}

void lc_check_grads(struct byol_learner *l, const struct byol_st_file *f, lc_grad_check *check,
                    double rtol, size_t min_compared)
{
    struct byol_net *net = byol_learner_online(l);
    char name[512];
    size_t compared = 0;
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        if (p->role != BYOL_ROLE_PARAM)
            continue;
        lc_state_name(name, sizeof name, 0, p->name);
        if (check(f, name, p->grad, p->numel, rtol)) {
            compared++;
            continue;
        }
        int zero = 1;
        for (size_t k = 0; k < p->numel; k++)
            zero &= p->grad[k] == 0.0f;
        printf("  grad/%-43s no gradient in PyTorch: %s\n", name, zero ? "zero here" : "NONZERO");
        CU_ASSERT(zero);
    }
    CU_ASSERT(compared >= min_compared);
}

void lc_check_state(struct byol_learner *l, const struct byol_st_file *f, const char *group,
                    double rtol, const char *dir)
{
    const char *path = byol_test_path(dir, "state.safetensors");
    BYOL_CHECK_OK(byol_learner_save_state(l, path, 0));
    struct byol_st_file *s = NULL;
    BYOL_CHECK_OK(byol_st_read(path, &s));
    char key[600];
    size_t expected = 0, glen = strlen(group);
    for (size_t i = 0; i < byol_st_count(f); i++) {
        const char *n = byol_st_at(f, i)->name;
        expected += !strncmp(n, group, glen) && n[glen] == '/';
    }
    CU_ASSERT_EQUAL(byol_st_count(s), expected);
    for (size_t i = 0; i < byol_st_count(s); i++) {
        const struct byol_st_tensor *t = byol_st_at(s, i);
        snprintf(key, sizeof key, "%s/%s", group, t->name);
        const struct byol_st_tensor *r = byol_st_find(f, key);
        if (!r)
            printf("  %s: not in the PyTorch state\n", t->name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL_FATAL(r->dtype, t->dtype);
        CU_ASSERT_EQUAL_FATAL(r->numel, t->numel);
        if (t->dtype == BYOL_ST_I64) {
            if (lc_st_i64(t) != lc_st_i64(r))
                printf("  %s: %lld vs PyTorch %lld\n", key, (long long)lc_st_i64(t),
                       (long long)lc_st_i64(r));
            CU_ASSERT_EQUAL(lc_st_i64(t), lc_st_i64(r));
            continue;
        }
        float *got = lc_fx_floats(s, t->name, NULL), *ref = lc_fx_floats(f, key, NULL);
        CU_ASSERT(byol_test_close(key, got, ref, t->numel, ATOL_STATE, rtol));
        free(got);
        free(ref);
    }
    byol_st_free(s);
    unlink(path);
}

double lc_check_projection_std(struct byol_learner *l, const char *projection)
{
    struct byol_net *online = byol_learner_online(l);
    struct byol_shape sh;
    BYOL_CHECK_OK(byol_net_output_shape(online, projection, &sh));
    float *proj = malloc(byol_shape_numel(sh) * sizeof *proj);
    CU_ASSERT_PTR_NOT_NULL_FATAL(proj);
    BYOL_CHECK_OK(byol_net_read_output(online, projection, proj));
    double want = byol_projection_std(proj, sh.n, (int)(byol_shape_numel(sh) / (size_t)sh.n));
    printf("  projection std of %s: %.6f over %d rows\n", projection, want, sh.n);
    CU_ASSERT_DOUBLE_EQUAL(byol_learner_projection_std(l), want, 1e-15);
    free(proj);
    return want;
}
