#!/bin/sh
# Scenario: with no capability cache and the keyboard absent, the sink is a generic keyboard that
# exists at once; when the keyboard comes, typing reaches it.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

kbd_source || exit 1
gadget_unplug

input_proxy_conf "$link"
input_proxy_start || exit 1
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

kill -TERM "$PROXY_PID"
check "input-proxy stops cleanly" wait "$PROXY_PID"
