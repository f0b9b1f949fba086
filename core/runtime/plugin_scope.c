/* The process-wide mark of the plugin call in progress (plugin_scope_internal.h). */
#include "byol/registry.h"
#include "plugin_scope_internal.h"

/* Per thread (augmentation workers run plugin ops while the main thread runs the backend), in
 * static TLS (initial-exec: libbyol is linked, not dlopen'ed), so that a signal handler on the
 * faulting thread reads it without allocating; volatile, as the handler may interrupt a write. */
#define SCOPE_TLS _Thread_local __attribute__((tls_model("initial-exec")))
static SCOPE_TLS const char *volatile scope_file, *volatile scope_kind, *volatile scope_name,
                                                                            *volatile scope_call;

struct byol_plugin_mark byol_plugin_enter(const char *file, const char *kind, const char *name,
                                          const char *call)
{
    struct byol_plugin_mark previous = {scope_file, scope_kind, scope_name, scope_call};
    scope_file = file;
    scope_kind = kind;
    scope_name = name;
    scope_call = call;
    return previous;
}

void byol_plugin_leave(struct byol_plugin_mark previous)
{
    scope_file = previous.file;
    scope_kind = previous.kind;
    scope_name = previous.name;
    scope_call = previous.call;
}

int byol_plugin_running(const char **file, const char **kind, const char **name, const char **call)
{
    const char *f = scope_file;
    *file = f;
    *kind = scope_kind;
    *name = scope_name;
    *call = scope_call;
    return f != NULL;
}
