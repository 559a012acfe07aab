#!/bin/sh
# Scenario: vmplugd from the package, driven only with systemctl, in the shipped unit's sandbox.
# start: READY once the sinks exist; the gadget keyboard types through its sink into a QEMU
# (input-linux on the by-id link, the node given to group kvm), the on-switch program runs, the
# D-Bus name is taken. reload: the new configuration gives the gadget to a second QEMU as a USB
# device, by a descriptor vmplugd opened. restart: the sinks come back from the fd store, QEMU
# keeps its input object and its USB device (nothing added again). stop: with a key held, the
# keyboard is given back ungrabbed and QEMU has no key down.
# e2e-timeout: 600
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib-systemd.sh
. "$E2E_DIR/lib-systemd.sh"

service_scenario

# The configuration as an administrator writes it: the unit's defaults
# (control socket in /run/vmplug, cache in /var/cache/vmplug), an on-switch
# program, the gadget keyboard for vm1.
cat >"$conf/vmplug.conf" <<CONF
[switch]
on-switch = $conf/on-switch
[input "kbd"]
device = $link
CONF
cat >"$conf/on-switch" <<'SCRIPT'
#!/bin/sh
echo "$VMPLUG_FROM $VMPLUG_TO" >>/run/vmplug/switches
SCRIPT
chmod 755 "$conf/on-switch"
vm_conf "$conf" vm1 "focus-on-start = yes" "qemu-group = kvm"
stop_all() {
	systemctl stop vmplugd
	rm -rf "$conf"
	_e2e_cleanup
}
trap stop_all EXIT

nested_qemu_keys vm1 || exit 1

# --- start
check "systemctl start vmplugd" systemctl start vmplugd || {
	vmplugd_journal | sed 's/^/  # /'
	exit 1
}
check "at READY=1 (start returned) the VM's sink exists" has_input vmplug-vm1-kbd
check "and the host's" has_input vmplug-host-kbd
pid=$(unit_prop MainPID)
check "vmplugd.service is active, vmplugd is its main process ($pid)" \
	test "$(systemctl is-active vmplugd)" = active -a "$(cat "/proc/$pid/comm")" = vmplugd
check "the unit is the package's, unmodified (no drop-in)" test -z "$(unit_prop DropInPaths)"
check "its status sums up the VM and the input" \
	waitfor 10 sh -c 'systemctl show -p StatusText --value vmplugd | grep -q "^1 VM .*1 input"'
check "both sinks are in the fd store" waitfor 10 test "$(unit_prop NFileDescriptorStore)" = 2
check "vmplugd hears udevd's events" \
	sh -c 'vmplugctl status | grep -q "device events from udev"'

sink=/dev/input/by-id/vmplug-vm1-kbd
check "the package's udev rule gave the sink its link $sink" waitfor 20 is_char_dev "$sink"
node=$(readlink -f "$sink")
sys=$(readlink -f "$(input_named vmplug-vm1-kbd)")
udev_settle
check "vmplugd gave the sink node to group kvm, mode 660" \
	waitfor 10 test "$(stat -c '%G %a' "$node")" = "kvm 660"
obj='"path": "/objects/vmplug-in-kbd"'
in_qemu() {
	[ "$(qmp -r vm1 qom-get "{$obj, \"property\": \"evdev\"}")" = "$sink" ]
}
check "vmplugd added input-linux vmplug-in-kbd on $sink to QEMU" waitfor 30 in_qemu || exit 1
check "the keyboard is opened and grabbed" waitfor 20 journal_has "$pid" 'opened and grabbed'
type_key 0x04
check "typing A reaches QEMU" waitfor 10 qemu_got vm1 a
check "the on-switch program ran in the sandbox (host -> vm1)" \
	waitfor 20 grep -qx 'host vm1' /run/vmplug/switches
check "vmplugd owns org.vmplug.Switch1 on the system bus (the package's D-Bus policy)" \
	waitfor 20 sh -c 'busctl --system status org.vmplug.Switch1 >/dev/null'

# A mark that only this object has: its repeat turned off (vmplugd made it
# on); an object added again would have it on.
qmp vm1 qom-set "{$obj, \"property\": \"repeat\", \"value\": false}" >/dev/null
marked() {
	[ "$(qmp -r vm1 qom-get "{$obj, \"property\": \"repeat\"}")" = false ]
}
check "the mark is set on QEMU's object" marked

# --- reload: vm2 takes the gadget as a USB device, by a descriptor
nested_qemu_start vm2 || exit 1
usb_vm_conf "$conf" vm2 "attach-mode = fd"
check "systemctl reload vmplugd" systemctl reload vmplugd
bus=$(gadget_busnum)
dev=$(gadget_devnum)
check "the new configuration is in effect: the gadget is attached to vm2 as vmplug-usbfd-$bus-$dev" \
	waitfor 60 usb_ids_are vm2 "vmplug-usbfd-$bus-$dev "
# fdsets: the fd sets vmplugd's add-fd left in vm2, by their tags (opaque)
fdsets() {
	qmp -r vm2 query-fdsets | grep -o '"opaque": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' |
		tr '\n' ' '
}
check "through a descriptor vmplugd opened (an fd set)" \
	test "$(fdsets)" = "vmplug-usbfd-$bus-$dev "
check "a reload is no restart: the same vmplugd ($pid)" test "$(unit_prop MainPID)" = "$pid"

# --- restart
check "systemctl restart vmplugd" systemctl restart vmplugd
new=$(unit_prop MainPID)
check "a new vmplugd ($pid -> $new)" test "$new" != "$pid" -a "$new" != 0
check "it took the VM's sink back from the fd store" \
	waitfor 20 journal_has "$new" "vm vm1: vmplug-vm1-kbd ($node) taken back from the fd store"
check "and the host's" waitfor 20 journal_has "$new" "vm host: vmplug-host-kbd (.*) taken back"
check "the same sink device: $sys" test "$(readlink -f "$(input_named vmplug-vm1-kbd)")" = "$sys"
check "vmplugd sees both VMs again" waitfor 30 sh -c \
	'test "$(vmplugctl status | grep -c "^vm[12] .* running ")" = 2'
check "QEMU kept its input object (the mark is still on it)" marked
check "vm2 still has the gadget, through the same fd set" \
	test "$(usb_ids vm2 | tr '\n' ' ')$(fdsets)" = \
	"vmplug-usbfd-$bus-$dev vmplug-usbfd-$bus-$dev "
nothing_attached() {
	! vmplugd_journal "$new" | grep -q ': attached'
}
check "the new vmplugd attached nothing again" nothing_attached

# --- the gadget back to vm1's keyboard: vm2 leaves the configuration
rm "$conf/vm.d/vm2.conf"
check "systemctl reload vmplugd (vm2 gone from the configuration)" systemctl reload vmplugd
check "vmplugd detached the gadget from vm2" waitfor 30 usb_ids_are vm2 ""
check "the gadget plugged in again: usbhid has it" gadget_replug
check "the keyboard is opened and grabbed by the new vmplugd" \
	waitfor 20 journal_has "$new" 'opened and grabbed'
type_key 0x05
check "through the sink taken back from the store, typing B reaches QEMU" waitfor 10 qemu_got vm1 b
check "QEMU still has its first object" marked

# --- stop, with A held down
ev=$(gadget_evdev)
kbd_report 0 0x04
check "A held down: QEMU has it down" waitfor 10 qemu_key_down vm1 a
check "systemctl stop vmplugd" systemctl stop vmplugd
check "vmplugd.service is inactive, not failed" test "$(systemctl is-active vmplugd)" = inactive
check "vmplugd exited cleanly" test "$(unit_prop Result)" = success
check "QEMU has no key down" waitfor 10 qemu_no_key_down vm1
check "nothing holds the keyboard grabbed" sh -c "evread -g -t 0 $ev >/dev/null"
check "the host reads the key still held on it" test "$(evdev_keys "$ev")" = KEY_A
kbd_report 0
no_sinks() {
	! has_input vmplug-vm1-kbd && ! has_input vmplug-host-kbd
}
check "the fd store is emptied: the sinks are gone" waitfor 10 no_sinks
