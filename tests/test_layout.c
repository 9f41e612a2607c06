/* SPDX-License-Identifier: MIT */
/* test_layout.c — pins the x86_64 (LP64) layout of every public struct of mm.h: sizeof and the
 * offsetof of each field of mm_allocator and of the options / inputs / gradients structs.
 *
 * Why: these structs cross the ABI boundary by value layout (struct_size versioning, FFI
 * bindings such as bindings/python/libmm declare them field by field). The contract is that
 * fields are only ever APPENDED: an existing offset never moves and sizeof only grows. When
 * this test fails, either a field was inserted, removed, reordered or retyped — a break of the
 * ABI to undo — or a field was appended at the end, in which case update the pins below
 * deliberately (new PIN lines and the new PIN_SIZE), together with the Python ctypes
 * declarations and docs/FFI.md. The pins were generated from the header, not guessed.
 * Other data models (ILP32, LLP64) have other numbers; the test only runs on LP64 x86_64. */
#include "runner.h"

#include <stddef.h>

#define PIN_SIZE(type, n)     CHECK_EQ_I64(sizeof(type), n)
#define PIN(type, field, off) CHECK_EQ_I64(offsetof(type, field), off)

static void test_struct_layout(void)
{
#if defined(__x86_64__) && defined(__LP64__)
    PIN_SIZE(mm_allocator, 32);
    PIN(mm_allocator, struct_size, 0);
    PIN(mm_allocator, reserved0, 4);
    PIN(mm_allocator, alloc_fn, 8);
    PIN(mm_allocator, free_fn, 16);
    PIN(mm_allocator, ud, 24);
    PIN_SIZE(mm_model_opts, 72);
    PIN(mm_model_opts, struct_size, 0);
    PIN(mm_model_opts, reserved0, 4);
    PIN(mm_model_opts, alloc, 8);
    PIN(mm_model_opts, input_dim, 16);
    PIN(mm_model_opts, max_batch, 24);
    PIN(mm_model_opts, max_seq, 32);
    PIN(mm_model_opts, seed, 40);
    PIN(mm_model_opts, n_threads, 48);
    PIN(mm_model_opts, reserved1, 52);
    PIN(mm_model_opts, err_buf, 56);
    PIN(mm_model_opts, err_buf_size, 64);
    PIN_SIZE(mm_loss_opts, 88);
    PIN(mm_loss_opts, struct_size, 0);
    PIN(mm_loss_opts, reserved0, 4);
    PIN(mm_loss_opts, alloc, 8);
    PIN(mm_loss_opts, kind, 16);
    PIN(mm_loss_opts, n_threads, 20);
    PIN(mm_loss_opts, max_batch, 24);
    PIN(mm_loss_opts, max_dim, 32);
    PIN(mm_loss_opts, max_queue, 40);
    PIN(mm_loss_opts, tile, 48);
    PIN(mm_loss_opts, group_size, 56);
    PIN(mm_loss_opts, seed, 64);
    PIN(mm_loss_opts, err_buf, 72);
    PIN(mm_loss_opts, err_buf_size, 80);
    PIN_SIZE(mm_attn_opts, 144);
    PIN(mm_attn_opts, struct_size, 0);
    PIN(mm_attn_opts, reserved0, 4);
    PIN(mm_attn_opts, alloc, 8);
    PIN(mm_attn_opts, kind, 16);
    PIN(mm_attn_opts, feature_map, 20);
    PIN(mm_attn_opts, causal, 24);
    PIN(mm_attn_opts, normalize, 28);
    PIN(mm_attn_opts, d_head, 32);
    PIN(mm_attn_opts, dv, 40);
    PIN(mm_attn_opts, n_heads, 48);
    PIN(mm_attn_opts, max_batch, 56);
    PIN(mm_attn_opts, max_seq, 64);
    PIN(mm_attn_opts, chunk, 72);
    PIN(mm_attn_opts, sparse_pattern, 80);
    PIN(mm_attn_opts, gate, 84);
    PIN(mm_attn_opts, window, 88);
    PIN(mm_attn_opts, stride, 96);
    PIN(mm_attn_opts, n_features, 104);
    PIN(mm_attn_opts, seed, 112);
    PIN(mm_attn_opts, n_threads, 120);
    PIN(mm_attn_opts, reserved1, 124);
    PIN(mm_attn_opts, err_buf, 128);
    PIN(mm_attn_opts, err_buf_size, 136);
    PIN_SIZE(mm_ssm_opts, 112);
    PIN(mm_ssm_opts, struct_size, 0);
    PIN(mm_ssm_opts, reserved0, 4);
    PIN(mm_ssm_opts, alloc, 8);
    PIN(mm_ssm_opts, kind, 16);
    PIN(mm_ssm_opts, n_threads, 20);
    PIN(mm_ssm_opts, d_inner, 24);
    PIN(mm_ssm_opts, d_state, 32);
    PIN(mm_ssm_opts, head_dim, 40);
    PIN(mm_ssm_opts, n_groups, 48);
    PIN(mm_ssm_opts, max_batch, 56);
    PIN(mm_ssm_opts, max_seq, 64);
    PIN(mm_ssm_opts, chunk, 72);
    PIN(mm_ssm_opts, flags, 80);
    PIN(mm_ssm_opts, reserved1, 84);
    PIN(mm_ssm_opts, seed, 88);
    PIN(mm_ssm_opts, err_buf, 96);
    PIN(mm_ssm_opts, err_buf_size, 104);
    PIN_SIZE(mm_ssm_inputs, 136);
    PIN(mm_ssm_inputs, struct_size, 0);
    PIN(mm_ssm_inputs, reserved0, 4);
    PIN(mm_ssm_inputs, u, 8);
    PIN(mm_ssm_inputs, delta, 16);
    PIN(mm_ssm_inputs, A, 24);
    PIN(mm_ssm_inputs, B, 32);
    PIN(mm_ssm_inputs, C, 40);
    PIN(mm_ssm_inputs, D, 48);
    PIN(mm_ssm_inputs, z, 56);
    PIN(mm_ssm_inputs, delta_bias, 64);
    PIN(mm_ssm_inputs, init_state, 72);
    PIN(mm_ssm_inputs, log_dt, 80);
    PIN(mm_ssm_inputs, A_real, 88);
    PIN(mm_ssm_inputs, A_imag, 96);
    PIN(mm_ssm_inputs, P, 104);
    PIN(mm_ssm_inputs, nu_log, 112);
    PIN(mm_ssm_inputs, theta_log, 120);
    PIN(mm_ssm_inputs, gamma_log, 128);
    PIN_SIZE(mm_ssm_grads, 136);
    PIN(mm_ssm_grads, struct_size, 0);
    PIN(mm_ssm_grads, reserved0, 4);
    PIN(mm_ssm_grads, du, 8);
    PIN(mm_ssm_grads, ddelta, 16);
    PIN(mm_ssm_grads, dA, 24);
    PIN(mm_ssm_grads, dB, 32);
    PIN(mm_ssm_grads, dC, 40);
    PIN(mm_ssm_grads, dD, 48);
    PIN(mm_ssm_grads, dz, 56);
    PIN(mm_ssm_grads, ddelta_bias, 64);
    PIN(mm_ssm_grads, dinit_state, 72);
    PIN(mm_ssm_grads, dlog_dt, 80);
    PIN(mm_ssm_grads, dA_real, 88);
    PIN(mm_ssm_grads, dA_imag, 96);
    PIN(mm_ssm_grads, dP, 104);
    PIN(mm_ssm_grads, dnu_log, 112);
    PIN(mm_ssm_grads, dtheta_log, 120);
    PIN(mm_ssm_grads, dgamma_log, 128);
    PIN_SIZE(mm_policy_opts, 496);
    PIN(mm_policy_opts, struct_size, 0);
    PIN(mm_policy_opts, reserved0, 4);
    PIN(mm_policy_opts, alloc, 8);
    PIN(mm_policy_opts, algo, 16);
    PIN(mm_policy_opts, n_threads, 20);
    PIN(mm_policy_opts, seed, 24);
    PIN(mm_policy_opts, obs_dim, 32);
    PIN(mm_policy_opts, act_dim, 40);
    PIN(mm_policy_opts, n_actions, 48);
    PIN(mm_policy_opts, act_low, 56);
    PIN(mm_policy_opts, act_high, 64);
    PIN(mm_policy_opts, n_agents, 72);
    PIN(mm_policy_opts, n_hidden, 80);
    PIN(mm_policy_opts, activation, 84);
    PIN(mm_policy_opts, hidden, 88);
    PIN(mm_policy_opts, gamma, 120);
    PIN(mm_policy_opts, lr_actor, 128);
    PIN(mm_policy_opts, lr_critic, 136);
    PIN(mm_policy_opts, max_grad_norm, 144);
    PIN(mm_policy_opts, norm_obs, 152);
    PIN(mm_policy_opts, reserved1, 156);
    PIN(mm_policy_opts, clip_obs, 160);
    PIN(mm_policy_opts, buffer_size, 168);
    PIN(mm_policy_opts, batch_size, 176);
    PIN(mm_policy_opts, learning_starts, 184);
    PIN(mm_policy_opts, train_freq, 192);
    PIN(mm_policy_opts, gradient_steps, 200);
    PIN(mm_policy_opts, tau, 208);
    PIN(mm_policy_opts, noise, 216);
    PIN(mm_policy_opts, policy_delay, 220);
    PIN(mm_policy_opts, noise_sigma, 224);
    PIN(mm_policy_opts, noise_theta, 232);
    PIN(mm_policy_opts, noise_dt, 240);
    PIN(mm_policy_opts, target_noise, 248);
    PIN(mm_policy_opts, target_noise_clip, 256);
    PIN(mm_policy_opts, n_critics, 264);
    PIN(mm_policy_opts, n_epochs, 268);
    PIN(mm_policy_opts, n_steps, 272);
    PIN(mm_policy_opts, gae_lambda, 280);
    PIN(mm_policy_opts, ent_coef, 288);
    PIN(mm_policy_opts, vf_coef, 296);
    PIN(mm_policy_opts, clip_range, 304);
    PIN(mm_policy_opts, clip_range_vf, 312);
    PIN(mm_policy_opts, normalize_advantage, 320);
    PIN(mm_policy_opts, use_rmsprop, 324);
    PIN(mm_policy_opts, log_std_init, 328);
    PIN(mm_policy_opts, adam_eps, 336);
    PIN(mm_policy_opts, linear_decay_steps, 344);
    PIN(mm_policy_opts, target_kl, 352);
    PIN(mm_policy_opts, cg_damping, 360);
    PIN(mm_policy_opts, cg_max_steps, 368);
    PIN(mm_policy_opts, ls_max_iter, 372);
    PIN(mm_policy_opts, ls_decay, 376);
    PIN(mm_policy_opts, err_buf, 384);
    PIN(mm_policy_opts, err_buf_size, 392);
    PIN(mm_policy_opts, norm_reward, 400); /* since 0.2 */
    PIN(mm_policy_opts, reserved2, 404);
    PIN(mm_policy_opts, clip_reward, 408);
    PIN(mm_policy_opts, ppo_target_kl, 416);
    PIN(mm_policy_opts, lr_decay_steps, 424);
    PIN(mm_policy_opts, clip_decay_steps, 432);
    PIN(mm_policy_opts, ent_auto, 440); /* 0.2: SAC */
    PIN(mm_policy_opts, target_update_interval, 444);
    PIN(mm_policy_opts, target_entropy, 448);
    PIN(mm_policy_opts, lr_alpha, 456);
    PIN(mm_policy_opts, memory, 464); /* 0.2: memory core */
    PIN(mm_policy_opts, reserved3, 468);
    PIN(mm_policy_opts, memory_dim, 472);
    PIN(mm_policy_opts, memory_seq_len, 480);
    PIN(mm_policy_opts, use_sde, 488); /* 0.2: gSDE */
    PIN(mm_policy_opts, sde_sample_freq, 492);
    PIN_SIZE(mm_comm_callbacks, 64);
    PIN(mm_comm_callbacks, struct_size, 0);
    PIN(mm_comm_callbacks, reserved0, 4);
    PIN(mm_comm_callbacks, ud, 8);
    PIN(mm_comm_callbacks, rank, 16);
    PIN(mm_comm_callbacks, size, 20);
    PIN(mm_comm_callbacks, allreduce_sum, 24);
    PIN(mm_comm_callbacks, allgather, 32);
    PIN(mm_comm_callbacks, sendrecv, 40);
    PIN(mm_comm_callbacks, broadcast, 48);
    PIN(mm_comm_callbacks, release, 56);
    PIN_SIZE(mm_policy_export_info, 40); /* 0.2 */
    PIN(mm_policy_export_info, output, 0);
    PIN(mm_policy_export_info, norm_obs, 4);
    PIN(mm_policy_export_info, obs_dim, 8);
    PIN(mm_policy_export_info, act_dim, 16);
    PIN(mm_policy_export_info, model_out, 24);
    PIN(mm_policy_export_info, clip_obs, 32);
    PIN(mm_policy_export_info, reserved, 36);
#endif
}

/* The enum values that cross the FFI boundary as plain integers are pinned by the header
 * ("numbers never change"); a few spot checks guard against an accidental renumbering. */
static void test_enum_values(void)
{
    CHECK_EQ_I64(MM_E_NOMEM, -2);
    CHECK_EQ_I64(MM_E_INTERNAL, -99);
    CHECK_EQ_I64(MM_E_BUFFER_TOO_SMALL, -31);
    CHECK_EQ_I64(MM_TENSOR_MAX_DIMS, 8);
    CHECK_EQ_I64(MM_ALGO_TRPO, 6);
    CHECK_EQ_I64(MM_ALGO_SAC, 7);
    CHECK_EQ_I64(MM_POLICY_STAT_ENT_COEF, 363);
    CHECK_EQ_I64(MM_ATTN_GATED, 6);
    CHECK_EQ_I64(MM_ATTN_RWKV6, 7);
    CHECK_EQ_I64(MM_SSM_LRU, 5);
    CHECK_EQ_I64(MM_LOSS_KIMI, 6);
    CHECK_EQ_I64(MM_OPT_RMSPROP, 5);
    CHECK_EQ_I64(MM_ACT_RELU2, 8);
}

void suite_layout(void)
{
    mmt_run("layout/structs", test_struct_layout);
    mmt_run("layout/enums", test_enum_values);
}
