/* A bad plugin for test_loader: its init fails with a message and registers nothing. */
#include "byol/plugin.h"

BYOL_PLUGIN_INIT(host, reg)
{
    (void)reg;
    return host->error(BYOL_ERR_UNSUPPORTED, "initfail: no suitable device found");
}
