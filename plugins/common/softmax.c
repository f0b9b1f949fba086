/* The backward of the grouped softmax (BYOL_OP_SOFTMAX), shared by backend-blas and
 * backend-onednn (whose oneDNN has only a reference kernel for it): dx from dy and the
 * forward's y = softmax(x / T) over each run of `group` consecutive features. */
#include "kernels.h"

void softmax_backward(float *dx,       // (rows, group)
                      const float *dy, // (rows, group)
                      const float *y,  // (rows, group) the forward's output
                      size_t rows, int group, float temperature, int accumulate, int threads)
{
    /* d/dz of softmax(z): y * (dy - <dy, y>); the division by T scales it by 1 / T. */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * (size_t)group, *yr = y + r * (size_t)group;
        float *dxr = dx + r * (size_t)group;
        double dot = 0.0;
        for (int i = 0; i < group; i++)
            dot += (double)dyr[i] * yr[i];
        for (int i = 0; i < group; i++) {
            float g = yr[i] * (dyr[i] - (float)dot) / temperature;
            dxr[i] = accumulate ? dxr[i] + g : g;
        }
    }
}
