#!/bin/sh
# Scenario: bench/input-latency runs on the real kernel (a measurement, not a test: its numbers
# are printed for bench/RESULTS.md and never judged). Short here (0.5 s at each rate); the full
# run is `E2E_BENCH=full tests/e2e/run --build-dir BUILD 90` (5 s at each rate, vmplugd with
# real-time priority, then the keyboard again with normal priority).
# e2e-timeout: 900 (the full run; the short one takes about a minute)
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bench=$VMPLUG_BUILD/bench/input-latency
[ -x "$bench" ] || skip "bench/input-latency is not built"
mode=--short
grep -q 'e2e\.bench=full' /proc/cmdline && mode=
# shellcheck disable=SC2086 # $mode is one option or none
check "bench/input-latency ${mode:-(full)} runs" "$bench" $mode >"$T/bench" 2>&1
for what in "keyboard at 125" "keyboard at 1000" "keyboard at 8000" \
	"mouse at 125" "mouse at 1000" "mouse at 8000"; do
	check "it reports $what frames/s" grep -q "^$what frames/s" "$T/bench"
done
check "it reports what vmplugd adds" grep -q "added by vmplugd .*median" "$T/bench"
check "it reports vmplugd's CPU per 1000 frames" grep -q "ms per 1000 frames" "$T/bench"
sed 's/^/  # /' "$T/bench"
# The full run compares: vmplugd as a plain process, as without vmplugd.service.
if [ -z "$mode" ]; then
	check "bench/input-latency --normal-priority runs" "$bench" --normal-priority --device keyboard \
		>"$T/normal" 2>&1
	sed 's/^/  # /' "$T/normal"
fi
