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
/* The files a config was read from: i = 0 the top file as given, then each file an @include
 * pulled in, as resolved (beside the including file, so usable from the working folder as the
 * top file's name is; for byol_config_parse, i = 0 is the name given); NULL past the end. */
BYOL_API const char *byol_config_file(const struct byol_config *cfg, size_t i);
/* The environment variables byol-c reads as settings, checked at once: BYOL_MEMORY_LIMIT
 * ("512M", "2G", bytes), BYOL_LOG_LEVEL (error, warn, info, debug or 0-3) and BYOL_PLUGIN_PATH
 * (each of its colon-separated folders must exist and be a folder). A value that is
 * set but not understood fails with a one-line message naming the variable and the value
 * (otherwise it would be noticed only when first used, or never). */
BYOL_API byol_status byol_environment_check(void);
/* A path written in the config file `config_path`, taken relative to that file's folder (as
 * @include is): "FOLDER/path", or `path` itself when it is absolute or `config_path` names no
 * folder. Into `out` (n bytes); 0, or -1 when it does not fit. */
BYOL_API int byol_config_relative(const char *config_path, const char *path, char *out, size_t n);

/* Override one setting: "train.steps=20", "backend.name=blas", "model.hidden_layer=-2",
 * "augment_fn=()". The value is read with libconfig's syntax, and as a plain string when
 * that fails; missing groups are created; a number replacing a float stays a float. Messages
 * about the new setting say "(from --set)" in place of a line number. */
BYOL_API byol_status byol_config_set(struct byol_config *cfg, const char *assignment);

/* The whole file, and a group by dotted path ("backend", "model.encoder"). A missing path
 * yields NULL, which every accessor treats as an empty group, except for the groups a run
 * always reads (backend, model, model.encoder, data, train): for those a file leaves out,
 * an empty stand-in group that only records the defaults read from it (byol_settings_has and
 * byol_settings_check_keys do not see it; test presence with byol_settings_has). Views are
 * owned by the config. */
BYOL_API const struct byol_settings *byol_config_root(struct byol_config *cfg);
BYOL_API const struct byol_settings *byol_settings_child(const struct byol_settings *s,
                                                         const char *name);

/* The same accessors as in struct byol_host_api. Each successful read is recorded in the
 * config (see byol_config_resolved_text): the path, the value used, and whether it came from
 * the file, from --set or from `def`. Reads from a NULL group are not recorded. */
BYOL_API byol_status byol_settings_int(const struct byol_settings *s, const char *name, int64_t def,
                                       int64_t *out);
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

/* ---- What a config resolved to -------------------------------------------------------
 *
 * The config records every successful read (first-read order, one entry per path; a group or
 * list is recorded by its leaves: "augment_fn[0].op", "augment_fn[0].scale"; an empty list
 * read for its length as "()"). After byol_train_check has built everything a run builds, the
 * record holds every setting the run uses, plugins' own settings included. Reads may come
 * from several threads (a mutex guards the record). A --set replacing a recorded setting
 * drops what was recorded under it. */

/* The config that view `s` belongs to (NULL for NULL): for code that holds only a view, like
 * byol_train_options.root, to reach the record. */
BYOL_API const struct byol_config *byol_settings_config(const struct byol_settings *s);

/* The resolved settings as libconfig text that reads back as the same config: nested groups
 * and lists, one setting per line, a default marked "# default", a --set value "# --set";
 * a setting that was read without a default and is not set is a comment line
 * ("# init_from: not set"). Caller frees *out. */
BYOL_API byol_status byol_config_resolved_text(const struct byol_config *cfg, char **out);

/* The settings that decide the trained state, as canonical text: "path = value" lines sorted
 * by path, values as in the resolved text; left out are settings read without a default and
 * not set, and the run-only settings, which say how, where or how fast a run goes: plugin_path,
 * plugins, backend.name, backend.threads, train.checkpoint_dir, train.checkpoint_every,
 * train.keep_checkpoints, and the eval and metrics groups. *digest_hex: the 64-bit FNV-1a hash
 * of the text as 16 lowercase hex digits. Caller frees *text. */
BYOL_API byol_status byol_config_digest(const struct byol_config *cfg, char **text,
                                        char digest_hex[17]);

/* Compare a checkpoint's digest text (its "config" metadata) with the current one. BYOL_OK when
 * they list the same settings with the same values; otherwise BYOL_ERR_INVALID with the
 * message "<ckpt_path>: written by another config: train.lr = 0.0003 there, 0.001 here;
 * model.image_size = 32 there, 28 here (and 2 more)" (at most three keys named, values cut to
 * 40 characters, "(not set)" for a key only one side has). NULL text: BYOL_ERR_INVALID. */
BYOL_API byol_status byol_config_digest_compare(const char *ckpt_path, const char *ckpt_text,
                                                const char *current_text);

#ifdef __cplusplus
}
#endif
#endif
