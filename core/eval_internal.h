/* What core/eval.c (the evaluator) and core/eval_data.c (eval transform, splits, embedding)
 * share: the eval group's key check and a split's transformed pixels (the raw-pixel baseline). */
#ifndef BYOL_CORE_EVAL_INTERNAL_H
#define BYOL_CORE_EVAL_INTERNAL_H

#include "byol/eval.h"
#include "byol/settings.h"

/* Check the eval group's keys against its format's (mock is refused: it has no labels) and
 * return the format ("idx" when unset). Errors as "FILE:LINE: eval.KEY: ...". */
byol_status eval_check_group(const struct byol_settings *eval, const char **format);

/* 1 for the formats whose labels come from a separate setting (idx, npy). */
int eval_format_has_label_files(const char *format);

/* The values per image that transform `t` makes (C x H x W). */
size_t eval_transform_numel(const struct byol_augment_pipeline *t);

/* Every image of `ds` through `transform` (on `pool`'s threads), in dataset order, into out
 * (count x eval_transform_numel): what byol_eval_embed_dataset gives the network, drawn from
 * the same streams. BYOL_ERR_SHAPE when the transform does not take ds's images. */
byol_status eval_transform_dataset(const struct byol_dataset *ds,
                                   const struct byol_augment_pipeline *transform,
                                   struct byol_augment_pool *pool, float *out);

#endif
