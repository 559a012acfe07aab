#!/bin/bash
# bench/hotplug-latency --short still runs (vmplugd and a real QEMU on a
# fake USB tree) and prints its numbers. The numbers themselves belong in
# bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

bench=$top_builddir/bench/hotplug-latency
[ -x "$bench" ] || skip_all "bench/hotplug-latency is not built (no umockdev)"
[ -n "${QEMU_SYSTEM:-}" ] || skip_all "no QEMU to run (configure looks for qemu-system-x86_64)"
bench_short hotplug-latency
check "it describes the machine" grep -q "^machine: .* cores, kernel " "$out"
for what in "query-status round trip" "device_add round trip" "device_del to DEVICE_DELETED" \
	"plug: QEMU has it open (attached: true)" "plug: QEMU replies to device_add" \
	"plug: vmplugd reports USB_ATTACHED" "unplug: QEMU's DEVICE_DELETED" \
	"unplug: vmplugd has it (USB_DETACHED)" "plug: uevent to device_add at QEMU" \
	"unplug: uevent to device_del at QEMU"; do
	check "it reports median and p99 of: $what" bash -c \
		'grep -F -- "$1" "$2" | grep -Eq "median +[0-9]+\.[0-9]{3} ms +p99 +[0-9]+\.[0-9]{3} ms"' \
		_ "$what" "$out"
done
check "it reports the overhead over the floor" \
	grep -Eq "plug: USB_ATTACHED - device_add .*median +[-+][0-9]" "$out"
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
