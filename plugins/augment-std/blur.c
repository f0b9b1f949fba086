/* gaussian_blur: torchvision's kernel (linspace, exp, normalised) with reflect padding, applied
 * as two 1-d passes, which equals its 2-d outer-product kernel up to float rounding. */
#include <math.h>
#include <string.h>

#include "std_internal.h"

#define BLUR_MAX_KERNEL 255

struct blur {
    int c, h, w;
    int kx, ky; /* odd */
    double sigma[2];
};

static void blur_destroy(void *state)
{
    aug_host->free(state);
}

static byol_status blur_check(const struct byol_settings *s, const struct blur *b)
{
    if (b->kx % 2 == 0 || b->ky % 2 == 0 || b->kx > BLUR_MAX_KERNEL || b->ky > BLUR_MAX_KERNEL)
        return aug_fail(s, "kernel_size", "must be odd and at most %d, got %dx%d", BLUR_MAX_KERNEL,
                        b->kx, b->ky);
    /* Reflect padding (as torch.nn.functional.pad) needs the pad smaller than the image. */
    if (b->kx / 2 >= b->w || b->ky / 2 >= b->h)
        return aug_fail(s, "kernel_size", "%dx%d is too large for %dx%d images", b->kx, b->ky, b->h,
                        b->w);
    return BYOL_OK;
}

static byol_status blur_create(const struct byol_host_api *host, const struct byol_settings *s,
                               const struct byol_augment_info *info, void **state)
{
    static const char *const keys[] = {"op", "kernel_size", "sigma", NULL};
    struct blur *b = host->alloc(sizeof *b);
    int k[2];
    if (!b)
        return host->error(BYOL_ERR_NOMEM, "augment-std: out of memory");
    b->c = info->channels;
    b->h = info->height;
    b->w = info->width;
    byol_status st = host->setting_check_keys(s, keys);
    if (st == BYOL_OK && !host->setting_child(s, "kernel_size"))
        st = host->setting_error(s, BYOL_ERR_INVALID,
                                 "gaussian_blur: missing required 'kernel_size' (an odd "
                                 "integer or [kx, ky])");
    if (st == BYOL_OK)
        st = aug_size(s, "kernel_size", 0, k, NULL);
    if (st == BYOL_OK) {
        /* torchvision's kernel_size is (kx, ky): width first. */
        b->kx = k[0];
        b->ky = k[1];
        st = blur_check(s, b);
    }
    if (st == BYOL_OK)
        st = aug_pair(s, "sigma", 0.1, 2.0, 0.0, b->sigma);
    if (st != BYOL_OK) {
        blur_destroy(b);
        return st;
    }
    *state = b;
    return BYOL_OK;
}

/* torchvision's _get_gaussian_kernel1d in float32. */
static void blur_kernel(int k, float sigma, float *out)
{
    float half = (float)(k - 1) * 0.5f, sum = 0.0f;
    for (int i = 0; i < k; i++) {
        float x = -half + (float)i; /* linspace(-half, half, k): whole or half steps, exact */
        float t = x / sigma;
        out[i] = expf(-0.5f * (t * t));
        sum += out[i];
    }
    for (int i = 0; i < k; i++)
        out[i] /= sum;
}

static inline int reflect(int i, int n)
{
    return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
}

/* Along each row: the row with its reflected borders in `pad` (w + k - 1 floats), then tap by
 * tap over the whole row, so each output adds its k products in tap order, as one loop per
 * pixel would, while the inner loop runs over contiguous pixels. */
static void blur_rows(const struct blur *b, const float *in, float *out, const float *kern, int k,
                      float *pad)
{
    int half = k / 2, w = b->w;
    for (size_t r = 0; r < (size_t)b->c * b->h; r++) {
        const float *src = in + r * w;
        float *dst = out + r * w;
        for (int x = 0; x < w + 2 * half; x++)
            pad[x] = src[reflect(x - half, w)];
        for (int x = 0; x < w; x++)
            dst[x] = 0.0f;
        for (int j = 0; j < k; j++)
            for (int x = 0; x < w; x++)
                dst[x] += kern[j] * pad[x + j];
    }
}

/* Along each column: output row y adds source rows reflect(y + j - half), tap by tap. */
static void blur_cols(const struct blur *b, const float *in, float *out, const float *kern, int k)
{
    int half = k / 2, w = b->w;
    for (int c = 0; c < b->c; c++) {
        const float *src = in + (size_t)c * b->h * w;
        float *plane = out + (size_t)c * b->h * w;
        for (int y = 0; y < b->h; y++) {
            float *dst = plane + (size_t)y * w;
            for (int x = 0; x < w; x++)
                dst[x] = 0.0f;
            for (int j = 0; j < k; j++) {
                const float *row = src + (size_t)reflect(y + j - half, b->h) * w;
                for (int x = 0; x < w; x++)
                    dst[x] += kern[j] * row[x];
            }
        }
    }
}

static byol_status blur_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct blur *b = state;
    float kx[BLUR_MAX_KERNEL], ky[BLUR_MAX_KERNEL];
    float sigma = (float)aug_uniform_in(rng, b->sigma[0], b->sigma[1]);
    float *tmp =
        aug_host->alloc(((size_t)b->c * b->h * b->w + (size_t)b->w + b->kx) * sizeof(float));
    if (!tmp)
        return aug_host->error(BYOL_ERR_NOMEM, "gaussian_blur: out of memory");
    blur_kernel(b->kx, sigma, kx);
    blur_kernel(b->ky, sigma, ky);
    blur_rows(b, in, tmp, kx, b->kx, tmp + (size_t)b->c * b->h * b->w);
    blur_cols(b, tmp, out, ky, b->ky);
    aug_host->free(tmp);
    return BYOL_OK;
}

const struct byol_augment_ops aug_gaussian_blur_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_augment_ops),
    .name = "gaussian_blur",
    .version = "0.1.0",
    .description = "Gaussian blur, kernel_size (odd) and sigma drawn from [lo, hi]",
    .create = blur_create,
    .apply = blur_apply,
    .destroy = blur_destroy,
};
