/* libFuzzer target: the CIFAR-10 batch reader on arbitrary bytes, alone and after a valid
 * one-record batch (two files concatenated). */
#include "byol/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t one[1 + 3 * 32 * 32] = {3};
    struct byol_dataset *ds = NULL;
    const char *paths[2] = {fuzz_file(1, one, sizeof one), fuzz_file(0, data, size)};
    if (byol_dataset_open_cifar(paths + 1, 1, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 16);
        byol_dataset_free(ds);
    }
    if (byol_dataset_open_cifar(paths, 2, &ds) == BYOL_OK) {
        fuzz_read_dataset(ds, 16);
        byol_dataset_free(ds);
    }
    return 0;
}
