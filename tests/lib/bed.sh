# shellcheck shell=bash
# Helpers for shell tests that run vmplugd on a fake USB tree (sourced
# after tap.sh). The test re-runs itself under usbbed-run, so vmplugd,
# vmplugctl and QEMU all see the same umockdev testbed.

: "${top_builddir:?tap.sh sets it}"
USBBED_RUN=$top_builddir/tests/integration/usbbed-run
[ -x "$USBBED_RUN" ] || skip_all "built without umockdev (apt-get install libumockdev-dev)"
# umockdev hands each uevent to each listener (vmplugd, QEMU's libusb) as a
# datagram and exits when one has net.unix.max_dgram_qlen of them waiting:
# 10 by default, which a listener that is starting or busy soon has. As
# root, the test runs in a network namespace of its own (the setting is
# per namespace) with a deeper queue.
if [ -z "${USBBED_SOCKET:-}" ] && [ -z "${USBBED_NETNS:-}" ] && [ "$(id -u)" = 0 ] &&
	unshare -n true 2>/dev/null; then
	USBBED_NETNS=1 exec unshare -n bash "$0" "$@"
fi
if [ -z "${USBBED_SOCKET:-}" ]; then
	[ -n "${USBBED_NETNS:-}" ] && echo 4096 >/proc/sys/net/unix/max_dgram_qlen
	exec "$USBBED_RUN" -- bash "$0" "$@"
fi
# vmplugd built with ASan runs under the umockdev preload
export ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}"
VMPLUGCTL=${VMPLUGCTL:-$top_builddir/vmplugctl}

plug() { "$USBBED_RUN" plug "$@"; }
unplug() { "$USBBED_RUN" unplug "$@"; }

# bed_begin: what most tests start with: a scratch directory removed at
# exit with the vmplugd and QEMUs the test started, a configuration in
# $conf (write_conf) and vmplugd's log in $log.
bed_begin() {
	make_scratch
	trap 'stop_vmplugd; stop_all_qemu; rm_scratch' EXIT
	conf=$SCRATCH/conf
	log=$SCRATCH/vmplugd.log
	write_conf "$conf"
}

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

# kbd_vm_conf DIR NAME: an [input "kbd"] on a device that is never there,
# and VM NAME (QMP on $SCRATCH/NAME.qmp) taking it: what switching needs.
kbd_vm_conf() {
	cat >>"$1/vmplug.conf" <<CONF
[input "kbd"]
device = /dev/input/by-id/vmplug-test-no-such-kbd
CONF
	cat >"$1/vm.d/$2.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/$2.qmp
inputs = kbd
CONF
	chmod go-w "$1/vmplug.conf" "$1/vm.d/$2.conf"
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

# ----------------------------------------------------------------- QEMU
# A throwaway QEMU per VM name, started under the same testbed: QMP for
# vmplugd on $SCRATCH/NAME.qmp, a second monitor for the test on
# $SCRATCH/NAME.chk (one client per QMP socket), stderr in NAME.err.
# QEMU_UID=N runs it as uid and gid N with no other groups.
QMP_CLIENT=$top_builddir/tests/e2e/helpers/qmp-client
: "${QEMU_SYSTEM:=qemu-system-x86_64}"
command -v "$QEMU_SYSTEM" >/dev/null || skip_all "QEMU is not installed (apt-get install qemu-system-x86)"

# umockdev names each uevent listener's socket after its fd number, and a
# new listener takes the name over: a QEMU or a vmplugd started later with
# the same number would steal the other's device events. So each QEMU name
# gets its fds from a range of its own (a process gets the lowest free fd).
declare -A QEMU_FD_BASE
qemu_start() {
	local name=$1 base
	shift
	base=${QEMU_FD_BASE[$name]:-}
	if [ -z "$base" ]; then
		base=$((40 + 25 * ${#QEMU_FD_BASE[@]}))
		QEMU_FD_BASE[$name]=$base
	fi
	rm -f "$SCRATCH/$name.qmp" "$SCRATCH/$name.chk"
	: >"$SCRATCH/.fd"
	(
		# not /dev/null: the umockdev preload keeps a small table of /dev opens
		for ((fd = 3; fd < base; fd++)); do eval "exec $fd<\"\$SCRATCH/.fd\""; done
		exec ${QEMU_UID:+setpriv "--reuid=$QEMU_UID" "--regid=$QEMU_UID" --clear-groups} \
			"$QEMU_SYSTEM" -M q35 -accel tcg -S -nodefaults -display none -m 64 \
			-device qemu-xhci,id=xhci \
			-qmp "unix:$SCRATCH/$name.qmp,server=on,wait=off" \
			-chardev "socket,id=chk,path=$SCRATCH/$name.chk,server=on,wait=off" \
			-mon chardev=chk,mode=control "$@" 2>>"$SCRATCH/$name.err"
	) &
	eval "QEMU_PID_$name=$!"
	wait_for 100 test -S "$SCRATCH/$name.chk"
}

qemu_pid() { eval "echo \${QEMU_PID_$1:-}"; }

# qemu_stop NAME [SIGNAL]: TERM by default; KILL leaves a stale socket.
qemu_stop() {
	local pid
	pid=$(qemu_pid "$1")
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "QEMU_PID_$1="
}

qmp_check() { "$QMP_CLIENT" -t 5000 -r "$SCRATCH/$1.chk" "${@:2}"; }

# The vmplug- USB devices QEMU NAME has, one per line, sorted:
# "ID attached=true|false hostaddr=N".
usb_in_qemu() {
	local name=$1 id
	for id in $(qmp_check "$name" qom-list '{"path": "/machine/peripheral"}' |
		jq -r '.[] | select(.type == "child<usb-host>") | .name' | grep '^vmplug-' | sort); do
		printf '%s attached=%s hostaddr=%s\n' "$id" \
			"$(qmp_check "$name" qom-get "{\"path\": \"/machine/peripheral/$id\", \"property\": \"attached\"}")" \
			"$(qmp_check "$name" qom-get "{\"path\": \"/machine/peripheral/$id\", \"property\": \"hostaddr\"}")"
	done
}

# usb_in_qemu_is NAME EXPECTED: wait (10 s) until the list is EXPECTED.
usb_in_qemu_is() { wait_output 100 "$2" "QEMU $1" usb_in_qemu "$1"; }

stop_all_qemu() {
	local v
	for v in $(compgen -v QEMU_PID_); do
		qemu_stop "${v#QEMU_PID_}" KILL
	done
}

# usb_in_qemu_has NAME ID: QEMU NAME has ID attached.
usb_in_qemu_has() { usb_in_qemu "$1" | grep -q "^$2 attached=true"; }
