/* Training metrics (include/byol/metrics.h): the config's metrics group, one CSV or JSON-lines
 * row per step, trimming a resumed run's file, and the TensorBoard scalars. */
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

#define METRICS_COLUMNS 7 /* step and the six values of byol_metrics_row */

struct byol_metrics {
    FILE *table; /* the CSV or JSONL file, or NULL */
    char table_path[PATH_MAX];
    int jsonl;
    int with_knn; /* the CSV has a knn_top1 column */
    struct tb_writer *tb;
};

/* What the metrics group says. */
struct metrics_settings {
    const struct byol_settings *group;
    const char *file, *tensorboard;
    int jsonl, with_knn;
};

static const char *const metrics_names[METRICS_COLUMNS] = {
    "step", "loss", "lr", "tau", "images_per_s", "elapsed_s", "knn_top1",
};

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

static void metrics_csv_header(char *buf, size_t size, int with_knn)
{
    size_t used = 0;
    for (int i = 0; i < METRICS_COLUMNS - !with_knn && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", metrics_names[i]);
}

/* The step a row starts with (`step,...` or `{"step":N,...`); 0 when it has none. */
static int metrics_row_step(const char *line, int jsonl, int64_t *step)
{
    static const char key[] = "{\"step\":";
    if (jsonl) {
        if (strncmp(line, key, sizeof key - 1) != 0)
            return 0;
        line += sizeof key - 1;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(line, &end, 10);
    if (end == line || errno || (*end != ',' && *end != '}' && *end != '\n'))
        return 0;
    *step = v;
    return 1;
}

static byol_status metrics_read_all(const char *path, char **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
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
        size_t r = fread(buf + *n, 1, cap - *n - 1, f);
        *n += r;
        if (r == 0)
            break;
    }
    if (st == BYOL_OK && ferror(f))
        st = byol_error(BYOL_ERR_IO, "%s: read failed", path);
    fclose(f);
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

/* Copy to `out` the rows of steps <= resume_step (and a CSV's header); a row without its
 * newline (torn by a crash) or without a step goes too. Sets *dropped. Returns 0 when the file
 * has no complete first line, so it is as good as missing. */
static int metrics_keep_rows(const char *text, int jsonl, int64_t resume_step, char *out,
                             size_t *n_out, int *dropped)
{
    size_t used = 0;
    *dropped = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl && line == text)
            return 0;
        int64_t step = 0;
        int keep = nl && ((!jsonl && line == text) ||
                          (metrics_row_step(line, jsonl, &step) && step <= resume_step));
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (keep) {
            memcpy(out + used, line, len);
            used += len;
        }
        *dropped |= !keep;
        line += len;
    }
    *n_out = used;
    return used > 0 || jsonl;
}

/* The columns of the CSV being resumed: its header decides whether rows have knn_top1 (a run
 * may resume with another eval.every); a header of neither form is another program's file. */
static byol_status metrics_take_header(struct byol_metrics *m, const char *text)
{
    char header[128];
    size_t len = strcspn(text, "\n");
    for (int with_knn = 0; with_knn < 2; with_knn++) {
        metrics_csv_header(header, sizeof header, with_knn);
        if (len == strlen(header) && strncmp(text, header, len) == 0) {
            m->with_knn = with_knn;
            return BYOL_OK;
        }
    }
    return byol_error(BYOL_ERR_FORMAT,
                      "%s: its header \"%.*s\" is not a metrics header (\"%s\"): move the "
                      "file away to resume",
                      m->table_path, (int)(len > 200 ? 200 : len), text, header);
}

/* On resume: check the CSV header, drop what the interrupted run wrote after resume_step.
 * *exists says whether rows are to be appended to the file as it now is. */
static byol_status metrics_trim(struct byol_metrics *m, int64_t resume_step, int *exists)
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
        *exists = metrics_keep_rows(text, m->jsonl, resume_step, kept, &n_kept, &dropped);
    if (st == BYOL_OK && *exists && !m->jsonl)
        st = metrics_take_header(m, kept);
    if (st == BYOL_OK && *exists && dropped)
        st = metrics_replace(m->table_path, kept, n_kept);
    free(text);
    free(kept);
    return st;
}

static byol_status metrics_open_table(struct byol_metrics *m, const struct metrics_settings *ms,
                                      int64_t resume_step)
{
    const struct byol_settings *where = byol_settings_child(ms->group, "file");
    int len = snprintf(m->table_path, sizeof m->table_path, "%s", ms->file);
    if (len < 0 || (size_t)len >= sizeof m->table_path)
        return byol_settings_error(where, BYOL_ERR_INVALID, "path too long");
    const char *slash = strrchr(ms->file, '/');
    byol_status st = BYOL_OK;
    if (slash && slash != ms->file) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - ms->file), ms->file);
        st = byol_make_dirs(dir, 0777);
    }
    int exists = 0;
    if (st == BYOL_OK && resume_step > 0)
        st = metrics_trim(m, resume_step, &exists);
    if (st == BYOL_OK && !(m->table = fopen(m->table_path, exists ? "a" : "w")))
        st = byol_error(BYOL_ERR_IO, "cannot open %s: %s", m->table_path, strerror(errno));
    if (st == BYOL_OK && !exists && !m->jsonl) {
        char header[128];
        metrics_csv_header(header, sizeof header, m->with_knn);
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
    m->with_knn = ms.with_knn;
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
        for (int i = 0; i < METRICS_COLUMNS - 1 - !m->with_knn; i++)
            fprintf(f, ",%s", metrics_number(num, sizeof num, v[i], 0));
        fputc('\n', f);
    }
    if (fflush(f) != 0 || ferror(f))
        return byol_error(BYOL_ERR_IO, "%s: write failed: %s", m->table_path, strerror(errno));
    return BYOL_OK;
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
    if (m->table) {
        if (fflush(m->table) == 0)
            fsync(fileno(m->table));
        fclose(m->table);
    }
    tb_writer_close(m->tb);
    free(m);
}
