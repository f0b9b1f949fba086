/* The memory-bound ops of backend-blas: max pool, global average pool, relu, add and the
 * gradient copies of add and flatten. */
#include <math.h>
#include <string.h>

#include "blas_internal.h"

void maxpool_forward(float *y,        // (N,C,OH,OW)
                     int32_t *argmax, // (N,C,OH,OW): h*W + w of each max within its plane
                     const float *x,  // (N,C,H,W)
                     int n, int c, int h, int w, int oh, int ow, int kernel, int stride, int pad,
                     int threads)
{
    int planes = n * c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w;
        float *yp = y + (size_t)p * oh * ow;
        int32_t *ip = argmax + (size_t)p * oh * ow;
        for (int i = 0; i < oh; i++) {
            int h0 = i * stride - pad, h1 = h0 + kernel;
            if (h0 < 0)
                h0 = 0;
            if (h1 > h)
                h1 = h;
            for (int j = 0; j < ow; j++) {
                int w0 = j * stride - pad, w1 = w0 + kernel;
                if (w0 < 0)
                    w0 = 0;
                if (w1 > w)
                    w1 = w;
                /* Padding is -inf, so only in-bounds elements compete; as in PyTorch the
                 * first maximum in scan order wins, and an all -inf window points at its
                 * first element. */
                int32_t best = h0 * w + w0;
                float m = -INFINITY;
                for (int hh = h0; hh < h1; hh++)
                    for (int ww = w0; ww < w1; ww++) {
                        float v = xp[hh * w + ww];
                        if (v > m) {
                            m = v;
                            best = hh * w + ww;
                        }
                    }
                yp[i * ow + j] = m;
                ip[i * ow + j] = best;
            }
        }
    }
}

void maxpool_backward(float *dx,             // (N,C,H,W)
                      const float *dy,       // (N,C,OH,OW)
                      const int32_t *argmax, // (N,C,OH,OW)
                      int n, int c, int h, int w, int oh, int ow, int accumulate, int threads)
{
    int planes = n * c;
    size_t hw = (size_t)h * w, ohw = (size_t)oh * ow;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < planes; p++) {
        float *dxp = dx + (size_t)p * hw;
        const float *dyp = dy + (size_t)p * ohw;
        const int32_t *ip = argmax + (size_t)p * ohw;
        if (!accumulate)
            memset(dxp, 0, sizeof(float) * hw);
        for (size_t i = 0; i < ohw; i++)
            dxp[ip[i]] += dyp[i];
    }
}

void avgpool_forward(float *y,       // (N,C)
                     const float *x, // (N,C,H,W)
                     int nc, int hw, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < nc; p++) {
        const float *xp = x + (size_t)p * hw;
        double s = 0.0;
        for (int i = 0; i < hw; i++)
            s += xp[i];
        y[p] = (float)(s / hw);
    }
}

void avgpool_backward(float *dx,       // (N,C,H,W)
                      const float *dy, // (N,C)
                      int nc, int hw, int accumulate, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < nc; p++) {
        float *dxp = dx + (size_t)p * hw;
        float g = dy[p] / (float)hw;
        if (accumulate)
            for (int i = 0; i < hw; i++)
                dxp[i] += g;
        else
            for (int i = 0; i < hw; i++)
                dxp[i] = g;
    }
}

void relu_forward(float *y,       // (n)
                  const float *x, // (n)
                  size_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes through, as in PyTorch */
}

void relu_backward(float *dx,       // (n)
                   const float *dy, // (n)
                   const float *y,  // (n) the forward's output (or its input: same sign)
                   size_t n, int accumulate, int threads)
{
    /* threshold_backward: the gradient passes where the output is positive, not at zero. */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = y[i] > 0.0f ? dy[i] : 0.0f;
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

void add_forward(float *y,        // (n)
                 const float *x0, // (n)
                 const float *x1, // (n)
                 size_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = x0[i] + x1[i];
}

void copy_grad(float *dx,       // (n)
               const float *dy, // (n)
               size_t n, int accumulate, int threads)
{
    if (!accumulate) {
        if (dx != dy)
            memcpy(dx, dy, sizeof(float) * n);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}
