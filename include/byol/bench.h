/* Training-step throughput: `byolctl bench` builds the learner a config describes, runs a few
 * warm-up steps, then times training steps on synthetic batches (through the config's
 * augmentations unless told not to) and reports images per second,
 * milliseconds per step, effective GFLOP/s from the networks' counted multiply-adds, and the
 * process's peak resident memory. */
#ifndef BYOL_BENCH_H
#define BYOL_BENCH_H

#include <stdint.h>

#include "byol/backend.h"
#include "byol/registry.h"
#include "byol/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_bench_options {
    const struct byol_settings *root; /* the whole config (seed, model, train); borrowed */
    int steps;                        /* timed steps, >= 1 */
    int warmup;                       /* untimed steps first, >= 0 */
    int augment; /* 1: the config's augment_fn / augment_fn2 on raw images, inside the step */
    int profile; /* 1: also fill the per-op profile of the result (adds a clock read per op) */
    /* 1: time the data pipeline alone, no network: both views of train.batch_size images read
     * from the config's data group (relative paths against config_dir) as byolctl run reads
     * them (byol_augment_views_batch on backend.threads threads), `steps` batches after
     * `warmup` ones. images_per_s is then images (two views each) per second. */
    int data_only;
    const char *config_dir;
};

#define BYOL_BENCH_KINDS 16 /* indexed by enum byol_op_kind */
#define BYOL_BENCH_TOP 12
#define BYOL_BENCH_KERNELS 48  /* distinct (op kind, kernels) pairs listed by a profile */
#define BYOL_BENCH_IMPL_LEN 160

/* Where a step's time goes, in milliseconds per step (profile only). */
struct byol_bench_profile {
    double forward_ms[BYOL_BENCH_KINDS];  /* both networks' forwards, by op kind */
    double backward_ms[BYOL_BENCH_KINDS]; /* the online network's backward, by op kind */
    double target_ms;                     /* the target network's layers (included in forward_ms) */
    double optimizer_ms;                  /* byol_learner_optimizer_step */
    double ema_ms;                        /* byol_learner_update_target */
    double augment_ms;                    /* both views' augmentations */
    double zero_grad_ms;
    double other_ms; /* the rest of forward_backward: inputs, outputs, loss */
    struct {
        char name[64]; /* "online layer1.0.conv1" */
        double forward_ms, backward_ms;
        char impl[BYOL_BENCH_IMPL_LEN]; /* what its plan runs (byol_net_layer_describe) */
    } top[BYOL_BENCH_TOP]; /* the slowest layers, slowest first */
    int n_top;
    /* Every layer of both networks, grouped by what runs: the op kind, the plan's kernels
     * ("fwd=jit:avx2 bwd_d=jit:avx2 bwd_w=gemm:jit ...") and how many layers run them, with
     * their time. A kernel name starting "ref" is one of oneDNN's reference kernels. */
    struct {
        int kind;
        char impl[BYOL_BENCH_IMPL_LEN];
        int layers;
        double ms;
    } kernels[BYOL_BENCH_KERNELS];
    int n_kernels;
};

struct byol_bench_result {
    int batch_size; /* images per view: byol-pytorch's batch size */
    int image_size;
    int steps;
    double seconds;      /* all timed steps */
    double images_per_s; /* batch_size x steps / seconds (one view per image) */
    double ms_per_step;  /* mean */
    double ms_min, ms_median;
    /* Counted work of one step: online forward + backward (2x forward) and target forward,
     * both views (2 x batch_size images), 2 FLOP per multiply-add. */
    double gflop_per_step;
    double gflops;       /* gflop_per_step / mean step time */
    double peak_rss_mib; /* getrusage's ru_maxrss of the whole process */
    double loss;         /* of the last step, to show that it trains */
    /* data_only: threads, whether views came from the originals, and decoding's cost */
    int threads, from_originals;
    double decoded_pixels_per_image;
    struct byol_bench_profile profile;
};

/* Build, warm up and time as above. Errors name the setting or the failing step. */
BYOL_API byol_status byol_bench_run(struct byol_backend *be, struct byol_registry *reg,
                                    const struct byol_bench_options *o,
                                    struct byol_bench_result *r);

#ifdef __cplusplus
}
#endif
#endif
