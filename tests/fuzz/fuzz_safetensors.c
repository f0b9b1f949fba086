/* libFuzzer target: the safetensors reader (byol_st_parse) on arbitrary bytes; every tensor of
 * a file it accepts is looked up by name and read end to end. */
#include "byol/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct byol_st_file *f = NULL;
    if (byol_st_parse(data, size, "fuzz.safetensors", &f) != BYOL_OK)
        return 0;
    size_t n = byol_st_count(f);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        const struct byol_st_tensor *t = byol_st_at(f, i);
        if (byol_st_find(f, t->name) != t)
            abort(); /* names are unique, so lookup must find this very tensor */
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++)
            sum += p[k];
        char dims[128];
        byol_st_format_dims(dims, sizeof dims, t->dims, t->ndim);
        (void)byol_st_dtype_name(t->dtype);
    }
    (void)byol_st_metadata(f, "format");
    byol_st_free(f);
    return (int)(sum & 0);
}
