/* Status names and the thread-local error message. */
#include <stdio.h>
#include <string.h>

#include "byol/status.h"

static _Thread_local char tls_message[1024];

const char *byol_status_str(byol_status s)
{
    switch (s) {
    case BYOL_OK: return "ok";
    case BYOL_ERR_INVALID: return "invalid argument";
    case BYOL_ERR_NOMEM: return "out of memory";
    case BYOL_ERR_IO: return "i/o error";
    case BYOL_ERR_NOT_FOUND: return "not found";
    case BYOL_ERR_FORMAT: return "malformed input";
    case BYOL_ERR_ABI: return "ABI mismatch";
    case BYOL_ERR_DUPLICATE: return "duplicate name";
    case BYOL_ERR_PLUGIN: return "plugin error";
    case BYOL_ERR_UNSUPPORTED: return "unsupported";
    case BYOL_ERR_SHAPE: return "shape mismatch";
    case BYOL_ERR_INTERNAL: return "internal error";
    case BYOL_ERR_NONFINITE: return "non-finite value";
    }
    return "unknown status";
}

const char *byol_last_error(void)
{
    return tls_message;
}

void byol_clear_error(void)
{
    tls_message[0] = '\0';
}

byol_status byol_verror(byol_status s, const char *fmt, va_list ap)
{
    char tmp[sizeof tls_message];
    /* Format into a temporary first: callers often pass byol_last_error() as an argument,
     * to prefix context onto the message a callee left. */
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    memcpy(tls_message, tmp, sizeof tmp);
    /* Messages are one line: a stray newline from a library (dlerror, libconfig) is cut. */
    for (char *p = tls_message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return s;
}

byol_status byol_verror_about(byol_status s, const char *about, const char *fmt, va_list ap)
{
    if (!about || !about[0])
        return byol_verror(s, fmt, ap);
    char what[sizeof tls_message];
    vsnprintf(what, sizeof what, fmt, ap);
    return byol_error(s, "%s: %s", about, what);
}

byol_status byol_error(byol_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    byol_verror(s, fmt, ap);
    va_end(ap);
    return s;
}
