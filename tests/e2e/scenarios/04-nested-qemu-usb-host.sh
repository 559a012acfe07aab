#!/bin/sh
# Scenario: a nested QEMU takes the gadget with usb-host, and takes it again after a replug.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

# usb_attached NAME ID: x-query-usb lists device ID with the gadget's own product
# string, which QEMU only has once it really opened the device.
usb_attached() {
	qmp -H "$1" x-query-usb >"$T/usb.txt" &&
		grep -q "Product $GADGET_NAME, ID: $2\$" "$T/usb.txt"
}

usb_unlisted() {
	qmp -H "$1" x-query-usb >"$T/usb.txt" && ! grep -q "ID: $2\$" "$T/usb.txt"
}

driver_is_not() {
	[ "$(gadget_interface_driver)" != "$1" ]
}

driver_is() {
	[ "$(gadget_interface_driver)" = "$1" ]
}

# host_add ID BUS ADDR: what vmplugd does, on the primary QMP socket.
host_add() {
	qmp_main vm1 device_add "{\"driver\": \"usb-host\", \"id\": \"$1\", \"bus\": \"xhci.0\",
		\"hostbus\": $2, \"hostaddr\": $3}" >"$T/reply"
}

# host_del ID: device_del, and wait until QEMU reports the device gone.
host_del() {
	qmp_main -w "DEVICE_DELETED:$1" vm1 device_del "{\"id\": \"$1\"}" >"$T/reply"
}

nested_qemu_start vm1 || exit 1
pass "nested QEMU answers on $(nested_qmp_socket vm1) and $(nested_check_socket vm1)"

bus=$(gadget_busnum)
dev=$(gadget_devnum)
check "device_add usb-host hostbus=$bus hostaddr=$dev" host_add kbd1 "$bus" "$dev"
check "x-query-usb shows the gadget as kbd1" waitfor 10 usb_attached vm1 kbd1
sed 's/^/  # /' "$T/usb.txt"
check "QEMU took the interface from usbhid" waitfor 5 driver_is_not usbhid

check "replug" gadget_replug
new=$(gadget_devnum)
check "the device number changed ($dev -> $new)" test "$new" != "$dev"

check "device_del kbd1 is answered with DEVICE_DELETED" host_del kbd1
check "x-query-usb no longer lists kbd1" usb_unlisted vm1 kbd1
check "device_add usb-host hostbus=$bus hostaddr=$new" host_add kbd2 "$bus" "$new"
check "x-query-usb shows the replugged gadget as kbd2" waitfor 10 usb_attached vm1 kbd2
sed 's/^/  # /' "$T/usb.txt"
check "QEMU took the replugged interface from usbhid" waitfor 5 driver_is_not usbhid

nested_qemu_stop vm1
check "usbhid has the keyboard back once QEMU quit" waitfor 5 driver_is usbhid
