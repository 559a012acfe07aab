#!/bin/bash
# The on-switch program as a boundary: only a program that root alone can
# change runs (judged when the configuration is read, and again before
# each run), it runs with no capability and cannot gain one, its timeout
# kills everything it started (also what left its process group and
# session with setsid), what it leaves behind dies with it, and stopping
# vmplugd neither waits for a run nor leaves one behind.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; stop_all_qemu; kill_strays; rm_scratch' EXIT

[ "$(id -u)" = 0 ] || skip_all "the owner checks and capabilities need root"
command -v setsid >/dev/null || skip_all "no setsid"

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
out=$SCRATCH/out
bin=$SCRATCH/bin
mkdir -p "$out" "$bin"
chmod 755 "$bin"
write_conf "$conf"

# The program: writes down its capabilities; with out/stray it starts a
# sleeper in a session of its own (pid in out/N.stray) and, with
# out/hang, waits past the timeout.
cat >"$bin/hook" <<HOOK
#!/bin/sh
n=\$(cat $out/count 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >$out/count
grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' /proc/\$\$/status >$out/\$n.status
if [ -e $out/stray ]; then
	setsid sh -c 'echo \$\$ >$out/'\$n'.stray; exec sleep 300' </dev/null >/dev/null 2>&1 &
	while [ ! -s $out/\$n.stray ]; do sleep 0.05; done
fi
[ -e $out/hang ] && sleep 300
echo done >$out/\$n.done
HOOK
chmod 755 "$bin/hook"

kill_strays() {
	local f
	for f in "$out"/*.stray; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	return 0
}

cat >>"$conf/vmplug.conf" <<CONF
[switch]
on-switch = $bin/hook
on-switch-timeout = 2
CONF
kbd_vm_conf "$conf" alpha
line=$(grep -n '^on-switch =' "$conf/vmplug.conf" | cut -d: -f1)

# ------------------------------------------------------------ at load
# refused WHY: --check-config exits 1 and refuses the program at file:line for WHY
refused() {
	local err rc
	err=$("$VMPLUGD" --check-config -c "$conf" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -ne 1 ] || ! grep -qF "$conf/vmplug.conf:$line: on-switch: refusing to run $prog: $1" <<<"$err"; then
		diag "exit status $rc:" "$err"
		return 1
	fi
}
prog=$bin/hook
chmod g+w "$bin/hook"
check "load: a program writable by its group is refused, at file:line" \
	refused "file $bin/hook is writable by group or others (mode 0775); fix with: chmod go-w $bin/hook"
chmod 755 "$bin/hook"
chown 65534 "$bin/hook"
check "load: a program not owned by root is refused" \
	refused "file $bin/hook is not owned by root (owner uid 65534); fix with: chown root: $bin/hook"
chown 0 "$bin/hook"
chmod o+w "$bin"
check "load: a program in a directory writable by others is refused" \
	refused "directory $bin is writable by group or others (mode 0757)"
chmod 755 "$bin"
chown 65534 "$SCRATCH"
check "load: so is one under a directory further up that is not root's" \
	refused "directory $SCRATCH is not owned by root (owner uid 65534)"
chown 0 "$SCRATCH"
ln -s "$bin/hook" "$SCRATCH/link"
sed -i "s|^on-switch = .*|on-switch = $SCRATCH/link|" "$conf/vmplug.conf"
prog=$SCRATCH/link
chmod g+w "$bin/hook"
check "load: a symbolic link is judged by what it points to" \
	refused "file $bin/hook is writable by group or others"
chmod 755 "$bin/hook"
sed -i "s|^on-switch = .*|on-switch = $bin/hook|" "$conf/vmplug.conf"
accepted() { "$VMPLUGD" --check-config -c "$conf" >/dev/null; }
check "load: a root-owned program under root's sticky /tmp is accepted" accepted

# ------------------------------------------------------------ before each run
qemu_start alpha
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
alpha_up() { ctl --json status | jq -e '.return.vms[] | select(.name == "alpha") | .state == "running"' >/dev/null; }
check "alpha comes up" wait_for 100 alpha_up

ctl switch alpha >/dev/null
check "a trusted program runs" wait_for 50 test -s "$out/1.done"
# cap_is FIELD VALUE: what the first run found in its /proc/self/status
cap_is() { grep -qx "$1:[[:space:]]*$2" "$out/1.status"; }
check "it has no effective capability" cap_is CapEff 0000000000000000
check "no permitted one" cap_is CapPrm 0000000000000000
check "no inheritable one" cap_is CapInh 0000000000000000
check "no ambient one" cap_is CapAmb 0000000000000000
check "and cannot gain any (no_new_privs)" cap_is NoNewPrivs 1
check "vmplugd keeps its own" \
	sh -c "grep '^CapEff:' /proc/$VMPLUGD_PID/status | grep -qv '0000000000000000'"

chmod g+w "$bin/hook"
ctl switch host >/dev/null
check "a program made writable since the load is not run, and that is logged" \
	wait_for 50 grep -q "on-switch: not running $bin/hook (alpha -> host): file $bin/hook is writable by group or others" "$log"
check "it did not run" test "$(cat "$out/count")" = 1
chmod 755 "$bin/hook"

# ------------------------------------------------------------ its processes
# gone PID: no such process, or only its zombie
gone() { [ -n "$1" ] && ! ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
touch "$out/stray"
ctl switch alpha >/dev/null
check "a run that starts a process in a session of its own" wait_for 50 test -s "$out/2.done"
check "its stray is killed when the program exits" wait_for 50 gone "$(cat "$out/2.stray")"

touch "$out/hang"
ctl switch host >/dev/null
check "a run that hangs, with a stray in a session of its own" wait_for 50 test -s "$out/3.stray"
check "is killed at the timeout" \
	wait_for 100 grep -q "on-switch: $bin/hook (alpha -> host) did not finish within 2 s: killed" "$log"
check "and so is its stray (setsid does not escape)" wait_for 50 gone "$(cat "$out/3.stray")"

ctl switch alpha >/dev/null
check "vmplugd stops while a run hangs with a stray" wait_for 50 test -s "$out/4.stray"
stop_vmplugd
check "vmplugd exits cleanly, without waiting for the run" test $? -eq 0
check "the stray does not outlive vmplugd" wait_for 50 gone "$(cat "$out/4.stray")"
done_testing
