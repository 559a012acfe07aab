#!/bin/sh
# Scenario: the gadget keyboard as an input source: typing reaches its persistent sink; unplugged,
# the sink stays with every key released; plugged in again, typing reaches the sink again.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

kbd_source || exit 1

# The project's udev rule gives the sink its by-id link and hides it from libinput.
vmplug_rules_install

# A host sink (what switching will use) gets its link but stays visible to the host.
uinput-kbd -N vmplug-host-kbd KEY_A >"$T/host" 2>&1 &
host=$!
wait_line 10 "$T/host" '^ready$'
udev_settle
hnode=$(sed -n 's/^node //p' "$T/host")
check "a host sink gets its link too" waitfor 10 is_char_dev /dev/input/by-id/vmplug-host-kbd
check "a host sink stays visible to the host's libinput" \
	test -z "$(udev_prop "$hnode" LIBINPUT_IGNORE_DEVICE)"
kill -TERM "$host"
wait "$host"

input_proxy_conf "$link"
input_proxy_start || exit 1
sink=/dev/input/by-id/vmplug-pc-kbd
check "the sink vmplug-pc-kbd has its link $sink" waitfor 10 is_char_dev "$sink" || exit 1
udev_settle
check "the sink is hidden from the host's libinput" \
	test "$(udev_prop "$sink" LIBINPUT_IGNORE_DEVICE)" = 1
check "the source is opened and grabbed" \
	wait_line 10 "$T/proxy.log" "input kbd: $ev (.*) opened and grabbed"
check "another reader cannot grab the source: EBUSY" grab_refused "$ev"
check "its capabilities are cached" grep -q '"KEY_A"' "$T/cache/kbd.json"

check "evread reads the sink" evread_start "$T/typed" -u KEY_A:0 -t 10000 "$sink"
type_key 0x04
wait "$EVREAD_PID"
check "typing A on the keyboard reaches the sink" \
	test "$(key_events "$T/typed")" = "EV_KEY KEY_A 1 EV_KEY KEY_A 0 "

# Hold B, then pull the keyboard out.
kbd_report 0 0x05
check "B held on the keyboard is held on the sink" waitfor 5 keys_held "$sink" KEY_B
evread_start "$T/unplug" -u KEY_B:0 -t 10000 "$sink"
gadget_unplug
check "unplugging releases B on the sink" wait "$EVREAD_PID"
check "the sink stays when the keyboard is gone" is_char_dev "$sink"
check "no key is left down on the sink" keys_held "$sink" "(none)"

gadget_plug
check "the replugged keyboard is opened and grabbed again" \
	waitfor 10 sh -c "test \$(grep -c 'opened and grabbed' $T/proxy.log) -ge 2"
evread_start "$T/replug" -u KEY_C:0 -t 10000 "$sink"
type_key 0x06
wait "$EVREAD_PID"
check "typing after the replug reaches the same sink" \
	test "$(key_events "$T/replug")" = "EV_KEY KEY_C 1 EV_KEY KEY_C 0 "

# A real device that names itself like a sink gets neither a sink's link
# nor a sink's treatment: the rule is for vmplug's virtual devices only.
node=$(readlink -f "$sink")
no_link_to() {
	local l
	for l in /dev/input/by-id/vmplug-*; do
		[ "$(readlink -f "$l")" != "$1" ] || return 1
	done
}
for name in vmplug-pc-kbd vmplug-host-kbd; do
	check "the keyboard plugs in as $name" gadget_rename "$name" || break
	fake=$(gadget_evdev)
	check "its evdev $fake calls itself $name" test "$(evdev_name "$fake")" = "$name"
	check "it has no link of a sink" \
		sh -c "! udevadm info --query=property --name=$fake | grep -q '^DEVLINKS=.*/vmplug-'"
	check "no sink's link leads to it" no_link_to "$fake"
	check "it is not hidden from the host's libinput" \
		test -z "$(udev_prop "$fake" LIBINPUT_IGNORE_DEVICE)"
done
check "the sink's link still leads to the sink" test "$(readlink -f "$sink")" = "$node"

kill -TERM "$PROXY_PID"
check "input-proxy stops cleanly" wait "$PROXY_PID"
check "without a service manager the sink goes with it" waitfor 5 is_gone "$sink"
vmplug_rules_remove
