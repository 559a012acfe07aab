#!/bin/sh
# Scenario: a port rule on a hub's port gives a VM every device behind the hub (keyboards, a
# mouse, a disk), never the hub, also those plugged in later, and again after the hub is
# replugged; a deny rule added (reload) then keeps the disk on the host, where the guest kernel
# reads it, through a replug of the disk.
# e2e-timeout: 240
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
usbhw_available || skip "no emulated USB hardware (tests/e2e/run gives it)"

check "a hub with a keyboard and a disk behind it" usbhw_plug hub hub-kbd storage || exit 1
hub=$(usbhw_sysname hub)
disk=$(usbhw_sysname storage)
vmplug_conf "$T/conf"
# rules [LINE...]: vm1 claims the hub's port; the LINEs are more rules.
rules() {
	usb_rules_conf "$T/conf" vm1 '[usb "desk-hub"]' "port = $hub" "$@"
}
rules

nested_qemu_start vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
check_vm_usb "the devices behind the hub on $hub are attached" vm1 hub-kbd storage

# hub_kept: the hub is nobody's: the guest kernel's hub driver still has it,
# vmplugd attached nothing on its port itself, QEMU has no hub.
hub_kept() {
	[ "$(usbhw_driver hub)" = hub ] &&
		! grep -q "usb $hub .*: attached" "$T/vmplugd.log" &&
		! vm_usb vm1 | grep -q 'Hub$'
}
check "the hub is not attached" hub_kept

check "a keyboard and a mouse plugged in behind the hub" usbhw_plug hub-kbd2 hub-mouse
check_vm_usb "they are attached too" vm1 hub-kbd storage hub-kbd2 hub-mouse

check "the hub unplugged" usbhw_unplug hub
check_vm_usb "everything behind it is detached" vm1
check "the hub plugged in again, with a keyboard and the disk behind it" \
	usbhw_plug hub hub-kbd storage
check_vm_usb "both are attached again (new device numbers)" vm1 hub-kbd storage
check "and the hub is not" hub_kept

# disk_on_host: the guest kernel's usb-storage has the disk and reads it.
disk_on_host() {
	local blk
	[ "$(usbhw_driver storage)" = usb-storage ] || return 1
	blk=$(ls "$(usbhw_sysfs storage)/$disk:1.0"/host*/target*/*/block 2>/dev/null) || return 1
	[ -b "/dev/$blk" ] && [ "$(head -n 1 "/dev/$blk")" = "$USBHW_DISK_LABEL" ]
}

rules '[usb-deny "disks"]' "interface-class = 08"
kill -HUP "$(cat "$T/vmplugd.pid")"
check_vm_usb "a deny rule for disks (reload): the disk is detached, the keyboard stays" \
	vm1 hub-kbd
check "the host has the disk back and reads it" waitfor 30 disk_on_host
"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" explain "$disk" >"$T/explain" 2>&1
sed 's/^/  # /' "$T/explain"
check "vmplugctl explain names the deny rule" grep -q '\[usb-deny "disks"\] *matches' "$T/explain"

# The disk comes back while the port is claimed; the keyboard replugged after
# it shows when vmplugd has seen both.
check "the disk and then a keyboard replugged" usbhw_replug storage hub-kbd
check_vm_usb "the keyboard is attached again, the disk is not" vm1 hub-kbd
check "the host reads the replugged disk" waitfor 30 disk_on_host
