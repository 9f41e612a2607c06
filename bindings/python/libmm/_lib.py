# SPDX-License-Identifier: MIT
"""Loading libmm.so and declaring its C interface for ctypes.

Why a hand-written declaration instead of parsing mm.h: ctypes needs exact argument types to
pass 64-bit integers and pointers correctly (an undeclared int64_t argument would be truncated
to int), and the options structs must mirror the C layout field for field. The struct layouts
are checked against the pins of tests/test_layout.c by tests/test_layout.py.

Every declared function is reached through `lib`, whose callables check each integer argument
against its C type first (check_int): ctypes itself narrows silently (2**64 + 4 passed as an
int64_t arrives as 4, 2**32 + 1 as an int32_t arrives as 1). Functions not declared here are not
reachable through `lib`.

The library is found, in order, at $LIBMM_LIBRARY (a file), in $LIBMM_LIBDIR, next to this
module (the copy an installed package carries, compiled by setup.py), in the build tree's lib/
three levels above this package (bindings/python/libmm -> lib/), in the libdir pkg-config gives
for libmm, and finally by ctypes.util.find_library("mm").
"""
import ctypes
import ctypes.util
import operator
import os
import subprocess

from ctypes import (POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)

SONAME = "libmm.so.0"


def _find_library():
    path = os.environ.get("LIBMM_LIBRARY")
    if path:
        return path
    libdir = os.environ.get("LIBMM_LIBDIR")
    if libdir:
        return os.path.join(libdir, SONAME)
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.join(here, SONAME)
    if os.path.exists(bundled):
        return bundled
    tree = os.path.normpath(os.path.join(here, "..", "..", "..", "lib", SONAME))
    if os.path.exists(tree):
        return tree
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "libmm"], capture_output=True,
                           text=True, timeout=10)
        pc = os.path.join(r.stdout.strip(), SONAME)
        if r.returncode == 0 and r.stdout.strip() and os.path.exists(pc):
            return pc
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("mm")
    if found:
        return found
    raise OSError("libmm: cannot find %s; build it with `make` or set LIBMM_LIBRARY" % SONAME)


_dll = ctypes.CDLL(_find_library())


def _is_int_type(ctype):
    return isinstance(ctype, type) and getattr(ctype, "_type_", None) in tuple("bBhHiIlLqQ")


def int_limits(ctype):
    """(lowest, highest) value of a ctypes integer type."""
    bits = 8 * ctypes.sizeof(ctype)
    if ctype(-1).value < 0:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


_C_NAMES = {}
for _t, _n in ((c_int32, "int32_t"), (c_int64, "int64_t"), (c_uint32, "uint32_t"),
               (c_uint64, "uint64_t"), (c_uint8, "uint8_t")):
    _C_NAMES.setdefault(_t, _n)


def check_int(value, ctype, what):
    """value as a Python int once it is known to fit ctype (c_int32, c_int64, c_uint32,
    c_uint64, ...): TypeError for a non-integer (1.5, "3"; bools and numpy integers are
    integers), libmm.RangeError (a ValueError) for a value ctypes would narrow. Every integer the
    bindings hand to libmm, as an argument or an options field, passes here."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) from None
    lo, hi = int_limits(ctype)
    if lo <= v <= hi:
        return v
    from . import errors  # here, not at the top: errors needs this module's lib
    raise errors.error(errors.E_RANGE, "%s = %d is outside the range of %s [%d, %d]" %
                       (what, v, _C_NAMES.get(ctype, ctype.__name__), lo, hi))


def _declare(name, restype, argtypes):
    """The foreign function name, with every integer argument range-checked before ctypes sees
    it (ctypes instances such as c_int64(...) are passed through as they are)."""
    fn = getattr(_dll, name)
    fn.restype, fn.argtypes = restype, argtypes
    ints = tuple((i, t) for i, t in enumerate(argtypes) if _is_int_type(t))
    if not ints:
        return fn
    nargs = len(argtypes)

    def call(*args):
        if len(args) != nargs:
            raise TypeError("%s takes %d arguments (%d given)" % (name, nargs, len(args)))
        for i, t in ints:
            if not isinstance(args[i], ctypes._SimpleCData):
                check_int(args[i], t, "%s argument %d" % (name, i + 1))
        return fn(*args)

    call.__name__ = name
    return call


class _Lib:
    """Namespace of the declared libmm functions (see _PROTOS)."""

f32p = POINTER(c_float)
f64p = POINTER(c_double)
i64p = POINTER(c_int64)
i32p = POINTER(c_int32)
u8p = POINTER(c_uint8)


class Allocator(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc_fn", c_void_p),
                ("free_fn", c_void_p), ("ud", c_void_p)]


class ModelOpts(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc", c_void_p),
                ("input_dim", c_int64), ("max_batch", c_int64), ("max_seq", c_int64),
                ("seed", c_uint64), ("n_threads", c_int32), ("reserved1", c_int32),
                ("err_buf", c_char_p), ("err_buf_size", c_size_t)]


class LossOpts(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc", c_void_p),
                ("kind", c_int32), ("n_threads", c_int32), ("max_batch", c_int64),
                ("max_dim", c_int64), ("max_queue", c_int64), ("tile", c_int64),
                ("group_size", c_int64), ("seed", c_uint64), ("err_buf", c_char_p),
                ("err_buf_size", c_size_t)]


class AttnOpts(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc", c_void_p),
                ("kind", c_int32), ("feature_map", c_int32), ("causal", c_int32),
                ("normalize", c_int32), ("d_head", c_int64), ("dv", c_int64),
                ("n_heads", c_int64), ("max_batch", c_int64), ("max_seq", c_int64),
                ("chunk", c_int64), ("sparse_pattern", c_int32), ("gate", c_int32),
                ("window", c_int64), ("stride", c_int64), ("n_features", c_int64),
                ("seed", c_uint64), ("n_threads", c_int32), ("reserved1", c_int32),
                ("err_buf", c_char_p), ("err_buf_size", c_size_t)]


class SsmOpts(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc", c_void_p),
                ("kind", c_int32), ("n_threads", c_int32), ("d_inner", c_int64),
                ("d_state", c_int64), ("head_dim", c_int64), ("n_groups", c_int64),
                ("max_batch", c_int64), ("max_seq", c_int64), ("chunk", c_int64),
                ("flags", c_uint32), ("reserved1", c_uint32), ("seed", c_uint64),
                ("err_buf", c_char_p), ("err_buf_size", c_size_t)]


SSM_INPUT_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "init_state", "log_dt",
                   "A_real", "A_imag", "P", "nu_log", "theta_log", "gamma_log")


class SsmInputs(Structure):
    _fields_ = ([("struct_size", c_uint32), ("reserved0", c_uint32)] +
                [(n, c_void_p) for n in SSM_INPUT_NAMES])


class SsmGrads(Structure):
    _fields_ = ([("struct_size", c_uint32), ("reserved0", c_uint32)] +
                [("d" + n, c_void_p) for n in SSM_INPUT_NAMES])


class PolicyOpts(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved0", c_uint32), ("alloc", c_void_p),
                ("algo", c_int32), ("n_threads", c_int32), ("seed", c_uint64),
                ("obs_dim", c_int64), ("act_dim", c_int64), ("n_actions", c_int64),
                ("act_low", f32p), ("act_high", f32p), ("n_agents", c_int64),
                ("n_hidden", c_int32), ("activation", c_int32), ("hidden", c_int64 * 4),
                ("gamma", c_double), ("lr_actor", c_double), ("lr_critic", c_double),
                ("max_grad_norm", c_double), ("norm_obs", c_int32), ("reserved1", c_int32),
                ("clip_obs", c_double), ("buffer_size", c_int64), ("batch_size", c_int64),
                ("learning_starts", c_int64), ("train_freq", c_int64),
                ("gradient_steps", c_int64), ("tau", c_double), ("noise", c_int32),
                ("policy_delay", c_int32), ("noise_sigma", c_double), ("noise_theta", c_double),
                ("noise_dt", c_double), ("target_noise", c_double),
                ("target_noise_clip", c_double), ("n_critics", c_int32), ("n_epochs", c_int32),
                ("n_steps", c_int64), ("gae_lambda", c_double), ("ent_coef", c_double),
                ("vf_coef", c_double), ("clip_range", c_double), ("clip_range_vf", c_double),
                ("normalize_advantage", c_int32), ("use_rmsprop", c_int32),
                ("log_std_init", c_double), ("adam_eps", c_double),
                ("linear_decay_steps", c_int64), ("target_kl", c_double),
                ("cg_damping", c_double), ("cg_max_steps", c_int32), ("ls_max_iter", c_int32),
                ("ls_decay", c_double), ("err_buf", c_char_p), ("err_buf_size", c_size_t),
                ("norm_reward", c_int32), ("reserved2", c_int32), ("clip_reward", c_double),
                ("ppo_target_kl", c_double), ("lr_decay_steps", c_int64),
                ("clip_decay_steps", c_int64),
                ("ent_auto", c_int32), ("target_update_interval", c_int32),
                ("target_entropy", c_double), ("lr_alpha", c_double),
                ("memory", c_int32), ("reserved3", c_int32), ("memory_dim", c_int64),
                ("memory_seq_len", c_int64),
                ("use_sde", c_int32), ("sde_sample_freq", c_int32)]


class PolicyExportInfo(Structure):
    _fields_ = [("output", c_int32), ("norm_obs", c_int32), ("obs_dim", c_int64),
                ("act_dim", c_int64), ("model_out", c_int64), ("clip_obs", c_float),
                ("reserved", c_float)]


STRUCTS = {"mm_allocator": Allocator, "mm_model_opts": ModelOpts, "mm_loss_opts": LossOpts,
           "mm_attn_opts": AttnOpts, "mm_ssm_opts": SsmOpts, "mm_ssm_inputs": SsmInputs,
           "mm_ssm_grads": SsmGrads, "mm_policy_opts": PolicyOpts,
           "mm_policy_export_info": PolicyExportInfo}

# mm_read_fn: int64_t (*)(void *ud, void *buf, int64_t n)
READ_FN = ctypes.CFUNCTYPE(c_int64, c_void_p, c_void_p, c_int64)

H = c_void_p  # every handle is an opaque pointer
HP = POINTER(c_void_p)

# name: (restype, argtypes). Only what the package calls; every int return is a status.
_PROTOS = {
    "mm_version_string": (c_char_p, []),
    "mm_build_info": (c_char_p, []),
    "mm_version_number": (c_uint32, []),
    "mm_abi_version": (c_uint32, []),
    "mm_status_str": (c_char_p, [c_int]),
    "mm_status_name": (c_char_p, [c_int]),
    "mm_param_bounds": (c_int, [c_int32, f64p, f64p]),
    "mm_param_count": (c_int32, []),
    "mm_param_info": (c_int, [c_int32, i32p, POINTER(c_char_p), POINTER(c_char_p), f64p, f64p]),
    "mm_enum_count": (c_int32, []),
    "mm_enum_info": (c_int, [c_int32, POINTER(c_char_p), i32p]),
    # tensors
    "mm_tensor_wrap": (c_int, [HP, f32p, c_int32, i64p, c_void_p]),
    "mm_tensor_free": (None, [H]),
    "mm_tensor_errmsg": (c_char_p, [H]),
    # models
    "mm_model_opts_init": (c_int, [POINTER(ModelOpts)]),
    "mm_model_create": (c_int, [HP, POINTER(ModelOpts)]),
    "mm_model_add_dense": (c_int, [H, c_int64, c_int32, c_int32, c_double]),
    "mm_model_add_activation": (c_int, [H, c_int32]),
    "mm_model_add_layernorm": (c_int, [H, c_double, c_int32]),
    "mm_model_add_rmsnorm": (c_int, [H, c_double, c_int32]),
    "mm_model_add_embedding": (c_int, [H, c_int64, c_int64]),
    "mm_model_add_attention": (c_int, [H, POINTER(AttnOpts)]),
    "mm_model_add_gau": (c_int, [H, c_int64, c_int64, c_int32, c_int64]),
    "mm_model_add_mamba": (c_int, [H, c_int64, c_int64, c_int64, c_int64]),
    "mm_model_add_s4d": (c_int, [H, c_int64]),
    "mm_model_finalize": (c_int, [H]),
    "mm_model_forward": (c_int, [H, H, H]),
    "mm_model_backward": (c_int, [H, H, H]),
    "mm_model_jvp": (c_int, [H, H, H, H, H]),
    "mm_model_add_cross_attention": (c_int, [H, c_int64, c_int64, c_int64, c_int64]),
    "mm_model_forward_ctx": (c_int, [H, H, H, H]),
    "mm_model_backward_ctx": (c_int, [H, H, H, H]),
    "mm_model_jvp_ctx": (c_int, [H, H, H, H, H, H]),
    "mm_model_infer_workspace_size": (c_int, [H, c_int64, c_int64, POINTER(c_size_t)]),
    "mm_model_infer": (c_int, [H, H, H, c_void_p, c_size_t]),
    "mm_model_num_params": (c_int, [H, i64p]),
    "mm_model_params": (c_int, [H, POINTER(f32p), i64p]),
    "mm_model_grads": (c_int, [H, POINTER(f32p), i64p]),
    "mm_model_zero_grad": (c_int, [H]),
    "mm_model_set_optimizer": (c_int, [H, c_int32]),
    "mm_model_set_f64": (c_int, [H, c_int32, c_double]),
    "mm_model_get_f64": (c_int, [H, c_int32, f64p]),
    "mm_model_step": (c_int, [H]),
    "mm_model_freeze": (c_int, [H, c_int32, c_int32, c_int32]),
    "mm_model_copy": (c_int, [H, H, c_int32]),
    "mm_model_lerp": (c_int, [H, H, c_double]),
    "mm_model_num_layers": (c_int, [H, i32p]),
    "mm_model_output_dim": (c_int, [H, i64p]),
    "mm_model_errmsg": (c_char_p, [H]),
    "mm_model_free": (None, [H]),
    "mm_model_save": (c_int, [H, c_char_p, c_uint32]),
    "mm_model_save_mem": (c_int, [H, c_void_p, c_size_t, POINTER(c_size_t), c_uint32]),
    "mm_model_load": (c_int, [HP, c_char_p, POINTER(ModelOpts)]),
    "mm_model_load_mem": (c_int, [HP, c_void_p, c_size_t, POINTER(ModelOpts)]),
    "mm_model_load_cb": (c_int, [HP, READ_FN, c_void_p, POINTER(ModelOpts)]),
    "mm_model_decode_state_size": (c_int, [H, c_int64, POINTER(c_size_t)]),
    "mm_model_decode_step": (c_int, [H, H, H, c_void_p, c_size_t]),
    "mm_model_seed": (c_int, [H, c_uint64]),
    "mm_model_sample": (c_int, [H, H, c_double, c_int64, c_double, i32p, c_int64, f32p]),
    "mm_model_logprob": (c_int, [H, H, i32p, c_int64, H]),
    "mm_model_logprob_backward": (c_int, [H, i32p, c_int64, H]),
    # losses
    "mm_loss_opts_init": (c_int, [POINTER(LossOpts), c_int32]),
    "mm_loss_create": (c_int, [HP, POINTER(LossOpts)]),
    "mm_loss_free": (None, [H]),
    "mm_loss_errmsg": (c_char_p, [H]),
    "mm_loss_set_f64": (c_int, [H, c_int32, c_double]),
    "mm_loss_get_f64": (c_int, [H, c_int32, f64p]),
    "mm_loss_clip": (c_int, [H, H, H, f64p, H, H]),
    "mm_loss_siglip": (c_int, [H, H, H, f64p, H, H]),
    "mm_loss_itc": (c_int, [H, H, H, H, H, H, H, f64p, H, H]),
    "mm_loss_cross_entropy": (c_int, [H, H, i32p, c_int64, f64p, H]),
    "mm_loss_bce": (c_int, [H, H, H, f64p, H]),
    "mm_loss_kimi": (c_int, [H, H, H, H, f64p, H]),
    "mm_loss_l2_normalize": (c_int, [H, H, H]),
    "mm_loss_l2_normalize_backward": (c_int, [H, H, H, H]),
    "mm_loss_flip_draw": (c_int, [H, c_int64, c_int64, c_int64, i32p]),
    "mm_loss_flip_gather": (c_int, [H, H, i32p, c_int64, H]),
    "mm_loss_flip_scatter": (c_int, [H, H, i32p, c_int64, H]),
    "mm_loss_blip_hard_negatives": (c_int, [H, H, i64p, c_int32, i32p]),
    "mm_loss_kimi_length_reward": (c_int, [H, i64p, H, c_int64, H]),
    # attention
    "mm_attn_opts_init": (c_int, [POINTER(AttnOpts), c_int32]),
    "mm_attn_create": (c_int, [HP, POINTER(AttnOpts)]),
    "mm_attn_forward": (c_int, [H, H, H, H, H]),
    "mm_attn_forward_gated": (c_int, [H, H, H, H, H, H]),
    "mm_attn_backward": (c_int, [H, H, H, H, H, H]),
    "mm_attn_step": (c_int, [H, H, H, H, H, H]),
    "mm_attn_reset": (c_int, [H]),
    "mm_attn_forward_rwkv6": (c_int, [H, H, H, H, H, H, H]),
    "mm_attn_backward_rwkv6": (c_int, [H, H, H, H, H, H, H]),
    "mm_attn_step_rwkv6": (c_int, [H, H, H, H, H, H, H]),
    "mm_attn_redraw": (c_int, [H]),
    "mm_attn_get_projection": (c_int, [H, H]),
    "mm_attn_set_projection": (c_int, [H, H]),
    "mm_attn_set_f64": (c_int, [H, c_int32, c_double]),
    "mm_attn_get_f64": (c_int, [H, c_int32, f64p]),
    "mm_attn_errmsg": (c_char_p, [H]),
    "mm_attn_free": (None, [H]),
    # ssm
    "mm_ssm_opts_init": (c_int, [POINTER(SsmOpts), c_int32]),
    "mm_ssm_inputs_init": (c_int, [POINTER(SsmInputs)]),
    "mm_ssm_grads_init": (c_int, [POINTER(SsmGrads)]),
    "mm_ssm_create": (c_int, [HP, POINTER(SsmOpts)]),
    "mm_ssm_free": (None, [H]),
    "mm_ssm_errmsg": (c_char_p, [H]),
    "mm_ssm_scan": (c_int, [H, POINTER(SsmInputs), H, H]),
    "mm_ssm_scan_backward": (c_int, [H, POINTER(SsmInputs), H, POINTER(SsmGrads)]),
    "mm_ssm_kernel": (c_int, [H, POINTER(SsmInputs), H]),
    "mm_ssm_conv": (c_int, [H, H, H, H, H]),
    "mm_ssm_step": (c_int, [H, POINTER(SsmInputs), H]),
    "mm_ssm_reset": (c_int, [H]),
    "mm_ssm_conv_backward": (c_int, [H, H, H, H, H, H, H, H]),
    "mm_ssm_kernel_backward": (c_int, [H, POINTER(SsmInputs), H, POINTER(SsmGrads)]),
    "mm_ssm_state": (c_int, [H, POINTER(f32p), i64p]),
    "mm_ssm_lru_init": (c_int, [H, c_double, c_double, c_double, f32p, f32p, f32p, f32p, f32p,
                                f32p]),
    # functions without a handle (linalg.py)
    "mm_ssm_s4d_init": (c_int, [c_int32, c_int64, c_int64, f32p, f32p]),
    "mm_ssm_discretize": (c_int, [c_int32, c_uint32, c_int64, f64p, f64p, c_double, f64p, f64p,
                                  c_void_p]),
    "mm_hippo": (c_int, [c_int32, c_int64, f64p, f64p]),
    "mm_hippo_rank_correction": (c_int, [c_int32, c_int64, c_int32, f64p, f64p]),
    "mm_sgemm_workspace_size": (c_size_t, []),
    "mm_sgemm_mt_workspace_size": (c_size_t, [c_int32]),
    "mm_sgemm": (c_int, [c_int32, c_int32, c_int64, c_int64, c_int64, c_float, f32p, c_int64,
                         f32p, c_int64, c_float, f32p, c_int64, c_void_p, c_size_t]),
    "mm_sgemm_mt": (c_int, [c_int32, c_int32, c_int64, c_int64, c_int64, c_float, f32p,
                            c_int64, f32p, c_int64, c_float, f32p, c_int64, H, c_void_p,
                            c_size_t]),
    "mm_threads_create": (c_int, [HP, c_int32, c_void_p]),
    "mm_threads_free": (None, [H]),
    "mm_ssm_get_f64": (c_int, [H, c_int32, f64p]),
    "mm_ssm_set_f64": (c_int, [H, c_int32, c_double]),
    # policies
    "mm_policy_opts_init": (c_int, [POINTER(PolicyOpts), c_int32]),
    "mm_policy_create": (c_int, [HP, POINTER(PolicyOpts)]),
    "mm_policy_act": (c_int, [H, f32p, c_int64, f32p, c_int32]),
    "mm_policy_observe": (c_int, [H, f32p, f32p, f32p, f32p, u8p, u8p, c_int64]),
    "mm_policy_update": (c_int, [H, i32p]),
    "mm_policy_update_budget": (c_int, [H, c_int64, i32p]),
    "mm_policy_reset_agent": (c_int, [H, c_int64]),
    "mm_policy_set_f64": (c_int, [H, c_int32, c_double]),
    "mm_policy_get_f64": (c_int, [H, c_int32, f64p]),
    "mm_policy_save": (c_int, [H, c_char_p]),
    "mm_policy_load": (c_int, [H, c_char_p]),
    "mm_policy_save_ex": (c_int, [H, c_char_p, c_uint32]),
    "mm_policy_save_mem": (c_int, [H, c_void_p, c_size_t, POINTER(c_size_t), c_uint32]),
    "mm_policy_load_mem": (c_int, [H, c_void_p, c_size_t]),
    "mm_policy_load_cb": (c_int, [H, READ_FN, c_void_p]),
    "mm_policy_load_new": (c_int, [HP, c_char_p, POINTER(PolicyOpts)]),
    "mm_policy_export": (c_int, [H, HP, POINTER(ModelOpts)]),
    "mm_policy_export_copy": (c_int, [H, H]),
    "mm_policy_export_save": (c_int, [H, c_char_p]),
    "mm_policy_export_io": (c_int, [H, POINTER(PolicyExportInfo), f32p, f32p, f32p, f32p]),
    "mm_policy_errmsg": (c_char_p, [H]),
    "mm_policy_free": (None, [H]),
}

lib = _Lib()
for _name, (_res, _args) in _PROTOS.items():
    setattr(lib, _name, _declare(_name, _res, _args))
