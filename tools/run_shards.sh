#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/run_shards.sh N CMD [ARG...] — runs N copies of the test runner command CMD at once,
# sharing one claim file (MM_TEST_CLAIM, tests/runner.h) so each test runs in exactly one copy;
# then prints each copy's output in turn and one closing "N passed, N failed" line with the sums.
# CMD may be a wrapper ending in the runner (e.g. valgrind ... build/tests/runner). Exits non-zero
# when any copy failed, exited non-zero, or ended without its summary line.
# Why: the runner is single-threaded and most of CI's time is spent in it (plain, sanitizers,
# valgrind); N = the number of cores halves those steps on CI's 2-core machines.
set -u
if [ $# -lt 2 ] || ! [ "$1" -ge 1 ] 2>/dev/null; then
    echo "usage: tools/run_shards.sh N CMD [ARG...]" >&2
    exit 2
fi
n=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/mm_shards_XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
pids=()
for ((i = 0; i < n; i++)); do
    MM_TEST_CLAIM="$dir/claim" "$@" > "$dir/out$i" 2>&1 &
    pids+=($!)
done
rc=0
passed=0
failed=0
skipped=0
for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || rc=1
    echo "---- shard $((i + 1)) of $n"
    grep -v -E '^[0-9]+ passed, [0-9]+ failed$|^note: [0-9]+ skipped' "$dir/out$i"
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/out$i" | tail -1)
    if [ -z "$summary" ]; then
        echo "shard $((i + 1)) ended without its summary line"
        rc=1
        continue
    fi
    set -- $summary
    passed=$((passed + $1))
    failed=$((failed + $3))
    s=$(sed -n 's/^note: \([0-9]\{1,\}\) skipped.*/\1/p' "$dir/out$i" | tail -1)
    skipped=$((skipped + ${s:-0}))
done
[ "$skipped" -gt 0 ] && echo "note: $skipped skipped (reasons on the skip lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || rc=1
exit $rc
