#!/bin/sh
# Scenario: the gadget is a real USB keyboard to the guest kernel, udev and evdev readers.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

sysdir=$(gadget_sysfs)
check "gadget enumerated as USB device ${sysdir##*/}" test -n "$sysdir" || exit 1
check "its vendor:product is 1d6b:0104" \
	test "$(cat "$sysdir/idVendor"):$(cat "$sysdir/idProduct")" = 1d6b:0104
node=$(gadget_usbnode)
check "its usbfs node $node exists" test -c "$node"

ev=$(gadget_evdev)
check "usbhid made an evdev node for it: $ev" test -c "$ev" || exit 1
check "udev marks $ev ID_INPUT_KEYBOARD=1" test "$(udev_prop "$ev" ID_INPUT_KEYBOARD)" = 1
check "udev marks $ev ID_BUS=usb" test "$(udev_prop "$ev" ID_BUS)" = usb

check "evread reads $ev" evread_start "$T/events" -u KEY_A:0 -t 10000 "$ev"
check "a report written to $(gadget_hidg) is accepted" type_key 0x04
wait "$EVREAD_PID"
sed 's/^/  # /' "$T/events"
check "KEY_A press arrives on $ev" grep -qx 'EV_KEY KEY_A 1' "$T/events"
check "KEY_A release arrives on $ev" grep -qx 'EV_KEY KEY_A 0' "$T/events"

hold_a() {
	kbd_report 0 0x04 && waitfor 5 keys_held "$ev" KEY_A
}

release_all() {
	kbd_report 0 && waitfor 5 keys_held "$ev" "(none)"
}

check "holding A down shows in $ev's key state" hold_a
check "releasing it clears the key state" release_all
