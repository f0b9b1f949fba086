/* The ready-made pipelines: byol-pytorch's default (SimCLR-style) augmentation and the BYOL
 * paper's asymmetric pair, as config text. augment.c parses and builds that text like a
 * user's list, so a preset and its spelled-out config behave identically; this file only
 * writes it. */
#include <stdio.h>
#include <string.h>

#include "byol/augment.h"

/* ImageNet statistics; one channel gets their averages (see augment.h). */
static void preset_normalize(char *buf, size_t n, int channels)
{
    if (channels == 1)
        snprintf(buf, n, "{ op = \"normalize\"; mean = [0.449]; std = [0.226]; }");
    else
        snprintf(buf, n,
                 "{ op = \"normalize\"; mean = [0.485, 0.456, 0.406]; std = [0.229, 0.224, "
                 "0.225]; }");
}

/* byol-pytorch's DEFAULT_AUG, in its order. */
static void preset_pytorch_default(char *buf, size_t n, const struct byol_augment_info *in)
{
    char norm[256];
    int rgb = in->channels != 1;
    preset_normalize(norm, sizeof norm, in->channels);
    snprintf(buf, n,
             "augment = (\n"
             "  { op = \"random_apply\"; p = 0.3; ops = ( { op = \"color_jitter\";\n"
             "      brightness = 0.8; contrast = 0.8; %s } ); },\n"
             "  %s\n"
             "  { op = \"horizontal_flip\"; p = 0.5; },\n"
             "  { op = \"random_apply\"; p = 0.2; ops = ( { op = \"gaussian_blur\";\n"
             "      kernel_size = 3; sigma = [1.0, 2.0]; } ); },\n"
             "  { op = \"random_resized_crop\"; size = %d; scale = [0.08, 1.0];\n"
             "      ratio = [0.75, 1.3333333333333333]; },\n"
             "  %s\n"
             ");\n",
             rgb ? "saturation = 0.8; hue = 0.2;" : "",
             rgb ? "{ op = \"grayscale\"; p = 0.2; }," : "", in->image_size, norm);
}

/* Grill et al. 2020, table 6: view 1 always blurs and never solarizes, view 2 blurs with
 * p 0.1 and solarizes with p 0.2. The kernel is about a tenth of the image, odd, at least 3. */
static void preset_byol_paper(char *buf, size_t n, const struct byol_augment_info *in, int view)
{
    char norm[256];
    int rgb = in->channels != 1;
    int kernel = (in->image_size / 10) | 1;
    if (kernel < 3)
        kernel = 3;
    preset_normalize(norm, sizeof norm, in->channels);
    snprintf(buf, n,
             "augment = (\n"
             "  { op = \"random_resized_crop\"; size = %d; scale = [0.08, 1.0]; },\n"
             "  { op = \"horizontal_flip\"; p = 0.5; },\n"
             "  { op = \"random_apply\"; p = 0.8; ops = ( { op = \"color_jitter\";\n"
             "      brightness = 0.4; contrast = 0.4; %s } ); },\n"
             "  %s\n"
             "  { op = \"random_apply\"; p = %s; ops = ( { op = \"gaussian_blur\";\n"
             "      kernel_size = %d; sigma = [0.1, 2.0]; } ); },\n"
             "  { op = \"solarize\"; threshold = 0.5; p = %s; },\n"
             "  %s\n"
             ");\n",
             in->image_size, rgb ? "saturation = 0.2; hue = 0.1;" : "",
             rgb ? "{ op = \"grayscale\"; p = 0.2; }," : "", view == 2 ? "0.1" : "1.0", kernel,
             view == 2 ? "0.2" : "0.0", norm);
}

byol_status byol_augment_preset_text(const char *name, int view, const struct byol_augment_info *in,
                                     char *buf, size_t n)
{
    if (!name || !in || !buf || n < 2048)
        return byol_error(BYOL_ERR_INVALID, "byol_augment_preset_text: bad argument");
    if (strcmp(name, "byol_pytorch_default") == 0)
        preset_pytorch_default(buf, n, in);
    else if (strcmp(name, "byol_paper") == 0)
        preset_byol_paper(buf, n, in, view);
    else
        return byol_error(BYOL_ERR_NOT_FOUND,
                          "unknown augmentation preset '%s' (presets: byol_pytorch_default, "
                          "byol_paper; or a list of ops)",
                          name);
    return BYOL_OK;
}
