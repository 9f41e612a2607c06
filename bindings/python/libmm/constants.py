# SPDX-License-Identifier: MIT
"""The enums of mm.h that the Python API accepts by name (their numbers never change)."""

ACTIVATIONS = {"relu": 1, "tanh": 2, "sigmoid": 3, "gelu": 4, "silu": 5, "elu": 6,
               "softplus": 7, "relu2": 8}
INITS = {"default": 0, "orthogonal": 1}
OPTIMIZERS = {"sgd": 1, "momentum": 2, "adam": 3, "adamw": 4, "rmsprop": 5}
LOSSES = {"clip": 1, "siglip": 2, "itc": 3, "cross_entropy": 4, "bce": 5, "kimi": 6}
ATTENTIONS = {"softmax": 1, "linear": 2, "performer": 3, "relu2": 4, "sparse": 5, "gated": 6}
SSMS = {"selective": 1, "ssd": 2, "s4d": 3, "s4": 4, "lru": 5}
ALGOS = {"ddpg": 1, "td3": 2, "a2c": 3, "qac": 4, "ppo": 5, "trpo": 6, "sac": 7}

# Run-time parameter ids (mm_*_set_f64 / get_f64) by name.
MODEL_PARAMS = {"lr": 500, "beta1": 501, "beta2": 502, "eps": 503, "weight_decay": 504,
                "momentum": 505, "dampening": 506, "nesterov": 507, "alpha": 508,
                "centered": 509, "max_grad_norm": 510, "amsgrad": 511, "stat_grad_norm": 550,
                "stat_steps": 551, "stat_clipped": 552}
LOSS_PARAMS = {"logit_scale": 400, "logit_bias": 401, "temp": 402, "alpha": 403,
               "label_smoothing": 404, "ignore_index": 405, "tau": 406, "kimi_baseline": 407,
               "norm_eps": 408, "norm_eps_mode": 409, "clamp_logit_scale": 410,
               "grad_scale": 411, "stat_loss": 450, "stat_dlogit_scale": 451,
               "stat_dlogit_bias": 452, "stat_dtemp": 453, "stat_loss_i2t": 454,
               "stat_loss_t2i": 455, "stat_valid": 456, "stat_workspace_bytes": 457}
ATTN_PARAMS = {"scale": 100, "eps": 101, "feature_eps": 102, "stat_position": 150,
               "stat_workspace_bytes": 151}
SSM_PARAMS = {"chunk": 200, "dt_min": 201, "dt_max": 202, "stat_position": 250,
              "stat_workspace_bytes": 251}
POLICY_PARAMS = {"lr_actor": 300, "lr_critic": 301, "gamma": 302, "tau": 303,
                 "noise_sigma": 304, "ent_coef": 305, "clip_range": 306, "target_kl": 307,
                 "vf_coef": 308, "max_grad_norm": 309, "cg_damping": 310,
                 "stat_actor_loss": 350, "stat_critic_loss": 351, "stat_kl": 352,
                 "stat_entropy": 353, "stat_explained_var": 354, "stat_updates": 355,
                 "stat_steps": 356, "stat_clip_fraction": 357, "stat_ls_steps": 358,
                 "stat_q_mean": 359, "stat_ent_coef": 360}
