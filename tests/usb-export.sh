#!/bin/bash
# [usb-export] sections on the host with the devices: vmplugd runs
# usbredirect for each device a section matches, towards the destination
# the section names, and supervises it. usbredirect needs a real usbfs, so
# a stand-in takes its place ([daemon] usbredirect =): it records its
# argv and waits; the test ends it as a far side going away would. Plug
# starts it, unplug stops and reaps it, a replug exports the new device
# number, an exit is restarted with backoff, never once the device is
# gone, and the child gets no descriptor of vmplugd's.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap '[ -n "${mon:-}" ] && kill "$mon"; stop_vmplugd; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
runs=$SCRATCH/runs
mkdir -p "$runs"
write_conf "$conf"

# The stand-in: one file per run, named after its pid, holding its argv
# one word a line; then it waits, with no descriptor of its own open.
# While $SCRATCH/down exists the far side is down: it exits at once, as
# usbredirect does when its connection is refused.
stand_in=$SCRATCH/usbredirect
cat >"$stand_in" <<SH
#!/bin/sh
printf '%s\n' "\$@" >"$runs/\$\$.tmp" && mv "$runs/\$\$.tmp" "$runs/\$\$"
[ -e "$SCRATCH/down" ] && exit 1
exec sleep 1000
SH
chmod 755 "$stand_in"

cat >>"$conf/vmplug.conf" <<CONF
usbredirect = $stand_in
[usb-export "dongle"]
vendor = 1234
product = 5678
to = 127.0.0.1:4000
[usb-export "named"]
serial = ABC
to = desk.example:4001
CONF
chmod go-w "$conf/vmplug.conf"

# The stand-ins alive, "PID ARGV..." one a line, sorted by argv.
running() {
	local f
	for f in "$runs"/*; do
		[ -e "$f" ] || continue
		kill -0 "${f##*/}" 2>/dev/null || continue
		echo "${f##*/} $(tr '\n' ' ' <"$f")"
	done | sort -k2
}
# The argv of the stand-ins alive, without pids.
running_argv() { running | cut -d' ' -f2- | sed 's/ $//'; }
running_is() { wait_output 100 "$1" "the running stand-ins" running_argv; }
pid_of() { running | awk -v d="$1" '$3 == d { print $1 }'; }
gone() { ! test -e "/proc/$1"; }
status_json() { "$VMPLUGCTL" -s "$conf/control.sock" --json status; }

plug 1-1 dev=3 vid=1234 pid=5678 name=Dongle
# -v: the retries after the first of an outage are logged at debug level
start_vmplugd "$conf" "$log" -v || bail "vmplugd did not start"
check "coldplug: a matching device is exported to the rule's destination" \
	running_is "--device 1-3 --to 127.0.0.1:4000"
first=$(pid_of 1-3)
check "the child has stdin, stdout and stderr and no other descriptor" \
	test "$(find "/proc/$first/fd" -mindepth 1 -printf '%f\n' | sort -n | tr '\n' ' ')" = "0 1 2 "

"$VMPLUGCTL" -s "$conf/control.sock" --json monitor >"$SCRATCH/monitor" 2>&1 &
mon=$!
wait_for 50 grep -q "watching" "$SCRATCH/monitor"
# monitor_has EVENT JQ-CONDITION: monitor printed EVENT with data matching.
monitor_has() {
	grep '^{"event"' "$SCRATCH/monitor" | jq -e -s "map(select(.event == \"$1\" and (.data | $2))) | length > 0" >/dev/null
}

plug 1-2 dev=4 vid=1234 pid=9999 name=Other
plug 1-3 dev=5 vid=aaaa pid=0001 serial=ABC name=Named
check "plug: the named host is passed as written, never resolved; no other device" \
	running_is "--device 1-3 --to 127.0.0.1:4000
--device 1-5 --to desk.example:4001"

named=$(pid_of 1-5)
unplug 1-3
check "unplug: the export stops" running_is "--device 1-3 --to 127.0.0.1:4000"
check "... and its child is reaped" wait_for 50 gone "$named"
check "monitor: EXPORT_STARTED and EXPORT_STOPPED with the device and destination" \
	wait_for 50 sh -c "$(declare -f monitor_has); SCRATCH='$SCRATCH'; monitor_has EXPORT_STARTED '.name == \"named\" and .device == \"1-5\" and .port == \"1-3\" and .to == \"desk.example:4001\"' && monitor_has EXPORT_STOPPED '.name == \"named\" and .device == \"1-5\"'"

unplug 1-1
plug 1-1 dev=7 vid=1234 pid=5678 name=Dongle
check "replug: the new device number is exported" running_is "--device 1-7 --to 127.0.0.1:4000"
check "... the old child is gone" wait_for 50 gone "$first"

# The far side goes away: usbredirect exits, and while the far side is
# down each new one exits at once. It is started again, later each time.
second=$(pid_of 1-7)
touch "$SCRATCH/down"
kill -TERM "$second"
check "an export whose child exits is started again, later each time" \
	wait_for 100 grep -q "usb-export dongle: usbredirect for 1-7 to 127.0.0.1:4000 exited with status 1 again, retrying in 2 s" "$log"
check "... the outage is logged once at warning level, with the next try" \
	test "$(grep -c 'warning: usb-export dongle: .*retrying in' "$log")" = 1
check "... that one says how the child ended" \
	grep -q "warning: usb-export dongle: usbredirect for 1-7 to 127.0.0.1:4000 killed by signal 15, retrying in 1 s" "$log"
check "monitor: EXPORT_EXITED with the failures and the next wait" \
	monitor_has EXPORT_EXITED '.name == "dongle" and .device == "1-7" and .failures == 2 and .["retry-in"] == 2'
check "status shows the export retrying" \
	wait_for 50 sh -c "'$VMPLUGCTL' -s '$conf/control.sock' status | grep -E '^dongle +1-7 +1-1 +127.0.0.1:4000 +retrying \([0-9]+ exits, next try in [0-9]+ s\)'"
rm "$SCRATCH/down"
check "the far side back: the next try stays up" running_is "--device 1-7 --to 127.0.0.1:4000"
check "status shows it running" \
	wait_for 50 sh -c "'$VMPLUGCTL' -s '$conf/control.sock' status | grep -E '^dongle +1-7 +1-1 +127.0.0.1:4000 +running '"
# The argv of each run for device $1, one a line, duplicates once.
tries_of() {
	local f
	grep -lx "$1" "$runs"/* | while read -r f; do
		tr '\n' ' ' <"$f"
		echo
	done | sort -u
}
check "every try was for the same device and destination" \
	test "$(tries_of 1-7)" = "--device 1-7 --to 127.0.0.1:4000 "
check "... and there were several" test "$(grep -lx 1-7 "$runs"/* | wc -l)" -ge 3

# It exits, then the device goes before the next try: nothing is started.
touch "$SCRATCH/down"
fourth=$(pid_of 1-7)
kill -TERM "$fourth"
wait_for 50 gone "$fourth"
unplug 1-1
check "unplugged while waiting to retry: the export is gone from status" \
	wait_for 50 sh -c "! '$VMPLUGCTL' -s '$conf/control.sock' status | grep -q dongle"
check "... and its retry with it" grep -q "usb-export dongle: 1-7 to 127.0.0.1:4000 stopped" "$log"
rm "$SCRATCH/down"
plug 1-3 dev=8 vid=aaaa pid=0001 serial=ABC name=Named
check "... only the other export runs afterwards" \
	running_is "--device 1-8 --to desk.example:4001"

stop_vmplugd
check "vmplugd stops its exports when it stops" test -z "$(running)"
done_testing
