/* An example trainer, built out of tree against the installed byol-c headers:
 * `trainer = { name = "lazy_target"; target_every = 4; };` runs BYOL's loop but moves the
 * target network (the EMA) only every `target_every` steps, a schedule byol-pytorch's loop
 * cannot express without editing it. With target_every = 1 it is the built-in "byol". */
#include <byol/trainer.h>

static byol_status lazy_read(const struct byol_host_api *host, const struct byol_train_api *api,
                             struct byol_train_session *s, int64_t *every)
{
    static const char *const keys[] = {"name", "target_every", NULL};
    const struct byol_settings *own = api->own_settings(s);
    byol_status st = host->setting_check_keys(own, keys);
    if (st == BYOL_OK)
        st = host->setting_int(own, "target_every", 1, every);
    if (st == BYOL_OK && *every < 1)
        return host->setting_error(host->setting_child(own, "target_every"), BYOL_ERR_INVALID,
                                   "must be >= 1, got %lld", (long long)*every);
    return st;
}

static byol_status lazy_check(const struct byol_host_api *host, const struct byol_train_api *api,
                              struct byol_train_session *s)
{
    int64_t every;
    return lazy_read(host, api, s, &every);
}

static byol_status lazy_run(const struct byol_host_api *host, const struct byol_train_api *api,
                            struct byol_train_session *s)
{
    int64_t every;
    byol_status st = lazy_read(host, api, s, &every);
    for (int64_t k = api->first_step(s); st == BYOL_OK && k < api->total_steps(s); k++) {
        const float *v1, *v2;
        float loss = 0;
        st = api->views(s, k, &v1, &v2);
        if (st == BYOL_OK)
            st = api->forward_backward(s, v1, v2, &loss);
        if (st == BYOL_OK)
            st = api->optimizer_step(s);
        api->zero_grad(s);
        /* The step count decides, not a counter of this run: a resumed run keeps the rhythm. */
        if (st == BYOL_OK && (k + 1) % every == 0)
            st = api->update_target(s);
        if (st == BYOL_OK)
            st = api->end_step(s, k, loss);
        if (st == BYOL_OK && api->stop_requested(s))
            break;
    }
    return st;
}

static const struct byol_trainer_ops lazy_ops = {
    .abi_version = BYOL_ABI_VERSION,
    .struct_size = sizeof(struct byol_trainer_ops),
    .name = "lazy_target",
    .version = "1.0.0",
    .description = "BYOL with the target network updated every target_every steps",
    .needs = BYOL_TRAINER_NEEDS_DATA,
    .check = lazy_check,
    .run = lazy_run,
};

BYOL_PLUGIN_INIT(h, reg)
{
    byol_status st = byol_plugin_check_host(h, "lazy_target", BYOL_HOST_NEEDS(setting_error));
    if (st != BYOL_OK)
        return st;
    return h->register_ops(reg, BYOL_PLUGIN_TRAINER, &lazy_ops);
}
