#!/bin/sh
# Scenario: fd attach mode on the real usbfs: vmplugd opens the device node itself and passes
# the descriptor (add-fd), so QEMU needs no access to /dev/bus/usb. Replugged, it is attached
# again with the new address; unplugged, it is detached and its fd set removed (remove-fd);
# after a QEMU restart and a vmplugd restart it is attached exactly once, through one fd set.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

vmplug_conf "$T/conf"
usb_vm_conf "$T/conf" vm1 "attach-mode = fd"

# QEMU closes the fds of a removed fd set only while the VM runs (a paused
# one keeps them listed in query-fdsets): it runs until the fd sets are
# checked (a running nested guest under TCG is slow: no longer than that).
nested_qemu_start vm1 && qmp vm1 cont >/dev/null || exit 1
vmplugd_start "$T/conf" || exit 1
bus=$(gadget_busnum)
dev=$(gadget_devnum)
check "attached as vmplug-usbfd-$bus-$dev" waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$dev "
# fdsets_of ID: how many fds QEMU holds in fd sets tagged with ID (vmplugd's add-fd)
fdsets_of() {
	qmp -r vm1 query-fdsets | grep -o "\"opaque\": *\"$1\"" | wc -l
}
fdset_has() { [ "$(fdsets_of "$1")" -eq 1 ]; }
fdset_gone() { [ "$(fdsets_of "$1")" -eq 0 ]; }
check "through an fd set vmplugd passed" fdset_has "vmplug-usbfd-$bus-$dev"
gadget_replug usb
new=$(gadget_devnum)
check "replugged, attached again with the new address" \
	waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$new "
check "through a new fd set" fdset_has "vmplug-usbfd-$bus-$new"
check "the old device's fd set is gone" waitfor 10 fdset_gone "vmplug-usbfd-$bus-$dev"

gadget_unplug
check "unplugged: detached (DEVICE_DELETED seen)" \
	waitfor 30 grep -q "vm vm1: usb .*vmplug-usbfd-$bus-$new: detached" "$T/vmplugd.log"
check "QEMU no longer lists it" waitfor 10 usb_ids_are vm1 ""
check "and holds no fd set for it any more (remove-fd)" \
	waitfor 10 fdset_gone "vmplug-usbfd-$bus-$new"
qmp vm1 stop >/dev/null

gadget_plug usb
dev=$(gadget_devnum)
check "plugged again: attached" waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$dev "

nested_qemu_stop vm1
check "vmplugd sees QEMU go" waitfor 20 grep -q "vm vm1: gone" "$T/vmplugd.log"
nested_qemu_start vm1 || exit 1
check "QEMU restarted: attached again" waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$dev "
check "QEMU restarted: through one fd set" fdset_has "vmplug-usbfd-$bus-$dev"

vmplugd_stop KILL
mv "$T/vmplugd.log" "$T/vmplugd.first.log"
vmplugd_start "$T/conf" -v || exit 1
check "vmplugd restarted: learns what QEMU has" \
	waitfor 30 grep -q "vm vm1: ready, 1 object" "$T/vmplugd.log"
check "vmplugd restarted: nothing duplicated" usb_ids_are vm1 "vmplug-usbfd-$bus-$dev "
check "vmplugd restarted: still one fd set" fdset_has "vmplug-usbfd-$bus-$dev"
vmplugd_adopted vm1 "vmplug-usbfd-$bus-$dev"
