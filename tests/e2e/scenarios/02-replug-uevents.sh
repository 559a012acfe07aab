#!/bin/sh
# Scenario: unplug and replug give a new device number, seen by a libudev "udev" monitor.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bus=$(gadget_busnum)
old=$(gadget_devnum)
oldnode=$(gadget_usbnode)
log "before: bus $bus device $old ($oldnode)"

# unbind + remove on unplug, add + bind on plug.
uevmon -s udev -n 4 -t 20000 usb/usb_device >"$T/uevents" 2>&1 &
mon=$!
wait_line 10 "$T/uevents" '^ready$' || fail "uevmon is listening"

check "unplug: the USB device goes away" gadget_unplug
check "unplug: $oldnode is removed" is_gone "$oldnode"
check "replug: the USB device comes back" gadget_plug
wait "$mon"
sed 's/^/  # /' "$T/uevents"

new=$(gadget_devnum)
newnode=$(gadget_usbnode)
log "after: bus $bus device $new ($newnode)"
check "replug changes the device number ($old -> $new)" test "$new" != "$old"
check "replug: $newnode exists" test -c "$newnode"

pad_old=$(printf %03d "$old")
pad_new=$(printf %03d "$new")
rm_line=$(grep -n "^remove usb/usb_device .* BUSNUM=$(printf %03d "$bus") DEVNUM=$pad_old" \
	"$T/uevents" | cut -d: -f1)
add_line=$(grep -n "^add usb/usb_device .* BUSNUM=$(printf %03d "$bus") DEVNUM=$pad_new" \
	"$T/uevents" | cut -d: -f1)
check "monitor saw remove with BUSNUM/DEVNUM $bus/$old" test -n "$rm_line"
check "monitor saw add with BUSNUM/DEVNUM $bus/$new" test -n "$add_line"
check "remove came before add" test "${rm_line:-0}" -lt "${add_line:-0}"
