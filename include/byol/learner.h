/* The BYOL learner, numerically equal to byol-pytorch's BYOL module: an online network
 * (encoder -> hidden layer -> projector -> predictor), a target network (an EMA of the online
 * encoder and projector, or the online network itself in SimSiam mode) and the symmetric loss
 * mean(2 - 2cos(pred1, sg(target2)) + 2 - 2cos(pred2, sg(target1))).
 *
 * Network layer names: "input", the encoder's torchvision names, "projector.flatten" (the
 * flattened hidden layer: the representation), "projector.<i>" and "predictor.<i>"; with
 * simplicial embeddings "projector.0.0", "projector.0.1", "projector.1" (the grouped softmax),
 * "projector.2.<i>", nested as in byol-pytorch. State names (safetensors) are byol-pytorch's
 * state_dict names: online_encoder.net.<name>, online_encoder.projector.<i>.*,
 * online_predictor.<i>.*, target_encoder.net.<name>, target_encoder.projector.<i>.*, and BN
 * num_batches_tracked as I64 scalars.
 *
 * Multi-crop (local_crops = N > 0; the local views of SwAV, Caron et al. 2020, and DINO, Caron
 * et al. 2021, as solo-learn adds them to BYOL): each image also has N small views at
 * local_size that only the online network sees, run as one second call of it (the same
 * parameters, batch-norm statistics and counters; its gradients add up with the global views').
 * Targets come from the two global views only. The loss sums, over both targets t and every
 * online view v != t (the other global view and the N local ones),
 * mean_b(2 - 2cos(p_v,b, sg(z_t,b))), times 2 / n_terms with n_terms = 2 (N + 1): DINO's
 * average over its loss terms (its code divides the total by n_loss_terms), times 2 so that
 * N = 0 is exactly the symmetric loss above (and the step bit for bit the two-view one).
 *
 * Where byol-pytorch's behaviour has no C counterpart: its constructor runs one training
 * forward on random images (moving the running statistics); the learner starts with PyTorch's
 * initial running statistics instead. */
#ifndef BYOL_LEARNER_H
#define BYOL_LEARNER_H

#include <stdint.h>

#include "byol/backend.h"
#include "byol/net.h"
#include "byol/optim.h"
#include "byol/registry.h"
#include "byol/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

enum byol_tau_schedule {
    BYOL_TAU_CONSTANT = 0, /* byol-pytorch */
    BYOL_TAU_COSINE = 1,   /* the paper: 1 - (1 - base) * (cos(pi k / K) + 1) / 2 */
};

struct byol_learner_config {
    const char *encoder;         /* "resnet18", ..., "layers", or a path to an encoder .so */
    const struct byol_settings *encoder_settings; /* the model.encoder group; borrowed */
    int in_channels;             /* 3 */
    int image_size;              /* 32 */
    int batch_size;              /* images per view; the networks run 2 * batch_size */
    const char *hidden_layer;    /* a layer name, or NULL to use hidden_index */
    int hidden_index;            /* -2: an index into the encoder's top-level children */
    int projection_size;         /* 256 */
    int projection_hidden_size;  /* 4096 */
    int use_momentum;            /* 1; 0 = SimSiam: no target network */
    double moving_average_decay; /* 0.99 */
    enum byol_tau_schedule tau_schedule;
    int use_simplicial_embeddings; /* 0 */
    int sem_num_simplices;         /* 32 */
    int sem_simplex_dim;           /* 8 */
    double sem_temperature;        /* 0.1 */
    struct byol_optim_config optim;
    uint64_t seed;
    /* Multi-crop (byol_learner_step_views); set by the caller, not read from the config file. */
    int local_crops; /* N local views per image (multi-crop); 0: two global views only */
    int local_size;  /* their side in pixels (1 .. image_size) when local_crops > 0 */
};

/* The largest local_crops the learner takes. */
#define BYOL_LEARNER_LOCAL_CROPS_MAX 16

BYOL_API void byol_learner_config_default(struct byol_learner_config *c);
/* Fill `c` from the config's model and train groups (NULL groups: defaults). Errors carry
 * file:line. The settings must outlive the learner built from `c`. */
BYOL_API byol_status byol_learner_config_read(struct byol_learner_config *c,
                                              const struct byol_settings *model,
                                              const struct byol_settings *train);

struct byol_learner;

/* Build the networks, initialise them (the encoder's scheme, PyTorch defaults elsewhere) and
 * copy the online encoder and projector into the target. Fails with the list of valid names if
 * the hidden layer does not exist, and for batch_size < 2. Borrows `be` and `reg`. With
 * local_crops > 0 it also builds the online network for the local views over the online
 * network's memory. Fails with BYOL_ERR_INVALID naming the field for local_crops outside
 * 0..BYOL_LEARNER_LOCAL_CROPS_MAX or local_size outside 1..image_size, and with a message
 * naming local_size when the encoder does not fit it (BYOL_ERR_SHAPE naming a parameter whose
 * shape depends on the input size, or the layer whose shape cannot be inferred). */
BYOL_API byol_status byol_learner_create(struct byol_backend *be, struct byol_registry *reg,
                                         const struct byol_learner_config *c,
                                         struct byol_learner **out);
BYOL_API void byol_learner_free(struct byol_learner *l);

/* One training step on two views, each batch_size x C x H x W float32 (already augmented and
 * normalised): forward_backward, optimizer step, zero_grad, target update. A learner with
 * local_crops > 0 refuses it (BYOL_ERR_INVALID): its steps need byol_learner_step_views. */
BYOL_API byol_status byol_learner_step(struct byol_learner *l, const float *view1,
                                       const float *view2, float *loss);
/* The parts of a step, for tests and custom loops. Gradients accumulate until zero_grad.
 * The optimizer step leaves alone the parameters that the loss does not reach (the fc after
 * the hidden layer): PyTorch leaves their .grad None, so its optimizers skip them, weight
 * decay included. */
BYOL_API byol_status byol_learner_forward_backward(struct byol_learner *l, const float *view1,
                                                   const float *view2, float *loss);
/* One step with N = cfg.local_crops local views besides the two global ones: `local` holds
 * N x batch_size images of C x local_size x local_size, view-major (local view k of image b at
 * index k * batch_size + b); NULL when local_crops is 0 (then it is not read, and the step is
 * byol_learner_step's, bit for bit). BYOL_ERR_INVALID for local = NULL with local_crops > 0.
 * The order of the networks' calls is the reference's (online on the global views, online on
 * the local views, then the target), so running statistics and counters move once per call.
 * The loss is the multi-crop one of the header comment; byol_learner_projection_std stays
 * over the global views' projections. */
BYOL_API byol_status byol_learner_step_views(struct byol_learner *l, const float *view1,
                                             const float *view2, const float *local, float *loss);
/* The forward and backward of byol_learner_step_views (gradients accumulate until zero_grad). */
BYOL_API byol_status byol_learner_forward_backward_views(struct byol_learner *l, const float *view1,
                                                         const float *view2, const float *local,
                                                         float *loss);
/* Fails with BYOL_ERR_NONFINITE, the parameters untouched, when a gradient (the global one,
 * in a data-parallel run) is NaN or infinite. */
BYOL_API byol_status byol_learner_optimizer_step(struct byol_learner *l);
BYOL_API void byol_learner_zero_grad(struct byol_learner *l);
/* The collapse statistic of the last forward_backward: each online projection of the step
 * (both views: 2 x batch_size rows, over the global batch in a data-parallel run) L2-normalised
 * (F.normalize's eps), the population standard deviation of each of the projection_size
 * dimensions across those rows, averaged over the dimensions. About 1/sqrt(projection_size)
 * when the projections spread over the sphere, 0 when every image gets the same projection.
 * Read from the projections the step computed anyway: it changes nothing in the training.
 * NAN before the first forward_backward (and when a projection is not finite). */
BYOL_API double byol_learner_projection_std(const struct byol_learner *l);
/* The statistic of byol_learner_projection_std for n rows of d floats (n >= 1, d >= 1). */
BYOL_API double byol_projection_std(const float *rows, int n, int d);
/* EMA of the online encoder and projector into the target, with the current tau; a no-op
 * without momentum. */
BYOL_API byol_status byol_learner_update_target(struct byol_learner *l);
/* tau at the current step (cosine schedule over optim.total_steps). */
BYOL_API double byol_learner_tau(const struct byol_learner *l);
BYOL_API int64_t byol_learner_steps_done(const struct byol_learner *l);

/* byol-pytorch's forward(x, return_embedding=True): inference mode, n images of any count
 * >= 1. Either output may be NULL (return_projection=False: pass projection = NULL).
 * embedding: n x embedding_dim, projection: n x projection_size. Runs the online network
 * itself, 2 * batch_size images at a time (inference treats each image on its own, so a short
 * last chunk is zero-padded); it overwrites the activations of the last training forward. */
BYOL_API byol_status byol_learner_embed(struct byol_learner *l, const float *images, int n,
                                        float *projection, float *embedding);
BYOL_API int byol_learner_embedding_dim(const struct byol_learner *l);

/* The networks (borrowed): online = encoder + projector + predictor; target = encoder +
 * projector (NULL without momentum). */
BYOL_API struct byol_net *byol_learner_online(struct byol_learner *l);
BYOL_API struct byol_net *byol_learner_target(struct byol_learner *l);
BYOL_API struct byol_optim *byol_learner_optim(struct byol_learner *l);

/* Model state with byol-pytorch's names. load_state requires every tensor of the learner to be
 * present with its dtype and shape (messages name the tensor and both shapes), and writes
 * nothing unless all of them check out. Other tensors fail, except run state ("rng.*",
 * "run.*", "trainer.*") and "net.*" (byol-pytorch's state_dict names the online encoder twice:
 * as net.* and online_encoder.net.*), which are skipped. save_state writes atomically.
 * `with_optim` adds the optimizer state ("optim.<buffer>.<state name>", e.g.
 * "optim.exp_avg.online_encoder.net.conv1.weight", and the I64 scalar "optim.step"); a file
 * with any "optim.*" tensor must hold all of this optimizer's, and loading it restores the
 * step count, otherwise the optimizer is left as it is. */
BYOL_API byol_status byol_learner_save_state(struct byol_learner *l, const char *path,
                                             int with_optim);
BYOL_API byol_status byol_learner_load_state(struct byol_learner *l, const char *path);
/* save_state, plus string entries in the file's __metadata__: `kv` is NULL or a NULL-terminated
 * list key, value, key, value, ... (e.g. {"config", text, "config_digest", hex, "step", "12",
 * NULL}); copied. "format" is taken (it says "byol-c learner state"); a key given twice or a
 * key without a value fails before anything is written. */
BYOL_API byol_status byol_learner_save_state_meta(struct byol_learner *l, const char *path,
                                                  int with_optim, const char *const *kv);
/* The __metadata__ value of `key` in the safetensors file `path` (any such file, not only
 * learner states), copied into *out for the caller to free; *out = NULL when the file has no
 * such key (a checkpoint from before that key existed). Fails when the file cannot be read or
 * is not valid safetensors. Reads the whole file. */
BYOL_API byol_status byol_state_read_metadata(const char *path, const char *key, char **out);

/* Load torchvision-named encoder weights (model.encoder.weights) into the online encoder (and
 * the target's encoder, so they start equal). Every encoder tensor must be in the file;
 * batch-norm counters are taken when present; other tensors are ignored. */
BYOL_API byol_status byol_learner_load_encoder_weights(struct byol_learner *l, const char *path);

/* The weights of a state file (online and target networks, batch-norm buffers and counters),
 * checked as load_state checks them, with the optimizer left as it is: a checkpoint written
 * under any optimizer loads (evaluation, embeddings, train.init_from). Its "optim.*" tensors
 * are skipped when they are "optim.step" or "optim.<buffer>.<a tensor of this model>"; other
 * tensors fail as in load_state. `step` (may be NULL) gets the file's optim.step, the steps
 * the weights were trained for, or -1 when the file has none. */
BYOL_API byol_status byol_learner_load_weights(struct byol_learner *l, const char *path,
                                               int64_t *step);

#ifdef __cplusplus
}
#endif
#endif
