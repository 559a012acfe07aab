#!/bin/sh
# Scenario: vmplugd switches the gadget keyboard between the host and two nested QEMUs: the cycle
# chord and the direct hotkeys move the typing to the right sink, chords reach no sink, a key held
# across a switch is released where it went, no sink keeps a key down, the on-switch hook runs with
# its environment, and vmplugd releases the host's keys when it stops.
# e2e-timeout: 240
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

kbd_source || exit 1

vmplug_rules_install

nested_qemu_start a || exit 1
nested_qemu_start b || exit 1

# The hook writes what it was given to hook.N.env, one file per run.
cat >"$T/hook" <<EOF
#!/bin/sh
n=\$(cat $T/hook.count 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >$T/hook.count
tr '\\0' '\\n' </proc/\$\$/environ | sort >$T/hook.\$n.env
EOF
chmod 755 "$T/hook"

vmplug_input_conf "$T/conf" "$link" "[switch]" "cycle = KEY_LEFTCTRL+KEY_RIGHTCTRL" \
	"host = KEY_LEFTCTRL+KEY_LEFTALT+KEY_0" "on-switch = $T/hook"
vm_conf "$T/conf" a "hotkey = KEY_LEFTCTRL+KEY_LEFTALT+KEY_1"
vm_conf "$T/conf" b "hotkey = KEY_LEFTCTRL+KEY_LEFTALT+KEY_2"

vmplugd_start "$T/conf" -v || exit 1
ctl() {
	"$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" "$@"
}
switch_to() {
	ctl switch "$1" >/dev/null
}
focus_is() {
	ctl status 2>/dev/null | grep -qx "keyboard and mouse: $1"
}
both_running() {
	[ "$(ctl status 2>/dev/null | grep -c '^[ab] .* running ')" = 2 ]
}
check "vmplugd sees both VMs running" waitfor 60 both_running || {
	sed 's/^/  # /' "$T/vmplugd.log"
	exit 1
}
check "the keyboard is opened and grabbed" \
	wait_line 20 "$T/vmplugd.log" "input kbd: $ev (.*) opened and grabbed"
host=/dev/input/by-id/vmplug-host-kbd
sink_a=/dev/input/by-id/vmplug-a-kbd
sink_b=/dev/input/by-id/vmplug-b-kbd
check "a host sink and a sink per VM" waitfor 10 sh -c "[ -c $host ] && [ -c $sink_a ] && [ -c $sink_b ]"
has_input_linux() {
	qmp -r "$1" qom-list '{"path": "/objects"}' 2>/dev/null | grep -q vmplug-in-kbd
}
check "a's QEMU has its sink as input-linux" waitfor 30 has_input_linux a
check "b's QEMU has its sink as input-linux" waitfor 30 has_input_linux b
check "the focus starts on the host" focus_is host

# only_held DEV KEYS: DEV holds KEYS and the two other sinks hold nothing.
only_held() {
	local d
	for d in $host $sink_a $sink_b; do
		if [ "$d" = "$1" ]; then
			keys_held "$d" "$2" || return 1
		else
			keys_held "$d" "(none)" || return 1
		fi
	done
}
none_held() {
	only_held "" ""
}
# hold_b WHERE: B held on the keyboard is held on WHERE only, then released everywhere.
hold_b() {
	kbd_report 0 0x05 && waitfor 5 only_held "$1" KEY_B && kbd_report 0 && waitfor 5 none_held
}
hook_ran() {
	waitfor 20 test -s "$T/hook.$1.env" &&
		test "$(cat "$T/hook.$1.env")" = "PATH=/usr/sbin:/usr/bin:/sbin:/bin
VMPLUG_FROM=$2
VMPLUG_TO=$3
VMPLUG_TO_TYPE=$4"
}

check "evread reads the host sink" evread_start "$T/host1" -u KEY_A:0 -t 10000 "$host"
type_key 0x04
wait "$EVREAD_PID"
check "typing on the host: the host sink gets it" \
	test "$(key_events "$T/host1")" = "EV_KEY KEY_A 1 EV_KEY KEY_A 0 "
check "a key held on the host is held on the host sink only" hold_b "$host"

# The cycle chord (both Ctrl keys): nothing of it reaches the host sink.
evread_start "$T/host2" -t 120000 "$host"
kbd_report 0x11
kbd_report 0
check "cycle: the focus goes to a" waitfor 10 focus_is a
check "a key held now is held on a's sink only" hold_b "$sink_a"
# vmplugd handles events in order: the chord is behind it now, and
# evread prints what had come before it stops.
check "evread read the host sink until now" evread_stop "$T/host2"
check "the chord never reached the host sink" test -z "$(key_events "$T/host2")"
check "the hook ran: from host to a, vm" hook_ran 1 host a vm

# A direct hotkey: left Ctrl, left Alt, then 2, pressed one by one.
kbd_report 0x01
kbd_report 0x05
kbd_report 0x05 0x1f
kbd_report 0x05
kbd_report 0
check "the hotkey of b: the focus goes to b" waitfor 10 focus_is b
check "a key held now is held on b's sink only" hold_b "$sink_b"
check "the hook ran: from a to b" hook_ran 2 a b vm

# C held on b through the cycle chord: released on b at the switch, never seen by the host.
kbd_report 0 0x06
check "C held on b" waitfor 5 only_held "$sink_b" KEY_C
kbd_report 0x11 0x06
kbd_report 0 0x06
check "cycle from the last VM: the host" waitfor 10 focus_is host
check "C was released on b and is held nowhere" waitfor 5 none_held
kbd_report 0
check "the hook ran: from b to host, host" hook_ran 3 b host host

check "vmplugctl switch a" switch_to a
check "the focus is on a" focus_is a
check "typing goes to a" hold_b "$sink_a"
kbd_report 0x05 0x27
kbd_report 0
check "the host hotkey: back to the host" waitfor 10 focus_is host
check "the hook ran for both" hook_ran 5 a host host
check "no sink has a key left down" none_held

# A nested QEMU that goes while it has the focus: the focus returns to the host.
check "vmplugctl switch b" switch_to b
check "the focus is on b" focus_is b
nested_qemu_stop b
check "b's QEMU quits while focused: the focus returns to the host" waitfor 20 focus_is host

# vmplugd stops while a key is held on the host: the host sink gets its release first.
kbd_report 0 0x07
check "D held on the host sink" waitfor 5 only_held "$host" KEY_D
evread_start "$T/exit" -u KEY_D:0 -t 10000 "$host"
vmplugd_stop TERM
check "the host sink got D released before it went" wait "$EVREAD_PID"
kbd_report 0
check "the sinks went with vmplugd (no service manager)" waitfor 5 is_gone "$host"

nested_qemu_stop a
vmplug_rules_remove
