/* byol_export_onnx (include/byol/export.h): the learner rebuilt from the config a checkpoint
 * carries in its metadata, its weights loaded, and its online network from the input to the
 * representation (and the projection) written as an ONNX model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/byol.h"
#include "byol/export.h"
#include "byol/learner.h"
#include "learner_internal.h"
#include "net_onnx_internal.h"
#include "sbuf_internal.h"

/* ---- the checkpoint's "config" ("path = value" lines) as libconfig text ---------------- */

/* A node of the settings tree: a group member (name) or a list element (name NULL, index);
 * a leaf has a value. */
struct cfg_node {
    char *name;
    int index;
    char *value;
    struct cfg_node *kids;
    size_t n, cap;
};

static void cfg_node_free(struct cfg_node *t)
{
    for (size_t i = 0; i < t->n; i++)
        cfg_node_free(&t->kids[i]);
    free(t->kids);
    free(t->name);
    free(t->value);
}

/* The child for one path component, added when new; NULL when out of memory. */
static struct cfg_node *cfg_child(struct cfg_node *t, const char *name, size_t len, int index)
{
    for (size_t i = 0; i < t->n; i++) {
        struct cfg_node *k = &t->kids[i];
        if (name ? k->name && strlen(k->name) == len && strncmp(k->name, name, len) == 0
                 : !k->name && k->index == index)
            return k;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct cfg_node *grown = realloc(t->kids, cap * sizeof *grown);
        if (!grown)
            return NULL;
        t->kids = grown;
        t->cap = cap;
    }
    struct cfg_node *k = &t->kids[t->n];
    *k = (struct cfg_node){.index = index};
    if (name && !(k->name = strndup(name, len)))
        return NULL;
    t->n++;
    return k;
}

/* Add "a.b[2].c = value" under the root; 0, or -1 for a line that is no such assignment. */
static int cfg_add_line(struct cfg_node *root, const char *line, size_t len, int *oom)
{
    const char *eq = NULL;
    for (size_t i = 0; i + 2 < len && !eq; i++)
        if (line[i] == ' ' && line[i + 1] == '=' && line[i + 2] == ' ')
            eq = line + i;
    if (!eq || eq == line)
        return -1;
    struct cfg_node *t = root;
    const char *p = line;
    while (p < eq && t) {
        size_t n = strcspn(p, ".[ ");
        if (p + n > eq || n == 0)
            return -1;
        t = cfg_child(t, p, n, 0);
        p += n;
        while (t && p < eq && *p == '[') {
            char *end;
            long idx = strtol(p + 1, &end, 10);
            if (*end != ']' || idx < 0 || idx > 1 << 20)
                return -1;
            t = cfg_child(t, NULL, 0, (int)idx);
            p = end + 1;
        }
        if (p < eq && *p == '.')
            p++;
    }
    if (!t) {
        *oom = 1;
        return 0;
    }
    if (t->value || t->n)
        return -1;
    if (!(t->value = strndup(eq + 3, (size_t)(line + len - (eq + 3)))))
        *oom = 1;
    return 0;
}

static int cfg_cmp_index(const void *a, const void *b)
{
    const struct cfg_node *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* The node's value as libconfig: a leaf's text, a group { ... }, or a list ( {...}, ... ).
 * -1 for a list whose indices have gaps. */
static int cfg_emit(struct byol_sbuf *b, struct cfg_node *t)
{
    if (t->value) {
        byol_sbuf_printf(b, "%s", t->value);
        return 0;
    }
    int list = t->n && !t->kids[0].name;
    if (list)
        qsort(t->kids, t->n, sizeof *t->kids, cfg_cmp_index);
    byol_sbuf_printf(b, list ? "( " : "{ ");
    for (size_t i = 0; i < t->n; i++) {
        struct cfg_node *k = &t->kids[i];
        if (list && (k->name || k->index != (int)i))
            return -1;
        if (list && i)
            byol_sbuf_printf(b, ", ");
        if (!list)
            byol_sbuf_printf(b, "%s = ", k->name);
        if (cfg_emit(b, k) != 0)
            return -1;
        if (!list)
            byol_sbuf_printf(b, "; ");
    }
    byol_sbuf_printf(b, list ? ")" : "}");
    return 0;
}

/* The checkpoint's config text as a config. */
static byol_status cfg_from_digest_text(const char *ckpt, const char *text,
                                        struct byol_config **out)
{
    struct cfg_node root = {0};
    struct byol_sbuf b = {0};
    int oom = 0, bad = 0;
    for (const char *p = text; *p && !bad && !oom;) {
        size_t len = strcspn(p, "\n");
        if (len)
            bad = cfg_add_line(&root, p, len, &oom) != 0;
        p += len + (p[len] == '\n');
    }
    for (size_t i = 0; i < root.n && !bad && !oom; i++) {
        byol_sbuf_printf(&b, "%s = ", root.kids[i].name ? root.kids[i].name : "?");
        bad = !root.kids[i].name || cfg_emit(&b, &root.kids[i]) != 0;
        byol_sbuf_printf(&b, ";\n");
    }
    cfg_node_free(&root);
    byol_status st = BYOL_OK;
    if (oom || b.oom)
        st = byol_error(BYOL_ERR_NOMEM, "%s: out of memory", ckpt);
    else if (bad)
        st = byol_error(BYOL_ERR_FORMAT, "%s: its config metadata is not 'path = value' lines",
                        ckpt);
    else
        st = byol_config_parse(b.s ? b.s : "", ckpt, out);
    if (st != BYOL_OK && !oom && !bad)
        st = byol_error(st, "%s: its config metadata does not read back: %s", ckpt,
                        byol_last_error());
    free(b.s);
    return st;
}

/* ---- the export ------------------------------------------------------------------------ */

/* The learner the checkpoint was trained as, two images a view (shapes do not matter here). */
static byol_status onnx_learner(struct byol_backend *be, struct byol_registry *reg,
                                const char *ckpt, struct byol_config *cfg,
                                struct byol_learner_config *c, struct byol_learner **l)
{
    const struct byol_settings *root = byol_config_root(cfg);
    byol_learner_config_default(c);
    byol_status st = byol_learner_config_read(c, byol_settings_child(root, "model"),
                                              byol_settings_child(root, "train"));
    if (st != BYOL_OK)
        return byol_error(st, "%s: its config: %s", ckpt, byol_last_error());
    c->batch_size = 2;
    st = byol_learner_create(be, reg, c, l);
    if (st != BYOL_OK)
        return byol_error(st, "%s: rebuilding its network: %s", ckpt, byol_last_error());
    st = byol_learner_load_weights(*l, ckpt, NULL);
    if (st != BYOL_OK && !strstr(byol_last_error(), ckpt))
        st = byol_error(st, "%s: %s", ckpt, byol_last_error());
    return st;
}

/* The projector's output: what the predictor reads. */
static const char *onnx_projection_layer(struct byol_net *net)
{
    long p = byol_net_layer_index(net, "predictor.0");
    size_t in[2];
    if (p < 0 || byol_net_layer_inputs(net, (size_t)p, in) != 1)
        return NULL;
    return byol_net_layer_name(net, in[0]);
}

static byol_status onnx_write(struct byol_learner *l, const struct byol_learner_config *c,
                              const char *ckpt, const char *out, int with_projection)
{
    struct byol_net *net = byol_learner_online(l);
    struct byol_net_onnx_output outs[2] = {{LEARNER_HIDDEN, "embedding"},
                                           {onnx_projection_layer(net), "projection"}};
    if (with_projection && !outs[1].layer)
        return byol_error(BYOL_ERR_INTERNAL, "%s: the network has no projector output", ckpt);
    struct byol_onnx *m = NULL;
    char hidden[64];
    snprintf(hidden, sizeof hidden, "%d", byol_learner_embedding_dim(l));
    byol_status st = byol_onnx_create("byol_online_encoder", &m);
    if (st == BYOL_OK)
        st = byol_net_onnx_graph(net, LEARNER_INPUT, "images", outs, with_projection ? 2 : 1, m);
    if (st != BYOL_OK)
        st = byol_error(st, "%s: %s", ckpt, byol_last_error());
    if (st == BYOL_OK)
        st = byol_onnx_add_metadata(m, "source", ckpt);
    if (st == BYOL_OK)
        st = byol_onnx_add_metadata(m, "encoder", c->encoder);
    if (st == BYOL_OK)
        st = byol_onnx_add_metadata(m, "embedding_dim", hidden);
    if (st == BYOL_OK)
        st = byol_onnx_save(m, out, BYOL_VERSION_STRING);
    byol_onnx_free(m);
    return st;
}

byol_status byol_export_onnx(struct byol_backend *be, struct byol_registry *reg,
                             const char *checkpoint, const char *out, int with_projection)
{
    if (!be || !reg || !checkpoint || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_export_onnx: NULL argument");
    char *text = NULL;
    struct byol_config *cfg = NULL;
    struct byol_learner_config c;
    struct byol_learner *l = NULL;
    byol_status st = byol_state_read_metadata(checkpoint, "config", &text);
    if (st == BYOL_OK && !text)
        st = byol_error(BYOL_ERR_FORMAT,
                        "%s: no config in its metadata (not a learner checkpoint, or one from "
                        "before checkpoints carried their config): the network cannot be rebuilt "
                        "for ONNX; export it as .safetensors",
                        checkpoint);
    if (st == BYOL_OK)
        st = cfg_from_digest_text(checkpoint, text, &cfg);
    if (st == BYOL_OK)
        st = onnx_learner(be, reg, checkpoint, cfg, &c, &l);
    if (st == BYOL_OK)
        st = onnx_write(l, &c, checkpoint, out, with_projection);
    byol_learner_free(l);
    byol_config_free(cfg);
    free(text);
    return st;
}
