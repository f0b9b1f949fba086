/* Image files for the folder dataset: PNG and JPEG decoded to 8-bit gray or RGB (whole, or the
 * part of a JPEG a view needs at a reduced DCT scale), the resize + center crop that
 * torchvision's Resize and CenterCrop do on PIL images, and a region resampled straight to an
 * output size (RandomResizedCrop on a PIL image). */
#ifndef BYOL_IMAGE_INTERNAL_H
#define BYOL_IMAGE_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

/* An 8-bit image, pixels interleaved (HWC), rows packed. */
struct byol_image {
    uint8_t *px; /* malloc'ed, w * h * c bytes */
    int w, h, c;
};

/* Part of an image: `img` holds the original's pixels at scale scale_num / 8 (JPEG's
 * DCT-domain scaling; 8 for a PNG), from the scaled image's column x0 and row y0 on. */
struct byol_image_part {
    struct byol_image img;
    int x0, y0;
    int scale_num;
};

/* An image file read into memory and the size its header declares, not yet decoded. */
struct byol_image_file {
    const char *path; /* borrowed */
    uint8_t *data;    /* malloc'ed */
    size_t size;
    int w, h;
    int jpeg; /* 1: JPEG (scalable), 0: PNG */
};

/* The largest image file read, in bytes (a compressed image far beyond this is no dataset). */
#define BYOL_IMAGE_MAX_FILE_BYTES (UINT64_C(256) << 20)
/* libjpeg's working memory per image (a progressive file holds all its coefficients: 2 bytes
 * per sample, 384 MiB for the largest image allowed without subsampling). */
#define BYOL_JPEG_MAX_MEMORY (512L << 20)
/* Deflate's largest expansion: a 258-byte match coded in 2 bits. */
#define IMAGE_DEFLATE_MAX_RATIO 1032

/* Decode the PNG or JPEG file at `path` (chosen by its signature) to `channels` (1: gray as
 * PIL's convert("L"), 3: RGB). Width, height and pixel count are checked against
 * BYOL_IMAGE_MAX_SIDE / BYOL_IMAGE_MAX_PIXELS before pixel memory is allocated. Errors name
 * the file: BYOL_ERR_NOT_FOUND / BYOL_ERR_IO, BYOL_ERR_FORMAT ("corrupt PNG (...)", "corrupt
 * JPEG (...)", "image too large", "not a PNG or JPEG file"). On success free(out->px). */
byol_status byol_image_decode_file(const char *path, int channels, struct byol_image *out);

/* The same from bytes in memory; `path` only names them in messages. */
byol_status byol_image_decode(const char *path, const uint8_t *data, size_t size, int channels,
                              struct byol_image *out);

/* Read the image file at `path` and its header's size (checked against the limits). Errors as
 * byol_image_decode_file's, for the header. On success byol_image_file_free(f). */
byol_status byol_image_file_read(const char *path, struct byol_image_file *f);
void byol_image_file_free(struct byol_image_file *f);

/* Decode the part of `f` that covers the original's pixels rect = (x0, y0, x1, y1) (inside the
 * image) at scale scale_num / 8 (1..8; a PNG is always decoded whole at 8 / 8): a JPEG's rows
 * outside the part are entropy-decoded only and its columns are cut at whole iMCU blocks
 * (jpeg_skip_scanlines, jpeg_crop_scanline), so damage anywhere in the file still fails the
 * image. On success free(out->img.px). */
byol_status byol_image_decode_part(const struct byol_image_file *f, int channels, int scale_num,
                                   const int rect[4], struct byol_image_part *out);

/* The pixel rectangle (x0, y0, x1, y1) that holds span (fractional pixels): rounded outwards,
 * widened by `margin` on every side, clamped to [0, w] x [0, h]. */
static inline void byol_span_pixels(const double span[4], int margin, int w, int h, int r[4])
{
    int lim[2] = {w, h};
    for (int i = 0; i < 4; i++) {
        r[i] = i < 2 ? (int)floor(span[i]) - margin : (int)ceil(span[i]) + margin;
        r[i] = r[i] < 0 ? 0 : r[i] > lim[i % 2] ? lim[i % 2] : r[i];
    }
}

/* Resize `in` so its shorter side is `size` (PIL's antialiased bilinear, as
 * torchvision.transforms.Resize(size) on a PIL image), crop the center size x size square
 * (CenterCrop(size)) and write it as in->c x size x size floats, u8 / 255 (ToTensor). */
byol_status byol_image_resize_crop(const struct byol_image *in, int size, float *out_chw);

/* The sub-image clip = (x0, y0, x1, y1) of `in` cut out (Image.crop), then its span box =
 * (x0, y0, x1, y1) (fractional pixels, relative to the clip) resampled to ow x oh as
 * Image.resize(size, BILINEAR, box) does: antialiased when shrinking, filter taps never
 * reaching outside the clip. Written as in->c x oh x ow floats, u8 / 255. With box = the whole
 * clip this is torchvision's resized_crop on a PIL image. */
byol_status byol_image_resample_region(const struct byol_image *in, const int clip[4],
                                       const double box[4], int oh, int ow, float *out_chw);

/* Region box = {top, left, height, width} of the original, which `part` covers, resampled to
 * ow x oh: the part's pixels the region touches are cut out (Image.crop) and the region's exact
 * span within them, fractional at a reduced scale, resampled (Image.resize with a box). At
 * scale 8 / 8 this is torchvision's resized_crop on a PIL image, to the bit. */
byol_status byol_image_part_resample(const struct byol_image_part *part, const int box[4], int oh,
                                     int ow, float *out_chw);

#endif
