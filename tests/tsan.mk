# SPDX-License-Identifier: MIT
# tests/tsan.mk — `make check-tsan`: the test runner built with clang's ThreadSanitizer, running
# every test whose name contains "threads" (tests/test_threads.c and the families' own thread
# tests). Included from the Makefile; needs clang-14 and libclang-rt-14-dev (Debian 12).
# The objects go to their own BDIR so the normal build is untouched.
TSAN_CC    ?= clang-14
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
TSAN_BDIR  := build/tsan

.PHONY: check-tsan
check-tsan:
	$(MAKE) --no-print-directory BDIR=$(TSAN_BDIR) CC=$(TSAN_CC) $(TSAN_BDIR)/tests/runner \
	  CFLAGS='-O1 -g $(TSAN_FLAGS)' LIB_LIBS='$(LIB_LIBS) $(TSAN_FLAGS)'
	TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1' $(TSAN_BDIR)/tests/runner threads
