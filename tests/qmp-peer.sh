#!/bin/bash
# Who serves a VM's QMP socket: vmplugd sends nothing (and so hands no USB
# device) to a QMP server run by anyone but root or the VM's qemu-user, nor
# on a socket whose directory others may write; it says why in status,
# once in the log, and connects when the right QEMU is there.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
bed_begin
# In fd mode vmplugd opens the device as root and hands QEMU the
# descriptor: what must go to the right QEMU only.
# QEMU runs as uid 65534 and creates its sockets in the scratch directory,
# which that uid owns and nobody else may write.
chown 65534:65534 "$SCRATCH"
vm_conf() {
	printf '[vm]\nqmp-socket = %s\n%s[usb "desk"]\nport = 1-1\nattach-mode = fd\n' "$SCRATCH/peer.qmp" "$1" \
		>"$conf/vm.d/peer.conf"
	chmod go-w "$conf/vm.d/peer.conf"
}
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
vm_status() { ctl --json status | jq -r '.return.vms[] | select(.name == "peer") | "\(.state) \(."last-error")"'; }
nobody=$(getent passwd 65534 | cut -d: -f1)
[ -n "$nobody" ] || skip_all "no user with uid 65534"

plug 1-1.2 dev=3 vid=046d pid=0825 name=Webcam
vm_conf ""
QEMU_UID=65534 qemu_start peer
start_vmplugd "$conf" "$log" -v || bail "vmplugd did not start"
why="refusing QEMU on $SCRATCH/peer.qmp: its QMP server runs as uid 65534, not root"
check "a QMP server run by another uid is refused, with the reason in status" \
	wait_output 100 "down $why" "peer's state and last-error" vm_status
check "status: the VM in words, with the reason" grep -qxF "peer (down): $why" <<<"$(ctl status)"
# Retries go on (the right QEMU may replace the socket); the log says it once.
check "the refusal is retried" wait_for 100 grep -q "still refusing QEMU on $SCRATCH/peer.qmp" "$log"
check "and logged once" test "$(grep -c "warning: vm peer: refusing QEMU on" "$log")" = 1
check "the refused QEMU was sent no device" test "$(grep -c vmplug-usbfd "$log")" = 0
stop_vmplugd

vm_conf "qemu-user = $nobody
"
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "the same QMP server run by the VM's qemu-user is accepted" \
	wait_output 100 "running null" "peer's state and last-error" vm_status
# Its libusb cannot start as uid 65534 on the fake USB tree: QEMU's own
# answer to the device's attach shows that it was sent.
check "and is sent the VM's device" \
	wait_for 100 grep -q 'vmplug-usbfd-1-3: attach failed.*failed to init libusb' "$log"
stop_vmplugd

# A socket in a directory anyone may write could be replaced by another
# QEMU's (or anyone's) socket.
chmod 0777 "$SCRATCH"
: >"$log"
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
why="refusing QEMU on $SCRATCH/peer.qmp: directory $SCRATCH is writable by others (mode 0777)"
check "a socket in a world-writable directory is refused" \
	wait_output 100 "down $why" "peer's state and last-error" vm_status
# Root's sticky directory (/tmp): nobody else can replace the socket.
chown 0:0 "$SCRATCH"
chmod 1777 "$SCRATCH"
check "and accepted once the directory is root's and sticky, as /tmp" \
	wait_output 100 "running null" "peer's state and last-error" vm_status
chmod 755 "$SCRATCH"

done_testing
