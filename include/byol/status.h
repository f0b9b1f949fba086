/* Status codes and the thread-local error message that every byol call leaves behind.
 * Library functions return a byol_status; on failure the one-line detail is read with
 * byol_last_error(). The library never exits the process. */
#ifndef BYOL_STATUS_H
#define BYOL_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BYOL_API __attribute__((visibility("default")))
#define BYOL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BYOL_API
#define BYOL_PRINTF(fmt, args)
#endif

/* Values are part of the ABI: append only. */
typedef enum byol_status {
    BYOL_OK = 0,
    BYOL_ERR_INVALID = 1,     /* a bad argument or setting */
    BYOL_ERR_NOMEM = 2,       /* an allocation failed */
    BYOL_ERR_IO = 3,          /* a file could not be read or written */
    BYOL_ERR_NOT_FOUND = 4,   /* a file, plugin, layer or setting does not exist */
    BYOL_ERR_FORMAT = 5,      /* a file exists but its contents are malformed */
    BYOL_ERR_ABI = 6,         /* a plugin was built for another ABI */
    BYOL_ERR_DUPLICATE = 7,   /* a name is registered twice */
    BYOL_ERR_PLUGIN = 8,      /* a plugin failed to load or initialise */
    BYOL_ERR_UNSUPPORTED = 9, /* a backend does not implement an op or option */
    BYOL_ERR_SHAPE = 10,      /* tensor shapes do not fit together */
    BYOL_ERR_INTERNAL = 11,
    BYOL_ERR_NONFINITE = 12, /* a loss, gradient, weight or feature is NaN or infinite */
} byol_status;

/* A static, human-readable name for a status ("invalid argument", ...). */
BYOL_API const char *byol_status_str(byol_status s);

/* The message of the last failure on this thread ("" if none). The pointer stays valid
 * until the next byol call on the same thread that fails. */
BYOL_API const char *byol_last_error(void);

/* Record a failure message for this thread and return `s`, so that callers can write
 * `return byol_error(BYOL_ERR_IO, "%s: %s", path, strerror(errno));`. */
BYOL_API byol_status byol_error(byol_status s, const char *fmt, ...) BYOL_PRINTF(2, 3);
BYOL_API byol_status byol_verror(byol_status s, const char *fmt, va_list ap);
/* The same with what the message is about in front: "ABOUT: <fmt...>" ("<fmt...>" when
 * `about` is NULL or empty), e.g. about = "backend 'blas'" or a file name. The one helper
 * behind every wrapper that prefixes its messages. */
BYOL_API byol_status byol_verror_about(byol_status s, const char *about, const char *fmt,
                                       va_list ap);

/* Clear this thread's message. */
BYOL_API void byol_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
