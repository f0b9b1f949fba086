/* The gemm-based ops of backend-blas: conv2d (im2col + sgemm, one sample at a time) and
 * linear. Both follow PyTorch's weight layouts: conv (O,C,KH,KW), linear (O,F).
 * OpenBLAS runs single-threaded (see blas.c): each OpenMP thread calls sgemm on its own
 * samples or its own block of rows, with no barriers in between. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "blas_internal.h"

/* The output columns [lo, hi) whose input column ow*s - p + k falls inside [0, size). */
static void valid_range(int out_size, int size, int k, int s, int p, int *lo, int *hi)
{
    int a = p - k; /* ow*s >= p - k */
    int first = a <= 0 ? 0 : (a + s - 1) / s;
    int b = size - 1 + p - k; /* ow*s <= size - 1 + p - k */
    int last = b < 0 ? -1 : b / s;
    if (last > out_size - 1)
        last = out_size - 1;
    *lo = first < out_size ? first : out_size;
    *hi = last + 1 > *lo ? last + 1 : *lo;
}

/* [lo, hi) of the t-th of `parts` near-equal pieces of [0, total). */
static void split(int total, int parts, int t, int *lo, int *hi)
{
    int q = total / parts, r = total % parts;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

/* col (C*KH*KW, OH*OW) from one sample x (C,H,W); zero where the window hangs over the edge. */
static void im2col(float *col, const float *x, const struct conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    for (int r = 0; r < g->c * g->kh * g->kw; r++) {
        int kw = r % g->kw, kh = (r / g->kw) % g->kh, c = r / (g->kw * g->kh);
        const float *xc = x + (size_t)c * g->h * g->w;
        float *dst = col + (size_t)r * ohw;
        int lo, hi;
        valid_range(g->ow, g->w, kw, g->sw, g->pw, &lo, &hi);
        for (int oh = 0; oh < g->oh; oh++) {
            float *row = dst + (size_t)oh * g->ow;
            int ih = oh * g->sh - g->ph + kh;
            if (ih < 0 || ih >= g->h) {
                memset(row, 0, sizeof(float) * (size_t)g->ow);
                continue;
            }
            /* Offset of output column 0 in this input row; only valid columns are read. */
            ptrdiff_t base = (ptrdiff_t)ih * g->w - g->pw + kw;
            for (int ow = 0; ow < lo; ow++)
                row[ow] = 0.0f;
            if (g->sw == 1 && hi > lo)
                memcpy(row + lo, xc + base + lo, sizeof(float) * (size_t)(hi - lo));
            else
                for (int ow = lo; ow < hi; ow++)
                    row[ow] = xc[base + (ptrdiff_t)ow * g->sw];
            for (int ow = hi; ow < g->ow; ow++)
                row[ow] = 0.0f;
        }
    }
}

/* dx (C,H,W) += the scatter of col (C*KH*KW, OH*OW), the adjoint of im2col. */
static void col2im(float *dx, const float *col, const struct conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    for (int c = 0; c < g->c; c++) {
        float *dxc = dx + (size_t)c * g->h * g->w;
        for (int kh = 0; kh < g->kh; kh++) {
            for (int kw = 0; kw < g->kw; kw++) {
                const float *src = col + ((size_t)(c * g->kh + kh) * g->kw + kw) * ohw;
                int lo, hi;
                valid_range(g->ow, g->w, kw, g->sw, g->pw, &lo, &hi);
                for (int oh = 0; oh < g->oh; oh++) {
                    int ih = oh * g->sh - g->ph + kh;
                    if (ih < 0 || ih >= g->h)
                        continue;
                    const float *row = src + (size_t)oh * g->ow;
                    ptrdiff_t base = (ptrdiff_t)ih * g->w - g->pw + kw;
                    for (int ow = lo; ow < hi; ow++)
                        dxc[base + (ptrdiff_t)ow * g->sw] += row[ow];
                }
            }
        }
    }
}

void conv2d_forward(float *y,            // (N,O,OH,OW)
                    float *col,          // threads x (C*KH*KW, OH*OW) scratch; NULL when direct
                    const float *x,      // (N,C,H,W)
                    const float *weight, // (O,C,KH,KW)
                    const float *bias,   // (O) or NULL
                    int n, const struct conv_geom *g, int threads)
{
    int k = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    size_t xs = (size_t)g->c * g->h * g->w, ys = (size_t)g->o * ohw;
    /* Samples are independent: each thread takes whole samples with its own scratch. */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < n; b++) {
        const float *a = x + b * xs;
        float *yb = y + b * ys;
        if (!g->direct) {
            float *mine = col + (size_t)omp_get_thread_num() * k * ohw;
            im2col(mine, a, g);
            a = mine;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->o, ohw, k, 1.0f, weight, k, a,
                    ohw, 0.0f, yb, ohw);
        for (int o = 0; bias && o < g->o; o++)
            for (int i = 0; i < ohw; i++)
                yb[(size_t)o * ohw + i] += bias[o];
    }
}

void conv2d_backward_data(float *dx,           // (N,C,H,W)
                          float *col,          // threads x (C*KH*KW, OH*OW) scratch
                          const float *dy,     // (N,O,OH,OW)
                          const float *weight, // (O,C,KH,KW)
                          int n, int accumulate, const struct conv_geom *g, int threads)
{
    int k = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    size_t xs = (size_t)g->c * g->h * g->w, ys = (size_t)g->o * ohw;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < n; b++) {
        float *dxb = dx + b * xs;
        const float *dyb = dy + b * ys;
        if (g->direct) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, ohw, g->o, 1.0f, weight, k, dyb,
                        ohw, accumulate ? 1.0f : 0.0f, dxb, ohw);
            continue;
        }
        float *mine = col + (size_t)omp_get_thread_num() * k * ohw;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, ohw, g->o, 1.0f, weight, k, dyb,
                    ohw, 0.0f, mine, ohw);
        if (!accumulate)
            memset(dxb, 0, sizeof(float) * xs);
        col2im(dxb, mine, g);
    }
}

void conv2d_backward_weights(float *dweight,  // (O,C,KH,KW) +=, or NULL
                             float *dbias,    // (O) +=, or NULL
                             float *col,      // threads x (C*KH*KW, OH*OW) scratch
                             const float *dy, // (N,O,OH,OW)
                             const float *x,  // (N,C,H,W)
                             int n, const struct conv_geom *g, int threads)
{
    int k = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    size_t xs = (size_t)g->c * g->h * g->w, ys = (size_t)g->o * ohw;
    /* Threads own blocks of output channels, so no two add into the same dweight row and each
     * row sums its samples in order, whatever the thread count. Each thread builds its own
     * im2col: repeating that cheap pass beats making every thread wait for a shared one. */
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), o0, o1;
        split(g->o, omp_get_num_threads(), t, &o0, &o1);
        float *mine = g->direct ? NULL : col + (size_t)t * k * ohw;
        for (int b = 0; dweight && o1 > o0 && b < n; b++) {
            const float *a = x + b * xs;
            if (mine) {
                im2col(mine, a, g);
                a = mine;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o1 - o0, k, ohw, 1.0f,
                        dy + b * ys + (size_t)o0 * ohw, ohw, a, ohw, 1.0f, dweight + (size_t)o0 * k,
                        k);
        }
        for (int o = o0; dbias && o < o1; o++) {
            double s = 0.0;
            for (int b = 0; b < n; b++) {
                const float *d = dy + b * ys + (size_t)o * ohw;
                for (int i = 0; i < ohw; i++)
                    s += d[i];
            }
            dbias[o] += (float)s;
        }
    }
}

void linear_forward(float *y,            // (N,O)
                    const float *x,      // (N,F)
                    const float *weight, // (O,F)
                    const float *bias,   // (O) or NULL
                    int n, int in_features, int out_features, int threads)
{
    /* Blocks of output features: each thread streams its own rows of the weight. */
#pragma omp parallel num_threads(threads)
    {
        int o0, o1;
        split(out_features, omp_get_num_threads(), omp_get_thread_num(), &o0, &o1);
        if (o1 > o0) {
            for (int b = 0; bias && b < n; b++)
                memcpy(y + (size_t)b * out_features + o0, bias + o0,
                       sizeof(float) * (size_t)(o1 - o0));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, o1 - o0, in_features, 1.0f, x,
                        in_features, weight + (size_t)o0 * in_features, in_features,
                        bias ? 1.0f : 0.0f, y + o0, out_features);
        }
    }
}

void linear_backward(float *dx,           // (N,F), or NULL
                     float *dweight,      // (O,F) +=, or NULL
                     float *dbias,        // (O) +=, or NULL
                     const float *dy,     // (N,O)
                     const float *x,      // (N,F)
                     const float *weight, // (O,F)
                     int n, int in_features, int out_features, int accumulate, int threads)
{
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), f0, f1, o0, o1;
        split(in_features, nt, t, &f0, &f1);
        split(out_features, nt, t, &o0, &o1);
        if (dx && f1 > f0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, f1 - f0, out_features, 1.0f,
                        dy, out_features, weight + f0, in_features, accumulate ? 1.0f : 0.0f,
                        dx + f0, in_features);
        if (dweight && o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, in_features, n, 1.0f,
                        dy + o0, out_features, x, in_features, 1.0f,
                        dweight + (size_t)o0 * in_features, in_features);
        for (int o = o0; dbias && o < o1; o++) {
            double s = 0.0;
            for (int b = 0; b < n; b++)
                s += dy[(size_t)b * out_features + o];
            dbias[o] += (float)s;
        }
    }
}
