#!/bin/sh
# Scenario: a keyboard another program has grabbed: vmplugd says so once, with what to do, and
# takes the keyboard when it is let go; the VM sink's node gets the configured qemu-group (also
# after a reload that changes it), the host sink keeps udev's.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

kbd_source || exit 1
vmplug_rules_install

# Another program holds the keyboard (evtest --grab, a QEMU on the
# physical device, ...).
evread_start "$T/grabber" -g -u KEY_A:0 -t 120000 "$ev"
grabber=$EVREAD_PID
check "the other program grabbed $ev: vmplug's grab would get EBUSY" grab_refused "$ev"

vmplug_input_conf "$T/conf" "$link" "qemu-group = render"
vm_conf "$T/conf" vm1 "focus-on-start = yes"

vmplugd_start "$T/conf" || exit 1
busy="input kbd: $ev is grabbed by another program (EVIOCGRAB: device busy), so vmplug cannot take it; \`fuser -v $ev\` names it"
check "vmplugd explains that the keyboard is busy and how to find who has it" \
	wait_line 20 "$T/vmplugd.log" "$busy"

sink=/dev/input/by-id/vmplug-vm1-kbd
host=/dev/input/by-id/vmplug-host-kbd
check "the sinks exist all the same" waitfor 10 sh -c "[ -c $sink ] && [ -c $host ]" || exit 1
udev_settle
node=$(readlink -f "$sink")
check "the VM's sink node $node is group render (qemu-group), mode 660" \
	test "$(stat -c '%G %a' "$node")" = "render 660"
check "the host's sink keeps udev's group (input)" \
	test "$(stat -c %G "$(readlink -f "$host")")" = input

# vm1 has no QEMU: the focus stays on the host, and typing would go to
# the host's sink.
# udev applies its rules (GROUP="input" for every input device in
# Debian's 50-udev-default.rules) again at each event: a `udevadm trigger`
# must not take the node from QEMU's group.
udevadm trigger --action=change "$node"
udev_settle
check "after a udev change event the node is still group render" \
	waitfor 5 sh -c "test \"\$(stat -c '%G %a' $node)\" = 'render 660'"

# The host's sink is read from now until B, typed once vmplugd has the
# keyboard: vmplugd handles frames in order, so A, typed before, would
# have come first.
evread_start "$T/sink" -u KEY_B:0 -t 60000 "$host"
type_key 0x04
check "while it is grabbed, the other program gets the typing" \
	waitfor 5 grep -q '^EV_KEY KEY_A 0$' "$T/grabber"
check "vmplugd said it once, not at every retry (every 2 s)" \
	test "$(grep -c 'is grabbed by another program' "$T/vmplugd.log")" = 1

# The other program lets go: vmplugd retries every 2 s and takes it.
wait "$grabber"
check "let go: vmplugd opens and grabs the keyboard" \
	wait_line 10 "$T/vmplugd.log" "input kbd: $ev (.*) opened and grabbed"
type_key 0x05
check "typing reaches the host's sink" wait "$EVREAD_PID"
check "and only what was typed after the grab: the host's sink never got A" \
	test "$(key_events "$T/sink")" = "EV_KEY KEY_B 1 EV_KEY KEY_B 0 "

# qemu-group changed by a reload: the node follows.
sed 's/^qemu-group = render$/qemu-group = kvm/' "$T/conf/vmplug.conf" >"$T/new.conf"
cat "$T/new.conf" >"$T/conf/vmplug.conf"
kill -HUP "$(cat "$T/vmplugd.pid")"
check "reloaded" wait_line 20 "$T/vmplugd.log" "configuration reloaded"
check "the VM's sink node is now group kvm" \
	waitfor 10 sh -c "test \"\$(stat -c '%G %a' $node)\" = 'kvm 660'"

vmplugd_stop TERM
vmplug_rules_remove
