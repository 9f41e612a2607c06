/* SPDX-License-Identifier: MIT */
/* curve_svg.h — learning curves as SVG for the examples and benchmarks (examples/demo.c,
 * bench/rl_memory.c): per series the training episode returns (optional dots) and their moving
 * average, optional deterministic evaluations with +-1 std bars, a dashed bar line, axis labels
 * and a legend. Plain C11 and stdio; no allocation. */
#ifndef CURVE_SVG_H
#define CURVE_SVG_H

typedef struct curve_series {
    const char *label; /* legend text of the moving average */
    const char *color; /* SVG colour of the line (and dots) */
    const double *x;   /* environment step at which each episode ended */
    const double *y;   /* its return */
    int n;             /* episodes */
    int dots;          /* 1: every episode as a dot as well */
} curve_series;

typedef struct curve_evals {
    int n;
    const double *step, *mean, *std;
} curve_evals;

typedef struct curve_plot {
    const char *title;
    double xmax, ymin, ymax; /* axes: steps 0..xmax, returns ymin..ymax */
    double bar;              /* dashed line at this return (drawn when bar_label is set) */
    const char *bar_label;   /* e.g. "bar: return -200", or NULL */
    int smooth;              /* moving-average window in episodes */
    int yticks;              /* divisions of the return axis (0: 6) */
    int legend_mid;          /* 1: legend at mid-height (0: above the bottom axis) */
} curve_plot;

/* Writes the plot of ns series (and evals when ev is not NULL) to path. 0 on success, -1 when
 * the file cannot be written. */
int curve_svg_write(const char *path, const curve_plot *pl, const curve_series *s, int ns,
                    const curve_evals *ev);

#endif
