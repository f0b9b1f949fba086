/* Memory bounds for reading untrusted files (limits_internal.h): how much the process may still
 * allocate, from /proc/meminfo, the cgroup limit and $BYOL_MEMORY_LIMIT. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits_internal.h"

/* The first number in a small file ("max" and unreadable files give UINT64_MAX). */
static uint64_t read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    int ok = f && fscanf(f, "%llu", &v) == 1;
    if (f)
        fclose(f);
    return ok ? (uint64_t)v : UINT64_MAX;
}

static uint64_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            fclose(f);
            return (uint64_t)kb * 1024;
        }
    if (f)
        fclose(f);
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
}

/* Room under the cgroup limit of a container (where the OOM killer acts first). */
static uint64_t cgroup_available(void)
{
    static const char *const pairs[][2] = {
        {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
        {"/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint64_t max = read_number(pairs[i][0]);
        if (max == UINT64_MAX || max >= (UINT64_C(1) << 60)) /* "max", v1's "unlimited" */
            continue;
        uint64_t used = read_number(pairs[i][1]);
        return used == UINT64_MAX ? max : used < max ? max - used : 0;
    }
    return UINT64_MAX;
}

uint64_t byol_mem_available(void)
{
    uint64_t sys = meminfo_available(), cg = cgroup_available();
    return sys < cg ? sys : cg;
}

/* $BYOL_MEMORY_LIMIT in bytes ("512M", "2G", "1000000"); UINT64_MAX when unset or unreadable. */
static uint64_t env_limit(void)
{
    const char *s = getenv("BYOL_MEMORY_LIMIT");
    if (!s || !*s)
        return UINT64_MAX;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = *end == 'K' || *end == 'k'   ? 10
                : *end == 'M' || *end == 'm' ? 20
                : *end == 'G' || *end == 'g' ? 30
                                             : 0;
    if (end == s || (shift && end[1]) || (!shift && *end) || v > (UINT64_MAX >> shift))
        return UINT64_MAX;
    return (uint64_t)v << shift;
}

byol_status byol_mem_check(const char *path, const char *what, uint64_t bytes)
{
    uint64_t cap = env_limit();
    if (bytes <= cap && bytes < BYOL_MEM_CHECK_MIN)
        return BYOL_OK;
    uint64_t avail = byol_mem_available();
    if (cap < avail)
        avail = cap;
    if (bytes <= avail)
        return BYOL_OK;
    return byol_error(BYOL_ERR_NOMEM,
                      "%s: %s needs %" PRIu64 " bytes of memory, more than the %" PRIu64
                      " available%s",
                      path, what, bytes, avail, avail == cap ? " (BYOL_MEMORY_LIMIT)" : "");
}
