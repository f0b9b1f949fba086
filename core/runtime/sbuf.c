/* The growing string of core/runtime/sbuf_internal.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf_internal.h"

/* Room for n more bytes and the terminating NUL; 0 once out of memory. */
static int sbuf_reserve(struct byol_sbuf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->len + n + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *g = realloc(b->s, cap);
    if (!g) {
        b->oom = 1;
        return 0;
    }
    b->s = g;
    b->cap = cap;
    return 1;
}

void byol_sbuf_put(struct byol_sbuf *b, const char *text, size_t n)
{
    if (!sbuf_reserve(b, n))
        return;
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void byol_sbuf_str(struct byol_sbuf *b, const char *text)
{
    byol_sbuf_put(b, text, strlen(text));
}

void byol_sbuf_printf(struct byol_sbuf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && sbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}
