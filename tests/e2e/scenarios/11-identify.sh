#!/bin/sh
# Scenario: vmplugctl identify, with a real USB keyboard plugged in: a [usb] section for the
# device and an [input] section for its keyboard node, in one answer.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

vmplug_conf "$T/conf"
port=$(basename "$(gadget_sysfs)")
# identify from vmplugd's first moment (as soon as its socket is there):
# the scan of present devices it makes a second after start is not a
# device plugged in (the PS/2 keyboard was once the answer).
"$VMPLUG_BUILD/vmplugd" -f -v -c "$T/conf" 2>>"$T/vmplugd.log" &
echo $! >"$T/vmplugd.pid"
waitfor 30 test -S "$T/conf/control.sock" || fail "vmplugd makes its control socket"
"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" identify --timeout 60 \
	>"$T/identify" 2>"$T/identify.err" &
idp=$!
wait_line 10 "$T/identify.err" "plug the device in now"
# Each scan judges every device again (logged at debug level).
rescanned() {
	[ "$(grep -c "usb $port [0-9a-f:]* .*: no VM claims it" "$T/vmplugd.log")" -ge 2 ]
}
check "vmplugd scanned the devices present once more" waitfor 10 rescanned
gadget_unplug
gadget_plug
check "identify answers once the keyboard is plugged in" wait "$idp"
sed 's/^/  # /' "$T/identify"
port=$(basename "$(gadget_sysfs)")
# by the port on its controller when udev gives the device an ID_PATH,
# the bus-numbered port as the alternative; else by the latter
idpath=$(udevadm info --query=property --path="$(gadget_sysfs)" 2>/dev/null |
	sed -n 's/^ID_PATH=//p')
if [ -n "$idpath" ]; then
	check "a [usb] section by udev's ID_PATH ($idpath)" grep -qxF "port = $idpath" "$T/identify"
	check "the port by bus number as the alternative" \
		grep -qxF "# or by bus number, as sysfs names it: port = $port" "$T/identify"
else
	check "a [usb] section by port" grep -q "^port = $port\$" "$T/identify"
fi
check "the identity rule, with the serial" grep -q "^# serial = $GADGET_SERIAL\$" "$T/identify"
check "an [input \"kbd\"] section for its keyboard node" grep -q '^\[input "kbd"\]$' "$T/identify"
check "by its stable /dev/input/by-id link" \
	grep -q '^device = /dev/input/by-id/usb-.*-event-kbd$' "$T/identify"

# A keyboard that calls itself like one of vmplugd's sinks is still a device
# plugged in; a sink vmplugd makes meanwhile (a VM that takes input added by
# a reload) is not. The sink comes first: answered, it would be the answer.
"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" identify --timeout 60 \
	>"$T/identify2" 2>"$T/identify2.err" &
idp=$!
wait_line 10 "$T/identify2.err" "plug the device in now"
printf '[input "kbd"]\ndevice = /dev/input/by-id/vmplug-e2e-no-such-kbd\n' >>"$T/conf/vmplug.conf"
vm_conf "$T/conf" pc
"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" reload >/dev/null
sink_made() { grep -qx vmplug-pc-kbd /sys/devices/virtual/input/input*/name 2>/dev/null; }
check "a reload makes the sink vmplug-pc-kbd meanwhile" waitfor 20 sink_made
udev_settle
check "the keyboard plugs in as vmplug-pc-kbd" gadget_rename vmplug-pc-kbd
check "identify answers" wait "$idp"
sed 's/^/  # /' "$T/identify2"
check "with the keyboard's [usb] section" grep -q '^\[usb "' "$T/identify2"
check "and its [input \"kbd\"] section by its by-id link, not the sink's" \
	grep -q '^device = /dev/input/by-id/usb-.*-event-kbd$' "$T/identify2"
