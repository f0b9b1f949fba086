/* byol-pytorch's MockDataset as a dataset: random images, each a pure function of (seed, index)
 * so that repeated reads, threads and resumed runs all see the same pixels. */
#include <stdio.h>
#include <stdlib.h>

#include "byol/rng.h"
#include "dataset_internal.h"
#include "limits_internal.h"

/* Keeps the mock pixels' random stream apart from every other stream seeded alike. */
#define STREAM_MOCK 0x4d4f434bull /* "MOCK" */

struct mock_dataset {
    uint64_t seed;
    size_t image_size;
};

static byol_status mock_get(const struct byol_dataset *ds, size_t index, float *out)
{
    const struct mock_dataset *d = ds->impl;
    struct byol_rng r;
    byol_rng_init(&r, d->seed, byol_rng_stream_id(STREAM_MOCK, (uint64_t)index, 0, 0));
    for (size_t i = 0; i < d->image_size; i++)
        out[i] = byol_rng_uniform(&r);
    return BYOL_OK;
}

static int mock_label(const struct byol_dataset *ds, size_t index)
{
    (void)ds;
    (void)index;
    return -1;
}

static const struct byol_dataset_ops mock_ops = {"mock", mock_get, mock_label, free, NULL};

byol_status byol_dataset_open_mock(size_t length, int channels, int image_size, uint64_t seed,
                                   struct byol_dataset **out)
{
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_dataset_open_mock: NULL out");
    *out = NULL;
    if (length == 0)
        return byol_error(BYOL_ERR_INVALID, "mock dataset: length must be at least 1");
    if (channels < 1 || channels > 4 || image_size < 1 || image_size > 4096)
        return byol_error(BYOL_ERR_INVALID,
                          "mock dataset: images of %d x %d x %d (channels 1..4, size 1..4096)",
                          channels, image_size, image_size);
    /* Whoever reads a dataset keeps an order of its indices (the loader's shuffle): a size_t
     * per image. A length that leaves no room for it fails here, before anything is made. */
    if (length > UINT64_MAX / sizeof(size_t))
        return byol_error(BYOL_ERR_NOMEM,
                          "mock dataset: the order of %zu images needs more than 2^64 bytes "
                          "of memory",
                          length);
    char what[96];
    snprintf(what, sizeof what, "the order of %zu images", length);
    byol_status st = byol_mem_check("mock dataset", what, (uint64_t)length * sizeof(size_t));
    if (st != BYOL_OK)
        return st;
    struct mock_dataset *d = malloc(sizeof *d);
    if (!d)
        return byol_error(BYOL_ERR_NOMEM, "mock dataset: out of memory");
    d->seed = seed;
    d->image_size = (size_t)channels * (size_t)image_size * (size_t)image_size;
    return byol_dataset_wrap(&mock_ops, d, "mock", length, channels, image_size, image_size, out);
}
