/* Training and evaluation behind `byolctl run`, `check` and `eval`, and the trainer interface:
 * the loop is a plugin (kind BYOL_PLUGIN_TRAINER) that the core hands a prepared session. */
#ifndef BYOL_TRAINER_H
#define BYOL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "byol/backend.h"
#include "byol/plugin.h"
#include "byol/registry.h"
#include "byol/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_eval_result;   /* byol/eval.h */
struct byol_eval_progress; /* byol/eval.h */

struct byol_train_report {
    int64_t step;       /* steps done, 1..total_steps */
    int64_t start_step; /* steps already done when this run began (> 0 after a resume) */
    int64_t total_steps;
    double loss;         /* of this step */
    double lr;           /* used by this step */
    double tau;          /* EMA decay used after this step (0 without momentum) */
    double images_per_s; /* images (one view each) per second since the start */
    double elapsed_s;
    const char *checkpoint; /* the file written after this step, or NULL */
    double knn_top1;        /* kNN monitor accuracy (eval.every) after this step, or NAN */
    /* With train.on_checkpoint_error = "continue": why this step's checkpoint could not be
     * written (the previous one is intact), else NULL. */
    const char *checkpoint_error;
    /* Appended: the collapse monitor. proj_std: byol_learner_projection_std of this step (NAN
     * when not measured); eff_rank: the representation's effective rank, measured with the
     * kNN monitor (byol_evaluator_knn_rank), else NAN; collapse: the collapse warning when it
     * was given after this step (also logged), else NULL. */
    double proj_std;
    double eff_rank;
    const char *collapse;
};

/* The accuracies of one evaluation of the online encoder's representation. */
struct byol_train_eval_report {
    int64_t step;       /* the learner's steps done when it was evaluated */
    double knn_top1;    /* in [0, 1] */
    double linear_top1; /* in [0, 1]; NAN when only kNN ran */
    int knn_k;
    size_t n_train, n_test;
    int dim;        /* feature size */
    double seconds; /* features, kNN and probe (a raw-pixel baseline not included) */
    const struct byol_eval_result *detail; /* the evaluator's full result; NULL for kNN only */
};

typedef void (*byol_train_progress_fn)(const struct byol_train_report *r, void *user);
typedef void (*byol_train_eval_fn)(const struct byol_train_eval_report *r, void *user);

struct byol_train_options {
    const struct byol_settings *root; /* the whole config; borrowed */
    const char *config_dir;           /* relative paths in the config are taken from here */
    byol_train_progress_fn progress;  /* (optional) called after every step */
    void *user;
    int resume; /* 1: continue from train.checkpoint_dir/latest.safetensors (must exist) */
    byol_train_eval_fn evaluated; /* (optional) called after each linear evaluation */
    /* byol_train_eval: the state to evaluate (NULL: checkpoint_dir/latest; "none": the
     * initial weights, a random-init baseline) */
    const char *checkpoint;
    /* Appended: (optional) the progress of the run's closing evaluation and of byol_train_eval's
     * (api->evaluate), called with `user` (byol_evaluator_set_progress says when); the kNN
     * monitor (eval.every) reports none. */
    void (*eval_progress)(const struct byol_eval_progress *p, void *user);
};

/* Train with the config's trainer (`trainer = "byol"`, the default, or a trainer plugin's name
 * or path; `trainer = { name = ...; <the trainer's own settings> }` also works). The built-in
 * "byol" trainer: the data group's images through the augment_fn / augment_fn2 pipelines
 * (byol/augment.h; default: the identity), which must make in_channels x image_size^2; batch
 * k+1 is loaded and augmented on backend.threads workers while the learner trains on batch k.
 * Checkpoints go to train.checkpoint_dir every train.checkpoint_every steps and at the end as
 * step-<N>.safetensors, and latest.safetensors is replaced atomically each time. With an eval
 * group, the run ends with a kNN and linear-probe evaluation (and a kNN monitor every
 * eval.every steps). */
BYOL_API byol_status byol_train_run(struct byol_backend *be, struct byol_registry *reg,
                                    const struct byol_train_options *o);

/* Everything byol_train_run does before its first step (settings, dataset, networks,
 * weights, init_from, the trainer's own check), then nothing: `byolctl check`. */
BYOL_API byol_status byol_train_check(struct byol_backend *be, struct byol_registry *reg,
                                      const struct byol_train_options *o);

/* Evaluate a trained state (o->checkpoint, else train.checkpoint_dir/latest.safetensors) with
 * the trainer named by eval.trainer (default "linear": kNN and linear probe on the eval
 * group's train/test pair); results go to o->evaluated. */
BYOL_API byol_status byol_train_eval(struct byol_backend *be, struct byol_registry *reg,
                                     const struct byol_train_options *o);

/* `byolctl embed`: what byol_train_eval would evaluate (the same session: settings, encoder
 * weights, o->checkpoint, else checkpoint_dir/latest, "none" the initial weights) embeds every
 * image of one split, through the eval transform, and writes float32 .npy files. */
struct byol_train_embed_request {
    const char *split;      /* "train" or "test" (byol_eval_open_split) */
    const char *out;        /* the representations, N x D */
    const char *projection; /* (optional) the online projections, N x projection_size */
    const char *labels;     /* (optional) the split's labels, int64 (N,) */
    size_t count, dim;      /* set on success: N and D */
};
BYOL_API byol_status byol_train_embed(struct byol_backend *be, struct byol_registry *reg,
                                      const struct byol_train_options *o,
                                      struct byol_train_embed_request *r);

/* ---- Trainers: training loops as plugins --------------------------------------------------
 *
 * A trainer (kind BYOL_PLUGIN_TRAINER) is the loop; the core prepares everything around it
 * (config, data, pipelines, learner, resume, evaluation, checkpoints, metrics, progress) as a
 * session and hands the loop a table of calls on it. The built-in "byol" trainer is
 *
 *     for (int64_t k = api->first_step(s); k < api->total_steps(s); k++) {
 *         const float *v1, *v2;
 *         float loss;
 *         if ((st = api->views(s, k, &v1, &v2)) != BYOL_OK ||
 *             (st = api->forward_backward(s, v1, v2, &loss)) != BYOL_OK ||
 *             (st = api->optimizer_step(s)) != BYOL_OK)
 *             return st;
 *         api->zero_grad(s);
 *         if ((st = api->update_target(s)) != BYOL_OK ||
 *             (st = api->end_step(s, k, loss)) != BYOL_OK)
 *             return st;
 *         if (api->stop_requested(s)) break;
 *     }
 *
 * and "linear" (behind `byolctl eval`) is one api->evaluate call. A plugin changes the loop:
 * plugins/examples/trainer-lazy-target updates the target every N steps. Like the host table,
 * struct byol_train_api only grows at its end. */

struct byol_train_session;

enum byol_trainer_needs {
    /* The data group, the augmentation pipelines and api->views (training). */
    BYOL_TRAINER_NEEDS_DATA = 1u << 0,
    /* A trained state to start from: the options' checkpoint, else checkpoint_dir/latest
     * (evaluation). Without it the learner starts from init_from / --resume / scratch. */
    BYOL_TRAINER_NEEDS_CHECKPOINT = 1u << 1,
};

struct byol_train_api {
    uint32_t abi_version;
    uint32_t struct_size;

    /* The whole config, and the trainer's own group (NULL when `trainer` is a plain name). */
    const struct byol_settings *(*config)(const struct byol_train_session *s);
    const struct byol_settings *(*own_settings)(const struct byol_train_session *s);

    /* Steps already done (after --resume or a checkpoint), train.steps, images per view (in a
     * data-parallel run: this process's slice of the global batch). */
    int64_t (*first_step)(const struct byol_train_session *s);
    int64_t (*total_steps)(const struct byol_train_session *s);
    int (*batch_size)(const struct byol_train_session *s);
    /* The learning rate of step k (warmup and schedule included). */
    double (*lr_at)(const struct byol_train_session *s, int64_t k);

    /* The two augmented views of batch k (batch_size x C x S x S float32 each), valid until
     * the next call; batch k + 1 is prepared in the background meanwhile. Batch k and its
     * augmentations are functions of (seed, k) alone. */
    byol_status (*views)(struct byol_train_session *s, int64_t k, const float **view1,
                         const float **view2);

    /* The learner's step in parts (byol/learner.h). In a data-parallel run forward_backward
     * reports the global batch's loss and optimizer_step sums the gradients over the
     * processes first, so every process must call them alike. */
    byol_status (*forward_backward)(struct byol_train_session *s, const float *view1,
                                    const float *view2, float *loss);
    byol_status (*optimizer_step)(struct byol_train_session *s);
    void (*zero_grad)(struct byol_train_session *s);
    byol_status (*update_target)(struct byol_train_session *s);

    /* After step k: progress report, metrics row, the kNN monitor when due, a checkpoint when
     * due (and after the last step), and the final evaluation after the last step. Every
     * process of a data-parallel run calls it after every step: it is where they agree on a
     * stop (rank 0 writes and evaluates). */
    byol_status (*end_step)(struct byol_train_session *s, int64_t k, double loss);

    /* kNN (and, with `linear`, the linear probe) on the eval group's train/test pair; the
     * report also goes to the options' `evaluated`. Fails when the config has no eval group.
     * In a data-parallel run only rank 0 evaluates; the others get NaN accuracies. */
    byol_status (*evaluate)(struct byol_train_session *s, int linear,
                            struct byol_train_eval_report *out);

    /* Nonzero once SIGINT/SIGTERM asked the run to stop: end the loop after end_step (which
     * then writes a checkpoint). */
    int (*stop_requested)(const struct byol_train_session *s);
};

struct byol_trainer_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name; /* what `trainer = "..."` selects, e.g. "byol" */
    const char *version;
    const char *description;
    uint32_t needs; /* enum byol_trainer_needs */

    /* (optional) Check the trainer's own settings (api->own_settings); reject unknown keys
     * with host->setting_check_keys. Called by both check and run, before run. */
    byol_status (*check)(const struct byol_host_api *host, const struct byol_train_api *api,
                         struct byol_train_session *s);
    /* The loop. Return the first failure's status (with its message set). */
    byol_status (*run)(const struct byol_host_api *host, const struct byol_train_api *api,
                       struct byol_train_session *s);
};

/* The table of calls the core hands to trainers. */
BYOL_API const struct byol_train_api *byol_train_api(void);

/* Ask a running byol_train_run to stop after its current step (with a checkpoint). Safe to
 * call from a signal handler: byolctl calls it on the first SIGINT or SIGTERM. */
BYOL_API void byol_train_request_stop(void);

#ifdef __cplusplus
}
#endif
#endif
