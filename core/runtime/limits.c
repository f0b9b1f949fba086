/* Memory bounds for reading untrusted files (limits_internal.h): how much the process may still
 * allocate, from /proc/meminfo, the cgroup limit and $BYOL_MEMORY_LIMIT. */
#include <errno.h>
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

byol_status byol_mem_limit(uint64_t *bytes)
{
    const char *s = getenv("BYOL_MEMORY_LIMIT");
    *bytes = UINT64_MAX;
    if (!s || !*s)
        return BYOL_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    int shift = !end                         ? -1
                : *end == 'K' || *end == 'k' ? 10
                : *end == 'M' || *end == 'm' ? 20
                : *end == 'G' || *end == 'g' ? 30
                : *end == '\0'               ? 0
                                             : -1;
    if (shift < 0 || (shift && end[1]))
        return byol_error(BYOL_ERR_INVALID,
                          "BYOL_MEMORY_LIMIT=\"%.64s\" is not a memory size: a whole number of "
                          "bytes, with an optional K, M or G suffix (512M, 2G)",
                          s);
    if (errno == ERANGE || v > (UINT64_MAX >> shift))
        return byol_error(BYOL_ERR_INVALID, "BYOL_MEMORY_LIMIT=\"%.64s\" is 2^64 bytes or more", s);
    *bytes = (uint64_t)v << shift;
    return BYOL_OK;
}

byol_status byol_mem_check(const char *path, const char *what, uint64_t bytes)
{
    uint64_t cap;
    byol_status st = byol_mem_limit(&cap);
    if (st != BYOL_OK)
        return st;
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
