/* Durable file writes and config-relative paths (core/runtime/fileio_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

byol_status byol_file_replace(const char *path, byol_file_writer_fn write, void *user)
{
    static const char suffix[] = ".tmp.XXXXXX";
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
