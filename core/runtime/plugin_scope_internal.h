/* What plugin code is running, so that a fatal signal or an exit() inside a plugin can be
 * reported by name (byol_plugin_running, registry.h). The core marks each call into a plugin:
 *
 *     struct byol_plugin_mark m = byol_plugin_enter(path, "augment op", name, "apply");
 *     st = ops->apply(...);
 *     byol_plugin_leave(m);
 *
 * The mark is per thread, and read by a signal handler on the faulting thread (or an atexit
 * handler on the exiting one). Not installed. */
#ifndef BYOL_PLUGIN_SCOPE_INTERNAL_H
#define BYOL_PLUGIN_SCOPE_INTERNAL_H

/* All strings are borrowed and must outlive the call (a registry entry's path and name). */
struct byol_plugin_mark {
    const char *file, *kind, *name, *call;
};

struct byol_plugin_mark byol_plugin_enter(const char *file, const char *kind, const char *name,
                                          const char *call);
void byol_plugin_leave(struct byol_plugin_mark previous);

#endif
