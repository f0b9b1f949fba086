/* The BYOL learner's state, shared by core/learner/learner.c (networks, step, embeddings) and
 * core/learner/learner_state.c (checkpoints with byol-pytorch's state_dict names). */
#ifndef BYOL_CORE_LEARNER_INTERNAL_H
#define BYOL_CORE_LEARNER_INTERNAL_H

#include <stddef.h>

#include "byol/learner.h"

/* Layer names the learner adds around the encoder's (reserved by byol/encoder.h). */
#define LEARNER_INPUT "input"
#define LEARNER_HIDDEN "projector.flatten" /* the flattened hidden layer: the representation */
#define LEARNER_NAME_MAX 256

/* A run of online parameters the optimizer must leave alone: they do not feed the loss, so
 * PyTorch leaves their .grad None and its optimizers skip them (weight decay included). */
struct learner_span {
    size_t offset, numel;
};

struct byol_learner {
    struct byol_backend *be;
    const char *encoder_path; /* the encoder's plugin file, for fault reports */
    struct byol_learner_config cfg;
    char *hidden_layer;                /* the config's hidden_layer, copied */
    char projection[LEARNER_NAME_MAX]; /* the projector's last layer */
    char prediction[LEARNER_NAME_MAX]; /* the predictor's last layer */

    struct byol_net *online; /* input, encoder, hidden flatten, projector, predictor */
    struct byol_net *target; /* input, encoder, hidden flatten, projector; NULL for SimSiam */
    struct byol_optim *opt;
    size_t target_params, target_buffers; /* the prefix of online's flat arrays it mirrors */

    struct learner_span *frozen;
    size_t n_frozen, frozen_numel;
    float *frozen_save; /* frozen_numel x (1 + optimizer states) floats */

    int batch;          /* images per view */
    /* Data parallelism (learner_create_dist): the images per view over every process, which
     * the loss averages over (batch in a run of one process), and whether this learner sums
     * its gradients and loss over the processes. */
    int global_batch;
    int distributed;
    int sync_encoder_bn; /* model.sync_batchnorm */
    size_t image_numel; /* C * S * S */
    int embedding_dim;  /* features of the hidden flatten */
    float *images;      /* 2 * batch images: both views, one batch */
    float *predictions; /* 2B x projection_size */
    float *projections; /* 2B x projection_size, the target's */
    float *dpred;       /* 2B x projection_size, the loss gradient */
    float *hidden_out;  /* 2B x embedding_dim, for embed */

    /* The collapse statistic (byol_learner_projection_std) of the last forward_backward (NAN
     * before the first) and its scratch: 2 x projection_size + 1 doubles. */
    double proj_std;
    double *proj_sums;

    /* Multi-crop (cfg.local_crops = N > 0, else all NULL): the online network at local_size
     * over the online network's parameters, gradients, statistics and counters
     * (byol_net_build_shared), its predictions and their loss gradient (N x B rows of
     * projection_size, local view k of image b at row k * B + b), and one row of scratch for
     * the first of a local row's two gradient terms. */
    struct byol_net *local;
    float *local_pred, *local_dpred, *dterm;
};

/* One process's learner in a data-parallel run of byol_dist_size() > 1 processes: c->batch_size
 * is this process's share of global_batch images per view (at least 1). The loss and its
 * gradient are scaled so that their sums over the processes are those of one process
 * training on the global batch; forward_backward reports that global loss, and
 * optimizer_step first sums the gradients over the processes, so every process takes the
 * same step. The batch norms of the projector and predictor, and with sync_encoder_bn the
 * encoder's, are SyncBatchNorms (statistics over the global batch). Every process must make
 * the same calls in the same order. */
byol_status learner_create_dist(struct byol_backend *be, struct byol_registry *reg,
                                const struct byol_learner_config *c, int global_batch,
                                int sync_encoder_bn, struct byol_learner **out);
/* Rank 0's whole state (parameters, running statistics, batch counters, optimizer state and
 * step) to every process. */
byol_status learner_broadcast(struct byol_learner *l);
/* A 64-bit fingerprint of the trained state (online and target parameters, optimizer
 * state): equal on every process while their weights are. */
uint64_t learner_fingerprint(struct byol_learner *l);

/* "online_encoder.net.conv1.weight" for the online net's "conv1.weight", and so on: the
 * state_dict name of one parameter, buffer or counter of the online (target = 0) or target
 * (target = 1) network. */
void learner_state_name(char *buf, size_t size, int target, const char *net_name);

#endif
