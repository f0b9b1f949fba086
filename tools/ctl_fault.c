/* byolctl's last words when plugin code brings the process down: a fatal signal or an exit()
 * inside a plugin's init or op is reported with the plugin's file and what it was doing
 * (byol_plugin_running), then the process ends as it would have: by the same signal, or with
 * the plugin's exit status. Outside plugin code nothing is added. Containing the fault is not
 * attempted: after a segfault no state of the process can be trusted. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byol/registry.h"
#include "ctl_fault.h"

/* Async-signal-safe string building: only stores, no stdio. */
struct fault_line {
    char buf[1024];
    size_t n;
};

static void fault_put(struct fault_line *l, const char *s)
{
    while (s && *s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

static void fault_plugin(struct fault_line *l)
{
    const char *file, *kind, *name, *call;
    byol_plugin_running(&file, &kind, &name, &call);
    fault_put(l, file);
    fault_put(l, ": ");
    fault_put(l, kind);
    if (name) {
        fault_put(l, " '");
        fault_put(l, name);
        fault_put(l, "'");
    }
    fault_put(l, " (");
    fault_put(l, call);
    fault_put(l, ")\n");
}

static const char *fault_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    }
    return "a fatal signal";
}

static void fault_signal(int sig)
{
    /* Several threads may fault at once (every worker running the same broken op): the first
     * one reports and ends the process; the others wait for that end. */
    static int busy;
    if (__atomic_exchange_n(&busy, 1, __ATOMIC_SEQ_CST))
        for (;;)
            pause();
    const char *f, *k, *n, *c;
    if (byol_plugin_running(&f, &k, &n, &c)) {
        struct fault_line l = {.n = 0};
        fault_put(&l, "byolctl: ");
        fault_put(&l, fault_name(sig));
        fault_put(&l, " in plugin ");
        fault_plugin(&l);
        ssize_t ignored = write(STDERR_FILENO, l.buf, l.n);
        (void)ignored;
    }
    /* The default action, then the same signal: the process ends as it would have. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void fault_exit(void)
{
    const char *f, *k, *n, *c;
    if (!byol_plugin_running(&f, &k, &n, &c))
        return;
    struct fault_line l = {.n = 0};
    fault_put(&l, "byolctl: exit() called by plugin ");
    fault_plugin(&l);
    ssize_t ignored = write(STDERR_FILENO, l.buf, l.n);
    (void)ignored;
}

void ctl_fault_install(void)
{
    /* Its own stack, so that a stack overflow in plugin code is reported too. */
    static char alt[64 * 1024] __attribute__((aligned(16)));
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fault_signal;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    atexit(fault_exit);
    at_quick_exit(fault_exit);
}
