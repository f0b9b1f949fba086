/* Durable file writes shared by every writer in the core (checkpoints, metrics, .npy): the
 * temp-file + fsync + rename + fsync-the-folder sequence in one place; and how a path from a
 * config is taken relative to the config's folder. Not installed. */
#ifndef BYOL_FILEIO_INTERNAL_H
#define BYOL_FILEIO_INTERNAL_H

#include <stddef.h>
#include <sys/stat.h>

#include "byol/status.h"

/* Write n bytes to fd, retrying short writes and EINTR. 0 on success, -1 with errno set. */
int byol_write_all(int fd, const void *buf, size_t n);

/* Writes a file's contents to fd; returns 0, or -1 with errno set. */
typedef int (*byol_file_writer_fn)(int fd, void *user);

/* Replace `path` atomically: `write` fills a temporary file beside it (<path>.tmp.XXXXXX,
 * mode 0644), which is fsync'd and renamed over `path`, then the folder is fsync'd. A crash
 * at any point leaves the old file or the new one; on failure the temporary file is removed,
 * `path` is untouched, and the message names `path`, the step that failed and why (a full
 * disk: "write failed: No space left on device"). */
byol_status byol_file_replace(const char *path, byol_file_writer_fn write, void *user);

/* mkdir -p: create `dir` and the folders above it that are missing, each with `mode` (less the
 * umask). Every part of the path must end up a folder; the error names the part that is not
 * or could not be made. */
byol_status byol_make_dirs(const char *dir, unsigned mode);

/* fsync the folder `dir`, so that a rename or link in it survives a crash. 0 or -1. */
int byol_fsync_dir(const char *dir);

/* A path from a config (data.images, train.init_from, model.encoder.weights, ...) taken
 * relative to the config's folder `dir`: "dir/path", or `path` as it is when it is absolute or
 * `dir` is NULL or "". Into `out` (n bytes); 0, or -1 when it does not fit (`out` then holds
 * what fits). */
int byol_path_resolve(const char *dir, const char *path, char *out, size_t n);

/* Open `path` for reading without ever blocking: the open is O_NONBLOCK (a FIFO or a device
 * would otherwise wait for a writer), then fstat; only a regular file keeps its descriptor,
 * with O_NONBLOCK cleared. Returns the fd (*sb filled), -1 with errno set when the open or
 * fstat fails, or -2 when `path` is not a regular file. */
int byol_open_regular(const char *path, struct stat *sb);

/* byol_open_regular for a reader, its failure turned into a status with a message: "<path>:
 * not a regular file", or "<path>: <what>: <reason>" when the open fails ("<path>: <reason>"
 * for `what` NULL). `named` 0 leaves the "<path>: " out, for a caller that names the file
 * itself. BYOL_ERR_NOT_FOUND when nothing is at `path` (ENOENT, or ENOTDIR: a file where a
 * folder of the path should be), else BYOL_ERR_IO; on BYOL_OK *fd is open and *sb filled. */
byol_status byol_open_input(const char *path, int named, const char *what, int *fd,
                            struct stat *sb);

/* Whether folder `dir` takes a new file: a probe file (<dir>/.byol-probe.XXXXXX) is created
 * and removed. `create`: the missing folders are made first, as byol_make_dirs would make
 * them, and removed again afterwards, so nothing is left behind. BYOL_OK, or BYOL_ERR_IO with
 * the message "<dir>: cannot write there: <reason>" (a regular file in the path: "Not a
 * directory"). */
byol_status byol_probe_dir(const char *dir, int create);

/* An output file `path` (replaced or created): not a folder ("<path>: cannot write there: Is a
 * directory") nor a loop of symbolic links ("... Too many levels of symbolic links"), and its
 * folder takes a new file (byol_probe_dir of that folder). */
byol_status byol_probe_output(const char *path, int create);

#endif
