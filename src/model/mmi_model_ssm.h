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
int mmi_mamba_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                   float *y, void *state, void *scratch);
size_t mmi_s4d_state_bytes(const mmi_layer *l);
int mmi_s4d_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                 void *state, void *scratch);

#endif /* MMI_MODEL_SSM_H */
