/* libFuzzer target: the .npy reader on arbitrary bytes, given as the images and as the labels of
 * a small valid image array. */
#include "byol/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* (2, 1, 2) uint8: 2 images of 1x2, header padded to 128 bytes as numpy writes it. */
    static uint8_t images2[128 + 4];
    if (!images2[0]) {
        static const char head[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 2), }";
        memcpy(images2, "\x93NUMPY\x01\x00", 8);
        images2[8] = 128 - 10;
        memset(images2 + 10, ' ', 118);
        memcpy(images2 + 10, head, sizeof head - 1);
        images2[127] = '\n';
        memcpy(images2 + 128, "\x01\x02\x03\x04", 4);
    }
    struct byol_dataset *ds = NULL;
    const char *in = fuzz_file(0, data, size);
    if (byol_dataset_open_npy(in, NULL, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 64);
        byol_dataset_free(ds);
    }
    if (byol_dataset_open_npy(fuzz_file(1, images2, sizeof images2), in, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 64);
        byol_dataset_free(ds);
    }
    return 0;
}
