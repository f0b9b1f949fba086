/* libFuzzer target: the PNG front end of the folder dataset (see fuzz_image.h). */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t sig[8] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a};
    return fuzz_image("fuzz.png", sig, sizeof sig, data, size);
}
