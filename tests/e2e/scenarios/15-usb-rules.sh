#!/bin/sh
# Scenario: rules by vendor and product, by serial, by udev property (udev's own and one a local
# udev rule sets) and by udev tag pick the right devices out of a hub full of alike ones, from
# the udev database as udevd filled it; what no rule claims stays on the host.
# e2e-timeout: 300
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
usbhw_available || skip "no emulated USB hardware (tests/e2e/run gives it)"

# A user's udev rule: the first keyboard gets a property and a tag of its own.
mkdir -p /run/udev/rules.d
cat >/run/udev/rules.d/70-vmplug-e2e-desk.rules <<'RULES'
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{serial}=="vmplug-e2e-kbd1", ENV{VMPLUG_E2E_DESK}="left", TAG+="vmplug_e2e"
RULES
udevadm control --reload
trap 'rm -f /run/udev/rules.d/70-vmplug-e2e-desk.rules; udevadm control --reload; _e2e_cleanup' EXIT

# All four QEMU HID devices are 0627:0001; only their serials (none for the
# twin) and udev's properties tell them apart.
check "a hub with two keyboards, a mouse and a disk, and a keyboard beside it" \
	usbhw_plug hub hub-kbd hub-kbd2 hub-mouse storage twin-a || exit 1
kbd1=$(usbhw_sysfs hub-kbd)
check "udev's database has the local rule's property" \
	test "$(udevadm info -q property -p "$kbd1" | grep -x 'VMPLUG_E2E_DESK=left')" != ""

vmplug_conf "$T/conf"
usb_rules_conf "$T/conf" desk '[usb "left-desk"]' "property = VMPLUG_E2E_DESK~^le" \
	"tag = vmplug_e2e"
usb_rules_conf "$T/conf" disk '[usb "qemu-disk"]' "vendor = 46f4" "product = 0x0001"
usb_rules_conf "$T/conf" kbd2 '[usb "second-keyboard"]' "vendor = 0627" "product = 0001" \
	"serial = vmplug-e2e-kbd2"
usb_rules_conf "$T/conf" mouse '[usb "mice"]' "property = ID_MODEL=QEMU_USB_Mouse" \
	"property = ID_USB_INTERFACES~:030102:"
for vm in desk disk kbd2 mouse; do
	nested_qemu_start "$vm" || exit 1
done
vmplugd_start "$T/conf" || exit 1

check_vm_usb "property (a local udev rule's) and tag: desk has the first keyboard" desk hub-kbd
check_vm_usb "vendor and product: disk has the disk" disk storage
check_vm_usb "vendor, product and serial: kbd2 has the second keyboard" kbd2 hub-kbd2
check_vm_usb "udev's properties: mouse has the mouse" mouse hub-mouse
check "the keyboard with no serial, which no rule claims, stays on the host" \
	test "$(usbhw_driver twin-a)" = usbhid
