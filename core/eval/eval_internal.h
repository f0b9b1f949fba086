/* What the evaluation files share: the eval group's key check and a split's transformed pixels
 * (core/eval/eval.c, core/eval/eval_data.c); threads and large buffers for the passes over features
 * (core/eval/eval_parallel.c, core/eval/eval_memory.c); the kNN and the probe with a thread count,
 * the probe's standardisation and preconditioner (core/eval/eval_knn.c, core/eval/eval_probe.c,
 * core/eval/eval_standardise.c, core/eval/eval_precond.c); the raw-pixel baseline's cache
 * (core/eval/eval_cache.c). */
#ifndef BYOL_CORE_EVAL_INTERNAL_H
#define BYOL_CORE_EVAL_INTERNAL_H

#include <stdint.h>

#include "byol/eval.h"
#include "byol/settings.h"

/* Check the eval group's keys against its format's (mock is refused: it has no labels) and
 * return the format ("idx" when unset). Errors as "FILE:LINE: eval.KEY: ...". */
byol_status eval_check_group(const struct byol_settings *eval, const char **format);

/* 1 for the formats whose labels come from a separate setting (idx, npy). */
int eval_format_has_label_files(const char *format);

/* The values per image that transform `t` makes (C x H x W). */
size_t eval_transform_numel(const struct byol_augment_pipeline *t);

/* ---- progress reports (core/eval/eval.c) ---- */

/* Where an evaluation reports to (byol_evaluator_set_progress) and the phase under way. A NULL
 * reporter, or one without fn, takes every call and reports nothing. */
struct eval_progress {
    byol_eval_progress_fn fn;
    void *user;
    struct byol_eval_progress p;
    double t0;
};

/* A phase begins: a report with done 0. split -1 for KNN and PROBE. */
void eval_progress_begin(struct eval_progress *r, enum byol_eval_phase phase, int split,
                         int baseline, size_t total);
/* done of the phase's total so far; loss NAN but for the probe. */
void eval_progress_step(struct eval_progress *r, size_t done, double loss);
/* The phase's last report. */
void eval_progress_end(struct eval_progress *r, size_t done, double loss);

/* byol_eval_embed_dataset, reporting the images done after each chunk to r (NULL: none). */
byol_status eval_embed_dataset(struct byol_learner *l, const struct byol_dataset *ds,
                               const struct byol_augment_pipeline *transform,
                               struct byol_augment_pool *pool, float *embedding, float *projection,
                               struct eval_progress *r);

/* Every image of `ds` through `transform` (on `pool`'s threads), in dataset order, into out
 * (count x eval_transform_numel): what byol_eval_embed_dataset gives the network, drawn from
 * the same streams; the images done go to r after each chunk (NULL: no reports).
 * BYOL_ERR_SHAPE when the transform does not take ds's images. */
byol_status eval_transform_dataset(const struct byol_dataset *ds,
                                   const struct byol_augment_pipeline *transform,
                                   struct byol_augment_pool *pool, float *out,
                                   struct eval_progress *r);

/* ---- threads (core/eval/eval_parallel.c) ---- */

#define EVAL_MAX_THREADS 64

/* One part of a pass: part in [0, parts). */
typedef void (*eval_task_fn)(void *user, int part);

/* The threads byol_knn_classify and byol_linear_probe use: OpenBLAS's thread count, as when
 * their products were OpenBLAS's to split (the evaluator passes backend.threads instead). */
int eval_default_threads(void);

/* task(user, part) for every part, each on its own thread (part 0 on the caller's), OpenBLAS
 * held to one thread meanwhile (a process-wide setting, restored at the end). */
void eval_parallel(int parts, eval_task_fn task, void *user);

/* A buffer for a feature matrix, released with free(): one of 4 MiB or more is aligned to and
 * advised onto 2 MiB pages (core/eval/eval_memory.c says why). NULL when out of memory. */
void *eval_alloc(size_t bytes);

/* byol_knn_classify on `threads` threads (at most EVAL_MAX_THREADS). */
byol_status eval_knn_classify(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes, int k,
                              double temperature, int threads, int *pred);

/* byol_linear_probe on `threads` threads. The standardised splits go to work[0] (n_train x
 * dim) and work[1] (n_test x dim), which may be train and test themselves when the caller no
 * longer needs them (the standardisation is then in place); work NULL: buffers of its own.
 * After each L-BFGS iteration, the iterations done and the objective go to r (NULL: none;
 * the caller begins and ends the phase). */
byol_status eval_linear_probe(const float *train, const int *train_labels, size_t n_train,
                              const float *test, size_t n_test, int dim, int n_classes,
                              const struct byol_probe_options *o, int threads, float *const *work,
                              int *pred, float *proba, struct byol_probe_info *info,
                              struct eval_progress *r);

/* The probe's standardisation on `threads` threads: the train rows' per-feature mean and
 * population std (a std of 0 becomes 1, as scikit-learn's StandardScaler), then (x - mean) /
 * std of both splits into the outputs. BYOL_ERR_INVALID when a train feature is not finite. */
byol_status eval_standardise(const float *train, size_t n_train, const float *test, size_t n_test,
                             int d, int threads, float *train_out, float *test_out);

/* ---- the linear probe's preconditioner (core/eval/eval_precond.c) ---- */

/* The probe's preconditioner: P = I + rho * C for the d x c weights (C the covariance of evenly
 * spaced standardised training rows) and rho for each bias (a constant feature of variance 1).
 * Up to scale it is the objective's Hessian l2 * I + b * C (b the softmax's curvature) with
 * rho standing for b / l2, which L-BFGS's own scaling then corrects; started from P^-1, L-BFGS
 * converges in a few dozen iterations where correlated features otherwise cost hundreds. It
 * shapes the search only, never the objective or its minimiser. */
struct eval_precond;

/* 1 when a preconditioner pays for n rows of dim d (the d^3 / 3 factorisation is small next
 * to the passes over n x d values it saves). */
int eval_precond_worth(size_t n, int d);

/* Build it from x (n x d, standardised), rho > 0. *out stays NULL, with BYOL_OK, when the
 * matrix is not positive definite at working precision: the caller then goes without. */
byol_status eval_precond_create(const float *x, size_t n, int d, int c, double rho,
                                struct eval_precond **out);

/* v (d x c weights row-major, then c biases) becomes P^-1 v. */
void eval_precond_apply(const struct eval_precond *p, double *v);

/* NULL is a no-op. */
void eval_precond_free(struct eval_precond *p);

/* ---- the raw-pixel baseline's cache (core/eval/eval_cache.c) ---- */

#define EVAL_HASH_HEX 33 /* a digest as 32 hex digits and a NUL */

/* Everything the baseline's accuracies depend on. */
struct eval_baseline_inputs {
    const float *pixels[2]; /* train, test: n x dim, after the eval transform */
    const int *labels[2];
    size_t n[2];
    int dim, n_classes, knn_k;
    double knn_temperature;
    struct byol_probe_options probe;
};

/* What a cache entry holds. */
struct eval_baseline {
    int dim;
    double knn_top1, linear_top1;
};

/* The digest of the inputs (128 bits, not cryptographic: it tells inputs apart, it does not
 * resist forgery), as 32 hex digits: the entry's name and key. */
void eval_baseline_key(const struct eval_baseline_inputs *in, char out[EVAL_HASH_HEX]);

/* The cache folder, created if missing: $XDG_CACHE_HOME/byol-c, or $HOME/.cache/byol-c. */
byol_status eval_cache_dir(char *out, size_t n);

/* The entry at path for key: 1 and *b when it is whole and for key and dim; 0 when there is
 * none; -1 when it is unreadable or damaged (after a warning naming the file and the fault). */
int eval_cache_read(const char *path, const char *key, int dim, struct eval_baseline *b);

/* Replace the entry at path atomically (byol_file_replace). */
byol_status eval_cache_write(const char *path, const char *key, const struct eval_baseline *b);

#endif
