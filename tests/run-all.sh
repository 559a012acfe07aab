#!/bin/bash
# vmplug's whole test run, as CI runs it: install what is missing, build
# with -Werror + ASan/UBSan and run `make check`, fuzz each parser for a
# bounded time (clang, libFuzzer), run the daemon-facing tests again under
# valgrind, then `make distcheck`, then build the Debian package and
# check it (`make check-package`). Ends with one line
# "N passed, N failed, N skipped" counted from the automake test logs.
#
# Usage (as root on Debian 12): tests/run-all.sh
# Environment: VMPLUG_NO_SKIP=1 (CI: a skipped test fails the run),
# VMPLUG_BUILD_ROOT (default: <source>/build-ci), JOBS,
# VMPLUG_E2E_WORK (default: <source>/build-e2e-cache, see tests/e2e/README.md),
# FUZZ_SECONDS (per fuzz target, default 25).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
root=${VMPLUG_BUILD_ROOT:-$src/build-ci}
jobs=${JOBS:-$(nproc)}
t0=$(date +%s)
# The e2e tests' kernel and udev packages, shared by make check and distcheck.
export VMPLUG_E2E_WORK=${VMPLUG_E2E_WORK:-$src/build-e2e-cache}
failed_stages=()

stage() { printf '\n=== %s (%ds)\n' "$*" $(($(date +%s) - t0)); }
run() {
	local name=$1
	shift
	if ! "$@"; then
		echo "run-all: stage '$name' failed" >&2
		failed_stages+=("$name")
		return 1
	fi
}

stage "dependencies"
"$src/tests/install-deps.sh" || exit 1

stage "autogen"
(cd "$src" && NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1) || { echo "autogen failed" >&2; exit 1; }

build() {
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && "$src/configure" -q "$@" && make -s -j"$jobs")
}

stage "build with -Werror, ASan and UBSan"
rm -rf "$root"
if run "asan build" build "$root/asan" --enable-werror --enable-asan; then
	stage "make check (ASan + UBSan)"
	run "asan check" make -C "$root/asan" -s -j"$jobs" check
fi

stage "fuzz: clang, libFuzzer, ASan + UBSan, ${FUZZ_SECONDS:-25} s per target"
# Its own build: libFuzzer needs the code under test compiled by clang with
# coverage; check-fuzz builds only the fuzz targets and their library.
mkdir -p "$root/fuzz"
if run "fuzz build" bash -c "cd '$root/fuzz' && '$src/configure' -q CC=clang --enable-asan --enable-fuzzer"; then
	run "fuzz" make -C "$root/fuzz" -s -j"$jobs" check-fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-25}" >/dev/null 2>&1
	grep -E '^# fuzz-|^(not )?ok' "$root/fuzz/tests/fuzz/run.log"
fi

stage "build for valgrind"
if run "valgrind build" build "$root/valgrind" --enable-werror; then
	stage "make check-valgrind"
	run "valgrind check" make -C "$root/valgrind" -s -j"$jobs" check-valgrind
	stage "make distcheck"
	if ! run "distcheck" make -C "$root/valgrind" -s -j"$jobs" distcheck >"$root/distcheck.log" 2>&1; then
		tail -n 30 "$root/distcheck.log"
		# distcheck keeps its tree when it fails: name the failing tests
		# and show the end of each one's log.
		find "$root/valgrind" -path '*/vmplug-*/_build/*' -name '*.trs' \
			-exec grep -l -E "^:test-result: (FAIL|ERROR|XPASS)" {} + 2>/dev/null |
			while read -r trs; do
				echo "--- distcheck: ${trs%.trs}.log"
				grep -E "^(FAIL|ERROR|XPASS|not ok)" "${trs%.trs}.log" | head -n 20
				tail -n 40 "${trs%.trs}.log"
			done
	else
		grep -A1 "archives ready" "$root/distcheck.log"
	fi
	stage "make check-package: the Debian package"
	run "package check" make -C "$root/valgrind" -s check-package
fi

stage "summary"
# Every .trs file of both test runs (not distcheck's: it repeats the first).
find "$root/asan" "$root/valgrind" "$root/fuzz" -name '*.trs' \
	-not -path '*/vmplug-*/_build/*' >"$root/all-trs" 2>/dev/null
tally() { xargs -r cat <"$root/all-trs" | grep -c "^:test-result: $1"; }
pass=$(tally PASS)
fail=$(($(tally FAIL) + $(tally ERROR) + $(tally XPASS)))
skip=$(tally SKIP)
xfail=$(tally XFAIL)
pass=$((pass + xfail))
for s in "${failed_stages[@]}"; do
	case $s in
	"asan check" | "valgrind check" | "fuzz" | "package check") ;; # counted through their test logs
	*) fail=$((fail + 1)); echo "stage failed: $s" ;;
	esac
done
if [ "$skip" -gt 0 ]; then
	echo "skipped tests:"
	xargs -r grep -l "^:test-result: SKIP" <"$root/all-trs" | sed 's/^/  /'
	# CI installs everything: there, a test that skips is one that did not run.
	if [ "${VMPLUG_NO_SKIP:-0}" = 1 ]; then
		echo "stage failed: VMPLUG_NO_SKIP=1 and $skip test(s) skipped"
		fail=$((fail + 1))
		failed_stages+=("no skips")
	fi
fi
if [ "$fail" -gt 0 ]; then
	echo "failing tests:"
	xargs -r grep -l -E "^:test-result: (FAIL|ERROR|XPASS)" <"$root/all-trs" |
		while read -r trs; do
			echo "  $trs"
			# the failing checks themselves, and what the test said about them
			grep -E "^(not ok|Bail out!|# *FAIL|# *DIAG|# *not ok)" "${trs%.trs}.log" |
				head -n 60 | sed 's/^/    /'
		done
fi
echo "total time $(($(date +%s) - t0))s"
line="$pass passed, $fail failed"
[ "$skip" -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" -eq 0 ] && [ ${#failed_stages[@]} -eq 0 ]
