/* Config files on libconfig, and the typed accessors that the core and plugins read them with.
 * Every setting carries its dotted path and its config, where each resolved read is recorded. */
#include <errno.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byol/settings.h"
#include "config_source_internal.h"
#include "settings_internal.h"

/* A config is text that a person wrote: far larger is a wrong file, not a config. */
#define CONFIG_MAX_BYTES (16 << 20)

/* Groups a run always reads from. A file that leaves one out still gets an empty stand-in
 * group from byol_settings_child, so that the defaults read from it are recorded with their
 * paths; byol_settings_has and check_keys do not see stand-ins. */
static const char *const standin_groups[] = {"backend", "model", "model.encoder",
                                             "data",    "train", NULL};

/* The record of resolved reads, in first-read order. */
struct config_record {
    pthread_mutex_t lock; /* reads come from one thread in setup, but need not */
    struct settings_read *reads;
    size_t n, cap;
    int incomplete; /* an allocation failed: a digest of it would be wrong */
};

/* config_t comes first so that a setting's `config` pointer leads back to its byol_config. */
struct byol_config {
    config_t cfg;
    char *name;               /* the file (or the name given to byol_config_parse), for messages */
    struct config_source src; /* the text libconfig parsed, its includes expanded */
    config_t standins;        /* the stand-in groups, outside the file's tree */
    struct config_record *rec;
};

/* Each setting's hook: its config, its dotted path, and whether it is a stand-in. */
struct setting_info {
    struct byol_config *owner;
    int standin;
    char path[];
};

static const config_setting_t *as_setting(const struct byol_settings *s)
{
    return (const config_setting_t *)s;
}

static const struct byol_settings *as_settings(const config_setting_t *s)
{
    return (const struct byol_settings *)s;
}

static const struct setting_info *setting_info(const config_setting_t *s)
{
    return s ? config_setting_get_hook(s) : NULL;
}

static int setting_is_standin(const config_setting_t *s)
{
    const struct setting_info *in = setting_info(s);
    return in && in->standin;
}

/* ---- paths and locations for messages ---------------------------------------------- */

/* The file and line a setting was written on: libconfig's line is one of the expanded text
 * (config_source_internal.h), mapped back to the top file or the include it came from. Line 0:
 * not from any file (--set, a stand-in), reported under the config's name. */
static const char *setting_where(const config_setting_t *s, unsigned *line)
{
    const struct setting_info *in = setting_info(s);
    const struct byol_config *c = in ? in->owner : (const struct byol_config *)s->config;
    unsigned at = config_setting_source_line(s);
    if (at == 0 || !c->src.nfiles) {
        *line = 0;
        return c->name;
    }
    return config_source_where(&c->src, at, line);
}

/* Where a setting's messages point: "FILE:LINE: PATH", "FILE: PATH (not set)" for a stand-in,
 * "FILE: PATH (from --set)" for a setting from the command line (no line in any file). */
static void setting_about(const config_setting_t *s, char *buf, size_t n)
{
    unsigned line;
    const char *file = setting_where(s, &line);
    const char *path = byol_settings_path(as_settings(s));
    if (setting_is_standin(s))
        snprintf(buf, n, "%s: %s (not set)", file, path);
    else if (line == 0)
        snprintf(buf, n, "%s: %s (from --set)", file, path);
    else
        snprintf(buf, n, "%s:%u%s%s", file, line, path[0] ? ": " : "", path);
}

static byol_status setting_verror(const config_setting_t *s, byol_status st, const char *fmt,
                                  va_list ap)
{
    char about[1536];
    if (!s)
        return byol_verror(st, fmt, ap);
    setting_about(s, about, sizeof about);
    return byol_verror_about(st, about, fmt, ap);
}

/* Every failure that concerns a setting goes through here: "FILE:LINE: PATH: what". */
static byol_status setting_error(const config_setting_t *s, byol_status st, const char *fmt, ...)
    BYOL_PRINTF(3, 4);
static byol_status setting_error(const config_setting_t *s, byol_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    setting_verror(s, st, fmt, ap);
    va_end(ap);
    return st;
}

byol_status byol_settings_error(const struct byol_settings *s, byol_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    setting_verror(s ? as_setting(s) : NULL, st, fmt, ap);
    va_end(ap);
    return st;
}

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    }
    return "an unknown type";
}

/* Give every setting its dotted path ("model.encoder.name", "augment_fn[0].op") and its
 * config once, at load time, so byol_settings_path can hand out a stable pointer. The hooks
 * are freed by the config's destructor. */
static struct setting_info *setting_info_new(struct byol_config *owner, int standin,
                                             const char *parent_path, const char *name, int i)
{
    size_t n = strlen(parent_path) + (name ? strlen(name) : 24) + 4;
    struct setting_info *in = malloc(sizeof *in + n);
    if (!in)
        return NULL;
    in->owner = owner;
    in->standin = standin;
    if (!name)
        snprintf(in->path, n, "%s[%d]", parent_path, i);
    else
        snprintf(in->path, n, "%s%s%s", parent_path, parent_path[0] ? "." : "", name);
    return in;
}

static int setting_assign_paths(config_setting_t *s, const char *parent_path,
                                struct byol_config *owner, int standin)
{
    int len = config_setting_length(s);
    for (int i = 0; i < len; i++) {
        config_setting_t *child = config_setting_get_elem(s, (unsigned)i);
        struct setting_info *in =
            setting_info_new(owner, standin, parent_path, config_setting_name(child), i);
        if (!in)
            return -1;
        /* Paths are assigned again after an override (byol_config_set): drop the old one. */
        free(config_setting_get_hook(child));
        config_setting_set_hook(child, in);
        if (config_setting_is_aggregate(child) &&
            setting_assign_paths(child, in->path, owner, standin) != 0)
            return -1;
    }
    return 0;
}

/* The root's own hook ("" path), then every setting's. */
static int config_assign_paths(struct byol_config *c)
{
    config_setting_t *root = config_root_setting(&c->cfg);
    if (!config_setting_get_hook(root)) {
        struct setting_info *in = setting_info_new(c, 0, "", "", 0);
        if (!in)
            return -1;
        config_setting_set_hook(root, in);
    }
    return setting_assign_paths(root, "", c, 0);
}

/* The empty stand-in groups (standin_groups), in a config of their own. */
static int config_make_standins(struct byol_config *c)
{
    for (const char *const *g = standin_groups; *g; g++) {
        const char *dot = strrchr(*g, '.');
        config_setting_t *parent = config_root_setting(&c->standins);
        if (dot) {
            char head[64];
            snprintf(head, sizeof head, "%.*s", (int)(dot - *g), *g);
            parent = config_lookup(&c->standins, head);
        }
        if (!parent || !config_setting_add(parent, dot ? dot + 1 : *g, CONFIG_TYPE_GROUP))
            return -1;
    }
    return setting_assign_paths(config_root_setting(&c->standins), "", c, 1);
}

/* The stand-in for `name` under group `g`, when that path is one of standin_groups. */
static const config_setting_t *standin_child(const config_setting_t *g, const char *name)
{
    const struct setting_info *in = setting_info(g);
    if (!in || !config_setting_is_group(g))
        return NULL;
    char path[256];
    int n = snprintf(path, sizeof path, "%s%s%s", in->path, in->path[0] ? "." : "", name);
    if (n < 0 || (size_t)n >= sizeof path)
        return NULL;
    for (const char *const *p = standin_groups; *p; p++)
        if (strcmp(*p, path) == 0)
            return config_lookup(&in->owner->standins, path);
    return NULL;
}

/* ---- the record of resolved reads ------------------------------------------------------ */

static void settings_read_clear(struct settings_read *r)
{
    free(r->path);
    free(r->value);
    free(r->also);
}

static void record_free(struct config_record *rec)
{
    if (!rec)
        return;
    for (size_t i = 0; i < rec->n; i++)
        settings_read_clear(&rec->reads[i]);
    free(rec->reads);
    pthread_mutex_destroy(&rec->lock);
    free(rec);
}

static struct settings_read *record_find(struct config_record *rec, const char *path)
{
    for (size_t i = 0; i < rec->n; i++)
        if (strcmp(rec->reads[i].path, path) == 0)
            return &rec->reads[i];
    return NULL;
}

/* A later read of a recorded path: the same value, or a note of the other one. */
static void record_again(struct config_record *rec, struct settings_read *r, char *value)
{
    int same = (!r->value && !value) || (r->value && value && strcmp(r->value, value) == 0);
    if (!same && !r->also && !(r->also = strdup(value ? value : "(not set)")))
        rec->incomplete = 1;
}

static void record_add(struct config_record *rec, const char *path, char *value,
                       enum settings_origin origin)
{
    if (rec->n == rec->cap) {
        size_t cap = rec->cap ? 2 * rec->cap : 64;
        struct settings_read *g = realloc(rec->reads, cap * sizeof *g);
        if (!g) {
            rec->incomplete = 1;
            free(value);
            return;
        }
        rec->reads = g;
        rec->cap = cap;
    }
    struct settings_read r = {.path = strdup(path), .value = value, .origin = origin};
    if (!r.path) {
        rec->incomplete = 1;
        free(value);
        return;
    }
    rec->reads[rec->n++] = r;
}

/* Record that `path` resolved to `value` (libconfig text, taken over; NULL: not set and no
 * default), from setting `m` or, when m is NULL, from the reader's default. Best effort: a
 * failed allocation marks the record incomplete and never fails the read itself. */
static void record_read(const config_setting_t *where, const char *path, const config_setting_t *m,
                        char *value, int alloc_failed)
{
    const struct setting_info *in = setting_info(where);
    struct config_record *rec = in ? in->owner->rec : NULL;
    if (!rec) {
        free(value);
        return;
    }
    enum settings_origin origin = SETTINGS_FROM_FILE;
    if (!m)
        origin = value ? SETTINGS_FROM_DEFAULT : SETTINGS_NOT_SET;
    else if (config_setting_source_line(m) == 0)
        origin = SETTINGS_FROM_SET;
    pthread_mutex_lock(&rec->lock);
    if (alloc_failed)
        rec->incomplete = 1;
    struct settings_read *r = record_find(rec, path);
    if (r)
        record_again(rec, r, value);
    else
        record_add(rec, path, value, origin);
    if (r)
        free(value);
    pthread_mutex_unlock(&rec->lock);
}

/* The read of member `name` of group `s` (m: the member, NULL when not set). */
static void record_member(const struct byol_settings *s, const char *name,
                          const config_setting_t *m, char *value, int alloc_failed)
{
    if (!s) {
        free(value); /* a NULL group: no config to record in */
        return;
    }
    const char *parent = byol_settings_path(s);
    if (m) {
        record_read(as_setting(s), byol_settings_path(as_settings(m)), m, value, alloc_failed);
        return;
    }
    size_t n = strlen(parent) + strlen(name) + 2;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s%s%s", parent, parent[0] ? "." : "", name);
    record_read(as_setting(s), path ? path : name, NULL, value, alloc_failed || !path);
    free(path);
}

/* Forget what was recorded at or under PARENT.LEAF, a setting byol_config_set replaces. */
static void record_forget(struct config_record *rec, const char *parent, const char *leaf)
{
    size_t plen = strlen(parent), len = plen + (plen ? 1 : 0) + strlen(leaf), kept = 0;
    pthread_mutex_lock(&rec->lock);
    for (size_t i = 0; i < rec->n; i++) {
        const char *p = rec->reads[i].path;
        int under = strncmp(p, parent, plen) == 0 && (!plen || p[plen] == '.') &&
                    strncmp(p + plen + (plen ? 1 : 0), leaf, strlen(leaf)) == 0 &&
                    (!p[len] || p[len] == '.' || p[len] == '[');
        if (under)
            settings_read_clear(&rec->reads[i]);
        else
            rec->reads[kept++] = rec->reads[i];
    }
    rec->n = kept;
    pthread_mutex_unlock(&rec->lock);
}

byol_status settings_reads_copy(const struct byol_config *cfg, struct settings_read **out,
                                size_t *n)
{
    struct config_record *rec = cfg->rec;
    byol_status st = BYOL_OK;
    pthread_mutex_lock(&rec->lock);
    struct settings_read *r = calloc(rec->n ? rec->n : 1, sizeof *r);
    if (!r || rec->incomplete)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory recording the settings", cfg->name);
    for (size_t i = 0; st == BYOL_OK && i < rec->n; i++) {
        const struct settings_read *s = &rec->reads[i];
        r[i].origin = s->origin;
        r[i].path = strdup(s->path);
        r[i].value = s->value ? strdup(s->value) : NULL;
        r[i].also = s->also ? strdup(s->also) : NULL;
        if (!r[i].path || (s->value && !r[i].value) || (s->also && !r[i].also))
            st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", cfg->name);
    }
    size_t count = rec->n;
    pthread_mutex_unlock(&rec->lock);
    if (st != BYOL_OK) {
        settings_reads_free(r, r ? count : 0);
        return st;
    }
    *out = r;
    *n = count;
    return BYOL_OK;
}

void settings_reads_free(struct settings_read *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        settings_read_clear(&r[i]);
    free(r);
}

/* ---- values as libconfig text, for the record ------------------------------------------ */

static char *text_int(int64_t v)
{
    char buf[32];
    /* libconfig reads integers beyond 32 bits only with the L suffix. */
    snprintf(buf, sizeof buf, "%lld%s", (long long)v, v < INT32_MIN || v > INT32_MAX ? "L" : "");
    return strdup(buf);
}

/* The shortest text that reads back as the same double, always spelled as a float. */
static void format_float(double v, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn")) /* "3" would read back as an integer; n: nan, inf */
        strncat(buf, ".0", n - strlen(buf) - 1);
}

static char *text_float(double v)
{
    char buf[40];
    format_float(v, buf, sizeof buf);
    return strdup(buf);
}

static char *text_bool(int v)
{
    return strdup(v ? "true" : "false");
}

/* A quoted libconfig string, escaped so that it stays on one line. */
static char *text_string(const char *v)
{
    if (!v)
        return NULL;
    char *out = malloc(4 * strlen(v) + 3), *q = out;
    if (!out)
        return NULL;
    *q++ = '"';
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            q += sprintf(q, "\\%c", *p);
        else if (*p == '\n')
            q += sprintf(q, "\\n");
        else if (*p == '\t')
            q += sprintf(q, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            q += sprintf(q, "\\x%02x", *p);
        else
            *q++ = (char)*p;
    }
    *q++ = '"';
    *q = '\0';
    return out;
}

/* "[a, b, ...]" from n items already in text (NULL items: a failed allocation). */
static char *text_array(char **items, int n)
{
    size_t len = 3;
    for (int i = 0; i < n; i++)
        len += (items[i] ? strlen(items[i]) : 0) + 2;
    char *out = malloc(len), *q = out;
    for (int i = 0; out && i < n; i++) {
        if (!items[i]) {
            free(out);
            out = NULL;
            break;
        }
        q += sprintf(q, "%s%s", i ? ", " : "[", items[i]);
    }
    if (out)
        strcpy(n ? q : out, n ? "]" : "[]");
    for (int i = 0; i < n; i++)
        free(items[i]);
    return out;
}

/* ---- loading -------------------------------------------------------------------------- */

static struct config_record *record_new(void)
{
    struct config_record *rec = calloc(1, sizeof *rec);
    if (rec && pthread_mutex_init(&rec->lock, NULL) != 0) {
        free(rec);
        rec = NULL;
    }
    return rec;
}

static byol_status config_new(const char *name, struct byol_config **out)
{
    struct byol_config *c = calloc(1, sizeof *c);
    if (!c)
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name);
    config_init(&c->cfg);
    config_set_destructor(&c->cfg, free);
    config_init(&c->standins);
    config_set_destructor(&c->standins, free);
    c->name = strdup(name);
    c->rec = record_new();
    if (!c->name || !c->rec || config_make_standins(c) != 0) {
        byol_config_free(c);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name);
    }
    *out = c;
    return BYOL_OK;
}

static byol_status config_parse_error(struct byol_config *c)
{
    const config_t *cfg = &c->cfg;
    unsigned line = 0;
    const char *file = c->src.nfiles
                           ? config_source_where(&c->src, (unsigned)config_error_line(cfg), &line)
                           : c->name;
    const char *text = config_error_text(cfg) ? config_error_text(cfg) : "parse error";
    return byol_error(BYOL_ERR_FORMAT, "%s:%u: %s", file, line, text);
}

static byol_status config_finish(struct byol_config *c, int parsed, struct byol_config **out)
{
    byol_status st = BYOL_OK;
    if (!parsed)
        st = config_parse_error(c);
    else if (config_assign_paths(c) != 0)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", c->name);
    if (st != BYOL_OK) {
        byol_config_free(c);
        return st;
    }
    *out = c;
    return BYOL_OK;
}

/* Our own reader expands the includes (config_source_internal.h); libconfig then parses the
 * text from memory, in time linear in its size. */
static byol_status config_load_text(const char *name, const char *text, struct byol_config **out)
{
    struct byol_config *c = NULL;
    byol_status st = config_new(name, &c);
    if (st != BYOL_OK)
        return st;
    size_t max = text && strlen(text) > CONFIG_MAX_BYTES ? strlen(text) : CONFIG_MAX_BYTES;
    st = config_source_read(name, text, max, &c->src);
    if (st != BYOL_OK) {
        byol_config_free(c);
        return st;
    }
    return config_finish(c, config_read_string(&c->cfg, c->src.text), out);
}

byol_status byol_config_load(const char *path, struct byol_config **out)
{
    if (!path || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_config_load: NULL argument");
    *out = NULL;
    return config_load_text(path, NULL, out);
}

byol_status byol_config_parse(const char *text, const char *name, struct byol_config **out)
{
    if (!text || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_config_parse: NULL argument");
    *out = NULL;
    return config_load_text(name ? name : "<string>", text, out);
}

void byol_config_free(struct byol_config *cfg)
{
    if (!cfg)
        return;
    config_destroy(&cfg->cfg);
    config_destroy(&cfg->standins);
    record_free(cfg->rec);
    free(cfg->name);
    config_source_free(&cfg->src);
    free(cfg);
}

const char *byol_config_file(const struct byol_config *cfg, size_t i)
{
    return cfg && i < cfg->src.nfiles ? cfg->src.files[i] : NULL;
}

const struct byol_settings *byol_config_root(struct byol_config *cfg)
{
    return cfg ? as_settings(config_root_setting(&cfg->cfg)) : NULL;
}

const struct byol_settings *byol_settings_child(const struct byol_settings *s, const char *name)
{
    if (!s || !name)
        return NULL;
    if (!name[0])
        return s;
    /* config_setting_lookup walks dotted paths; it only reads, despite its signature. */
    const config_setting_t *c = config_setting_lookup((config_setting_t *)as_setting(s), name);
    return as_settings(c ? c : standin_child(as_setting(s), name));
}

const char *byol_settings_path(const struct byol_settings *s)
{
    const struct setting_info *in = s ? setting_info(as_setting(s)) : NULL;
    return in ? in->path : "";
}

const struct byol_config *byol_settings_config(const struct byol_settings *s)
{
    const struct setting_info *in = s ? setting_info(as_setting(s)) : NULL;
    return in ? in->owner : NULL;
}

int byol_settings_is_list(const struct byol_settings *s)
{
    return s && (config_setting_is_list(as_setting(s)) || config_setting_is_array(as_setting(s)));
}

int byol_settings_length(const struct byol_settings *s)
{
    /* A stand-in's members are stand-ins: none is set. */
    if (!s || !config_setting_is_aggregate(as_setting(s)) || setting_is_standin(as_setting(s)))
        return 0;
    int n = config_setting_length(as_setting(s));
    /* An empty list leaves no element reads behind, yet `augment_fn2 = ()` (the identity)
     * differs from leaving augment_fn2 out (a copy of augment_fn): record it. */
    if (n == 0 && byol_settings_is_list(s))
        record_read(as_setting(s), byol_settings_path(s), as_setting(s),
                    strdup(config_setting_is_array(as_setting(s)) ? "[]" : "()"), 0);
    return n;
}

const struct byol_settings *byol_settings_elem(const struct byol_settings *s, int i)
{
    if (i < 0 || i >= byol_settings_length(s))
        return NULL;
    return as_settings(config_setting_get_elem(as_setting(s), (unsigned)i));
}

/* ---- accessors ------------------------------------------------------------------------ */

/* The child `name` of group `s`, or NULL when it is not set. Fails when `s` is no group. */
static byol_status member(const struct byol_settings *s, const char *name,
                          const config_setting_t **out)
{
    *out = NULL;
    if (!name)
        return byol_error(BYOL_ERR_INVALID, "settings: NULL setting name");
    if (!s)
        return BYOL_OK;
    const config_setting_t *g = as_setting(s);
    if (!config_setting_is_group(g))
        return setting_error(g, BYOL_ERR_INVALID, "expected a group, got %s", type_name(g));
    *out = config_setting_get_member(g, name);
    if (setting_is_standin(*out)) /* model.encoder in a stand-in model: not set either */
        *out = NULL;
    return BYOL_OK;
}

int byol_settings_has(const struct byol_settings *s, const char *name)
{
    const config_setting_t *m;
    return member(s, name, &m) == BYOL_OK && m != NULL;
}

byol_status byol_settings_int(const struct byol_settings *s, const char *name, int64_t def,
                              int64_t *out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (m) {
        int t = config_setting_type(m);
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            return setting_error(m, BYOL_ERR_INVALID, "expected an integer, got %s", type_name(m));
    }
    *out = m ? (int64_t)config_setting_get_int64(m) : def;
    char *text = text_int(*out);
    record_member(s, name, m, text, !text);
    return BYOL_OK;
}

byol_status byol_settings_float(const struct byol_settings *s, const char *name, double def,
                                double *out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (m && !config_setting_is_number(m))
        return setting_error(m, BYOL_ERR_INVALID, "expected a number, got %s", type_name(m));
    *out = !m                                            ? def
           : config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                                                         : (double)config_setting_get_int64(m);
    char *text = text_float(*out);
    record_member(s, name, m, text, !text);
    return BYOL_OK;
}

byol_status byol_settings_bool(const struct byol_settings *s, const char *name, int def, int *out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (m && config_setting_type(m) != CONFIG_TYPE_BOOL)
        return setting_error(m, BYOL_ERR_INVALID, "expected true or false, got %s", type_name(m));
    *out = m ? (config_setting_get_bool(m) ? 1 : 0) : def;
    char *text = text_bool(*out);
    record_member(s, name, m, text, !text);
    return BYOL_OK;
}

byol_status byol_settings_string(const struct byol_settings *s, const char *name, const char *def,
                                 const char **out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (m && config_setting_type(m) != CONFIG_TYPE_STRING)
        return setting_error(m, BYOL_ERR_INVALID, "expected a string, got %s", type_name(m));
    *out = m ? config_setting_get_string(m) : def;
    char *text = text_string(*out);
    record_member(s, name, m, text, *out && !text);
    return BYOL_OK;
}

/* A list read by byol_settings_floats (nums) or byol_settings_strings (strs), as "[...]". */
static void record_list(const struct byol_settings *s, const char *name, const config_setting_t *m,
                        int n, const double *nums, const char *const *strs)
{
    char **items = calloc(n > 0 ? (size_t)n : 1, sizeof *items);
    for (int i = 0; items && i < n; i++)
        items[i] = nums ? text_float(nums[i]) : text_string(strs[i]);
    char *text = items ? text_array(items, n) : NULL;
    free(items);
    record_member(s, name, m, text, !text);
}

byol_status byol_settings_floats(const struct byol_settings *s, const char *name, double *out,
                                 int max, int *count)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    *count = 0;
    if (!m) {
        record_member(s, name, NULL, NULL, 0); /* the reader's own fallback is not known */
        return BYOL_OK;
    }
    if (!config_setting_is_array(m) && !config_setting_is_list(m))
        return setting_error(m, BYOL_ERR_INVALID, "expected a list of numbers, got %s",
                             type_name(m));
    int n = config_setting_length(m);
    if (n > max)
        return setting_error(m, BYOL_ERR_INVALID, "expected at most %d numbers, got %d", max, n);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        if (!config_setting_is_number(e))
            return setting_error(e, BYOL_ERR_INVALID, "expected a number, got %s", type_name(e));
        out[i] = config_setting_type(e) == CONFIG_TYPE_FLOAT ? config_setting_get_float(e)
                                                             : (double)config_setting_get_int64(e);
    }
    *count = n;
    record_list(s, name, m, n, out, NULL);
    return BYOL_OK;
}

byol_status byol_settings_strings(const struct byol_settings *s, const char *name, const char **out,
                                  int max, int *count)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    *count = 0;
    if (!m) {
        record_member(s, name, NULL, NULL, 0);
        return BYOL_OK;
    }
    if (!config_setting_is_array(m) && !config_setting_is_list(m))
        return setting_error(m, BYOL_ERR_INVALID, "expected a list of strings, got %s",
                             type_name(m));
    int n = config_setting_length(m);
    if (n > max)
        return setting_error(m, BYOL_ERR_INVALID, "expected at most %d strings, got %d", max, n);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return setting_error(e, BYOL_ERR_INVALID, "expected a string, got %s", type_name(e));
        out[i] = config_setting_get_string(e);
    }
    *count = n;
    record_list(s, name, m, n, NULL, out);
    return BYOL_OK;
}

static int name_allowed(const char *name, const char *const *allowed)
{
    for (const char *const *a = allowed; a && *a; a++)
        if (strcmp(*a, name) == 0)
            return 1;
    return 0;
}

byol_status byol_settings_check_keys(const struct byol_settings *s, const char *const *allowed)
{
    if (!s)
        return BYOL_OK;
    const config_setting_t *g = as_setting(s);
    if (!config_setting_is_group(g))
        return setting_error(g, BYOL_ERR_INVALID, "expected a group, got %s", type_name(g));
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *child = config_setting_get_elem(g, (unsigned)i);
        if (setting_is_standin(child) || name_allowed(config_setting_name(child), allowed))
            continue;
        char known[512] = "";
        size_t used = 0;
        for (const char *const *a = allowed; a && *a && used < sizeof known; a++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                     a == allowed ? "" : ", ", *a);
        return setting_error(child, BYOL_ERR_INVALID, "unknown setting (known: %s)",
                             allowed && allowed[0] ? known : "none");
    }
    return BYOL_OK;
}

/* ---- overrides (--set key.path=value) --------------------------------------------------- */

/* Copy a parsed value (scalar or aggregate) into a new child of `parent`. `as_float` turns an
 * integer into a float, so "--set train.lr=1" keeps lr a float. */
static int copy_value(config_setting_t *parent, const char *name, const config_setting_t *v,
                      int as_float)
{
    int type = config_setting_type(v);
    if (as_float && (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64))
        type = CONFIG_TYPE_FLOAT;
    config_setting_t *d = config_setting_add(parent, name, type);
    if (!d)
        return -1;
    switch (config_setting_type(v)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        if (type == CONFIG_TYPE_FLOAT)
            return config_setting_set_float(d, (double)config_setting_get_int64(v)) ? 0 : -1;
        return config_setting_set_int64(d, config_setting_get_int64(v)) ? 0 : -1;
    case CONFIG_TYPE_FLOAT:
        return config_setting_set_float(d, config_setting_get_float(v)) ? 0 : -1;
    case CONFIG_TYPE_BOOL: return config_setting_set_bool(d, config_setting_get_bool(v)) ? 0 : -1;
    case CONFIG_TYPE_STRING:
        return config_setting_set_string(d, config_setting_get_string(v)) ? 0 : -1;
    default:
        for (int i = 0; i < config_setting_length(v); i++) {
            const config_setting_t *e = config_setting_get_elem(v, (unsigned)i);
            if (copy_value(d, config_setting_name(e), e, 0) != 0)
                return -1;
        }
        return 0;
    }
}

/* The value text as libconfig would read it after "v = ", or failing that as a bare string. */
static int parse_value(const char *text, config_t *tmp)
{
    size_t n = strlen(text) + 16, wide_len, bad_at;
    char *src = malloc(2 * n), *wide = NULL;
    if (!src)
        return -1;
    snprintf(src, 2 * n, "v = %s;", text);
    /* Integers beyond 32 bits as libconfig must see them; one beyond 64 bits is an error. */
    byol_status st = config_source_widen_ints(src, strlen(src), &wide, &wide_len, &bad_at);
    if (st != BYOL_OK) {
        free(src);
        return st == BYOL_ERR_INVALID ? -2 : -1;
    }
    config_init(tmp);
    int parsed = config_read_string(tmp, wide);
    free(wide);
    if (!parsed) {
        config_destroy(tmp);
        char *q = src + snprintf(src, 2 * n, "v = \"");
        for (const char *p = text; *p; p++) {
            if (*p == '"' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        strcpy(q, "\";");
        config_init(tmp);
        if (!config_read_string(tmp, src)) {
            config_destroy(tmp);
            free(src);
            return -1;
        }
    }
    free(src);
    return 0;
}

/* The group that holds the last component of `path`, creating groups on the way. */
static config_setting_t *parent_group(config_setting_t *s, char *path, char **leaf)
{
    char *dot;
    while ((dot = strchr(path, '.'))) {
        *dot = '\0';
        config_setting_t *next = config_setting_get_member(s, path);
        if (!next)
            next = config_setting_add(s, path, CONFIG_TYPE_GROUP);
        if (!next || config_setting_type(next) != CONFIG_TYPE_GROUP)
            return NULL;
        s = next;
        path = dot + 1;
    }
    *leaf = path;
    return s;
}

byol_status byol_config_set(struct byol_config *cfg, const char *assignment)
{
    if (!cfg || !assignment)
        return byol_error(BYOL_ERR_INVALID, "byol_config_set: NULL argument");
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return byol_error(BYOL_ERR_INVALID, "--set %s: expected KEY.PATH=VALUE", assignment);
    char *path = strndup(assignment, (size_t)(eq - assignment));
    if (!path)
        return byol_error(BYOL_ERR_NOMEM, "--set: out of memory");
    char *leaf = NULL;
    config_setting_t *parent = parent_group(config_root_setting(&cfg->cfg), path, &leaf);
    byol_status st = BYOL_OK;
    config_t tmp;
    int bad;
    if (!parent || !leaf[0] || !config_setting_is_group(parent)) {
        st = byol_error(BYOL_ERR_INVALID, "--set %s: '%.*s' does not name a setting in a group",
                        assignment, (int)(eq - assignment), assignment);
    } else if ((bad = parse_value(eq + 1, &tmp)) != 0) {
        st = bad == -2
                 ? byol_error(BYOL_ERR_INVALID, "--set %s: %s", assignment, byol_last_error())
                 : byol_error(BYOL_ERR_INVALID, "--set %s: cannot read the value", assignment);
    } else {
        const config_setting_t *old = config_setting_get_member(parent, leaf);
        int as_float = old && config_setting_type(old) == CONFIG_TYPE_FLOAT;
        if (old)
            config_setting_remove(parent, leaf);
        record_forget(cfg->rec, byol_settings_path(as_settings(parent)), leaf);
        if (copy_value(parent, leaf, config_lookup(&tmp, "v"), as_float) != 0 ||
            config_assign_paths(cfg) != 0)
            st = byol_error(BYOL_ERR_INVALID, "--set %s: cannot store the value", assignment);
        config_destroy(&tmp);
    }
    free(path);
    return st;
}
