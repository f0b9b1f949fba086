/* Config files (libconfig syntax) and read-only views of their subtrees. The core reads its
 * own settings through the same accessors that plugins get in the host table, so every error
 * reads "FILE:LINE: PATH: what is wrong". */
#ifndef BYOL_SETTINGS_H
#define BYOL_SETTINGS_H

#include <stdint.h>

#include "byol/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct byol_config;

/* Parse a file. `@include` paths are relative to the including file. */
BYOL_API byol_status byol_config_load(const char *path, struct byol_config **out);
/* Parse text; `name` is used in messages in place of a file name. */
BYOL_API byol_status byol_config_parse(const char *text, const char *name,
                                       struct byol_config **out);
BYOL_API void byol_config_free(struct byol_config *cfg);

/* Override one setting: "train.steps=20", "backend.name=blas", "model.hidden_layer=-2",
 * "augment_fn=()". The value is read with libconfig's syntax, and as a plain string when
 * that fails; missing groups are created; a number replacing a float stays a float. Messages
 * about the new setting say "(from --set)" in place of a line number. */
BYOL_API byol_status byol_config_set(struct byol_config *cfg, const char *assignment);

/* The whole file, and a group by dotted path ("backend", "model.encoder"). A missing path
 * yields NULL, which every accessor treats as an empty group. Views are owned by the config. */
BYOL_API const struct byol_settings *byol_config_root(struct byol_config *cfg);
BYOL_API const struct byol_settings *byol_settings_child(const struct byol_settings *s,
                                                         const char *name);

/* The same accessors as in struct byol_host_api. */
BYOL_API byol_status byol_settings_int(const struct byol_settings *s, const char *name,
                                       int64_t def, int64_t *out);
BYOL_API byol_status byol_settings_float(const struct byol_settings *s, const char *name,
                                         double def, double *out);
BYOL_API byol_status byol_settings_bool(const struct byol_settings *s, const char *name, int def,
                                        int *out);
BYOL_API byol_status byol_settings_string(const struct byol_settings *s, const char *name,
                                          const char *def, const char **out);
BYOL_API byol_status byol_settings_floats(const struct byol_settings *s, const char *name,
                                          double *out, int max, int *count);
/* A list or array of strings, as byol_settings_floats: fills up to `max` pointers (owned by
 * the settings), sets *count; more than `max` fails. */
BYOL_API byol_status byol_settings_strings(const struct byol_settings *s, const char *name,
                                           const char **out, int max, int *count);
BYOL_API byol_status byol_settings_check_keys(const struct byol_settings *s,
                                              const char *const *allowed);
/* Record a failure about setting `s` as "FILE:LINE: PATH: <fmt...>" and return `st`, for checks
 * the accessors cannot make (a value out of a list, two settings that conflict). NULL `s`:
 * just the formatted text. */
BYOL_API byol_status byol_settings_error(const struct byol_settings *s, byol_status st,
                                         const char *fmt, ...) BYOL_PRINTF(3, 4);
/* 1 if `name` is set in `s`. */
BYOL_API int byol_settings_has(const struct byol_settings *s, const char *name);
/* The dotted path of `s` ("backend"), "" for the root. */
BYOL_API const char *byol_settings_path(const struct byol_settings *s);
/* 1 if `s` is a list `( ... )` or an array `[ ... ]`. */
BYOL_API int byol_settings_is_list(const struct byol_settings *s);
/* The number of elements of a list, array or group (0 for NULL and scalars), and the i-th one
 * (NULL when out of range): for settings whose elements are groups, like augment_fn. */
BYOL_API int byol_settings_length(const struct byol_settings *s);
BYOL_API const struct byol_settings *byol_settings_elem(const struct byol_settings *s, int i);

#ifdef __cplusplus
}
#endif
#endif
