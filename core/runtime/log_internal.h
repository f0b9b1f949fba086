/* The core's log: one line per message on stderr, filtered by BYOL_LOG_LEVEL. It is also the
 * host table's `log` slot, so the core and its plugins print alike. Not installed. */
#ifndef BYOL_LOG_INTERNAL_H
#define BYOL_LOG_INTERNAL_H

#include "byol/plugin.h"

/* "byol: warning: <message>" unless `level` is above BYOL_LOG_LEVEL (error, warn, info: the
 * default, or debug; or 0-3). One write per line, so lines from threads do not interleave. */
void byol_log(enum byol_log_level level, const char *fmt, ...) BYOL_PRINTF(2, 3);

/* BYOL_OK when BYOL_LOG_LEVEL is unset, empty or a level; else the one-line message
 * `BYOL_LOG_LEVEL="x" is not a log level: ...` (byol_log itself then logs at info). */
byol_status byol_log_level_check(void);

#endif
