/* Buffers for the evaluation's feature matrices (core/eval/eval_internal.h): gigabyte-sized arrays
 * filled once and read many times. Backed by 4 KiB pages, the first touch of each page is a
 * page fault, and in a virtual machine 250,000 faults per GiB cost seconds (measured on a
 * 2-core Debian VM: 3 s per GiB, against 0.1 s with 2 MiB pages), so large buffers are
 * aligned to 2 MiB and offered to transparent huge pages (a hint: where the kernel has none to
 * give, they are ordinary memory). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "eval_internal.h"

#define HUGE_PAGE ((size_t)2 << 20)

void *eval_alloc(size_t bytes)
{
    if (bytes < 2 * HUGE_PAGE)
        return malloc(bytes ? bytes : 1);
    size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, rounded) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE); /* advice only: its failure changes nothing else */
#endif
    return p;
}
