/* The parts of the metrics writer (core/io/metrics.c) that live in other files: the TensorBoard
 * event file writer (core/io/tb_events.c) and small file helpers. */
#ifndef BYOL_METRICS_INTERNAL_H
#define BYOL_METRICS_INTERNAL_H

#include <stdint.h>

#include "byol/status.h"

struct tb_writer;

/* A new event file in folder `dir` (created if missing), starting with the file_version event
 * and a SessionLog START at resume_step + 1. Messages name the file. */
byol_status tb_writer_open(const char *dir, int64_t resume_step, struct tb_writer **out);
/* One Event with a Summary of n scalar values, flushed. */
byol_status tb_writer_scalars(struct tb_writer *w, int64_t step, double wall_time,
                              const char *const *tags, const float *values, int n);
/* fsync and close; NULL is a no-op. */
void tb_writer_close(struct tb_writer *w);
const char *tb_writer_path(const struct tb_writer *w);

/* Seconds since the Unix epoch. */
double metrics_wall_time(void);

#endif
