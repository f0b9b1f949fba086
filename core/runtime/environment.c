/* The environment variables byol-c reads as settings, checked at once (settings.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byol/settings.h"
#include "limits_internal.h"
#include "log_internal.h"

/* Each folder of BYOL_PLUGIN_PATH (colon-separated; empty parts are skipped, as the registry
 * skips them) must be one: a typo would otherwise only show as a plugin "not found" later, or
 * not at all, as for --plugin-path and plugin_path. */
static byol_status plugin_path_check(void)
{
    const char *env = getenv("BYOL_PLUGIN_PATH");
    while (env && *env) {
        size_t n = strcspn(env, ":");
        char dir[4096];
        struct stat sb;
        if (n > 0 && n < sizeof dir) {
            memcpy(dir, env, n);
            dir[n] = '\0';
            const char *why = stat(dir, &sb) != 0   ? strerror(errno)
                              : S_ISDIR(sb.st_mode) ? NULL
                                                    : "not a folder";
            if (why)
                return byol_error(BYOL_ERR_NOT_FOUND, "BYOL_PLUGIN_PATH: %s: %s", dir, why);
        }
        env += n + (env[n] == ':');
    }
    return BYOL_OK;
}

byol_status byol_environment_check(void)
{
    uint64_t bytes;
    byol_status st = byol_mem_limit(&bytes);
    if (st == BYOL_OK)
        st = byol_log_level_check();
    return st == BYOL_OK ? plugin_path_check() : st;
}
