#!/bin/sh
# Scenario: bench/input-latency runs on the real kernel (a measurement, not a test: its numbers
# are printed for bench/RESULTS.md and never judged).
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bench=$VMPLUG_BUILD/bench/input-latency
[ -x "$bench" ] || skip "bench/input-latency is not built"
check "bench/input-latency runs" "$bench" 3000 3 >"$T/bench" 2>&1
sed 's/^/  # /' "$T/bench"
