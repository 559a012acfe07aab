#!/bin/bash
# bench/qmp-roundtrip --short still runs against the real QEMU and prints
# its numbers. The timings themselves belong in bench/RESULTS.md, not in
# a test.
. "$(dirname "$0")/lib/tap.sh"

[ -n "${QEMU_SYSTEM:-}" ] || skip_all "no QEMU to run (configure looks for qemu-system-x86_64)"
bench_short qmp-roundtrip
check "it names the QEMU it measured" grep -q "^QEMU [0-9]*\.[0-9]*\.[0-9]* " "$out"
for what in "query-status round trip" "device_add (port mode)" \
	"device_del until DEVICE_DELETED" "device_add + DEVICE_DELETED"; do
	check "it reports median and p99 of: $what" bash -c \
		'grep -F -- "$1" "$2" | grep -Eq "median +[0-9]+\.[0-9]{3} ms +p99 +[0-9]+\.[0-9]{3} ms"' \
		_ "$what" "$out"
done
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
