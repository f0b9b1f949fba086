/* libFuzzer target: the JPEG front end of the folder dataset (see fuzz_image.h). */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t sig[3] = {0xff, 0xd8, 0xff};
    return fuzz_image("fuzz.jpeg", sig, sizeof sig, data, size);
}
