/* A bad plugin for test_loader: exports a function, but not byol_plugin_init. */
#include "byol/plugin.h"

BYOL_PLUGIN_EXPORT int byol_plugin_init_misspelt(void);
BYOL_PLUGIN_EXPORT int byol_plugin_init_misspelt(void)
{
    return 0;
}
