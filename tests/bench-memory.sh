#!/bin/bash
# bench/memory --short still runs (vmplugd with a few VMs played by fake
# QMP peers, four inputs each) and prints its numbers. The numbers
# themselves belong in bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

bench=$top_builddir/bench/memory
[ -x "$bench" ] || skip_all "bench/memory is not built"
bench_short memory
check "it describes the machine" grep -q "^machine: .* cores, kernel " "$out"
check "it says whether sinks could be made" grep -q "^/dev/uinput: " "$out"
for vms in 1 4; do
	check "$vms VMs: peak RSS, RSS and fds" grep -Eq \
		"^ +$vms VMs: peak RSS +[0-9]+ kB +RSS +[0-9]+ kB \(anonymous +[0-9]+ kB\) +[0-9]+ fds" "$out"
done
# (negative when the allocator had room already: RSS is measured, not modelled)
check "it reports the cost per VM" grep -Eq "^per VM beyond the first: -?[0-9.]+ kB" "$out"
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
