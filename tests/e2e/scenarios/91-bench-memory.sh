#!/bin/sh
# Scenario: bench/memory runs where /dev/uinput exists, so every sink is
# made (a measurement, not a test: its numbers are printed for
# bench/RESULTS.md and never judged).
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bench=$VMPLUG_BUILD/bench/memory
[ -x "$bench" ] || skip "bench/memory is not built"
# 64 VMs are 260 sinks, each made and given to udev under TCG
check "bench/memory runs" env BENCH_START_SECONDS=300 "$bench" >"$T/bench" 2>&1
sed 's/^/  # /' "$T/bench"
