/* Inside the core: the record of resolved settings that core/runtime/settings.c keeps in each config,
 * for core/runtime/config_digest.c to print and hash. */
#ifndef BYOL_SETTINGS_INTERNAL_H
#define BYOL_SETTINGS_INTERNAL_H

#include <stddef.h>

#include "byol/settings.h"

enum settings_origin {
    SETTINGS_FROM_FILE,    /* the file (or an @include) */
    SETTINGS_FROM_SET,     /* byol_config_set (--set) */
    SETTINGS_FROM_DEFAULT, /* not set: the reader's default */
    SETTINGS_NOT_SET,      /* not set, and the reader passed no default (NULL, a list) */
};

/* One resolved read: the dotted path ("train.lr", "augment_fn[0].scale"), the value used as
 * libconfig text (NULL for SETTINGS_NOT_SET), and `also`: a different value a later reader of
 * the same path got (two readers with different defaults), else NULL. */
struct settings_read {
    char *path;
    char *value;
    enum settings_origin origin;
    char *also;
};

/* A copy of the record in first-read order; fails when recording ran out of memory. */
byol_status settings_reads_copy(const struct byol_config *cfg, struct settings_read **out,
                                size_t *n);
void settings_reads_free(struct settings_read *r, size_t n);

#endif
