#!/bin/bash
# Instruction counts of the pure cores (matcher, reconciler, router, the
# loop's timers, QMP reply matching), with no timing noise: runs bench/cores under
# `valgrind --tool=callgrind` once per core, collecting only inside that
# core's workload function (run_*: setup excluded), and prints
# instructions per operation.
#
# Usage: bench/cores-callgrind.sh [--short] [BUILD-DIR]
# (BUILD-DIR: where bench/cores was built; default the current directory.)
# Needs valgrind (tests/install-deps.sh installs it) and a build without
# --enable-asan (valgrind cannot run ASan binaries).
set -euo pipefail

short=
build=.
for arg; do
	case $arg in
	--short) short=--short ;;
	-h | --help)
		sed -n '2,10s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) build=$arg ;;
	esac
done
cores=$build/bench/cores
[ -x "$cores" ] || {
	echo "cores-callgrind: no $cores (build it: make bench/cores)" >&2
	exit 2
}
command -v valgrind >/dev/null || {
	echo "cores-callgrind: valgrind is not installed" >&2
	exit 77
}
if grep -q __asan_init "$cores"; then
	echo "cores-callgrind: $cores is built with ASan; valgrind cannot run it" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmplug-callgrind.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "$(valgrind --version), $(uname -m), kernel $(uname -r); bench/cores${short:+ $short}"
printf '%-16s %10s %14s %12s  %s\n' core operations instructions "per op" what
for core in matcher reconciler reconciler-16 reconciler-2048 router-mouse router-keyboard path-mouse path-keyboard timers qmp-10 qmp-10000; do
	case $core in
	path-*) fn=run_path ;;
	reconciler-*) fn=run_reconciler ;;
	router-*) fn=run_router ;;
	qmp-*) fn=run_qmp ;;
	*) fn=run_$core ;;
	esac
	out=$tmp/$core.out
	valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$fn" \
		--callgrind-out-file="$out" "$cores" $short "$core" >"$tmp/$core.txt" 2>"$tmp/$core.err" || {
		echo "cores-callgrind: valgrind failed on $core:" >&2
		cat "$tmp/$core.err" >&2
		exit 1
	}
	ops=$(awk -v c="$core" '$1 == c { print $2 }' "$tmp/$core.txt")
	what=$(sed -n "s/^$core .*(\(.*\))\$/\1/p" "$tmp/$core.txt")
	ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out" | head -n 1)
	if [ -z "$ops" ] || [ -z "$ir" ] || [ "$ops" -eq 0 ]; then
		echo "cores-callgrind: no count for $core" >&2
		cat "$tmp/$core.txt" "$tmp/$core.err" >&2
		exit 1
	fi
	printf '%-16s %10d %14d %12.1f  %s\n' "$core" "$ops" "$ir" \
		"$(echo "$ir / $ops" | bc -l)" "$what"
done
