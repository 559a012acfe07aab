#!/bin/sh
# Scenario: a USB mouse beside the keyboard goes through vmplugd into a nested QEMU (input-linux):
# motion, buttons and the wheel reach QEMU (its input trace) and the wheel's high-resolution
# events reach the sinks; a button held across a switch or an unplug is released in the VM, and no
# sink keeps a button down.
# e2e-timeout: 240
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

kbd_source || exit 1
check "the gadget gets a mouse beside its keyboard" gadget_add_mouse || exit 1
mouse_source || exit 1
vmplug_rules_install
vmplug_input_conf "$T/conf" "$link" '[input "mouse"]' "device = $mlink"
printf '[vm]\nqmp-socket = %s\ninputs = kbd, mouse\nfocus-on-start = yes\n' \
	"$(nested_qmp_socket vm1)" >"$T/conf/vm.d/vm1.conf"
chmod go-w "$T/conf/vm.d/vm1.conf"
nested_qemu_keys vm1 -trace input_event_btn -trace input_event_rel || exit 1
vmplugd_start "$T/conf" || exit 1

sink=/dev/input/by-id/vmplug-vm1-mouse
host=/dev/input/by-id/vmplug-host-mouse
ctl() {
	"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" "$@"
}
focus_is() {
	ctl status 2>/dev/null | grep -qx "keyboard and mouse: $1"
}
has_mouse_object() {
	qmp -r vm1 qom-list '{"path": "/objects"}' 2>/dev/null | grep -q vmplug-in-mouse
}
# traced N TEXT: QEMU's input trace has TEXT at least N times.
traced() {
	[ "$(grep -c "$2" "$T/vm1.err")" -ge "$1" ]
}
check "the mouse is opened and grabbed" \
	wait_line 20 "$T/vmplugd.log" "input mouse: $mev (.*) opened and grabbed"
check "vm1's QEMU has the mouse's sink as input-linux" waitfor 30 has_mouse_object
check "vm1 takes the focus when it comes up" waitfor 30 focus_is vm1

mouse_report 0 7 -3
check "motion reaches QEMU: x" waitfor 10 traced 1 "axis x, value 7"
check "motion reaches QEMU: y" waitfor 10 traced 1 "axis y, value -3"
mouse_report 1 0 0
mouse_report 0 0 0
check "the left button reaches QEMU, pressed" waitfor 10 traced 1 "button left, down 1"
check "and released" waitfor 10 traced 1 "button left, down 0"
mouse_report 0 0 0 1
mouse_report 0 0 0 -1
check "the wheel reaches QEMU: up" waitfor 10 traced 1 "button wheel-up, down 1"
check "and down" waitfor 10 traced 1 "button wheel-down, down 1"

# A button held across a switch is released in the VM at the switch; its
# release later goes nowhere.
mouse_report 2 0 0
check "the right button is held in QEMU" waitfor 10 traced 1 "button right, down 1"
check "vmplugctl switch host" ctl switch host >/dev/null
check "the switch releases it in QEMU" waitfor 10 traced 1 "button right, down 0"
evread_start "$T/host" -u REL_HWHEEL_HI_RES:120 -t 20000 "$host"
mouse_report 0 0 0
mouse_report 0 0 0 1
mouse_report 0 0 0 0 1
wait "$EVREAD_PID"
check "the host's sink never saw the right button" sh -c "! grep -q BTN_RIGHT $T/host"
check "the host's sink gets the wheel with its high-resolution event" \
	sh -c "grep -qx 'EV_REL REL_WHEEL 1' $T/host && grep -qx 'EV_REL REL_WHEEL_HI_RES 120' $T/host"
check "and the horizontal wheel with its own" \
	sh -c "grep -qx 'EV_REL REL_HWHEEL 1' $T/host && grep -qx 'EV_REL REL_HWHEEL_HI_RES 120' $T/host"

# Unplugged with a button held: released in the VM; plugged in again, it works.
ctl switch vm1 >/dev/null
check "back on vm1" waitfor 10 focus_is vm1
mouse_report 1 0 0
check "the left button is held in QEMU again" waitfor 10 traced 2 "button left, down 1"
gadget_unplug
check "unplugged: the button is released in QEMU" waitfor 10 traced 2 "button left, down 0"
gadget_plug && waitfor 20 gadget_mouse_evdev_ready && udev_settle
check "plugged in again: the mouse is opened again" \
	waitfor 20 sh -c "[ \$(grep -c 'input mouse: .* opened and grabbed' $T/vmplugd.log) -ge 2 ]"
mouse_report 0 5 9
check "motion reaches QEMU after the replug" waitfor 10 traced 1 "axis y, value 9"
check "no button is down on vm1's sink" keys_held "$sink" "(none)"
check "no button is down on the host's sink" keys_held "$host" "(none)"
vmplug_rules_remove
