#!/bin/bash
# Hostile input from devices: USB devices whose serial and product strings
# hold quotes, braces, backslashes, newlines, terminal escapes, bytes that
# are not UTF-8 and 4 KiB of text, plugged in and attached through vmplugd
# to a real QEMU behind qmp-check, which checks that every message vmplugd
# sends is one line of JSON of exactly the right shape. vmplugctl's
# usb and status stay one line per device, --json stays valid JSON, and
# nothing a device says can forge a line in vmplugd's log. A reload of a
# configuration holding such bytes is refused, escaped, and survived.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; [ -n "${checker:-}" ] && kill "$checker" 2>/dev/null; stop_all_qemu; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
qmplog=$SCRATCH/qmp-check.log
write_conf "$conf"
cat >"$conf/vm.d/vm.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/vm.proxy
usb-bus = xhci.0
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf"/vm.d/*

qemu_start vm
"$top_builddir/tests/integration/qmp-check" "$SCRATCH/vm.proxy" "$SCRATCH/vm.qmp" "$qmplog" &
checker=$!
wait_for 50 test -S "$SCRATCH/vm.proxy" || bail "qmp-check did not start"

# %XX-encoded for the testbed: any byte can be a device's string
enc() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g'; }
nl=$'\n'
long=$(printf 'A"}%.0s' $(seq 1 1400)) # 4.2 KiB of quotes and braces
serial1="x\"},{\"execute\":\"quit\"}${nl}vmplugd: error: forged line"
name1="Evil ${nl}\"quoted\" \\back\\slash \033[31mred\033[0m $(printf '\xff\xfe') end"
serial2=$(printf 'ctl\001\002\037\177 tab\there')
plug 1-1.2 dev=2 vid=1234 pid=0001 serial="$(enc "$serial1")" name="$(enc "$name1")"
plug 1-1.3 dev=3 vid=1234 pid=0002 serial="$(enc "$serial2")" name="$(enc "$long")"
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "devices with hostile strings are attached" \
	usb_in_qemu_is vm "vmplug-usb-1-2 attached=true hostaddr=2
vmplug-usb-1-3 attached=true hostaddr=3"
unplug 1-1.3
check "and detached" usb_in_qemu_is vm "vmplug-usb-1-2 attached=true hostaddr=2"
plug 1-1.3 dev=4 vid=1234 pid=0002 serial="$(enc "$serial2")" name="$(enc "$long")"
check "and attached again" usb_in_qemu_is vm "vmplug-usb-1-2 attached=true hostaddr=2
vmplug-usb-1-4 attached=true hostaddr=4"

check "qmp-check saw vmplugd's messages" test "$(grep -c '^ok device_add' "$qmplog")" -ge 3
bad=$(grep -v '^ok ' "$qmplog")
check "every message vmplugd sent was one line of JSON of the right shape" test -z "$bad"
[ -z "$bad" ] || diag "$bad"
check "QEMU is still running (no injected quit)" kill -0 "$(qemu_pid vm)"

ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
no_control_chars() { ! LC_ALL=C grep -q $'[\001-\010\013-\037\177]' <<<"$1"; }
out=$(ctl usb)
check "vmplugctl usb: one line per device (a header and 2 of 1-1.x)" \
	test "$(grep -c '^1-1\.[23] ' <<<"$out")" -eq 2 -a "$(grep -c '' <<<"$out")" -eq 3
check "vmplugctl usb: no control characters reach the terminal" no_control_chars "$out"
diag "$(head -c 300 <<<"$out" | LC_ALL=C tr -c '[:print:]\n' '?')"
out=$(ctl status)
check "vmplugctl status: one line per attached device" \
	test "$(grep -c 'vmplug-usb-1-[24] ' <<<"$out")" -eq 2
check "vmplugctl status: no control characters" no_control_chars "$out"
json=$(ctl --json usb)
check "vmplugctl --json usb is valid JSON with both devices" \
	test "$(jq '[.return.devices[] | select(.port == "1-1.2" or .port == "1-1.3")] | length' <<<"$json")" -eq 2
json_has() { jq -e "$1" <<<"$json" >/dev/null; }
check "a device's newline comes out escaped, not raw" \
	json_has '.return.devices[] | select(.port == "1-1.2") | .serial | contains("\\x0avmplugd")'
check "bytes that are not UTF-8 come out escaped" \
	json_has '.return.devices[] | select(.port == "1-1.2") | ."product-name" | contains("\\xff\\xfe")'
out=$(ctl explain 1-1.3)
check "vmplugctl explain of a 4 KiB name works" grep -q "goes to: vm" <<<"$out"

# A configuration can hold such bytes too: a reload is refused with its
# errors escaped, and vmplugd goes on with the running configuration.
printf '[vm]\nqmp-socket = /run/evil\377.qmp\nbogus\377\376\033[2J = 1\n' >"$conf/vm.d/evil.conf"
chmod go-w "$conf/vm.d/evil.conf"
out=$(ctl reload 2>&1)
check "a reload of a configuration with such bytes fails (exit status 1)" test $? -eq 1
check "its errors come back escaped" grep -qF "got 'bogus\xff\xfe\x1b[2J = 1'" <<<"$out" ||
	diag "$out"
check "vmplugd goes on" ctl status
check "with the running configuration" usb_in_qemu_is vm "vmplug-usb-1-2 attached=true hostaddr=2
vmplug-usb-1-4 attached=true hostaddr=4"
rm "$conf/vm.d/evil.conf"

check "no line of vmplugd's log was forged by a device" \
	test "$(grep -c '^vmplugd: error: forged line' "$log")" -eq 0
check "no control character reached vmplugd's log" no_control_chars "$(cat "$log")"
check "long names are cut in the log" test "$(awk '{ if (length($0) > 600) n++ } END { print n + 0 }' "$log")" -eq 0

stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
done_testing
