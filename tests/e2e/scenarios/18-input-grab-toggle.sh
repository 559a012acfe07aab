#!/bin/sh
# Scenario: no key typed in a VM can complete QEMU's own grab toggle on vmplugd's sink: for every
# toggle QEMU knows, with grab-all on and off, the toggle typed leaves QEMU holding the sink and
# the next key reaching the VM (QEMU's key trace); and a sink QEMU let go of some other way is
# noticed when the focus moves there, and QEMU gets it back.
# e2e-timeout: 600
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

kbd_source || exit 1
vmplug_rules_install
sink=/dev/input/by-id/vmplug-vm1-kbd

# configure TOGGLE GRAB-ALL: vm1 with that grab toggle, the keyboard with
# that grab-all; no cycle chord, so both Ctrl keys are only QEMU's.
configure() {
	vmplug_input_conf "$T/conf" "$link" "[switch]" "cycle = none"
	echo "grab-all = $2" >>"$T/conf/vmplug.conf"
	vm_conf "$T/conf" vm1 "focus-on-start = yes" "grab-toggle = $1"
}
# qemu_has TOGGLE GRAB-ALL: QEMU's object on the sink has them.
qemu_has() {
	local o='"path": "/objects/vmplug-in-kbd"'
	[ "$(qmp -r vm1 qom-get "{$o, \"property\": \"grab-toggle\"}" 2>/dev/null)" = "$1" ] &&
		[ "$(qmp -r vm1 qom-get "{$o, \"property\": \"grab_all\"}" 2>/dev/null)" = "$2" ]
}
qemu_holds_sink() {
	grab_refused "$sink"
}
# type_toggle TOGGLE: type it as a user would (modifier bits: 0x01 left
# Ctrl, 0x02 left Shift, 0x04 left Alt, 0x08 left Meta, 0x10.. the right ones).
type_toggle() {
	case $1 in
	scrolllock) type_key 0x47 ;;
	ctrl-scrolllock) kbd_report 0x01 && kbd_report 0x01 0x47 && kbd_report 0x01 && kbd_report 0 ;;
	meta-meta) kbd_report 0x08 && kbd_report 0x88 && kbd_report 0 ;;
	alt-alt) kbd_report 0x04 && kbd_report 0x44 && kbd_report 0 ;;
	shift-shift) kbd_report 0x02 && kbd_report 0x22 && kbd_report 0 ;;
	ctrl-ctrl) kbd_report 0x01 && kbd_report 0x11 && kbd_report 0 ;;
	esac
}

configure scrolllock true
nested_qemu_keys vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
vmplugd=$(cat "$T/vmplugd.pid")
check "the keyboard is opened and grabbed" \
	wait_line 20 "$T/vmplugd.log" "input kbd: $ev (.*) opened and grabbed"

# One letter per case, a to l (HID usages 0x04 to 0x0f).
usage=4
reloads=0
for grab_all in true false; do
	for toggle in scrolllock ctrl-scrolllock meta-meta alt-alt shift-shift ctrl-ctrl; do
		letter=$(echo abcdefghijkl | cut -c$((usage - 3)))
		if [ "$usage" -gt 4 ]; then
			configure "$toggle" "$([ $grab_all = true ] && echo yes || echo no)"
			kill -HUP "$vmplugd"
			reloads=$((reloads + 1))
			wait_line 20 "$T/vmplugd.log" "configuration reloaded" &&
				waitfor 20 sh -c "[ \$(grep -c 'configuration reloaded' $T/vmplugd.log) -ge $reloads ]"
		fi
		check "$toggle, grab-all $grab_all: QEMU's object has them" \
			waitfor 30 qemu_has "$toggle" "$grab_all" || continue
		waitfor 10 qemu_holds_sink
		type_toggle "$toggle"
		type_key "$usage"
		check "$toggle, grab-all $grab_all: typed, the next key ($letter) reaches the VM" \
			waitfor 10 qemu_got vm1 "$letter"
		check "$toggle, grab-all $grab_all: QEMU still holds the sink" qemu_holds_sink
		usage=$((usage + 1))
	done
done
# QEMU lets go of the sink some way the router cannot see: another
# input-linux object of the same QEMU, with grab-all, sees its own toggle
# (Scroll Lock, on a keyboard of its own) and takes QEMU's grab of every
# object without grab-all (vmplugd's, now) with it. When the focus next
# moves there, vmplugd notices and adds its object again.
qemu_let_go() {
	evread -g -t 0 "$sink" >/dev/null 2>&1
}
ctl() {
	"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" "$@" >/dev/null
}
uinput-kbd -N "vmplug e2e other" -t 200 KEY_SCROLLLOCK >"$T/other" 2>&1 &
other=$!
waitfor 20 grep -q ready "$T/other"
other_node=$(sed -n 's/^node //p' "$T/other")
check "QEMU takes another keyboard, with grab-all and Scroll Lock as its toggle" \
	qmp vm1 object-add "{\"qom-type\": \"input-linux\", \"id\": \"other\", \"evdev\": \"$other_node\", \"grab_all\": true, \"grab-toggle\": \"scrolllock\"}" >/dev/null
kill -USR1 "$other"
check "Scroll Lock there makes QEMU let go of vmplugd's sink too" waitfor 20 qemu_let_go
check "the focus moves to the host" ctl switch host
check "and back to vm1" ctl switch vm1
check "vmplugd notices that QEMU let go of the sink" \
	wait_line 20 "$T/vmplugd.log" "vm vm1's QEMU has let go of vmplug-vm1-kbd"
check "and QEMU holds it again" waitfor 30 qemu_holds_sink
type_key 0x10
check "the next key (m) reaches the VM" waitfor 10 qemu_got vm1 m
check "said once" test "$(grep -c "has let go of" "$T/vmplugd.log")" -eq 1
kill "$other" 2>/dev/null
vmplug_rules_remove
