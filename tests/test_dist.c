/* Data parallelism without a launcher: the distributed sampler's split of a global batch, a
 * process's slice augmenting exactly as within the whole batch, and a plain start being one
 * process (in a build without MPI, a start as several is refused). The runs over several
 * processes are tests/cli/mpi_*.sh. */
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"
#include "byol/dist.h"
#include "testutil.h"

static struct byol_registry *g_reg;

/* Slices are contiguous, in rank order, cover the batch, and the first B mod N are larger. */
static void test_shard(void)
{
    for (int64_t global = 1; global <= 40; global++)
        for (int size = 1; size <= 7; size++) {
            int64_t next = 0;
            for (int r = 0; r < size; r++) {
                int64_t first, count;
                byol_dist_shard(global, r, size, &first, &count);
                CU_ASSERT_EQUAL(first, next);
                CU_ASSERT_EQUAL(count, global / size + (r < global % size));
                next = first + count;
            }
            CU_ASSERT_EQUAL(next, global);
        }
    int64_t first, count;
    byol_dist_shard(8, 2, 3, &first, &count); /* 8 = 3 + 3 + 2 */
    CU_ASSERT_EQUAL(first, 6);
    CU_ASSERT_EQUAL(count, 2);
    byol_dist_shard(64, 0, 1, &first, &count);
    CU_ASSERT_EQUAL(first, 0);
    CU_ASSERT_EQUAL(count, 64);
}

static struct byol_augment_pipeline *random_pipeline(const struct byol_augment_info *in)
{
    struct byol_config *cfg = NULL;
    struct byol_augment_pipeline *p = NULL;
    BYOL_CHECK_OK(byol_config_parse(
        "augment_fn = ( { op = \"random_resized_crop\"; scale = [0.2, 1.0]; },\n"
        "               { op = \"horizontal_flip\"; },\n"
        "               { op = \"color_jitter\"; brightness = 0.4; contrast = 0.4; } );\n",
        "dist.cfg", &cfg));
    BYOL_CHECK_OK(
        byol_augment_pipeline_create(g_reg, byol_config_root(cfg), "augment_fn", 1, in, &p));
    byol_config_free(cfg);
    return p;
}

/* Each process augments its slice with the images' global positions: the slices of any split
 * put together are the whole batch, bit for bit. Without the offset they would not be. */
static void test_slices_augment_as_whole(void)
{
    enum { B = 9, C = 3, H = 12, S = 8 };
    const struct byol_augment_info in = {C, H, H, S};
    struct byol_augment_pipeline *p = random_pipeline(&in);
    struct byol_augment_pool *pool = NULL;
    BYOL_CHECK_OK(byol_augment_pool_create(2, &pool));
    size_t in_img = (size_t)C * H * H, out_img = (size_t)C * S * S;
    float *x = malloc(B * in_img * sizeof *x), *whole = malloc(B * out_img * sizeof *x);
    float *part = malloc(B * out_img * sizeof *x);
    struct byol_rng rng;
    byol_rng_init(&rng, 11, 0);
    for (size_t i = 0; i < B * in_img; i++)
        x[i] = byol_rng_uniform(&rng);
    BYOL_CHECK_OK(byol_augment_batch(pool, p, x, B, whole, 4, 17, 2));
    const int sizes[] = {2, 3, 4, 9};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int r = 0; r < sizes[k]; r++) {
            int64_t first, count;
            byol_dist_shard(B, r, sizes[k], &first, &count);
            BYOL_CHECK_OK(byol_augment_batch_at(pool, p, x + first * in_img, (size_t)count,
                                                (size_t)first, part + first * out_img, 4, 17, 2));
        }
        CU_ASSERT_EQUAL(memcmp(part, whole, B * out_img * sizeof *x), 0);
    }
    /* The last image alone, augmented as the first of its own batch, comes out otherwise. */
    BYOL_CHECK_OK(byol_augment_batch(pool, p, x + (B - 1) * in_img, 1, part, 4, 17, 2));
    CU_ASSERT_NOT_EQUAL(memcmp(part, whole + (B - 1) * out_img, out_img * sizeof *x), 0);
    free(x);
    free(whole);
    free(part);
    byol_augment_pool_free(pool);
    byol_augment_pipeline_free(p);
}

/* ctest starts this suite as a plain process: one process, and abort only returns. In a build
 * without MPI, a launcher's variables saying there are several make init fail. */
static void test_plain_start(void)
{
    BYOL_CHECK_OK(byol_dist_init(NULL, NULL));
    CU_ASSERT_EQUAL(byol_dist_rank(), 0);
    CU_ASSERT_EQUAL(byol_dist_size(), 1);
    byol_dist_abort(3);
    byol_dist_finalize();
    if (byol_dist_has_mpi())
        return;
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    CU_ASSERT_EQUAL(byol_dist_init(NULL, NULL), BYOL_ERR_UNSUPPORTED);
    BYOL_ASSERT_MSG_HAS("started as one of several processes (OMPI_COMM_WORLD_SIZE=4), but "
                        "this byol-c was built without MPI");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMIX_RANK", "2", 1);
    CU_ASSERT_EQUAL(byol_dist_init(NULL, NULL), BYOL_ERR_UNSUPPORTED);
    BYOL_ASSERT_MSG_HAS("(PMIX_RANK=2)");
    setenv("PMIX_RANK", "0", 1);
    setenv("SLURM_STEP_NUM_TASKS", "1", 1);
    BYOL_CHECK_OK(byol_dist_init(NULL, NULL)); /* launched, but as the only process */
    unsetenv("PMIX_RANK");
    unsetenv("SLURM_STEP_NUM_TASKS");
}

int main(int argc, char **argv)
{
    g_reg = byol_test_registry();
    static const struct byol_test_case cases[] = {
        {"shards of a global batch", test_shard, 0},
        {"slices augment as the whole batch", test_slices_augment_as_whole, 0},
        {"a plain start is one process", test_plain_start, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "dist", cases);
    byol_registry_free(g_reg);
    return rc;
}
