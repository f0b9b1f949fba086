/* An augmentation op that brings the process down on purpose, for the fault-report test
 * (tests/cli/plugin_fault.sh): `{ op = "crash"; mode = "segv" | "abort" | "exit"; }` does it
 * in apply, and BYOL_TEST_CRASH_INIT=segv|exit does it in the plugin's init. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "byol/augment.h"

static const struct byol_host_api *host;

struct crash {
    char mode[8];
};

static void crash_now(const char *mode)
{
    if (strcmp(mode, "segv") == 0)
        raise(SIGSEGV); /* as a stray pointer would, without undefined behaviour */
    else if (strcmp(mode, "abort") == 0)
        abort();
    else if (strcmp(mode, "exit") == 0)
        exit(3);
}

static byol_status crash_create(const struct byol_host_api *h, const struct byol_settings *s,
                                const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "mode", NULL};
    const char *mode;
    (void)info;
    byol_status st = h->setting_check_keys(s, keys);
    if (st == BYOL_OK)
        st = h->setting_string(s, "mode", "segv", &mode);
    if (st != BYOL_OK)
        return st;
    struct crash *c = h->alloc(sizeof *c);
    if (!c)
        return h->error(BYOL_ERR_NOMEM, "crash: out of memory");
    strncpy(c->mode, mode, sizeof c->mode - 1);
    *state = c;
    return BYOL_OK;
}

static byol_status crash_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    (void)in;
    (void)out;
    (void)rng;
    crash_now(((const struct crash *)state)->mode);
    return BYOL_OK;
}

static void crash_destroy(void *state)
{
    host->free(state);
}

static const struct byol_augment_ops crash_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "crash",
    .version = "1.0.0",
    .description = "crashes on purpose (tests only)",
    .create = crash_create,
    .apply = crash_apply,
    .destroy = crash_destroy,
};

BYOL_PLUGIN_INIT(h, reg)
{
    host = h;
    const char *init = getenv("BYOL_TEST_CRASH_INIT");
    if (init)
        crash_now(init);
    return h->register_ops(reg, BYOL_PLUGIN_AUGMENT, &crash_ops);
}
