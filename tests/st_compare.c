/* st_compare A B [--rtol X] [--skip PART]... [--verbose]: compares two safetensors files
 * (checkpoints of runs that should agree, e.g. on 1 and on N processes) tensor by tensor, for
 * the shell tests. Both must hold the same tensors (names, dtypes, shapes) but those whose name
 * contains a --skip PART; integer tensors must be equal, and each float tensor must satisfy
 * max|a - b| <= rtol * max|b|: its error relative to its own scale, so a gradient-sized tensor
 * is judged at gradient scale. Prints the worst tensor (--verbose: every tensor's difference);
 * exits 0 when all pass, 1 when one does not, 2 on bad usage or unreadable files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/safetensors.h"

#define MAX_SKIP 16

static double value_at(const struct byol_st_tensor *t, size_t i)
{
    if (t->dtype == BYOL_ST_F64) {
        double v;
        memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
        return v;
    }
    float v;
    memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
    return v;
}

static int64_t int_at(const struct byol_st_tensor *t, size_t i)
{
    if (t->dtype == BYOL_ST_I64) {
        int64_t v;
        memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
        return v;
    }
    if (t->dtype == BYOL_ST_I32) {
        int32_t v;
        memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
        return v;
    }
    return ((const unsigned char *)t->data)[i];
}

static int is_float(enum byol_st_dtype d)
{
    return d == BYOL_ST_F32 || d == BYOL_ST_F64;
}

/* max|a - b| / max|b| for one float tensor (0 when both are all zero; inf when only b is). */
static double relative_error(const struct byol_st_tensor *a, const struct byol_st_tensor *b)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a->numel; i++) {
        double x = value_at(a, i), y = value_at(b, i);
        if (isnan(x) != isnan(y))
            return INFINITY;
        diff = fmax(diff, fabs(x - y));
        scale = fmax(scale, fabs(y));
    }
    if (diff == 0)
        return 0;
    return scale > 0 ? diff / scale : INFINITY;
}

static int skipped(const char *name, const char *const *skip, int n_skip)
{
    for (int i = 0; i < n_skip; i++)
        if (strstr(name, skip[i]))
            return 1;
    return 0;
}

/* Same names, dtypes and shapes in both files (skipped names aside). */
static int same_layout(const struct byol_st_file *fa, const struct byol_st_file *fb,
                       const char *const *skip, int n_skip)
{
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < byol_st_count(fa); i++) {
        const struct byol_st_tensor *a = byol_st_at(fa, i);
        if (skipped(a->name, skip, n_skip))
            continue;
        na++;
        const struct byol_st_tensor *b = byol_st_find(fb, a->name);
        if (!b || b->dtype != a->dtype || b->ndim != a->ndim ||
            memcmp(b->dims, a->dims, sizeof a->dims[0] * (size_t)a->ndim) != 0) {
            printf("FAIL: %s: %s in the second file\n", a->name,
                   b ? "another dtype or shape" : "missing");
            return 0;
        }
    }
    for (size_t i = 0; i < byol_st_count(fb); i++)
        nb += !skipped(byol_st_at(fb, i)->name, skip, n_skip);
    if (na != nb)
        printf("FAIL: the second file has %zu tensors more\n", nb - na);
    return na == nb;
}

static int compare(const struct byol_st_file *fa, const struct byol_st_file *fb, double rtol,
                   const char *const *skip, int n_skip, int verbose)
{
    if (!same_layout(fa, fb, skip, n_skip))
        return 1;
    double worst = 0;
    const char *worst_name = "-";
    size_t n = 0;
    for (size_t i = 0; i < byol_st_count(fa); i++) {
        const struct byol_st_tensor *a = byol_st_at(fa, i);
        const struct byol_st_tensor *b = byol_st_find(fb, a->name);
        if (skipped(a->name, skip, n_skip))
            continue;
        n++;
        if (!is_float(a->dtype)) {
            for (size_t k = 0; k < a->numel; k++)
                if (int_at(a, k) != int_at(b, k)) {
                    printf("FAIL: %s[%zu]: %lld vs %lld\n", a->name, k, (long long)int_at(a, k),
                           (long long)int_at(b, k));
                    return 1;
                }
            continue;
        }
        double e = relative_error(a, b);
        if (verbose)
            printf("%-64s %.3g\n", a->name, e);
        if (e > worst || (e == worst && worst_name[0] == '-')) {
            worst = e;
            worst_name = a->name;
        }
    }
    printf("%zu tensors, largest relative difference %.3g (%s), tolerance %.3g\n", n, worst,
           worst_name, rtol);
    return worst <= rtol ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *files[2], *skip[MAX_SKIP];
    int n_files = 0, n_skip = 0, verbose = 0;
    double rtol = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rtol") == 0 && i + 1 < argc)
            rtol = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc && n_skip < MAX_SKIP)
            skip[n_skip++] = argv[++i];
        else if (argv[i][0] != '-' && n_files < 2)
            files[n_files++] = argv[i];
        else
            n_files = 3;
    }
    if (n_files != 2 || !(rtol >= 0)) {
        fprintf(stderr, "usage: st_compare A.safetensors B.safetensors [--rtol X] "
                        "[--skip PART]... [--verbose]\n");
        return 2;
    }
    struct byol_st_file *fa = NULL, *fb = NULL;
    if (byol_st_read(files[0], &fa) != BYOL_OK || byol_st_read(files[1], &fb) != BYOL_OK) {
        fprintf(stderr, "st_compare: %s\n", byol_last_error());
        byol_st_free(fa);
        return 2;
    }
    int rc = compare(fa, fb, rtol, skip, n_skip, verbose);
    byol_st_free(fa);
    byol_st_free(fb);
    return rc;
}
