/* SPDX-License-Identifier: MIT */
/*
 * mmi_model_ssm.h — the recurrent (state-space) layers of mm_model: their decoding entry
 * points, which model_decode.c lists, so the layer vtable stays as it is for every other kind.
 */
#ifndef MMI_MODEL_SSM_H
#define MMI_MODEL_SSM_H

#include "mmi_model.h"

/* Bytes of decoding state per batch row, and one decoding step: x [batch, in_dim] ->
 * y [batch, out_dim], updating state (batch rows of state_bytes each). scratch is the model's
 * scratch region (sized by the layer for any forward of max_batch x max_seq). */
size_t mmi_mamba_state_bytes(const mmi_layer *l);
int mmi_mamba_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                   void *state, void *scratch);
size_t mmi_s4d_state_bytes(const mmi_layer *l);
int mmi_s4d_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                 void *state, void *scratch);

/* Token rows [B, T, E] (E values at stride ld) -> channel columns [B, E, T], the layout the
 * scan and convolution kernels run on; and back (+= into dst when acc) (layer_cols.c). */
void mmi_rows_to_cols(const float *src, int64_t ld, int64_t B, int64_t T, int64_t E, float *dst);
void mmi_cols_to_rows(const float *src, int64_t B, int64_t T, int64_t E, float *dst, int64_t ld,
                      int acc);

#endif /* MMI_MODEL_SSM_H */
