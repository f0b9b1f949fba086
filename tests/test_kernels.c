/* No reference kernel in any shipped network: every config in configs/ and bench/ is built on
 * the onednn backend (online and target networks, whose plans also serve inference for
 * embedding and evaluation), and every layer's plan must name a JIT or library kernel, never
 * oneDNN's "ref" implementations. ctest runs this once per ISA level with DNNL_MAX_CPU_ISA set
 * (AVX2, AVX512_CORE, AVX512_CORE_BF16), so an AVX-512 machine checks the AVX2 kernels too; a
 * level above the CPU's is skipped (exit 77). At a level with AVX512-BF16 the networks are
 * built a second time with precision = "bf16". */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/learner.h"
#include "isa_level.h"
#include "testutil.h"

#define KERNELS_BATCH 2

static struct byol_registry *reg;
static int bf16_level; /* the effective level has AVX512-BF16 */

/* Layers of `net` whose plan runs a reference kernel; prints every layer's kernels. */
static int count_ref_layers(struct byol_net *net, const char *cfg, const char *which)
{
    int refs = 0;
    for (size_t i = 0; i < byol_net_layer_count(net); i++) {
        char what[512];
        byol_net_layer_describe(net, i, what, sizeof what);
        if (!what[0])
            continue;
        int ref = strstr(what, "=ref") != NULL;
        if (ref || getenv("BYOL_TEST_VERBOSE"))
            printf("  %s %s %-24s %s%s\n", cfg, which, byol_net_layer_name(net, i), what,
                   ref ? "  <-- reference kernel" : "");
        refs += ref;
    }
    return refs;
}

/* Builds the learner `path` describes on onednn at `precision`; returns its reference layers. */
static int check_config(const char *path, const char *precision)
{
    struct byol_config *cfg = NULL, *bcfg = NULL;
    struct byol_backend *be = NULL;
    struct byol_learner *l = NULL;
    struct byol_learner_config c;
    char text[128];
    snprintf(text, sizeof text, "threads = 2; precision = \"%s\";", precision);
    BYOL_CHECK_OK(byol_config_load(path, &cfg));
    BYOL_CHECK_OK(byol_config_parse(text, "kernels-backend", &bcfg));
    BYOL_CHECK_OK(byol_backend_create(reg, "onednn", byol_config_root(bcfg), &be));
    const struct byol_settings *root = byol_config_root(cfg);
    byol_learner_config_default(&c);
    BYOL_CHECK_OK(byol_learner_config_read(&c, byol_settings_child(root, "model"),
                                           byol_settings_child(root, "train")));
    /* Whether oneDNN has a JIT kernel depends on layouts, channels, kernel, stride, padding and
     * ISA, not on the minibatch; a small batch keeps mock.cfg's ResNet-50 at 256 px from
     * touching 12 GB. (byolctl bench --profile shows the kernels at the config's own batch.) */
    if (c.batch_size > KERNELS_BATCH)
        c.batch_size = KERNELS_BATCH;
    int refs = -1;
    if (byol_learner_create(be, reg, &c, &l) == BYOL_OK) {
        refs = count_ref_layers(byol_learner_online(l), path, "online");
        if (byol_learner_target(l))
            refs += count_ref_layers(byol_learner_target(l), path, "target");
    } else {
        printf("  %s: %s\n", path, byol_last_error());
    }
    printf("  %-40s %-4s %s\n", path, precision,
           refs == 0  ? "no reference kernels"
           : refs < 0 ? "could not build"
                      : "REFERENCE KERNELS");
    byol_learner_free(l);
    byol_backend_free(be);
    byol_config_free(bcfg);
    byol_config_free(cfg);
    return refs;
}

/* Every *.cfg of `dir`, at float32 and, on a bf16 level, in bf16. */
static void check_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort), checked = 0;
    CU_ASSERT_FATAL(n > 0);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && !strcmp(name + len - 4, ".cfg")) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            CU_ASSERT(check_config(path, "f32") == 0);
            if (bf16_level)
                CU_ASSERT(check_config(path, "bf16") == 0);
            checked++;
        }
        free(names[i]);
    }
    free(names);
    CU_ASSERT(checked > 0);
}

static void test_configs(void)
{
    check_dir(BYOL_TEST_SOURCE_DIR "/../configs");
}

static void test_bench_configs(void)
{
    check_dir(BYOL_TEST_SOURCE_DIR "/../bench");
}

int main(int argc, char **argv)
{
    if (byol_test_isa_unavailable())
        return BYOL_TEST_SKIP;
    unsigned have = (unsigned)dnnl_get_effective_cpu_isa();
    bf16_level = (have & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    reg = byol_test_registry();
    static const struct byol_test_case cases[] = {
        {"every shipped config's networks", test_configs, 0},
        {"the benchmark configs' networks", test_bench_configs, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "no reference kernels", cases);
    byol_registry_free(reg);
    return rc;
}
