# shellcheck shell=bash
# Helpers for shell tests that run vmplugd on a fake USB tree (sourced
# after tap.sh). The test re-runs itself under usbbed-run, so vmplugd,
# vmplugctl and QEMU all see the same umockdev testbed.

: "${top_builddir:?tap.sh sets it}"
USBBED_RUN=$top_builddir/tests/integration/usbbed-run
[ -x "$USBBED_RUN" ] || skip_all "built without umockdev (apt-get install libumockdev-dev)"
if [ -z "${USBBED_SOCKET:-}" ]; then
	exec "$USBBED_RUN" -- bash "$0" "$@"
fi
# vmplugd built with ASan runs under the umockdev preload
export ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}"
VMPLUGCTL=${VMPLUGCTL:-$top_builddir/vmplugctl}

plug() { "$USBBED_RUN" plug "$@"; }
unplug() { "$USBBED_RUN" unplug "$@"; }

# write_conf DIR: vmplug.conf with a private control socket; VM files
# come from the caller. The modes are a root-owned config's.
write_conf() {
	local dir=$1
	mkdir -p "$dir/vm.d"
	cat >"$dir/vmplug.conf" <<CONF
[daemon]
control-socket = $dir/control.sock
${CONTROL_GROUP:+control-group = $CONTROL_GROUP}
cache-dir = $dir/cache
CONF
	chmod -R go-w "$dir"
}

# start_vmplugd CONFDIR LOG [ARGS]: in the foreground, in the background
# of this shell; waits until its control socket answers.
start_vmplugd() {
	local conf=$1 log=$2
	shift 2
	# shellcheck disable=SC2046
	$(vmplugd_cmd) -f -c "$conf" "$@" 2>>"$log" &
	VMPLUGD_PID=$!
	if ! wait_for 100 ctl_ok "$conf/control.sock"; then
		diag "vmplugd did not start:"
		sed 's/^/# /' "$log"
		return 1
	fi
}

ctl_ok() { "$VMPLUGCTL" -s "$1" status >/dev/null 2>&1; }

stop_vmplugd() {
	[ -n "${VMPLUGD_PID:-}" ] || return 0
	kill -TERM "$VMPLUGD_PID" 2>/dev/null
	wait "$VMPLUGD_PID"
	local rc=$?
	VMPLUGD_PID=
	return $rc
}
