/* What a config resolved to: the record of settings.c printed back as libconfig text (for
 * `byolctl check`), and the digest of the settings that decide the trained state, which a
 * checkpoint carries so that --resume can refuse one written by another config. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/settings.h"
#include "sbuf_internal.h"
#include "settings_internal.h"

/* Settings that say how, where or how fast a run goes, not what it trains: they stay out of
 * the digest, so a run may resume with another checkpoint folder, more threads, another
 * backend build, other plugin folders, or other evaluation and metrics settings. */
static const char *const run_only_keys[] = {
    "plugin_path",
    "plugins",
    "backend.name",
    "backend.threads",
    "train.checkpoint_dir",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.on_checkpoint_error",
    "train.on_nonfinite",
    /* The collapse monitor watches and may stop a run; it changes nothing that is trained. */
    "train.collapse_threshold",
    "train.collapse_steps",
    "train.stop_on_collapse",
    /* Extending a run with --resume is allowed where no schedule depends on the total; the
     * trainer checks that itself (checkpoint metadata "train_steps"). */
    "train.steps",
    NULL,
};
/* Whole groups that are run-only (evaluation, metrics files). */
static const char *const run_only_groups[] = {"eval", "metrics", NULL};

#define DIGEST_SHOWN 3      /* differing keys a compare message names */
#define DIGEST_VALUE_MAX 40 /* characters of a value it shows */

/* ---- building the text (core/runtime/sbuf_internal.h) ---------------------------------------- */

static void sb_indent(struct byol_sbuf *b, int indent)
{
    for (int i = 0; i < indent; i++)
        byol_sbuf_put(b, " ", 1);
}

/* The text, or NULL after a failed allocation (then a NOMEM error is set). */
static char *sb_finish(struct byol_sbuf *b, const char *what)
{
    if (!b->oom && !b->s)
        byol_sbuf_put(b, "", 0);
    if (b->oom) {
        free(b->s);
        byol_error(BYOL_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    return b->s;
}

/* ---- the resolved text: the record as nested libconfig ---------------------------------- */

/* A node of the path tree: a member (name) or a list element (name NULL, index). */
struct rnode {
    char *name;
    int index;
    const struct settings_read *leaf;
    struct rnode *kids;
    size_t n, cap;
};

static void rnode_free(struct rnode *t)
{
    for (size_t i = 0; i < t->n; i++)
        rnode_free(&t->kids[i]);
    free(t->kids);
    free(t->name);
}

/* The child of `t` for one path component, added when new; NULL when out of memory. */
static struct rnode *rnode_child(struct rnode *t, const char *name, size_t len, int index)
{
    for (size_t i = 0; i < t->n; i++) {
        struct rnode *k = &t->kids[i];
        if (name ? k->name && strlen(k->name) == len && !strncmp(k->name, name, len)
                 : !k->name && k->index == index)
            return k;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct rnode *g = realloc(t->kids, cap * sizeof *g);
        if (!g)
            return NULL;
        t->kids = g;
        t->cap = cap;
    }
    struct rnode *k = &t->kids[t->n];
    *k = (struct rnode){.index = index};
    if (name && !(k->name = strndup(name, len)))
        return NULL;
    t->n++;
    return k;
}

/* Walk "a.b[2].c" down from the root, adding nodes; the last one gets the read. */
static int rnode_insert(struct rnode *root, const struct settings_read *r)
{
    struct rnode *t = root;
    for (const char *p = r->path; t && *p;) {
        if (*p == '[') {
            char *end;
            long index = strtol(p + 1, &end, 10);
            t = *end == ']' ? rnode_child(t, NULL, 0, (int)index) : NULL;
            p = *end == ']' ? end + 1 : end;
        } else {
            size_t len = strcspn(p, ".[");
            t = rnode_child(t, p, len, 0);
            p += len;
        }
        if (*p == '.')
            p++;
    }
    if (!t)
        return -1;
    if (!t->leaf)
        t->leaf = r;
    return 0;
}

static int rnode_is_list(const struct rnode *t)
{
    return t->n > 0 && !t->kids[0].name;
}

static int rnode_cmp_index(const void *a, const void *b)
{
    const struct rnode *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static void print_group_body(struct byol_sbuf *b, struct rnode *t, int indent);

/* "value;  # default" for a read, or a comment line for one that was not set. */
static void print_leaf(struct byol_sbuf *b, const char *name, const struct settings_read *r,
                       int indent)
{
    sb_indent(b, indent);
    if (r->origin == SETTINGS_NOT_SET) {
        byol_sbuf_str(b, "# ");
        byol_sbuf_str(b, name);
        byol_sbuf_str(b, ": not set");
    } else {
        byol_sbuf_str(b, name);
        byol_sbuf_str(b, " = ");
        byol_sbuf_str(b, r->value);
        byol_sbuf_str(b, ";");
    }
    const char *origin = r->origin == SETTINGS_FROM_DEFAULT ? "default"
                         : r->origin == SETTINGS_FROM_SET   ? "--set"
                                                            : NULL;
    if (origin || r->also)
        byol_sbuf_str(b, "  #");
    if (origin) {
        byol_sbuf_str(b, " ");
        byol_sbuf_str(b, origin);
    }
    if (r->also) {
        byol_sbuf_str(b, origin ? "; also read as " : " also read as ");
        byol_sbuf_str(b, r->also);
    }
    byol_sbuf_str(b, "\n");
}

/* A group `{ ... }` or a list `( ... )` value, its opening bracket on the current line. */
static void print_aggregate(struct byol_sbuf *b, struct rnode *t, int indent)
{
    if (!rnode_is_list(t)) {
        byol_sbuf_str(b, "{\n");
        print_group_body(b, t, indent + 2);
        sb_indent(b, indent);
        byol_sbuf_str(b, "}");
        return;
    }
    qsort(t->kids, t->n, sizeof *t->kids, rnode_cmp_index);
    byol_sbuf_str(b, "(\n");
    for (size_t i = 0; i < t->n; i++) {
        struct rnode *e = &t->kids[i];
        sb_indent(b, indent + 2);
        if (e->leaf && e->leaf->value)
            byol_sbuf_str(b, e->leaf->value);
        else
            print_aggregate(b, e, indent + 2);
        byol_sbuf_str(b, i + 1 < t->n ? ",\n" : "\n");
    }
    sb_indent(b, indent);
    byol_sbuf_str(b, ")");
}

static void print_group_body(struct byol_sbuf *b, struct rnode *t, int indent)
{
    for (size_t i = 0; i < t->n; i++) {
        struct rnode *k = &t->kids[i];
        if (k->leaf) {
            print_leaf(b, k->name, k->leaf, indent);
            continue;
        }
        sb_indent(b, indent);
        byol_sbuf_str(b, k->name);
        byol_sbuf_str(b, " = ");
        print_aggregate(b, k, indent);
        byol_sbuf_str(b, ";\n");
    }
}

byol_status byol_config_resolved_text(const struct byol_config *cfg, char **out)
{
    if (!cfg || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_config_resolved_text: NULL argument");
    *out = NULL;
    struct settings_read *reads;
    size_t n;
    byol_status st = settings_reads_copy(cfg, &reads, &n);
    if (st != BYOL_OK)
        return st;
    struct rnode root = {0};
    struct byol_sbuf b = {0};
    for (size_t i = 0; i < n && !b.oom; i++)
        b.oom = rnode_insert(&root, &reads[i]) != 0;
    print_group_body(&b, &root, 0);
    *out = sb_finish(&b, "resolved config");
    rnode_free(&root);
    settings_reads_free(reads, n);
    return *out ? BYOL_OK : BYOL_ERR_NOMEM;
}

/* ---- the digest ------------------------------------------------------------------------- */

static int starts_group(const char *path, const char *group)
{
    size_t n = strlen(group);
    return !strncmp(path, group, n) && (!path[n] || path[n] == '.' || path[n] == '[');
}

static int is_run_only(const char *path)
{
    for (const char *const *k = run_only_keys; *k; k++)
        if (!strcmp(path, *k))
            return 1;
    for (const char *const *g = run_only_groups; *g; g++)
        if (starts_group(path, *g))
            return 1;
    return 0;
}

static int cmp_read_path(const void *a, const void *b)
{
    return strcmp(((const struct settings_read *)a)->path, ((const struct settings_read *)b)->path);
}

/* FNV-1a, 64 bits: stable across builds and machines, which is all a digest needs here. */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

byol_status byol_config_digest(const struct byol_config *cfg, char **text, char digest_hex[17])
{
    if (!cfg || !text || !digest_hex)
        return byol_error(BYOL_ERR_INVALID, "byol_config_digest: NULL argument");
    *text = NULL;
    struct settings_read *reads;
    size_t n;
    byol_status st = settings_reads_copy(cfg, &reads, &n);
    if (st != BYOL_OK)
        return st;
    qsort(reads, n, sizeof *reads, cmp_read_path);
    struct byol_sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (reads[i].origin == SETTINGS_NOT_SET || is_run_only(reads[i].path))
            continue;
        byol_sbuf_str(&b, reads[i].path);
        byol_sbuf_str(&b, " = ");
        byol_sbuf_str(&b, reads[i].value);
        byol_sbuf_str(&b, "\n");
    }
    settings_reads_free(reads, n);
    *text = sb_finish(&b, "config digest");
    if (!*text)
        return BYOL_ERR_NOMEM;
    snprintf(digest_hex, 17, "%016" PRIx64, fnv1a64(*text));
    return BYOL_OK;
}

/* ---- comparing a checkpoint's digest text with the current one --------------------------- */

struct kv {
    const char *key, *value;
};

/* Split "key = value" lines in place (text is a private copy). */
static struct kv *kv_parse(char *text, size_t *n)
{
    size_t lines = 1;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    struct kv *kv = calloc(lines, sizeof *kv);
    *n = 0;
    for (char *line = text; kv && line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strstr(line, " = ");
        if (eq) {
            *eq = '\0';
            kv[(*n)++] = (struct kv){line, eq + 3};
        }
        line = next;
    }
    return kv;
}

static const char *kv_find(const struct kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

/* A value for the message, cut to DIGEST_VALUE_MAX characters. */
static void shown_value(char *buf, size_t size, const char *v)
{
    if (!v)
        snprintf(buf, size, "(not set)");
    else if (strlen(v) > DIGEST_VALUE_MAX)
        snprintf(buf, size, "%.*s...", DIGEST_VALUE_MAX - 3, v);
    else
        snprintf(buf, size, "%s", v);
}

/* Add "key = A there, B here" to the message unless DIGEST_SHOWN are already there. */
static void note_difference(struct byol_sbuf *b, size_t *count, const char *key, const char *there,
                            const char *here)
{
    char a[DIGEST_VALUE_MAX + 16], h[DIGEST_VALUE_MAX + 16];
    if ((*count)++ >= DIGEST_SHOWN)
        return;
    shown_value(a, sizeof a, there);
    shown_value(h, sizeof h, here);
    byol_sbuf_str(b, *count > 1 ? "; " : " ");
    byol_sbuf_str(b, key);
    byol_sbuf_str(b, " = ");
    byol_sbuf_str(b, a);
    byol_sbuf_str(b, " there, ");
    byol_sbuf_str(b, h);
    byol_sbuf_str(b, " here");
}

static void list_differences(struct byol_sbuf *b, size_t *count, const struct kv *old, size_t n_old,
                             const struct kv *cur, size_t n_cur)
{
    for (size_t i = 0; i < n_old; i++) {
        const char *here = kv_find(cur, n_cur, old[i].key);
        if (!here || strcmp(here, old[i].value))
            note_difference(b, count, old[i].key, old[i].value, here);
    }
    for (size_t i = 0; i < n_cur; i++)
        if (!kv_find(old, n_old, cur[i].key))
            note_difference(b, count, cur[i].key, NULL, cur[i].value);
}

byol_status byol_config_digest_compare(const char *ckpt_path, const char *ckpt_text,
                                       const char *current_text)
{
    const char *name = ckpt_path ? ckpt_path : "checkpoint";
    if (!ckpt_text || !current_text)
        return byol_error(BYOL_ERR_INVALID, "%s: no config digest to compare", name);
    if (!strcmp(ckpt_text, current_text))
        return BYOL_OK;
    char *old_copy = strdup(ckpt_text), *cur_copy = strdup(current_text);
    size_t n_old = 0, n_cur = 0, count = 0;
    struct kv *old = old_copy ? kv_parse(old_copy, &n_old) : NULL;
    struct kv *cur = cur_copy ? kv_parse(cur_copy, &n_cur) : NULL;
    struct byol_sbuf b = {0};
    byol_status st = BYOL_OK;
    if (!old || !cur) {
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory comparing configs", name);
    } else {
        list_differences(&b, &count, old, n_old, cur, n_cur);
        char more[48] = "";
        if (count > DIGEST_SHOWN)
            snprintf(more, sizeof more, " (and %zu more)", count - DIGEST_SHOWN);
        if (count)
            st = byol_error(BYOL_ERR_INVALID, "%s: written by another config:%s%s", name,
                            b.oom ? " (out of memory)" : b.s, more);
    }
    free(b.s);
    free(old);
    free(cur);
    free(old_copy);
    free(cur_copy);
    return st;
}
