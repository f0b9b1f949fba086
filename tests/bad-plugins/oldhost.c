/* A plugin built against an older plugin.h (abi-1.0/, frozen before the host table's verror
 * slot): it must still load into this host, and every slot it knows must sit where it did.
 * It exports the offsets it was compiled with, which test_loader compares against today's. */
#include <stddef.h>

#include "abi-1.0/host_slots.h"
#include "byol/backend.h"

#ifndef BYOL_TEST_OLD_PLUGIN_H
#error "oldhost.c must see the frozen abi-1.0/byol/plugin.h"
#endif

#define OLD_OFFSET(slot) offsetof(struct byol_host_api, slot),
/* Offsets of the old table's slots, in declaration order, then its size. */
BYOL_PLUGIN_EXPORT const size_t byol_test_old_host_layout[] = {
    BYOL_TEST_HOST_SLOTS_1_0(OLD_OFFSET) sizeof(struct byol_host_api)};

static const struct byol_backend_ops ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = offsetof(struct byol_backend_ops, set_threads),
    .name = "oldhost",
    .version = "1.0",
    .description = "built against the frozen ABI 1.0 plugin.h",
};

BYOL_PLUGIN_INIT(host, reg)
{
    /* The old header's check, with the old header's idea of the table's size. */
    byol_status st = byol_plugin_check_host(host, "oldhost", BYOL_HOST_NEEDS(setting_error));
    if (st != BYOL_OK)
        return st;
    /* A slot from the old table's end must work as it did. */
    if (host->setting_child(NULL, "x") != NULL)
        return host->error(BYOL_ERR_PLUGIN, "oldhost: setting_child(NULL) is not NULL");
    return host->register_ops(reg, BYOL_PLUGIN_BACKEND, &ops);
}
