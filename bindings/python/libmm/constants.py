# SPDX-License-Identifier: MIT
"""The enums and run-time parameter ids of mm.h that the Python API accepts by name.

Nothing here is typed in: the tables are read at import from the library itself
(mm_enum_count / mm_enum_info for kinds, mm_param_count / mm_param_info for parameter ids), so
the binding cannot drift from the header it was built with. The Python names are the header's
identifiers without their prefix, in lower case: MM_ACT_TANH -> ACTIVATIONS["tanh"],
MM_MODEL_LR -> MODEL_PARAMS["lr"]. PARAM_INFO keeps every parameter's owner and bounds.
"""
import ctypes

from ._lib import lib as _clib


def _enums():
    out = {}
    name, value = ctypes.c_char_p(), ctypes.c_int32()
    for i in range(_clib.mm_enum_count()):
        if _clib.mm_enum_info(i, ctypes.byref(name), ctypes.byref(value)) != 0:
            raise RuntimeError("libmm: mm_enum_info(%d) failed" % i)
        out[name.value.decode()] = value.value
    return out


def _params():
    out = {}
    pid, name, obj = ctypes.c_int32(), ctypes.c_char_p(), ctypes.c_char_p()
    lo, hi = ctypes.c_double(), ctypes.c_double()
    for i in range(_clib.mm_param_count()):
        if _clib.mm_param_info(i, ctypes.byref(pid), ctypes.byref(name), ctypes.byref(obj),
                               ctypes.byref(lo), ctypes.byref(hi)) != 0:
            raise RuntimeError("libmm: mm_param_info(%d) failed" % i)
        out[name.value.decode()] = (pid.value, obj.value.decode(), lo.value, hi.value)
    return out


# Every constant of mm.h by its C name: {"MM_ACT_TANH": 2, ...}; and every parameter:
# {"MM_MODEL_LR": (500, "model", lo, hi), ...}.
ENUMS = _enums()
PARAM_INFO = _params()

# Constants that share a kind's prefix but are flags, not kinds.
_NOT_KINDS = {"MM_SSM_DELTA_SOFTPLUS", "MM_DISC_DIAGONAL"}


def _kinds(prefix):
    return {n[len(prefix):].lower(): v for n, v in ENUMS.items()
            if n.startswith(prefix) and n not in _NOT_KINDS}


def _param_ids(obj, prefix):
    return {n[len(prefix):].lower(): info[0] for n, info in PARAM_INFO.items()
            if info[1] == obj and n.startswith(prefix)}


ACTIVATIONS = _kinds("MM_ACT_")
INITS = _kinds("MM_INIT_")
OPTIMIZERS = _kinds("MM_OPT_")
LOSSES = _kinds("MM_LOSS_")
ATTENTIONS = _kinds("MM_ATTN_")
SSMS = _kinds("MM_SSM_")
ALGOS = _kinds("MM_ALGO_")
MEMORIES = _kinds("MM_MEMORY_")
HIPPO_MEASURES = _kinds("MM_HIPPO_")
DISCRETIZATIONS = _kinds("MM_DISC_")
S4D_INITS = _kinds("MM_S4D_")
EXPORT_OUTPUTS = _kinds("MM_EXPORT_")

# Run-time parameter ids (mm_*_set_f64 / get_f64) by name.
MODEL_PARAMS = _param_ids("model", "MM_MODEL_")
LOSS_PARAMS = _param_ids("loss", "MM_LOSS_")
ATTN_PARAMS = _param_ids("attn", "MM_ATTN_")
SSM_PARAMS = _param_ids("ssm", "MM_SSM_")
POLICY_PARAMS = _param_ids("policy", "MM_POLICY_")
