#!/bin/bash
# bench/idle --short still runs (vmplugd with two real QEMUs, nothing
# happening) and prints its figures. What they are belongs in
# bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

[ -n "${QEMU_SYSTEM:-}" ] || skip_all "no QEMU to run (configure looks for qemu-system-x86_64)"
bench_short idle
check "it describes the machine" grep -q "^machine: .* cores, kernel " "$out"
check "it names the QEMU and the VMs" grep -q "^QEMU [0-9.]* .* 2 VMs connected" "$out"
check "it reports the idle window" grep -q "^vmplugd over 3 s idle with 2 VMs connected" "$out"
check "it reports wake-ups" grep -Eq "^  wake-ups .* [0-9]+  \([0-9.]+/s\)$" "$out"
check "it reports context switches" grep -Eq "^  context switches +[0-9]+ voluntary, [0-9]+ nonvoluntary$" "$out"
check "it reports CPU time" grep -Eq "^  CPU time +[0-9]+\.[0-9]{3} ms$" "$out"
check "it reports system calls or why not" grep -q "^system calls" "$out"
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
