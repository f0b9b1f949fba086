/* Optimizers and learning-rate schedules (include/byol/optim.h): Adam, AdamW and SGD through the
 * backend's fused kernels over the flat parameter array, LARS as a per-tensor loop here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "byol/optim.h"
#include "byol/status.h"

#define OPTIM_MAX_STATES 2

struct byol_optim {
    struct byol_backend *be;
    struct byol_net *net;
    struct byol_optim_config cfg;
    int64_t steps_done;
    size_t n; /* byol_net_num_params */
    size_t n_states;
    const char *state_names[OPTIM_MAX_STATES];
    float *states[OPTIM_MAX_STATES]; /* each n floats */
};

static const char *const kind_names[] = {"adam", "adamw", "sgd", "lars"};
static const char *const schedule_names[] = {"constant", "cosine"};

void byol_optim_config_default(struct byol_optim_config *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->kind = BYOL_OPTIM_ADAM;
    c->lr = 3e-4;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.0;
    c->momentum = 0.9;
    c->nesterov = 0;
    c->trust_coefficient = 1e-3;
    c->lr_schedule = BYOL_LR_CONSTANT;
    c->warmup_steps = 0;
    c->total_steps = 0;
}

/* Index of `s` in `names`, or -1. */
static int lookup(const char *s, const char *const *names, int count)
{
    for (int i = 0; s && i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

byol_status byol_optim_kind_parse(const char *s, enum byol_optim_kind *out)
{
    int i = lookup(s, kind_names, 4);
    if (i < 0)
        return byol_error(BYOL_ERR_INVALID,
                          "train.optimizer: unknown optimizer '%s' (known: adam, adamw, sgd, lars)",
                          s ? s : "(null)");
    if (out)
        *out = (enum byol_optim_kind)i;
    return BYOL_OK;
}

byol_status byol_lr_schedule_parse(const char *s, enum byol_lr_schedule *out)
{
    int i = lookup(s, schedule_names, 2);
    if (i < 0)
        return byol_error(BYOL_ERR_INVALID,
                          "train.lr_schedule: unknown schedule '%s' (known: constant, cosine)",
                          s ? s : "(null)");
    if (out)
        *out = (enum byol_lr_schedule)i;
    return BYOL_OK;
}

double byol_optim_lr_at(const struct byol_optim_config *c, int64_t step)
{
    if (!c || step < 0)
        return 0.0;
    int64_t w = c->warmup_steps > 0 ? c->warmup_steps : 0;
    if (step < w)
        return c->lr * (double)(step + 1) / (double)w;
    if (c->lr_schedule == BYOL_LR_CONSTANT)
        return c->lr;
    if (step >= c->total_steps || c->total_steps <= w)
        return 0.0;
    double progress = (double)(step - w) / (double)(c->total_steps - w);
    return c->lr * 0.5 * (1.0 + cos(M_PI * progress));
}

/* ---- Validation. ----------------------------------------------------------------------- */

/* 1 when lo <= x < hi (NaN fails). */
static int in_range(double x, double lo, double hi)
{
    return x >= lo && x < hi;
}

static byol_status check_common(const struct byol_optim_config *c)
{
    if ((unsigned)c->kind > BYOL_OPTIM_LARS)
        return byol_error(BYOL_ERR_INVALID, "train.optimizer: unknown optimizer kind %d",
                          (int)c->kind);
    if ((unsigned)c->lr_schedule > BYOL_LR_COSINE)
        return byol_error(BYOL_ERR_INVALID, "train.lr_schedule: unknown schedule kind %d",
                          (int)c->lr_schedule);
    if (!in_range(c->lr, 0.0, INFINITY))
        return byol_error(BYOL_ERR_INVALID, "train.lr: %g is not a finite value >= 0", c->lr);
    if (!in_range(c->weight_decay, 0.0, INFINITY))
        return byol_error(BYOL_ERR_INVALID, "train.weight_decay: %g is not a finite value >= 0",
                          c->weight_decay);
    if (c->warmup_steps < 0)
        return byol_error(BYOL_ERR_INVALID, "train.warmup_steps: %lld is negative",
                          (long long)c->warmup_steps);
    if (c->lr_schedule == BYOL_LR_COSINE && c->total_steps <= c->warmup_steps)
        return byol_error(BYOL_ERR_INVALID,
                          "train.steps: %lld must exceed train.warmup_steps (%lld) for the "
                          "cosine schedule",
                          (long long)c->total_steps, (long long)c->warmup_steps);
    return BYOL_OK;
}

static byol_status check_kind(const struct byol_optim_config *c)
{
    if (c->kind == BYOL_OPTIM_ADAM || c->kind == BYOL_OPTIM_ADAMW) {
        if (!in_range(c->beta1, 0.0, 1.0) || !in_range(c->beta2, 0.0, 1.0))
            return byol_error(BYOL_ERR_INVALID, "train.betas: (%g, %g) must lie in [0, 1)",
                              c->beta1, c->beta2);
        if (!in_range(c->eps, 0.0, INFINITY))
            return byol_error(BYOL_ERR_INVALID, "train.eps: %g is not a finite value >= 0", c->eps);
        return BYOL_OK;
    }
    if (!in_range(c->momentum, 0.0, 1.0))
        return byol_error(BYOL_ERR_INVALID, "train.momentum: %g must lie in [0, 1)", c->momentum);
    if (c->nesterov && c->momentum == 0.0)
        return byol_error(BYOL_ERR_INVALID, "train.nesterov: needs train.momentum > 0");
    if (c->kind == BYOL_OPTIM_LARS &&
        !(c->trust_coefficient > 0.0 && isfinite(c->trust_coefficient)))
        return byol_error(BYOL_ERR_INVALID, "train.trust_coefficient: %g is not a finite value > 0",
                          c->trust_coefficient);
    return BYOL_OK;
}

/* ---- Life cycle. ----------------------------------------------------------------------- */

static byol_status add_state(struct byol_optim *opt, const char *name)
{
    float *buf = calloc(opt->n, sizeof *buf);
    if (!buf)
        return byol_error(BYOL_ERR_NOMEM, "optimizer: out of memory for %s of %zu parameters", name,
                          opt->n);
    opt->state_names[opt->n_states] = name;
    opt->states[opt->n_states++] = buf;
    return BYOL_OK;
}

static byol_status alloc_states(struct byol_optim *opt)
{
    switch (opt->cfg.kind) {
    case BYOL_OPTIM_ADAM:
    case BYOL_OPTIM_ADAMW: {
        byol_status st = add_state(opt, "exp_avg");
        return st != BYOL_OK ? st : add_state(opt, "exp_avg_sq");
    }
    case BYOL_OPTIM_SGD:
        return opt->cfg.momentum != 0.0 ? add_state(opt, "momentum_buffer") : BYOL_OK;
    case BYOL_OPTIM_LARS: return add_state(opt, "momentum_buffer");
    }
    return BYOL_OK;
}

byol_status byol_optim_create(struct byol_backend *be, struct byol_net *net,
                              const struct byol_optim_config *c, struct byol_optim **out)
{
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_optim_create: NULL out");
    *out = NULL;
    if (!be || !net || !c)
        return byol_error(BYOL_ERR_INVALID, "byol_optim_create: NULL %s",
                          !be    ? "backend"
                          : !net ? "net"
                                 : "config");
    byol_status st = check_common(c);
    if (st == BYOL_OK)
        st = check_kind(c);
    if (st != BYOL_OK)
        return st;
    if (byol_net_num_params(net) == 0 || !byol_net_params(net))
        return byol_error(BYOL_ERR_INVALID,
                          "optimizer: the network has no trainable parameters (is it built?)");
    struct byol_optim *opt = calloc(1, sizeof *opt);
    if (!opt)
        return byol_error(BYOL_ERR_NOMEM, "optimizer: out of memory");
    opt->be = be;
    opt->net = net;
    opt->cfg = *c;
    opt->n = byol_net_num_params(net);
    st = alloc_states(opt);
    if (st != BYOL_OK) {
        byol_optim_free(opt);
        return st;
    }
    *out = opt;
    return BYOL_OK;
}

void byol_optim_free(struct byol_optim *opt)
{
    if (!opt)
        return;
    for (size_t i = 0; i < opt->n_states; i++)
        free(opt->states[i]);
    free(opt);
}

/* ---- Steps. ---------------------------------------------------------------------------- */

static byol_status step_adam(struct byol_optim *opt, double lr)
{
    const struct byol_optim_config *c = &opt->cfg;
    struct byol_adam_hparams h = {
        .lr = lr,
        .beta1 = c->beta1,
        .beta2 = c->beta2,
        .eps = c->eps,
        .weight_decay = c->weight_decay,
        .decoupled_weight_decay = c->kind == BYOL_OPTIM_ADAMW,
        .step = opt->steps_done + 1, /* torch increments state["step"] before using it */
    };
    return byol_backend_adam(opt->be, byol_net_params(opt->net), byol_net_grads(opt->net),
                             opt->states[0], opt->states[1], opt->n, &h);
}

static byol_status step_sgd(struct byol_optim *opt, double lr)
{
    const struct byol_optim_config *c = &opt->cfg;
    struct byol_sgd_hparams h = {
        .lr = lr,
        .momentum = c->momentum,
        .weight_decay = c->weight_decay,
        .nesterov = c->nesterov,
        .first_step = opt->steps_done == 0,
    };
    return byol_backend_sgd(opt->be, byol_net_params(opt->net), byol_net_grads(opt->net),
                            opt->n_states ? opt->states[0] : NULL, opt->n, &h);
}

/* LARS's trust ratio for one tensor: eta * ||p|| / ||g + wd p||, or 1 when either is zero. */
static double lars_trust(const float *p, const float *g, size_t n, float wd, double eta)
{
    double pp = 0.0, dd = 0.0;
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        pp += (double)p[i] * (double)p[i];
        dd += (double)d * (double)d;
    }
    return pp > 0.0 && dd > 0.0 ? eta * sqrt(pp) / sqrt(dd) : 1.0;
}

static void lars_tensor(const struct byol_param *prm, float *v, double lr,
                        const struct byol_optim_config *c)
{
    /* 1-d tensors (biases, batch-norm affine) skip both weight decay and adaptation. */
    int excluded = prm->ndim <= 1;
    float wd = excluded ? 0.0f : (float)c->weight_decay;
    double trust =
        excluded ? 1.0 : lars_trust(prm->data, prm->grad, prm->numel, wd, c->trust_coefficient);
    float scaled_lr = (float)(lr * trust), mom = (float)c->momentum;
    float *p = prm->data;
    const float *g = prm->grad;
    for (size_t i = 0; i < prm->numel; i++) {
        float d = g[i] + wd * p[i];
        float step = scaled_lr * d;
        v[i] = mom * v[i] + step;
        p[i] -= c->nesterov ? mom * v[i] + step : v[i];
    }
}

static byol_status step_lars(struct byol_optim *opt, double lr)
{
    const float *base = byol_net_params(opt->net);
    for (size_t i = 0; i < byol_net_param_count(opt->net); i++) {
        const struct byol_param *prm = byol_net_param_at(opt->net, i);
        if (prm->role != BYOL_ROLE_PARAM)
            continue;
        lars_tensor(prm, opt->states[0] + (prm->data - base), lr, &opt->cfg);
    }
    return BYOL_OK;
}

byol_status byol_optim_step(struct byol_optim *opt)
{
    if (!opt)
        return byol_error(BYOL_ERR_INVALID, "byol_optim_step: NULL optimizer");
    double lr = byol_optim_lr_at(&opt->cfg, opt->steps_done);
    byol_status st = BYOL_OK;
    switch (opt->cfg.kind) {
    case BYOL_OPTIM_ADAM:
    case BYOL_OPTIM_ADAMW: st = step_adam(opt, lr); break;
    case BYOL_OPTIM_SGD: st = step_sgd(opt, lr); break;
    case BYOL_OPTIM_LARS: st = step_lars(opt, lr); break;
    }
    if (st != BYOL_OK)
        return byol_error(st, "optimizer %s, step %lld: %s", kind_names[opt->cfg.kind],
                          (long long)opt->steps_done + 1, byol_last_error());
    opt->steps_done++;
    return BYOL_OK;
}

int64_t byol_optim_steps_done(const struct byol_optim *opt)
{
    return opt ? opt->steps_done : 0;
}

void byol_optim_set_steps_done(struct byol_optim *opt, int64_t steps)
{
    if (opt)
        opt->steps_done = steps > 0 ? steps : 0;
}

size_t byol_optim_state_count(const struct byol_optim *opt)
{
    return opt ? opt->n_states : 0;
}

const char *byol_optim_state_name(const struct byol_optim *opt, size_t i)
{
    return opt && i < opt->n_states ? opt->state_names[i] : NULL;
}

float *byol_optim_state_data(struct byol_optim *opt, size_t i)
{
    return opt && i < opt->n_states ? opt->states[i] : NULL;
}
