#!/bin/bash
# bench/flood --short still runs: a second control client's query-status
# is answered while one client floods waiting requests and a fake QEMU
# floods events and replies (each answer within bench/benchlib's 10 s, a
# bound for a blocked loop only). The p99 figures belong in
# bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

bench=$top_builddir/bench/flood
[ -x "$bench" ] || skip_all "bench/flood is not built"
bench_short flood "every query-status was answered"
check "it describes the machine" grep -q "^machine: .* cores, kernel " "$out"
for what in "no flood" "QEMU floods" "a client floods" "both flood"; do
	check "query-status, $what: figures" grep -Eq "^query-status, $what +median .* p99 " "$out"
done
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
