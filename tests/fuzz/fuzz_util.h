/* Shared helpers for the libFuzzer targets: the entry point's prototype, and fuzz input
 * presented as a file (a memfd behind /proc/self/fd/N) for readers that only take paths. */
#ifndef BYOL_FUZZ_UTIL_H
#define BYOL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A reusable in-memory file; `slot` picks one of a few, so a target can hold several. */
static inline const char *fuzz_file(int slot, const void *data, size_t size)
{
    static int fds[4] = {-1, -1, -1, -1};
    static char paths[4][64];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("byol-fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0 ||
        (size && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
    return paths[slot];
}

/* Config text from fuzz input: a NUL-terminated copy (the caller frees it), or NULL when memory
 * runs out or the input holds an '@'. @include reads other files (libconfig 1.5 has no hook to
 * stop it): not the config targets' business, and /dev/zero would hang them. */
static inline char *fuzz_config_text(const uint8_t *data, size_t size)
{
    if (memchr(data, '@', size))
        return NULL;
    char *text = malloc(size + 1);
    if (!text)
        return NULL;
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

/* Read every image (up to `max`) and label of a dataset that opened: the reader's own loads
 * are what ASan checks, so a handle that claims more data than it holds shows up here. */
#ifdef BYOL_DATASET_H
static inline void fuzz_read_dataset(struct byol_dataset *ds, size_t max)
{
    int c, h, w;
    byol_dataset_shape(ds, &c, &h, &w);
    size_t n = byol_dataset_count(ds), px = (size_t)c * (size_t)h * (size_t)w;
    float *buf = malloc(px ? px * sizeof *buf : 1);
    if (!buf)
        abort();
    for (size_t i = 0; i < n && i < max; i++) {
        (void)byol_dataset_get(ds, i, buf);
        (void)byol_dataset_label(ds, i);
    }
    if (n) { /* the last one, where an off-by-one would be */
        (void)byol_dataset_get(ds, n - 1, buf);
        (void)byol_dataset_label(ds, n - 1);
    }
    free(buf);
}
#endif

#endif
