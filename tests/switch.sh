#!/bin/bash
# Switching the keyboard and mouse, as the daemon does it with real QEMUs:
# vmplugctl switch and status, the INPUT_FOCUS event, the focused VM going
# down, focus-on-start; the on-switch hook's argv, exact environment and
# working directory, its exit status logged, its timeout (the whole process
# group killed), one run at a time; and, built with libsystemd, the D-Bus
# signal on a private bus that uses the project's bus policy. (Typing
# itself is switched in the end-to-end test: this machine has no uinput.)
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; stop_all_qemu; stop_bus; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
hooks=$SCRATCH/hooks
mkdir -p "$hooks"
write_conf "$conf"

# The hook: what it was given, one run after the other in files hooks/N.*;
# hooks/running tells an overlap; hooks/slow, hooks/hang (one run hangs,
# the next ones do not) and hooks/status change what it does.
cat >"$SCRATCH/hook" <<EOF
#!/bin/sh
n=\$(cat $hooks/count 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >$hooks/count
[ -e $hooks/running ] && touch $hooks/overlap
touch $hooks/running
tr '\\0' '\\n' </proc/\$\$/environ >$hooks/\$n.env
printf '%s\\n' "\$0" "\$@" >$hooks/\$n.args
pwd >$hooks/\$n.cwd
[ -e $hooks/slow ] && sleep 1.5
if [ -e $hooks/hang ]; then
	rm -f $hooks/hang $hooks/running
	echo \$\$ >$hooks/hang.pid
	sleep 29.5
fi
rm -f $hooks/running
exit \$(cat $hooks/status 2>/dev/null || echo 0)
EOF
chmod 755 "$SCRATCH/hook"

cat >>"$conf/vmplug.conf" <<CONF
[switch]
cycle = KEY_LEFTCTRL+KEY_RIGHTCTRL
on-switch = $SCRATCH/hook first "second word"
on-switch-timeout = 3
CONF
kbd_vm_conf "$conf" alpha
cat >"$conf/vm.d/beta.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/beta.qmp
inputs = kbd
focus-on-start = yes
CONF
cat >"$conf/vm.d/gamma.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/gamma.qmp
CONF
chmod go-w "$conf"/vm.d/* "$conf/vmplug.conf"

# ------------------------------------------------------------------- D-Bus
# A private bus with the system bus's default policy and the project's
# policy file, when vmplugd is built with libsystemd and dbus-daemon is here.
BUS_PID=
stop_bus() {
	[ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null && wait "$BUS_PID" 2>/dev/null
	[ -n "${MON_PID:-}" ] && kill "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null
	BUS_PID=
	MON_PID=
}
have_bus=no
if grep -q '^#define HAVE_SYSTEMD 1' "$top_builddir/config.h" && command -v dbus-daemon >/dev/null &&
	command -v dbus-monitor >/dev/null && command -v dbus-send >/dev/null; then
	have_bus=yes
	cat >"$SCRATCH/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$SCRATCH/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>$top_srcdir/data/org.vmplug.Switch1.conf</include>
</busconfig>
CONF
	dbus-daemon --config-file="$SCRATCH/bus.conf" --nofork --nopidfile 2>"$SCRATCH/bus.err" &
	BUS_PID=$!
	wait_for 50 test -S "$SCRATCH/bus" || bail "the private dbus-daemon did not start"
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SCRATCH/bus
	dbus-monitor --address "$DBUS_SYSTEM_BUS_ADDRESS" \
		"type='signal',interface='org.vmplug.Switch1'" >"$SCRATCH/signals" 2>&1 &
	MON_PID=$!
	# a monitor gives up its own bus name: from then on it sees every signal
	wait_for 50 grep -qs 'member=NameLost' "$SCRATCH/signals" || bail "dbus-monitor did not become a monitor"
fi

qemu_start alpha
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
# Started as a plain process, not as vmplugd.service starts it.
if [ "$(chrt -p "$VMPLUGD_PID" 2>/dev/null | sed -n '1s/.*policy: //p')" = SCHED_OTHER ]; then
	check "at normal priority it says that input may be lost, and how to fix it" \
		grep -q "input is read at normal priority: .* lost.*CPUSchedulingPolicy=fifo, or chrt -f 1" "$log"
fi
"$VMPLUGCTL" -s "$conf/control.sock" --json monitor >"$SCRATCH/events" 2>/dev/null &
MONITOR=$!
wait_for 50 test -s "$SCRATCH/events"

focus_is() { ctl --json status 2>/dev/null | jq -e --arg f "$1" '.return.focus == $f' >/dev/null; }
# focus_events FROM TO: how many INPUT_FOCUS events from FROM to TO the monitor printed
focus_events() { grep -c "\"event\":\"INPUT_FOCUS\",\"data\":{\"from\":\"$1\",\"to\":\"$2\"}" "$SCRATCH/events"; }
alpha_up() { ctl --json status | jq -e '.return.vms[] | select(.name == "alpha") | .state == "running"' >/dev/null; }
check "alpha comes up" wait_for 100 alpha_up
check "status shows the focus on the host" grep -qx "keyboard and mouse: host" <<<"$(ctl status)"
status_json() { ctl --json status | jq -e ".return | $1" >/dev/null; }
check "query-status: focus host, not released" \
	status_json '.focus == "host" and (."input-released" | not)'

# ------------------------------------------------------------ vmplugctl switch
out=$(ctl switch alpha)
check "switch alpha exits 0 and says from where to where" test "$out" = "keyboard and mouse: host -> alpha"
check "status shows the focus on alpha" focus_is alpha
check "INPUT_FOCUS host -> alpha" wait_for 50 grep -q '"event":"INPUT_FOCUS","data":{"from":"host","to":"alpha"}' "$SCRATCH/events"
check "the hook ran" wait_for 50 test -s "$hooks/1.cwd"
check "the hook's exit status is logged" wait_for 50 grep -q "on-switch: $SCRATCH/hook (host -> alpha) exited with status 0" "$log"
check "the hook got its argv, unchanged (no shell)" \
	test "$(cat "$hooks/1.args")" = "$SCRATCH/hook
first
second word"
check "the hook's environment is exactly PATH and the three VMPLUG_ variables" \
	test "$(sort "$hooks/1.env")" = "PATH=/usr/sbin:/usr/bin:/sbin:/bin
VMPLUG_FROM=host
VMPLUG_TO=alpha
VMPLUG_TO_TYPE=vm"
check "the hook runs in /" test "$(cat "$hooks/1.cwd")" = /

out=$(ctl switch alpha)
check "switching to where the focus is: nothing happens" test "$out" = "keyboard and mouse: alpha"
echo 3 >"$hooks/status"
ctl switch host >/dev/null
check "switch host: VMPLUG_TO_TYPE=host" wait_for 50 grep -qsx "VMPLUG_TO_TYPE=host" "$hooks/2.env"
check "a failing hook's status is logged" wait_for 50 grep -q "on-switch: $SCRATCH/hook (alpha -> host) exited with status 3" "$log"
rm -f "$hooks/status"

out=$(ctl switch gamma 2>&1)
check "switch to a VM without inputs fails (exit 1)" test $? -eq 1
check "and says why" grep -q "vm gamma takes no input" <<<"$out"
out=$(ctl switch beta 2>&1)
check "switch to a VM that is not running fails" grep -q "vm beta is not running" <<<"$out"
out=$(ctl switch nosuch 2>&1)
check "switch to an unknown VM fails" grep -q "no VM named 'nosuch'" <<<"$out"
ctl switch >/dev/null 2>&1
check "switch without a target: usage error (exit 2)" test $? -eq 2
check "switches are logged with the peer" grep -q "control: uid [0-9]* pid [0-9]*: switch alpha" "$log"

# ------------------------------------------------- one at a time, timeout
# Four switches while a slow hook runs: it runs once more afterwards, from
# where it last said to where the focus is then; never two at once.
touch "$hooks/slow"
ctl switch next >/dev/null # host -> alpha: run 3 (slow)
wait_for 20 test -e "$hooks/running"
ctl switch next >/dev/null # alpha -> host
ctl switch next >/dev/null # host -> alpha
ctl switch host >/dev/null # alpha -> host
check "after the slow run, one more: alpha -> host" wait_for 100 test -s "$hooks/4.cwd"
check "its environment: from alpha to host" \
	test "$(grep VMPLUG_ "$hooks/4.env" | sort | tr '\n' ' ')" = "VMPLUG_FROM=alpha VMPLUG_TO=host VMPLUG_TO_TYPE=host "
all_focus_events() { test "$(grep -c '"event":"INPUT_FOCUS"' "$SCRATCH/events")" -eq 6; }
check "every switch was announced" wait_for 50 all_focus_events
check "the last run ends" wait_for 50 grep -q "on-switch: $SCRATCH/hook (alpha -> host) exited with status 0 after [0-9]* ms" "$log"
check "never two runs at once" test ! -e "$hooks/overlap"
rm -f "$hooks/slow"

# The next switch's run is the fifth: none came after the fourth (runs
# are one at a time, so an extra one would have come first). It hangs.
touch "$hooks/hang"
ctl switch alpha >/dev/null
check "the next switch starts a run" wait_for 20 test -s "$hooks/hang.pid"
check "and no other came before it" test "$(cat "$hooks/count")" = 5
check "it is the run from host to alpha" grep -qx VMPLUG_TO=alpha "$hooks/5.env"
check "while the hook hangs, vmplugd answers and switches" \
	sh -c "$VMPLUGCTL -s $conf/control.sock switch host >/dev/null && kill -0 $(cat "$hooks/hang.pid")"
check "a hook over on-switch-timeout is killed and logged" \
	wait_for 100 grep -q "on-switch: $SCRATCH/hook (host -> alpha) did not finish within 3 s: killed" "$log"
# (killed, they may stay zombies until init reaps them)
group_gone() {
	ps -e -o pgid=,stat= | awk -v g="$(cat "$hooks/hang.pid")" '$1 == g && $2 !~ /^Z/ { found = 1 }
		END { exit found }'
}
check "with what it started (its process group)" wait_for 100 group_gone ||
	ps -e -o pid,ppid,pgid,stat,cmd | awk -v g="$(cat "$hooks/hang.pid")" '$3 == g' | sed 's/^/# /'
# (the fourth run, before, went from alpha to host too)
second_to_host() { [ "$(grep -c "on-switch: $SCRATCH/hook (alpha -> host) exited with status 0" "$log")" -eq 2 ]; }
check "then it runs for the switch that came meanwhile" wait_for 50 second_to_host

# ------------------------------------------------------------ VMs
out=$(ctl switch alpha)
check "the focus goes to alpha again" test "$out" = "keyboard and mouse: host -> alpha"
check "status shows the focus on alpha" focus_is alpha
gone_before=$(focus_events alpha host)
qemu_stop alpha KILL
check "the focused VM goes down: the focus returns to the host" wait_for 100 focus_is host
one_more_gone() { [ "$(focus_events alpha host)" -eq $((gone_before + 1)) ]; }
check "INPUT_FOCUS alpha -> host, once more" wait_for 50 one_more_gone
qemu_start beta
check "beta (focus-on-start) takes the focus when it comes up" wait_for 100 focus_is beta
out=$(ctl switch next)
check "next from the only running VM: the host" test "$out" = "keyboard and mouse: beta -> host"

# ------------------------------------------------------------ D-Bus
if [ "$have_bus" = yes ]; then
		owner() {
		dbus-send --bus="$DBUS_SYSTEM_BUS_ADDRESS" --print-reply --dest=org.freedesktop.DBus \
			/org/freedesktop/DBus org.freedesktop.DBus.GetNameOwner string:org.vmplug.Switch1 \
			>/dev/null
	}
	check "vmplugd owns org.vmplug.Switch1 (the bus policy lets it)" owner
	introspect=$(dbus-send --bus="$DBUS_SYSTEM_BUS_ADDRESS" --print-reply --dest=org.vmplug.Switch1 \
		/org/vmplug/Switch1 org.freedesktop.DBus.Introspectable.Introspect 2>&1)
	check "its object introspects with the Switched(s, s) signal" \
		grep -q '<signal name="Switched">' <<<"$introspect"
	check "a Switched signal for host -> alpha" \
		grep -A2 'path=/org/vmplug/Switch1; interface=org.vmplug.Switch1; member=Switched' "$SCRATCH/signals" |
		tr -s ' \n' ' ' | grep -q 'string "host" string "alpha"'
	one_per_switch() {
		test "$(grep -c 'member=Switched' "$SCRATCH/signals")" -eq "$(grep -c '"event":"INPUT_FOCUS"' "$SCRATCH/events")"
	}
	check "one signal per switch" wait_for 50 one_per_switch
	check "the last one: beta -> host" \
		test "$(grep -A2 'member=Switched' "$SCRATCH/signals" | tail -n 2 | tr -s ' \n' ' ')" = ' string "beta" string "host" '
else
	for _ in 1 2 3 4 5; do skip "no D-Bus here (built without libsystemd, or no dbus-daemon)"; done
fi

kill -INT "$MONITOR"
wait "$MONITOR"
stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0

# Without a system bus: logged once, and switching goes on.
if [ "$have_bus" = yes ]; then
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$SCRATCH/no-bus
	: >"$log"
	start_vmplugd "$conf" "$log" || bail "vmplugd did not start again"
	check "no system bus: beta takes the focus when vmplugd starts" wait_for 100 focus_is beta
	out=$(ctl switch host)
	check "no system bus: switching still works" test "$out" = "keyboard and mouse: beta -> host"
	check "no system bus: the focus is on the host" focus_is host
	check "no system bus: said once" test "$(grep -c 'dbus: cannot reach the system bus' "$log")" -eq 1
	stop_vmplugd
	check "vmplugd without a bus exits cleanly" test $? -eq 0
else
	for _ in 1 2 3 4 5; do skip "no D-Bus here (built without libsystemd, or no dbus-daemon)"; done
fi

# The monitor-switching example, with a ddcutil that writes down its arguments.
mkdir -p "$SCRATCH/bin"
printf '#!/bin/sh\necho "$*" >>%s\n' "$SCRATCH/ddcutil.log" >"$SCRATCH/bin/ddcutil"
chmod 755 "$SCRATCH/bin/ddcutil"
env -i PATH="$SCRATCH/bin:/usr/bin:/bin" VMPLUG_FROM=host VMPLUG_TO=win10 VMPLUG_TO_TYPE=vm \
	"$top_srcdir/data/examples/on-switch-ddcutil"
check "the ddcutil example sets each monitor's input" \
	test "$(cat "$SCRATCH/ddcutil.log")" = "--bus 4 --noverify setvcp 60 0x11
--bus 5 --noverify setvcp 60 0x11"
done_testing
