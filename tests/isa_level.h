/* The ISA level a test runs at: DNNL_MAX_CPU_ISA as ctest sets it, checked against what oneDNN
 * can use on this CPU, so a level above the CPU's is skipped rather than silently run lower. */
#ifndef BYOL_TEST_ISA_LEVEL_H
#define BYOL_TEST_ISA_LEVEL_H

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYOL_TEST_SKIP 77

/* 1 when DNNL_MAX_CPU_ISA names a level (AVX2, AVX512_CORE, AVX512_CORE_BF16) this CPU lacks;
 * prints why. Unset or other names: 0. */
static inline int byol_test_isa_unavailable(void)
{
    static const struct {
        const char *name;
        unsigned isa;
    } levels[] = {{"AVX2", dnnl_cpu_isa_avx2},
                  {"AVX512_CORE", dnnl_cpu_isa_avx512_core},
                  {"AVX512_CORE_BF16", dnnl_cpu_isa_avx512_core_bf16}};
    const char *level = getenv("DNNL_MAX_CPU_ISA");
    unsigned have = (unsigned)dnnl_get_effective_cpu_isa();
    for (size_t i = 0; level && i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(level, levels[i].name) && (have & levels[i].isa) != levels[i].isa) {
            printf("skipped: this CPU cannot show DNNL_MAX_CPU_ISA=%s (oneDNN ISA 0x%x)\n", level,
                   have);
            return 1;
        }
    printf("DNNL_MAX_CPU_ISA=%s, effective oneDNN ISA 0x%x\n", level ? level : "(unset)", have);
    return 0;
}

#endif
