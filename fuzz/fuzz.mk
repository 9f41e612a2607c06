# SPDX-License-Identifier: MIT
# fuzz/fuzz.mk — fuzzing targets, included from the Makefile (`include fuzz/fuzz.mk`), which
# provides SRCS, HDRS, WARN, SRC_FLAGS. The objects are compiled with -DMMI_DEBUG, so the floor
# contracts (MMI_ASSERT) are checked while fuzzing and replaying.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="model_load json tensor params policy_load diff
#             config"]
#       builds each target with clang-14 + libFuzzer + ASan/UBSan and runs it for FUZZ_SECONDS
#       on a scratch copy of fuzz/seeds/<target> and fuzz/regressions/<target> (libFuzzer
#       writes new inputs into its first corpus directory). A crash fails the target; the input
#       is left in build/fuzz/artifacts/<target>/ — minimise it and add it to
#       fuzz/regressions/<target>/.
#   make fuzz-replay
#       builds the same targets with gcc + ASan/UBSan and fuzz/replay.c (no libFuzzer) and runs
#       every seed and regression input; prints "N passed, N failed" per target.
#   make fuzz-seeds
#       regenerates fuzz/seeds/* with fuzz/gen_seeds.c and fuzz/gen_policy_seeds.c (run after
#       a format change). fuzz/seeds/config is a committed, merged corpus: its inputs are
#       choice sequences, not files, so a format change does not invalidate them.
# Targets: model_load, json (file formats); tensor (shapes), params (run-time parameter
# sequences), policy_load (agent files), diff (fast paths against references: tiled attention,
# chunked SSD scan, tiled CLIP/SigLIP), config (structure-aware: valid, checksummed model and
# policy files with random layer kinds, configs, optimizer settings and policy options, run
# through forward/backward/step and act/observe/update, checkpoints saved and loaded back, now
# and then with mutated values and a fresh CRC, under a counting allocator that fails a
# case when a file makes the library reserve more than 256 MiB at once; FUZZ_CONFIG_DUMP=<path>
# keeps the file a case wrote, for triage).
# fuzz/<target>.dict, when present, is passed to libFuzzer as -dict.

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= model_load json tensor params policy_load diff config
FUZZ_DIR     := build/fuzz
FUZZ_FZ      := -g -O1 -fno-omit-frame-pointer -DMMI_DEBUG \
                -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -Isrc -pthread \
                -fvisibility=hidden
FUZZ_OBJS    := $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(SRCS))
REPLAY_OBJS  := $(patsubst src/%.c,$(FUZZ_DIR)/replay-obj/%.o,$(SRCS))
# `run` options: -max_len bounds inputs, -rss_limit_mb turns a missing size cap into a report.
FUZZ_RUN_OPTS := -max_len=65536 -rss_limit_mb=2048 -timeout=10

.PHONY: fuzz fuzz-build fuzz-replay fuzz-seeds
# Keep the objects (pattern-rule intermediates would be deleted after each link).
.SECONDARY: $(FUZZ_OBJS) $(REPLAY_OBJS)

$(FUZZ_DIR)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_FZ) -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
	  $(SRC_FLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJS) $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_FZ) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_OBJS) \
	  -lm -pthread -o $@

fuzz-build: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))

# One rule per target, so make's jobs (one per core by default) fuzz several targets at once;
# each still gets FUZZ_SECONDS of its own.
fuzz: $(patsubst %,fuzz-run-%,$(FUZZ_TARGETS))

fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@rm -rf $(FUZZ_DIR)/corpus/$*; mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@cp fuzz/seeds/$*/* $(FUZZ_DIR)/corpus/$*/ 2>/dev/null || true
	@cp fuzz/regressions/$*/* $(FUZZ_DIR)/corpus/$*/ 2>/dev/null || true
	@echo "fuzz: $* for $(FUZZ_SECONDS) s"
	@$(FUZZ_DIR)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_OPTS) \
	  $$(test -f fuzz/$*.dict && echo -dict=fuzz/$*.dict) \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ -print_final_stats=1 \
	  $(FUZZ_DIR)/corpus/$* 2>$(FUZZ_DIR)/$*.log || { tail -60 $(FUZZ_DIR)/$*.log; exit 1; }
	@echo "fuzz: $* done: $$(grep -E '^stat::number_of_executed_units' $(FUZZ_DIR)/$*.log)"

# ---- replay with gcc (no libFuzzer) -----------------------------------------------------------
REPLAY_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

$(FUZZ_DIR)/replay-obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -O1 -g -DMMI_DEBUG $(REPLAY_SAN) \
	  $(SRC_FLAGS) -c $< -o $@

$(FUZZ_DIR)/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(REPLAY_OBJS) $(HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(CC) $(FUZZ_CFLAGS) -O1 -g $(REPLAY_SAN) $< fuzz/replay.c $(REPLAY_OBJS) -lm -pthread -o $@

fuzz-replay: $(patsubst %,$(FUZZ_DIR)/replay_%,$(FUZZ_TARGETS))
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(FUZZ_DIR)/replay_$$t fuzz/seeds/$$t fuzz/regressions/$$t || rc=1; \
	done; exit $$rc

# ---- seeds ------------------------------------------------------------------------------------
$(FUZZ_DIR)/gen_seeds: fuzz/gen_seeds.c $(OBJS) $(HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(OBJS) $(LIB_LIBS) -o $@

$(FUZZ_DIR)/gen_policy_seeds: fuzz/gen_policy_seeds.c fuzz/fuzz_policy_load.c $(OBJS) $(HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $< $(OBJS) $(LIB_LIBS) -o $@

fuzz-seeds: $(FUZZ_DIR)/gen_seeds $(FUZZ_DIR)/gen_policy_seeds
	$(FUZZ_DIR)/gen_seeds fuzz/seeds
	mkdir -p fuzz/seeds/policy_load && $(FUZZ_DIR)/gen_policy_seeds fuzz/seeds/policy_load
