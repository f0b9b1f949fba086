/* Shared by the files of the standard augmentation plugin: the host table, setting readers
 * that check ranges and point at the offending line, and the random draws every op uses. */
#ifndef BYOL_AUGMENT_STD_INTERNAL_H
#define BYOL_AUGMENT_STD_INTERNAL_H

#include "byol/augment.h"

/* Set once by the entry point; the plugin's only global. */
extern const struct byol_host_api *aug_host;

/* Probability `name` (default `def`), checked to be in [0, 1]. */
byol_status aug_prob(const struct byol_settings *s, const char *name, double def, double *p);
/* A range: a number v gives [center - v, center + v] (clipped below at `min`), a list gives
 * [lo, hi]; both ends must lie in [min, max] with lo <= hi. Missing: [def_lo, def_hi]. */
byol_status aug_range(const struct byol_settings *s, const char *name, double center, double min,
                      double max, double def_lo, double def_hi, double out[2]);
/* An explicit [lo, hi] pair only (scale, ratio, sigma); a single number v means [v, v]. */
byol_status aug_pair(const struct byol_settings *s, const char *name, double def_lo, double def_hi,
                     double min_excl, double out[2]);
/* A size: an integer n ([n, n], or the smaller edge when `edge` is set, reported as *edge_only =
 * 1) or [height, width]. Missing: [def, def]. Each must be >= 1. */
byol_status aug_size(const struct byol_settings *s, const char *name, int def, int out[2],
                     int *edge_only);
/* A message about `name` in `s` (its own line when set, else the group's). */
byol_status aug_fail(const struct byol_settings *s, const char *name, const char *fmt, ...)
    BYOL_PRINTF(3, 4);

/* Uniform double in [0, 1) with 53 bits, uniform in [lo, hi), uniform integer in [0, n). */
double aug_uniform(struct byol_rng *rng);
double aug_uniform_in(struct byol_rng *rng, double lo, double hi);
int aug_randint(struct byol_rng *rng, int n);

/* Each op's ops struct, defined next to its code. */
extern const struct byol_augment_ops aug_random_resized_crop_ops, aug_horizontal_flip_ops,
    aug_resize_ops, aug_center_crop_ops, aug_color_jitter_ops, aug_grayscale_ops, aug_solarize_ops,
    aug_normalize_ops, aug_gaussian_blur_ops;

/* Bilinear resize of the h x w window at (top, left) of a C x H x W image to C x oh x ow,
 * with PyTorch's interpolate(mode="bilinear", align_corners=False, antialias=False). */
void aug_resize_bilinear(const float *in, int c, int H, int W, int top, int left, int h, int w,
                         float *out, int oh, int ow);

/* ITU-R 601 luma with torchvision's weights (0.2989, 0.587, 0.114), in float32 as it does. */
static inline float aug_luma(float r, float g, float b)
{
    return 0.2989f * r + 0.587f * g + 0.114f * b;
}

#endif
