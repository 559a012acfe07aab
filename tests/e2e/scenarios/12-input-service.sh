#!/bin/sh
# Scenario: vmplugd as a systemd service (svc-manager plays systemd): READY=1 comes once every sink
# exists, with STATUS= lines; the sinks go to the fd store, and a restart takes them back: the same
# device, the same QEMU object, and typing still reaches QEMU. Also: the sink node is root's alone by
# default, and QEMU's grab-toggle is one that no hotkey uses.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
grep -q '^#define HAVE_SYSTEMD 1' "$VMPLUG_BUILD/config.h" ||
	skip "built without libsystemd: no sd_notify, no fd store"

kbd_source || exit 1
vmplug_rules_install

# A hotkey on Scroll Lock (and right Ctrl): QEMU's scrolllock and
# ctrl-scrolllock toggles clash with it, the default panic chord takes
# left Ctrl and left Alt; meta-meta is free.
vmplug_input_conf "$T/conf" "$link"
vm_conf "$T/conf" vm1 "hotkey = KEY_RIGHTCTRL+KEY_SCROLLLOCK" "focus-on-start = yes"

# A running machine without CPUs whose trace shows each key it got.
nested_qemu_keys vm1 || exit 1

out=$T/svc.out
svc-manager -n vmplug-vm1-kbd -n vmplug-host-kbd "$T/notify.sock" \
	"$VMPLUG_BUILD/vmplugd" -f -c "$T/conf" >"$out" 2>>"$T/vmplugd.log" &
svc=$!
stop_svc() {
	kill -TERM "$svc" 2>/dev/null
	waitfor 20 pid_gone "$svc"
	wait "$svc" 2>/dev/null
}
trap 'stop_svc; _e2e_cleanup' EXIT

check "READY=1" wait_line 30 "$out" '^READY=1$' || {
	sed 's/^/  # /' "$T/vmplugd.log"
	exit 1
}
check "at READY=1 the VM's sink already exists" grep -q '^svc at-ready vmplug-vm1-kbd /dev/' "$out"
check "at READY=1 the host's sink already exists" grep -q '^svc at-ready vmplug-host-kbd /dev/' "$out"
check "a STATUS= line sums up the VM and the input" \
	wait_line 10 "$out" '^STATUS=1 VM (.*), .*1 input (.*)$'
check "the VM's sink went to the fd store" grep -q '^svc stored vmplug-vm1-kbd$' "$out"
check "the host's sink went to the fd store" grep -q '^svc stored vmplug-host-kbd$' "$out"

sink=/dev/input/by-id/vmplug-vm1-kbd
check "the sink has its link $sink" waitfor 10 is_char_dev "$sink" || exit 1
node=$(readlink -f "$sink")
sys=$(readlink -f "/sys/class/input/${node##*/}/device")
log "the sink is $node, $sys"

udev_settle
check "the sink node is root's alone (no qemu-user or qemu-group), mode 600" \
	test "$(stat -c '%U %G %a' "$node")" = "root root 600"

obj='"path": "/objects/vmplug-in-kbd"'
in_qemu() {
	[ "$(qmp -r vm1 qom-get "{$obj, \"property\": \"evdev\"}")" = "$sink" ]
}
check "vmplugd added input-linux vmplug-in-kbd on $sink" waitfor 30 in_qemu || exit 1
toggle=$(qmp -r vm1 qom-get "{$obj, \"property\": \"grab-toggle\"}")
check "its grab-toggle ($toggle) shares no key with the hotkey or the panic chord" \
	test "$toggle" = meta-meta
check "the keyboard is opened and grabbed" wait_line 20 "$T/vmplugd.log" 'opened and grabbed'
type_key 0x04
check "typing A reaches QEMU" waitfor 10 qemu_got vm1 a

# A mark that only this object has: its repeat flipped from what vmplugd
# gave it (repeat = yes, the default); a new object would have it on again.
repeat=$(qmp -r vm1 qom-get "{$obj, \"property\": \"repeat\"}")
check "the object's repeat is on, as configured" test "$repeat" = true
qmp vm1 qom-set "{$obj, \"property\": \"repeat\", \"value\": false}" >/dev/null
marked() {
	[ "$(qmp -r vm1 qom-get "{$obj, \"property\": \"repeat\"}")" = false ]
}
check "the mark is set" marked

# systemctl restart: SIGTERM, then a new vmplugd with the stored fds.
kill -USR1 "$svc"
check "vmplugd restarted with 2 descriptors from the store" \
	wait_line 30 "$out" '^svc started [0-9]* 2 '
check "the sink stayed while vmplugd was down" is_char_dev "$node"
check "READY=1 again" waitfor 30 sh -c "test \$(grep -c '^READY=1\$' $out) -ge 2"
check "vmplugd took the VM's sink back from the fd store" \
	grep -q "input kbd: vm vm1: vmplug-vm1-kbd ($node) taken back from the fd store" "$T/vmplugd.log"
check "and the host's" \
	grep -q "input kbd: vm host: vmplug-host-kbd (.*) taken back from the fd store" "$T/vmplugd.log"
check "it is the same device: $node, $sys" \
	test "$(readlink -f "/sys/class/input/${node##*/}/device")" = "$sys"
check "nothing was given back to the store twice" \
	test "$(grep -c '^svc stored vmplug-vm1-kbd$' "$out")" = 1
check "the keyboard is opened and grabbed again" \
	waitfor 20 sh -c "test \$(grep -c 'opened and grabbed' $T/vmplugd.log) -ge 2"
check "vmplugd sees the VM running again" waitfor 30 sh -c \
	"'$VMPLUG_BUILD/vmplugctl' -s '$T/conf/control.sock' status | grep -q '^vm1 .* running '"
check "QEMU kept its object (the mark is still on it)" marked
type_key 0x05
check "after the restart, typing B reaches QEMU" waitfor 10 qemu_got vm1 b
check "QEMU still has the object (not replaced since)" marked

stop_svc
check "vmplugd stopped cleanly both times" \
	test "$(grep '^svc exited' "$out" | tr '\n' ' ')" = "svc exited 0 svc exited 0 "
vmplugd_log_clean
nested_qemu_stop vm1
vmplug_rules_remove
