#!/bin/sh
# The demo (./demo): vmplugd gives a nested QEMU the guest's USB keyboard, narrated for a
# newcomer. Runs only when asked for by name: tests/e2e/run --build-dir BUILD demo
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

say() {
	echo
	echo ">>> $*"
}

# show_log: vmplugd's lines about the VM since the last call
shown=0
show_log() {
	local n
	n=$(wc -l <"$T/vmplugd.log")
	tail -n +"$((shown + 1))" "$T/vmplugd.log" | grep -E 'vm demo: (usb|gone|ready|connected)' |
		sed 's/^vmplugd: [a-z]*: /    vmplugd: /'
	shown=$n
}

# show_qemu: what QEMU itself reports about its USB devices
show_qemu() {
	local usb
	usb=$(qmp -H demo x-query-usb 2>/dev/null | tr -d '\r' | grep .)
	if [ -n "$usb" ]; then
		echo "$usb" | sed 's/^ */    QEMU: /'
	else
		echo "    QEMU: (no USB devices)"
	fi
}

port=$(basename "$(gadget_sysfs)")
vmplug_conf "$T/conf"
cat >"$T/conf/vm.d/demo.conf" <<CONF
[vm]
qmp-socket = $T/demo.qmp
usb-bus = xhci.0

[usb "keyboard-port"]
port = $port
CONF
chmod go-w "$T/conf/vm.d/demo.conf"

say "This is a throwaway Linux (Debian's own kernel) running under QEMU. Its USB keyboard
    is a gadget on port $port: device $(gadget_busnum):$(gadget_devnum), $(cat "$(gadget_sysfs)/product")."
say "A VM named 'demo' (a nested QEMU with a QMP socket) and vmplug's config for it:"
sed 's/^/    /' "$T/conf/vm.d/demo.conf"
nested_qemu_start demo || exit 1
vmplugd_start "$T/conf" || exit 1

say "vmplugd starts, finds QEMU and the keyboard on port $port, and attaches it:"
check "attached" waitfor 30 usb_ids_are demo "vmplug-usb-$(gadget_busnum)-$(gadget_devnum) " >/dev/null
show_log
show_qemu

say "Unplugging the keyboard..."
gadget_unplug
check "detached" waitfor 30 usb_ids_are demo "" >/dev/null
show_log
show_qemu

say "Plugging it back in (the kernel gives it a new device number)..."
gadget_plug usb
check "attached again" waitfor 30 usb_ids_are demo "vmplug-usb-$(gadget_busnum)-$(gadget_devnum) " >/dev/null
show_log
show_qemu

say "Stopping the VM's QEMU and starting it again..."
nested_qemu_stop demo
waitfor 20 grep -q "vm demo: gone" "$T/vmplugd.log"
nested_qemu_start demo || exit 1
check "attached after the restart" waitfor 30 usb_ids_are demo "vmplug-usb-$(gadget_busnum)-$(gadget_devnum) " >/dev/null
show_log
show_qemu

say "What 'vmplugctl status' shows now:"
"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" status | sed 's/^/    /'
say "That is vmplug: the device follows its VM through unplug, replug and restarts."
