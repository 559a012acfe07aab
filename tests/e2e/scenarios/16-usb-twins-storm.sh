#!/bin/sh
# Scenario: two identical keyboards (same vendor and product, no serial) on two ports go to two
# VMs by port, each to its own, and stay so through a replug in the other order; then 100 quick
# plug/unplug cycles of both and of a keyboard behind a hub, done by the outer QEMU as fast as it
# takes them: at the end every VM has exactly what its rules claim, as QEMU sees it.
# e2e-timeout: 400
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
usbhw_available || skip "no emulated USB hardware (tests/e2e/run gives it)"

check "two keyboards plugged in" usbhw_plug twin-a twin-b || exit 1
a=$(usbhw_sysname twin-a)
b=$(usbhw_sysname twin-b)
# ids DIR: what tells a USB device from another of its kind.
ids() {
	echo "$(cat "$1/idVendor"):$(cat "$1/idProduct") $(cat "$1/product")" \
		"$(cat "$1/serial" 2>/dev/null || echo no-serial)"
}
log "$a: $(ids "$(usbhw_sysfs twin-a)")"
check "on $a and $b, alike to the serial: they have none" \
	test "$(ids "$(usbhw_sysfs twin-a)")" = "$(ids "$(usbhw_sysfs twin-b)")" -a \
	! -e "$(usbhw_sysfs twin-a)/serial"

vmplug_conf "$T/conf"
usb_rules_conf "$T/conf" left '[usb "left-port"]' "port = $a"
usb_rules_conf "$T/conf" right '[usb "right-port"]' "port = $b"
usb_rules_conf "$T/conf" desk '[usb "hub"]' "port = $(usbhw_sysname hub)"
for vm in left right desk; do
	nested_qemu_start "$vm" || exit 1
done
vmplugd_start "$T/conf" || exit 1

# each_has: left has the keyboard on a, right the one on b, as QEMU sees it.
each_has() {
	check_vm_usb "$1: left has the keyboard on $a" left twin-a
	check "$1: left's QEMU opened $a's address" vm_holds left twin-a
	check_vm_usb "$1: right has the keyboard on $b" right twin-b
	check "$1: right's QEMU opened $b's address" vm_holds right twin-b
}
each_has "plugged in"

# b enumerated before a is plugged in: the device numbers swap their order.
b_first() {
	usbhw_unplug twin-a twin-b && usbhw_plug twin-b && usbhw_plug twin-a
}
check "both unplugged, then plugged in b first" b_first
each_has "replugged, b first"

check "a hub with a keyboard plugged in" usbhw_plug hub hub-kbd
check_vm_usb "desk has the hub's keyboard" desk hub-kbd

start=$(uptime_s)
check "100 unplug/plug cycles of the three keyboards" usbhw_cycle 100 hub-kbd twin-a twin-b
log "the cycles took $(echo "$start $(uptime_s)" | awk '{ printf "%.1f", $2 - $1 }') s"
check "the guest kernel has the three again" waitfor 60 usbhw_all hub-kbd twin-a twin-b
udev_settle
VM_USB_WAIT=120
check_vm_usb "after: desk has the hub's keyboard, nothing else" desk hub-kbd
check_vm_usb "after: left has its keyboard, nothing else" left twin-a
check_vm_usb "after: right has its keyboard, nothing else" right twin-b
check "vmplugd still runs" pid_running "$(cat "$T/vmplugd.pid")"

check "then one keyboard unplugged" usbhw_unplug twin-b
check_vm_usb "right has nothing" right
check_vm_usb "left still has its keyboard" left twin-a
