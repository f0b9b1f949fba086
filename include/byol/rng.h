/* Counter-based random numbers (Philox4x32-10). A stream is a pure function of its
 * (seed, stream id), so any sample's randomness can be recreated without replaying others:
 * that is what makes augmentation independent of thread count and exact after a resume. */
#ifndef BYOL_RNG_H
#define BYOL_RNG_H

#include <stdint.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4]; /* the current block of output */
    int used;        /* words of buf already handed out (4 = refill) */
};

/* Start a stream. Different (seed, stream) pairs give independent sequences. */
BYOL_API void byol_rng_init(struct byol_rng *r, uint64_t seed, uint64_t stream);

/* Derive a stream id from up to four integers, e.g. (step, sample, view, purpose). */
BYOL_API uint64_t byol_rng_stream_id(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

BYOL_API uint32_t byol_rng_u32(struct byol_rng *r);
BYOL_API uint64_t byol_rng_u64(struct byol_rng *r);
/* Uniform in [0, 1) with 24 bits of resolution. */
BYOL_API float byol_rng_uniform(struct byol_rng *r);
/* Uniform in [0, 1) with 53 bits of resolution. */
BYOL_API double byol_rng_uniform_f64(struct byol_rng *r);
/* Standard normal (Box-Muller on two uniforms). */
BYOL_API double byol_rng_normal(struct byol_rng *r);

#ifdef __cplusplus
}
#endif
#endif
