#!/bin/sh
# Scenario: with no capability cache and the keyboard absent, the sink is a generic keyboard that
# exists at once; when the keyboard comes, typing reaches it.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

ev=$(gadget_evdev)
link=$(udev_prop "$ev" DEVLINKS | tr ' ' '\n' | grep '^/dev/input/by-id/.*-event-kbd$' | head -n 1)
check "the gadget's evdev $ev has a by-id link: $link" test -n "$link" || exit 1
gadget_unplug

mkdir -p "$T/conf/vm.d" "$T/cache"
cat >"$T/conf/vmplug.conf" <<CONF
[daemon]
cache-dir = $T/cache
[input "kbd"]
device = $link
CONF
cat >"$T/conf/vm.d/pc.conf" <<CONF
[vm]
qmp-socket = $T/pc.qmp
inputs = kbd
CONF

input-proxy "$T/conf" >"$T/proxy.out" 2>"$T/proxy.log" &
proxy=$!
check "input-proxy starts" wait_line 20 "$T/proxy.out" '^ready$' || {
	sed 's/^/  # /' "$T/proxy.log"
	exit 1
}
node=$(sed -n 's/^sink vmplug-pc-kbd //p' "$T/proxy.out")
check "the sink exists with no cache and no keyboard: $node" is_char_dev "$node" || exit 1
check "it was made as the generic keyboard, chosen from the path" \
	grep -q 'start as a generic keyboard, because its device path ends in -event-kbd' \
	"$T/proxy.log"
evread -t 0 "$node" >"$T/info" 2>&1
check "it is named vmplug-pc-kbd, on the virtual bus" \
	grep -q 'name="vmplug-pc-kbd" bus=0x0006' "$T/info"
check "no cache was written yet" test ! -e "$T/cache/kbd.json"

gadget_plug
check "the keyboard, plugged in, is opened" \
	wait_line 10 "$T/proxy.log" "opened and grabbed"
evread_start "$T/typed" -u KEY_A:0 -t 10000 "$node"
type_key 0x04
wait "$EVREAD_PID"
check "typing reaches the fallback sink" grep -qx 'EV_KEY KEY_A 0' "$T/typed"
check "now the cache is written" test -s "$T/cache/kbd.json"

kill -TERM "$proxy"
check "input-proxy stops cleanly" wait "$proxy"
