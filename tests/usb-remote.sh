#!/bin/bash
# [usb-remote] slots against a real QEMU: vmplugd adds each slot's socket
# chardev and usb-redir device when the VM comes up, again after QEMU
# restarts, adopts them after a vmplugd restart without adding them twice,
# replaces a half-made slot or one that listens elsewhere, and removes
# what a reload takes out of the configuration. A peer that speaks
# garbage to a slot, or a second peer, breaks nothing else. What QEMU has
# is read on its own monitor (qom-list, query-chardev).
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'exec 7>&- 8>&-; stop_vmplugd; stop_all_qemu; rm_scratch' EXIT

# bed.sh gives the test a network namespace of its own when it can: its
# loopback is down and its ports are nobody else's.
if [ -n "${USBBED_NETNS:-}" ]; then
	ip link set lo up || bail "cannot bring up loopback in the test's namespace"
	port=4000
else
	port=$((20000 + $$ % 20000))
fi

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
write_conf "$conf"
write_vm() {
	cat >"$conf/vm.d/alpha.conf"
	chmod go-w "$conf/vm.d/alpha.conf"
}
write_vm <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
usb-bus = xhci.0
[usb-remote "desk"]
listen = $port
[usb-remote "dongle"]
listen = $SCRATCH/dongle.redir
CONF

# The slots QEMU NAME has, one line each, sorted: "device ID" for a
# usb-redir device, "chardev LABEL FILENAME" for a chardev of vmplug's.
redir_in_qemu() {
	{
		qmp_check "$1" qom-list '{"path": "/machine/peripheral"}' |
			jq -r '.[] | select(.type == "child<usb-redir>") | "device \(.name)"'
		qmp_check "$1" query-chardev |
			jq -r '.[] | select(.label | startswith("vmplug-")) | "chardev \(.label) \(.filename)"'
	} | sort
}
redir_is() { wait_output 100 "$2" "QEMU $1" redir_in_qemu "$1"; }

both="chardev vmplug-redir-desk disconnected:tcp:127.0.0.1:$port,server=on
chardev vmplug-redir-dongle disconnected:unix:$SCRATCH/dongle.redir,server=on
device vmplug-redir-desk
device vmplug-redir-dongle"

qemu_start alpha
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "VM up: each slot's chardev listens and its usb-redir device is on the bus" \
	redir_is alpha "$both"
check "the slots are on the VM's usb-bus" \
	test "$(qmp_check alpha qom-get '{"path": "/machine/peripheral/vmplug-redir-desk", "property": "parent_bus"}')" \
	= /machine/peripheral/xhci/xhci.0
check "QEMU lists the slot as a USB device" \
	wait_for 50 sh -c "'$QMP_CLIENT' -r '$SCRATCH/alpha.chk' human-monitor-command '{\"command-line\": \"info usb\"}' |
		grep -q 'USB Redirection Device, ID: vmplug-redir-desk'"

qemu_stop alpha
qemu_start alpha
check "QEMU restarted: both slots are back" redir_is alpha "$both"

stop_vmplugd
: >"$SCRATCH/vmplugd2.log"
start_vmplugd "$conf" "$SCRATCH/vmplugd2.log" || bail "vmplugd did not restart"
check "vmplugd restarted: it adopts the slots" \
	wait_for 100 grep -q "vm alpha: ready, 2 object(s) of vmplug's already there" \
	"$SCRATCH/vmplugd2.log"
check "... and adds nothing twice" redir_is alpha "$both"
check "... nor removes or re-adds them" \
	bash -c "! grep -E 'usb-remote .*(attached|detached|failed)' '$SCRATCH/vmplugd2.log'"

# Two peers on one slot: QEMU serves the first, the second waits until
# the first leaves; the other slot, QEMU and vmplugd go on. (QEMU's
# usb-redir reads its socket only while the VM runs.)
qmp_check alpha cont >/dev/null
peer_of_desk() {
	qmp_check alpha query-chardev |
		jq -r '.[] | select(.label == "vmplug-redir-desk") | .filename'
}
exec 7<>"/dev/tcp/127.0.0.1/$port"
check "a peer connects to a slot" \
	wait_for 100 sh -c "'$QMP_CLIENT' -r '$SCRATCH/alpha.chk' query-chardev | grep -q 'tcp:127.0.0.1:$port,server=on <-> '"
first=$(peer_of_desk)
exec 8<>"/dev/tcp/127.0.0.1/$port"
exec 7>&-
check "a second peer is served once the first has gone" \
	wait_for 100 sh -c "f=\$('$QMP_CLIENT' -r '$SCRATCH/alpha.chk' query-chardev | jq -r '.[] | select(.label == \"vmplug-redir-desk\") | .filename'); [ \"\$f\" != '$first' ] && case \$f in disconnected:*) false;; esac"
exec 8>&-
check "... and when it leaves too, the slot listens again; both slots are there" \
	redir_is alpha "$both"
check "... and vmplugd answers" "$VMPLUGCTL" -s "$conf/control.sock" status

# A peer that speaks garbage: QEMU 7.2's usb-redir aborts on an invalid
# packet (an assertion in hw/usb/redirect.c), so a slot must only be
# reachable by whoever may stop the VM. vmplugd sees the VM go and puts
# the slots back when QEMU is started again.
exec 7<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.0\r\n\r\n' >&7
sleep 0.1 # two reads for QEMU, as a peer's packets come
printf '\377\377\377\377garbage\0\0\0\0' >&7 2>/dev/null || true
exec 7>&-
qemu_died() { ! kill -0 "$(qemu_pid alpha)" 2>/dev/null; }
if wait_for 30 qemu_died; then
	diag "QEMU aborted on the garbage: $(tail -n 1 "$SCRATCH/alpha.err")"
	qemu_stop alpha
	check "garbage killed QEMU: vmplugd saw the VM go" \
		wait_for 100 grep -q "vm alpha: QEMU gone" "$SCRATCH/vmplugd2.log"
	qemu_start alpha
else
	diag "QEMU survived the garbage"
fi
check "garbage on a slot: the VM has both slots (again)" redir_is alpha "$both"
check "... and vmplugd answers" "$VMPLUGCTL" -s "$conf/control.sock" status
qmp_check alpha stop >/dev/null

# A slot QEMU has half (a chardev of vmplug's without its device, as a
# vmplugd killed between the two commands leaves it) and one whose
# address is not the configured one: both replaced when vmplugd comes.
stop_vmplugd
qmp_check alpha device_del '{"id": "vmplug-redir-dongle"}' >/dev/null
wait_for 100 sh -c "! '$QMP_CLIENT' -r '$SCRATCH/alpha.chk' qom-list '{\"path\": \"/machine/peripheral\"}' | grep -q vmplug-redir-dongle"
qmp_check alpha chardev-add "{\"id\": \"vmplug-redir-dongle\", \"backend\": {\"type\": \"socket\",
	\"data\": {\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$SCRATCH/stale.redir\"}},
	\"server\": true, \"wait\": false}}}" >/dev/null
start_vmplugd "$conf" "$SCRATCH/vmplugd3.log" || bail "vmplugd did not restart"
check "a half-made slot found in QEMU is made again on the configured socket" \
	redir_is alpha "$both"

status_remotes() { "$VMPLUGCTL" -s "$conf/control.sock" status | grep remote | tr -s ' '; }
check "status shows each slot listening, and where" \
	wait_output 100 " vmplug-redir-desk listening remote tcp:127.0.0.1:$port -
 vmplug-redir-dongle listening remote unix:$SCRATCH/dongle.redir -" status status_remotes

# Reload: one slot moves to another port, the other leaves the configuration.
: >"$SCRATCH/monitor"
"$VMPLUGCTL" -s "$conf/control.sock" monitor >"$SCRATCH/monitor" 2>&1 &
monitor_pid=$!
wait_for 50 grep -q watching "$SCRATCH/monitor"
write_vm <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
usb-bus = xhci.0
[usb-remote "desk"]
listen = 127.0.0.1:$((port + 1))
CONF
kill -HUP "$VMPLUGD_PID"
check "reload: a removed slot goes, a moved one listens on its new port" \
	redir_is alpha "chardev vmplug-redir-desk disconnected:tcp:127.0.0.1:$((port + 1)),server=on
device vmplug-redir-desk"
events() { grep -o 'REMOTE_[A-Z]* *alpha vmplug-redir-[a-z]*' "$SCRATCH/monitor" | tr -s ' ' | sort | tr '\n' ';'; }
check "monitor saw the slots go and the moved one come back" \
	wait_output 100 "REMOTE_ADDED alpha vmplug-redir-desk;REMOTE_REMOVED alpha vmplug-redir-desk;REMOTE_REMOVED alpha vmplug-redir-dongle;" \
	monitor events
kill "$monitor_pid"
wait "$monitor_pid" 2>/dev/null

# QEMU refuses the device (no such bus): the slot's chardev does not stay
# behind, the failure is said with QEMU's words and tried again.
cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
usb-bus = nosuchbus.0
[usb-remote "lost"]
listen = $SCRATCH/lost.redir
CONF
chmod go-w "$conf/vm.d/beta.conf"
qemu_start beta
: >"$SCRATCH/vmplugd4.log"
stop_vmplugd
start_vmplugd "$conf" "$SCRATCH/vmplugd4.log" || bail "vmplugd did not restart"
check "a slot QEMU refuses: its failure is logged with QEMU's reason" \
	wait_for 100 grep -q "usb-remote vmplug-redir-lost: attach failed, will retry: .*nosuchbus" \
	"$SCRATCH/vmplugd4.log"
check "... and its chardev is removed again" redir_is beta ""
rm "$conf/vm.d/beta.conf"
kill -HUP "$VMPLUGD_PID"
qemu_stop beta

stop_vmplugd || not_ok "vmplugd exited with an error"
check "no errors logged" bash -c "! grep -h ' ERROR\|error:' '$log' '$SCRATCH/vmplugd2.log' '$SCRATCH/vmplugd3.log'"
done_testing
