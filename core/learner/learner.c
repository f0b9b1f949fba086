/* The BYOL learner (include/byol/learner.h): builds the online and target networks around an
 * encoder plugin, computes byol-pytorch's symmetric loss and its gradient, and runs the step
 * in byol-pytorch's trainer order (backward, optimizer step, zero_grad, EMA of the target). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byol/encoder.h"
#include "byol/registry.h"
#include "dist_internal.h"
#include "learner_internal.h"
#include "net_internal.h"
#include "plugin_scope_internal.h"
#include "registry_internal.h"

/* F.normalize's eps: x / max(||x||, eps). */
#define LEARNER_NORM_EPS 1e-12
#define LEARNER_CHILDREN_SHOWN 400

/* ---- Building the networks. ---------------------------------------------------------- */

static const char *layer_name(char *buf, const char *prefix, int i)
{
    snprintf(buf, LEARNER_NAME_MAX, "%s.%d", prefix, i);
    return buf;
}

/* byol-pytorch's MLP: Linear(dim, hidden), BatchNorm1d, ReLU, Linear(hidden, out), as
 * "<prefix>.0" .. "<prefix>.3"; the input width comes from `input`. */
static byol_status add_mlp(struct byol_net *net, const char *prefix, const char *input, int hidden,
                           int out, char *last)
{
    char n[LEARNER_NAME_MAX];
    byol_status st = byol_net_add_linear(net, layer_name(n, prefix, 0), input, hidden, 1);
    if (st == BYOL_OK)
        st = byol_net_add_batchnorm(net, layer_name(n, prefix, 1), NULL, 1);
    if (st == BYOL_OK)
        st = byol_net_add_relu(net, layer_name(n, prefix, 2), NULL);
    if (st == BYOL_OK)
        st = byol_net_add_linear(net, layer_name(last, prefix, 3), NULL, out, 1);
    return st;
}

/* byol-pytorch's SimSiamMLP (use_momentum = false): three bias-free Linears, each followed by
 * BatchNorm1d, the last one without affine parameters; ReLUs between. "<prefix>.0" .. ".7". */
static byol_status add_simsiam_mlp(struct byol_net *net, const char *prefix, const char *input,
                                   int hidden, int out, char *last)
{
    char n[LEARNER_NAME_MAX];
    const int width[3] = {hidden, hidden, out};
    byol_status st = BYOL_OK;
    for (int k = 0; k < 3 && st == BYOL_OK; k++) {
        st = byol_net_add_linear(net, layer_name(n, prefix, 3 * k), k ? NULL : input, width[k], 0);
        if (st == BYOL_OK)
            st = byol_net_add_batchnorm(net, layer_name(k == 2 ? last : n, prefix, 3 * k + 1), NULL,
                                        k < 2);
        if (st == BYOL_OK && k < 2)
            st = byol_net_add_relu(net, layer_name(n, prefix, 3 * k + 2), NULL);
    }
    return st;
}

/* The projector after the flattened hidden layer; with simplicial embeddings it is
 * Sequential(Sequential(Linear, BatchNorm1d), SEM, MLP), so the names nest as in
 * byol-pytorch's state_dict: projector.0.0, projector.0.1, projector.1, projector.2.<i>. */
static byol_status add_projector(struct byol_learner *l, struct byol_net *net)
{
    const struct byol_learner_config *c = &l->cfg;
    const char *prefix = "projector", *input = LEARNER_HIDDEN;
    byol_status st = BYOL_OK;
    if (c->use_simplicial_embeddings) {
        struct byol_op_desc sem = {.kind = BYOL_OP_SOFTMAX};
        sem.u.softmax.group = c->sem_simplex_dim;
        sem.u.softmax.temperature = (float)c->sem_temperature;
        st = byol_net_add_linear(net, "projector.0.0", LEARNER_HIDDEN,
                                 c->sem_num_simplices * c->sem_simplex_dim, 1);
        if (st == BYOL_OK)
            st = byol_net_add_batchnorm(net, "projector.0.1", NULL, 1);
        if (st == BYOL_OK)
            st = byol_net_add_layer(net, "projector.1", &sem, NULL);
        prefix = "projector.2";
        input = "projector.1";
    }
    if (st != BYOL_OK)
        return st;
    if (c->use_momentum)
        return add_mlp(net, prefix, input, c->projection_hidden_size, c->projection_size,
                       l->projection);
    return add_simsiam_mlp(net, prefix, input, c->projection_hidden_size, c->projection_size,
                           l->projection);
}

/* The layer whose output is the representation: a name, or an index into the children. */
static byol_status resolve_hidden(const struct byol_learner *l, const struct byol_net *net,
                                  const char **name)
{
    const struct byol_learner_config *c = &l->cfg;
    if (!c->hidden_layer) {
        byol_status st = byol_net_child_at(net, c->hidden_index, name);
        if (st != BYOL_OK)
            return byol_error(st, "model.hidden_layer = %d: %s", c->hidden_index,
                              byol_last_error());
        return BYOL_OK;
    }
    *name = c->hidden_layer;
    if (byol_net_has_layer(net, c->hidden_layer))
        return BYOL_OK;
    char list[LEARNER_CHILDREN_SHOWN + 8] = "";
    size_t used = 0;
    for (size_t i = 0; i < byol_net_child_count(net) && used < LEARNER_CHILDREN_SHOWN; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 byol_net_child_name(net, i));
    return byol_error(BYOL_ERR_NOT_FOUND,
                      "model.hidden_layer: encoder '%s' has no layer '%s' (top-level layers: %s; "
                      "nested names such as 'layer4.1.conv2' work too)",
                      c->encoder, c->hidden_layer, used ? list : "none declared");
}

/* Which network build_net makes: the online one or the target (on the 2B global views), or
 * the online one again for the N x B local views at local_size (multi-crop), over the online
 * network's memory. */
enum learner_net { NET_ONLINE, NET_TARGET, NET_LOCAL };

/* Input, encoder, flattened hidden layer, projector and (online only) predictor. */
static byol_status add_layers(struct byol_learner *l, struct byol_net *net,
                              const struct byol_encoder_ops *enc, enum learner_net role)
{
    const struct byol_learner_config *c = &l->cfg;
    struct byol_shape in = {2 * c->batch_size, c->in_channels, c->image_size, c->image_size};
    if (role == NET_LOCAL)
        in = (struct byol_shape){c->local_crops * c->batch_size, c->in_channels, c->local_size,
                                 c->local_size};
    const char *enc_out = NULL, *hidden = NULL;
    byol_status st = byol_net_add_input(net, LEARNER_INPUT, in);
    if (st != BYOL_OK)
        return st;
    struct byol_plugin_mark mark =
        byol_plugin_enter(l->encoder_path, "encoder", c->encoder, "build");
    st = enc->build(byol_host_api(), c->encoder_settings, net, LEARNER_INPUT, in, &enc_out);
    byol_plugin_leave(mark);
    if (st != BYOL_OK)
        return byol_error(st, "encoder '%s': %s", c->encoder, byol_last_error());
    st = resolve_hidden(l, net, &hidden);
    if (st == BYOL_OK)
        st = byol_net_add_flatten(net, LEARNER_HIDDEN, hidden);
    if (st == BYOL_OK)
        st = add_projector(l, net);
    if (st == BYOL_OK && role != NET_TARGET)
        st = add_mlp(net, "predictor", l->projection, c->projection_hidden_size, c->projection_size,
                     l->prediction);
    return st;
}

/* Which batch norms a data-parallel learner synchronises: the projector's and predictor's
 * always, the encoder's unless model.sync_batchnorm is false (byol-pytorch's BYOLTrainer
 * converts the whole network to SyncBatchNorm). */
static int want_sync(const char *layer, void *user)
{
    const struct byol_learner *l = user;
    return l->sync_encoder_bn || strncmp(layer, "projector.", 10) == 0 ||
           strncmp(layer, "predictor.", 10) == 0;
}

/* The local views' network is the online one at another input size, built over the online
 * network's parameters, gradients, running statistics and counters (byol_net_build_shared):
 * its forward moves them as a second call of the same module does in PyTorch, and its
 * backward adds into the same gradients. It has no parameters of its own to initialise. */
static byol_status build_net(struct byol_learner *l, const struct byol_encoder_ops *enc,
                             enum learner_net role, struct byol_net **out)
{
    const struct byol_learner_config *c = &l->cfg;
    struct byol_net *net = NULL;
    byol_status st = byol_net_create(l->be, &net);
    /* The target never runs backward; the online network's gradients are never read. */
    if (st == BYOL_OK)
        st = byol_net_set_memory(net,
                                 role == NET_TARGET ? BYOL_NET_FORWARD_ONLY : BYOL_NET_SHARE_GRADS);
    if (st == BYOL_OK)
        st = byol_net_set_fusion(net, 1);
    if (st == BYOL_OK)
        st = add_layers(l, net, enc, role);
    /* A backend without BYOL_BACKEND_SYNC_BN refuses these batch norms when the net is built. */
    if (st == BYOL_OK && l->distributed)
        st = byol_net_set_bn_sync(net, dist_bn_sync(), want_sync, l);
    if (st == BYOL_OK && role == NET_LOCAL) {
        st = byol_net_build_shared(net, l->online);
        if (st != BYOL_OK)
            st = byol_error(st, "learner: the network of the local views (local_size = %d): %s",
                            c->local_size, byol_last_error());
    } else if (st == BYOL_OK) {
        st = byol_net_build(net, c->seed);
    }
    if (st == BYOL_OK && enc->init && role != NET_LOCAL) {
        struct byol_plugin_mark mark =
            byol_plugin_enter(l->encoder_path, "encoder", c->encoder, "init");
        st = enc->init(byol_host_api(), c->encoder_settings, net, c->seed);
        byol_plugin_leave(mark);
        if (st != BYOL_OK)
            byol_error(st, "encoder '%s' init: %s", c->encoder, byol_last_error());
    }
    if (st != BYOL_OK) {
        byol_net_free(net);
        return st;
    }
    *out = net;
    return BYOL_OK;
}

/* ---- The target as a prefix of the online network. ------------------------------------ */

static const float *role_base(struct byol_net *net, enum byol_tensor_role role)
{
    return role == BYOL_ROLE_PARAM ? byol_net_params(net) : byol_net_buffers(net);
}

/* The target's parameters and buffers must be laid out exactly as the first ones of the
 * online network, so that the EMA is one call over a prefix and the first copy a memcpy. */
static byol_status check_target_prefix(struct byol_learner *l)
{
    size_t n = byol_net_param_count(l->target);
    if (n > byol_net_param_count(l->online))
        return byol_error(BYOL_ERR_INTERNAL, "learner: the target has more tensors than online");
    for (size_t i = 0; i < n; i++) {
        const struct byol_param *o = byol_net_param_at(l->online, i);
        const struct byol_param *t = byol_net_param_at(l->target, i);
        if (strcmp(o->name, t->name) != 0 || o->role != t->role || o->numel != t->numel ||
            o->data - role_base(l->online, o->role) != t->data - role_base(l->target, t->role))
            return byol_error(BYOL_ERR_INTERNAL,
                              "learner: target tensor %zu '%s' does not mirror online '%s'", i,
                              t->name, o->name);
    }
    l->target_params = byol_net_num_params(l->target);
    l->target_buffers = byol_net_num_buffers(l->target);
    return BYOL_OK;
}

/* The target starts as a copy of the online encoder and projector: parameters, running
 * statistics and batch counters (byol-pytorch deep-copies the module). */
static void copy_online_to_target(struct byol_learner *l)
{
    memcpy(byol_net_params(l->target), byol_net_params(l->online),
           l->target_params * sizeof(float));
    memcpy(byol_net_buffers(l->target), byol_net_buffers(l->online),
           l->target_buffers * sizeof(float));
    for (size_t i = 0; i < byol_net_layer_count(l->target); i++) {
        const char *name = byol_net_layer_name(l->target, i);
        int64_t *t = byol_net_bn_batches_tracked(l->target, name);
        int64_t *o = byol_net_bn_batches_tracked(l->online, name);
        if (t && o)
            *t = *o;
    }
}

/* ---- Parameters the loss does not reach. ---------------------------------------------- */

/* A parameter's layer: its name without the last component ("layer1.0.conv1"). */
static void param_layer(char *buf, const char *param)
{
    snprintf(buf, LEARNER_NAME_MAX, "%s", param);
    char *dot = strrchr(buf, '.');
    if (dot)
        *dot = '\0';
}

static byol_status add_frozen(struct byol_learner *l, size_t offset, size_t numel)
{
    if (l->n_frozen &&
        l->frozen[l->n_frozen - 1].offset + l->frozen[l->n_frozen - 1].numel == offset) {
        l->frozen[l->n_frozen - 1].numel += numel;
    } else {
        struct learner_span *g = realloc(l->frozen, (l->n_frozen + 1) * sizeof *g);
        if (!g)
            return byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
        l->frozen = g;
        l->frozen[l->n_frozen++] = (struct learner_span){offset, numel};
    }
    l->frozen_numel += numel;
    return BYOL_OK;
}

/* Online parameters that the prediction does not depend on (the fc after avgpool, layers
 * after the hidden layer): PyTorch never gives them a gradient, so no optimizer touches them. */
static byol_status find_frozen(struct byol_learner *l)
{
    char layer[LEARNER_NAME_MAX];
    const float *base = byol_net_params(l->online);
    for (size_t i = 0; i < byol_net_param_count(l->online); i++) {
        const struct byol_param *p = byol_net_param_at(l->online, i);
        if (p->role != BYOL_ROLE_PARAM)
            continue;
        param_layer(layer, p->name);
        if (byol_net_depends_on(l->online, l->prediction, layer))
            continue;
        byol_status st = add_frozen(l, (size_t)(p->data - base), p->numel);
        if (st != BYOL_OK)
            return st;
    }
    size_t copies = 1 + byol_optim_state_count(l->opt);
    if (l->frozen_numel) {
        l->frozen_save = malloc(l->frozen_numel * copies * sizeof(float));
        if (!l->frozen_save)
            return byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    }
    return BYOL_OK;
}

/* Copy the frozen spans of the parameters and of each optimizer state out of (save = 1) or
 * back into (save = 0) the networks' arrays. */
static void frozen_copy(struct byol_learner *l, int save)
{
    float *keep = l->frozen_save;
    size_t copies = 1 + byol_optim_state_count(l->opt);
    for (size_t k = 0; k < copies; k++) {
        float *arr = k ? byol_optim_state_data(l->opt, k - 1) : byol_net_params(l->online);
        for (size_t s = 0; s < l->n_frozen; s++) {
            float *at = arr + l->frozen[s].offset;
            size_t bytes = l->frozen[s].numel * sizeof(float);
            memcpy(save ? keep : at, save ? at : keep, bytes);
            keep += l->frozen[s].numel;
        }
    }
}

/* ---- Create / free. ------------------------------------------------------------------- */

static byol_status check_config(const struct byol_learner_config *c, int global_batch)
{
    if (global_batch < 2)
        return byol_error(BYOL_ERR_INVALID,
                          "train.batch_size = %d: BYOL needs at least 2 images per view (batch "
                          "norm in the projector)",
                          global_batch);
    if (c->batch_size < 1 || c->batch_size > global_batch)
        return byol_error(BYOL_ERR_INVALID,
                          "learner: %d images per view of a global batch of %d: each process "
                          "needs at least one",
                          c->batch_size, global_batch);
    if (c->in_channels < 1 || c->image_size < 1 || c->projection_size < 1 ||
        c->projection_hidden_size < 1)
        return byol_error(BYOL_ERR_INVALID,
                          "learner: in_channels %d, image_size %d, projection_size %d and "
                          "projection_hidden_size %d must be positive",
                          c->in_channels, c->image_size, c->projection_size,
                          c->projection_hidden_size);
    if (c->use_simplicial_embeddings &&
        (c->sem_num_simplices < 1 || c->sem_simplex_dim < 1 || !(c->sem_temperature > 0)))
        return byol_error(BYOL_ERR_INVALID,
                          "model: sem_num_simplices %d, sem_simplex_dim %d and sem_temperature "
                          "%g must be positive",
                          c->sem_num_simplices, c->sem_simplex_dim, c->sem_temperature);
    if (!(c->moving_average_decay >= 0 && c->moving_average_decay <= 1))
        return byol_error(BYOL_ERR_INVALID, "model.moving_average_decay = %g: must be in [0, 1]",
                          c->moving_average_decay);
    if (c->local_crops < 0 || c->local_crops > BYOL_LEARNER_LOCAL_CROPS_MAX)
        return byol_error(BYOL_ERR_INVALID,
                          "learner: local_crops = %d: the local views per image must be in 0..%d",
                          c->local_crops, BYOL_LEARNER_LOCAL_CROPS_MAX);
    if (c->local_crops > 0 && (c->local_size < 1 || c->local_size > c->image_size))
        return byol_error(BYOL_ERR_INVALID,
                          "learner: local_size = %d: with local_crops = %d the local views' side "
                          "must be in 1..image_size (%d)",
                          c->local_size, c->local_crops, c->image_size);
    if (c->use_momentum && c->tau_schedule == BYOL_TAU_COSINE && c->optim.total_steps < 1)
        return byol_error(BYOL_ERR_INVALID,
                          "model.tau_schedule = \"cosine\" needs train.steps >= 1 (it is %lld)",
                          (long long)c->optim.total_steps);
    return BYOL_OK;
}

static byol_status alloc_buffers(struct byol_learner *l)
{
    struct byol_shape h;
    byol_status st = byol_net_output_shape(l->online, LEARNER_HIDDEN, &h);
    if (st != BYOL_OK)
        return st;
    size_t rows = 2 * (size_t)l->batch, p = (size_t)l->cfg.projection_size;
    l->embedding_dim = h.c;
    l->images = malloc(rows * l->image_numel * sizeof(float));
    l->predictions = malloc(rows * p * sizeof(float));
    l->projections = malloc(rows * p * sizeof(float));
    l->dpred = malloc(rows * p * sizeof(float));
    l->hidden_out = malloc(rows * (size_t)h.c * sizeof(float));
    l->proj_sums = malloc((2 * p + 1) * sizeof(double));
    l->proj_std = NAN;
    if (!l->images || !l->predictions || !l->projections || !l->dpred || !l->hidden_out ||
        !l->proj_sums)
        return byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    if (!l->local)
        return BYOL_OK;
    size_t local_rows = (size_t)l->cfg.local_crops * (size_t)l->batch;
    l->local_pred = malloc(local_rows * p * sizeof(float));
    l->local_dpred = malloc(local_rows * p * sizeof(float));
    l->dterm = malloc(p * sizeof(float));
    if (!l->local_pred || !l->local_dpred || !l->dterm)
        return byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    return BYOL_OK;
}

static byol_status create_parts(struct byol_learner *l, const struct byol_encoder_ops *enc)
{
    byol_status st = build_net(l, enc, NET_ONLINE, &l->online);
    if (st == BYOL_OK && l->cfg.local_crops > 0)
        st = build_net(l, enc, NET_LOCAL, &l->local);
    if (st == BYOL_OK && l->cfg.use_momentum) {
        st = build_net(l, enc, NET_TARGET, &l->target);
        if (st == BYOL_OK)
            st = check_target_prefix(l);
        if (st == BYOL_OK)
            copy_online_to_target(l);
    }
    if (st == BYOL_OK)
        st = byol_optim_create(l->be, l->online, &l->cfg.optim, &l->opt);
    if (st == BYOL_OK)
        st = find_frozen(l);
    if (st == BYOL_OK)
        st = alloc_buffers(l);
    return st;
}

/* A failure to find or load the encoder's plugin, naming model.encoder.name (with its file
 * and line) when the config sets it. */
static byol_status encoder_not_loaded(const struct byol_learner_config *c, byol_status st)
{
    const struct byol_settings *name = byol_settings_child(c->encoder_settings, "name");
    char why[1024];
    if (!name || !byol_settings_has(c->encoder_settings, "name"))
        return st;
    snprintf(why, sizeof why, "%s", byol_last_error());
    return byol_settings_error(name, st, "%s", why);
}

static byol_status learner_make(struct byol_backend *be, struct byol_registry *reg,
                                const struct byol_learner_config *c, int global_batch,
                                int distributed, int sync_encoder_bn, struct byol_learner **out)
{
    if (!be || !reg || !c || !out)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_create: NULL argument");
    *out = NULL;
    byol_status st = check_config(c, global_batch);
    if (st != BYOL_OK)
        return st;
    const void *ops = NULL;
    st = byol_registry_require(reg, BYOL_PLUGIN_ENCODER, c->encoder, &ops);
    if (st != BYOL_OK)
        return encoder_not_loaded(c, st);
    struct byol_learner *l = calloc(1, sizeof *l);
    if (!l)
        return byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    l->be = be;
    l->encoder_path = byol_registry_path_of(reg, ops);
    l->cfg = *c;
    l->batch = c->batch_size;
    l->global_batch = global_batch;
    l->distributed = distributed;
    l->sync_encoder_bn = sync_encoder_bn;
    l->image_numel = (size_t)c->in_channels * (size_t)c->image_size * (size_t)c->image_size;
    if (c->hidden_layer && !(l->hidden_layer = strdup(c->hidden_layer)))
        st = byol_error(BYOL_ERR_NOMEM, "learner: out of memory");
    l->cfg.hidden_layer = l->hidden_layer;
    if (st == BYOL_OK)
        st = create_parts(l, ops);
    if (st != BYOL_OK) {
        byol_learner_free(l);
        return st;
    }
    *out = l;
    return BYOL_OK;
}

byol_status byol_learner_create(struct byol_backend *be, struct byol_registry *reg,
                                const struct byol_learner_config *c, struct byol_learner **out)
{
    return learner_make(be, reg, c, c ? c->batch_size : 0, 0, 0, out);
}

byol_status learner_create_dist(struct byol_backend *be, struct byol_registry *reg,
                                const struct byol_learner_config *c, int global_batch,
                                int sync_encoder_bn, struct byol_learner **out)
{
    if (byol_dist_size() < 2)
        return byol_error(BYOL_ERR_INVALID, "learner_create_dist: not a data-parallel run");
    return learner_make(be, reg, c, global_batch, 1, sync_encoder_bn, out);
}

void byol_learner_free(struct byol_learner *l)
{
    if (!l)
        return;
    byol_optim_free(l->opt);
    byol_net_free(l->target);
    byol_net_free(l->local); /* before the online network, whose arrays it uses */
    byol_net_free(l->online);
    free(l->frozen);
    free(l->frozen_save);
    free(l->images);
    free(l->predictions);
    free(l->projections);
    free(l->dpred);
    free(l->hidden_out);
    free(l->local_pred);
    free(l->local_dpred);
    free(l->dterm);
    free(l->proj_sums);
    free(l->hidden_layer);
    free(l);
}

/* ---- The loss. ------------------------------------------------------------------------ */

/* 2 - 2 cos(p, z) with F.normalize's eps, in double; adds scale x its gradient w.r.t. p into
 * dp (z is the target: no gradient). */
static double cosine_loss(const float *p, const float *z, int n, double scale, float *dp)
{
    double pp = 0, zz = 0, pz = 0;
    for (int i = 0; i < n; i++) {
        pp += (double)p[i] * p[i];
        zz += (double)z[i] * z[i];
        pz += (double)p[i] * z[i];
    }
    double np = sqrt(pp), dz = fmax(sqrt(zz), LEARNER_NORM_EPS);
    /* Below eps the denominator is the constant eps (clamp_min passes no gradient). */
    int live = np >= LEARNER_NORM_EPS;
    double dpn = live ? np : LEARNER_NORM_EPS;
    double cos = pz / (dpn * dz);
    for (int i = 0; i < n; i++) {
        double g = z[i] / (dpn * dz) - (live ? cos * p[i] / (np * np) : 0.0);
        dp[i] = (float)(-2.0 * scale * g);
    }
    return 2.0 - 2.0 * cos;
}

/* mean_b [loss(p1_b, z2_b) + loss(p2_b, z1_b)]: rows 0..B-1 are view 1, B..2B-1 view 2. In a
 * data-parallel run the mean is over the global batch, so this process's rows contribute
 * their share and the sums over the processes are the global loss and gradient.
 *
 * With N local views, row k * B + b of the local predictions (view k of image b) adds
 * loss(p_kb, z1_b) + loss(p_kb, z2_b), and everything is scaled by 2 / n_terms, n_terms =
 * 2 (N + 1) (DINO's mean over its loss terms, times 2): 1 / (N + 1), exactly 1.0 for N = 0,
 * where the loss and its gradient are bit for bit those of the two global views alone. A local
 * row's two gradient terms are rounded each and added, as autograd accumulates them. */
static double byol_loss(struct byol_learner *l)
{
    int b = l->batch, n = l->cfg.projection_size;
    double total = 0, scale = 1.0 / (l->cfg.local_crops + 1) / l->global_batch;
    for (int i = 0; i < 2 * b; i++) {
        int other = i < b ? i + b : i - b;
        total += cosine_loss(l->predictions + (size_t)i * n, l->projections + (size_t)other * n, n,
                             scale, l->dpred + (size_t)i * n);
    }
    for (int r = 0; r < l->cfg.local_crops * b; r++) {
        const float *p = l->local_pred + (size_t)r * n;
        float *dp = l->local_dpred + (size_t)r * n;
        total += cosine_loss(p, l->projections + (size_t)(r % b) * n, n, scale, l->dterm);
        total += cosine_loss(p, l->projections + (size_t)(b + r % b) * n, n, scale, dp);
        for (int j = 0; j < n; j++)
            dp[j] += l->dterm[j];
    }
    return total * scale;
}

/* ---- The collapse statistic. ----------------------------------------------------------- */

/* One pass over n rows of d values, each divided by its norm (F.normalize's eps): without
 * `mean`, s[j] += v_j and s[d] += 1 per row; with it, s[j] += (v_j - mean[j])^2. Two passes
 * (the mean first) keep the variance exact where E[v^2] - E[v]^2 would cancel to noise. */
static void proj_pass(const float *rows, int n, int d, const double *mean, double *s)
{
    for (int i = 0; i < n; i++) {
        const float *z = rows + (size_t)i * (size_t)d;
        double zz = 0;
        for (int j = 0; j < d; j++)
            zz += (double)z[j] * z[j];
        double inv = 1.0 / fmax(sqrt(zz), LEARNER_NORM_EPS);
        for (int j = 0; j < d; j++) {
            double v = z[j] * inv;
            s[j] += mean ? (v - mean[j]) * (v - mean[j]) : v;
        }
    }
    if (!mean)
        s[d] += n;
}

/* The statistic of n rows, this process's share of the `distributed` run's rows, with s
 * (2d + 1 doubles) as scratch: sums, then means (d), the row count (1), squared deviations
 * (d), each summed over the processes. */
static byol_status proj_std_rows(const float *rows, int n, int d, int distributed, double *s,
                                 double *out)
{
    byol_status st = BYOL_OK;
    memset(s, 0, (2 * (size_t)d + 1) * sizeof *s);
    proj_pass(rows, n, d, NULL, s);
    if (distributed && (st = dist_sum_f64(s, (size_t)d + 1)) != BYOL_OK)
        return st;
    for (int j = 0; j < d; j++)
        s[j] /= s[d];
    proj_pass(rows, n, d, s, s + d + 1);
    if (distributed && (st = dist_sum_f64(s + d + 1, (size_t)d)) != BYOL_OK)
        return st;
    double total = 0;
    for (int j = 0; j < d; j++)
        total += sqrt(s[d + 1 + j] / s[d]);
    *out = total / d;
    return BYOL_OK;
}

double byol_projection_std(const float *rows, int n, int d)
{
    double v = NAN, *s = rows && n >= 1 && d >= 1 ? malloc((2 * (size_t)d + 1) * sizeof *s) : NULL;
    if (s)
        proj_std_rows(rows, n, d, 0, s, &v);
    free(s);
    return v;
}

/* The statistic of the online projections of the forward just run (read into l->projections,
 * which the target's forward then overwrites); in a data-parallel run, of the global batch. */
static byol_status projection_std(struct byol_learner *l)
{
    byol_status st = byol_net_read_output(l->online, l->projection, l->projections);
    if (st != BYOL_OK)
        return st;
    return proj_std_rows(l->projections, 2 * l->batch, l->cfg.projection_size, l->distributed,
                         l->proj_sums, &l->proj_std);
}

double byol_learner_projection_std(const struct byol_learner *l)
{
    return l ? l->proj_std : NAN;
}

/* ---- Steps. --------------------------------------------------------------------------- */

/* The target's projections of the same 2B images, with no gradient: the EMA network, or in
 * SimSiam mode the online network run again in training mode (byol-pytorch does the same, so
 * its running statistics move twice). Re-running it recomputes bit for bit the activations
 * the backward needs. */
static byol_status target_forward(struct byol_learner *l)
{
    struct byol_net *t = l->target ? l->target : l->online;
    byol_status st = BYOL_OK;
    if (l->target)
        st = byol_net_set_input(t, LEARNER_INPUT, l->images);
    if (st == BYOL_OK)
        st = byol_net_forward(t, 1, l->projection);
    if (st == BYOL_OK)
        st = byol_net_read_output(t, l->projection, l->projections);
    return st;
}

/* The online network's predictions of the N x B local views (after the global views'
 * forward, before the target's: PyTorch's order of module calls, which is the order in which
 * the running statistics move). */
static byol_status local_forward(struct byol_learner *l, const float *local)
{
    byol_status st = byol_net_set_input(l->local, LEARNER_INPUT, local);
    if (st == BYOL_OK)
        st = byol_net_forward(l->local, 1, l->prediction);
    if (st == BYOL_OK)
        st = byol_net_read_output(l->local, l->prediction, l->local_pred);
    return st;
}

byol_status byol_learner_forward_backward_views(struct byol_learner *l, const float *view1,
                                                const float *view2, const float *local, float *loss)
{
    if (!l || !view1 || !view2)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_forward_backward: NULL argument");
    if (l->local && !local)
        return byol_error(BYOL_ERR_INVALID,
                          "learner: local_crops = %d but no local views were given (local = "
                          "NULL; byol_learner_step has none: use byol_learner_step_views)",
                          l->cfg.local_crops);
    size_t half = (size_t)l->batch * l->image_numel;
    memcpy(l->images, view1, half * sizeof(float));
    memcpy(l->images + half, view2, half * sizeof(float));
    l->proj_std = NAN;
    byol_status st = byol_net_set_input(l->online, LEARNER_INPUT, l->images);
    if (st == BYOL_OK)
        st = byol_net_forward(l->online, 1, l->prediction);
    if (st == BYOL_OK)
        st = byol_net_read_output(l->online, l->prediction, l->predictions);
    if (st == BYOL_OK)
        st = projection_std(l);
    if (st == BYOL_OK && l->local)
        st = local_forward(l, local);
    if (st == BYOL_OK)
        st = target_forward(l);
    if (st != BYOL_OK)
        return byol_error(st, "learner: forward: %s", byol_last_error());
    double value = byol_loss(l);
    st = byol_net_backward(l->online, l->prediction, l->dpred);
    /* Into the same gradients: the local network's are the online network's arrays. */
    if (st == BYOL_OK && l->local)
        st = byol_net_backward(l->local, l->prediction, l->local_dpred);
    if (st != BYOL_OK)
        return byol_error(st, "learner: backward: %s", byol_last_error());
    if (l->distributed && (st = dist_sum_f64(&value, 1)) != BYOL_OK)
        return st;
    if (loss)
        *loss = (float)value;
    return BYOL_OK;
}

/* Whether every gradient is finite: x * 0 is NaN exactly when x is not finite, and the sum
 * vectorises where a branch per element would not. */
static int grads_finite(struct byol_learner *l)
{
    const float *g = byol_net_grads(l->online);
    size_t n = byol_net_num_params(l->online);
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += g[i] * 0.0f;
    return acc == 0.0f;
}

byol_status byol_learner_optimizer_step(struct byol_learner *l)
{
    if (!l)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_optimizer_step: NULL learner");
    /* Every process now holds the global gradient, so all take the same step (or all refuse
     * the same non-finite one). */
    byol_status st = l->distributed
                         ? dist_sum_f32(byol_net_grads(l->online), byol_net_num_params(l->online))
                         : BYOL_OK;
    if (st != BYOL_OK)
        return st;
    if (!grads_finite(l))
        return byol_error(BYOL_ERR_NONFINITE, "a gradient is NaN or infinite");
    if (l->frozen_numel)
        frozen_copy(l, 1);
    st = byol_optim_step(l->opt);
    if (l->frozen_numel)
        frozen_copy(l, 0);
    return st;
}

void byol_learner_zero_grad(struct byol_learner *l)
{
    if (l)
        byol_net_zero_grad(l->online);
}

double byol_learner_tau(const struct byol_learner *l)
{
    if (!l)
        return 0.0;
    double base = l->cfg.moving_average_decay;
    int64_t k = byol_optim_steps_done(l->opt), total = l->cfg.optim.total_steps;
    if (l->cfg.tau_schedule != BYOL_TAU_COSINE || total < 1)
        return base;
    if (k > total)
        k = total;
    return 1.0 - (1.0 - base) * (cos(M_PI * (double)k / (double)total) + 1.0) / 2.0;
}

byol_status byol_learner_update_target(struct byol_learner *l)
{
    if (!l)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_update_target: NULL learner");
    if (!l->target)
        return BYOL_OK;
    /* Parameters only: the target's running statistics follow its own forward passes. */
    return byol_backend_ema(l->be, byol_net_params(l->target), byol_net_params(l->online),
                            l->target_params, byol_learner_tau(l));
}

byol_status byol_learner_forward_backward(struct byol_learner *l, const float *view1,
                                          const float *view2, float *loss)
{
    return byol_learner_forward_backward_views(l, view1, view2, NULL, loss);
}

byol_status byol_learner_step_views(struct byol_learner *l, const float *view1, const float *view2,
                                    const float *local, float *loss)
{
    byol_status st = byol_learner_forward_backward_views(l, view1, view2, local, loss);
    if (st == BYOL_OK)
        st = byol_learner_optimizer_step(l);
    if (st != BYOL_OK)
        return st;
    byol_learner_zero_grad(l);
    return byol_learner_update_target(l);
}

byol_status byol_learner_step(struct byol_learner *l, const float *view1, const float *view2,
                              float *loss)
{
    return byol_learner_step_views(l, view1, view2, NULL, loss);
}

int64_t byol_learner_steps_done(const struct byol_learner *l)
{
    return l ? byol_optim_steps_done(l->opt) : 0;
}

/* ---- Embeddings. ---------------------------------------------------------------------- */

/* The online network in inference mode, 2B images at a time. Inference treats every image on
 * its own (batch norm uses running statistics), so a short last chunk is padded with zeros
 * that change nothing else, and no second network is needed: the values are the online
 * network's own. */
static byol_status embed_chunk(struct byol_learner *l, int m, float *projection, float *embedding)
{
    size_t rows = 2 * (size_t)l->batch;
    memset(l->images + (size_t)m * l->image_numel, 0,
           (rows - (size_t)m) * l->image_numel * sizeof(float));
    const char *until = projection ? l->projection : LEARNER_HIDDEN;
    byol_status st = byol_net_set_input(l->online, LEARNER_INPUT, l->images);
    if (st == BYOL_OK)
        st = byol_net_forward(l->online, 0, until);
    if (st == BYOL_OK && embedding) {
        st = byol_net_read_output(l->online, LEARNER_HIDDEN, l->hidden_out);
        memcpy(embedding, l->hidden_out, (size_t)m * l->embedding_dim * sizeof(float));
    }
    if (st == BYOL_OK && projection) {
        st = byol_net_read_output(l->online, l->projection, l->projections);
        memcpy(projection, l->projections, (size_t)m * l->cfg.projection_size * sizeof(float));
    }
    return st;
}

byol_status byol_learner_embed(struct byol_learner *l, const float *images, int n,
                               float *projection, float *embedding)
{
    if (!l || !images || n < 1)
        return byol_error(BYOL_ERR_INVALID, "byol_learner_embed: %s",
                          n < 1 ? "need at least one image" : "NULL argument");
    int chunk = 2 * l->batch;
    for (int start = 0; start < n; start += chunk) {
        int m = n - start < chunk ? n - start : chunk;
        memcpy(l->images, images + (size_t)start * l->image_numel,
               (size_t)m * l->image_numel * sizeof(float));
        byol_status st = embed_chunk(
            l, m, projection ? projection + (size_t)start * l->cfg.projection_size : NULL,
            embedding ? embedding + (size_t)start * l->embedding_dim : NULL);
        if (st != BYOL_OK)
            return byol_error(st, "learner: embed: %s", byol_last_error());
    }
    return BYOL_OK;
}

int byol_learner_embedding_dim(const struct byol_learner *l)
{
    return l ? l->embedding_dim : 0;
}

struct byol_net *byol_learner_online(struct byol_learner *l)
{
    return l ? l->online : NULL;
}

struct byol_net *byol_learner_target(struct byol_learner *l)
{
    return l ? l->target : NULL;
}

struct byol_optim *byol_learner_optim(struct byol_learner *l)
{
    return l ? l->opt : NULL;
}
