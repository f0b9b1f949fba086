/* A config's text as libconfig parses it: the top file with every @include expanded in place,
 * read by us rather than by libconfig's scanner, so that
 *  - an @include is resolved against the folder of the file that contains it (an absolute
 *    path as it is), and a bad one is named with the file and line that asks for it;
 *  - only regular files are read, without ever blocking on a FIFO or a device;
 *  - reading is linear in the text's size (libconfig's file scanner is quadratic in the length
 *    of one string; its string scanner is not).
 * Each line of the expanded text maps back to its file and line, for messages. Not installed. */
#ifndef BYOL_CONFIG_SOURCE_INTERNAL_H
#define BYOL_CONFIG_SOURCE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "byol/status.h"

struct config_source_line {
    uint32_t file; /* index into files */
    uint32_t line; /* 1-based, in that file */
};

struct config_source {
    char *text; /* NUL-terminated */
    size_t len;
    struct config_source_line *lines; /* lines[i]: where line i + 1 of text comes from */
    size_t nlines;
    char **files; /* files[0] is the top file's name as given; the others as resolved */
    size_t nfiles;
};

/* Read `path` (or, when `text` is not NULL, that text under the name `path`, its includes
 * resolved against the working folder) and expand its includes. Each file may hold up to
 * `max_file` bytes and the expansion up to 4 x max_file. Messages: "FILE: cannot open: ...",
 * "FILE:LINE: cannot open include file \"NAME\"", ... On failure *out is empty. */
byol_status config_source_read(const char *path, const char *text, size_t max_file,
                               struct config_source *out);
void config_source_free(struct config_source *s);

/* libconfig 1.5 reads an integer without an L suffix as 32 bits, silently wrapping
 * 9999999999 to 1410065407, and one beyond 64 bits as -1. Rewrites `text` so that integers
 * outside 32 bits carry the suffix (in code, not in strings or comments). Fails with
 * BYOL_ERR_INVALID on an integer outside 64 bits, with *bad_at its offset in `text` and the
 * message "N does not fit a 64-bit integer". *out is malloc'ed. */
byol_status config_source_widen_ints(const char *text, size_t len, char **out, size_t *out_len,
                                     size_t *bad_at);

/* The file and line that line `line` (1-based) of the expanded text comes from; the top
 * file's name and `line` itself when it is out of range (0: a setting from --set). */
const char *config_source_where(const struct config_source *s, unsigned line, unsigned *file_line);

#endif
