#!/bin/bash
# bench/scale --short still runs (vmplugd, real QEMUs and a uevent storm
# on a fake USB tree), checks QEMU's final state and prints its numbers.
# The numbers themselves belong in bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

bench=$top_builddir/bench/scale
[ -x "$bench" ] || skip_all "bench/scale is not built (no umockdev)"
[ -n "${QEMU_SYSTEM:-}" ] || skip_all "no QEMU to run (configure looks for qemu-system-x86_64)"
bench_short scale "QEMU's final state is right"
check "it describes the machine" grep -q "^machine: .* cores, kernel " "$out"
for size in 1x 2x; do
	check "$size: QEMU has exactly what the rules claim" bash -c \
		'grep -A7 "^$1: " "$2" | grep -q "QEMU check: every VM has exactly"' _ "$size" "$out"
	check "$size: it reports convergence and vmplugd's CPU" bash -c \
		'grep -A7 "^$1: " "$2" | grep -Eq "converged [0-9]+ ms" &&
		 grep -A7 "^$1: " "$2" | grep -Eq "vmplugd CPU, storm to converged: [0-9]+ ms"' \
		_ "$size" "$out"
done
check "it tabulates how the cost grows" grep -Eq "^  2x +[0-9]+ +[0-9]+ +[0-9]+ .* us  \(CPU x" "$out"
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
