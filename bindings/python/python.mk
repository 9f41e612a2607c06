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
