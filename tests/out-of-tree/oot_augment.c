/* An embedder built out of tree: runs a two-op pipeline whose first op comes from the example
 * plugin (plugins/examples/augment-invert) and prints the augmented 1x2x3 image. */
#include <byol/augment.h>
#include <byol/byol.h>
#include <stdio.h>

static const char *const config =
    "augment_fn = ( { op = \"invert\"; p = 1.0; }, { op = \"horizontal_flip\"; p = 1.0; } );";

int main(int argc, char **argv)
{
    struct byol_registry *reg = NULL;
    struct byol_config *cfg = NULL;
    struct byol_augment_pipeline *p = NULL;
    struct byol_augment_info in = {1, 2, 3, 3};
    float x[6] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 0.125f}, y[6], scratch[64];
    struct byol_rng rng;
    byol_status st = byol_registry_create(&reg);
    for (int i = 1; i < argc && st == BYOL_OK; i++)
        st = byol_registry_add_search_dir(reg, argv[i]);
    if (st == BYOL_OK)
        st = byol_config_parse(config, "oot.cfg", &cfg);
    if (st == BYOL_OK)
        st = byol_augment_pipeline_create(reg, byol_config_root(cfg), "augment_fn", 1, &in, &p);
    if (st == BYOL_OK && byol_augment_pipeline_scratch(p) > 64)
        st = byol_error(BYOL_ERR_INTERNAL, "scratch larger than expected");
    byol_rng_init(&rng, 0, 0);
    if (st == BYOL_OK)
        st = byol_augment_pipeline_apply(p, x, y, scratch, &rng);
    if (st == BYOL_OK)
        printf("%g %g %g %g %g %g\n", y[0], y[1], y[2], y[3], y[4], y[5]);
    else
        fprintf(stderr, "oot_augment: %s\n", byol_last_error());
    byol_augment_pipeline_free(p);
    byol_config_free(cfg);
    byol_registry_free(reg);
    return st == BYOL_OK ? 0 : 1;
}
