/* libFuzzer target: the IDX reader (plain and gzip) on arbitrary bytes, given as the image file
 * and as the label file of a small valid image file. */
#include "byol/dataset.h"
#include "fuzz_util.h"

/* 3 images of 2x2, big-endian IDX header. */
static const uint8_t images3[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,  0,  0,
                                  0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct byol_dataset *ds = NULL;
    const char *in = fuzz_file(0, data, size);
    if (byol_dataset_open_idx(in, NULL, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 64);
        byol_dataset_free(ds);
    }
    const char *img = fuzz_file(1, images3, sizeof images3);
    if (byol_dataset_open_idx(img, in, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 64);
        byol_dataset_free(ds);
    }
    return 0;
}
