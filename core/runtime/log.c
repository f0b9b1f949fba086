/* The core's log lines on stderr, filtered by BYOL_LOG_LEVEL (see log_internal.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"

/* BYOL_LOG_LEVEL: error, warn, info (default) or debug, or 0-3. */
static enum byol_log_level log_threshold(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *env = getenv("BYOL_LOG_LEVEL");
    if (!env || !env[0])
        return BYOL_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcmp(env, names[i]) == 0 || (env[0] == '0' + i && !env[1]))
            return (enum byol_log_level)i;
    return BYOL_LOG_INFO;
}

void byol_log(enum byol_log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {"error", "warning", "info", "debug"};
    if (level > log_threshold())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf, so lines from threads do not interleave. */
    fprintf(stderr, "byol: %s: %s\n", (unsigned)level < 4 ? prefix[level] : "log", line);
}
