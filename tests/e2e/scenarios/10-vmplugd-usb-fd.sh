#!/bin/sh
# Scenario: fd attach mode on the real usbfs: vmplugd opens the device node itself and passes
# the descriptor (add-fd), so QEMU needs no access to /dev/bus/usb; replugged, it is attached
# again with the new address.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

port=$(basename "$(gadget_sysfs)")
vmplug_conf "$T/conf"
cat >"$T/conf/vm.d/vm1.conf" <<CONF
[vm]
qmp-socket = $T/vm1.qmp
usb-bus = xhci.0
[usb "keyboard-port"]
port = $port
attach-mode = fd
CONF
chmod go-w "$T/conf/vm.d/vm1.conf"

nested_qemu_start vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
bus=$(gadget_busnum)
dev=$(gadget_devnum)
check "attached as vmplug-usbfd-$bus-$dev" waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$dev "
# fdset_has ID: QEMU holds an fd set tagged with ID (vmplugd's add-fd)
fdset_has() {
	qmp -r vm1 query-fdsets | grep -q "\"opaque\": *\"$1\""
}
check "through an fd set vmplugd passed" fdset_has "vmplug-usbfd-$bus-$dev"
gadget_replug
new=$(gadget_devnum)
check "replugged, attached again with the new address" \
	waitfor 30 usb_ids_are vm1 "vmplug-usbfd-$bus-$new "
