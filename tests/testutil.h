/* Shared helpers for the CUnit suites: running suites, loading the blas backend from the build
 * tree, reading fixtures, scratch files and comparing arrays with a max-abs-diff report. */
#ifndef BYOL_TESTUTIL_H
#define BYOL_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "byol/byol.h"

/* One suite: a name and a NULL-terminated list of tests. */
struct byol_test_case {
    const char *name;
    CU_TestFunc fn;
    /* 1: a slow case (a full ResNet) whose code paths the small cases already cover; skipped
     * under valgrind (BYOL_TEST_MEMCHECK set), where it would take minutes. */
    int heavy;
};

/* Register the suites (each a name and a {NULL, NULL}-terminated array) and run them; returns
 * the process exit code (0 when every assertion passed). */
int byol_test_main(int argc, char **argv, const char *suite_name,
                   const struct byol_test_case *cases);

/* A registry with the build tree's plugin folder on its search path, and a created backend of
 * that name ("blas") with `threads` threads. Abort the test run on failure. */
struct byol_registry *byol_test_registry(void);
struct byol_backend *byol_test_backend(struct byol_registry *reg, const char *name, int threads);

/* Path of a fixture file under tests/fixtures (static buffer). */
const char *byol_test_fixture(const char *file);

/* ---- Scratch files. Each helper fails the running test (fatally), or exits the run with
 * status 2 when called outside a test (from main), printing the path and errno's text. */

/* A new empty folder $TMPDIR/byol-<tag>-XXXXXX ($TMPDIR unset or empty: /tmp). Returns one of
 * 8 rotating static buffers; remove it with byol_test_remove_tree. */
const char *byol_test_tmpdir(const char *tag);
/* "dir/name" in one of 8 rotating static buffers (so a few may be held at once). */
const char *byol_test_path(const char *dir, const char *name);
/* Write n bytes to path, replacing the file. */
void byol_test_write_file(const char *path, const void *data, size_t n);
/* The same, gzip-compressed (level 9). */
void byol_test_write_gzip(const char *path, const void *data, size_t n);
/* The whole file, NUL-terminated (not counted in *n); free() it. */
unsigned char *byol_test_read_file(const char *path, size_t *n);
/* Remove path and, if it is a folder, everything under it (links are not followed). Returns 0,
 * or -1 when something could not be removed (printed); never asserts, so main may call it. */
int byol_test_remove_tree(const char *path);

/* Max |a - b| and max |b| over n floats. Prints "<what>: max abs diff D (max |ref| R)" and
 * returns 1 when D <= atol + rtol * max|ref|, else 0. */
int byol_test_close(const char *what, const float *got, const float *ref, size_t n, double atol,
                    double rtol);

/* Assert that this thread's last error message contains `needle`, printing both if not. */
#define BYOL_ASSERT_MSG_HAS(needle)                                                          \
    do {                                                                                     \
        const char *msg_ = byol_last_error();                                                \
        if (!strstr(msg_, (needle)))                                                         \
            fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", msg_, (needle));            \
        CU_ASSERT_PTR_NOT_NULL(strstr(msg_, (needle)));                                      \
    } while (0)

/* Assert a status is BYOL_OK, printing byol_last_error() if not. */
#define BYOL_CHECK_OK(expr)                                                                  \
    do {                                                                                     \
        byol_status st_ = (expr);                                                            \
        if (st_ != BYOL_OK)                                                                  \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,              \
                    byol_status_str(st_), byol_last_error());                                \
        CU_ASSERT_EQUAL_FATAL(st_, BYOL_OK);                                                 \
    } while (0)

#endif

/* Deterministic parameter values by state_dict name, the same as tests/fixtures/detinit.py:
 * running_var 1 + 0.2|u|, running_mean 0.1u, bias 0.05u, 1-d weight 1 + 0.1u, other weights
 * sqrt(3 / fan_in) u, with u in [-1, 1) hashed from (name, index). dims[0] is the fan-out. */
void byol_test_detinit(const char *name, const int *dims, int ndim, float *out);
/* byol_test_detinit over every parameter and buffer of a net, naming each prefix + name. */
void byol_test_detinit_net(struct byol_net *net, const char *prefix);
