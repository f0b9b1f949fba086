/* Config files on libconfig, and the typed accessors that the core and plugins read them with.
 * A struct byol_settings is a libconfig setting; every setting carries its dotted path. */
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/settings.h"

/* config_t comes first so that a setting's `config` pointer leads back to its byol_config. */
struct byol_config {
    config_t cfg;
    char *name; /* the file (or the name given to byol_config_parse), for messages */
    char *dir;  /* the folder of the top file: libconfig resolves @include against it */
};

static const config_setting_t *as_setting(const struct byol_settings *s)
{
    return (const config_setting_t *)s;
}

static const struct byol_settings *as_settings(const config_setting_t *s)
{
    return (const struct byol_settings *)s;
}

/* ---- paths and locations for messages ---------------------------------------------- */

/* libconfig names an included file as written in @include; messages show it under the
 * folder it was resolved against, so the user can open it. */
static void setting_file(const config_setting_t *s, char *buf, size_t n)
{
    const struct byol_config *c = (const struct byol_config *)s->config;
    const char *file = config_setting_source_file(s);
    if (!file)
        snprintf(buf, n, "%s", c->name);
    else if (file[0] == '/' || !c->dir || strcmp(file, c->name) == 0)
        snprintf(buf, n, "%s", file);
    else
        snprintf(buf, n, "%s/%s", c->dir, file);
}

/* Every failure that concerns a setting goes through here: "FILE:LINE: PATH: what". */
static byol_status setting_error(const config_setting_t *s, byol_status st, const char *fmt, ...)
    BYOL_PRINTF(3, 4);
static byol_status setting_error(const config_setting_t *s, byol_status st, const char *fmt, ...)
{
    char file[1024], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    setting_file(s, file, sizeof file);
    const char *path = byol_settings_path(as_settings(s));
    /* A setting that came from the command line has no line in any file. */
    if (config_setting_source_line(s) == 0)
        return byol_error(st, "%s: %s (from --set)%s%s", file, path, path[0] ? ": " : "", what);
    return byol_error(st, "%s:%u: %s%s%s", file, config_setting_source_line(s), path,
                      path[0] ? ": " : "", what);
}

byol_status byol_settings_error(const struct byol_settings *s, byol_status st, const char *fmt,
                                ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!s)
        return byol_error(st, "%s", what);
    return setting_error(as_setting(s), st, "%s", what);
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

/* Give every setting its dotted path ("model.encoder.name", "augment_fn[0].op") once, at
 * load time, so byol_settings_path can hand out a stable pointer. The strings live in the
 * settings' hooks and are freed by the config's destructor. */
static int setting_assign_paths(config_setting_t *s, const char *parent_path)
{
    int len = config_setting_length(s);
    for (int i = 0; i < len; i++) {
        config_setting_t *child = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(child);
        size_t n = strlen(parent_path) + (name ? strlen(name) : 24) + 4;
        char *path = malloc(n);
        if (!path)
            return -1;
        if (name)
            snprintf(path, n, "%s%s%s", parent_path, parent_path[0] ? "." : "", name);
        else
            snprintf(path, n, "%s[%d]", parent_path, i);
        /* Paths are assigned again after an override (byol_config_set): drop the old one. */
        free(config_setting_get_hook(child));
        config_setting_set_hook(child, path);
        if (config_setting_is_aggregate(child) && setting_assign_paths(child, path) != 0)
            return -1;
    }
    return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

static byol_status config_new(const char *name, struct byol_config **out)
{
    struct byol_config *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", name);
    }
    config_init(&c->cfg);
    config_set_destructor(&c->cfg, free);
    *out = c;
    return BYOL_OK;
}

/* libconfig says "cannot open include file" without the name; read it back from the line. */
static void include_name_at(const char *file, int line, char *buf, size_t n)
{
    buf[0] = '\0';
    FILE *f = fopen(file, "r");
    char text[1024];
    for (int i = 1; f && fgets(text, sizeof text, f); i++) {
        if (i < line)
            continue;
        char *open = strstr(text, "@include");
        char *q1 = open ? strchr(open, '"') : NULL;
        char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        if (q2)
            snprintf(buf, n, " \"%.*s\"", (int)(q2 - q1 - 1), q1 + 1);
        break;
    }
    if (f)
        fclose(f);
}

static byol_status config_parse_error(struct byol_config *c)
{
    const config_t *cfg = &c->cfg;
    const char *efile = config_error_file(cfg);
    char file[1024], inc[512] = "";
    if (!efile)
        snprintf(file, sizeof file, "%s", c->name);
    else if (efile[0] == '/' || !c->dir || strcmp(efile, c->name) == 0)
        snprintf(file, sizeof file, "%s", efile);
    else
        snprintf(file, sizeof file, "%s/%s", c->dir, efile);
    const char *text = config_error_text(cfg) ? config_error_text(cfg) : "parse error";
    byol_status st = BYOL_ERR_FORMAT;
    if (strstr(text, "include")) {
        include_name_at(file, config_error_line(cfg), inc, sizeof inc);
        st = BYOL_ERR_NOT_FOUND;
    }
    return byol_error(st, "%s:%d: %s%s", file, config_error_line(cfg), text, inc);
}

static byol_status config_finish(struct byol_config *c, int parsed, struct byol_config **out)
{
    byol_status st = BYOL_OK;
    if (!parsed)
        st = config_parse_error(c);
    else if (setting_assign_paths(config_root_setting(&c->cfg), "") != 0)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", c->name);
    if (st != BYOL_OK) {
        byol_config_free(c);
        return st;
    }
    *out = c;
    return BYOL_OK;
}

byol_status byol_config_load(const char *path, struct byol_config **out)
{
    if (!path || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_config_load: NULL argument");
    *out = NULL;
    /* Open it ourselves first: libconfig reports a missing file without the reason. */
    FILE *f = fopen(path, "r");
    if (!f)
        return byol_error(errno == ENOENT ? BYOL_ERR_NOT_FOUND : BYOL_ERR_IO, "%s: cannot open: %s",
                          path, strerror(errno));
    fclose(f);
    struct byol_config *c = NULL;
    byol_status st = config_new(path, &c);
    if (st != BYOL_OK)
        return st;
    const char *slash = strrchr(path, '/');
    c->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!c->dir) {
        byol_config_free(c);
        return byol_error(BYOL_ERR_NOMEM, "%s: out of memory", path);
    }
    config_set_include_dir(&c->cfg, c->dir);
    return config_finish(c, config_read_file(&c->cfg, path), out);
}

byol_status byol_config_parse(const char *text, const char *name, struct byol_config **out)
{
    if (!text || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_config_parse: NULL argument");
    *out = NULL;
    struct byol_config *c = NULL;
    byol_status st = config_new(name ? name : "<string>", &c);
    if (st != BYOL_OK)
        return st;
    return config_finish(c, config_read_string(&c->cfg, text), out);
}

void byol_config_free(struct byol_config *cfg)
{
    if (!cfg)
        return;
    config_destroy(&cfg->cfg);
    free(cfg->name);
    free(cfg->dir);
    free(cfg);
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
    return as_settings(config_setting_lookup((config_setting_t *)as_setting(s), name));
}

const char *byol_settings_path(const struct byol_settings *s)
{
    const char *path = s ? config_setting_get_hook(as_setting(s)) : NULL;
    return path ? path : "";
}

int byol_settings_is_list(const struct byol_settings *s)
{
    return s && (config_setting_is_list(as_setting(s)) || config_setting_is_array(as_setting(s)));
}

int byol_settings_length(const struct byol_settings *s)
{
    return s && config_setting_is_aggregate(as_setting(s)) ? config_setting_length(as_setting(s))
                                                          : 0;
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
    if (!m) {
        *out = def;
        return BYOL_OK;
    }
    int t = config_setting_type(m);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return setting_error(m, BYOL_ERR_INVALID, "expected an integer, got %s", type_name(m));
    *out = (int64_t)config_setting_get_int64(m);
    return BYOL_OK;
}

byol_status byol_settings_float(const struct byol_settings *s, const char *name, double def,
                                double *out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (!m) {
        *out = def;
        return BYOL_OK;
    }
    if (!config_setting_is_number(m))
        return setting_error(m, BYOL_ERR_INVALID, "expected a number, got %s", type_name(m));
    *out = config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                                                       : (double)config_setting_get_int64(m);
    return BYOL_OK;
}

byol_status byol_settings_bool(const struct byol_settings *s, const char *name, int def, int *out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (!m) {
        *out = def;
        return BYOL_OK;
    }
    if (config_setting_type(m) != CONFIG_TYPE_BOOL)
        return setting_error(m, BYOL_ERR_INVALID, "expected true or false, got %s", type_name(m));
    *out = config_setting_get_bool(m) ? 1 : 0;
    return BYOL_OK;
}

byol_status byol_settings_string(const struct byol_settings *s, const char *name, const char *def,
                                 const char **out)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    if (!m) {
        *out = def;
        return BYOL_OK;
    }
    if (config_setting_type(m) != CONFIG_TYPE_STRING)
        return setting_error(m, BYOL_ERR_INVALID, "expected a string, got %s", type_name(m));
    *out = config_setting_get_string(m);
    return BYOL_OK;
}

byol_status byol_settings_floats(const struct byol_settings *s, const char *name, double *out,
                                 int max, int *count)
{
    const config_setting_t *m;
    byol_status st = member(s, name, &m);
    if (st != BYOL_OK)
        return st;
    *count = 0;
    if (!m)
        return BYOL_OK;
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
    if (!m)
        return BYOL_OK;
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
        if (name_allowed(config_setting_name(child), allowed))
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
    case CONFIG_TYPE_FLOAT: return config_setting_set_float(d, config_setting_get_float(v)) ? 0 : -1;
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
    size_t n = strlen(text) + 16;
    char *src = malloc(2 * n);
    if (!src)
        return -1;
    snprintf(src, 2 * n, "v = %s;", text);
    config_init(tmp);
    if (!config_read_string(tmp, src)) {
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
    if (!parent || !leaf[0] || !config_setting_is_group(parent)) {
        st = byol_error(BYOL_ERR_INVALID, "--set %s: '%.*s' does not name a setting in a group",
                        assignment, (int)(eq - assignment), assignment);
    } else if (parse_value(eq + 1, &tmp) != 0) {
        st = byol_error(BYOL_ERR_INVALID, "--set %s: cannot read the value", assignment);
    } else {
        const config_setting_t *old = config_setting_get_member(parent, leaf);
        int as_float = old && config_setting_type(old) == CONFIG_TYPE_FLOAT;
        if (old)
            config_setting_remove(parent, leaf);
        if (copy_value(parent, leaf, config_lookup(&tmp, "v"), as_float) != 0 ||
            setting_assign_paths(config_root_setting(&cfg->cfg), "") != 0)
            st = byol_error(BYOL_ERR_INVALID, "--set %s: cannot store the value", assignment);
        config_destroy(&tmp);
    }
    free(path);
    return st;
}
