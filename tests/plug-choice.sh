#!/bin/bash
# Plug-time choice, on a fake USB tree with a real QEMU: a device no rule
# claims, plugged in while a VM runs, raises USB_UNCLAIMED on the monitor
# stream; the first answer (attach once, keep on the host, either one
# remembered) decides, a second one is told so; a device unplugged before
# the answer is said to be gone; remembered answers survive a restart, are
# listed and forgotten; a deny rule always wins; junk and floods from a
# client change nothing.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_monitor; stop_vmplugd; stop_all_qemu; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
events=$SCRATCH/events
state=$SCRATCH/state
write_conf "$conf"
echo "state-dir = $state" >>"$conf/vmplug.conf"
cat >"$conf/vm.d/vm.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/vm.qmp
usb-bus = xhci.0
[usb "desk"]
port = 1-1
[usb-deny "receivers"]
vendor = 046d
product = c52b
CONF
chmod go-w "$conf/vmplug.conf" "$conf"/vm.d/*
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }

# monitor_sync: every event before now is in $events (a reload's event
# comes after them on the monitor's stream)
reloads() { grep -c '"CONFIG_RELOADED"' "$events"; }
monitor_sync() {
	local k
	k=$(reloads)
	ctl reload >/dev/null || return 1
	wait_for 10 test "$(reloads)" -gt "$k"
}
start_monitor() {
	ctl --json monitor >>"$events" 2>/dev/null &
	MONITOR_PID=$!
	wait_for 10 monitor_sync
}
stop_monitor() {
	[ -n "${MONITOR_PID:-}" ] || return 0
	kill "$MONITOR_PID" 2>/dev/null
	wait "$MONITOR_PID" 2>/dev/null
	MONITOR_PID=
}
# the questions asked about PORT, one number a line
questions() {
	jq -r "select(.event == \"USB_UNCLAIMED\" and .data.port == \"$1\") | .data.question" \
		"$events"
}
asked_times() { [ "$(questions "$1" | grep -c .)" -eq "$2" ]; }
# the last question about PORT, once asked N times in all
question() {
	wait_for 100 asked_times "$1" "$2" || return 1
	questions "$1" | tail -n 1
}
closed_as() {
	jq -r "select(.event == \"USB_UNCLAIMED_CLOSED\" and .data.question == $1) | .data.outcome" \
		"$events" | grep -qx "$2"
}
# has_device PORT DEVNUM: vmplugd has seen that plug
has_device() {
	ctl --json usb | jq -e ".return.devices[] | select(.port == \"$1\" and .devnum == $2)" >/dev/null
}
# not_asked PORT N DEVNUM: vmplugd has seen the plug of PORT with DEVNUM,
# and asked about PORT N times in all, no more; a failure says which.
# A reload is retried: on a loaded machine one may outlast its wait.
not_asked() {
	if ! wait_for 100 has_device "$1" "$3"; then
		diag "vmplugd never listed $1 with device number $3: $(ctl --json usb 2>&1 | tail -c 600)"
		return 1
	fi
	if ! wait_for 10 monitor_sync; then
		diag "no CONFIG_RELOADED on the monitor stream after a reload ($(reloads) in all)"
		return 1
	fi
	asked_times "$1" "$2" && return 0
	diag "questions about $1: $(questions "$1" | tr '\n' ' ')"
	grep -E "usb $1 |question" "$log" | tail -n 5 | sed 's/^/# /'
	return 1
}

plug 1-1 dev=2 vid=05e3 pid=0608 class=09 name=Hub
plug 3-1 dev=2 vid=abcd pid=0100 name=Present
qemu_start vm
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
wait_for 100 grep -q "vm vm: ready" "$log" || bail "vmplugd did not reach the VM"
: >"$events"
start_monitor

# --- the event
plug 2-1 dev=11 vid=abcd pid=0001 serial=S1 name=Stick
q=$(question 2-1 1)
check "a device no rule claims, plugged in while a VM runs, raises USB_UNCLAIMED" test -n "$q"
ev=$(jq -c "select(.event == \"USB_UNCLAIMED\" and .data.question == ${q:-0}) | .data" "$events")
check "it names the device: port, vendor, product, name, the running VMs" \
	test "$(jq -r '[.port, .vendor, .product, .name, (.vms | join(","))] | join(" ")' <<<"$ev")" \
	= "2-1 abcd 0001 Stick vm"
check "and its details (serial)" test "$(jq -r .device.serial <<<"$ev")" = S1
check "a device present when vmplugd started is not asked about" not_asked 3-1 0 2

# --- attach: once, not a rule
out=$(ctl answer "$q" attach vm)
check "answer attach exits 0" test $? -eq 0
check "and says where it went" grep -q "^vm: 2-1 attached" <<<"$out" || diag "$out"
check "the device is in QEMU" usb_in_qemu_is vm "vmplug-usb-2-11 attached=true hostaddr=11"
check "subscribers are told the question is settled" wait_for 50 closed_as "$q" attach
out=$(ctl answer "$q" keep-on-host 2>&1)
check "a second answer fails" test $? -eq 1
check "and is told who answered first" grep -q "question $q was answered already: attach vm (by uid" <<<"$out" ||
	diag "$out"
check "nothing was remembered" grep -q "no remembered answers" <<<"$(ctl remembered)"
unplug 2-1
check "unplugged, it leaves the VM" usb_in_qemu_is vm ""
plug 2-1 dev=12 vid=abcd pid=0001 serial=S1 name=Stick
q=$(question 2-1 2)
check "plugged in again, it is asked about again (attach was one-shot)" test -n "$q"
check "and stays on the host meanwhile" usb_in_qemu_is vm ""

# --- keep on host
out=$(ctl answer "$q" keep-on-host)
check "answer keep-on-host exits 0" test $? -eq 0
check "and says so" test "$out" = "2-1: on host"
check "subscribers are told" wait_for 50 closed_as "$q" keep-on-host
check "the device stays on the host" usb_in_qemu_is vm ""
unplug 2-1

# --- remember attach
plug 2-2 dev=13 vid=abcd pid=0002 serial=R1 name=Remembered
q=$(question 2-2 1)
out=$(ctl answer "$q" attach vm --remember)
check "answer attach --remember exits 0" test $? -eq 0 || diag "$out"
check "the device is in QEMU" usb_in_qemu_is vm "vmplug-usb-2-13 attached=true hostaddr=13"
check "the answer is in the state file" test "$(jq -r '.remembered[0] | [.id, .action, .vm, .vendor, .product, .serial] | join(" ")' "$state/remembered.json")" = "1 attach vm abcd 0002 R1"
out=$(ctl remembered)
check "vmplugctl remembered lists it" grep -Eq '^1 +vm vm +abcd:0002 +R1 +Remembered' <<<"$out" ||
	diag "$out"
unplug 2-2
check "unplugged, it leaves the VM" usb_in_qemu_is vm ""
plug 2-2 dev=14 vid=abcd pid=0002 serial=R1 name=Remembered
check "plugged in again, it goes to the VM by itself" \
	usb_in_qemu_is vm "vmplug-usb-2-14 attached=true hostaddr=14"
check "without a question" not_asked 2-2 1 14

# --- remember keep-on-host
plug 2-3 dev=15 vid=abcd pid=0003 serial=K1 name=Kept
q=$(question 2-3 1)
out=$(ctl answer "$q" keep-on-host --remember)
check "answer keep-on-host --remember says it is remembered" grep -q "remembered as 2" <<<"$out" ||
	diag "$out"
unplug 2-3
plug 2-3 dev=16 vid=abcd pid=0003 serial=K1 name=Kept
check "a device kept on the host with remember is not asked about again" \
	not_asked 2-3 1 16
check "and stays on the host" usb_in_qemu_is vm "vmplug-usb-2-14 attached=true hostaddr=14"
unplug 2-3

# --- restart: the answers are loaded like the configuration
stop_monitor
stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
start_vmplugd "$conf" "$log" || bail "vmplugd did not start again"
check "after a restart the answers are listed" test "$(ctl --json remembered | jq -c '[.return.remembered[] | .id]')" = "[1,2]"
check "and the remembered device is attached" \
	usb_in_qemu_is vm "vmplug-usb-2-14 attached=true hostaddr=14"
: >"$events" # question numbers start again
start_monitor

# --- forget
out=$(ctl forget 2)
check "forget exits 0" test $? -eq 0 -a "$out" = "forgot 2"
check "the state file lost it" test "$(jq -c '[.remembered[] | .id]' "$state/remembered.json")" = "[1]"
plug 2-3 dev=17 vid=abcd pid=0003 serial=K1 name=Kept
check "a forgotten keep-on-host device is asked about again" test -n "$(question 2-3 1)"
unplug 2-3
ctl forget 2 2>"$SCRATCH/err"
check "forgetting it twice fails (exit 1)" test $? -eq 1
check "saying there is none" grep -q "no remembered answer 2" "$SCRATCH/err"
ctl forget x 2>"$SCRATCH/err"
check "forget refuses a word (usage error, exit 2)" test $? -eq 2

# --- deny wins
plug 2-4 dev=18 vid=046d pid=c52b name=Receiver
check "a device a VM denies is not asked about" not_asked 2-4 0 18
unplug 2-4
cat >>"$conf/vm.d/vm.conf" <<CONF
[usb-deny "remembered-one"]
serial = R1
CONF
ctl reload >/dev/null
check "a deny rule added later wins over the remembered answer" usb_in_qemu_is vm ""
plug 2-5 dev=19 vid=abcd pid=0005 serial=D1 name=Denied-later
q=$(question 2-5 1)
cat >>"$conf/vm.d/vm.conf" <<CONF
[usb-deny "d1"]
serial = D1
CONF
ctl reload >/dev/null
out=$(ctl answer "$q" attach vm --remember 2>&1)
check "an answer against a deny rule fails (exit 1)" test $? -eq 1
check "naming the rule" grep -q 'denied by \[usb-deny "d1"\]' <<<"$out" || diag "$out"
check "and remembers nothing" test "$(jq -c '[.remembered[] | .id]' "$state/remembered.json")" = "[1]"
check "the question stays open for another answer" \
	test "$(ctl answer "$q" keep-on-host)" = "2-5: on host"
unplug 2-5

# --- unplugged before the answer
plug 2-6 dev=20 vid=abcd pid=0006 name=Fleeting
q=$(question 2-6 1)
unplug 2-6
check "a device unplugged before the answer closes its question" wait_for 50 closed_as "$q" unplugged
out=$(ctl answer "$q" attach vm 2>&1)
check "a late answer fails (exit 1)" test $? -eq 1
check "saying the device was unplugged" grep -q "question $q: the device at 2-6 was unplugged before the answer" <<<"$out" ||
	diag "$out"
ctl answer 999 keep-on-host 2>"$SCRATCH/err"
check "an answer to a question never asked fails" grep -q "no question 999 has been asked" "$SCRATCH/err"

# --- two clients answering at once
plug 2-7 dev=21 vid=abcd pid=0007 name=Contested
q=$(question 2-7 1)
ctl answer "$q" attach vm >"$SCRATCH/a1" 2>&1 &
p1=$!
ctl answer "$q" keep-on-host >"$SCRATCH/a2" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
check "of two answers at once exactly one wins" test $((r1 + r2)) -eq 1
check "the other is told the question was answered" grep -q "was answered already" "$SCRATCH/a1" "$SCRATCH/a2"
if [ $r1 -eq 0 ]; then
	check "the winner's answer holds: in QEMU" usb_in_qemu_has vm vmplug-usb-2-21
else
	check "the winner's answer holds: on the host" usb_in_qemu_is vm ""
fi
unplug 2-7

# --- a hostile client: junk and floods
plug 2-8 dev=22 vid=abcd pid=0008 name=Target
q=$(question 2-8 1)
cp "$state/remembered.json" "$SCRATCH/before.json"
{
	printf '{"execute":"subscribe"}\n'
	for i in $(seq 1 300); do
		printf 'junk %d }{\n' "$i"
		printf '{"execute":"answer","arguments":{"question":"%d","action":"attach"}}\n' "$i"
		printf '{"execute":"answer","arguments":{"question":%d,"action":"format-disk"}}\n' "$q"
		printf '{"execute":"answer","arguments":{"question":%d,"action":"attach","vm":"nope"}}\n' "$q"
		printf '{"execute":"answer","arguments":{"question":%d,"action":"attach","vm":"vm","remember":"yes"}}\n' "$q"
		printf '{"execute":"forget","arguments":{"id":%d}}\n' $((i + 100))
		printf '{"execute":"answer","arguments":{"question":%d,"action":"keep-on-host"}}\n' $((q + 1000 + i))
	done
	printf '{"execute":"answer","arguments":{"question":%d,"action":"keep-on-host"},"id":"won"}\n' "$q"
	for i in $(seq 1 300); do
		printf '{"execute":"answer","arguments":{"question":%d,"action":"attach","vm":"vm","remember":true}}\n' "$q"
	done
	printf '{"execute":"query-status","id":"last"}\n'
} >"$SCRATCH/flood"
socat -t 30 - "UNIX-CONNECT:$conf/control.sock" <"$SCRATCH/flood" >"$SCRATCH/flood.out"
check "the flood got an answer to each request, the last one too" \
	test "$(jq -r 'select(.id == "last") | .return.version' "$SCRATCH/flood.out")" != ""
check "every junk request an error, none a success but the one answer" \
	test "$(jq -c 'select(.return and .id != "last" and .id != null) | .id' "$SCRATCH/flood.out")" = '"won"'
check "its later answers were all refused as answered already" \
	test "$(grep -c 'was answered already: keep-on-host' "$SCRATCH/flood.out")" -eq 300
check "the flood changed no remembered answer" cmp -s "$state/remembered.json" "$SCRATCH/before.json"
check "nor put the device in the VM" usb_in_qemu_is vm ""
ctl_status() { ctl status >/dev/null; }
check "vmplugd still answers others" ctl_status
unplug 2-8

# --- no VM running: nothing is asked
qemu_stop vm
vm_down() { test "$(ctl --json status | jq -r '.return.vms[0].state')" = down; }
wait_for 100 vm_down || diag "the VM is not down"
plug 2-9 dev=23 vid=abcd pid=0009 name=Lonely
check "with no VM running nothing is asked" not_asked 2-9 0 23
check "and the device stays on the host" has_device 2-9 23
stop_monitor
stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
done_testing
