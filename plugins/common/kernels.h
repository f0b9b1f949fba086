/* The kernels that backend-blas and backend-onednn share, over plain float32 arrays: the fused
 * parameter updates (update.c), which match PyTorch bit for bit, and the grouped softmax's
 * backward (softmax.c). Each runs its own OpenMP loop on `threads` threads. */
#ifndef BYOL_PLUGIN_KERNELS_H
#define BYOL_PLUGIN_KERNELS_H

#include <stddef.h>

#include "byol/backend.h"

/* softmax.c: dx (=, or += with accumulate) from dy and y = softmax(x / temperature) over
 * `rows` runs of `group` values. */
void softmax_backward(float *dx, const float *dy, const float *y, size_t rows, int group,
                      float temperature, int accumulate, int threads);

/* update.c */
void adam_update(float *param, float *m, float *v, const float *grad, size_t n,
                 const struct byol_adam_hparams *h, int threads);
void sgd_update(float *param, float *momentum_buf, const float *grad, size_t n,
                const struct byol_sgd_hparams *h, int threads);
void ema_update(float *target, const float *online, size_t n, double tau, int threads);

#endif
