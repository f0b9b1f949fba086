/* The training loop behind `byolctl run`: reads a dataset named by the config's data group,
 * steps a BYOL learner over shuffled batches, reports progress and writes checkpoints with
 * byol-pytorch's state names. */
#ifndef BYOL_TRAINER_H
#define BYOL_TRAINER_H

#include <stdint.h>

#include "byol/backend.h"
#include "byol/registry.h"
#include "byol/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_train_report {
    int64_t step;        /* steps done, 1..total_steps */
    int64_t start_step;  /* steps already done when this run began (> 0 after a resume) */
    int64_t total_steps;
    double loss;         /* of this step */
    double lr;           /* used by this step */
    double tau;          /* EMA decay used after this step (0 without momentum) */
    double images_per_s; /* images (one view each) per second since the start */
    double elapsed_s;
    const char *checkpoint; /* the file written after this step, or NULL */
};

typedef void (*byol_train_progress_fn)(const struct byol_train_report *r, void *user);

struct byol_train_options {
    const struct byol_settings *root; /* the whole config; borrowed */
    const char *config_dir;           /* relative paths in the config are taken from here */
    byol_train_progress_fn progress;  /* (optional) called after every step */
    void *user;
    int resume; /* 1: continue from train.checkpoint_dir/latest.safetensors (must exist) */
};

/* Train as the config says: seed, model, train and data groups. The data group needs
 * format = "idx" with images (and optional labels) files. Both views go through the
 * augment_fn / augment_fn2 pipelines (byol/augment.h; default: the identity), which must turn
 * the data's images into in_channels x image_size x image_size; batch k+1 is loaded and
 * augmented on backend.threads workers while the learner trains on batch k. Checkpoints go to
 * train.checkpoint_dir every train.checkpoint_every steps and at the end as
 * step-<N>.safetensors, and latest.safetensors is replaced atomically each time. */
BYOL_API byol_status byol_train_run(struct byol_backend *be, struct byol_registry *reg,
                                    const struct byol_train_options *o);

/* Everything byol_train_run does before its first step (settings, dataset, networks,
 * weights, init_from), then nothing: the check behind `byolctl check`. */
BYOL_API byol_status byol_train_check(struct byol_backend *be, struct byol_registry *reg,
                                      const struct byol_train_options *o);

#ifdef __cplusplus
}
#endif
#endif
