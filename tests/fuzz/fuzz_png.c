/* libFuzzer target: the PNG front end of the folder dataset (core/image_decode.c) on arbitrary
 * bytes behind a PNG signature, to gray and to RGB, then the resize + center crop. */
#include "fuzz_util.h"
#include "image_internal.h"

static void decode(const uint8_t *data, size_t size, int channels)
{
    struct byol_image img;
    if (byol_image_decode("fuzz.png", data, size, channels, &img) != BYOL_OK)
        return;
    if (img.w <= 512 && img.h <= 512) { /* the resize costs w*h: keep the fuzzer fast */
        float out[3 * 7 * 7];
        (void)byol_image_resize_crop(&img, 7, out);
    }
    free(img.px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t sig[8] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a};
    if (size < sizeof sig || size > (1u << 20))
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memcpy(buf, sig, sizeof sig); /* the signature picks the decoder: keep it this one */
    decode(buf, size, 3);
    decode(buf, size, 1);
    free(buf);
    return 0;
}
