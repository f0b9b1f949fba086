/* Image files for the folder dataset: PNG and JPEG decoded to 8-bit gray or RGB, and the
 * resize + center crop that torchvision's Resize and CenterCrop do on PIL images. */
#ifndef BYOL_IMAGE_INTERNAL_H
#define BYOL_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

/* An 8-bit image, pixels interleaved (HWC), rows packed. */
struct byol_image {
    uint8_t *px; /* malloc'ed, w * h * c bytes */
    int w, h, c;
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

/* Resize `in` so its shorter side is `size` (PIL's antialiased bilinear, as
 * torchvision.transforms.Resize(size) on a PIL image), crop the center size x size square
 * (CenterCrop(size)) and write it as in->c x size x size floats, u8 / 255 (ToTensor). */
byol_status byol_image_resize_crop(const struct byol_image *in, int size, float *out_chw);

#endif
