/* Bounds on what one untrusted input file may make the process allocate: a reader asks before
 * it allocates for a file's contents, so a file larger than memory is refused with a message
 * instead of ending in the OOM killer. */
#ifndef BYOL_LIMITS_INTERNAL_H
#define BYOL_LIMITS_INTERNAL_H

#include <stdint.h>

#include "byol/status.h"

/* Requests below this size pass without looking at the system (unless BYOL_MEMORY_LIMIT is
 * lower): reading /proc for every small image would cost more than it saves. */
#define BYOL_MEM_CHECK_MIN (UINT64_C(64) << 20)

/* The bytes the process may still allocate: the smaller of the system's MemAvailable
 * (/proc/meminfo; sysconf's available pages where that is missing) and the room left under
 * the cgroup's memory limit (v2 memory.max or v1 memory.limit_in_bytes), if any. */
uint64_t byol_mem_available(void);

/* $BYOL_MEMORY_LIMIT in bytes ("512M", "2G", "1000000"; K, M and G are 2^10, 2^20, 2^30) into
 * *bytes, UINT64_MAX when unset or empty. Any other value (a sign, a fraction, another
 * suffix, more than 2^64 bytes) fails with BYOL_ERR_INVALID and the one-line message
 * `BYOL_MEMORY_LIMIT="VALUE" is not a memory size: ...`: a cap the user set is never
 * silently dropped. */
byol_status byol_mem_limit(uint64_t *bytes);

/* BYOL_OK when `bytes` more (for `what` of `path`: "reading the file", "the 300x200 PNG") fit
 * in byol_mem_available() and in $BYOL_MEMORY_LIMIT (bytes, with an optional K, M or G
 * suffix: a user's own cap). Otherwise BYOL_ERR_NOMEM and the one-line message
 * "PATH: WHAT needs N bytes of memory, more than the M available", or byol_mem_limit's
 * failure when $BYOL_MEMORY_LIMIT is not a memory size. */
byol_status byol_mem_check(const char *path, const char *what, uint64_t bytes);

#endif
