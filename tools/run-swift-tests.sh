#!/usr/bin/env bash
# Runs the built XCTest bundle one test target at a time, each in its own bounded
# process pinned to one CPU, so that a hang becomes a named failure within minutes.
#
# Why pinned: on these two-vCPU machines the CPUs' monotonic clocks disagree by a few
# milliseconds, and Foundation's run loop (which XCTest's per-test waits use) can then
# sleep forever; a process confined to one CPU never sees the disagreement (measured;
# docs/testing.md). Two threads still run, so thread-count tests stay meaningful; only
# the test run is pinned, the build uses both cores.
#
# Usage: tools/run-swift-tests.sh BUNDLE   (after `swift build --build-tests`)
# Environment: PRECLAB_TEST_TIMEOUT seconds per test target (default 420).
# Prints one line per target and closes with
#   swift tests: N passed, N failed, N skipped
# exit 0 only when every target ran to the end with no failure.
set -u
bundle=${1:?usage: run-swift-tests.sh PATH/TO/preclabPackageTests.xctest}
limit=${PRECLAB_TEST_TIMEOUT:-420}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# The first CPU this process may run on (e.g. "0-1" or "2,3" -> 0 or 2).
cpu=$(sed -nE 's/^Cpus_allowed_list:[[:space:]]*([0-9]+).*/\1/p' /proc/self/status)
cpu=${cpu:-0}

listing=$(timeout 60 taskset -c "$cpu" "$bundle" --list-tests 2>&1) || {
    echo "swift tests: could not list the tests of $bundle:"; echo "$listing" | tail -n 20
    echo "swift tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
# "Target.Class/testName" lines -> the classes of each target.
classes=$(grep -E '^[A-Za-z0-9_]+\.[A-Za-z0-9_]+/' <<<"$listing" | cut -d/ -f1 | sort -u)
targets=$(cut -d. -f1 <<<"$classes" | sort -u)
[ -n "$targets" ] || { echo "swift tests: no tests found in $bundle"; echo "swift tests: 0 passed, 1 failed, 0 skipped"; exit 1; }

total_passed=0; total_failed=0; total_skipped=0; status=0
for target in $targets; do
    selection=$(grep -E "^$target\." <<<"$classes" | paste -sd, -)
    log="$logs/$target.log"
    start=$(date +%s)
    # -k: a process that ignores SIGTERM is killed 10 s later.
    timeout -k 10 "$limit" taskset -c "$cpu" "$bundle" "$selection" >"$log" 2>&1
    rc=$?
    seconds=$(( $(date +%s) - start ))
    # Per-test outcomes, from XCTest's own lines.
    passed=$(grep -cE "^Test Case '.*' passed \(" "$log")
    failed=$(grep -cE "^Test Case '.*' failed \(" "$log")
    skipped=$(grep -cE "^Test Case '.*' skipped \(" "$log")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        # The test that started and never finished.
        running=$(awk '
            /^Test Case .* started/ { name = $0; sub(/^Test Case \047/, "", name); sub(/\047 started.*/, "", name); open[name] = 1; last = name }
            /^Test Case .* (passed|failed|skipped) \(/ { name = $0; sub(/^Test Case \047/, "", name); sub(/\047 (passed|failed|skipped) \(.*/, "", name); delete open[name] }
            END { for (n in open) print n }' "$log" | head -n 1)
        echo "HANG: $target ran past $limit s and was killed; still running: ${running:-unknown (before the first test)}"
        echo "----- last lines of $target's output -----"; tail -n 15 "$log"
        failed=$(( failed + 1 )); status=1
    elif [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        echo "FAIL: $target (exit $rc)"
        grep -E "error: |: XCTAssert|Fatal error|^Test Case '.*' failed" "$log" | head -n 40
        if [ "$failed" -eq 0 ]; then
            echo "----- last lines of $target's output -----"; tail -n 15 "$log"
            failed=1
        fi
        status=1
    fi
    # Why anything was skipped, one line each, so a skipped cross-check is visible in CI's log.
    grep -E ": Test skipped" "$log" \
        | sed -E 's/^.*: ([A-Za-z0-9_.]+) : Test skipped(: required [a-z]+ value but got [a-z]+)?( - )?/  skipped \1: /' | sort -u
    echo "$target: $passed passed, $failed failed, $skipped skipped (${seconds} s)"
    total_passed=$(( total_passed + passed )); total_failed=$(( total_failed + failed ))
    total_skipped=$(( total_skipped + skipped ))
done
echo "swift tests: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
