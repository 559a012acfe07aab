#!/bin/sh
# Scenario: bench/memory runs where /dev/uinput exists, so every sink is
# made (a measurement, not a test: its numbers are printed for
# bench/RESULTS.md and never judged).
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bench=$VMPLUG_BUILD/bench/memory
[ -x "$bench" ] || skip "bench/memory is not built"
# Short in make check (1 and 4 VMs); the full run (1, 8 and 64 VMs) is
# `E2E_BENCH=full E2E_SCENARIO_TIMEOUT=300 tests/e2e/run --build-dir BUILD 92`.
mode=--short
grep -q 'e2e\.bench=full' /proc/cmdline && mode=
# 64 VMs are 260 sinks, each made and given to udev under TCG
# shellcheck disable=SC2086 # $mode is one option or none
check "bench/memory ${mode:-(full)} runs" env BENCH_START_SECONDS=300 "$bench" $mode >"$T/bench" 2>&1
sed 's/^/  # /' "$T/bench"
