/* SPDX-License-Identifier: MIT */
/*
 * bench_main.c — runs the benchmark suites (all, or those whose name contains argv[1]) and
 * prints, in Markdown, the machine and peak lines and then one table per suite with its notes.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

typedef struct bench_suite {
    const char *name;
    void (*fn)(void);
} bench_suite;

static const bench_suite g_suites[] = {
    {"gemm", bench_gemm}, {"model", bench_model}, {"loss", bench_loss},
    {"ssm", bench_ssm},   {"attn", bench_attn},   {"rl", bench_rl},
};

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int ran = 0;
    bench_machine_print();
    bench_peak_print();
    if (bench_jemalloc_lib())
        printf("PyTorch peers run twice: with freed memory retained (LD_PRELOAD=%s, "
               "MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1; the ratio uses this run) and "
               "with glibc malloc\n",
               bench_jemalloc_lib());
    for (size_t i = 0; i < sizeof g_suites / sizeof g_suites[0]; i++) {
        if (filter && !strstr(g_suites[i].name, filter)) continue;
        printf("\n### %s\n\n", g_suites[i].name);
        printf("| %-24s | %-18s | %-24s | %-26s | %-24s | %-24s | %5s |\n", "case", "shape",
               "libmm", "peer", "peer (retained)", "peer (glibc)", "ratio");
        printf("|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------", "--------------------",
               "--------------------------", "----------------------------",
               "--------------------------", "--------------------------", "------:");
        g_suites[i].fn();
        bench_flush_notes();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "bench: no suite matches \"%s\"\n", filter);
        return 1;
    }
    /* tools/bench_report.py writes a run into the docs only when this line closes it: a run
     * that stopped part-way (a suite exits on error) must not replace the tables */
    printf("\nbench: complete, %d suite%s\n", ran, ran > 1 ? "s" : "");
    return 0;
}
