# shellcheck shell=bash
# TAP helpers for vmplug's shell tests (sourced).
# ok/not_ok/check print TAP lines; skip_all exits the whole test as skipped;
# done_testing prints the plan and exits with the right status.
TAP_N=0
TAP_FAILED=0

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - # SKIP $*"; }
diag() { printf '# %s\n' "$@"; }
# check DESCRIPTION COMMAND...: ok if COMMAND succeeds
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# The plan closes the output; failures are in the TAP lines, so the exit
# status stays 0 (a non-zero status means the test itself broke).
done_testing() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ] || diag "$TAP_FAILED of $TAP_N failed"
	exit 0
}
# bail out of the whole file (infrastructure failure, not a test result)
bail() { echo "Bail out! $*"; exit 1; }

# wait_for TIMEOUT_TENTHS COMMAND...: poll until COMMAND succeeds. Every
# wait in the tests is for something that should happen: the budget is
# multiplied by VMPLUG_WAIT_SCALE (default 3) so that a machine busy with
# a parallel make check (distcheck runs its own beside a TCG guest) slows
# the tests down instead of failing them. A passing wait is not longer.
wait_for() {
	local n=$(($1 * ${VMPLUG_WAIT_SCALE:-3}))
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -le 0 ] && return 1
		sleep 0.1
	done
}

# wait_output TIMEOUT_TENTHS EXPECTED WHAT COMMAND...: poll until COMMAND
# prints EXPECTED; on a timeout, diag what WHAT had instead.
wait_output() {
	local n=$(($1 * ${VMPLUG_WAIT_SCALE:-3})) expected=$2 what=$3 got
	shift 3
	while :; do
		got=$("$@")
		[ "$got" = "$expected" ] && return 0
		n=$((n - 1))
		if [ "$n" -le 0 ]; then
			diag "$what has:" "${got:-(nothing)}" "expected:" "${expected:-(nothing)}"
			return 1
		fi
		sleep 0.1
	done
}

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${VMPLUGD:=$top_builddir/vmplugd}"

# valgrind_cmd PROGRAM: how to run PROGRAM, under valgrind when the
# sanitizer pass asks for it.
valgrind_cmd() {
	if [ "${VMPLUG_VALGRIND:-0}" = 1 ]; then
		echo valgrind --quiet --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite,indirect \
			--show-leak-kinds=definite,indirect "$1"
	else
		echo "$1"
	fi
}
vmplugd_cmd() { valgrind_cmd "$VMPLUGD"; }

# A private scratch directory removed on exit.
# VMPLUG_KEEP_SCRATCH=1 keeps it for a look after a failure.
make_scratch() {
	SCRATCH=$(mktemp -d /tmp/vmplug-test.XXXXXX)
	chmod 755 "$SCRATCH"
	trap 'rm_scratch' EXIT
}
# bench_short NAME [WHAT]: in a scratch directory, run bench/NAME --short
# with its output in $out, and check that it exits with status 0 (WHAT:
# what that status also vouches for).
bench_short() {
	make_scratch
	out=$SCRATCH/out
	"$top_builddir/bench/$1" --short >"$out" 2>&1
	check "$1 --short exits with status 0${2:+ ($2)}" test $? -eq 0
}

rm_scratch() {
	if [ -n "${VMPLUG_KEEP_SCRATCH:-}" ]; then
		echo "# kept $SCRATCH"
	else
		rm -rf "$SCRATCH"
	fi
}
