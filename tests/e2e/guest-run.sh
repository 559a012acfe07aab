#!/bin/sh
# Runs the e2e scenarios one after another inside the test guest and prints a summary.
# shellcheck shell=dash
#
# Usage (from the guest's /init): guest-run.sh [FILTER...]
# A scenario runs if its name contains one of the FILTERs (all run without any).
# Each gets a fresh, plugged-in keyboard gadget, its own scratch directory $T
# and its own process group, which is killed when it ends or overruns its time
# limit (E2E_SCENARIO_TIMEOUT seconds, or "# e2e-timeout: S" in the scenario).

export VMPLUG_SRC=/mnt/src
export VMPLUG_BUILD=/mnt/build
export E2E_DIR="$VMPLUG_SRC/tests/e2e"
export E2E_BIN="$VMPLUG_BUILD/tests/e2e/helpers"
export E2E_LOGDIR="${E2E_LOGDIR:-$VMPLUG_BUILD/tests/e2e/logs}"
# The systemd mode runs scenarios-systemd instead (systemd-boot.sh).
scenarios=${E2E_SCENARIOS:-$E2E_DIR/scenarios}
export PATH="$E2E_BIN:$PATH"
# A build with --enable-coverage writes its counts into the build share,
# in a tree of their own that make coverage merges (the host's tests write
# theirs meanwhile; tests/e2e/run passes how much of the host's path to cut).
read -r cmdline </proc/cmdline
for word in $cmdline; do
	case $word in
	e2e.gcov_strip=*)
		export GCOV_PREFIX="$VMPLUG_BUILD/tests/e2e/gcov" GCOV_PREFIX_STRIP="${word#*=}"
		;;
	esac
done
default_timeout=${E2E_SCENARIO_TIMEOUT:-300}

E2E_SCENARIO=runner
T=/run/e2e/runner
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$E2E_DIR/lib.sh"

# selected NAME: does NAME contain one of the FILTERS?
selected() {
	local f
	for f in $FILTERS; do
		case $1 in
		*"$f"*) return 0 ;;
		esac
	done
	return 1
}

# elapsed START: seconds since the uptime START, one decimal.
elapsed() {
	echo "$1 $(uptime_s)" | awk '{ printf "%.1f", $2 - $1 }'
}

count() {
	grep -c "^$1 " "$2" 2>/dev/null
}

# run_scenario FILE NAME: run it in its own session under a watchdog; returns its status.
run_scenario() {
	local file=$1 name=$2 limit pid dog status
	limit=$(sed -n 's/^# e2e-timeout: *\([0-9][0-9]*\).*/\1/p' "$file")
	[ -n "$limit" ] || limit=$default_timeout
	(cd "$T" && exec setsid sh "$file") &
	pid=$!
	setsid sh -c "sleep $limit; echo \$\$ >'$T/.timed-out'; kill -KILL -$pid" \
		>/dev/null 2>&1 &
	dog=$!
	wait "$pid" 2>/dev/null
	status=$?
	kill -KILL "-$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	# Whatever the scenario left running in its group goes with it. (kill
	# -SIGNAL -PGID: dash, Debian's sh that the systemd mode runs, takes no "--".)
	kill -KILL "-$pid" 2>/dev/null
	if [ -f "$T/.timed-out" ]; then
		fail "$name did not finish within $limit s"
	fi
	return "$status"
}

FILTERS="$*"
rm -rf "$E2E_LOGDIR"
passed=0 failed=0 skipped=0
echo "e2e: $(uname -r), udevd running, QEMU $NESTED_QEMU"

# demo-*.sh (the narrated demo) runs only when a filter names it.
for file in "$scenarios"/[0-9]*.sh "$scenarios"/demo-*.sh; do
	[ -f "$file" ] || continue
	name=${file##*/}
	name=${name%.sh}
	if [ -n "$FILTERS" ] && ! selected "$name"; then
		continue
	fi
	case $name in
	demo-*) [ -n "$FILTERS" ] || continue ;;
	esac
	export E2E_SCENARIO="$name"
	export T="/run/e2e/$name"
	export E2E_RESULTS="$T/.results"
	rm -rf "$T"
	mkdir -p "$T"
	: >"$E2E_RESULTS"
	echo "== $name"
	start=$(uptime_s)
	export E2E_START="$start"
	status=0
	if gadget_reset; then
		run_scenario "$file" "$name"
		status=$?
	else
		fail "$name: keyboard gadget could not be set up"
	fi
	# The emulated USB devices it had plugged in go; the next starts with none.
	if usbhw_available && ! usbhw_reset; then
		fail "$name: the emulated USB devices could not be unplugged"
	fi
	npass=$(count PASS "$E2E_RESULTS")
	nfail=$(count FAIL "$E2E_RESULTS")
	nskip=$(count SKIP "$E2E_RESULTS")
	if [ "$status" -ne 0 ] && [ "$nfail" -eq 0 ] && [ ! -f "$T/.timed-out" ]; then
		fail "$name exited with status $status"
		nfail=1
	fi
	if [ "$nfail" -gt 0 ]; then
		verdict=failed
		failed=$((failed + 1))
	elif [ "$nskip" -gt 0 ]; then
		verdict=skipped
		skipped=$((skipped + 1))
	elif [ "$npass" -gt 0 ]; then
		verdict=passed
		passed=$((passed + 1))
	else
		fail "$name reported no result"
		verdict=failed
		failed=$((failed + 1))
	fi
	echo "== $name: $verdict ($npass passed, $nfail failed checks, $(elapsed "$start") s)"
	if [ "$verdict" = failed ]; then
		mkdir -p "$E2E_LOGDIR"
		dmesg >"$T/dmesg.txt" 2>&1
		cp -r "$T" "$E2E_LOGDIR/$name"
		echo "   scratch files and dmesg kept in ${E2E_LOGDIR#"$VMPLUG_BUILD"/}/$name of the build tree"
	fi
done

gadget_remove
echo "E2E-SUMMARY passed=$passed failed=$failed skipped=$skipped"
