/* Shared helpers for the CUnit suites (see testutil.h). */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

int byol_test_main(int argc, char **argv, const char *suite_name,
                   const struct byol_test_case *cases)
{
    (void)argc;
    (void)argv;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    if (!suite)
        return 2;
    int memcheck = getenv("BYOL_TEST_MEMCHECK") != NULL;
    for (const struct byol_test_case *c = cases; c->name; c++) {
        if (c->heavy && memcheck) {
            printf("skipping '%s' under valgrind (BYOL_TEST_MEMCHECK)\n", c->name);
            continue;
        }
        if (!CU_add_test(suite, c->name, c->fn))
            return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

struct byol_registry *byol_test_registry(void)
{
    struct byol_registry *reg = NULL;
    if (byol_registry_create(&reg) != BYOL_OK ||
        byol_registry_add_search_dir(reg, BYOL_TEST_PLUGIN_DIR) != BYOL_OK) {
        fprintf(stderr, "test registry: %s\n", byol_last_error());
        exit(2);
    }
    return reg;
}

struct byol_backend *byol_test_backend(struct byol_registry *reg, const char *name, int threads)
{
    char text[128];
    snprintf(text, sizeof text, "threads = %d;", threads);
    struct byol_config *cfg = NULL;
    struct byol_backend *be = NULL;
    if (byol_config_parse(text, "test-backend", &cfg) != BYOL_OK ||
        byol_backend_create(reg, name, byol_config_root(cfg), &be) != BYOL_OK) {
        fprintf(stderr, "test backend %s: %s\n", name, byol_last_error());
        exit(2);
    }
    /* The backend reads its settings at create time only. */
    byol_config_free(cfg);
    return be;
}

const char *byol_test_fixture(const char *file)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", BYOL_TEST_FIXTURE_DIR, file);
    return path;
}

/* A failed scratch-file step: print why, then fail the running test fatally, or exit from
 * main, where there is no test to fail (a fatal CUnit assertion would have nowhere to jump). */
static void scratch_require(int ok, const char *what, const char *path)
{
    if (!ok)
        fprintf(stderr, "\n  %s %s: %s\n", what, path, strerror(errno));
    if (CU_get_current_test()) {
        CU_ASSERT_FATAL(ok);
    } else if (!ok) {
        exit(2);
    }
}

const char *byol_test_tmpdir(const char *tag)
{
    /* Apart from byol_test_path's buffers: a folder name is usually kept for the whole run. */
    static char dirs[8][512];
    static int next;
    const char *base = getenv("TMPDIR");
    char *dir = dirs[next++ % 8];
    snprintf(dir, sizeof dirs[0], "%s/byol-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    scratch_require(mkdtemp(dir) != NULL, "mkdtemp", dir);
    return dir;
}

const char *byol_test_path(const char *dir, const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

void byol_test_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    scratch_require(f != NULL, "cannot create", path);
    scratch_require(fwrite(data, 1, n, f) == n, "cannot write", path);
    scratch_require(fclose(f) == 0, "cannot close", path);
}

void byol_test_write_gzip(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb9");
    scratch_require(gz != NULL, "cannot create", path);
    scratch_require(gzwrite(gz, data, (unsigned)n) == (int)n, "cannot write", path);
    scratch_require(gzclose(gz) == Z_OK, "cannot close", path);
}

unsigned char *byol_test_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    scratch_require(f != NULL, "cannot open", path);
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap + 1);
    for (size_t got; b && (got = fread(b + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            unsigned char *grown = realloc(b, 2 * cap + 1);
            if (!grown)
                free(b);
            b = grown;
            cap *= 2;
        }
    }
    int ok = b != NULL && !ferror(f);
    fclose(f);
    if (!ok)
        free(b);
    scratch_require(ok, "cannot read", path);
    b[len] = 0;
    *n = len;
    return b;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "\n  cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* go on: remove what can be removed */
}

int byol_test_remove_tree(const char *path)
{
    /* Children before their folder (FTW_DEPTH), links removed rather than followed. */
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return access(path, F_OK) == 0 ? -1 : 0;
}

int byol_test_close(const char *what, const float *got, const float *ref, size_t n, double atol,
                    double rtol)
{
    double maxdiff = 0, maxref = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= maxdiff)) { /* also catches NaN */
            maxdiff = isnan(d) ? INFINITY : d;
            worst = i;
        }
        if (fabs(ref[i]) > maxref)
            maxref = fabs(ref[i]);
    }
    int ok = maxdiff <= atol + rtol * maxref;
    printf("  %-48s max abs diff %.3g (max |ref| %.3g)%s\n", what, maxdiff, maxref,
           ok ? "" : "  <-- FAIL");
    if (!ok && n)
        printf("    worst at %zu: got %.9g want %.9g\n", worst, got[worst], ref[worst]);
    return ok;
}

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 0x811C9DC5u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x01000193u;
    return h;
}

static double detinit_uniform(uint32_t h0, uint32_t i)
{
    uint32_t x = h0 ^ (uint32_t)(i * 0x9E3779B9u);
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return (double)(x >> 8) / (double)(1u << 23) - 1.0;
}

void byol_test_detinit(const char *name, const int *dims, int ndim, float *out)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)dims[d];
    const char *dot = strrchr(name, '.');
    const char *leaf = dot ? dot + 1 : name;
    uint32_t h0 = fnv1a32(name);
    double scale = ndim > 1 ? sqrt(3.0 / (double)(n / (size_t)dims[0])) : 0;
    for (size_t i = 0; i < n; i++) {
        double u = detinit_uniform(h0, (uint32_t)i), v;
        if (strcmp(leaf, "running_var") == 0)
            v = 1.0 + 0.2 * fabs(u);
        else if (strcmp(leaf, "running_mean") == 0)
            v = 0.1 * u;
        else if (strcmp(leaf, "bias") == 0)
            v = 0.05 * u;
        else if (ndim == 1)
            v = 1.0 + 0.1 * u;
        else
            v = scale * u;
        out[i] = (float)v;
    }
}

void byol_test_detinit_net(struct byol_net *net, const char *prefix)
{
    char full[512];
    for (size_t i = 0; i < byol_net_param_count(net); i++) {
        const struct byol_param *p = byol_net_param_at(net, i);
        snprintf(full, sizeof full, "%s%s", prefix, p->name);
        byol_test_detinit(full, p->dims, p->ndim, p->data);
    }
}
