/* The core's log lines on stderr, filtered by BYOL_LOG_LEVEL (see log_internal.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"

/* BYOL_LOG_LEVEL: error, warn, info (default) or debug, or 0-3; -1 for anything else. */
static int log_level_of(const char *env)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (!env || !env[0])
        return BYOL_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcmp(env, names[i]) == 0 || (env[0] == '0' + i && !env[1]))
            return i;
    return -1;
}

static enum byol_log_level log_threshold(void)
{
    int level = log_level_of(getenv("BYOL_LOG_LEVEL"));
    return level < 0 ? BYOL_LOG_INFO : (enum byol_log_level)level;
}

byol_status byol_log_level_check(void)
{
    const char *env = getenv("BYOL_LOG_LEVEL");
    if (log_level_of(env) >= 0)
        return BYOL_OK;
    return byol_error(BYOL_ERR_INVALID,
                      "BYOL_LOG_LEVEL=\"%s\" is not a log level: error, warn, info, debug or 0-3",
                      env);
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
