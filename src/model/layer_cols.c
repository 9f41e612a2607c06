/* SPDX-License-Identifier: MIT */
/* layer_cols.c — the one transpose between a layer's token rows [B, T, E] and the channel
 * columns [B, E, T] the scan and convolution kernels run on, shared by the Mamba and S4D
 * blocks. */
#include "mmi_model_ssm.h"

/* Letters: B batch, T sequence, E channels, ld the stride of a token row (>= E). */

void mmi_rows_to_cols(const float *src, int64_t ld, int64_t B, int64_t T, int64_t E, float *dst)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t e = 0; e < E; e++) dst[(b * E + e) * T + t] = src[(b * T + t) * ld + e];
}

void mmi_cols_to_rows(const float *src, int64_t B, int64_t T, int64_t E, float *dst, int64_t ld,
                      int acc)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t e = 0; e < E; e++) {
                float v = src[(b * E + e) * T + t];
                dst[(b * T + t) * ld + e] = acc ? dst[(b * T + t) * ld + e] + v : v;
            }
}
