/* Checks shared by test_learner.c and test_multicrop.c: learners made from config text with
 * detinit parameters, readers of a PyTorch fixture (fixtures/gen_learner.py, gen_multicrop.py),
 * and comparisons of a learner's loss, gradients and saved state against it. A failed check
 * asserts (CUnit) and prints what differs. */
#ifndef BYOL_LEARNER_CHECK_H
#define BYOL_LEARNER_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "byol/learner.h"
#include "testutil.h"

/* Tolerances, relative to max|reference| of each tensor (byol_test_close).
 *
 * Gradients of the first step, RTOL_GRAD: every op matches PyTorch to a few ulps on its own
 * (test_backend_ops), but the order of float32 sums differs, ~sqrt(K) u relative for K terms
 * (u = 6e-8; the largest reductions are the conv weight gradients over N*H*W = 8*16*16 = 2048
 * and the batch-norm statistics), and a dozen layers compound it; batch norm in training mode
 * divides by batch standard deviations, which amplifies differences by up to max|x| / std.
 * Measured: up to 8e-6 (conv1's weight, at the end of the longest chain); a wrong index or a
 * missing term shows as O(1). ATOL_GRAD covers gradients that are zero up to rounding on both
 * sides: a linear bias right before a batch norm, whose effect the normalisation removes
 * (PyTorch's value is noise of ~1e-7).
 *
 * Loss and state after the first and the last step: each step feeds the last one's rounding
 * back in, and how much that grows depends on the case. The fixture measures it: "drift" is
 * how far PyTorch's own float32 run strays from the same run in float64 (max over tensors of
 * max|a - b| / max|b|; 2e-7 .. 3e-6 here). Two float32 implementations that round differently
 * stray about as far from each other, so the tolerance is DRIFT_FACTOR times the drift, with a
 * floor of a few float32 ulps (RTOL_FLOOR; ATOL_STATE absolute); a real error (a wrong tau, a
 * missed running-stat update, an fc that moves) is orders of magnitude larger. */
#define RTOL_GRAD 1e-4
#define ATOL_GRAD 1e-6
#define DRIFT_FACTOR 10.0
#define RTOL_FLOOR 1e-6
#define ATOL_STATE 1e-7

/* ---- Learners. ---- */

/* A learner on be / reg from config text (parsed as file `config_name`, which messages quote)
 * with the multi-crop fields local_crops / local_size (no config setting fills them; 0, 0:
 * off); asserts the defaults have multi-crop off. The config in *cfg; free both. */
byol_status lc_learner_from_text(struct byol_backend *be, struct byol_registry *reg,
                                 const char *text, const char *config_name, int local_crops,
                                 int local_size, struct byol_config **cfg,
                                 struct byol_learner **out);
/* Online parameters from byol_test_detinit by state_dict name; the target (if any) a copy. */
void lc_detinit(struct byol_learner *l);
/* lc_learner_from_text on the fixture's "config" metadata (asserted present), then lc_detinit. */
struct byol_learner *lc_fixture_learner(struct byol_backend *be, struct byol_registry *reg,
                                        const struct byol_st_file *f, const char *config_name,
                                        int local_crops, int local_size, struct byol_config **cfg);

/* ---- Fixture readers. ---- */

/* A fixture under tests/fixtures, read (fatal on failure); byol_st_free it. */
struct byol_st_file *lc_open_fixture(const char *file);
/* A malloc'd copy of an F32 tensor (fatal for another dtype); NULL if absent. */
float *lc_fx_floats(const struct byol_st_file *f, const char *name, size_t *numel);
/* A malloc'd copy of an F64 tensor of `numel` values (also an F32 one if f32_too), as doubles;
 * fatal, naming it, if it is missing or otherwise. */
double *lc_fx_doubles(const struct byol_st_file *f, const char *name, size_t numel, int f32_too);
/* The first value of an I64 tensor. */
int64_t lc_st_i64(const struct byol_st_tensor *t);
/* The state_dict name of a tensor of the online (target = 0) or the target network. */
void lc_state_name(char *buf, size_t size, int target, const char *name);

/* ---- Comparisons. ---- */

/* n floats of a and b bit for bit (memcmp). */
int lc_same_floats(const float *a, const float *b, size_t n);
/* rtol[k] = max(RTOL_FLOOR, DRIFT_FACTOR * drift[k]) for the fixture's three drifts (state
 * after the first step, after the last, loss). */
void lc_drift_rtols(const double drift[3], double rtol[3]);
/* A loss against PyTorch's: |got - ref| <= rtol |ref|; prints both. */
void lc_check_loss(const char *what, double got, double ref, double rtol);
/* One gradient against the fixture's reference for state name `name`: returns 0 (checking
 * nothing) when the fixture has none, else asserts and returns 1. */
typedef int lc_grad_check(const struct byol_st_file *f, const char *name, const float *grad,
                          size_t numel, double rtol);
/* An lc_grad_check: against grad/<name> within ATOL_GRAD + rtol max|ref|. */
int lc_grad_close(const struct byol_st_file *f, const char *name, const float *grad, size_t numel,
                  double rtol);
/* Every online gradient through `check` with rtol; a parameter PyTorch gave none (the fc after
 * the hidden layer) must have an all-zero gradient here; at least min_compared compared. */
void lc_check_grads(struct byol_learner *l, const struct byol_st_file *f, lc_grad_check *check,
                    double rtol, size_t min_compared);
/* The learner's saved state (written to dir/state.safetensors, then removed) against
 * <group>/<name>: the same set of names, dtypes and sizes, I64 counters equal, floats within
 * ATOL_STATE + rtol max|ref|; prints what differs. */
void lc_check_state(struct byol_learner *l, const struct byol_st_file *f, const char *group,
                    double rtol, const char *dir);
/* byol_learner_projection_std(l) against byol_projection_std of the online network's output
 * `projection` (read back, its rows printed), within 1e-15; returns the latter. */
double lc_check_projection_std(struct byol_learner *l, const char *projection);

#endif
