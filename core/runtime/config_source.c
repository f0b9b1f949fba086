/* A config's text with its @include directives expanded (config_source_internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byol/settings.h"
#include "config_source_internal.h"
#include "fileio_internal.h"

/* libconfig's own limit on include nesting, and its message. */
#define SOURCE_MAX_DEPTH 10

/* Where the scanner is at the start of a line: only in plain text is "@include" a directive. */
enum source_state { IN_TEXT, IN_STRING, IN_COMMENT };

struct source_build {
    struct config_source *s;
    size_t cap, lines_cap, max_file, max_total;
};

static byol_status source_nomem(const char *name)
{
    return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name);
}

static byol_status source_append(struct source_build *b, const char *name, const char *p, size_t n)
{
    struct config_source *s = b->s;
    if (s->len + n > b->max_total)
        return byol_error(BYOL_ERR_FORMAT,
                          "%s: the config with its includes is larger than %zu bytes", name,
                          b->max_total);
    if (s->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *g = realloc(s->text, cap);
        if (!g)
            return source_nomem(name);
        s->text = g;
        b->cap = cap;
    }
    memcpy(s->text + s->len, p, n);
    s->len += n;
    s->text[s->len] = '\0';
    return BYOL_OK;
}

/* One line of output (ending in '\n'), from line `line` of file `file`. */
static byol_status source_line(struct source_build *b, const char *name, const char *p, size_t n,
                               uint32_t file, uint32_t line)
{
    struct config_source *s = b->s;
    if (s->nlines == b->lines_cap) {
        size_t cap = b->lines_cap ? 2 * b->lines_cap : 256;
        struct config_source_line *g = realloc(s->lines, cap * sizeof *g);
        if (!g)
            return source_nomem(name);
        s->lines = g;
        b->lines_cap = cap;
    }
    s->lines[s->nlines++] = (struct config_source_line){file, line};
    byol_status st = source_append(b, name, p, n);
    return st == BYOL_OK ? source_append(b, name, "\n", 1) : st;
}

/* The scanner state after the line p[0..n), from `state` at its start: strings (with escapes)
 * and block comments may span lines; '#' and '//' end the line. */
static enum source_state source_scan(const char *p, size_t n, enum source_state state)
{
    for (size_t i = 0; i < n; i++) {
        if (state == IN_COMMENT) {
            if (p[i] == '*' && i + 1 < n && p[i + 1] == '/') {
                state = IN_TEXT;
                i++;
            }
        } else if (state == IN_STRING) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                state = IN_TEXT;
        } else if (p[i] == '"') {
            state = IN_STRING;
        } else if (p[i] == '#' || (p[i] == '/' && i + 1 < n && p[i + 1] == '/')) {
            return IN_TEXT;
        } else if (p[i] == '/' && i + 1 < n && p[i + 1] == '*') {
            state = IN_COMMENT;
            i++;
        }
    }
    return state;
}

/* `@include "NAME"` at the start of a line (as libconfig's scanner matches it): NAME's
 * bounds, and where the rest of the line starts. */
static int source_directive(const char *p, size_t n, size_t *name, size_t *name_len, size_t *rest)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (n - i < 8 || memcmp(p + i, "@include", 8) != 0)
        return 0;
    i += 8;
    size_t gap = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i == gap || i >= n || p[i] != '"')
        return 0;
    const char *close = memchr(p + i + 1, '"', n - i - 1);
    if (!close)
        return 0;
    *name = i + 1;
    *name_len = (size_t)(close - (p + i + 1));
    *rest = (size_t)(close - p) + 1;
    return 1;
}

static byol_status source_file(struct source_build *b, const char *display, const char *text,
                               size_t len, int depth);

/* Read a whole regular file of at most max_file bytes; *text is NUL-terminated. Messages say
 * what is wrong without the file's name ("cannot open: ...", "not a regular file"). */
static byol_status source_slurp(const char *path, size_t max_file, char **text, size_t *len,
                                int *not_found)
{
    struct stat sb;
    int fd;
    byol_status st = byol_open_input(path, 0, "cannot open", &fd, &sb);
    *not_found = st == BYOL_ERR_NOT_FOUND;
    if (st != BYOL_OK)
        return st;
    if ((size_t)sb.st_size > max_file)
        st = byol_error(BYOL_ERR_FORMAT, "%lld bytes is too large for a config file (limit %zu)",
                        (long long)sb.st_size, max_file);
    char *t = st == BYOL_OK ? malloc((size_t)sb.st_size + 1) : NULL;
    if (st == BYOL_OK && !t)
        st = byol_error(BYOL_ERR_NOMEM, "out of memory");
    size_t got = 0;
    while (st == BYOL_OK && got < (size_t)sb.st_size) {
        ssize_t k = read(fd, t + got, (size_t)sb.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            st =
                byol_error(BYOL_ERR_IO, "read failed: %s", k < 0 ? strerror(errno) : "file shrank");
        else
            got += (size_t)k;
    }
    close(fd);
    if (st != BYOL_OK) {
        free(t);
        return st;
    }
    t[got] = '\0';
    *text = t;
    *len = got;
    return BYOL_OK;
}

/* An include's path: as written when absolute, else beside the including file. */
static byol_status source_resolve(const char *including, const char *name, size_t n, char *out,
                                  size_t size)
{
    char written[4096];
    if (n >= sizeof written)
        return BYOL_ERR_INVALID;
    memcpy(written, name, n);
    written[n] = '\0';
    return byol_config_relative(including, written, out, size) == 0 ? BYOL_OK : BYOL_ERR_INVALID;
}

static byol_status source_include(struct source_build *b, uint32_t from, uint32_t line,
                                  const char *name, size_t n, int depth)
{
    const char *including = b->s->files[from];
    char path[4096];
    if (depth + 1 > SOURCE_MAX_DEPTH)
        return byol_error(BYOL_ERR_FORMAT, "%s:%u: include file nesting too deep \"%.*s\"",
                          including, line, (int)n, name);
    if (n == 0 || source_resolve(including, name, n, path, sizeof path) != BYOL_OK)
        return byol_error(BYOL_ERR_INVALID, "%s:%u: bad include file name \"%.*s\"", including,
                          line, (int)n, name);
    char *text = NULL;
    size_t len = 0;
    int not_found;
    byol_status st = source_slurp(path, b->max_file, &text, &len, &not_found);
    if (st != BYOL_OK && not_found)
        return byol_error(st, "%s:%u: cannot open include file \"%.*s\"", including, line, (int)n,
                          name);
    if (st != BYOL_OK)
        return byol_error(st, "%s:%u: include file \"%.*s\": %s", including, line, (int)n, name,
                          byol_last_error());
    st = source_file(b, path, text, len, depth + 1);
    free(text);
    return st;
}

/* Register `display` as a file, then copy its lines, expanding its directives. */
static byol_status source_file(struct source_build *b, const char *display, const char *text,
                               size_t len, int depth)
{
    struct config_source *s = b->s;
    char **grown = realloc(s->files, (s->nfiles + 1) * sizeof *grown);
    if (!grown)
        return source_nomem(display);
    s->files = grown;
    if (!(s->files[s->nfiles] = strdup(display)))
        return source_nomem(display);
    uint32_t me = (uint32_t)s->nfiles++;
    enum source_state state = IN_TEXT;
    uint32_t line = 0;
    byol_status st = BYOL_OK;
    for (size_t at = 0; st == BYOL_OK && at < len;) {
        const char *p = text + at, *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t)(nl - p) : len - at, name, name_len, rest;
        line++;
        at += n + (nl != NULL);
        const char *nul = memchr(p, '\0', n);
        if (nul)
            return byol_error(BYOL_ERR_FORMAT, "%s:%u: syntax error (a NUL byte at column %zu)",
                              display, line, (size_t)(nul - p) + 1);
        if (state == IN_TEXT && source_directive(p, n, &name, &name_len, &rest)) {
            st = source_include(b, me, line, p + name, name_len, depth);
            if (st == BYOL_OK)
                st = source_line(b, display, p + rest, n - rest, me, line);
            state = source_scan(p + rest, n - rest, IN_TEXT);
        } else {
            st = source_line(b, display, p, n, me, line);
            state = source_scan(p, n, state);
        }
    }
    return st;
}

static int source_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '*' || c == '.';
}

static int source_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether the integer literal p[0..n) (digits, or hex digits after 0x; `neg` when a minus
 * precedes it) fits in 32 (*bits = 32) or 64 bits (*bits = 64), else 0. */
static int source_int_bits(const char *p, size_t n, int hex, int neg)
{
    while (n > 1 && *p == '0') /* leading zeros say nothing about the size */
        p++, n--;
    if (hex)
        return n <= 8 ? 32 : n <= 16 ? 64 : 0;
    static const char *const max32[2] = {"2147483647", "2147483648"};
    static const char *const max64[2] = {"9223372036854775807", "9223372036854775808"};
    const char *m32 = max32[neg], *m64 = max64[neg];
    if (n < strlen(m32) || (n == strlen(m32) && memcmp(p, m32, n) <= 0))
        return 32;
    if (n < strlen(m64) || (n == strlen(m64) && memcmp(p, m64, n) <= 0))
        return 64;
    return 0;
}

byol_status config_source_widen_ints(const char *text, size_t len, char **out, size_t *out_len,
                                     size_t *bad_at)
{
    /* Each literal grows by one byte at most, and a literal takes at least one byte. */
    char *o = malloc(2 * len + 1);
    if (!o)
        return byol_error(BYOL_ERR_NOMEM, "out of memory");
    size_t w = 0;
    enum source_state state = IN_TEXT;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (state != IN_TEXT) {
            size_t end = i + 1;
            enum source_state next = source_scan(text + i, 1, state);
            if (state == IN_STRING && c == '\\' && i + 1 < len)
                end = i + 2;
            else if (state == IN_COMMENT && c == '*' && i + 1 < len && text[i + 1] == '/')
                end = i + 2, next = IN_TEXT;
            memcpy(o + w, text + i, end - i);
            w += end - i;
            i = end;
            state = next;
            continue;
        }
        /* A literal starts with a digit that is not part of a name (names may hold digits,
         * and '-' after their first character: conv1, a-1). */
        int after_minus = i > 0 && text[i - 1] == '-';
        int in_name = i > 0 && (source_ident(text[i - 1]) ||
                                (after_minus && i > 1 && source_ident(text[i - 2])));
        int starts = c >= '0' && c <= '9' && !in_name;
        int neg = starts && after_minus;
        if (!starts) {
            if (c == '"')
                state = IN_STRING;
            else if (c == '#' || (c == '/' && i + 1 < len && text[i + 1] == '/')) {
                size_t end = i;
                while (end < len && text[end] != '\n')
                    end++;
                memcpy(o + w, text + i, end - i);
                w += end - i;
                i = end;
                continue;
            } else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
                state = IN_COMMENT;
                o[w++] = text[i++];
            }
            o[w++] = text[i++];
            continue;
        }
        int hex = c == '0' && i + 1 < len && (text[i + 1] == 'x' || text[i + 1] == 'X');
        size_t d0 = i + (hex ? 2 : 0), d = d0;
        while (d < len && (hex ? source_hex(text[d]) : text[d] >= '0' && text[d] <= '9'))
            d++;
        int is_float = !hex && d < len && (text[d] == '.' || text[d] == 'e' || text[d] == 'E');
        int suffixed = d < len && text[d] == 'L';
        int bits = is_float || d == d0 ? 32 : source_int_bits(text + d0, d - d0, hex, neg);
        if (bits == 0) {
            free(o);
            *bad_at = i;
            return byol_error(BYOL_ERR_INVALID, "%s%.*s does not fit a 64-bit integer",
                              neg ? "-" : "", (int)(d - i), text + i);
        }
        memcpy(o + w, text + i, d - i);
        w += d - i;
        if (bits == 64 && !suffixed)
            o[w++] = 'L';
        i = d;
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return BYOL_OK;
}

/* The expanded text with its integers widened (config_source_widen_ints), or the message
 * "FILE:LINE: N does not fit a 64-bit integer". */
static byol_status source_widen(struct config_source *s)
{
    char *wide;
    size_t len, at;
    byol_status st = config_source_widen_ints(s->text, s->len, &wide, &len, &at);
    if (st == BYOL_ERR_INVALID) {
        unsigned line = 1, file_line;
        for (size_t i = 0; i < at; i++)
            line += s->text[i] == '\n';
        const char *file = config_source_where(s, line, &file_line);
        return byol_error(st, "%s:%u: %s", file, file_line, byol_last_error());
    }
    if (st != BYOL_OK)
        return st;
    free(s->text);
    s->text = wide;
    s->len = len;
    return BYOL_OK;
}

byol_status config_source_read(const char *path, const char *text, size_t max_file,
                               struct config_source *out)
{
    memset(out, 0, sizeof *out);
    struct source_build b = {.s = out, .max_file = max_file, .max_total = 4 * max_file};
    char *own = NULL;
    size_t len = text ? strlen(text) : 0;
    byol_status st = BYOL_OK;
    if (!text) {
        int not_found;
        st = source_slurp(path, max_file, &own, &len, &not_found);
        if (st != BYOL_OK)
            st = byol_error(st, "%s: %s", path, byol_last_error());
        text = own;
    }
    if (st == BYOL_OK)
        st = source_file(&b, path, text, len, 0);
    if (st == BYOL_OK && !out->text)
        st = source_append(&b, path, "", 0);
    if (st == BYOL_OK)
        st = source_widen(out);
    free(own);
    if (st != BYOL_OK)
        config_source_free(out);
    return st;
}

void config_source_free(struct config_source *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i]);
    free(s->files);
    free(s->lines);
    free(s->text);
    memset(s, 0, sizeof *s);
}

const char *config_source_where(const struct config_source *s, unsigned line, unsigned *file_line)
{
    if (line == 0 || line > s->nlines) {
        *file_line = line;
        return s->nfiles ? s->files[0] : "";
    }
    *file_line = s->lines[line - 1].line;
    return s->files[s->lines[line - 1].file];
}
