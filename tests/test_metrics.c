/* Training metrics (core/io/metrics.c, core/io/tb_events.c): CSV and JSON-lines rows read back,
 * NAN cells, resuming a run's file, CRC-32C, TensorBoard event files decoded by a reader of
 * the test's own, and the message of each bad setting. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "byol/metrics.h"
#include "testutil.h"

static const char *dir; /* the scratch folder, made by main */

/* ---- Helpers. ----------------------------------------------------------------------------- */

/* Open metrics for the config text; the config is freed by the caller (*cfg). */
static byol_status open_text(const char *text, int64_t resume, struct byol_config **cfg,
                             struct byol_metrics **m)
{
    *cfg = NULL;
    *m = NULL;
    byol_status st = byol_config_parse(text, "metrics-test.cfg", cfg);
    if (st == BYOL_OK)
        st = byol_metrics_open(byol_config_root(*cfg), resume, m);
    return st;
}

static struct byol_metrics_row row_at(int64_t step, double knn)
{
    struct byol_metrics_row r = {.step = step,
                                 .loss = 4.0 - 0.125 * (double)step,
                                 .lr = 3e-4 * (double)step,
                                 .tau = 0.99,
                                 .images_per_s = 100.5 + (double)step,
                                 .elapsed_s = 0.25 * (double)step,
                                 .knn_top1 = knn,
                                 .proj_std = 0.05 + 0.001 * (double)step,
                                 .eff_rank = isnan(knn) ? NAN : 2.0 + 0.5 * (double)step};
    return r;
}

/* Open, log steps first..last (knn_top1 on even steps), close. */
static void log_steps(const char *text, int64_t resume, int64_t first, int64_t last)
{
    struct byol_config *cfg;
    struct byol_metrics *m;
    BYOL_CHECK_OK(open_text(text, resume, &cfg, &m));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (int64_t s = first; s <= last; s++) {
        struct byol_metrics_row r = row_at(s, s % 2 ? NAN : 0.5 + 0.01 * (double)s);
        BYOL_CHECK_OK(byol_metrics_log(m, &r));
    }
    byol_metrics_close(m);
    byol_config_free(cfg);
}

static const char *cfg_text(const char *metrics, int eval_every)
{
    static char text[1024];
    snprintf(text, sizeof text, "eval = { every = %d; };\nmetrics = { %s };\n", eval_every,
             metrics);
    return text;
}

static char **split_lines(char *text, int *n)
{
    static char *lines[256];
    *n = 0;
    for (char *p = strtok(text, "\n"); p && *n < 256; p = strtok(NULL, "\n"))
        lines[(*n)++] = p;
    return lines;
}

/* The CSV cells of one line, in place; empty cells are "". */
static int split_cells(char *line, char **cells, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        cells[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1, fabs(b));
}

/* The number after "key": in a JSON line, or NAN when the key is absent. */
static double json_number(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Check a CSV's rows against row_at(first..last) (knn and eff_rank on even steps when
 * with_knn; `legacy`: a file from before proj_std and eff_rank, whose columns a resume
 * keeps). */
static void check_csv_layout(const char *path, int with_knn, int legacy, int64_t first,
                             int64_t last)
{
    size_t size;
    char *text = (char *)byol_test_read_file(path, &size);
    int n;
    char **lines = split_lines(text, &n);
    const char *header =
        legacy ? (with_knn ? "step,loss,lr,tau,images_per_s,elapsed_s,knn_top1"
                           : "step,loss,lr,tau,images_per_s,elapsed_s")
               : (with_knn ? "step,loss,lr,tau,images_per_s,elapsed_s,knn_top1,proj_std,eff_rank"
                           : "step,loss,lr,tau,images_per_s,elapsed_s,proj_std");
    CU_ASSERT_EQUAL(n, 1 + (int)(last - first + 1));
    CU_ASSERT_STRING_EQUAL(lines[0], header);
    for (int i = 1; i < n; i++) {
        char *c[10];
        int64_t s = first + i - 1;
        struct byol_metrics_row r = row_at(s, 0.5 + 0.01 * (double)s);
        int cells = split_cells(lines[i], c, 10);
        CU_ASSERT_EQUAL(cells, (with_knn ? 7 : 6) + (legacy ? 0 : with_knn ? 2 : 1));
        if (!legacy && cells == 7)
            CU_ASSERT(near(strtod(c[6], NULL), r.proj_std));
        if (!legacy && with_knn && cells == 9) {
            CU_ASSERT(near(strtod(c[7], NULL), r.proj_std));
            if (s % 2)
                CU_ASSERT_STRING_EQUAL(c[8], "");
            if (!(s % 2))
                CU_ASSERT(near(strtod(c[8], NULL), r.eff_rank));
        }
        CU_ASSERT_EQUAL(strtoll(c[0], NULL, 10), s);
        CU_ASSERT(near(strtod(c[1], NULL), r.loss));
        CU_ASSERT(near(strtod(c[2], NULL), r.lr));
        CU_ASSERT(near(strtod(c[3], NULL), r.tau));
        CU_ASSERT(near(strtod(c[4], NULL), r.images_per_s));
        CU_ASSERT(near(strtod(c[5], NULL), r.elapsed_s));
        if (with_knn && s % 2)
            CU_ASSERT_STRING_EQUAL(c[6], "");
        if (with_knn && !(s % 2))
            CU_ASSERT(near(strtod(c[6], NULL), r.knn_top1));
    }
    free(text);
}

static void check_csv(const char *path, int with_knn, int64_t first, int64_t last)
{
    check_csv_layout(path, with_knn, 0, first, last);
}

static void check_jsonl(const char *path, int64_t first, int64_t last)
{
    size_t size;
    char *text = (char *)byol_test_read_file(path, &size);
    int n;
    char **lines = split_lines(text, &n);
    CU_ASSERT_EQUAL(n, (int)(last - first + 1));
    for (int i = 0; i < n; i++) {
        int64_t s = first + i;
        struct byol_metrics_row r = row_at(s, 0.5 + 0.01 * (double)s);
        size_t len = strlen(lines[i]);
        CU_ASSERT(lines[i][0] == '{' && lines[i][len - 1] == '}');
        CU_ASSERT(strncmp(lines[i], "{\"step\":", 8) == 0);
        CU_ASSERT_EQUAL((int64_t)json_number(lines[i], "step"), s);
        CU_ASSERT(near(json_number(lines[i], "loss"), r.loss));
        CU_ASSERT(near(json_number(lines[i], "lr"), r.lr));
        CU_ASSERT(near(json_number(lines[i], "tau"), r.tau));
        CU_ASSERT(near(json_number(lines[i], "images_per_s"), r.images_per_s));
        CU_ASSERT(near(json_number(lines[i], "elapsed_s"), r.elapsed_s));
        CU_ASSERT(near(json_number(lines[i], "proj_std"), r.proj_std));
        if (s % 2) {
            CU_ASSERT_PTR_NULL(strstr(lines[i], "knn_top1"));
            CU_ASSERT_PTR_NULL(strstr(lines[i], "eff_rank"));
        } else {
            CU_ASSERT(near(json_number(lines[i], "knn_top1"), r.knn_top1));
            CU_ASSERT(near(json_number(lines[i], "eff_rank"), r.eff_rank));
        }
    }
    free(text);
}

static const char *metrics_file(const char *name, const char *extra)
{
    static char text[512];
    snprintf(text, sizeof text, "file = \"%s\"; %s", byol_test_path(dir, name), extra);
    return text;
}

/* ---- CSV and JSONL. ----------------------------------------------------------------------- */

static void test_csv(void)
{
    log_steps(cfg_text(metrics_file("plain.csv", ""), 0), 0, 1, 6);
    check_csv(byol_test_path(dir, "plain.csv"), 0, 1, 6);
    /* eval.every > 0 adds the kNN column; odd steps leave it empty. */
    log_steps(cfg_text(metrics_file("knn.csv", ""), 5), 0, 1, 6);
    check_csv(byol_test_path(dir, "knn.csv"), 1, 1, 6);
    /* format overrides the extension. */
    log_steps(cfg_text(metrics_file("table.log", "format = \"csv\";"), 5), 0, 1, 2);
    check_csv(byol_test_path(dir, "table.log"), 1, 1, 2);
    /* A fresh run replaces an old file. */
    log_steps(cfg_text(metrics_file("plain.csv", ""), 0), 0, 1, 2);
    check_csv(byol_test_path(dir, "plain.csv"), 0, 1, 2);
}

static void test_jsonl(void)
{
    log_steps(cfg_text(metrics_file("rows.jsonl", ""), 0), 0, 1, 5);
    check_jsonl(byol_test_path(dir, "rows.jsonl"), 1, 5);
    log_steps(cfg_text(metrics_file("rows.csv", "format = \"jsonl\";"), 0), 0, 3, 4);
    check_jsonl(byol_test_path(dir, "rows.csv"), 3, 4);
}

/* Infinite values stay readable: "inf" in CSV, 1e999 (parsed as infinity) in JSON. */
static void test_infinity(void)
{
    struct byol_config *cfg;
    struct byol_metrics *m;
    const char *path = byol_test_path(dir, "inf.jsonl");
    BYOL_CHECK_OK(open_text(cfg_text(metrics_file("inf.jsonl", ""), 0), 0, &cfg, &m));
    struct byol_metrics_row r = row_at(1, NAN);
    r.loss = INFINITY;
    BYOL_CHECK_OK(byol_metrics_log(m, &r));
    byol_metrics_close(m);
    byol_config_free(cfg);
    size_t n;
    char *text = (char *)byol_test_read_file(path, &n);
    CU_ASSERT(isinf(json_number(text, "loss")));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"loss\":1e999,"));
    free(text);
}

/* ---- Resuming. ---------------------------------------------------------------------------- */

static void append_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* An interrupted run wrote up to step 8 and half of step 9; the checkpoint was at step 5. */
static void test_resume_csv(void)
{
    const char *text = cfg_text(metrics_file("resume.csv", ""), 5);
    const char *path = byol_test_path(dir, "resume.csv");
    log_steps(text, 0, 1, 8);
    append_text(path, "9,3.1,0.00");
    log_steps(text, 5, 6, 10);
    check_csv(path, 1, 1, 10); /* one header, steps 1..10 once each */
    /* Nothing to drop: rows are only appended. */
    log_steps(text, 10, 11, 12);
    check_csv(path, 1, 1, 12);
    /* A resume without a file starts one. */
    log_steps(cfg_text(metrics_file("late.csv", ""), 5), 7, 8, 9);
    check_csv(byol_test_path(dir, "late.csv"), 1, 8, 9);
    /* A file with only a torn header is rewritten whole. */
    const char *torn = byol_test_path(dir, "torn.csv");
    byol_test_write_file(torn, "step,lo", 7);
    log_steps(cfg_text(metrics_file("torn.csv", ""), 0), 3, 4, 5);
    check_csv(torn, 0, 4, 5);
}

static void test_resume_jsonl(void)
{
    const char *text = cfg_text(metrics_file("resume.jsonl", ""), 0);
    const char *path = byol_test_path(dir, "resume.jsonl");
    log_steps(text, 0, 1, 7);
    append_text(path, "{\"step\":8,\"lo");
    log_steps(text, 4, 5, 9);
    check_jsonl(path, 1, 9);
}

/* Resuming after eval.every changed keeps the file's columns; a file whose header is not a
 * metrics header is another program's, and is left alone. */
static void test_resume_header(void)
{
    struct byol_config *cfg;
    struct byol_metrics *m;
    const char *path = byol_test_path(dir, "columns.csv");
    log_steps(cfg_text(metrics_file("columns.csv", ""), 0), 0, 1, 3);
    log_steps(cfg_text(metrics_file("columns.csv", ""), 5), 3, 4, 5);
    check_csv(path, 0, 1, 5);
    const char *other = byol_test_path(dir, "other.csv");
    byol_test_write_file(other, "epoch,accuracy\n1,0.5\n", 21);
    CU_ASSERT_EQUAL(open_text(cfg_text(metrics_file("other.csv", ""), 5), 2, &cfg, &m),
                    BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("metrics-test.cfg:2: metrics.file: ");
    BYOL_ASSERT_MSG_HAS("other.csv: its header \"epoch,accuracy\" is not a metrics header "
                        "(\"step,loss,lr,tau,images_per_s,elapsed_s,knn_top1,proj_std,"
                        "eff_rank\"): move the file away to resume");
    CU_ASSERT_PTR_NULL(m);
    byol_config_free(cfg);
    size_t n;
    char *text = (char *)byol_test_read_file(other, &n);
    CU_ASSERT_STRING_EQUAL(text, "epoch,accuracy\n1,0.5\n"); /* left as it was */
    free(text);
}

/* A file written before proj_std and eff_rank existed resumes with its own columns (and a
 * torn header of the new form is still a header). */
static void test_resume_legacy(void)
{
    const char *path = byol_test_path(dir, "legacy.csv");
    char old[2048];
    size_t used = (size_t)snprintf(old, sizeof old, "%s\n",
                                   "step,loss,lr,tau,images_per_s,elapsed_s,knn_top1");
    for (int64_t s = 1; s <= 4; s++) {
        struct byol_metrics_row r = row_at(s, 0.5 + 0.01 * (double)s);
        char knn[32] = "";
        if (!(s % 2))
            snprintf(knn, sizeof knn, "%.10g", r.knn_top1);
        used += (size_t)snprintf(old + used, sizeof old - used,
                                 "%lld,%.10g,%.10g,%.10g,%.10g,%.10g,%s\n", (long long)s, r.loss,
                                 r.lr, r.tau, r.images_per_s, r.elapsed_s, knn);
    }
    byol_test_write_file(path, old, used);
    log_steps(cfg_text(metrics_file("legacy.csv", ""), 5), 3, 4, 6);
    check_csv_layout(path, 1, 1, 1, 6);
    /* Without the kNN column, under a config that now has one. */
    const char *plain = byol_test_path(dir, "legacy-plain.csv");
    static const char base[] = "step,loss,lr,tau,images_per_s,elapsed_s\n";
    byol_test_write_file(plain, base, sizeof base - 1);
    log_steps(cfg_text(metrics_file("legacy-plain.csv", ""), 5), 1, 1, 2);
    check_csv_layout(plain, 0, 1, 1, 2);
    /* A new-form header torn by a crash is rewritten whole. */
    const char *torn = byol_test_path(dir, "torn-new.csv");
    byol_test_write_file(torn, "step,loss,lr,tau,images_per_s,elapsed_s,proj_s", 46);
    log_steps(cfg_text(metrics_file("torn-new.csv", ""), 0), 3, 4, 5);
    check_csv(torn, 0, 4, 5);
}

/* ---- A fresh run keeps the earlier file until its first row; --resume only its own. ------ */

/* The file holds exactly `want`. */
static void expect_content(const char *path, const char *want, size_t n)
{
    size_t got;
    char *text = (char *)byol_test_read_file(path, &got);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT(got == n && memcmp(text, want, n) == 0);
    free(text);
}

/* How many names in the scratch folder start with `prefix`. */
static int count_names(const char *prefix)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static void test_fresh_replaces_at_first_row(void)
{
    static const char earlier[] = "an earlier run's table\n";
    struct byol_config *cfg;
    struct byol_metrics *m;
    char path[512];
    const char *text = cfg_text(metrics_file("keep.csv", ""), 0);
    snprintf(path, sizeof path, "%s", byol_test_path(dir, "keep.csv"));
    byol_test_write_file(path, earlier, sizeof earlier - 1);
    /* Opened and closed without a row (a run that failed before step 1): nothing changes. */
    BYOL_CHECK_OK(open_text(text, 0, &cfg, &m));
    expect_content(path, earlier, sizeof earlier - 1);
    byol_metrics_close(m);
    byol_config_free(cfg);
    expect_content(path, earlier, sizeof earlier - 1);
    CU_ASSERT_EQUAL(count_names("keep.csv.tmp."), 0);
    /* The first row replaces it, header and row together. */
    BYOL_CHECK_OK(open_text(text, 0, &cfg, &m));
    struct byol_metrics_row r = row_at(1, NAN);
    BYOL_CHECK_OK(byol_metrics_log(m, &r));
    check_csv(path, 0, 1, 1);
    r = row_at(2, NAN);
    BYOL_CHECK_OK(byol_metrics_log(m, &r));
    byol_metrics_close(m);
    byol_config_free(cfg);
    check_csv(path, 0, 1, 2);
    CU_ASSERT_EQUAL(count_names("keep.csv.tmp."), 0);
    /* A symbolic link stays one: the file it points to gets the new table. */
    char link[512];
    struct stat sb;
    snprintf(link, sizeof link, "%s", byol_test_path(dir, "link.csv"));
    CU_ASSERT_EQUAL(symlink("keep.csv", link), 0);
    log_steps(cfg_text(metrics_file("link.csv", ""), 0), 0, 1, 3);
    CU_ASSERT(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    check_csv(path, 0, 1, 3);
    /* A path that is no regular file is written to directly. */
    log_steps(cfg_text("file = \"/dev/null\"; format = \"jsonl\";", 0), 0, 1, 2);
}

/* --resume from step 3 refuses `name` holding n bytes of `content`, with a message holding
 * `msg`, and leaves it as it was. */
static void expect_not_own(const char *name, const char *content, size_t n, const char *msg)
{
    struct byol_config *cfg;
    struct byol_metrics *m;
    char path[512];
    snprintf(path, sizeof path, "%s", byol_test_path(dir, name));
    byol_test_write_file(path, content, n);
    CU_ASSERT_EQUAL(open_text(cfg_text(metrics_file(name, ""), 0), 3, &cfg, &m), BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("metrics-test.cfg:2: metrics.file: ");
    BYOL_ASSERT_MSG_HAS(msg);
    BYOL_ASSERT_MSG_HAS(": move the file away to resume");
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    CU_ASSERT_PTR_NULL(m);
    byol_config_free(cfg);
    expect_content(path, content, n);
}

static void test_resume_not_own(void)
{
    static const char binary[] = "\x7f"
                                 "ELF\x02\x01\x01\0\0\0\n\x93\xff";
    char big[4096];
    memset(big, 'x', sizeof big);
    expect_not_own("foreign.jsonl", "{\"epoch\":1,\"acc\":0.5}\n", 22,
                   "foreign.jsonl: line 1 is not a metrics row (\"{\"epoch\":1,\"acc\":0.5}\")");
    expect_not_own("key.jsonl", "{\"step\":1,\"loss\":2}\n{\"step\":2,\"acc\":1}\n", 39,
                   "key.jsonl: line 2 is not a metrics row (\"{\"step\":2,\"acc\":1}\")");
    expect_not_own("text.jsonl", "{\"step\":1,\"loss\":2}\nnotes\n{\"step\":2}\n", 37,
                   "text.jsonl: line 2 is not a metrics row (\"notes\")");
    expect_not_own("binary.jsonl", binary, sizeof binary - 1,
                   "binary.jsonl: line 1 is not a metrics row (\"?ELF??????\")");
    expect_not_own("binary.csv", binary, sizeof binary - 1,
                   "binary.csv: its header \"?ELF??????\" is not a metrics header");
    expect_not_own("long.jsonl", big, sizeof big, "long.jsonl: line 1 is not a metrics row");
    expect_not_own("cells.csv", "step,loss,lr,tau,images_per_s,elapsed_s\n1,2,3,4,5,6,7\n", 54,
                   "cells.csv: line 2 is not a metrics row (\"1,2,3,4,5,6,7\")");
    expect_not_own("word.csv", "step,loss,lr,tau,images_per_s,elapsed_s\n1,2,x,4,5,6\n", 52,
                   "word.csv: line 2 is not a metrics row (\"1,2,x,4,5,6\")");
    /* Its own rows, empty cells, infinities and a torn last row are its own. */
    static const char own[] = "step,loss,lr,tau,images_per_s,elapsed_s,knn_top1\n"
                              "1,inf,1e-05,0.99,1,2,\n2,-inf,1,1,1,1,0.5\n3,1,1,1,1,1,\n4,1,";
    const char *path = byol_test_path(dir, "own.csv");
    byol_test_write_file(path, own, sizeof own - 1);
    log_steps(cfg_text(metrics_file("own.csv", ""), 0), 2, 3, 3);
    size_t n;
    char *text = (char *)byol_test_read_file(path, &n);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\n2,-inf,1,1,1,1,0.5\n3,"));
    CU_ASSERT_PTR_NULL(strstr(text, "3,1,1,1,1,1,\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "4,1,"));
    free(text);
    /* What is no regular file is not resumed. */
    struct byol_config *cfg;
    struct byol_metrics *m;
    CU_ASSERT_EQUAL(open_text(cfg_text("file = \"/dev/null\"; format = \"csv\";", 0), 3, &cfg, &m),
                    BYOL_ERR_FORMAT);
    BYOL_ASSERT_MSG_HAS("metrics.file: /dev/null: not a regular file: move it away to resume");
    byol_config_free(cfg);
}

/* ---- Probing where the files go. ---------------------------------------------------------- */

/* byol_metrics_probe of the metrics group `group` fails with msg1 and msg2. */
static void expect_probe_error(const char *group, const char *msg1, const char *msg2)
{
    struct byol_config *cfg;
    char text[1024];
    snprintf(text, sizeof text, "metrics = {\n%s };", group);
    BYOL_CHECK_OK(byol_config_parse(text, "metrics-test.cfg", &cfg));
    CU_ASSERT_EQUAL(byol_metrics_probe(byol_config_root(cfg)), BYOL_ERR_IO);
    BYOL_ASSERT_MSG_HAS(msg1);
    BYOL_ASSERT_MSG_HAS(msg2);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    byol_config_free(cfg);
}

static void test_probe(void)
{
    char blocker[512], group[1024];
    snprintf(blocker, sizeof blocker, "%s", byol_test_path(dir, "probe-blocker"));
    byol_test_write_file(blocker, "x", 1);
    snprintf(group, sizeof group, "file = \"%s/sub/m.csv\";", blocker);
    expect_probe_error(group, "metrics-test.cfg:2: metrics.file: ",
                       "probe-blocker/sub: cannot write there: Not a directory");
    expect_probe_error("file = \"/\"; format = \"csv\";", "metrics-test.cfg:2: metrics.file: ",
                       "/: cannot write there: Is a directory");
    snprintf(group, sizeof group, "tensorboard = \"%s\";", blocker);
    expect_probe_error(group, "metrics-test.cfg:2: metrics.tensorboard: ",
                       "probe-blocker: cannot write there: Not a directory");
    /* Folders that do not exist yet are made for the probe and removed again. */
    struct byol_config *cfg;
    snprintf(group, sizeof group,
             "metrics = { file = \"%s/p1/p2/m.csv\"; tensorboard = \"%s/p3//runs/\"; };", dir, dir);
    BYOL_CHECK_OK(byol_config_parse(group, "metrics-test.cfg", &cfg));
    BYOL_CHECK_OK(byol_metrics_probe(byol_config_root(cfg)));
    byol_config_free(cfg);
    CU_ASSERT_EQUAL(count_names("p1") + count_names("p3") + count_names(".byol-probe"), 0);
    /* Settings errors as byol_metrics_check says them; no group: nothing to probe. */
    BYOL_CHECK_OK(byol_config_parse("metrics = {\n format = \"csv\"; };", "m.cfg", &cfg));
    CU_ASSERT_EQUAL(byol_metrics_probe(byol_config_root(cfg)), BYOL_ERR_INVALID);
    BYOL_ASSERT_MSG_HAS("m.cfg:2: metrics.format: set without metrics.file");
    byol_config_free(cfg);
    BYOL_CHECK_OK(byol_config_parse("seed = 1;", "m.cfg", &cfg));
    BYOL_CHECK_OK(byol_metrics_probe(byol_config_root(cfg)));
    byol_config_free(cfg);
}

/* ---- CRC-32C. ----------------------------------------------------------------------------- */

/* Bit by bit, independent of the library's table. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void test_crc32c(void)
{
    unsigned char zeros[32] = {0}, ones[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) {
        ones[i] = 0xFF;
        inc[i] = (unsigned char)i;
        dec[i] = (unsigned char)(31 - i);
    }
    /* RFC 3720 B.4: an iSCSI read command PDU. */
    static const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CU_ASSERT_EQUAL(byol_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(byol_crc32c(0, zeros, 32), 0x8A9136AAu);
    CU_ASSERT_EQUAL(byol_crc32c(0, ones, 32), 0x62A8AB43u);
    CU_ASSERT_EQUAL(byol_crc32c(0, inc, 32), 0x46DD794Eu);
    CU_ASSERT_EQUAL(byol_crc32c(0, dec, 32), 0x113FDB5Cu);
    CU_ASSERT_EQUAL(byol_crc32c(0, pdu, 48), 0xD9963A56u);
    CU_ASSERT_EQUAL(byol_crc32c(0, "", 0), 0u);
    /* Continuing a CRC equals one pass; the test's own CRC agrees. */
    CU_ASSERT_EQUAL(byol_crc32c(byol_crc32c(0, pdu, 20), pdu + 20, 28), 0xD9963A56u);
    CU_ASSERT_EQUAL(crc32c_bitwise((const unsigned char *)"123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(crc32c_bitwise(pdu, 48), 0xD9963A56u);
}

/* ---- TensorBoard: a TFRecord and protobuf reader of the test's own. ----------------------- */

struct tb_scalar {
    int64_t step;
    char tag[32];
    float value;
};

struct tb_read {
    int records;
    char file_version[32];
    double first_wall_time;
    int64_t session_start_step; /* -1: no SessionLog START */
    struct tb_scalar scalars[128];
    int n;
};

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t unmasked(uint32_t masked)
{
    uint32_t rot = masked - 0xA282EAD8u;
    return (rot >> 17) | (rot << 15);
}

/* A varint at *p (< end); 0 when it runs past the end. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

/* One field: number, wire type, and its payload (varint value, or bytes [*data, +len)). */
struct pb_field {
    unsigned field, wire;
    uint64_t v;
    const unsigned char *data;
    size_t len;
};

static int next_field(const unsigned char **p, const unsigned char *end, struct pb_field *f)
{
    uint64_t key;
    memset(f, 0, sizeof *f);
    if (*p >= end || !get_varint(p, end, &key))
        return 0;
    f->field = (unsigned)(key >> 3);
    f->wire = (unsigned)(key & 7);
    f->data = *p;
    if (f->wire == 0)
        return get_varint(p, end, &f->v);
    f->len = f->wire == 1 ? 8 : f->wire == 5 ? 4 : 0;
    if (f->wire == 2 && !get_varint(p, end, &f->v))
        return 0;
    if (f->wire == 2) {
        f->len = (size_t)f->v;
        f->data = *p;
    }
    if (!f->len && f->wire != 2)
        return 0; /* groups and unknown wire types are not expected */
    if ((size_t)(end - *p) < f->len)
        return 0;
    *p += f->len;
    return 1;
}

/* Summary.Value { tag = 1; simple_value = 2 } */
static void decode_value(const unsigned char *p, const unsigned char *end, int64_t step,
                         struct tb_read *out)
{
    struct pb_field f;
    struct tb_scalar s = {.step = step};
    int have_value = 0;
    while (next_field(&p, end, &f)) {
        if (f.field == 1 && f.wire == 2)
            snprintf(s.tag, sizeof s.tag, "%.*s", (int)f.len, (const char *)f.data);
        if (f.field == 2 && f.wire == 5) {
            uint32_t bits = le32(f.data);
            memcpy(&s.value, &bits, 4);
            have_value = 1;
        }
    }
    CU_ASSERT_EQUAL(p, end);
    CU_ASSERT(have_value && s.tag[0]);
    if (out->n < 128)
        out->scalars[out->n++] = s;
}

/* Event { wall_time = 1; step = 2; file_version = 3; summary = 5; session_log = 7 } */
static void decode_event(const unsigned char *p, const unsigned char *end, struct tb_read *out)
{
    struct pb_field f;
    int64_t step = 0;
    const unsigned char *summary = NULL, *summary_end = NULL, *start = p;
    while (next_field(&p, end, &f)) {
        if (f.field == 1 && f.wire == 1 && out->records == 1) {
            uint64_t bits = (uint64_t)le32(f.data) | (uint64_t)le32(f.data + 4) << 32;
            memcpy(&out->first_wall_time, &bits, 8);
        } else if (f.field == 2 && f.wire == 0) {
            step = (int64_t)f.v;
        } else if (f.field == 3 && f.wire == 2) {
            snprintf(out->file_version, sizeof out->file_version, "%.*s", (int)f.len,
                     (const char *)f.data);
        } else if (f.field == 5 && f.wire == 2) {
            summary = f.data;
            summary_end = f.data + f.len;
        } else if (f.field == 7 && f.wire == 2) {
            const unsigned char *q = f.data;
            struct pb_field g;
            CU_ASSERT(next_field(&q, f.data + f.len, &g) && g.field == 1 && g.v == 1);
            out->session_start_step = step;
        }
    }
    CU_ASSERT_EQUAL(p, end);
    (void)start;
    for (const unsigned char *q = summary; q && q < summary_end;) {
        CU_ASSERT_FATAL(next_field(&q, summary_end, &f));
        CU_ASSERT(f.field == 1 && f.wire == 2);
        decode_value(f.data, f.data + f.len, step, out);
    }
}

/* Every record's framing and both CRCs (with the test's own CRC), then its Event. */
static void read_events(const char *path, struct tb_read *out)
{
    size_t size;
    unsigned char *b = byol_test_read_file(path, &size);
    memset(out, 0, sizeof *out);
    out->session_start_step = -1;
    size_t off = 0;
    while (off < size) {
        CU_ASSERT_FATAL(size - off >= 16);
        uint64_t len = 0;
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)b[off + i] << (8 * i);
        CU_ASSERT_EQUAL_FATAL(unmasked(le32(b + off + 8)), crc32c_bitwise(b + off, 8));
        CU_ASSERT_FATAL(len <= size - off - 16);
        const unsigned char *data = b + off + 12;
        CU_ASSERT_EQUAL_FATAL(unmasked(le32(data + len)), crc32c_bitwise(data, (size_t)len));
        out->records++;
        decode_event(data, data + len, out);
        off += 16 + (size_t)len;
    }
    free(b);
}

/* The event files in `folder`, sorted by name; returns how many (at most max). */
static int event_files(const char *folder, char names[][256], int max)
{
    DIR *d = opendir(folder);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0)
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

static const struct tb_scalar *find_scalar(const struct tb_read *r, int64_t step, const char *tag)
{
    for (int i = 0; i < r->n; i++)
        if (r->scalars[i].step == step && strcmp(r->scalars[i].tag, tag) == 0)
            return &r->scalars[i];
    return NULL;
}

/* Steps first..last of log_steps, as scalars: every tag but elapsed_s, knn_top1 on even
 * steps only. */
static void check_scalars(const struct tb_read *r, int64_t first, int64_t last)
{
    static const char *const tags[] = {"loss", "lr", "tau", "images_per_s", "proj_std"};
    CU_ASSERT_EQUAL(r->n, (int)(last - first + 1) * 5 + 2 * (int)(last / 2 - (first - 1) / 2));
    for (int64_t s = first; s <= last; s++) {
        struct byol_metrics_row row = row_at(s, 0.5 + 0.01 * (double)s);
        const double want[] = {row.loss, row.lr, row.tau, row.images_per_s, row.proj_std};
        for (int k = 0; k < 5; k++) {
            const struct tb_scalar *v = find_scalar(r, s, tags[k]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            CU_ASSERT_EQUAL(v->value, (float)want[k]);
        }
        const struct tb_scalar *knn = find_scalar(r, s, "knn_top1");
        CU_ASSERT_EQUAL(knn != NULL, s % 2 == 0);
        if (knn)
            CU_ASSERT_EQUAL(knn->value, (float)row.knn_top1);
        const struct tb_scalar *erank = find_scalar(r, s, "eff_rank");
        CU_ASSERT_EQUAL(erank != NULL, s % 2 == 0);
        if (erank)
            CU_ASSERT_EQUAL(erank->value, (float)row.eff_rank);
        CU_ASSERT_PTR_NULL(find_scalar(r, s, "elapsed_s"));
    }
}

static void test_tensorboard(void)
{
    char text[512], names[4][256], host[256] = "";
    const char *runs = byol_test_path(dir, "runs/a");
    snprintf(text, sizeof text, "metrics = { tensorboard = \"%s\"; };", runs);
    double before = (double)time(NULL);
    log_steps(text, 0, 1, 6);
    CU_ASSERT_EQUAL_FATAL(event_files(runs, names, 4), 1);
    /* events.out.tfevents.<unix time>.<hostname>.byolc */
    gethostname(host, sizeof host);
    char *end = NULL;
    long long t = strtoll(names[0] + 20, &end, 10);
    CU_ASSERT(t >= (long long)before - 1 && t <= (long long)time(NULL) + 1);
    CU_ASSERT(*end == '.' && strncmp(end + 1, host, strlen(host)) == 0);
    CU_ASSERT_STRING_EQUAL(end + 1 + strlen(host), ".byolc");
    struct tb_read *r = malloc(sizeof *r);
    read_events(byol_test_path(runs, names[0]), r);
    CU_ASSERT_STRING_EQUAL(r->file_version, "brain.Event:2");
    CU_ASSERT(fabs(r->first_wall_time - before) < 60);
    CU_ASSERT_EQUAL(r->records, 2 + 6);
    CU_ASSERT_EQUAL(r->session_start_step, 1);
    check_scalars(r, 1, 6);
    /* A resumed run (at once: the same second) writes a second file, named after the first,
     * whose session start at resume_step + 1 makes TensorBoard drop the first file's steps
     * from there on. */
    log_steps(text, 4, 5, 8);
    CU_ASSERT_EQUAL_FATAL(event_files(runs, names, 4), 2);
    read_events(byol_test_path(runs, names[1]), r);
    CU_ASSERT_EQUAL(r->records, 2 + 4);
    CU_ASSERT_EQUAL(r->session_start_step, 5);
    check_scalars(r, 5, 8);
    free(r);
}

/* A CSV and an event file from one group. */
static void test_both_outputs(void)
{
    char text[512];
    const char *runs = byol_test_path(dir, "runs/both");
    snprintf(text, sizeof text,
             "eval = { every = 2; }; metrics = { file = \"%s\"; "
             "tensorboard = \"%s\"; };",
             byol_test_path(dir, "both.csv"), runs);
    log_steps(text, 0, 1, 3);
    check_csv(byol_test_path(dir, "both.csv"), 1, 1, 3);
    char names[2][256];
    CU_ASSERT_EQUAL(event_files(runs, names, 2), 1);
}

/* ---- Settings. ---------------------------------------------------------------------------- */

static void test_no_group(void)
{
    struct byol_config *cfg;
    struct byol_metrics *m = (struct byol_metrics *)&m;
    BYOL_CHECK_OK(open_text("seed = 1;", 0, &cfg, &m));
    CU_ASSERT_PTR_NULL(m);
    struct byol_metrics_row r = row_at(1, NAN);
    BYOL_CHECK_OK(byol_metrics_log(NULL, &r));
    byol_metrics_close(NULL);
    byol_config_free(cfg);
    /* An empty group writes nothing either. */
    BYOL_CHECK_OK(open_text("metrics = { };", 0, &cfg, &m));
    CU_ASSERT_PTR_NULL(m);
    byol_config_free(cfg);
}

/* open fails with `want` and a one-line message holding msg1 and msg2; byol_metrics_check
 * gives the same message for the settings errors (want INVALID), and passes the others,
 * which only opening a file finds. */
static void expect_error(const char *text, byol_status want, const char *msg1, const char *msg2)
{
    struct byol_config *cfg;
    struct byol_metrics *m;
    byol_status st = open_text(text, 0, &cfg, &m);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(m);
    BYOL_ASSERT_MSG_HAS(msg1);
    BYOL_ASSERT_MSG_HAS(msg2);
    CU_ASSERT_PTR_NULL(strchr(byol_last_error(), '\n'));
    byol_clear_error();
    if (cfg && want == BYOL_ERR_INVALID) {
        CU_ASSERT_EQUAL(byol_metrics_check(byol_config_root(cfg)), want);
        BYOL_ASSERT_MSG_HAS(msg1);
        BYOL_ASSERT_MSG_HAS(msg2);
    } else if (cfg) {
        BYOL_CHECK_OK(byol_metrics_check(byol_config_root(cfg)));
    }
    byol_metrics_close(m);
    byol_config_free(cfg);
}

static void test_bad_settings(void)
{
    char text[512];
    expect_error(
        "metrics = {\n fle = \"m.csv\"; };", BYOL_ERR_INVALID,
        "metrics-test.cfg:2: metrics.fle: ", "unknown setting (known: file, format, tensorboard)");
    expect_error("metrics = \"m.csv\";", BYOL_ERR_INVALID,
                 "metrics-test.cfg:1: metrics: ", "expected a group");
    expect_error("metrics = {\n file = \"m.txt\"; };", BYOL_ERR_INVALID,
                 "metrics-test.cfg:2: metrics.file: ",
                 "cannot tell the format of \"m.txt\": name it .csv or .jsonl, or set "
                 "metrics.format");
    expect_error("metrics = { file = \"m.csv\";\n format = \"xml\"; };", BYOL_ERR_INVALID,
                 "metrics-test.cfg:2: metrics.format: ", "\"xml\": expected \"csv\" or \"jsonl\"");
    expect_error("metrics = {\n format = \"csv\"; };", BYOL_ERR_INVALID,
                 "metrics-test.cfg:2: metrics.format: ", "set without metrics.file");
    expect_error("metrics = {\n file = \"\"; };", BYOL_ERR_INVALID,
                 "metrics-test.cfg:2: metrics.file: ", "must not be empty");
    expect_error("metrics = {\n tensorboard = \"\"; };", BYOL_ERR_INVALID,
                 "metrics-test.cfg:2: metrics.tensorboard: ", "must not be empty");
    expect_error("metrics = {\n file = 3; };", BYOL_ERR_INVALID, "metrics-test.cfg:2: metrics.file",
                 "string");
    expect_error("eval = {\n every = \"often\"; };\nmetrics = { file = \"m.csv\"; };",
                 BYOL_ERR_INVALID, "metrics-test.cfg:2: eval.every", "integer");
    /* Folders that cannot be made: a regular file stands in the way. */
    const char *blocker = byol_test_path(dir, "blocker");
    byol_test_write_file(blocker, "x", 1);
    snprintf(text, sizeof text, "metrics = {\n file = \"%s/m.csv\"; };", blocker);
    expect_error(text, BYOL_ERR_IO, "metrics-test.cfg:2: metrics.file: cannot create ",
                 "blocker is not a folder");
    snprintf(text, sizeof text, "metrics = {\n tensorboard = \"%s/runs\"; };", blocker);
    expect_error(text, BYOL_ERR_IO, "metrics-test.cfg:2: metrics.tensorboard: cannot create ",
                 "blocker/runs: ");
    expect_error(text, BYOL_ERR_IO, "blocker/runs: ", "blocker is not a folder");
    snprintf(text, sizeof text, "metrics = {\n file = \"%s\"; format = \"csv\"; };", dir);
    expect_error(text, BYOL_ERR_IO, "metrics-test.cfg:2: metrics.file: cannot open ",
                 "Is a directory");
}

int main(int argc, char **argv)
{
    dir = byol_test_tmpdir("metrics");
    static const struct byol_test_case cases[] = {
        {"CSV rows read back", test_csv, 0},
        {"JSON lines read back", test_jsonl, 0},
        {"infinite values", test_infinity, 0},
        {"resume a CSV", test_resume_csv, 0},
        {"resume a JSONL file", test_resume_jsonl, 0},
        {"resume: the file's header decides", test_resume_header, 0},
        {"resume: a file from before proj_std keeps its columns", test_resume_legacy, 0},
        {"a fresh file replaces the earlier one at its first row", test_fresh_replaces_at_first_row,
         0},
        {"resume: only a file of its own", test_resume_not_own, 0},
        {"probing where the files go", test_probe, 0},
        {"CRC-32C test vectors", test_crc32c, 0},
        {"TensorBoard event files", test_tensorboard, 0},
        {"CSV and TensorBoard together", test_both_outputs, 0},
        {"no metrics group", test_no_group, 0},
        {"bad settings", test_bad_settings, 0},
        {NULL, NULL, 0},
    };
    int rc = byol_test_main(argc, argv, "metrics", cases);
    if (byol_test_remove_tree(dir) != 0)
        rc = rc ? rc : 2;
    return rc;
}
