/* The collectives that data-parallel training uses inside the core (core/nn/dist.c). Every
 * process of the run must make the same calls in the same order with the same sizes; in a run
 * of one process each is a no-op. Not installed. */
#ifndef BYOL_CORE_DIST_INTERNAL_H
#define BYOL_CORE_DIST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/backend.h"
#include "byol/dist.h"

/* buf[i] becomes the sum of buf[i] over every process, in place, in fixed-size buckets (one
 * collective per bucket, not per tensor). */
byol_status dist_sum_f32(float *buf, size_t n);
byol_status dist_sum_f64(double *buf, size_t n);
/* Rank 0's `bytes` bytes at buf to every process. */
byol_status dist_broadcast(void *buf, size_t bytes);
/* *any = 1 when `flag` is nonzero on any process: a decision every process takes alike. */
byol_status dist_any(int flag, int *any);
/* *same = 1 when every process passed the same value. */
byol_status dist_same_u64(uint64_t value, int *same);

/* SyncBatchNorm's reduction for struct byol_op_desc.bn_sync (sum_f64 over every process),
 * or NULL in a run of one process. Lives as long as the library. */
const struct byol_allreduce *dist_bn_sync(void);

#endif
