/* The augmentation pool's own loop, for other batch jobs of the data layer: run fn(ctx, b,
 * scratch) for b = 0 .. n-1 on the pool's threads and the caller's, scratch being that thread's
 * buffer of at least scratch_floats floats. The first failure is returned with its message;
 * the other images still run. Not reentrant: one batch at a time per pool. */
#ifndef BYOL_AUGMENT_POOL_INTERNAL_H
#define BYOL_AUGMENT_POOL_INTERNAL_H

#include <stddef.h>

#include "byol/augment.h"
#include "byol/status.h"

struct byol_augment_pool;

typedef byol_status (*byol_pool_fn)(void *ctx, size_t b, float *scratch);

byol_status byol_augment_pool_run(struct byol_augment_pool *pool, size_t n, size_t scratch_floats,
                                  byol_pool_fn fn, void *ctx);

/* The stream of image `index` of the batch of `step`, view `view` (1 or 2): the one key every
 * augmentation path uses (include/byol/augment.h, BYOL_AUGMENT_STREAM). */
static inline void byol_augment_rng(struct byol_rng *rng, uint64_t seed, uint64_t step,
                                    size_t index, int view)
{
    byol_rng_init(rng, seed,
                  byol_rng_stream_id(step, (uint64_t)index, (uint64_t)view, BYOL_AUGMENT_STREAM));
}

#endif
