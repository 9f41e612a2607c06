#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/run_check.sh — the driver of `make check` (run from the repository root by the Makefile,
# with MAKE and V in the environment). Each step's full output goes to build/check.log; the
# terminal gets one line per step, the names of failing tests, and a closing
# "N passed, N failed": the unit-test runner's tests plus one for each other step. V=1 also
# copies every step's output to the terminal. Exits non-zero when anything failed.
set -u
MAKE=${MAKE:-make}
V=${V:-0}
log=build/check.log
mkdir -p build
: > "$log"
passed=0
failed=0
failures=()

# run NAME CMD...: runs CMD with its output appended to the log (and shown with V=1).
run() {
    local name=$1 t0=$SECONDS rc
    shift
    printf '  %-46s ' "$name"
    printf '\n==== %s: %s\n' "$name" "$*" >> "$log"
    if [ "$V" = 1 ]; then
        echo
        "$@" 2>&1 | tee -a "$log"
        rc=${PIPESTATUS[0]}
    else
        "$@" >> "$log" 2>&1
        rc=$?
    fi
    if [ $rc -eq 0 ]; then
        printf 'ok (%d s)\n' $((SECONDS - t0))
    else
        printf 'FAILED (exit %d)\n' $rc
    fi
    return $rc
}

# step NAME CMD...: a step that counts as one passed or failed test.
# A failing step's last lines are shown right away.
step() {
    local name=$1 before
    before=$(wc -l < "$log")
    if run "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
        [ "$V" = 1 ] || tail -n +"$((before + 3))" "$log" | tail -12 | sed 's/^/    | /'
    fi
}

echo "make check: full output in $log (V=1 shows it here)"
if ! run "build (library, tests, examples, headers)" $MAKE --no-print-directory check-build; then
    echo "build failed; its errors:"
    grep -E 'error|Error|undefined reference' "$log" | head -30
    echo "0 passed, 1 failed"
    exit 1
fi
step "shared library smoke test" build/tests/shared_smoke
step "examples/hello" build/examples/hello
step "C++ header mm.hpp (C++17)" build/tests/test_hpp
step "fuzz corpus replay (ASan + UBSan build)" $MAKE --no-print-directory fuzz-replay
step "doc snippets compile and run (snippets-check)" $MAKE --no-print-directory snippets-check
step "Python bindings" $MAKE --no-print-directory check-python
step "static link dead-stripped (check-static-size)" $MAKE --no-print-directory check-static-size
step "bench report generator (tests/test_bench_report.py)" python3 tests/test_bench_report.py
if grep -q 'check-python: SKIPPED' "$log"; then grep 'check-python: SKIPPED' "$log" | sed 's/^/    /'; fi

# The runner, split over TEST_SHARDS processes (default: the cores; tools/run_shards.sh): its
# "N passed, N failed" is added to the totals, failing tests are named.
shards=${TEST_SHARDS:-$(nproc 2>/dev/null || echo 1)}
before=$(wc -l < "$log")
run "unit tests (build/tests/runner, $shards shards)" tools/run_shards.sh "$shards" build/tests/runner
rc=$?
summary=$(tail -n +"$((before + 1))" "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
if [ -n "$summary" ]; then
    set -- $summary
    passed=$((passed + $1))
    failed=$((failed + $3))
    echo "    runner: $summary"
fi
if [ $rc -ne 0 ]; then
    [ -n "$summary" ] || { failed=$((failed + 1)); }
    failures+=("unit tests:")
    while IFS= read -r line; do failures+=("  $line"); done < <(tail -n +"$((before + 1))" "$log" |
        grep -E '^not ok|^  FAIL' | head -40)
fi

if [ $failed -ne 0 ] || [ ${#failures[@]} -ne 0 ]; then
    echo "FAILED:"
    printf '  %s\n' "${failures[@]}"
    echo "(details in $log)"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ ${#failures[@]} -eq 0 ]
