/* SPDX-License-Identifier: MIT */
/* policy_rows.c — the six work buffers of mm_policy named by role, one fill function per phase.
 * Letters: N, m, n rows of a batch, minibatch or rollout (all <= maxb); od obs_dim, ad act_dim,
 * K head_dim; every float buffer holds maxb x wide floats, w_dbl maxb x 4 doubles.
 *
 * One phase (act, observe, one algorithm's update) runs at a time, so the buffers are shared
 * between phases and, inside a phase, between roles whose lifetimes do not meet. This file is
 * the one place that says which roles share a buffer:
 *           w_a       w_b              w_c              w_d            w_e          w_f
 * act       obs       y / head         sac_head         -              -            -
 * observe   -         act / head       boot             -              q (QAC)      logits (QAC)
 * pg_grad   -         -                -                -              q (QAC)      logits; ls rows
 * DDPG/TD3  obs, mu   next_obs, dx     obs_act          target_in, da  target_act,  q
 *                                                                      dq
 * SAC       obs       next_obs, dx     obs_act, dhead   head           target_in,   q, dq_min,
 *                                                                      dq, da       alpha rows
 *                                                                      + dx of Q_2
 * A2C..PPO  obs       head             act              logp, dhead    adv, dq      value, dvalue,
 *                                                                                   q (QAC)
 * TRPO      obs       head, value      logp, dvalue     jvp, dhead     -            old_head
 * Roles in one cell are used one after the other; the struct comments in mmi_policy.h say in
 * which order. Rows written by two networks' work at once (policy_par.c) are per network: q, dq
 * and dq_min hold one N-row block per critic, and SAC's second critic puts its input gradient
 * beside da ("+"). A callee that takes two of them asserts that they do not overlap. */
#include "mmi_policy.h"

mmi_act_rows mmi_act_rows_of(mm_policy *p)
{
    mmi_act_rows r;
    r.obs = p->w_a;
    r.y = p->w_b, r.head = p->w_b; /* the off- and on-policy outputs of different policies */
    r.sac_head = p->w_c;
    return r;
}

mmi_observe_rows mmi_observe_rows_of(mm_policy *p)
{
    mmi_observe_rows r;
    r.act = p->w_b, r.head = p->w_b; /* off-policy scaling, on-policy log pi */
    r.boot = p->w_c;
    r.q = p->w_e, r.logits = p->w_f;
    return r;
}

mmi_pg_rows mmi_pg_rows_of(mm_policy *p)
{
    mmi_pg_rows r;
    r.ls_in = p->w_f, r.ls_out = p->w_f + 1, r.ls_dy = p->w_f + 1 + p->act_dim;
    if (p->sde.F) /* F x act_dim log stds: rows of their own */
        r.ls_in = p->sde.ls_buf, r.ls_out = r.ls_in + 1, r.ls_dy = r.ls_out + p->n_ls;
    r.q = p->w_e, r.logits = p->w_f; /* mmi_last_values: never with the log-std rows */
    return r;
}

mmi_ddpg_rows mmi_ddpg_rows_of(mm_policy *p, int64_t N)
{
    mmi_ddpg_rows r;
    MMI_ASSERT(N >= 1 && N <= p->maxb);
    r.obs = p->w_a, r.mu = p->w_a + N * p->obs_dim; /* mu beside s: from before the targets */
    r.next_obs = p->w_b, r.dx = p->w_b;             /* dx: the actor step, after the targets */
    r.obs_act = p->w_c;
    r.target_in = p->w_d, r.da = p->w_d;  /* da after the targets */
    r.target_act = p->w_e, r.dq = p->w_e; /* dq after the targets */
    r.q = p->w_f;
    r.rd = p->w_dbl, r.y = p->w_dbl + 2 * N;
    return r;
}

mmi_sac_rows mmi_sac_rows_of(mm_policy *p, int64_t N)
{
    mmi_sac_rows r;
    MMI_ASSERT(N >= 1 && N <= p->maxb);
    r.obs = p->w_a;
    r.next_obs = p->w_b, r.dx = p->w_b;   /* dx: the actor step, after the targets */
    r.obs_act = p->w_c, r.dhead = p->w_c; /* dhead once the critics have read [s, a~] */
    r.head = p->w_d;                      /* of s' in the targets, then of s */
    r.target_in = p->w_e, r.dq = p->w_e, r.da = p->w_e; /* one after the other */
    r.q = p->w_f, r.dq_min = p->w_f + 2 * N;            /* q holds Q_1, Q_2 in the actor step */
    r.alpha_in = p->w_f, r.alpha_out = p->w_f + 1, r.alpha_dy = p->w_f + 2; /* after q */
    r.rd = p->w_dbl, r.y = p->w_dbl + 2 * N, r.min_q = p->w_dbl + 2 * N;    /* min_q after y */
    r.logp = p->w_dbl + 3 * N;
    return r;
}

mmi_sacd_rows mmi_sacd_rows_of(mm_policy *p, int64_t N)
{
    mmi_sacd_rows r;
    MMI_ASSERT(N >= 1 && N <= p->maxb);
    r.obs = p->w_a;
    r.next_obs = p->w_b;
    r.dlogits = p->w_c;
    r.logits = p->w_d;
    r.q = p->w_e;
    r.q2 = p->w_f, r.dq = p->w_f; /* dq only in the critic steps, which read no q2 */
    r.rd = p->w_dbl, r.y = p->w_dbl + 2 * N;
    return r;
}

mmi_onpolicy_rows mmi_onpolicy_rows_of(mm_policy *p, int64_t m)
{
    mmi_onpolicy_rows r;
    MMI_ASSERT(m >= 1 && m <= p->maxb);
    r.obs = p->w_a;
    r.head = p->w_b;
    r.act = p->w_c;
    r.logp = p->w_d, r.dhead = p->w_d; /* dhead once the coefficients are formed */
    r.adv = p->w_e, r.dq = p->w_e;     /* QAC has no advantages */
    r.value = p->w_f, r.dvalue = p->w_f + m, r.q = p->w_f; /* QAC has no value net */
    r.row = p->w_dbl;
    return r;
}

mmi_trpo_rows mmi_trpo_rows_of(mm_policy *p)
{
    mmi_trpo_rows r;
    r.obs = p->w_a;
    r.head = p->w_b, r.value = p->w_b;  /* value: the critic epochs, after the policy step */
    r.logp = p->w_c, r.dvalue = p->w_c; /* likewise */
    r.jvp = p->w_d, r.dhead = p->w_d;   /* the Fisher product, the gradients: one at a time */
    r.old_head = p->w_f;
    return r;
}
