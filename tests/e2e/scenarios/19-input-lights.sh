#!/bin/sh
# Scenario: the keyboard's lock lights follow the focus: on the host they show what the desktop
# sets on the host's sink; on a VM whose QEMU reads its sink with input-linux they are off; back
# on the host they show the desktop's again.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

kbd_source || exit 1
vmplug_rules_install
vmplug_input_conf "$T/conf" "$link"
vm_conf "$T/conf" vm1
nested_qemu_keys vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
host=/dev/input/by-id/vmplug-host-kbd
check "the host's sink has its link" waitfor 10 is_char_dev "$host" || exit 1
check "the keyboard is opened and grabbed" \
	wait_line 20 "$T/vmplugd.log" "input kbd: $ev (.*) opened and grabbed"
ctl() {
	"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" "$@"
}
vm1_running() {
	ctl status 2>/dev/null | grep -q '^vm1 .* running '
}
check "vmplugd sees vm1 running" waitfor 60 vm1_running

gadget_leds_start "$T/leds"
# The desktop (here evread) sets Num Lock and Caps Lock on the host's sink.
evread -w LED_NUML:1 -w LED_CAPSL:1 -t 0 "$host" >/dev/null
check "host: the desktop's Num and Caps Lock reach the keyboard" waitfor 10 gadget_leds_are "$T/leds" 3
check "vmplugctl switch vm1" ctl switch vm1
check "vm1 (input-linux, no lights from the guest): the lights go off" \
	waitfor 10 gadget_leds_are "$T/leds" 0
evread -w LED_CAPSL:0 -w LED_SCROLLL:1 -t 0 "$host" >/dev/null
check "the desktop's changes meanwhile stay off the keyboard" sh -c "sleep 1; [ \$(tail -n 1 $T/leds) = 0 ]"
check "vmplugctl switch host" ctl switch host
check "host again: the keyboard shows the desktop's Num and Scroll Lock" \
	waitfor 10 gadget_leds_are "$T/leds" 5
vmplug_rules_remove
