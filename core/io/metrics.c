/* Training metrics (include/byol/metrics.h): the config's metrics group, one CSV or JSON-lines
 * row per step (a new file replacing an earlier one at its first row), checking and trimming a
 * resumed run's file, probing where the files go, and the TensorBoard scalars. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/metrics.h"
#include "fileio_internal.h"
#include "tb_events_internal.h"

#define METRICS_COLUMNS 9 /* step and the eight values of byol_metrics_row */

/* A CSV's columns, as a mask of bits 1 << i for metrics_names[i]: the four layouts this writer
 * has made (the first two before proj_std and eff_rank existed: such a file is resumed with
 * its own columns). */
#define METRICS_BASE 0x3fu /* step .. elapsed_s */
#define METRICS_KNN (1u << 6)
#define METRICS_PROJ (1u << 7)
#define METRICS_ERANK (1u << 8)
static const unsigned metrics_layouts[] = {
    METRICS_BASE,
    METRICS_BASE | METRICS_KNN,
    METRICS_BASE | METRICS_PROJ,
    METRICS_BASE | METRICS_KNN | METRICS_PROJ | METRICS_ERANK,
};
#define METRICS_LAYOUTS (int)(sizeof metrics_layouts / sizeof metrics_layouts[0])

struct byol_metrics {
    FILE *table; /* the CSV or JSONL file, or NULL */
    char table_path[PATH_MAX];
    /* A new table's temporary name until its first row is in, else "", and the file it then
     * replaces: table_path, or the file a symbolic link there points to. */
    char tmp_path[PATH_MAX];
    char new_path[PATH_MAX];
    int jsonl;
    unsigned cols; /* the CSV's columns (metrics_layouts) */
    struct tb_writer *tb;
};

/* What the metrics group says. */
struct metrics_settings {
    const struct byol_settings *group;
    const char *file, *tensorboard;
    int jsonl, with_knn;
};

static const char *const metrics_names[METRICS_COLUMNS] = {
    "step", "loss", "lr", "tau", "images_per_s", "elapsed_s", "knn_top1", "proj_std", "eff_rank",
};

/* The columns of a new CSV: eff_rank is measured with the kNN monitor. */
static unsigned metrics_new_cols(int with_knn)
{
    return with_knn ? METRICS_BASE | METRICS_KNN | METRICS_PROJ | METRICS_ERANK
                    : METRICS_BASE | METRICS_PROJ;
}

static int metrics_count(unsigned cols)
{
    int n = 0;
    for (int i = 0; i < METRICS_COLUMNS; i++)
        n += (cols >> i) & 1;
    return n;
}

/* ---- Settings. ---------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* file and format: csv or jsonl, from format when set, else from the extension. */
static byol_status metrics_read_format(struct metrics_settings *ms)
{
    const char *format = NULL;
    byol_status st = byol_settings_string(ms->group, "format", NULL, &format);
    if (st != BYOL_OK)
        return st;
    if (format && !ms->file)
        return byol_settings_error(byol_settings_child(ms->group, "format"), BYOL_ERR_INVALID,
                                   "set without metrics.file");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
        return byol_settings_error(byol_settings_child(ms->group, "format"), BYOL_ERR_INVALID,
                                   "\"%s\": expected \"csv\" or \"jsonl\"", format);
    if (!ms->file)
        return BYOL_OK;
    if (format)
        ms->jsonl = strcmp(format, "jsonl") == 0;
    else if (has_suffix(ms->file, ".jsonl"))
        ms->jsonl = 1;
    else if (!has_suffix(ms->file, ".csv"))
        return byol_settings_error(byol_settings_child(ms->group, "file"), BYOL_ERR_INVALID,
                                   "cannot tell the format of \"%s\": name it .csv or .jsonl, "
                                   "or set metrics.format",
                                   ms->file);
    return BYOL_OK;
}

static byol_status metrics_read_path(const struct byol_settings *group, const char *name,
                                     const char **out)
{
    byol_status st = byol_settings_string(group, name, NULL, out);
    if (st == BYOL_OK && *out && !**out)
        st = byol_settings_error(byol_settings_child(group, name), BYOL_ERR_INVALID,
                                 "must not be empty");
    return st;
}

static byol_status metrics_read_settings(const struct byol_settings *root,
                                         struct metrics_settings *ms)
{
    static const char *const keys[] = {"file", "format", "tensorboard", NULL};
    int64_t every = 0;
    memset(ms, 0, sizeof *ms);
    ms->group = byol_settings_child(root, "metrics");
    byol_status st = byol_settings_check_keys(ms->group, keys);
    if (st == BYOL_OK)
        st = metrics_read_path(ms->group, "file", &ms->file);
    if (st == BYOL_OK)
        st = metrics_read_path(ms->group, "tensorboard", &ms->tensorboard);
    if (st == BYOL_OK)
        st = metrics_read_format(ms);
    if (st == BYOL_OK)
        st = byol_settings_int(byol_settings_child(root, "eval"), "every", 0, &every);
    ms->with_knn = every > 0;
    return st;
}

/* ---- The CSV or JSONL file. ---------------------------------------------------------------- */

static void metrics_csv_header(char *buf, size_t size, unsigned cols)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < METRICS_COLUMNS && used < size; i++)
        if ((cols >> i) & 1)
            used +=
                (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", metrics_names[i]);
}

/* ---- Reading back a table to resume it. ---------------------------------------------------- */

#define METRICS_LINE_MAX 1024 /* a row this writer makes is a few hundred bytes */

/* What a line of a table is made of (rows, the CSV header). */
static const char metrics_row_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz_{}\":,.+-";

/* Up to size - 1 bytes of a line, for a message: bytes other than printable ASCII as '?', and
 * then no more than 40 of them (a binary file). */
static void metrics_shown(const char *text, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (; k < len && k + 1 < size; k++) {
        int printable = text[k] >= 0x20 && text[k] < 0x7f;
        out[k] = printable ? text[k] : '?';
        size = printable || size < 41 ? size : 41;
    }
    out[k] = '\0';
}

/* A step: all of `s`, digits. */
static int metrics_parse_step(const char *s, int64_t *step)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return 0;
    *step = v;
    return 1;
}

/* A value after the step: a CSV cell (a number or empty), or a JSON "name":number pair with
 * one of the names this writer uses. */
static int metrics_value_ok(char *s, int jsonl)
{
    char *colon = jsonl ? strstr(s, "\":") : NULL;
    if (jsonl) {
        if (s[0] != '"' || !colon)
            return 0;
        *colon = '\0';
        int known = 0;
        for (int i = 1; i < METRICS_COLUMNS; i++)
            known |= strcmp(s + 1, metrics_names[i]) == 0;
        if (!known)
            return 0;
        s = colon + 2;
    } else if (!*s) {
        return 1;
    }
    char *end = NULL;
    strtod(s, &end); /* inf, and 1e999 (out of range: infinity), count as numbers */
    return *s && *s != ' ' && *end == '\0';
}

/* Whether `line` (cut up in place) is a row this writer makes: `step,v,...` with `columns`
 * cells, or `{"step":N,"name":v,...}`; *step is its step. */
static int metrics_parse_row(char *line, int jsonl, int columns, int64_t *step)
{
    static const char key[] = "{\"step\":";
    size_t len = strlen(line);
    if (jsonl) {
        if (strncmp(line, key, sizeof key - 1) != 0 || line[len - 1] != '}')
            return 0;
        line[len - 1] = '\0';
        line += sizeof key - 1;
    }
    int n = 0;
    for (char *p = line, *next; p; p = next, n++) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        if (n == 0 ? !metrics_parse_step(p, step) : !metrics_value_ok(p, jsonl))
            return 0;
    }
    return jsonl || n == columns;
}

/* A last line without its newline, as a crash while writing it leaves it: short, made of what
 * rows are made of, and beginning as a row (or a CSV's first line, the header) begins. */
static int metrics_torn(const char *line, size_t len, int jsonl, int first)
{
    static const char key[] = "{\"step\":";
    char header[128];
    if (len > METRICS_LINE_MAX || strspn(line, metrics_row_chars) < len)
        return 0;
    if (jsonl)
        return strncmp(line, key, len < sizeof key - 1 ? len : sizeof key - 1) == 0;
    if (!first)
        return line[0] >= '0' && line[0] <= '9';
    for (int k = 0; k < METRICS_LAYOUTS; k++) {
        metrics_csv_header(header, sizeof header, metrics_layouts[k]);
        if (len <= strlen(header) && strncmp(line, header, len) == 0)
            return 1;
    }
    return 0;
}

/* The whole of the table at `path`, NUL-terminated, read without blocking (a FIFO is refused);
 * BYOL_ERR_NOT_FOUND without a message when there is none. */
static byol_status metrics_read_all(const char *path, char **out, size_t *n)
{
    struct stat sb;
    *out = NULL;
    *n = 0;
    int fd = byol_open_regular(path, &sb);
    if (fd == -2)
        return byol_error(BYOL_ERR_FORMAT, "%s: not a regular file: move it away to resume", path);
    if (fd < 0)
        return errno == ENOENT ? BYOL_ERR_NOT_FOUND
                               : byol_error(BYOL_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 0;
    char *buf = NULL;
    byol_status st = BYOL_OK;
    for (;;) {
        if (*n + 65536 + 1 > cap) {
            char *g = realloc(buf, cap = 2 * cap + 65536 + 1);
            if (!g) {
                st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = g;
        }
        ssize_t r = read(fd, buf + *n, cap - *n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = byol_error(BYOL_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (r <= 0)
            break;
        *n += (size_t)r;
    }
    close(fd);
    if (st != BYOL_OK) {
        free(buf);
        return st;
    }
    buf[*n] = '\0';
    *out = buf;
    return BYOL_OK;
}

struct metrics_bytes {
    const char *data;
    size_t n;
};

static int metrics_write_bytes(int fd, void *user)
{
    const struct metrics_bytes *b = user;
    return byol_write_all(fd, b->data, b->n);
}

/* Replace `path` with n bytes atomically (a crash leaves the old file or the new one). */
static byol_status metrics_replace(const char *path, const char *data, size_t n)
{
    struct metrics_bytes b = {data, n};
    return byol_file_replace(path, metrics_write_bytes, &b);
}

/* The columns of the CSV being resumed: its header decides which columns rows have (a run
 * may resume with another eval.every, or a file from before proj_std and eff_rank); a header
 * of no such form is another program's file. */
static byol_status metrics_take_header(struct byol_metrics *m, const char *text, size_t len)
{
    char header[128], shown[201];
    for (int k = 0; k < METRICS_LAYOUTS; k++) {
        metrics_csv_header(header, sizeof header, metrics_layouts[k]);
        if (len == strlen(header) && memcmp(text, header, len) == 0) {
            m->cols = metrics_layouts[k];
            return BYOL_OK;
        }
    }
    metrics_csv_header(header, sizeof header, m->cols);
    metrics_shown(text, len, shown, sizeof shown);
    return byol_error(BYOL_ERR_FORMAT,
                      "%s: its header \"%s\" is not a metrics header (\"%s\"): move the file "
                      "away to resume",
                      m->table_path, shown, header);
}

/* Check that `text` (n bytes) is a table this writer wrote, a CSV's header and then rows that
 * parse, and copy to `out` what stays: the header and the rows of steps <= resume_step. A last
 * line without its newline (torn by a crash) goes too. *dropped: whether anything went. */
static byol_status metrics_keep_rows(struct byol_metrics *m, const char *text, size_t n,
                                     int64_t resume_step, char *out, size_t *n_out, int *dropped)
{
    char line[METRICS_LINE_MAX + 1];
    size_t used = 0;
    *dropped = 0;
    *n_out = 0;
    for (size_t pos = 0, lineno = 1; pos < n; lineno++) {
        const char *nl = memchr(text + pos, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) : n - pos;
        int64_t step = 0;
        if (!nl && metrics_torn(text + pos, len, m->jsonl, lineno == 1)) {
            *dropped = 1;
            break;
        }
        int header = !m->jsonl && lineno == 1;
        if (header) {
            byol_status st = metrics_take_header(m, text + pos, len);
            if (st != BYOL_OK)
                return st;
        } else {
            int fits = nl && len <= METRICS_LINE_MAX && !memchr(text + pos, '\0', len);
            if (fits) {
                memcpy(line, text + pos, len);
                line[len] = '\0';
            }
            if (!fits || !metrics_parse_row(line, m->jsonl, metrics_count(m->cols), &step)) {
                metrics_shown(text + pos, len, line, 41);
                return byol_error(BYOL_ERR_FORMAT,
                                  "%s: line %zu is not a metrics row (\"%s\"): move the file away "
                                  "to resume",
                                  m->table_path, lineno, line);
            }
        }
        if (header || step <= resume_step) {
            memcpy(out + used, text + pos, len + 1);
            used += len + 1;
        } else {
            *dropped = 1;
        }
        pos += len + 1;
    }
    *n_out = used;
    return BYOL_OK;
}

/* On resume: check that the file is this writer's, and drop what the interrupted run wrote
 * after resume_step. *exists: rows are to be appended to the file as it now is (else there is
 * none, or nothing of it stays, and a new one is made). */
static byol_status metrics_resume(struct byol_metrics *m, int64_t resume_step, int *exists)
{
    char *text = NULL, *kept = NULL;
    size_t n = 0, n_kept = 0;
    int dropped = 0;
    *exists = 0;
    byol_status st = metrics_read_all(m->table_path, &text, &n);
    if (st == BYOL_ERR_NOT_FOUND)
        return BYOL_OK;
    if (st == BYOL_OK && !(kept = malloc(n + 1)))
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", m->table_path);
    if (st == BYOL_OK)
        st = metrics_keep_rows(m, text, n, resume_step, kept, &n_kept, &dropped);
    *exists = st == BYOL_OK && n_kept > 0;
    if (*exists && dropped)
        st = metrics_replace(m->table_path, kept, n_kept);
    free(text);
    free(kept);
    return st;
}

/* ---- Writing a table. ---------------------------------------------------------------------- */

/* The folder of `path`: "." for a bare name, "/" for a file at the root. */
static void metrics_folder(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path) + (slash == path), path);
}

/* A new table. A regular file at its path (an earlier run's) is replaced only when this run's
 * first row is in (metrics_publish): until then rows go to a temporary file beside it,
 * <path>.tmp.XXXXXX (a symbolic link stays one: beside the file it points to, which is the one
 * replaced). Something else there (/dev/null) is written to as it is. */
static byol_status metrics_create(struct byol_metrics *m)
{
    struct stat sb;
    int other = stat(m->table_path, &sb) == 0 && !S_ISREG(sb.st_mode);
    if (!other && !realpath(m->table_path, m->new_path))
        snprintf(m->new_path, sizeof m->new_path, "%s", m->table_path);
    if (other && S_ISDIR(sb.st_mode))
        return byol_error(BYOL_ERR_IO, "cannot open %s: %s", m->table_path, strerror(EISDIR));
    if (other && !(m->table = fopen(m->table_path, "w")))
        return byol_error(BYOL_ERR_IO, "cannot open %s: %s", m->table_path, strerror(errno));
    if (other)
        return BYOL_OK;
    int len = snprintf(m->tmp_path, sizeof m->tmp_path, "%s.tmp.XXXXXX", m->new_path);
    if (len < 0 || (size_t)len >= sizeof m->tmp_path) {
        m->tmp_path[0] = '\0';
        return byol_error(BYOL_ERR_INVALID, "%s: path too long", m->table_path);
    }
    int fd = mkostemp(m->tmp_path, O_CLOEXEC);
    /* mkstemp makes 0600; a table is an ordinary file that others may read. */
    if (fd < 0 || fchmod(fd, 0644) != 0 || !(m->table = fdopen(fd, "w"))) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
            unlink(m->tmp_path);
        }
        m->tmp_path[0] = '\0';
        return byol_error(BYOL_ERR_IO, "cannot open %s: %s", m->table_path, strerror(err));
    }
    return BYOL_OK;
}

/* This run's first row is in the new table: it replaces the file at the table's path, fsync'd
 * first, so that a crash leaves the earlier table or this one with its row. */
static byol_status metrics_publish(struct byol_metrics *m)
{
    char dir[PATH_MAX];
    if (fsync(fileno(m->table)) != 0 || rename(m->tmp_path, m->new_path) != 0)
        return byol_error(BYOL_ERR_IO, "%s: cannot replace: %s", m->table_path, strerror(errno));
    m->tmp_path[0] = '\0';
    metrics_folder(m->new_path, dir, sizeof dir);
    if (byol_fsync_dir(dir) != 0)
        return byol_error(BYOL_ERR_IO, "%s: fsync of the folder failed: %s", dir, strerror(errno));
    return BYOL_OK;
}

static byol_status metrics_open_table(struct byol_metrics *m, const struct metrics_settings *ms,
                                      int64_t resume_step)
{
    const struct byol_settings *where = byol_settings_child(ms->group, "file");
    int len = snprintf(m->table_path, sizeof m->table_path, "%s", ms->file);
    if (len < 0 || (size_t)len >= sizeof m->table_path)
        return byol_settings_error(where, BYOL_ERR_INVALID, "path too long");
    char dir[PATH_MAX];
    metrics_folder(ms->file, dir, sizeof dir);
    byol_status st = byol_make_dirs(dir, 0777);
    int exists = 0;
    if (st == BYOL_OK && resume_step > 0)
        st = metrics_resume(m, resume_step, &exists);
    if (st == BYOL_OK && exists && !(m->table = fopen(m->table_path, "a")))
        st = byol_error(BYOL_ERR_IO, "cannot open %s: %s", m->table_path, strerror(errno));
    else if (st == BYOL_OK && !exists)
        st = metrics_create(m);
    if (st == BYOL_OK && !exists && !m->jsonl) {
        char header[128];
        metrics_csv_header(header, sizeof header, m->cols);
        if (fprintf(m->table, "%s\n", header) < 0 || fflush(m->table) != 0)
            st = byol_error(BYOL_ERR_IO, "%s: write failed: %s", m->table_path, strerror(errno));
    }
    if (st != BYOL_OK) /* say which setting named the file */
        st = byol_settings_error(where, st, "%s", byol_last_error());
    return st;
}

/* ---- The API. ------------------------------------------------------------------------------ */

byol_status byol_metrics_open(const struct byol_settings *root, int64_t resume_step,
                              struct byol_metrics **out)
{
    struct metrics_settings ms;
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_metrics_open: NULL argument");
    *out = NULL;
    if (resume_step < 0)
        return byol_error(BYOL_ERR_INVALID, "byol_metrics_open: resume_step %" PRId64 " < 0",
                          resume_step);
    byol_status st = metrics_read_settings(root, &ms);
    if (st != BYOL_OK || (!ms.file && !ms.tensorboard))
        return st;
    struct byol_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return byol_error(BYOL_ERR_NOMEM, "metrics: out of memory");
    m->jsonl = ms.jsonl;
    m->cols = metrics_new_cols(ms.with_knn);
    if (ms.file)
        st = metrics_open_table(m, &ms, resume_step);
    if (st == BYOL_OK && ms.tensorboard) {
        st = tb_writer_open(ms.tensorboard, resume_step, &m->tb);
        if (st != BYOL_OK)
            st = byol_settings_error(byol_settings_child(ms.group, "tensorboard"), st, "%s",
                                     byol_last_error());
    }
    if (st != BYOL_OK) {
        byol_metrics_close(m);
        return st;
    }
    *out = m;
    return BYOL_OK;
}

byol_status byol_metrics_check(const struct byol_settings *root)
{
    struct metrics_settings ms;
    return metrics_read_settings(root, &ms);
}

/* A failed probe of `name`'s output, said with the setting's place in the config. */
static byol_status metrics_probe_failed(const struct metrics_settings *ms, const char *name,
                                        byol_status st)
{
    return byol_settings_error(byol_settings_child(ms->group, name), st, "%s", byol_last_error());
}

byol_status byol_metrics_probe(const struct byol_settings *root)
{
    struct metrics_settings ms;
    byol_status st = metrics_read_settings(root, &ms);
    if (st == BYOL_OK && ms.file && (st = byol_probe_output(ms.file, 1)) != BYOL_OK)
        return metrics_probe_failed(&ms, "file", st);
    if (st == BYOL_OK && ms.tensorboard && (st = byol_probe_dir(ms.tensorboard, 1)) != BYOL_OK)
        return metrics_probe_failed(&ms, "tensorboard", st);
    return st;
}

/* A value as CSV and JSON write it: shortest form that keeps 10 digits; infinities as
 * "inf" in CSV and as the out-of-range number 1e999 in JSON, which parsers read as infinity. */
static const char *metrics_number(char *buf, size_t size, double v, int json)
{
    if (isinf(v) && json)
        snprintf(buf, size, "%s1e999", v < 0 ? "-" : "");
    else if (isnan(v))
        buf[0] = '\0';
    else
        snprintf(buf, size, "%.10g", v);
    return buf;
}

static void metrics_row_values(const struct byol_metrics_row *r, double *v)
{
    v[0] = r->loss;
    v[1] = r->lr;
    v[2] = r->tau;
    v[3] = r->images_per_s;
    v[4] = r->elapsed_s;
    v[5] = r->knn_top1;
    v[6] = r->proj_std;
    v[7] = r->eff_rank;
}

static byol_status metrics_write_row(struct byol_metrics *m, const struct byol_metrics_row *r)
{
    double v[METRICS_COLUMNS - 1];
    char num[64];
    metrics_row_values(r, v);
    FILE *f = m->table;
    if (m->jsonl) {
        fprintf(f, "{\"step\":%" PRId64, r->step);
        for (int i = 0; i < METRICS_COLUMNS - 1; i++)
            if (!isnan(v[i]))
                fprintf(f, ",\"%s\":%s", metrics_names[i + 1],
                        metrics_number(num, sizeof num, v[i], 1));
        fputs("}\n", f);
    } else {
        fprintf(f, "%" PRId64, r->step);
        for (int i = 0; i < METRICS_COLUMNS - 1; i++)
            if ((m->cols >> (i + 1)) & 1)
                fprintf(f, ",%s", metrics_number(num, sizeof num, v[i], 0));
        fputc('\n', f);
    }
    if (fflush(f) != 0 || ferror(f))
        return byol_error(BYOL_ERR_IO, "%s: write failed: %s", m->table_path, strerror(errno));
    return m->tmp_path[0] ? metrics_publish(m) : BYOL_OK;
}

/* TensorBoard gets every measured value but elapsed_s (each event carries its wall time). */
static byol_status metrics_write_tb(struct byol_metrics *m, const struct byol_metrics_row *r)
{
    double v[METRICS_COLUMNS - 1];
    const char *tags[METRICS_COLUMNS];
    float values[METRICS_COLUMNS];
    int n = 0;
    metrics_row_values(r, v);
    for (int i = 0; i < METRICS_COLUMNS - 1; i++) {
        if (isnan(v[i]) || strcmp(metrics_names[i + 1], "elapsed_s") == 0)
            continue;
        tags[n] = metrics_names[i + 1];
        values[n++] = (float)v[i];
    }
    return tb_writer_scalars(m->tb, r->step, tags, values, n);
}

byol_status byol_metrics_log(struct byol_metrics *m, const struct byol_metrics_row *row)
{
    if (!m)
        return BYOL_OK;
    if (!row)
        return byol_error(BYOL_ERR_INVALID, "byol_metrics_log: NULL row");
    byol_status st = m->table ? metrics_write_row(m, row) : BYOL_OK;
    if (st == BYOL_OK && m->tb)
        st = metrics_write_tb(m, row);
    return st;
}

void byol_metrics_close(struct byol_metrics *m)
{
    if (!m)
        return;
    if (m->table && m->tmp_path[0]) { /* no row came: an earlier table stays as it was */
        fclose(m->table);
        unlink(m->tmp_path);
    } else if (m->table) {
        if (fflush(m->table) == 0)
            fsync(fileno(m->table));
        fclose(m->table);
    }
    tb_writer_close(m->tb);
    free(m);
}

const char *byol_metrics_table_path(const struct byol_metrics *m)
{
    return m && m->table && !m->tmp_path[0] ? m->table_path : NULL;
}
