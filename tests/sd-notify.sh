#!/bin/bash
# vmplugd under a service manager played by the test: NOTIFY_SOCKET is a
# datagram socket the test reads. READY=1 comes once the control socket
# answers; STATUS= sums up VMs, USB devices and inputs and follows a VM
# coming up and a device being attached; a reload is RELOADING=1 then
# READY=1 (also when the new configuration is refused); SIGTERM is
# STOPPING=1; with WATCHDOG_USEC, WATCHDOG=1 from the loop, none while
# it stands still. On a fake USB tree with a real QEMU. (The rate limit of
# STATUS= is tested in tests/unit/test-notify.)
. "$(dirname "$0")/lib/tap.sh"
grep -q '^#define HAVE_SYSTEMD 1' "$top_builddir/config.h" ||
	skip_all "built without libsystemd: vmplugd does not speak sd_notify"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; stop_all_qemu; [ -n "${listener:-}" ] && kill "$listener"; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
msgs=$SCRATCH/notify
write_conf "$conf"
cat >>"$conf/vmplug.conf" <<CONF
[input "kbd"]
device = $SCRATCH/no-such-keyboard
CONF
cat >"$conf/vm.d/alpha.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf"/vm.d/* "$conf/vmplug.conf"

"$top_builddir/tests/lib/notify-listen" "$SCRATCH/notify.sock" >"$msgs" &
listener=$!
wait_for 50 test -S "$SCRATCH/notify.sock" || bail "notify-listen did not start"

# the messages as lines, datagrams separated by "--"
said() { grep -qx -- "$1" "$msgs"; }
wait_said() { wait_for 100 said "$1"; }
# line number of the first line equal to $1 (after line $2)
line_of() { awk -v want="$1" -v after="${2:-0}" 'NR > after && $0 == want { print NR; exit }' "$msgs"; }
# said_after MSG LINE: MSG came after line LINE
said_after() { [ -n "$(line_of "$1" "$2")" ]; }
# reload_done LINE: RELOADING=1 after line LINE, then READY=1
reload_done() {
	local r
	r=$(line_of RELOADING=1 "$1")
	[ -n "$r" ] && said_after READY=1 "$r"
}

plug 1-1.2 dev=3 vid=046d pid=0825 name=Webcam
# shellcheck disable=SC2046
NOTIFY_SOCKET=$SCRATCH/notify.sock WATCHDOG_USEC=1000000 $(vmplugd_cmd) -f -c "$conf" 2>>"$log" &
VMPLUGD_PID=$!

check "READY=1" wait_said "READY=1"
check "the control socket answers by then" ctl_ok "$conf/control.sock"

# The watchdog (WATCHDOG_USEC = 1 s): pings from the loop; a stopped
# vmplugd sends none, and they come again when it goes on.
pings() { grep -cx WATCHDOG=1 "$msgs"; }
more_pings() { [ "$(pings)" -ge "$1" ]; }
check "WATCHDOG=1 comes, again and again" wait_for 100 more_pings 3
kill -STOP "$VMPLUGD_PID"
before=$(pings)
sleep 2 # twice WATCHDOG_USEC: what a service manager would wait
check "a stopped vmplugd sends no WATCHDOG=1" test "$(pings)" -eq "$before"
kill -CONT "$VMPLUGD_PID"
check "once it goes on, the pings come again" wait_for 100 more_pings $((before + 2))
check "a STATUS= line with the summary, before READY=1" \
	test "$(line_of "STATUS=1 VM (0 running), 0 USB devices attached, 1 input (0 present)")" \
	-lt "$(line_of "READY=1")"

qemu_start alpha
check "STATUS= follows a VM coming up and a device being attached" \
	wait_said "STATUS=1 VM (1 running), 1 USB device attached, 1 input (0 present)"

cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
CONF
chmod go-w "$conf/vm.d/beta.conf"
mark=$(wc -l <"$msgs")
kill -HUP "$VMPLUGD_PID"
check "reload: RELOADING=1" wait_for 100 said_after RELOADING=1 "$mark"
check "reload: then READY=1" wait_for 100 reload_done "$mark"
check "reload: STATUS= counts the new VM" \
	wait_said "STATUS=2 VMs (1 running), 1 USB device attached, 1 input (0 present)"

printf 'bogus = 1\n' >>"$conf/vm.d/beta.conf"
mark=$(wc -l <"$msgs")
kill -HUP "$VMPLUGD_PID"
check "a refused reload: RELOADING=1" wait_for 100 said_after RELOADING=1 "$mark"
check "a refused reload: READY=1 all the same" wait_for 100 reload_done "$mark"
check "and it is logged as refused" wait_for 100 grep -q "reload failed" "$log"

unplug 1-1.2
check "STATUS= follows a device going" \
	wait_said "STATUS=2 VMs (1 running), 0 USB devices attached, 1 input (0 present)"
qemu_stop alpha
check "STATUS= follows a VM going" \
	wait_said "STATUS=2 VMs (0 running), 0 USB devices attached, 1 input (0 present)"

stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0
check "SIGTERM: STOPPING=1" wait_said "STOPPING=1"
check "no other kind of message was sent" bash -c \
	'! grep -v -x -e "--" -e "READY=1" -e "RELOADING=1" -e "STOPPING=1" -e "STATUS=.*" \
	-e "FDSTORE=1" -e "FDNAME=.*" -e "FDSTOREREMOVE=1" -e "WATCHDOG=1" "$1"' _ "$msgs"
done_testing
