/* Training metrics: one row of scalars per step, written to a CSV or JSON-lines file and to a
 * TensorBoard event file, as the config's `metrics` group says. */
#ifndef BYOL_METRICS_H
#define BYOL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "byol/settings.h"
#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One step's scalars. A NAN value is "not measured at this step" (knn_top1 between kNN
 * evaluations): an empty CSV cell, a key left out of the JSON line and no TensorBoard value. */
struct byol_metrics_row {
    int64_t step;        /* steps done, 1.. */
    double loss;         /* of this step */
    double lr;           /* used by this step */
    double tau;          /* EMA decay after this step */
    double images_per_s; /* images (one view each) per second since the run began */
    double elapsed_s;    /* seconds since the run began */
    double knn_top1;     /* kNN top-1 accuracy in [0, 1], or NAN */
    /* Appended: the collapse monitor. proj_std: byol_learner_projection_std of this step (NAN:
     * not measured); eff_rank: the representation's effective rank at a kNN check
     * (byol_evaluator_knn_rank), else NAN. A caller that leaves them out of an initialiser
     * writes 0: set them (NAN when there is nothing to say). */
    double proj_std;
    double eff_rank;
};

struct byol_metrics;

/* Open what the config's top-level `metrics` group names (the whole config is passed, since
 * the kNN column depends on eval.every):
 *   metrics = { file = "metrics.csv"; format = "csv" | "jsonl"; tensorboard = "runs"; };
 * file: ".csv" -> CSV with the header step,loss,lr,tau,images_per_s,elapsed_s,proj_std or,
 * when eval.every > 0, step,loss,lr,tau,images_per_s,elapsed_s,knn_top1,proj_std,eff_rank;
 * ".jsonl" -> one JSON object per line; `format` overrides the extension. tensorboard: a
 * folder that gets a new event file events.out.tfevents.<unix time>.<hostname>.byolc (tags
 * loss, lr, tau, images_per_s, knn_top1, proj_std, eff_rank). Paths are relative to the working
 * directory; missing folders are created.
 *
 * resume_step 0: a fresh run; the file is replaced when the first row is logged: until then
 * rows go to a temporary file beside it (<file>.tmp.XXXXXX, removed by byol_metrics_close when
 * no row came), so that an earlier run's file stays whole when this run fails before its first
 * step. (A path that is no regular file, like /dev/null, is written to directly.)
 * resume_step N > 0: the run continues from step N. The file must be one this writer wrote: a
 * CSV's first line is a metrics header and every other line a row that parses; else it fails
 * (BYOL_ERR_FORMAT, naming the file and the line; likewise a path that is no regular file)
 * and the file is left as it was. Rows the file holds for steps after N (left by the
 * interrupted run), and a torn last line, are dropped by rewriting the file atomically, then
 * rows are appended (a CSV keeps its one header and its columns, with or without knn_top1,
 * whatever eval.every says now, and a file from before proj_std and eff_rank, with the header
 * step,...,elapsed_s[,knn_top1], keeps those columns); no file, or nothing left of it, is a new
 * file as in a fresh run. Each event file starts with a "session start" at step N + 1, which tells
 * TensorBoard to forget what older files in the folder hold from that step on (the interrupted
 * run's rows after N; all of an older run's).
 *
 * No metrics group: *out = NULL and BYOL_OK; every call below accepts NULL. Errors carry the
 * setting's file:line. */
BYOL_API byol_status byol_metrics_open(const struct byol_settings *root, int64_t resume_step,
                                       struct byol_metrics **out);
/* The settings checks of byol_metrics_open without touching any file (for byolctl check). */
BYOL_API byol_status byol_metrics_check(const struct byol_settings *root);
/* Append one row to each output, flushed to the OS before returning, so a crash loses at
 * most the row being written (fsync'd only at close). A knn_top1 value reaches a CSV only when
 * it has that column. Fails (BYOL_ERR_IO, naming the file) when a write fails. Not for
 * concurrent calls on one handle. */
BYOL_API byol_status byol_metrics_log(struct byol_metrics *m, const struct byol_metrics_row *row);
/* fsync and close the outputs; NULL is a no-op. */
BYOL_API void byol_metrics_close(struct byol_metrics *m);
/* The metrics file's path once its first row is in (CSV or JSON lines), else NULL (no file,
 * only TensorBoard, or NULL m). */
BYOL_API const char *byol_metrics_table_path(const struct byol_metrics *m);

/* CRC-32C (Castagnoli, the TFRecord checksum) of n bytes, continuing from `crc` (0 to start):
 * byol_crc32c(0, "123456789", 9) == 0xE3069283. */
BYOL_API uint32_t byol_crc32c(uint32_t crc, const void *data, size_t n);

/* Before a run's first step: the settings checks of byol_metrics_open, then whether each
 * output can be written, leaving nothing behind: metrics.file must not be a folder, and its
 * folder (made as byol_metrics_open makes it, and removed again when it was made here) must
 * take a new file: a probe file is created there and removed; metrics.tensorboard, a folder,
 * likewise. Errors carry the setting's file:line: "run.cfg:9: metrics.file: out: cannot write
 * there: Not a directory". No metrics group: BYOL_OK. */
BYOL_API byol_status byol_metrics_probe(const struct byol_settings *root);

#ifdef __cplusplus
}
#endif
#endif
