#!/bin/bash
# vmplugd -f starts with a good config and logs its VMs, reloads on
# SIGHUP (keeping the old config when the new one is bad), exits cleanly
# on SIGTERM and SIGINT, refuses to start on a bad config, and daemonizes
# without -f.
. "$(dirname "$0")/lib/tap.sh"
make_scratch

conf=$SCRATCH/conf
log=$SCRATCH/log
cp -r "$top_srcdir/tests/data/conf/good/full" "$conf"
# its own control socket: another vmplugd may be running on this machine
sed -i "s|^control-socket = .*|control-socket = $SCRATCH/control.sock|" "$conf/vmplug.conf"
# The libvirt VM's qemu+ssh:// would have libvirt run ssh to a made-up
# host; a socket that is not there keeps the test off the network (and
# keeps a forked child out of an ASan build, whose allocator is not
# fork-safe while other threads allocate).
sed -i "s|^uri = .*|uri = qemu:///system?socket=$SCRATCH/no-libvirtd|" "$conf/vm.d/linux.conf"
chmod -R u+w,go-w "$conf"

# shellcheck disable=SC2046
$(vmplugd_cmd) -f -c "$conf" 2>"$log" &
pid=$!
logged() { grep -q -- "$1" "$log"; }
wait_log() { wait_for 100 logged "$1"; }

check "starts and says so" wait_log "vmplugd .* started with $conf: 2 VM(s), 2 input(s)"
check "logs each parsed VM" wait_for 50 bash -c 'grep -q "vm win10: backend qmp (/run/qemu/win10.qmp), 5 USB rules, 1 deny rules, inputs kbd,mouse" "$1" && grep -q "vm linux: backend libvirt" "$1"' _ "$log"

cat >"$conf/vm.d/new.conf" <<'CONF'
[vm]
qmp-socket = /run/qemu/new.qmp
CONF
kill -HUP "$pid"
check "SIGHUP reloads the configuration" wait_log "configuration reloaded: 3 VM(s), 2 input(s)"
check "the reloaded config's new VM is logged" logged "vm new: backend qmp (/run/qemu/new.qmp)"

printf '[vm]\nqmp-socket = /run/qemu/new.qmp\nbogus = 1\n' >"$conf/vm.d/new.conf"
kill -HUP "$pid"
check "a bad new config is reported with file:line" \
	wait_log "config: $conf/vm.d/new.conf:3: unknown key 'bogus' in \[vm\]"
check "and the running config is kept" wait_log "reload failed: 1 error(s); the running configuration is kept"
check "the daemon keeps running after a failed reload" kill -0 "$pid"

rm "$conf/vm.d/new.conf"
kill -HUP "$pid"
check "a later good reload applies" wait_log "configuration reloaded: 2 VM(s), 2 input(s)"

# QEMU's grab toggle is picked with each configuration (Scroll Lock: no
# chord uses it); a reload whose hotkey uses Scroll Lock moves it (the
# e2e scenario 18 sees QEMU's objects get the new one), with no warning.
printf '[vm]\nqmp-socket = /run/qemu/new.qmp\ninputs = kbd\nhotkey = KEY_SCROLLLOCK+KEY_1\n' \
	>"$conf/vm.d/new.conf"
kill -HUP "$pid"
# (the log has had each "configuration reloaded" line once already)
logged_twice() { [ "$(grep -c -- "$1" "$log")" -ge 2 ]; }
check "a reload with a hotkey on Scroll Lock applies" \
	wait_for 100 logged_twice "configuration reloaded: 3 VM(s), 2 input(s)"
rm "$conf/vm.d/new.conf"
kill -HUP "$pid"
check "and so does one without it" \
	wait_for 100 logged_twice "configuration reloaded: 2 VM(s), 2 input(s)"
check "neither warns of QEMU's grab toggle" test "$(grep -c "grab toggle" "$log")" -eq 0

kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM: clean exit with status 0 (valgrind: no errors, no leaks)" test "$rc" -eq 0
check "SIGTERM is logged" logged "Terminated received, exiting"
check "the stop is logged" logged "vmplugd stopped"

# SIGINT behaves the same.
: >"$log"
# shellcheck disable=SC2046
$(vmplugd_cmd) -f -c "$conf" 2>"$log" &
pid=$!
wait_log "started" || diag "no start line"
kill -INT "$pid"
wait "$pid"
check "SIGINT: clean exit with status 0" test $? -eq 0

# A bad config at start: exit 1, errors on stderr, nothing started.
printf '[vm]\nqmp-socket = /run/q.qmp\n[usb "x"]\nvendor = xyz\n' >"$conf/vm.d/bad.conf"
"$VMPLUGD" -f -c "$conf" 2>"$log"
check "a bad config at start exits 1" test $? -eq 1
check "its error names file:line" logged "config: $conf/vm.d/bad.conf:4: vendor: 'xyz' is not a hexadecimal number"
check "and it says it cannot start" logged "cannot start: 1 error(s) in the configuration in $conf"
# Without -f a bad config is still reported on the terminal, not lost in syslog.
"$VMPLUGD" -c "$conf" 2>"$log"
check "without -f, a bad config still exits 1 on the terminal" test $? -eq 1
rm "$conf/vm.d/bad.conf"

# Without -f: the command returns at once, the daemon runs detached.
"$VMPLUGD" -c "$conf" >"$SCRATCH/out" 2>&1
rc=$?
check "without -f, vmplugd returns 0 once in the background" test "$rc" -eq 0
# Errors logged while it starts reach the terminal too (here: no
# /dev/uinput, no libvirt backend); nothing else does.
check "without -f, only start-up errors are printed on the terminal" \
	bash -c '! grep -v "^vmplugd: error: " "$1"' _ "$SCRATCH/out"
find_daemon() { pgrep -f -x "$VMPLUGD -c $conf"; }
daemon_found() { find_daemon >/dev/null; }
check "the background daemon is running" wait_for 50 daemon_found
bgpid=$(find_daemon)
check "the background daemon is a session leader's child, not ours" \
	bash -c '[ "$(ps -o ppid= -p "$1" | tr -d " ")" != "$2" ]' _ "$bgpid" "$$"
kill -TERM "$bgpid" 2>/dev/null
gone() { ! kill -0 "$bgpid" 2>/dev/null; }
check "the background daemon stops on SIGTERM" wait_for 50 gone

# The open files limit: vmplugd takes what the hard limit allows (an fd
# per VM, source and sink add up past 1024 with a few hundred VMs). Not
# under valgrind, which keeps the limit to itself.
if [ "${VMPLUG_VALGRIND:-0}" != 1 ]; then
	: >"$log"
	prlimit --nofile=1024:8192 "$VMPLUGD" -f -c "$conf" 2>"$log" &
	pid=$!
	check "with a soft limit of 1024 open files, vmplugd starts" wait_log "vmplugd .* started with"
	check "... and raises it to the hard limit" \
		grep -Eq "^Max open files +8192 +8192 " "/proc/$pid/limits"
	kill -TERM "$pid"
	wait "$pid"
fi

# Every other good corpus config does the same: starts and says how many
# VMs it parsed, reloads on SIGHUP, exits 0 on SIGTERM.
for name in empty minimal syntax; do
	c=$SCRATCH/good-$name
	cp -r "$top_srcdir/tests/data/conf/good/$name" "$c"
	if [ -f "$c/vmplug.conf" ]; then
		sed -i "/^\[daemon\]/a control-socket = $SCRATCH/good.sock" "$c/vmplug.conf"
	else
		printf '[daemon]\ncontrol-socket = %s\n' "$SCRATCH/good.sock" >"$c/vmplug.conf"
	fi
	chmod -R u+w,go-w "$c"
	nvm=$(grep -c '^vm [^ ]* backend=' "$c/expected")
	: >"$log"
	# shellcheck disable=SC2046
	$(vmplugd_cmd) -f -c "$c" 2>"$log" &
	pid=$!
	check "good/$name: starts with its $nvm VM(s)" wait_log "vmplugd .* started with $c: $nvm VM(s)"
	kill -HUP "$pid"
	check "good/$name: reloads on SIGHUP" wait_log "configuration reloaded: $nvm VM(s)"
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	check "good/$name: exits 0 on SIGTERM" test "$rc" -eq 0
done
done_testing
