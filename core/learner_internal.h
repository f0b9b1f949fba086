/* The BYOL learner's state, shared by core/learner.c (networks, step, embeddings) and
 * core/learner_state.c (checkpoints with byol-pytorch's state_dict names). */
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
    size_t image_numel; /* C * S * S */
    int embedding_dim;  /* features of the hidden flatten */
    float *images;      /* 2 * batch images: both views, one batch */
    float *predictions; /* 2B x projection_size */
    float *projections; /* 2B x projection_size, the target's */
    float *dpred;       /* 2B x projection_size, the loss gradient */
    float *hidden_out;  /* 2B x embedding_dim, for embed */
};

/* "online_encoder.net.conv1.weight" for the online net's "conv1.weight", and so on: the
 * state_dict name of one parameter, buffer or counter of the online (target = 0) or target
 * (target = 1) network. */
void learner_state_name(char *buf, size_t size, int target, const char *net_name);

#endif
