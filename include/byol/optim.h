/* Optimizers and schedules over a network's flat parameter buffer: Adam, AdamW, SGD (with
 * momentum / Nesterov) and LARS, with a constant or linear-warmup + cosine learning rate. The
 * element-wise updates run on the backend's fused kernels; LARS adds per-tensor trust ratios.
 *
 * The updates, at step t (counting from 1) with learning rate lr = byol_optim_lr_at(c, t - 1):
 *  - Adam / AdamW: torch.optim.Adam / AdamW (1.13, single-tensor path) over the whole flat
 *    parameter array in one byol_backend_adam call: Adam adds weight_decay * p to g (L2),
 *    AdamW multiplies p by 1 - lr * weight_decay first (decoupled).
 *  - SGD: torch.optim.SGD with dampening 0: d = g + wd * p; b = d on the first step (the
 *    buffer is created from the gradient), b = momentum * b + d after; p -= lr * b, or with
 *    Nesterov p -= lr * (d + momentum * b). Momentum 0 keeps no buffer.
 *  - LARS (You et al. 2017 as BYOL and SimCLR use it), for each parameter tensor:
 *      d = g + wd * p,  trust = eta * ||p|| / ||d|| when both norms are > 0, else 1,
 *      v = momentum * v + lr * trust * d   (v starts at 0),
 *      p -= v,   or with Nesterov  p -= momentum * v + lr * trust * d.
 *    Every 1-d parameter (biases, batch-norm weight and bias) is excluded from both weight
 *    decay and adaptation: d = g, trust = 1. Norms are accumulated in double; eta is
 *    trust_coefficient. */
#ifndef BYOL_OPTIM_H
#define BYOL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "byol/backend.h"
#include "byol/net.h"

#ifdef __cplusplus
extern "C" {
#endif

enum byol_optim_kind {
    BYOL_OPTIM_ADAM = 0,
    BYOL_OPTIM_ADAMW = 1,
    BYOL_OPTIM_SGD = 2,
    BYOL_OPTIM_LARS = 3,
};

enum byol_lr_schedule {
    BYOL_LR_CONSTANT = 0, /* lr (after the warmup, if any) */
    BYOL_LR_COSINE = 1,   /* after the warmup, cosine from lr down to 0 at total_steps */
};

struct byol_optim_config {
    enum byol_optim_kind kind;
    double lr;           /* 3e-4 */
    double beta1, beta2; /* 0.9, 0.999 (Adam, AdamW) */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 (AdamW: PyTorch's default is 1e-2; we keep what the config says) */
    double momentum;     /* 0.9 (SGD, LARS); SGD with 0 keeps no momentum buffer */
    int nesterov;        /* SGD, LARS */
    double trust_coefficient; /* LARS: 1e-3 */
    enum byol_lr_schedule lr_schedule;
    int64_t warmup_steps; /* 0: no warmup */
    int64_t total_steps;  /* cosine only: must exceed warmup_steps */
};

/* Defaults as above (Adam, lr 3e-4, constant). */
BYOL_API void byol_optim_config_default(struct byol_optim_config *c);

/* Parse "adam" | "adamw" | "sgd" | "lars" and "constant" | "cosine". Unknown or NULL names fail
 * with BYOL_ERR_INVALID and a message naming the setting (train.optimizer, train.lr_schedule)
 * and the known values. */
BYOL_API byol_status byol_optim_kind_parse(const char *s, enum byol_optim_kind *out);
BYOL_API byol_status byol_lr_schedule_parse(const char *s, enum byol_lr_schedule *out);

struct byol_optim;

/* An optimizer for every parameter (role BYOL_ROLE_PARAM) of a built `net`; the backend and
 * the net are borrowed and must outlive it, and `c` is copied. State buffers start at zero.
 * Fails with BYOL_ERR_INVALID (the message names the train.* setting) on out-of-range
 * hyper-parameters, or when the net has no parameters. byol_optim_free(NULL) is a no-op. */
BYOL_API byol_status byol_optim_create(struct byol_backend *be, struct byol_net *net,
                                       const struct byol_optim_config *c,
                                       struct byol_optim **out);
BYOL_API void byol_optim_free(struct byol_optim *opt);

/* The learning rate that step `step` (counting from 0) uses; w = warmup_steps, T = total_steps:
 *   step < w:               lr * (step + 1) / w          (linear warmup from 0)
 *   constant, step >= w:    lr
 *   cosine, w <= step < T:  lr * 0.5 * (1 + cos(pi * (step - w) / (T - w)))
 *   cosine, step >= T:      0 */
BYOL_API double byol_optim_lr_at(const struct byol_optim_config *c, int64_t step);

/* Apply one update from the net's gradients, at the learning rate of the current step
 * (lr_at(steps_done)), then count the step. Does not zero the gradients. Adam's bias
 * corrections use t = steps_done + 1; SGD treats steps_done == 0 as torch's first step (the
 * momentum buffer is set from the gradient). After restoring state from a checkpoint, set
 * steps_done to the checkpoint's step. */
BYOL_API byol_status byol_optim_step(struct byol_optim *opt);
BYOL_API int64_t byol_optim_steps_done(const struct byol_optim *opt);
BYOL_API void byol_optim_set_steps_done(struct byol_optim *opt, int64_t steps);

/* Optimizer state for checkpoints: named flat buffers, each byol_net_num_params floats in
 * the net's flat parameter order (a parameter's slice starts at p->data - byol_net_params):
 * Adam / AdamW "exp_avg", "exp_avg_sq"; SGD with momentum and LARS "momentum_buffer"; plain
 * SGD none. Owned by the optimizer; write into them to restore. Out of range: NULL. */
BYOL_API size_t byol_optim_state_count(const struct byol_optim *opt);
BYOL_API const char *byol_optim_state_name(const struct byol_optim *opt, size_t i);
BYOL_API float *byol_optim_state_data(struct byol_optim *opt, size_t i);

#ifdef __cplusplus
}
#endif
#endif
