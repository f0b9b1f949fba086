/* What core/eval.c (the evaluator) and core/eval_data.c (eval transform, splits, embedding)
 * share: the eval group's key check. */
#ifndef BYOL_CORE_EVAL_INTERNAL_H
#define BYOL_CORE_EVAL_INTERNAL_H

#include "byol/eval.h"
#include "byol/settings.h"

/* Check the eval group's keys against its format's (mock is refused: it has no labels) and
 * return the format ("idx" when unset). Errors as "FILE:LINE: eval.KEY: ...". */
byol_status eval_check_group(const struct byol_settings *eval, const char **format);

/* 1 for the formats whose labels come from a separate setting (idx, npy). */
int eval_format_has_label_files(const char *format);

#endif
