/* byol_plot_metrics (include/byol/plot.h): a metrics file read back as columns of numbers
 * (a CSV file with a header, or JSON lines of {"name":number,...}; a missing value is NaN)
 * and drawn as four panels: loss, learning rate, kNN top-1 and the collapse statistic. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/plot.h"
#include "fileio_internal.h"

#define TABLE_MAX_COLUMNS 32
#define TABLE_MAX_BYTES (UINT64_C(1) << 30)

struct table {
    char *names[TABLE_MAX_COLUMNS];
    int cols;
    double *v; /* rows x cols */
    size_t rows, cap;
    const char *path;
};

static void table_free(struct table *t)
{
    for (int i = 0; i < t->cols; i++)
        free(t->names[i]);
    free(t->v);
}

static int table_col(const struct table *t, const char *name)
{
    for (int i = 0; i < t->cols; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    return -1;
}

static byol_status table_add_col(struct table *t, const char *name, size_t len, int line)
{
    if (t->cols == TABLE_MAX_COLUMNS)
        return byol_error(BYOL_ERR_FORMAT, "%s:%d: more than %d columns", t->path, line,
                          TABLE_MAX_COLUMNS);
    if (t->rows > 1) /* JSON lines name their columns in the first row */
        return byol_error(BYOL_ERR_FORMAT, "%s:%d: a new name after the first row", t->path, line);
    if (!(t->names[t->cols] = strndup(name, len)))
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", t->path);
    t->cols++;
    return BYOL_OK;
}

/* A new row of NaNs; returns it, or NULL when memory runs out. */
static double *table_row(struct table *t)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        double *grown = realloc(t->v, cap * TABLE_MAX_COLUMNS * sizeof *grown);
        if (!grown)
            return NULL;
        t->v = grown;
        t->cap = cap;
    }
    double *r = t->v + t->rows++ * TABLE_MAX_COLUMNS;
    for (int i = 0; i < TABLE_MAX_COLUMNS; i++)
        r[i] = NAN;
    return r;
}

/* A number ending at a delimiter in `ends`; 1e999 reads as infinity. */
static int parse_number(const char *s, const char **end, const char *ends, double *v)
{
    errno = 0;
    char *e;
    *v = strtod(s, &e);
    if (e == s || !strchr(ends, *e))
        return 0;
    *end = e;
    return 1;
}

static byol_status csv_header(struct table *t, char *line)
{
    for (char *p = line;;) {
        size_t n = strcspn(p, ",");
        byol_status st = table_add_col(t, p, n, 1);
        if (st != BYOL_OK || !p[n])
            return st;
        p += n + 1;
    }
}

static byol_status csv_row(struct table *t, const char *line, int no)
{
    double *r = table_row(t);
    if (!r)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", t->path);
    const char *p = line;
    for (int c = 0; c < t->cols; c++) {
        if (*p != ',' && *p && !parse_number(p, &p, ",", &r[c]))
            return byol_error(BYOL_ERR_FORMAT, "%s:%d: column %d (%s) is not a number", t->path, no,
                              c + 1, t->names[c]);
        if (c + 1 < t->cols && *p++ != ',')
            return byol_error(BYOL_ERR_FORMAT, "%s:%d: %d values, the header has %d", t->path, no,
                              c + 1, t->cols);
    }
    if (*p)
        return byol_error(BYOL_ERR_FORMAT, "%s:%d: more values than the header's %d", t->path, no,
                          t->cols);
    return BYOL_OK;
}

/* {"name":number,...}: names become columns as they first appear (before the second row). */
static byol_status json_row(struct table *t, const char *p, int no)
{
    double *r = table_row(t);
    if (!r)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", t->path);
    if (*p++ != '{')
        return byol_error(BYOL_ERR_FORMAT, "%s:%d: not a JSON object", t->path, no);
    while (*p == '"') {
        const char *name = ++p, *q = strchr(p, '"');
        if (!q || q[1] != ':')
            return byol_error(BYOL_ERR_FORMAT, "%s:%d: a malformed key", t->path, no);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(q - name), name);
        int c = table_col(t, key);
        if (c < 0 && t->rows == 1) {
            byol_status st = table_add_col(t, key, strlen(key), no);
            if (st != BYOL_OK)
                return st;
            c = t->cols - 1;
        }
        double v;
        if (!parse_number(q + 2, &p, ",}", &v))
            return byol_error(BYOL_ERR_FORMAT, "%s:%d: the value of \"%s\" is not a number",
                              t->path, no, key);
        if (c >= 0)
            r[c] = v;
        if (*p == ',')
            p++;
    }
    if (*p != '}')
        return byol_error(BYOL_ERR_FORMAT, "%s:%d: not a metrics row", t->path, no);
    return BYOL_OK;
}

/* The file's lines into the table; a last line without its newline (torn) is left out. */
static byol_status table_parse(struct table *t, char *text, size_t n)
{
    int json = n && text[0] == '{';
    byol_status st = BYOL_OK;
    int no = 0;
    for (char *line = text; st == BYOL_OK && line < text + n;) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        if (!nl)
            break;
        *nl = '\0';
        no++;
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        if (*line)
            st = json      ? json_row(t, line, no)
                 : no == 1 ? csv_header(t, line)
                           : csv_row(t, line, no);
        line = nl + 1;
    }
    if (st == BYOL_OK && (table_col(t, "step") < 0 || !t->rows))
        st = byol_error(BYOL_ERR_FORMAT, "%s: not a metrics file (%s)", t->path,
                        table_col(t, "step") < 0 ? "no 'step' column" : "no rows");
    return st;
}

static byol_status table_read(const char *path, struct table *t)
{
    int fd;
    struct stat sb;
    byol_status st = byol_open_input(path, 1, "cannot open", &fd, &sb);
    if (st != BYOL_OK)
        return st;
    char *text = NULL;
    size_t n = (size_t)sb.st_size;
    if ((uint64_t)sb.st_size > TABLE_MAX_BYTES)
        st = byol_error(BYOL_ERR_FORMAT, "%s: %lld bytes is too large for a metrics file", path,
                        (long long)sb.st_size);
    else if (!(text = malloc(n + 1)))
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t got = 0; st == BYOL_OK && got < n;) {
        ssize_t r = read(fd, text + got, n - got);
        if (r <= 0)
            st = byol_error(BYOL_ERR_IO, "%s: read failed: %s", path,
                            r ? strerror(errno) : "the file shrank");
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    t->path = path;
    if (st == BYOL_OK)
        st = table_parse(t, text, n);
    free(text);
    return st;
}

/* ---- panels ------------------------------------------------------------------------------ */

/* Column c of every row (scaled), into a new array. */
static double *column(const struct table *t, int c, double scale)
{
    double *v = malloc((t->rows ? t->rows : 1) * sizeof *v);
    for (size_t i = 0; v && i < t->rows; i++)
        v[i] = c < 0 ? NAN : t->v[i * TABLE_MAX_COLUMNS + c] * scale;
    return v;
}

/* The running mean of the last `w` finite values. */
static double *running_mean(const double *y, size_t n, size_t w)
{
    double *m = malloc((n ? n : 1) * sizeof *m), sum = 0;
    size_t count = 0;
    for (size_t i = 0; m && i < n; i++) {
        if (isfinite(y[i])) {
            sum += y[i];
            count++;
        }
        if (i >= w && isfinite(y[i - w])) {
            sum -= y[i - w];
            count--;
        }
        m[i] = count ? sum / (double)count : NAN;
    }
    return m;
}

/* The collapse statistic's column: "proj_std", or another whose name says projection std. */
static int collapse_col(const struct table *t)
{
    for (int i = 0; i < t->cols; i++)
        if (strstr(t->names[i], "std") && strstr(t->names[i], "proj"))
            return i;
    return -1;
}

byol_status byol_plot_metrics(const char *metrics_path, const char *png_path)
{
    struct table t = {0};
    byol_status st = table_read(metrics_path, &t);
    if (st != BYOL_OK) {
        table_free(&t);
        return st;
    }
    size_t n = t.rows, w = n / 20 > 50 ? 50 : n / 20 + 1;
    int cc = collapse_col(&t);
    double *x = column(&t, table_col(&t, "step"), 1), *loss = column(&t, table_col(&t, "loss"), 1);
    double *mean = loss ? running_mean(loss, n, w) : NULL;
    double *lr = column(&t, table_col(&t, "lr"), 1);
    double *knn = column(&t, table_col(&t, "knn_top1"), 100);
    double *last = column(&t, cc >= 0 ? cc : table_col(&t, "tau"), 1);
    char mean_label[32];
    snprintf(mean_label, sizeof mean_label, "mean of %zu", w);
    struct byol_plot_panel p[4] = {
        {"loss", {{"loss", x, loss, n}, {mean_label, x, mean, n}}, 2, 0},
        {"learning rate", {{"lr", x, lr, n}}, 1, 0},
        {"knn top-1 (%)", {{"knn", x, knn, n}}, 1, 0},
        {cc >= 0 ? "projection std (0: collapse)" : "tau", {{NULL, x, last, n}}, 1, cc >= 0}};
    if (!x || !loss || !mean || !lr || !knn || !last)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", metrics_path);
    else
        st = byol_plot_write_png(png_path, "step", p, 4);
    free(x);
    free(loss);
    free(mean);
    free(lr);
    free(knn);
    free(last);
    table_free(&t);
    return st;
}
