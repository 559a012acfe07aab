#!/bin/bash
# USB hotplug end to end on the host: vmplugd and real QEMUs on one fake
# USB tree (umockdev), so QEMU really opens the devices (attached=true).
# Coldplug, plug and unplug, replug with a new device number, identical
# devices on two ports to two VMs, a hub on a claimed port, a device
# plugged in before its VM starts, QEMU killed and restarted, vmplugd
# killed and restarted, a reload that moves a VM to another QMP socket:
# every time each VM ends with exactly what its rules claim. vmplugctl on
# running VMs: attach and detach (by port and by VID:PID:SERIAL),
# monitor's events (attach and detach in order; VM up and gone, failed
# attaches with QEMU's reason) and status's last error.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
bed_begin
cat >"$conf/vm.d/alpha.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
usb-bus = xhci.0
[usb "desk"]
port = 1-1
CONF
cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
[usb "back"]
port = 2-1
CONF
chmod go-w "$conf"/vm.d/*

# coldplug: the device and alpha's QEMU are there before vmplugd
plug 1-1.2 dev=3 vid=046d pid=0825 name=Webcam
qemu_start alpha
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "coldplug: a present device is attached to a running VM" \
	usb_in_qemu_is alpha "vmplug-usb-1-3 attached=true hostaddr=3"

plug 1-1.3 dev=4 vid=1234 pid=0001
check "plug: attached" usb_in_qemu_is alpha "vmplug-usb-1-3 attached=true hostaddr=3
vmplug-usb-1-4 attached=true hostaddr=4"
unplug 1-1.3
check "unplug: detached" usb_in_qemu_is alpha "vmplug-usb-1-3 attached=true hostaddr=3"

unplug 1-1.2
plug 1-1.2 dev=9 vid=046d pid=0825 name=Webcam
check "replug with a new device number: the new one attached, the old one gone" \
	usb_in_qemu_is alpha "vmplug-usb-1-9 attached=true hostaddr=9"

# A QEMU that answers device_add late: its main loop runs a usb-host
# device's USB transfers, and the kernel gives up on one to a slow or
# vanishing device only after 5 s. vmplugd waits for the answer; it does
# not take QEMU for dead and drop the connection. (QEMU is stopped for
# 7 s: longer than that one transfer.)
connections=$(grep -c "vm alpha: connected to QEMU" "$log")
kill -STOP "$(qemu_pid alpha)"
plug 1-1.3 dev=4 vid=1234 pid=0001
sleep 7
kill -CONT "$(qemu_pid alpha)"
check "a device_add QEMU answers after 7 s: attached" usb_in_qemu_is alpha "vmplug-usb-1-4 attached=true hostaddr=4
vmplug-usb-1-9 attached=true hostaddr=9"
check "and the connection was kept" \
	test "$(grep -c "vm alpha: connected to QEMU" "$log")" = "$connections"
no_line() { ! grep -q -- "$2" "$1"; }
check "and nothing said that QEMU did not answer" no_line "$log" "did not answer"
unplug 1-1.3
check "unplug: detached" usb_in_qemu_is alpha "vmplug-usb-1-9 attached=true hostaddr=9"

# A QEMU holding an emulated device polls it without pause, and every
# poll goes through the testbed: keep at most two attached per QEMU.

# a hub on a claimed port: never attached itself, the devices behind it are
plug 1-1.5 dev=6 vid=05e3 pid=0608 class=09
plug 1-1.5.1 dev=7 vid=04d9 pid=1603
check "a hub is not attached, the device behind it is" \
	usb_in_qemu_is alpha "vmplug-usb-1-7 attached=true hostaddr=7
vmplug-usb-1-9 attached=true hostaddr=9"
unplug 1-1.5.1
unplug 1-1.5

# identical devices (same ids, no serial) on two ports, two VMs
qemu_start beta
plug 1-1.4 dev=5 vid=0951 pid=1666
plug 2-1 dev=2 vid=0951 pid=1666
check "identical devices: alpha gets the one on its port" \
	usb_in_qemu_is alpha "vmplug-usb-1-5 attached=true hostaddr=5
vmplug-usb-1-9 attached=true hostaddr=9"
check "identical devices: beta gets the one on its port" \
	usb_in_qemu_is beta "vmplug-usb-2-2 attached=true hostaddr=2"

# plugged in while the VM is down: attached when it comes up
qemu_stop beta
plug 2-1.3 dev=4 vid=1234 pid=0002
qemu_start beta
check "a device plugged in before its VM starts is attached when it starts" \
	usb_in_qemu_is beta "vmplug-usb-2-2 attached=true hostaddr=2
vmplug-usb-2-4 attached=true hostaddr=4"

# QEMU killed (a stale socket stays) and started again: everything back
qemu_stop alpha KILL
check "vmplugd notices QEMU was killed" wait_for 50 grep -q "vm alpha: gone" "$log"
qemu_start alpha
check "QEMU restarted: every device attached again" \
	usb_in_qemu_is alpha "vmplug-usb-1-5 attached=true hostaddr=5
vmplug-usb-1-9 attached=true hostaddr=9"

# vmplugd killed and restarted: it learns from QEMU, adds nothing twice,
# and removes what went away while it was not looking
before=$(grep -c "usb.*: attached" "$log")
kill -KILL "$VMPLUGD_PID"
wait "$VMPLUGD_PID" 2>/dev/null
VMPLUGD_PID=
unplug 1-1.4
rm -f "$conf/control.sock"
mark=$(wc -l <"$log")
start_vmplugd "$conf" "$log" || bail "vmplugd did not start again"
check "vmplugd restarted: what QEMU still has is kept, the gone device is detached" \
	usb_in_qemu_is alpha "vmplug-usb-1-9 attached=true hostaddr=9"
check "vmplugd restarted: beta unchanged" usb_in_qemu_is beta "vmplug-usb-2-2 attached=true hostaddr=2
vmplug-usb-2-4 attached=true hostaddr=4"
check "vmplugd restarted: nothing attached twice" \
	test "$(tail -n +"$((mark + 1))" "$log" | grep -c "usb.*: attached")" -eq 0
diag "attaches before the restart: $before"

# reload: a rule removed detaches, a rule added attaches
cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
[usb "back"]
port = 2-1.3
CONF
chmod go-w "$conf/vm.d/beta.conf"
kill -HUP "$VMPLUGD_PID"
check "reload: a device no longer claimed is detached, the rest kept" \
	usb_in_qemu_is beta "vmplug-usb-2-4 attached=true hostaddr=4"

# vmplugctl against running VMs: monitor sees events in order; attach and
# detach by hand wait until QEMU confirms. (Each QEMU holds one device
# here: QEMU polls emulated devices through the testbed.)
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
: >"$SCRATCH/monitor"
"$VMPLUGCTL" -s "$conf/control.sock" monitor >"$SCRATCH/monitor" 2>&1 &
mon=$!
wait_for 50 grep -q watching "$SCRATCH/monitor"
plug 2-1.6 dev=8 vid=1234 pid=0003 serial=SER6
# A QEMU that has held an emulated device for a while stops hearing of
# new ones from the testbed (its libusb event thread waits on the busy
# testbed); one started now lists what is plugged in.
qemu_stop beta
qemu_start beta
usb_in_qemu_is beta "vmplug-usb-2-4 attached=true hostaddr=4" || diag "beta did not come back"
out=$(ctl attach beta 2-1.6 2>&1)
check "vmplugctl attach of a device no rule of the VM claims waits for QEMU" \
	test "$out" = "beta: 2-1.6 attached"
check "and QEMU has it" usb_in_qemu_is beta "vmplug-usb-2-4 attached=true hostaddr=4
vmplug-usb-2-8 attached=true hostaddr=8"
out=$(ctl detach beta 1234:0003:SER6 2>&1)
check "vmplugctl detach (DEVICE as VID:PID:SERIAL) waits for QEMU's confirmation" \
	test "$out" = "beta: 2-1.6 detached"
check "and QEMU no longer has it" usb_in_qemu_is beta "vmplug-usb-2-4 attached=true hostaddr=4"
ctl attach alpha 1234:0003:NOPE 2>"$SCRATCH/err"
check "a serial that no device has matches nothing" \
	grep -q "no USB device matches '1234:0003:NOPE'" "$SCRATCH/err"
out=$(ctl --json attach alpha 1234:0003:SER6)
check "vmplugctl --json attach to another VM: vmplugd's reply once QEMU has it" \
	test "$(jq -c .return <<<"$out")" = '{"vm":"alpha","port":"2-1.6","id":"vmplug-usb-2-8","state":"attached"}'
out=$(ctl --json usb)
check "usb --json says where it is attached" \
	test "$(jq -r '.return.devices[] | select(.port=="2-1.6") | .attached[0] | "\(.vm) \(.state)"' <<<"$out")" = "alpha attached"
unplug 2-1.6
check "the override ends when the device leaves" usb_in_qemu_is alpha "vmplug-usb-1-9 attached=true hostaddr=9"
events() { grep -o 'USB_[A-Z]* *[a-z]* vmplug-usb-2-8' "$SCRATCH/monitor" | tr -s ' ' | tr '\n' ';'; }
four_events() { [ "$(events | tr -cd ';' | wc -c)" -ge 4 ]; }
wait_for 50 four_events
check "monitor saw attach, detach, attach, detach, in that order" \
	test "$(events)" = "USB_ATTACHED beta vmplug-usb-2-8;USB_DETACHED beta vmplug-usb-2-8;USB_ATTACHED alpha vmplug-usb-2-8;USB_DETACHED alpha vmplug-usb-2-8;"
kill -INT "$mon"
wait "$mon"
out=$(ctl status)
check "status: both VMs running, and what each has" \
	grep -q "^alpha  qmp      running  1    0 " <<<"$out"

# A deny rule holds against vmplugctl attach to a running QEMU: only the
# configuration lifts it.
cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
[usb "back"]
port = 2-1.3
[usb-deny "key"]
vendor = 1234
product = 0005
CONF
chmod go-w "$conf/vm.d/beta.conf"
ctl reload >/dev/null
plug 2-1.7 dev=9 vid=1234 pid=0005
ctl attach beta 2-1.7 2>"$SCRATCH/err"
check "vmplugctl attach against the VM's deny rule exits 1" test $? -eq 1
check "and names the rule, its file and line" grep -qF \
	"vm beta: 2-1.7 is denied by [usb-deny \"key\"] at $conf/vm.d/beta.conf:5" "$SCRATCH/err"
check "QEMU does not get the device" usb_in_qemu_is beta "vmplug-usb-2-4 attached=true hostaddr=4"
out=$(ctl explain 2-1.7)
check "explain says no request can attach it" grep -qF \
	"beta: denied by [usb-deny \"key\"] at $conf/vm.d/beta.conf:5; no request can attach it" <<<"$out"
unplug 2-1.7

# Failures and VM lifecycle as subscribers and status see them: gamma's
# QEMU has no such USB bus, so it refuses every attach.
cat >"$conf/vm.d/gamma.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/gamma.qmp
usb-bus = nosuch.0
[usb "lab"]
port = 3-1
CONF
chmod go-w "$conf/vm.d/gamma.conf"
out=$(ctl --json reload)
check "reload --json prints vmplugd's reply" \
	test "$(jq -c .return <<<"$out")" = '{"vms":3,"inputs":0}'
"$VMPLUGCTL" -s "$conf/control.sock" monitor >"$SCRATCH/monitor" 2>&1 &
mon=$!
"$VMPLUGCTL" -s "$conf/control.sock" --json monitor >"$SCRATCH/monitor.json" 2>&1 &
monj=$!
wait_for 50 grep -q watching "$SCRATCH/monitor"
wait_for 50 grep -q '"return"' "$SCRATCH/monitor.json"
plug 3-1 dev=2 vid=1234 pid=0004
qemu_start gamma
# jq over the events of the --json monitor
events_json() { grep '^{"event"' "$SCRATCH/monitor.json" | jq -r "$@"; }
gave_up() { [ -n "$(events_json 'select(.event == "USB_FAILED" and .data.final) | .data.id')" ]; }
check "monitor --json: vmplugd gives up attaching after its retries" wait_for 150 gave_up
check "monitor --json: VM_UP when gamma's QEMU comes up" \
	test "$(events_json 'select(.data.vm == "gamma") | .event' | head -n 1)" = VM_UP
check "monitor --json: USB_FAILED with QEMU's reason, retried, then final" \
	test "$(events_json 'select(.event == "USB_FAILED") | "\(.data.vm) \(.data.id) \(.data.device.port) \(.data.final): \(.data.error)"' | uniq -c | sed 's/^ *//')" = "3 gamma vmplug-usb-3-2 3-1 false: Bus 'nosuch.0' not found
1 gamma vmplug-usb-3-2 3-1 true: Bus 'nosuch.0' not found"
check "monitor: USB_FAILED in words" grep -q "USB_FAILED  *gamma vmplug-usb-3-2 3-1 1234:0004: Bus 'nosuch.0' not found" "$SCRATCH/monitor"
check "monitor: VM_UP in words" grep -q "VM_UP  *gamma$" "$SCRATCH/monitor"
out=$(ctl status)
check "status shows the failed attach and why" \
	grep -q "^  vmplug-usb-3-2  failed  3-1  1234:0004  (Bus 'nosuch.0' not found)$" <<<"$out"
ctl attach gamma 3-1 2>"$SCRATCH/err"
check "attach of a device whose attach failed exits 1" test $? -eq 1
check "and says why" grep -q "vm gamma: attaching 3-1 failed: Bus 'nosuch.0' not found" "$SCRATCH/err"
qemu_stop gamma KILL
gone() { [ -n "$(events_json 'select(.event == "VM_GONE" and .data.vm == "gamma") | .data.reason')" ]; }
check "monitor --json: VM_GONE when gamma's QEMU is killed" wait_for 50 gone
reason=$(events_json 'select(.event == "VM_GONE" and .data.vm == "gamma") | .data.reason' | head -n 1)
diag "VM_GONE reason: $reason"
check "monitor: VM_GONE in words, with the reason" \
	wait_for 50 grep -qF "VM_GONE        gamma ($reason)" "$SCRATCH/monitor"
# The last error is why the VM is down now: once vmplugd has tried to
# reconnect, that its socket is stale (QEMU was SIGKILLed).
down_why="cannot connect to $SCRATCH/gamma.qmp: connection refused (stale socket: QEMU is not running)"
gamma_last_error() { ctl --json status | jq -r '.return.vms[] | select(.name == "gamma") | "\(.state) \(."last-error")"'; }
check "status --json: last-error is why the VM is down" \
	wait_output 50 "down $down_why" "gamma's state and last-error" gamma_last_error
out=$(ctl --json status)
check "status --json: no last-error for a VM that is fine" \
	test "$(jq -r '.return.vms[] | select(.name == "alpha") | ."last-error"' <<<"$out")" = null
out=$(ctl status)
check "status: the VM in words, with its last error" grep -qxF "gamma (down): $down_why" <<<"$out"
kill -INT "$mon" "$monj"
wait "$mon" "$monj"

# A reload that moves a connected VM to another QMP socket (its QEMU
# restarted elsewhere, say): vmplugd lets go of the old socket, uses the
# new one, and the devices the VM claims are attached there.
# QEMU serves one client per QMP socket: another one gets no greeting
# (qmp-client's exit status 3, timeout) while vmplugd holds it.
qmp_free() { "$QMP_CLIENT" -t 2000 -r "$SCRATCH/$1.qmp" query-status >/dev/null 2>&1; }
qmp_free beta
check "beta's QMP socket is vmplugd's while it is connected" test $? -eq 3
qemu_start delta
sed -i "s|^qmp-socket = .*|qmp-socket = $SCRATCH/delta.qmp|" "$conf/vm.d/beta.conf"
ctl reload >/dev/null
check "reload that moves the socket: vmplugd says it reconnects" \
	grep -q "vm beta: how to reach it changed; reconnecting" "$log"
check "and the devices beta claims are attached in the QEMU at the new socket" \
	usb_in_qemu_is delta "vmplug-usb-2-4 attached=true hostaddr=4"
check "and the old socket is let go" wait_for 50 qmp_free beta
beta_state() { ctl --json status | jq -r '.return.vms[] | select(.name == "beta") | .state'; }
check "status: beta running again" wait_output 50 running "beta's state" beta_state

stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
check "vmplugd leaves the devices attached when it stops" \
	usb_in_qemu_is alpha "vmplug-usb-1-9 attached=true hostaddr=9"
done_testing
