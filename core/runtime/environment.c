/* The environment variables byol-c reads as settings, checked at once (settings.h). */
#include <stdint.h>

#include "byol/settings.h"
#include "limits_internal.h"
#include "log_internal.h"

byol_status byol_environment_check(void)
{
    uint64_t bytes;
    byol_status st = byol_mem_limit(&bytes);
    return st == BYOL_OK ? byol_log_level_check() : st;
}
