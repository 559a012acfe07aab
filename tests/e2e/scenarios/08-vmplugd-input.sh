#!/bin/sh
# Scenario: vmplugd puts the gadget keyboard's persistent sink into a nested QEMU (input-linux):
# typing reaches QEMU; unplugged, the sink and QEMU's object stay; plugged in again, typing
# reaches QEMU again; vmplugd restarted, QEMU gets working input again; with no cache and no
# keyboard, a fallback sink still exists.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

kbd_source || exit 1
vmplug_rules_install

vmplug_input_conf "$T/conf" "$link"
# focus-on-start: the keyboard goes to vm1 rather than to the host
vm_conf "$T/conf" vm1 "focus-on-start = yes"

# A machine without CPUs, running, whose trace shows each key it got.
nested_qemu_keys vm1 || exit 1

vmplugd_start "$T/conf" || exit 1
sink=/dev/input/by-id/vmplug-vm1-kbd
check "the sink has its link $sink" waitfor 10 is_char_dev "$sink" || exit 1

# in_qemu: QEMU has vmplug's input-linux object on the sink's link
in_qemu() {
	[ "$(qmp -r vm1 qom-get '{"path": "/objects/vmplug-in-kbd", "property": "evdev"}')" = "$sink" ]
}

check "vmplugd added input-linux vmplug-in-kbd on $sink" waitfor 30 in_qemu
check "QEMU holds the sink: another grab gets EBUSY" waitfor 10 grab_refused "$sink"
type_key 0x04
check "typing A on the keyboard reaches QEMU" waitfor 10 qemu_got vm1 a

gadget_unplug
check "unplugged: the sink stays" is_char_dev "$sink"
check "unplugged: QEMU's object stays" in_qemu
gadget_plug
check "the replugged keyboard is opened again" \
	waitfor 10 sh -c "test \$(grep -c 'opened and grabbed' $T/vmplugd.log) -ge 2"
type_key 0x05
check "after the replug, typing B reaches QEMU" waitfor 10 qemu_got vm1 b

# A restart without a service manager's fd store: the sink is made anew,
# and vmplugd replaces QEMU's object that held the old one. (Each vmplugd
# gets a log of its own: the first one's lines would answer the checks.)
vmplugd_stop TERM
mv "$T/vmplugd.log" "$T/vmplugd.1.log"
vmplugd_start "$T/conf" || exit 1
check "vmplugd restarted: it replaced QEMU's stale object" \
	waitfor 30 grep -q "vm vm1: input .*vmplug-in-kbd: attached" "$T/vmplugd.log"
check "the keyboard is opened again" waitfor 10 grep -q 'opened and grabbed' "$T/vmplugd.log"
type_key 0x06
check "after the restart, typing C reaches QEMU" waitfor 10 qemu_got vm1 c

# No cache and no keyboard: the sink is a generic keyboard, at once.
vmplugd_stop TERM
mv "$T/vmplugd.log" "$T/vmplugd.2.log"
rm -f "$T/conf/cache/kbd.json"
gadget_unplug
vmplugd_start "$T/conf" || exit 1
check "no cache, no keyboard: a fallback sink exists" waitfor 10 is_char_dev "$sink"
check "and vmplugd says it is the generic keyboard" \
	grep -q "input kbd: .*generic keyboard" "$T/vmplugd.log"
check "QEMU gets it too" waitfor 30 in_qemu
