#!/bin/bash
# USB rules as users write them, judged by vmplugd on a fake USB tree
# (real libudev, umockdev): serials as sysfs has them and as udev's
# ID_SERIAL_SHORT shows them, awkward ones included; ports named by their
# controller as udev's ID_PATH names them; seen through vmplugctl explain
# and usb.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
write_conf "$conf"
cat >"$conf/vm.d/alpha.conf" <<'CONF'
[vm]
qmp-socket = /run/vmplug-test/alpha.qmp
[usb "spaced-raw"]
serial = My Serial  01
[usb "spaced-udev"]
serial = My_Serial_01
[usb "odd-udev"]
serial = A_B\x_1_
[usb "comma-udev"]
serial = A_B_C
CONF
cat >"$conf/vm.d/beta.conf" <<'CONF'
[vm]
qmp-socket = /run/vmplug-test/beta.qmp
[usb "comma-raw"]
serial = A\x01B,C
CONF
cat >"$conf/vm.d/gamma.conf" <<'CONF'
[vm]
qmp-socket = /run/vmplug-test/gamma.qmp
[usb "front"]
port = pci-0000:00:14.0-usb-0:2
CONF
chmod go-w "$conf"/vm.d/*

# %XX: the bytes sysfs holds, spaces at both ends and a control byte included
plug 1-1 dev=2 vid=1234 pid=0001 serial=%20My%20Serial%20%2001%20
plug 1-2 dev=3 vid=1234 pid=0002 serial=A/B%5cx%281%29
plug 1-3 dev=4 vid=1234 pid=0003 serial=A%01B,C
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
# matched PORT: the rules of every VM that match the device there
matched() {
	ctl --json explain "$1" |
		jq -r '[.return.devices[0].vms[].rules[] | select(.matched) | .rule] | join(" ")'
}

check "a serial with spaces matches as sysfs has it and as udev shows it" \
	test "$(matched 1-1)" = "spaced-raw spaced-udev"
check "udev's form of odd characters matches, '\\x' kept" test "$(matched 1-2)" = "odd-udev front"
check "a serial udev drops (control byte, comma) matches only as it is" \
	test "$(matched 1-3)" = "comma-raw"
check "a port named by its controller, as udev's ID_PATH, matches that port only" \
	test "$(matched 1-1)$(matched 1-3)" = "spaced-raw spaced-udevcomma-raw"
plug 2-2.4 dev=5 vid=1234 pid=0004
check "on each bus of the controller, and behind hubs" test "$(matched 2-2.4)" = "front"
out=$(ctl --json usb)
check "usb --json gives the ID_PATH" \
	test "$(jq -r '.return.devices[] | select(.port=="2-2.4") | ."id-path"' <<<"$out")" = "pci-0000:00:14.0-usb-0:2.4"
check "usb --json gives both forms" \
	test "$(jq -r '.return.devices[] | select(.port=="1-1") | "\(.serial)|\(."serial-udev")"' <<<"$out")" = "My Serial  01|My_Serial_01"
check "and none for a serial udev drops" \
	test "$(jq -r '.return.devices[] | select(.port=="1-3") | "\(.serial)|\(."serial-udev")"' <<<"$out")" = 'A\x01B,C|null'
check "explain VID:PID:SERIAL takes udev's form too" \
	test "$(ctl explain 1234:0001:My_Serial_01)" = "$(ctl explain 1-1)"
# usb DEVICE: everything a rule can match on, in the form a rule takes
out=$(ctl usb 1-1)
check "usb DEVICE exits 0" test $? -eq 0
want='1-1 1234:0001
port = 1-1
port = pci-0000:00:14.0-usb-0:1
bus = 1
device = 2
vendor = 1234
product = 0001
serial = My Serial  01
serial = My_Serial_01
interface-class = ff'
check "usb DEVICE: port (both forms), numbers, ids, serial (both forms), classes" \
	test "$(head -n 10 <<<"$out")" = "$want"
check "every udev property" grep -qxF "property = PRODUCT=1234/1/100" <<<"$out"
check "the device's class" grep -qxF "# device class 00" <<<"$out"
check "and who gets it" grep -qxF "goes to: alpha [spaced-raw]" <<<"$out"
out=$(ctl usb 1-3)
check "a serial udev drops: one form, escaped" grep -qxF 'serial = A\x01B,C' <<<"$out"
check "usb DEVICE --json: properties and tags as lists" \
	test "$(ctl --json usb 1-1 | jq -r '.return.devices | length, (.[0].properties | index("DEVTYPE=usb_device") != null), (.[0].tags | type)')" = "1
true
array"
check "DEVICE may be udev's ID_PATH" \
	test "$(ctl usb pci-0000:00:14.0-usb-0:1)" = "$(ctl usb 1-1)"
ctl usb 9-9 2>"$SCRATCH/err"
check "usb of a device that is not there exits 1" test $? -eq 1
check "and says so" grep -q "no USB device matches '9-9'" "$SCRATCH/err"
done_testing
