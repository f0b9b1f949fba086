/* Evaluation of BYOL representations: kNN and a linear probe on frozen features of a labelled
 * train/test pair (the config's eval group), the deterministic eval transform, embedding a
 * whole dataset through the learner, and a .npy writer (byolctl embed / eval). */
#ifndef BYOL_EVAL_H
#define BYOL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_settings;
struct byol_registry;
struct byol_learner;
struct byol_dataset;
struct byol_augment_pipeline;
struct byol_augment_pool;

/* ---- the pure pieces ----------------------------------------------------------------- */

/* The largest kNN k and the most classes the classifiers take. */
#define BYOL_KNN_MAX_K 1000
#define BYOL_EVAL_MAX_CLASSES 100000

/* Weighted kNN (Wu et al. 2018, the usual SSL monitor). Features are rows of `dim` floats
 * (train: n_train x dim, test: n_test x dim), each L2-normalised on a copy (a zero row stays
 * zero); similarity is the cosine. Each test row takes its k most similar train rows (equal
 * similarities: the lower train index first), each voting for its label with weight
 * exp(sim / temperature); the class with the largest total wins (equal totals: the lower
 * class). pred[i] in [0, n_classes). Labels must lie in [0, n_classes); 1 <= k <= n_train,
 * k <= BYOL_KNN_MAX_K, temperature > 0. The similarities are computed with OpenBLAS sgemm
 * in blocks of test x train rows (never n_test x n_train at once), the blocks of test rows
 * shared out among as many threads as OpenBLAS has (each calling a one-thread sgemm; the
 * answer does not depend on the thread count). BYOL_ERR_INVALID for bad arguments,
 * BYOL_ERR_NOMEM. */
BYOL_API byol_status byol_knn_classify(const float *train, const int *train_labels, size_t n_train,
                                       const float *test, size_t n_test, int dim, int n_classes,
                                       int k, double temperature, int *pred);

/* The linear probe's fixed hyperparameters, never tuned on a test split: the L2 penalty on the
 * weights (not the bias) of the mean cross-entropy, i.e. scikit-learn's LogisticRegression
 * with C = 1 / (l2 * n_train), and the L-BFGS budget. 1e-3 was picked on a 50k / 10k split of
 * Fashion-MNIST's training images (the test images unused): there L-BFGS reaches the optimum
 * (max |gradient| ~1e-4) well within the budget (about 250 iterations without the
 * preconditioner, 60-100 with it), so the result is the objective's minimiser and not an
 * artefact of stopping early, as it would be with a weaker penalty. */
#define BYOL_PROBE_L2 1e-3
#define BYOL_PROBE_MAX_ITERATIONS 300
#define BYOL_PROBE_TOLERANCE 1e-4

struct byol_probe_options {
    double l2;          /* >= 0: loss = mean CE + l2 / 2 * ||W||^2 */
    int max_iterations; /* >= 1: L-BFGS iterations */
    double tolerance;   /* >= 0: stop when max |gradient| <= tolerance */
};
BYOL_API void byol_probe_options_default(struct byol_probe_options *o);

/* What the probe's optimisation did. */
struct byol_probe_info {
    int iterations;
    double loss;     /* the final training objective */
    double grad_max; /* max |gradient| at the end */
};

/* Multinomial logistic regression (softmax, weights + bias) on features standardised with the
 * train split's per-feature mean and std (std of 0: scale 1, as scikit-learn's StandardScaler),
 * trained by full-batch L-BFGS (history 10, backtracking Armijo line search) from zero
 * weights, its initial inverse Hessian scaled from (I + C / 3)^-1, C the covariance of the
 * standardised features (of up to 2 x dim evenly spaced rows; not for dim > 8192 or dim >
 * n_train / 4), which takes correlated features to the same optimum in a fraction of the
 * iterations. The passes over the rows are shared out among as many threads as OpenBLAS has;
 * the result is deterministic for a given thread count (other counts sum in another order,
 * which moves the optimum found by float rounding only). The test rows are only scored.
 * pred (n_test) gets
 * each test row's argmax class (ties: the lower class); proba (n_test x n_classes, optional)
 * the softmax probabilities; info (optional) the optimisation's summary. o NULL: the
 * defaults. Labels in [0, n_classes), n_classes >= 2. BYOL_ERR_INVALID, BYOL_ERR_NOMEM. */
BYOL_API byol_status byol_linear_probe(const float *train, const int *train_labels, size_t n_train,
                                       const float *test, size_t n_test, int dim, int n_classes,
                                       const struct byol_probe_options *o, int *pred, float *proba,
                                       struct byol_probe_info *info);

/* The effective rank (Roy & Vetterli 2007) of n rows of `dim` floats: exp of the entropy of
 * the singular values of the centred matrix, normalised to sum 1; between 1 and min(rows - 1,
 * dim) (0 when every row is the same). With max_rows > 0 and n > max_rows it uses max_rows
 * evenly spaced rows (row i * n / max_rows). The singular values are the square roots of the
 * eigenvalues of the smaller of the Gram matrix and the covariance, in double, from LAPACK's
 * dsyevd (OpenBLAS's); eigenvalues below max(rows, dim) x DBL_EPSILON x the largest are
 * rounding and count as 0. BYOL_ERR_INVALID, BYOL_ERR_NOMEM, BYOL_ERR_NONFINITE. */
#define BYOL_ERANK_MAX_ROWS 1024
BYOL_API byol_status byol_effective_rank(const float *x, size_t n, int dim, size_t max_rows,
                                         double *out);

/* The fraction of pred[i] == labels[i] (0 for n = 0). */
BYOL_API double byol_eval_accuracy(const int *pred, const int *labels, size_t n);

/* Write a float32 array ('<f4', C order) of shape dims[0..ndim-1] (1 <= ndim <= 8) as a NumPy
 * .npy file (format 1.0, or 2.0 when the header needs it), through a temporary file in the
 * same folder renamed into place, so `path` is never left half written. BYOL_ERR_IO naming the
 * file. */
BYOL_API byol_status byol_npy_write_f32(const char *path, const float *data, int ndim,
                                        const size_t *dims);
/* Labels as an int64 ('<i8') array of shape (n,), written as byol_npy_write_f32 does. */
BYOL_API byol_status byol_npy_write_labels(const char *path, const int *labels, size_t n);

/* ---- embedding a dataset ------------------------------------------------------------- */

/* The eval transform for `ds`'s images: training's preparation without its randomness.
 * Images with fewer channels than in_channels (1) are replicated first, as the trainer does,
 * so the pipeline takes in_channels x H x W. Then, unless the config's eval.transform (a list
 * of ops, as augment_fn; `()` is the identity) says otherwise: a resize of the shorter side
 * to image_size and a center_crop to image_size (each left out when it would change nothing),
 * and the normalize op that training ends with: the last top-level normalize of augment_fn's
 * list, or of its preset for view 1 (none: no normalisation). The output must be in_channels
 * x image_size x image_size (BYOL_ERR_SHAPE otherwise, naming eval.transform). `root` is the
 * whole config. */
BYOL_API byol_status byol_eval_transform_create(struct byol_registry *reg,
                                                const struct byol_settings *root,
                                                const struct byol_dataset *ds, int in_channels,
                                                int image_size, struct byol_augment_pipeline **out);

/* Every image of `ds`, through `transform` (on `pool`'s threads; NULL: the caller's thread),
 * through byol_learner_embed (the online network in inference mode), in dataset order:
 * embedding (count x byol_learner_embedding_dim) and projection (count x the projection size)
 * may each be NULL. A random op in a user's eval.transform draws from a fixed stream per
 * image (seed 0), so the result is repeatable. */
BYOL_API byol_status byol_eval_embed_dataset(struct byol_learner *l, const struct byol_dataset *ds,
                                             const struct byol_augment_pipeline *transform,
                                             struct byol_augment_pool *pool, float *embedding,
                                             float *projection);

/* The images `byolctl embed --split` names: "train" is eval's train split when the config has
 * an eval group, else the data group's dataset; "test" is eval's test split (an error naming
 * eval.test_images when there is none). Labels are read when the files name them. Relative
 * paths are relative to config_dir. */
BYOL_API byol_status byol_eval_open_split(const struct byol_settings *root, const char *config_dir,
                                          const char *split, int in_channels, int image_size,
                                          struct byol_dataset **out);

/* ---- the evaluator ------------------------------------------------------------------- */

struct byol_evaluator;

/* Reads the config's `eval` group:
 *   format           as data.format ("idx", "cifar", "folder", "npy"; default "idx")
 *   train_images, train_labels, test_images, test_labels
 *                    as data.images / data.labels for each split (labels only for idx and
 *                    npy; cifar and folder bring theirs). Labels are required.
 *   every            int >= 0, default 0: the trainer's kNN monitor period in steps (0: off)
 *   knn_k            int in [1, min(1000, train images)], default 20
 *   knn_temperature  float > 0, default 0.07
 *   probe_l2         float >= 0, default BYOL_PROBE_L2
 *   probe_iterations int >= 1, default BYOL_PROBE_MAX_ITERATIONS
 *   transform        a list of augment ops replacing the default eval transform
 *   baseline         bool, default true: byol_evaluator_run also scores the raw pixels
 *   baseline_cache   bool, default true: keep the baseline's two accuracies in a cache file
 *                    ($XDG_CACHE_HOME/byol-c/baseline-<digest>.txt, else
 *                    $HOME/.cache/byol-c/...), named by a 128-bit digest of everything they
 *                    depend on (both splits' transformed pixels and labels, the kNN's and the
 *                    probe's settings, the cache format), and reuse them next time. An entry is
 *                    used only when its checksum, format, digest and image size check out;
 *                    any other is ignored with a warning, recomputed and rewritten atomically.
 *                    Failing to read or write the cache only costs a warning.
 * The kNN's and the probe's passes run on backend.threads threads.
 * No eval group: *out = NULL and BYOL_OK. Opens both labelled datasets and builds their eval
 * transforms (byol_eval_transform_create) and a pool of backend.threads workers. Relative
 * paths are relative to config_dir. Errors are one line with FILE:LINE and the setting. */
BYOL_API byol_status byol_evaluator_open(const struct byol_settings *root, const char *config_dir,
                                         struct byol_registry *reg, int in_channels, int image_size,
                                         struct byol_evaluator **out);
/* eval.every (0 for NULL). */
BYOL_API int64_t byol_evaluator_every(const struct byol_evaluator *ev);
/* eval.knn_k (0 for NULL). */
BYOL_API int byol_evaluator_knn_k(const struct byol_evaluator *ev);

/* The kNN monitor: features of the train and test splits through byol_learner_embed, kNN
 * top-1 accuracy on test, in [0, 1]. It never computes the raw-pixel baseline. */
BYOL_API byol_status byol_evaluator_knn(struct byol_evaluator *ev, struct byol_learner *l,
                                        double *top1);
/* byol_evaluator_knn, and (erank not NULL) the effective rank of the train split's features
 * (byol_effective_rank of BYOL_ERANK_MAX_ROWS evenly spaced ones, the representation as the
 * kNN gets it before its L2 normalisation). */
BYOL_API byol_status byol_evaluator_knn_rank(struct byol_evaluator *ev, struct byol_learner *l,
                                             double *top1, double *erank);

struct byol_eval_result {
    double knn_top1, linear_top1; /* in [0, 1] */
    size_t n_train, n_test;
    int dim;        /* feature size */
    double seconds; /* the whole evaluation */
    /* Appended: */
    double embed_seconds, knn_seconds, probe_seconds; /* its parts */
    int knn_k, n_classes;
    int probe_iterations;
    /* Appended: the raw-pixel baseline (eval.baseline): the same kNN and probe on the images
     * the encoder gets (after the eval transform, flattened C x H x W). NAN, NAN, 0, 0 when it
     * was not computed. `seconds` leaves out baseline_seconds. */
    double baseline_knn_top1, baseline_linear_top1; /* in [0, 1] */
    int baseline_dim;                               /* C x H x W */
    double baseline_seconds;
    /* Appended: 1 when the baseline's accuracies came from the cache (eval.baseline_cache). */
    int baseline_cached;
};

/* Features of both splits, then kNN and the linear probe (byol_linear_probe with eval's
 * probe_l2 / probe_iterations); then, with eval.baseline, the same kNN (k, temperature) and
 * probe on both splits' transformed pixels, which takes n_train + n_test images of C x H x W
 * floats of memory at once (read from the cache, with eval.baseline_cache, when an earlier
 * evaluation of the same pixels stored them). */
BYOL_API byol_status byol_evaluator_run(struct byol_evaluator *ev, struct byol_learner *l,
                                        struct byol_eval_result *r);
/* NULL is a no-op. */
BYOL_API void byol_evaluator_free(struct byol_evaluator *ev);

/* ---- progress (appended) --------------------------------------------------------------- */

/* The parts of an evaluation, in the order byol_evaluator_run goes through them: the features
 * of the train split, then of the test split, the kNN, the linear probe; then, with
 * eval.baseline, the transformed pixels of both splits and (unless the cache had them) the kNN
 * and the probe again on those. byol_evaluator_knn reports the first three. Values are ABI:
 * append only. */
enum byol_eval_phase {
    BYOL_EVAL_PHASE_FEATURES = 1, /* the encoder's features of a split: done / total images */
    BYOL_EVAL_PHASE_KNN = 2,      /* the kNN: done 0 at its start, total (test images) at its end */
    BYOL_EVAL_PHASE_PROBE = 3,    /* the linear probe: done of at most total L-BFGS iterations */
    BYOL_EVAL_PHASE_PIXELS = 4,   /* the baseline's transformed pixels of a split: done / total */
};

struct byol_eval_progress {
    enum byol_eval_phase phase;
    int split;    /* FEATURES and PIXELS: 0 the train split, 1 the test split; else -1 */
    int baseline; /* KNN and PROBE: 1 on the raw pixels (eval.baseline), 0 on the features */
    size_t done, total;
    int last;       /* 1 on the phase's last report (the probe often ends before total: it
                     * stops at eval's tolerance) */
    double loss;    /* PROBE: the training objective after `done` iterations; else NAN */
    double seconds; /* since the phase began */
};

typedef void (*byol_eval_progress_fn)(const struct byol_eval_progress *p, void *user);

/* From now on, byol_evaluator_run, byol_evaluator_knn and byol_evaluator_knn_rank report their
 * progress to fn(p, user) (fn NULL: no reports, the default): at the start of each phase (done
 * 0), after each chunk of images or each probe iteration (done never decreases), and once with
 * last = 1 when the phase is over. The calls come from the thread that called the evaluator,
 * before that call returns; p lives for the call only. A failure ends the reports without a
 * last one. Reports change no result. The library prints no progress itself; fn must not call
 * the evaluator. */
BYOL_API void byol_evaluator_set_progress(struct byol_evaluator *ev, byol_eval_progress_fn fn,
                                          void *user);

#ifdef __cplusplus
}
#endif
#endif
