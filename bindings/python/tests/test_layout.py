# SPDX-License-Identifier: MIT
"""The ctypes structs of the bindings against the C layout pinned in tests/test_layout.c: a
field appended to mm.h without updating the bindings (or a typo in them) fails here."""
import ctypes
import os
import re
import unittest

from _setup import REPO, needs_numpy

# Public structs the bindings do not wrap yet (no Python API uses them); every other pinned
# struct must be declared in libmm._lib.STRUCTS with the C layout.
NOT_BOUND = {"mm_comm_callbacks"}


@needs_numpy
class LayoutTest(unittest.TestCase):
    def test_structs_match_c_pins(self):
        from libmm._lib import STRUCTS
        with open(os.path.join(REPO, "tests", "test_layout.c")) as f:
            src = f.read()
        sizes = re.findall(r"PIN_SIZE\((\w+), (\d+)\)", src)
        pins = re.findall(r"PIN\((\w+), (\w+), (\d+)\)", src)
        self.assertTrue(sizes and pins)
        sizes = [(n, v) for n, v in sizes if n not in NOT_BOUND]
        pins = [(n, f, o) for n, f, o in pins if n not in NOT_BOUND]
        for name, size in sizes:
            self.assertEqual(ctypes.sizeof(STRUCTS[name]), int(size), name)
        seen = {}
        for name, field, off in pins:
            cls = STRUCTS[name]
            self.assertEqual(getattr(cls, field).offset, int(off), "%s.%s" % (name, field))
            seen.setdefault(name, set()).add(field)
        for name, cls in STRUCTS.items():  # no field in the bindings that C does not have
            self.assertEqual({f for f, _ in cls._fields_}, seen[name], name)


if __name__ == "__main__":
    unittest.main()
