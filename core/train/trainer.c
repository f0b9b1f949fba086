/* Training and evaluation (include/byol/trainer.h): picks the trainer the config names, opens
 * the session it needs and runs it; and the built-in trainers "byol" and "linear". */
#include <stdio.h>
#include <string.h>

#include "byol/registry.h"
#include "plugin_scope_internal.h"
#include "registry_internal.h"
#include "train_internal.h"

/* ---- the built-in trainers ---------------------------------------------------------------- */

/* byol-pytorch's loop: one learner step per batch, both views, EMA after each step. */
static byol_status byol_loop(const struct byol_host_api *host, const struct byol_train_api *api,
                             struct byol_train_session *s)
{
    (void)host;
    for (int64_t k = api->first_step(s); k < api->total_steps(s); k++) {
        const float *v1, *v2;
        float loss = 0;
        byol_status st = api->views(s, k, &v1, &v2);
        if (st == BYOL_OK)
            st = api->forward_backward(s, v1, v2, &loss);
        if (st == BYOL_OK)
            st = api->optimizer_step(s);
        api->zero_grad(s);
        if (st == BYOL_OK)
            st = api->update_target(s);
        if (st == BYOL_OK)
            st = api->end_step(s, k, loss);
        if (st != BYOL_OK)
            return st;
        if (api->stop_requested(s))
            break;
    }
    return BYOL_OK;
}

/* Linear evaluation of a trained state: kNN and a linear probe on frozen features. */
static byol_status linear_eval(const struct byol_host_api *host, const struct byol_train_api *api,
                               struct byol_train_session *s)
{
    (void)host;
    struct byol_train_eval_report r;
    return api->evaluate(s, 1, &r);
}

static const struct byol_trainer_ops builtin_byol = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_trainer_ops),
    .name = "byol",
    .version = "1.0.0",
    .description = "BYOL training: one learner step per batch of two augmented views",
    .needs = BYOL_TRAINER_NEEDS_DATA,
    .run = byol_loop,
};

static const struct byol_trainer_ops builtin_linear = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_trainer_ops),
    .name = "linear",
    .version = "1.0.0",
    .description = "linear evaluation: kNN and a linear probe on the frozen representation",
    .needs = BYOL_TRAINER_NEEDS_CHECKPOINT,
    .run = linear_eval,
};

const struct byol_trainer_ops *byol_trainer_builtin_byol(void)
{
    return &builtin_byol;
}

const struct byol_trainer_ops *byol_trainer_builtin_linear(void)
{
    return &builtin_linear;
}

/* ---- choosing and running a trainer ------------------------------------------------------- */

/* `key` of `group` is a trainer's name or path, or a group { name = ...; <own settings> }. */
static byol_status find_trainer(struct byol_registry *reg, const struct byol_settings *group,
                                const char *key, const char *def,
                                const struct byol_trainer_ops **ops,
                                const struct byol_settings **own)
{
    const struct byol_settings *node = byol_settings_child(group, key);
    const struct byol_settings *named = group;
    const char *name = NULL;
    *own = NULL;
    if (node && !byol_settings_is_list(node) && byol_settings_child(node, "name")) {
        *own = node;
        named = node;
        key = "name";
    }
    byol_status st = byol_settings_string(named, key, def, &name);
    if (st != BYOL_OK)
        return st;
    if (byol_registry_require(reg, BYOL_PLUGIN_TRAINER, name, (const void **)ops) != BYOL_OK)
        return byol_settings_error(byol_settings_child(named, key), BYOL_ERR_NOT_FOUND, "%s",
                                   byol_last_error());
    return BYOL_OK;
}

/* Open the session the trainer needs, run its check, then (unless check_only) its loop. */
static byol_status train_with(struct byol_backend *be, struct byol_registry *reg,
                              const struct byol_train_options *o,
                              const struct byol_trainer_ops *ops, const struct byol_settings *own,
                              uint32_t extra_needs, int check_only)
{
    struct byol_train_session *s = NULL;
    const struct byol_host_api *host = byol_host_api();
    byol_status st = byol_train_session_open(be, reg, o, ops->needs | extra_needs, own, &s);
    /* A trainer plugin's calls are marked for fault reports; the built-ins are the core's. */
    const char *path = byol_registry_path_of(reg, ops);
    int plugin = path && strcmp(path, "(host)") != 0;
    struct byol_plugin_mark mark = {0};
    if (plugin)
        mark = byol_plugin_enter(path, "trainer", ops->name, "check");
    if (st == BYOL_OK && ops->check)
        st = ops->check(host, byol_train_api(), s);
    if (plugin)
        byol_plugin_leave(mark);
    if (st == BYOL_OK)
        st = byol_train_session_start(s, check_only);
    if (plugin)
        mark = byol_plugin_enter(path, "trainer", ops->name, "run");
    if (st == BYOL_OK && !check_only)
        st = ops->run(host, byol_train_api(), s);
    if (plugin)
        byol_plugin_leave(mark);
    byol_train_session_close(s);
    return st;
}

static byol_status train_entry(struct byol_backend *be, struct byol_registry *reg,
                               const struct byol_train_options *o, int check_only, const char *who)
{
    if (!be || !reg || !o || !o->root)
        return byol_error(BYOL_ERR_INVALID, "%s: NULL argument", who);
    const struct byol_trainer_ops *ops;
    const struct byol_settings *own;
    byol_status st = find_trainer(reg, o->root, "trainer", "byol", &ops, &own);
    if (st == BYOL_OK)
        st = train_with(be, reg, o, ops, own, 0, check_only);
    return st;
}

byol_status byol_train_run(struct byol_backend *be, struct byol_registry *reg,
                           const struct byol_train_options *o)
{
    return train_entry(be, reg, o, 0, "byol_train_run");
}

byol_status byol_train_check(struct byol_backend *be, struct byol_registry *reg,
                             const struct byol_train_options *o)
{
    return train_entry(be, reg, o, 1, "byol_train_check");
}

byol_status byol_train_eval(struct byol_backend *be, struct byol_registry *reg,
                            const struct byol_train_options *o)
{
    if (!be || !reg || !o || !o->root)
        return byol_error(BYOL_ERR_INVALID, "byol_train_eval: NULL argument");
    const struct byol_trainer_ops *ops;
    const struct byol_settings *own;
    byol_status st =
        find_trainer(reg, byol_settings_child(o->root, "eval"), "trainer", "linear", &ops, &own);
    if (st == BYOL_OK)
        st = train_with(be, reg, o, ops, own, BYOL_TRAINER_NEEDS_CHECKPOINT, 0);
    return st;
}
