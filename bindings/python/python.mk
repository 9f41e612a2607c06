# SPDX-License-Identifier: MIT
# bindings/python/python.mk — `make check-python`: the ctypes bindings' tests against the
# shared library of this build tree (lib/libmm.so.0, passed through LIBMM_LIBRARY). Included
# from the Makefile. Uses /usr/bin/python3 (Debian's, with numpy) unless PYTHON is given;
# without numpy the target prints why and succeeds without running anything.
PYTHON ?= /usr/bin/python3

.PHONY: check-python
check-python: $(SHARED)
	@if ! $(PYTHON) -c 'import numpy' >/dev/null 2>&1; then \
	  echo "check-python: SKIPPED: numpy is not importable by $(PYTHON) (apt install python3-numpy or set PYTHON=...)"; \
	else \
	  LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest \
	    discover -s bindings/python/tests -t bindings/python/tests -v && \
	  LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) PYTHONDONTWRITEBYTECODE=1 \
	    $(PYTHON) examples/python/train_agent.py --quick; \
	fi

# `make digits`: contrastive two-tower training on scikit-learn's 8x8 digits through the Python
# package (examples/python/digits_zero_shot.py); fails below 90% held-out zero-shot accuracy.
# Needs python3-sklearn (apt-get install python3-sklearn) for the data set.
.PHONY: digits
digits: $(SHARED)
	LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) PYTHONDONTWRITEBYTECODE=1 \
	  $(PYTHON) examples/python/digits_zero_shot.py --svg build/digits_zero_shot.svg

# ---- the installable package (issue 18) ----------------------------------------------------------
# make python-wheel: an sdist of bindings/python (setup.py adds the C sources under csrc/), then
# a wheel built from that sdist alone (so the sdist is known to be complete), both in
# build/python/. The wheel carries libmm.so.0 compiled by setup.py. Needs setuptools and wheel
# for $(PYTHON) (Debian: python3-setuptools python3-wheel); nothing is downloaded.
PYPKG_DIR := build/python
.PHONY: python-wheel check-python-wheel
python-wheel:
	rm -rf $(PYPKG_DIR) && mkdir -p $(PYPKG_DIR)/egg
	cd bindings/python && PYTHONDONTWRITEBYTECODE=1 $(PYTHON) setup.py -q egg_info \
	  --egg-base $(CURDIR)/$(PYPKG_DIR)/egg sdist -d $(CURDIR)/$(PYPKG_DIR) >/dev/null
	$(PYTHON) -m pip wheel -q --no-build-isolation --no-deps --no-index -w $(PYPKG_DIR) \
	  $(PYPKG_DIR)/libmm-$(VER).tar.gz
	@ls $(PYPKG_DIR)/libmm-$(VER)-*.whl

# Installs the wheel into a fresh virtual environment (with the system's site packages, for
# numpy) in a temporary folder outside the tree, and runs the binding's tests from a copy
# there: they import the installed package, which must load the library it carries. The tests
# read the reference files (mm.h, tests/test_layout.c) of this checkout (LIBMM_SOURCE_DIR).
# The library in the wheel must export what lib/libmm.so.0 exports, version nodes included.
check-python-wheel: python-wheel $(SHARED)
	@if ! $(PYTHON) -c 'import numpy, venv' >/dev/null 2>&1; then \
	  echo "check-python-wheel: SKIPPED: $(PYTHON) lacks numpy or venv"; exit 0; fi; \
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv --system-site-packages "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --no-index --no-deps $(PYPKG_DIR)/libmm-$(VER)-*.whl; \
	whl_so=$$(find "$$tmp/venv" -name $(SONAME) | head -n 1); \
	nm -D --defined-only --with-symbol-versions $(SHARED) | awk '{print $$3}' | sort > "$$tmp/make.syms"; \
	nm -D --defined-only --with-symbol-versions "$$whl_so" | awk '{print $$3}' | sort > "$$tmp/wheel.syms"; \
	diff -u "$$tmp/make.syms" "$$tmp/wheel.syms" || { echo "check-python-wheel: the wheel's $(SONAME) exports other symbols than $(SHARED)"; exit 1; }; \
	cp -r bindings/python/tests "$$tmp/tests"; \
	cd "$$tmp/tests" && env -u LIBMM_LIBRARY -u LIBMM_LIBDIR LIBMM_SOURCE_DIR=$(CURDIR) \
	  PYTHONDONTWRITEBYTECODE=1 "$$tmp/venv/bin/python" -m unittest discover -s . -t . && \
	env -u LIBMM_LIBRARY -u LIBMM_LIBDIR VIRTUAL_ENV_DIR="$$tmp/venv" "$$tmp/venv/bin/python" -c \
	  'import os, libmm, libmm._lib as l; d = os.path.dirname(libmm.__file__); \
	   assert d.startswith(os.environ["VIRTUAL_ENV_DIR"]), d; \
	   assert l._dll._name == os.path.join(d, l.SONAME), l._dll._name; \
	   print("check-python-wheel: libmm", libmm.version(), "from", l._dll._name)' \
	  || exit 1
