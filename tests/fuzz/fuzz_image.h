/* The body of the PNG and JPEG targets: arbitrary bytes behind the format's signature (which
 * picks the decoder in core/data/image_decode.c), decoded to RGB and to gray, then resized and
 * center-cropped. */
#ifndef BYOL_FUZZ_IMAGE_H
#define BYOL_FUZZ_IMAGE_H

#include "fuzz_util.h"
#include "image_internal.h"

static inline void fuzz_image_decode(const char *name, const uint8_t *data, size_t size,
                                     int channels)
{
    struct byol_image img;
    if (byol_image_decode(name, data, size, channels, &img) != BYOL_OK)
        return;
    if (img.w <= 512 && img.h <= 512) { /* the resize costs w*h: keep the fuzzer fast */
        float out[3 * 7 * 7];
        (void)byol_image_resize_crop(&img, 7, out);
    }
    free(img.px);
}

static inline int fuzz_image(const char *name, const uint8_t *sig, size_t sig_len,
                             const uint8_t *data, size_t size)
{
    if (size < sig_len || size > (1u << 20))
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memcpy(buf, sig, sig_len);
    fuzz_image_decode(name, buf, size, 3);
    fuzz_image_decode(name, buf, size, 1);
    free(buf);
    return 0;
}

#endif
