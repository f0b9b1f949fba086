/* The top of the core: a new registry, handed the host table and the ops sizes this host
 * knows, holding what the core provides itself (the `layers` encoder and the `byol` and
 * `linear` trainers, with the path "(host)"), registered like any plugin's ops. */
#include "byol/augment.h"
#include "byol/backend.h"
#include "byol/encoder.h"
#include "byol/registry.h"
#include "byol/trainer.h"
#include "encoder_layers.h"
#include "registry_internal.h"
#include "train_internal.h"

static const struct byol_registry_kinds host_kinds = {
    .ops_size =
        {
            [BYOL_PLUGIN_BACKEND] = sizeof(struct byol_backend_ops),
            [BYOL_PLUGIN_ENCODER] = sizeof(struct byol_encoder_ops),
            [BYOL_PLUGIN_AUGMENT] = sizeof(struct byol_augment_ops),
            [BYOL_PLUGIN_TRAINER] = sizeof(struct byol_trainer_ops),
        },
};

static byol_status host_add_builtins(struct byol_registry *reg)
{
    byol_status st =
        byol_registry_register_ops(reg, BYOL_PLUGIN_ENCODER, byol_encoder_layers_ops());
    if (st == BYOL_OK)
        st = byol_registry_register_ops(reg, BYOL_PLUGIN_TRAINER, byol_trainer_builtin_byol());
    if (st == BYOL_OK)
        st = byol_registry_register_ops(reg, BYOL_PLUGIN_TRAINER, byol_trainer_builtin_linear());
    return st;
}

byol_status byol_registry_create(struct byol_registry **out)
{
    if (!out)
        return byol_error(BYOL_ERR_INVALID, "byol_registry_create: NULL argument");
    byol_status st = byol_registry_create_empty(byol_host_api(), &host_kinds, out);
    if (st == BYOL_OK) {
        st = host_add_builtins(*out);
        if (st != BYOL_OK) {
            byol_registry_free(*out);
            *out = NULL;
        }
    }
    return st;
}
