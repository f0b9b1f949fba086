/* Pictures of a run: curves drawn into a PNG with libpng and no plotting program, for a server
 * without TensorBoard or gnuplot. `byolctl plot METRICS OUT.png` and the curves.png that
 * `byolctl run` writes beside its checkpoints both come from here. */
#ifndef BYOL_PLOT_H
#define BYOL_PLOT_H

#include <stddef.h>

#include "byol/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A curve of n points (x[i], y[i]); a NaN y leaves a gap. */
struct byol_plot_series {
    const char *label;
    const double *x, *y;
    size_t n;
};

#define BYOL_PLOT_MAX_SERIES 3

/* One chart: a title and up to BYOL_PLOT_MAX_SERIES curves on shared axes. */
struct byol_plot_panel {
    const char *title;
    struct byol_plot_series series[BYOL_PLOT_MAX_SERIES];
    int n_series;
    int y_from_zero; /* 1: the y axis starts at 0 (a statistic whose size matters) */
};

/* Draw the panels (1..4, in a 2 x 2 grid, or one row for 1 or 2) with labelled axes and ticks
 * and write the picture to `path` as an RGB PNG, atomically (a temporary file renamed over
 * it). A panel without any finite point says "no data". Errors name the file. */
BYOL_API byol_status byol_plot_write_png(const char *path, const char *xlabel,
                                         const struct byol_plot_panel *panels, int n_panels);

/* The curves of a metrics file as byolctl run writes it (CSV with a header, or JSON lines;
 * see the README's Metrics files): loss (each step, and its running mean), the learning rate,
 * kNN top-1 accuracy, and the collapse statistic (projection std) when the file has them,
 * against the step, written as byol_plot_write_png does. Errors name the file and line. */
BYOL_API byol_status byol_plot_metrics(const char *metrics_path, const char *png_path);

#ifdef __cplusplus
}
#endif
#endif
