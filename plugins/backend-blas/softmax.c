/* The grouped softmax of backend-blas (BYOL_OP_SOFTMAX): y = softmax(x / T) over each run of
 * `group` consecutive features, as the simplicial embedding (SEM) of byol-pytorch computes it.
 * Its backward, shared with backend-onednn, is plugins/common/softmax.c. */
#include <math.h>

#include "blas_internal.h"

void softmax_forward(float *y,       // (rows, group): rows = N * F / group
                     const float *x, // (rows, group)
                     size_t rows, int group, float temperature, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * (size_t)group;
        float *yr = y + r * (size_t)group;
        /* PyTorch divides first (t / temperature), then takes a max-shifted softmax. */
        float m = -INFINITY;
        for (int i = 0; i < group; i++) {
            yr[i] = xr[i] / temperature;
            if (yr[i] > m)
                m = yr[i];
        }
        double sum = 0.0;
        for (int i = 0; i < group; i++) {
            yr[i] = expf(yr[i] - m);
            sum += yr[i];
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < group; i++)
            yr[i] *= inv;
    }
}
