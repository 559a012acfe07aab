#!/bin/sh
# Scenario: a uinput keyboard made in the guest is a keyboard that another process can read.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

check "/dev/uinput exists" test -c /dev/uinput || exit 1

uinput-kbd -N "vmplug e2e uinput" KEY_A KEY_B >"$T/kbd" 2>&1 &
kbd=$!
wait_line 10 "$T/kbd" '^ready$'
node=$(sed -n 's/^node //p' "$T/kbd")
check "uinput device created: $node" test -c "$node" || exit 1
udev_settle
check "udev marks $node ID_INPUT_KEYBOARD=1" test "$(udev_prop "$node" ID_INPUT_KEYBOARD)" = 1

check "evread reads $node" evread_start "$T/events" -u KEY_B:0 -t 10000 "$node"
kill -USR1 "$kbd"
wait "$EVREAD_PID"
sed 's/^/  # /' "$T/events"
check "reader got KEY_A press and release" \
	test "$(grep -c '^EV_KEY KEY_A [01]$' "$T/events")" = 2
check "reader got KEY_B press and release" \
	test "$(grep -c '^EV_KEY KEY_B [01]$' "$T/events")" = 2
check "keys arrived in order" test "$(grep '^EV_KEY' "$T/events" | tr '\n' ' ')" = \
	"EV_KEY KEY_A 1 EV_KEY KEY_A 0 EV_KEY KEY_B 1 EV_KEY KEY_B 0 "

kill -TERM "$kbd"
wait "$kbd"
check "destroying the device removes $node" waitfor 5 is_gone "$node"
