/* The TensorBoard event file writer (tb_events.c), which the metrics writer (metrics.c) feeds
 * when metrics.tensorboard names a folder. */
#ifndef BYOL_TB_EVENTS_INTERNAL_H
#define BYOL_TB_EVENTS_INTERNAL_H

#include <stdint.h>

#include "byol/status.h"

struct tb_writer;

/* A new event file in folder `dir` (created if missing), starting with the file_version event
 * and a SessionLog START at resume_step + 1. Messages name the file. */
byol_status tb_writer_open(const char *dir, int64_t resume_step, struct tb_writer **out);
/* One Event with a Summary of n scalar values, stamped with the wall clock, flushed. */
byol_status tb_writer_scalars(struct tb_writer *w, int64_t step, const char *const *tags,
                              const float *values, int n);
/* fsync and close; NULL is a no-op. */
void tb_writer_close(struct tb_writer *w);
const char *tb_writer_path(const struct tb_writer *w);

#endif
