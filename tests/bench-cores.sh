#!/bin/bash
# bench/cores --short still drives each pure core, and with valgrind
# bench/cores-callgrind.sh --short still counts their instructions per
# operation. The counts belong in bench/RESULTS.md, not in a test.
. "$(dirname "$0")/lib/tap.sh"

cores=$top_builddir/bench/cores
bench_short cores
for core in matcher reconciler reconciler-16 reconciler-2048 router-mouse router-keyboard path-mouse path-keyboard qmp-10 qmp-10000; do
	check "it runs the $core" grep -Eq "^$core +[0-9]+ operations +[0-9.]+ ns/op" "$out"
done
if ! command -v valgrind >/dev/null; then
	skip "instruction counts: no valgrind (tests/install-deps.sh installs it)"
elif grep -q __asan_init "$cores"; then
	# Not a skip: make check-valgrind (a build without ASan) runs this
	# part; valgrind cannot run an ASan build.
	diag "instruction counts: checked by make check-valgrind, not in an ASan build"
else
	cg=$SCRATCH/callgrind
	"$top_srcdir/bench/cores-callgrind.sh" --short "$top_builddir" >"$cg" 2>&1
	check "cores-callgrind.sh --short exits with status 0" test $? -eq 0
	for core in matcher reconciler reconciler-16 reconciler-2048 router-mouse router-keyboard path-mouse path-keyboard qmp-10 qmp-10000; do
		check "it counts instructions per operation of the $core" \
			grep -Eq "^$core +[0-9]+ +[0-9]+ +[0-9]+\.[0-9] " "$cg"
	done
	cat "$cg" >>"$out"
fi
[ "$TAP_FAILED" -eq 0 ] || sed 's/^/# /' "$out"
done_testing
