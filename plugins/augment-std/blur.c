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

/* One 1-d pass along rows (step 1) or columns (step w) of each plane. */
static void blur_pass(const struct blur *b, const float *in, float *out, const float *kern, int k,
                      int vertical)
{
    int half = k / 2;
    for (int c = 0; c < b->c; c++) {
        const float *src = in + (size_t)c * b->h * b->w;
        float *dst = out + (size_t)c * b->h * b->w;
        for (int y = 0; y < b->h; y++)
            for (int x = 0; x < b->w; x++) {
                float acc = 0.0f;
                for (int j = 0; j < k; j++) {
                    int yy = vertical ? reflect(y + j - half, b->h) : y;
                    int xx = vertical ? x : reflect(x + j - half, b->w);
                    acc += kern[j] * src[(size_t)yy * b->w + xx];
                }
                dst[(size_t)y * b->w + x] = acc;
            }
    }
}

static byol_status blur_apply(const void *state, const float *in, float *out, struct byol_rng *rng)
{
    const struct blur *b = state;
    float kx[BLUR_MAX_KERNEL], ky[BLUR_MAX_KERNEL];
    float sigma = (float)aug_uniform_in(rng, b->sigma[0], b->sigma[1]);
    float *tmp = aug_host->alloc((size_t)b->c * b->h * b->w * sizeof(float));
    if (!tmp)
        return aug_host->error(BYOL_ERR_NOMEM, "gaussian_blur: out of memory");
    blur_kernel(b->kx, sigma, kx);
    blur_kernel(b->ky, sigma, ky);
    blur_pass(b, in, tmp, kx, b->kx, 0);
    blur_pass(b, tmp, out, ky, b->ky, 1);
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
