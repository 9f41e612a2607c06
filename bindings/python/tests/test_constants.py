# SPDX-License-Identifier: MIT
"""The binding's constants come from the library (mm_enum_info, mm_param_info): here they are
compared with every enumerator of include/mm.h, so a constant added to the header but not to
the library's tables (src/core/enums.c, params.c), or a wrong value, fails."""
import ctypes
import os
import re
import unittest

from _setup import REPO


def header_enumerators():
    with open(os.path.join(REPO, "include", "mm.h")) as f:
        src = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    out = {}
    for body in re.findall(r"\benum\s*\{(.*?)\}", src, flags=re.S):
        for item in filter(None, (x.strip() for x in body.split(","))):
            m = re.fullmatch(r"(MM_\w+)\s*=\s*(-?\d+)u?", item)
            if not m:
                raise AssertionError("unparsed enumerator in mm.h: %r" % item)
            out[m.group(1)] = int(m.group(2))
    return out


class ConstantsTest(unittest.TestCase):
    def test_library_tables_cover_the_header(self):
        from libmm import constants
        header = header_enumerators()
        lib = dict(constants.ENUMS)
        lib.update({n: info[0] for n, info in constants.PARAM_INFO.items()})
        self.assertEqual(len(lib), len(constants.ENUMS) + len(constants.PARAM_INFO))
        self.assertEqual(lib, header)

    def test_params_owner_and_bounds(self):
        from libmm import constants
        from libmm._lib import lib
        prefixes = {"attn": "MM_ATTN_", "ssm": "MM_SSM_", "policy": "MM_POLICY_",
                    "loss": "MM_LOSS_", "model": "MM_MODEL_"}
        lo, hi = ctypes.c_double(), ctypes.c_double()
        for name, (pid, obj, plo, phi) in constants.PARAM_INFO.items():
            self.assertTrue(name.startswith(prefixes[obj]), name)
            self.assertEqual(lib.mm_param_bounds(pid, ctypes.byref(lo), ctypes.byref(hi)), 0)
            self.assertEqual((lo.value, hi.value), (plo, phi), name)
        self.assertEqual(constants.MODEL_PARAMS["lr"], 500)
        self.assertEqual(constants.LOSS_PARAMS["kimi_baseline"], 407)
        self.assertEqual(constants.SSMS, {"selective": 1, "ssd": 2, "s4d": 3, "s4": 4, "lru": 5})

    def test_index_out_of_range(self):
        from libmm._lib import lib
        v = ctypes.c_int32(7)
        self.assertEqual(lib.mm_enum_info(lib.mm_enum_count(), None, ctypes.byref(v)), -5)
        self.assertEqual(lib.mm_param_info(-1, ctypes.byref(v), None, None, None, None), -5)
        self.assertEqual(v.value, 7)

    def test_status_codes_of_errors_module(self):
        from libmm import constants, errors
        for name, value in constants.ENUMS.items():
            if name.startswith("MM_E_") or name == "MM_OK":
                self.assertEqual(getattr(errors, name[3:]), value, name)


if __name__ == "__main__":
    unittest.main()
