/* A growing NUL-terminated string for text the core builds (safetensors headers, resolved
 * configs, digests). Appends cannot fail one by one: a failed allocation sets `oom` and makes
 * later appends no-ops, so a builder checks once at the end. Zero-initialise; free(s). */
#ifndef BYOL_SBUF_INTERNAL_H
#define BYOL_SBUF_INTERNAL_H

#include <stddef.h>

#include "byol/status.h"

struct byol_sbuf {
    char *s;
    size_t len, cap;
    int oom;
};

void byol_sbuf_put(struct byol_sbuf *b, const char *text, size_t n);
void byol_sbuf_str(struct byol_sbuf *b, const char *text);
void byol_sbuf_printf(struct byol_sbuf *b, const char *fmt, ...) BYOL_PRINTF(2, 3);

#endif
