#!/bin/bash
# vmplug-agent against a real notification server: Debian's dunst on a
# private session bus under Xvfb, vmplugd on a fake USB tree with a real
# QEMU. A device no rule claims raises a notification naming it; the
# test picks an action from dunst's own context menu, as a person would,
# and QEMU shows where the device went: attach, keep on host, remembered
# answers; a question answered elsewhere closes the notification; the
# agent outlives a restart of vmplugd and a daemon that sends junk.
# A screenshot of the notification is kept in the build directory.
. "$(dirname "$0")/lib/tap.sh"
AGENT=$top_builddir/vmplug-agent
[ -x "$AGENT" ] || skip_all "vmplug-agent is built only with libsystemd"
for c in Xvfb dunst dunstctl dbus-daemon dbus-monitor xwd xwdtopnm pnmtopng; do
	command -v "$c" >/dev/null ||
		skip_all "$c is not installed (apt-get install dunst xvfb x11-apps netpbm dbus)"
done
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_agent; stop_vmplugd; stop_all_qemu; stop_desktop; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
alog=$SCRATCH/agent.log
write_conf "$conf"
echo "state-dir = $SCRATCH/state" >>"$conf/vmplug.conf"
cat >"$conf/vm.d/vm.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/vm.qmp
usb-bus = xhci.0
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf/vmplug.conf" "$conf"/vm.d/*
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }

# ------------------------------------------------------------ the desktop
# Xvfb, a session bus of the test's own, dunst on both. dunst's context
# menu runs "dmenu"; here a script that picks the line $SCRATCH/choice
# names, as the person at the menu would, and keeps what it was shown.
# They run outside the umockdev preload: a listener for uevents there
# (Xvfb's udev monitor) could take vmplugd's socket name (tests/lib/bed.sh).
# Started as `desktop PROGRAM ... &`: the background shell becomes PROGRAM,
# so $! is its pid.
desktop() { exec env -u LD_PRELOAD "$@"; }
start_desktop() {
	desktop Xvfb -displayfd 9 -screen 0 640x360x24 -nolisten tcp 9>"$SCRATCH/display" \
		>"$SCRATCH/xvfb.log" 2>&1 &
	XVFB_PID=$!
	desktop dbus-daemon --session --nofork --print-address=9 9>"$SCRATCH/bus" >"$SCRATCH/bus.log" 2>&1 &
	BUS_PID=$!
	wait_for 100 test -s "$SCRATCH/display" || return 1
	wait_for 100 test -s "$SCRATCH/bus" || return 1
	DISPLAY=:$(head -n 1 "$SCRATCH/display")
	DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$SCRATCH/bus")
	export DISPLAY DBUS_SESSION_BUS_ADDRESS
	cat >"$SCRATCH/pick" <<PICK
#!/bin/sh
cat >"$SCRATCH/menu"
grep -F -m 1 -- "\$(cat "$SCRATCH/choice")" "$SCRATCH/menu"
PICK
	chmod +x "$SCRATCH/pick"
	cat >"$SCRATCH/dunstrc" <<DUNSTRC
[global]
dmenu = $SCRATCH/pick
font = DejaVu Sans 11
width = 460
origin = top-right
offset = 10x10
frame_width = 2
DUNSTRC
	desktop dunst -config "$SCRATCH/dunstrc" >"$SCRATCH/dunst.log" 2>&1 &
	DUNST_PID=$!
	desktop dbus-monitor --session "interface=org.freedesktop.Notifications" >"$SCRATCH/bus-traffic" 2>&1 &
	MONITOR_PID=$!
	wait_for 100 dunstctl is-paused >/dev/null 2>&1
}
stop_desktop() {
	local p
	for p in ${MONITOR_PID:-} ${DUNST_PID:-} ${BUS_PID:-} ${XVFB_PID:-}; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	MONITOR_PID='' DUNST_PID='' BUS_PID='' XVFB_PID=''
}
shown() { dunstctl count displayed; }
shown_is() { test "$(shown)" = "$1"; }
# choose LABEL PORT: open dunst's context menu and pick LABEL on the
# notification about PORT
choose() {
	printf '#%s (USB device at port %s)' "$1" "$2" >"$SCRATCH/choice"
	: >"$SCRATCH/menu"
	dunstctl context
}
# menu_is LINES: the menu dunst showed, without notification numbers,
# sorted, each line ended by |
menu_is() { test "$(sed 's/ \[.*//' "$SCRATCH/menu" | sort | tr '\n' '|')" = "$1"; }
# screenshot FILE: the whole screen as PNG; drawn: $shot is not the blank screen
screenshot() { xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng >"$1"; }
drawn() { screenshot "$shot" && ! cmp -s "$shot" "$SCRATCH/blank.png"; }
# notified BODY: a Notify call carried BODY (what dunst shows under the summary)
notified() { grep -F -q "string \"$1\"" "$SCRATCH/bus-traffic"; }
notify_calls() { grep -c 'member=Notify$' "$SCRATCH/bus-traffic"; }
# question PORT: the number of the last question vmplugd asked about PORT
question() { sed -n "s/^.*usb $1 .*question \([0-9]*\) to control clients.*/\1/p" "$log" | tail -n 1; }
asked() { test -n "$(question "$1")"; }
remembered_has() { ctl remembered | grep -Eq "$1"; }

# ---------------------------------------------------------------- the agent
start_agent() {
	# shellcheck disable=SC2046
	$(valgrind_cmd "$AGENT") -v "$@" 2>>"$alog" &
	AGENT_PID=$!
}
stop_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID"
	local rc=$?
	AGENT_PID=
	return $rc
}
connected_times() { test "$(grep -c 'connected to vmplugd' "$alog")" -ge "$1"; }

start_desktop || bail "the desktop (Xvfb, dbus-daemon, dunst) did not start"
screenshot "$SCRATCH/blank.png"
plug 1-1 dev=2 vid=05e3 pid=0608 class=09 name=Hub
qemu_start vm
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
wait_for 100 grep -q "vm vm: ready" "$log" || bail "vmplugd did not reach the VM"
start_agent -s "$conf/control.sock"
check "the agent connects to vmplugd" wait_for 100 connected_times 1

# --- attach, picked from the notification's menu
plug 2-1 dev=11 vid=abcd pid=0001 serial=S1 name=Stick
check "a device no VM claims raises a notification" wait_for 100 shown_is 1
check "naming the device, its ids and its port" \
	notified "Stick (abcd:0001) at port 2-1: which VM gets it?"
shot=$top_builddir/tests/agent-notification.png
check "a screenshot of it is kept (tests/agent-notification.png)" wait_for 100 drawn
choose "Attach to vm" 2-1
check "its menu offers the running VM, keeping it, and both remembered" wait_for 100 menu_is \
	"#Always attach to vm (USB device at port 2-1)|#Always keep on host (USB device at port 2-1)|#Attach to vm (USB device at port 2-1)|#Keep on host (USB device at port 2-1)|" ||
	diag "$(cat "$SCRATCH/menu")"
check "Attach to vm puts the device in QEMU" usb_in_qemu_is vm "vmplug-usb-2-11 attached=true hostaddr=11"
check "and the notification is gone" wait_for 100 shown_is 0
check "nothing was remembered" grep -q "no remembered answers" <<<"$(ctl remembered)"
unplug 2-1
usb_in_qemu_is vm "" || diag "2-1 is still in QEMU"

# --- keep on host
plug 2-2 dev=12 vid=abcd pid=0002 name=Kept
wait_for 100 shown_is 1 || diag "no notification for 2-2"
choose "Keep on host" 2-2
check "Keep on host settles the question" \
	wait_for 100 grep -q "question $(question 2-2) settled: keep-on-host" "$alog"
out=$(ctl answer "$(question 2-2)" attach vm 2>&1)
check "a later answer is told it was kept on the host" grep -q "answered already: keep-on-host" <<<"$out" ||
	diag "$out"
check "the device stays on the host" usb_in_qemu_is vm ""
check "the notification is gone" wait_for 100 shown_is 0
unplug 2-2

# --- an answer vmplugd refuses is shown, not swallowed
plug 2-10 dev=21 vid=abcd pid=000a serial=D1 name=Denied
wait_for 100 shown_is 1 || diag "no notification for 2-10"
cat >>"$conf/vm.d/vm.conf" <<CONF
[usb-deny "late"]
serial = D1
CONF
ctl reload >/dev/null || diag "reload failed"
choose "Attach to vm" 2-10
check "an answer against a deny rule tells the person why it failed" \
	wait_for 100 grep -q 'denied by \[usb-deny "late"\]' "$SCRATCH/bus-traffic"
check "and the device stays on the host" usb_in_qemu_is vm ""
ctl answer "$(question 2-10)" keep-on-host >/dev/null
unplug 2-10
sed -i '/usb-deny "late"/,$d' "$conf/vm.d/vm.conf"
ctl reload >/dev/null || diag "reload failed"
dunstctl close-all

# --- remembered answers
plug 2-3 dev=13 vid=abcd pid=0003 serial=R1 name=Remembered
wait_for 100 shown_is 1 || diag "no notification for 2-3"
choose "Always attach to vm" 2-3
check "Always attach to vm puts the device in QEMU" \
	usb_in_qemu_is vm "vmplug-usb-2-13 attached=true hostaddr=13"
check "and vmplugd remembers it" remembered_has '^1 +vm vm +abcd:0003 +R1'
unplug 2-3
usb_in_qemu_is vm "" || diag "2-3 is still in QEMU"
calls=$(notify_calls)
plug 2-3 dev=14 vid=abcd pid=0003 serial=R1 name=Remembered
check "plugged in again, it goes to the VM by itself" \
	usb_in_qemu_is vm "vmplug-usb-2-14 attached=true hostaddr=14"
check "without a notification" test "$(notify_calls)" = "$calls"
plug 2-4 dev=15 vid=abcd pid=0004 serial=K1 name=Host-only
wait_for 100 shown_is 1 || diag "no notification for 2-4"
choose "Always keep on host" 2-4
check "Always keep on host is remembered" wait_for 100 remembered_has '^2 +host +abcd:0004 +K1' ||
	diag "$(ctl remembered)"
check "and the device stays on the host" usb_in_qemu_is vm "vmplug-usb-2-14 attached=true hostaddr=14"
unplug 2-4
unplug 2-3

# --- a device's name is text, never markup
plug 2-9 dev=20 vid=abcd pid=0009 name=%3Cb%3EBold%3C/b%3E%20%26%20Co
check "a name with markup in it is sent escaped, shown as written" \
	wait_for 100 notified "&lt;b&gt;Bold&lt;/b&gt; &amp; Co (abcd:0009) at port 2-9: which VM gets it?"
wait_for 100 asked 2-9
ctl answer "$(question 2-9)" keep-on-host >/dev/null
wait_for 100 shown_is 0 || diag "the notification for 2-9 stayed"
unplug 2-9

# --- answered elsewhere
plug 2-5 dev=16 vid=abcd pid=0005 name=Elsewhere
wait_for 100 shown_is 1 || diag "no notification for 2-5"
wait_for 100 asked 2-5
ctl answer "$(question 2-5)" keep-on-host >/dev/null
check "a question answered by another client closes the notification" wait_for 100 shown_is 0
plug 2-6 dev=17 vid=abcd pid=0006 name=Fleeting
wait_for 100 shown_is 1 || diag "no notification for 2-6"
unplug 2-6
check "so does a device unplugged before the answer" wait_for 100 shown_is 0
unplug 2-5

# --- vmplugd restarts
plug 2-7 dev=18 vid=abcd pid=0007 name=Orphan
check "a notification is up" wait_for 100 shown_is 1
stop_vmplugd
check "when vmplugd stops, the agent closes its notifications" wait_for 100 shown_is 0
check "and says it lost vmplugd" wait_for 100 grep -q "lost vmplugd" "$alog"
unplug 2-7
start_vmplugd "$conf" "$log" || bail "vmplugd did not start again"
ready_times() { test "$(grep -c "vm vm: ready" "$log")" -ge "$1"; }
wait_for 100 ready_times 2 || diag "vmplugd did not reach the VM again"
check "the agent connects again" wait_for 100 connected_times 2
plug 2-8 dev=19 vid=abcd pid=0008 name=After
check "and notifies again" wait_for 100 shown_is 1
choose "Attach to vm" 2-8
check "its answers still reach QEMU" usb_in_qemu_is vm "vmplug-usb-2-19 attached=true hostaddr=19"
unplug 2-8
stop_agent
check "the agent exits cleanly on SIGTERM (valgrind: no errors, no leaks)" test $? -eq 0

# --- --focus: where the keyboard and mouse went
kbd_vm_conf "$conf" alpha
qemu_start alpha
ctl reload >/dev/null || diag "reload failed: $(tail -n 3 "$log")"
wait_for 100 grep -q "vm alpha: ready" "$log" || diag "vmplugd did not reach alpha"
start_agent -s "$conf/control.sock" --focus
wait_for 100 connected_times 3 || diag "the agent did not connect: $(tail -n 3 "$alog")"
out=$(ctl switch alpha)
check "vmplugctl switch alpha switches" test "$out" = "keyboard and mouse: host -> alpha" ||
	diag "$out" "$(tail -n 5 "$log")"
check "--focus: a notification says the keyboard and mouse went to alpha" \
	wait_for 100 notified "Keyboard and mouse: VM alpha"
ctl switch host >/dev/null
check "and back to this computer" wait_for 100 notified "Keyboard and mouse: this computer"
check "one at a time: each replaces the last" wait_for 100 shown_is 1
stop_agent
check "the agent exits cleanly" test $? -eq 0

# --- a daemon that sends junk: a line without end, then malformed events
evil=$SCRATCH/evil.sock
{
	echo '{"vmplug": {"version": "x"}}'
	echo '{"return": {}, "id": "subscribe"}'
	echo 'junk }{'
	echo '{"event": "USB_UNCLAIMED", "data": {"question": "one", "vms": 5}}'
	echo '{"event": "USB_UNCLAIMED", "data": {"question": 7, "port": "9-9", "vms": [1, "", null]}}'
	echo '{"event": "USB_UNCLAIMED_CLOSED", "data": {"question": -1}}'
	head -c 3000000 /dev/zero | tr '\0' x
} >"$SCRATCH/junk"
socat "UNIX-LISTEN:$evil,fork" "OPEN:$SCRATCH/junk" 2>/dev/null &
SOCAT_PID=$!
wait_for 100 test -S "$evil"
: >"$alog"
start_agent -s "$evil"
check "a line longer than the bound is refused, not buffered" \
	wait_for 100 grep -q "sent a line longer than 256 KiB" "$alog"
check "malformed events are ignored" grep -q "malformed USB_UNCLAIMED" "$alog"
check "an event naming no VM still asks (Keep on host)" \
	wait_for 100 notified "USB device (:) at port 9-9: which VM gets it?"
check "the agent tries again after junk" wait_for 100 connected_times 2
kill "$SOCAT_PID"
wait "$SOCAT_PID" 2>/dev/null
stop_agent
check "and exits cleanly" test $? -eq 0

stop_vmplugd
done_testing
