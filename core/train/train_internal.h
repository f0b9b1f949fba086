/* The session behind the trainer interface (include/byol/trainer.h): what core/train/trainer.c and
 * core/train/train_session.c share. Not installed. */
#ifndef BYOL_TRAIN_INTERNAL_H
#define BYOL_TRAIN_INTERNAL_H

#include "byol/learner.h"
#include "byol/trainer.h"

/* Prepare a session for a trainer with `needs` (enum byol_trainer_needs): settings, networks,
 * weights, the state to start from, and with BYOL_TRAINER_NEEDS_DATA the data and pipelines.
 * `own` is the trainer's own settings group (may be NULL). On failure *out is NULL and the
 * message is set. */
byol_status byol_train_session_open(struct byol_backend *be, struct byol_registry *reg,
                                    const struct byol_train_options *o, uint32_t needs,
                                    const struct byol_settings *own,
                                    struct byol_train_session **out);
/* After the trainer's check: take the config's digest (every setting has been read by now),
 * load the state to start from (refusing a --resume checkpoint of another config), and open
 * the metrics files (with check_only, only check their settings). */
byol_status byol_train_session_start(struct byol_train_session *s, int check_only);
/* The session's learner and the settings it was made from (borrowed). */
struct byol_learner *byol_train_session_learner(struct byol_train_session *s);
const struct byol_learner_config *
byol_train_session_learner_config(const struct byol_train_session *s);
/* A non-finite feature met while evaluating a checkpoint: the message names the checkpoint
 * (or "the initial weights"); any other status is returned as it is. */
byol_status byol_train_session_blame(const struct byol_train_session *s, byol_status st);
/* Waits for a batch still being prepared, then frees everything. NULL is a no-op. */
void byol_train_session_close(struct byol_train_session *s);

/* The built-in trainers, registered by the registry like a plugin's: "byol" and "linear". */
const struct byol_trainer_ops *byol_trainer_builtin_byol(void);
const struct byol_trainer_ops *byol_trainer_builtin_linear(void);

#endif
