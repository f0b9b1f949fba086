/* The machine's float32 matrix-multiply ceiling as OpenBLAS reaches it: the best of a few
 * C = A x B products of square N x N matrices (N = 2048 unless given), in GFLOP/s (2 N^3 FLOP
 * per product). OpenBLAS's own environment applies: OPENBLAS_NUM_THREADS sets the threads and
 * OPENBLAS_CORETYPE (a DYNAMIC_ARCH build) the kernels, e.g. Haswell (AVX2) or SkylakeX
 * (AVX-512). bench/side_by_side.py builds and runs it beside byol-c's effective GFLOP/s:
 *
 *   cc -O2 bench/sgemm_peak.c -lopenblas -o sgemm_peak && OPENBLAS_NUM_THREADS=2 ./sgemm_peak
 *
 * Prints one line: "<GFLOP/s> GFLOP/s sgemm N=2048 best of 5 (OpenBLAS core <name>, <threads>
 * threads)". Not part of the build or of the tests. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* OpenBLAS extensions, declared here so that any cblas.h will do. */
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 16 || n > 16384 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: sgemm_peak [N (16..16384, default 2048)] [REPEATS (default 5)]\n");
        return 2;
    }
    size_t count = (size_t)n * (size_t)n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b);
    float *c = malloc(count * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_peak: out of memory for N = %d\n", n);
        return 1;
    }
    unsigned s = 12345u; /* fixed pseudo-random values in [-0.5, 0.5) */
    for (size_t i = 0; i < count; i++) {
        s = s * 1103515245u + 12345u;
        a[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        s = s * 1103515245u + 12345u;
        b[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        c[i] = 0.0f;
    }
    /* One untimed product: threads started, pages touched. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    double gflops = 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
    printf("%.1f GFLOP/s sgemm N=%d best of %d (OpenBLAS core %s, %d threads)\n", gflops, n, reps,
           openblas_get_corename(), openblas_get_num_threads());
    free(a);
    free(b);
    free(c);
    return 0;
}
