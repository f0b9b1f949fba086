/* Durable file writes and config-relative paths (core/runtime/fileio_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/export.h"
#include "byol/settings.h"
#include "byol/status.h"
#include "fileio_internal.h"

int byol_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int byol_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The folder holding `path` ("." for a bare name, "/" for a file at the root). */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -1;
    int rc = byol_fsync_dir(dir);
    free(dir);
    return rc;
}

/* Whether `path` itself (not through a symbolic link) is a device, FIFO or socket: such a file
 * is never replaced by a rename, or /dev/null would become a regular file. */
static int is_special(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) &&
           !S_ISLNK(sb.st_mode);
}

byol_status byol_file_replace(const char *path, byol_file_writer_fn write, void *user)
{
    static const char suffix[] = ".tmp.XXXXXX";
    if (is_special(path))
        return byol_error(BYOL_ERR_IO, "%s: not a regular file: it would be replaced", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        byol_status st = byol_error(BYOL_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                    strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp creates 0600; outputs are ordinary files that others may read. */
    const char *step = NULL;
    int err = 0;
    if (fchmod(fd, 0644) != 0)
        step = "chmod", err = errno;
    else if ((errno = 0, write(fd, user)) != 0)
        step = "write", err = errno ? errno : EIO;
    else if (fsync(fd) != 0)
        step = "fsync", err = errno;
    if (close(fd) != 0 && !step)
        step = "close", err = errno;
    if (!step && rename(tmp, path) != 0)
        step = "rename", err = errno;
    byol_status st = BYOL_OK;
    if (step) {
        unlink(tmp); /* an existing `path` stays as it was */
        st = byol_error(BYOL_ERR_IO, "%s: %s failed: %s", path, step, strerror(err));
    } else if (sync_parent(path) != 0) {
        /* The file is in place; only its durability across a crash is in doubt. */
        st = byol_error(BYOL_ERR_IO, "%s: fsync of the folder failed: %s", path, strerror(errno));
    }
    free(tmp);
    return st;
}

byol_status byol_make_dirs(const char *dir, unsigned mode)
{
    char tmp[PATH_MAX];
    int len = snprintf(tmp, sizeof tmp, "%s", dir);
    if (len < 0 || (size_t)len >= sizeof tmp)
        return byol_error(BYOL_ERR_INVALID, "folder name too long: %.64s...", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat sb;
        if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
            return byol_error(BYOL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return byol_error(BYOL_ERR_IO, "cannot create %s: %s is not a folder", dir, tmp);
        if (!c)
            return BYOL_OK;
        *p = c;
    }
}

int byol_path_resolve(const char *dir, const char *path, char *out, size_t n)
{
    size_t d = dir ? strlen(dir) : 0;
    int k = path[0] == '/' || d == 0
                ? snprintf(out, n, "%s", path)
                : snprintf(out, n, "%s%s%s", dir, dir[d - 1] == '/' ? "" : "/", path);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int byol_config_relative(const char *config_path, const char *path, char *out, size_t n)
{
    const char *slash = strrchr(config_path, '/');
    char dir[PATH_MAX];
    /* The folder of "/x.cfg" is "/", of "x.cfg" none. */
    size_t len = slash ? (size_t)(slash - config_path) + (slash == config_path) : 0;
    if (len >= sizeof dir)
        return -1;
    memcpy(dir, config_path, len);
    dir[len] = '\0';
    return byol_path_resolve(dir, path, out, n);
}

int byol_open_regular(const char *path, struct stat *sb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    int flags;
    if (fstat(fd, sb) != 0 || (flags = fcntl(fd, F_GETFL)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(sb->st_mode)) {
        close(fd);
        return -2;
    }
    if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

byol_status byol_open_input(const char *path, int named, const char *what, int *fd, struct stat *sb)
{
    *fd = byol_open_regular(path, sb);
    if (*fd >= 0)
        return BYOL_OK;
    const char *sep = named ? ": " : "";
    if (*fd == -2)
        return byol_error(BYOL_ERR_IO, "%s%snot a regular file", named ? path : "", sep);
    int e = errno;
    return byol_error(e == ENOENT || e == ENOTDIR ? BYOL_ERR_NOT_FOUND : BYOL_ERR_IO, "%s%s%s%s%s",
                      named ? path : "", sep, what ? what : "", what ? ": " : "", strerror(e));
}

/* ---- Outputs: a place that takes a new file, and never an input ------------------------- */

/* `path` without empty and "." parts ("a//b/./c/" -> "a/b/c", "" -> "."), into out
 * (PATH_MAX bytes); -1 when it does not fit. */
static int tidy_path(const char *path, char *out)
{
    size_t k = 0;
    if (path[0] == '/')
        out[k++] = '/';
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            int slash = k > 0 && out[k - 1] != '/';
            if (k + (size_t)slash + len + 1 > PATH_MAX)
                return -1;
            if (slash)
                out[k++] = '/';
            memcpy(out + k, p, len);
            k += len;
        }
        p += len;
        p += *p == '/';
    }
    if (k == 0)
        out[k++] = '.';
    out[k] = '\0';
    return 0;
}

/* The length of the longest leading run of whole parts of tidy path `p` that exists, its stat
 * in *sb (length 0: the working folder); -1 with errno when a stat fails other than ENOENT. */
static long existing_prefix(char *p, struct stat *sb)
{
    size_t end = strlen(p);
    for (;;) {
        char c = p[end];
        p[end] = '\0';
        int rc = stat(end ? p : ".", sb), err = errno;
        p[end] = c;
        if (rc == 0)
            return (long)end;
        if (err != ENOENT || end == 0)
            return errno = err, -1;
        while (end > 0 && p[end - 1] != '/')
            end--; /* the start of the last part */
        if (end > 1)
            end--; /* and the slash before it, unless it is the root */
    }
}

/* Make the missing folders of tidy path `dir` from the top down, as byol_make_dirs would;
 * *made: how many, the last parts of `dir`. On failure `dir` is cut after the last one made
 * (for unmake_dirs) and -1 is returned with errno (ENOTDIR: a part is not a folder). */
static int make_missing_dirs(char *dir, int *made)
{
    struct stat sb;
    long end = existing_prefix(dir, &sb);
    size_t len = strlen(dir);
    *made = 0;
    if (end < 0)
        return -1;
    if (!S_ISDIR(sb.st_mode))
        return errno = ENOTDIR, -1;
    for (size_t e = (size_t)end; e < len;) {
        size_t start = e;
        e += dir[e] == '/';
        e += strcspn(dir + e, "/");
        char c = dir[e];
        dir[e] = '\0';
        if (mkdir(dir, 0777) != 0) {
            int err = errno;
            dir[start] = '\0';
            return errno = err, -1;
        }
        dir[e] = c;
        (*made)++;
    }
    return 0;
}

/* Remove the last `made` folders of `dir`, deepest first (what make_missing_dirs made). */
static void unmake_dirs(char *dir, int made)
{
    for (int i = 0; i < made; i++) {
        rmdir(dir);
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
}

/* Create a probe file in folder `dir` and remove it: 0, or -1 with errno. */
static int write_probe(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.byol-probe.XXXXXX", dir) >= (int)sizeof tmp)
        return errno = ENAMETOOLONG, -1;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    close(fd);
    return unlink(tmp);
}

byol_status byol_probe_dir(const char *dir, int create)
{
    char p[PATH_MAX];
    int made = 0, err = 0;
    if (tidy_path(dir, p) != 0)
        err = ENAMETOOLONG;
    else if (create && make_missing_dirs(p, &made) != 0)
        err = errno;
    else if (write_probe(p) != 0)
        err = errno;
    unmake_dirs(p, made);
    return err ? byol_error(BYOL_ERR_IO, "%s: cannot write there: %s", dir, strerror(err))
               : BYOL_OK;
}

byol_status byol_probe_output(const char *path, int create)
{
    struct stat sb;
    int found = stat(path, &sb) == 0, err = found ? 0 : errno;
    if (found && S_ISDIR(sb.st_mode))
        err = EISDIR;
    if (err == EISDIR || err == ELOOP) /* a loop of symbolic links would be replaced */
        return byol_error(BYOL_ERR_IO, "%s: cannot write there: %s", path, strerror(err));
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash)
        return byol_probe_dir(".", create);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + (slash == path), path);
    return byol_probe_dir(dir, create);
}

/* Who a path is: the device and inode of the file it names; for a path that does not exist
 * (yet), those of its deepest existing folder and the rest of the path ("a/b.npy"). */
struct path_id {
    int known; /* 0: a stat failed otherwise than ENOENT, or the path is too long */
    dev_t dev;
    ino_t ino;
    char rest[PATH_MAX];
};

static void path_id(const char *path, struct path_id *id)
{
    char p[PATH_MAX];
    struct stat sb;
    long end = tidy_path(path, p) == 0 ? existing_prefix(p, &sb) : -1;
    id->known = end >= 0;
    if (!id->known)
        return;
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    snprintf(id->rest, sizeof id->rest, "%s", p + end + (p[end] == '/'));
}

byol_status byol_files_check(const struct byol_file_use *files, size_t n, int probe)
{
    if (!files && n)
        return byol_error(BYOL_ERR_INVALID, "byol_files_check: NULL argument");
    struct path_id *ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids)
        return byol_error(BYOL_ERR_NOMEM, "out of memory for %zu file names", n);
    for (size_t i = 0; i < n; i++)
        if (files[i].path)
            path_id(files[i].path, &ids[i]);
    byol_status st = BYOL_OK;
    for (size_t j = 1; j < n && st == BYOL_OK; j++)
        for (size_t i = 0; i < j && st == BYOL_OK; i++)
            if ((files[i].output || files[j].output) && ids[i].known && ids[j].known &&
                ids[i].dev == ids[j].dev && ids[i].ino == ids[j].ino &&
                strcmp(ids[i].rest, ids[j].rest) == 0)
                st = byol_error(BYOL_ERR_INVALID, "%s %s is the same file as %s %s", files[j].what,
                                files[j].path, files[i].what, files[i].path);
    free(ids);
    for (size_t i = 0; i < n && st == BYOL_OK && probe; i++) {
        if (!files[i].output || !files[i].path)
            continue;
        if (is_special(files[i].path))
            st = byol_error(BYOL_ERR_IO, "%s: %s: cannot write there: not a regular file",
                            files[i].what, files[i].path);
        else if (byol_probe_output(files[i].path, 0) != BYOL_OK)
            st = byol_error(BYOL_ERR_IO, "%s: %s", files[i].what, byol_last_error());
    }
    return st;
}
