/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
 * a counter-based generator, so any stream can be started anywhere without replay. */
#include <math.h>

#include "byol/rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_round(uint32_t ctr[4], const uint32_t key[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c0 = hi1 ^ ctr[1] ^ key[0];
    uint32_t c2 = hi0 ^ ctr[3] ^ key[1];
    ctr[0] = c0;
    ctr[1] = lo1;
    ctr[2] = c2;
    ctr[3] = lo0;
}

static void philox_block(const uint32_t in[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t ctr[4] = {in[0], in[1], in[2], in[3]};
    uint32_t key[2] = {key_in[0], key_in[1]};
    for (int i = 0; i < 10; i++) {
        philox_round(ctr, key);
        key[0] += PHILOX_W0;
        key[1] += PHILOX_W1;
    }
    for (int i = 0; i < 4; i++)
        out[i] = ctr[i];
}

/* SplitMix64's finaliser: a cheap bijective mix for turning integers into keys. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t byol_rng_stream_id(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t h = mix64(a);
    h = mix64(h ^ b);
    h = mix64(h ^ c);
    return mix64(h ^ d);
}

void byol_rng_init(struct byol_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t k = mix64(seed);
    r->key[0] = (uint32_t)k;
    r->key[1] = (uint32_t)(k >> 32);
    /* The stream id takes the high half of the counter; the low half counts blocks. */
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->used = 4;
}

uint32_t byol_rng_u32(struct byol_rng *r)
{
    if (r->used >= 4) {
        philox_block(r->ctr, r->key, r->buf);
        if (++r->ctr[0] == 0)
            ++r->ctr[1];
        r->used = 0;
    }
    return r->buf[r->used++];
}

uint64_t byol_rng_u64(struct byol_rng *r)
{
    uint64_t hi = byol_rng_u32(r);
    return (hi << 32) | byol_rng_u32(r);
}

float byol_rng_uniform(struct byol_rng *r)
{
    return (float)(byol_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double byol_rng_uniform_f64(struct byol_rng *r)
{
    return (double)(byol_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double byol_rng_normal(struct byol_rng *r)
{
    /* 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - byol_rng_uniform_f64(r);
    double u2 = byol_rng_uniform_f64(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}
