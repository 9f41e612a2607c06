/* SPDX-License-Identifier: MIT */
/* curve_svg.c — learning curves as SVG (curve_svg.h). */
#include "curve_svg.h"

#include <math.h>
#include <stdio.h>

enum { LEG_W = 340, LEG_ROW = 18 };

typedef struct frame {
    double W, H, L, R, T, B;
    const curve_plot *pl;
} frame;

static double sx(const frame *f, double x) { return f->L + x / f->pl->xmax * (f->W - f->L - f->R); }

static double sy(const frame *f, double y)
{
    const curve_plot *p = f->pl;
    double c = y < p->ymin ? p->ymin : (y > p->ymax ? p->ymax : y);
    return f->T + (p->ymax - c) / (p->ymax - p->ymin) * (f->H - f->T - f->B);
}

static void axes(FILE *o, const frame *f)
{
    const curve_plot *p = f->pl;
    fprintf(o, "<text x=\"%g\" y=\"18\" font-size=\"14\">%s</text>\n", f->L, p->title);
    int ny = p->yticks > 0 ? p->yticks : 6;
    for (int k = 0; k <= ny; k++) {
        double y = p->ymin + k * (p->ymax - p->ymin) / ny;
        fprintf(o,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>"
                "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%g</text>\n",
                f->L, sy(f, y), f->W - f->R, sy(f, y), f->L - 5, sy(f, y) + 4, y);
    }
    for (int k = 0; k <= 4; k++) {
        double x = p->xmax * k / 4.0;
        fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%g</text>\n", sx(f, x),
                f->H - f->B + 18, x);
    }
    fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">environment steps</text>\n",
            (f->L + f->W - f->R) / 2, f->H - 10);
    fprintf(o,
            "<text transform=\"translate(14 %g) rotate(-90)\" text-anchor=\"middle\">"
            "episode return (sum of rewards)</text>\n",
            (f->T + f->H - f->B) / 2);
    if (p->bar_label)
        fprintf(o,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"green\" "
                "stroke-dasharray=\"6 4\"/>\n",
                f->L, sy(f, p->bar), f->W - f->R, sy(f, p->bar));
}

/* Dots (optional) and the moving average of the last pl->smooth episodes. */
static void series(FILE *o, const frame *f, const curve_series *s)
{
    int w = f->pl->smooth > 0 ? f->pl->smooth : 1;
    for (int i = 0; s->dots && i < s->n; i++)
        fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#88a\"/>\n", sx(f, s->x[i]),
                sy(f, s->y[i]));
    fprintf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s->color);
    for (int i = 0; i < s->n; i++) {
        double sum = 0;
        int k0 = i >= w - 1 ? i - (w - 1) : 0;
        for (int k = k0; k <= i; k++) sum += s->y[k];
        fprintf(o, "%.1f,%.1f ", sx(f, s->x[i]), sy(f, sum / (i - k0 + 1)));
    }
    fprintf(o, "\"/>\n");
}

static void evals(FILE *o, const frame *f, const curve_evals *ev)
{
    for (int i = 0; i < ev->n; i++) {
        double x = sx(f, ev->step[i]), y = sy(f, ev->mean[i]);
        fprintf(o,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#161\"/>"
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"#161\"/>\n",
                x, sy(f, ev->mean[i] + ev->std[i]), x, sy(f, ev->mean[i] - ev->std[i]), x - 3.5,
                y - 3.5);
    }
}

static void legend(FILE *o, const frame *f, const curve_series *s, int ns, const curve_evals *ev)
{
    int rows = ns + (ev != NULL) + (f->pl->bar_label != NULL), r = 0;
    for (int i = 0; i < ns; i++) rows += s[i].dots;
    double x = f->W - f->R - LEG_W - 5, y = f->H - f->B - rows * LEG_ROW - 14;
    if (f->pl->legend_mid) y = (f->T + f->H - f->B - rows * LEG_ROW - 8) / 2;
    fprintf(o,
            "<rect x=\"%g\" y=\"%g\" width=\"%d\" height=\"%d\" fill=\"white\" stroke=\"#bbb\"/>\n",
            x, y, LEG_W, rows * LEG_ROW + 8);
    for (int i = 0; i < ns; i++) {
        double yr = y + 14 + LEG_ROW * r++;
        if (s[i].dots) {
            fprintf(o,
                    "<circle cx=\"%g\" cy=\"%g\" r=\"2.5\" fill=\"#88a\"/><text x=\"%g\" "
                    "y=\"%g\">training episode return</text>\n",
                    x + 14, yr - 4, x + 28, yr);
            yr = y + 14 + LEG_ROW * r++;
        }
        fprintf(o,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                "stroke-width=\"2\"/><text x=\"%g\" y=\"%g\">%s, moving average (%d episodes)"
                "</text>\n",
                x + 6, yr - 4, x + 22, yr - 4, s[i].color, x + 28, yr, s[i].label, f->pl->smooth);
    }
    if (ev) {
        double yr = y + 14 + LEG_ROW * r++;
        fprintf(o,
                "<rect x=\"%g\" y=\"%g\" width=\"7\" height=\"7\" fill=\"#161\"/><text "
                "x=\"%g\" y=\"%g\">deterministic evaluation, mean +- std</text>\n",
                x + 10.5, yr - 8, x + 28, yr);
    }
    if (f->pl->bar_label) {
        double yr = y + 14 + LEG_ROW * r++;
        fprintf(o,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"green\" "
                "stroke-dasharray=\"6 4\"/><text x=\"%g\" y=\"%g\">%s</text>\n",
                x + 6, yr - 4, x + 22, yr - 4, x + 28, yr, f->pl->bar_label);
    }
}

int curve_svg_write(const char *path, const curve_plot *pl, const curve_series *s, int ns,
                    const curve_evals *ev)
{
    frame f = {640, 400, 70, 30, 30, 50, pl};
    FILE *o = fopen(path, "w");
    if (!o) return -1;
    fprintf(o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            f.W, f.H);
    fprintf(o, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    axes(o, &f);
    for (int i = 0; i < ns; i++) series(o, &f, &s[i]);
    if (ev) evals(o, &f, ev);
    legend(o, &f, s, ns, ev);
    fprintf(o, "</svg>\n");
    return fclose(o) == 0 ? 0 : -1;
}
