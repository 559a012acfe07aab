#!/bin/sh
# Scenario: a keyboard another program has grabbed: vmplugd says so once, with what to do, and
# takes the keyboard when it is let go; each VM's sink node belongs to that VM's QEMU alone
# (qemu-user, qemu-group; also after a reload that changes them): neither a member of the group
# every QEMU used to share nor another VM's QEMU can open or grab it; the host sink keeps udev's.
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

# Two VMs' QEMUs, each its own user, and a desktop user in kvm, the group
# every VM's sink once belonged to.
grep -q '^vm1qemu:' /etc/passwd || printf '%s\n' 'vm1qemu:x:1001:1001::/:/bin/sh' \
	'vm2qemu:x:1002:1002::/:/bin/sh' 'desk:x:1003:1003::/:/bin/sh' >>/etc/passwd
kvm_gid=$(grep '^kvm:' /etc/group | cut -d: -f3)
render_gid=$(grep '^render:' /etc/group | cut -d: -f3)
vmplug_input_conf "$T/conf" "$link"
vm_conf "$T/conf" vm1 "focus-on-start = yes" "qemu-user = vm1qemu"
vm_conf "$T/conf" vm2 "qemu-user = vm2qemu"

vmplugd_start "$T/conf" || exit 1
busy="input kbd: $ev is grabbed by another program (EVIOCGRAB: device busy), so vmplug cannot take it; \`fuser -v $ev\` names it"
check "vmplugd explains that the keyboard is busy and how to find who has it" \
	wait_line 20 "$T/vmplugd.log" "$busy"

sink=/dev/input/by-id/vmplug-vm1-kbd
host=/dev/input/by-id/vmplug-host-kbd
check "the sinks exist all the same" waitfor 10 sh -c "[ -c $sink ] && [ -c $host ]" || exit 1
udev_settle
node=$(readlink -f "$sink")
check "vm1's sink node $node is vm1's QEMU's alone (qemu-user), mode 600" \
	test "$(stat -c '%U %G %a' "$node")" = "vm1qemu root 600"
node2=$(readlink -f /dev/input/by-id/vmplug-vm2-kbd)
check "vm2's sink node $node2 is vm2's QEMU's alone" \
	test "$(stat -c '%U %G %a' "$node2")" = "vm2qemu root 600"
# as_user UID GIDS CMD...: CMD as uid UID with only the groups GIDS (a
# comma-separated list, its first the primary group).
as_user() {
	local uid=$1 gids=$2
	shift 2
	/usr/bin/setpriv --reuid="$uid" --regid="${gids%%,*}" --groups="$gids" "$@"
}
evread_bin=$(command -v evread)
# cannot_open UID GIDS: evread as that user cannot open vm1's sink at all.
cannot_open() {
	local err
	err=$(as_user "$1" "$2" "$evread_bin" -g -t 0 "$sink" 2>&1 >/dev/null) && return 1
	[ "$err" = "evread: $sink: Permission denied" ] || {
		log "evread as uid $1: ${err:-no error}"
		return 1
	}
}
check "a user in kvm (every VM's sink's group until now) cannot open or grab vm1's sink" \
	cannot_open 1003 "1003,$kvm_gid"
check "nor can vm2's QEMU, as its own user and in kvm" cannot_open 1002 "1002,$kvm_gid"
check "vm1's QEMU, as vm1's qemu-user, can open and grab it" \
	as_user 1001 1001 "$evread_bin" -g -t 0 "$sink"
check "the host's sink keeps udev's group (input)" \
	test "$(stat -c %G "$(readlink -f "$host")")" = input

# vm1 has no QEMU: the focus stays on the host, and typing would go to
# the host's sink.
# udev applies its rules (GROUP="input" for every input device in
# Debian's 50-udev-default.rules) again at each event: a `udevadm trigger`
# must not take the node from QEMU's group.
udevadm trigger --action=change "$node"
udev_settle
check "after a udev change event the node is still vm1's QEMU's alone" \
	waitfor 5 sh -c "test \"\$(stat -c '%U %G %a' $node)\" = 'vm1qemu root 600'"

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

# vm1's qemu-group set by a reload: vm1's node follows, vm2's does not.
printf 'qemu-group = render\n' >>"$T/conf/vm.d/vm1.conf"
kill -HUP "$(cat "$T/vmplugd.pid")"
check "reloaded" wait_line 20 "$T/vmplugd.log" "configuration reloaded"
check "vm1's sink node is now also group render's (qemu-group), mode 660" \
	waitfor 10 sh -c "test \"\$(stat -c '%U %G %a' $node)\" = 'vm1qemu render 660'"
check "vm2's is unchanged" test "$(stat -c '%U %G %a' "$node2")" = "vm2qemu root 600"
check "a member of render may now open vm1's sink" \
	as_user 1003 "1003,$render_gid" "$evread_bin" -t 0 "$sink"
check "vm2's QEMU still may not" cannot_open 1002 "1002,$kvm_gid"

vmplugd_stop TERM
vmplug_rules_remove
