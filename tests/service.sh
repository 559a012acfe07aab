#!/bin/bash
# vmplugd as a service without systemd: without -f the command returns
# only once the daemon is ready (or with its start-up error and status),
# --pid-file is written when ready, refuses a second start and goes at
# exit; with -f under journald (JOURNAL_STREAM) log lines carry the
# priority instead of the program's name.
. "$(dirname "$0")/lib/tap.sh"
make_scratch
trap 'stop_all; rm_scratch' EXIT

conf=$SCRATCH/conf
pidfile=$SCRATCH/vmplugd.pid
sock=$SCRATCH/control.sock
mkdir -p "$conf/vm.d"
cat >"$conf/vmplug.conf" <<CONF
[daemon]
control-socket = $sock
cache-dir = $SCRATCH/cache
CONF
printf '[vm]\nqmp-socket = %s/pc.qmp\n' "$SCRATCH" >"$conf/vm.d/pc.conf"
chmod -R go-w "$conf"

started=()
stop_all() {
	for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${started[@]}"; do wait_for 50 gone "$p"; done
}
gone() { ! kill -0 "$1" 2>/dev/null; }
is_vmplugd() { [ "$(ps -o comm= -p "$1")" = vmplugd ]; }

# --- background start: ready when the command returns
"$VMPLUGD" -c "$conf" --pid-file "$pidfile" >"$SCRATCH/out" 2>&1
rc=$?
check "without -f: returns 0 once the daemon is ready" test "$rc" -eq 0
check "nothing is printed on a good start" test ! -s "$SCRATCH/out"
# No waiting here: when the command has returned, the daemon is ready.
check "the pid file exists as soon as the command returns" test -s "$pidfile"
check "the control socket answers as soon as the command returns" test -S "$sock"
pid=$(cat "$pidfile" 2>/dev/null)
[ -n "$pid" ] && started+=("$pid")
check "the pid file names the running vmplugd" is_vmplugd "$pid"
check "the pid file is one line with the pid" grep -qx '[0-9]\+' "$pidfile"
check "the pid file is mode 0644" test "$(stat -c %a "$pidfile")" = 644
check "no temporary pid files are left" \
	test "$(find "$SCRATCH" -maxdepth 1 -name 'vmplugd.pid*' | wc -l)" -eq 1

# --- a second start while the first runs
out=$("$VMPLUGD" -c "$conf" --pid-file "$pidfile" 2>&1)
rc=$?
check "a second start with the same pid file exits 1" test "$rc" -eq 1
check "and says which vmplugd runs" \
	grep -q "not started: vmplugd $pid is running (pid file $pidfile)" <<<"$out"
check "the first daemon's pid file is untouched" test "$(cat "$pidfile")" = "$pid"
out=$("$VMPLUGD" -c "$conf" --pid-file "$SCRATCH/other.pid" 2>&1)
rc=$?
check "a start that fails after going to the background exits 1" test "$rc" -eq 1
check "and its error reaches the terminal" \
	grep -q "vmplugd: error: another vmplugd is running: it answers on $sock" <<<"$out"
check "it leaves no pid file" test ! -e "$SCRATCH/other.pid"
check "the first daemon still runs" kill -0 "$pid"

# --- exit
kill -TERM "$pid"
check "SIGTERM: the daemon exits" wait_for 50 gone "$pid"
check "and removes its pid file" test ! -e "$pidfile"

# --- a stale pid file (its process is gone, or is not vmplugd) is replaced
echo $$ >"$pidfile"
"$VMPLUGD" -c "$conf" --pid-file "$pidfile" 2>"$SCRATCH/out"
check "a stale pid file does not stop a start" test $? -eq 0
pid=$(cat "$pidfile")
started+=("$pid")
check "and is replaced with the new daemon's pid" is_vmplugd "$pid"
kill -TERM "$pid"
wait_for 50 gone "$pid"

# --- start-up errors
printf '[vm]\nqmp-socket = /run/q.qmp\nbogus = 1\n' >"$conf/vm.d/bad.conf"
out=$("$VMPLUGD" -c "$conf" --pid-file "$pidfile" 2>&1)
rc=$?
check "a bad config: the command exits 1" test "$rc" -eq 1
check "with the error on the terminal" grep -q "bad.conf:3: unknown key 'bogus'" <<<"$out"
check "and no pid file" test ! -e "$pidfile"
rm "$conf/vm.d/bad.conf"

out=$("$VMPLUGD" -c "$conf" --pid-file "$SCRATCH/no/such/dir/pid" 2>&1)
rc=$?
check "an unwritable pid file: the command exits 1" test "$rc" -eq 1
check "with the reason on the terminal" \
	grep -q "vmplugd: error: cannot write the pid file $SCRATCH/no/such/dir/pid: No such file or directory" <<<"$out"
check "and the daemon that could not write it is gone" test ! -e "$sock"

# --- -f with a pid file: the same file, gone at exit
# shellcheck disable=SC2046
$(vmplugd_cmd) -f -c "$conf" --pid-file "$pidfile" 2>"$SCRATCH/log" &
fpid=$!
started+=("$fpid")
check "-f --pid-file: the file appears" wait_for 100 test -s "$pidfile"
check "-f --pid-file: it names the foreground process" test "$(cat "$pidfile")" = "$fpid"
kill -TERM "$fpid"
wait "$fpid"
check "-f: a clean exit" test $? -eq 0
check "-f: the pid file is removed at exit" test ! -e "$pidfile"

# --- journald: stderr is the journal stream named by JOURNAL_STREAM
: >"$SCRATCH/journal"
stream=$(stat -c '%d:%i' "$SCRATCH/journal")
JOURNAL_STREAM=$stream "$VMPLUGD" -f -c "$conf" 2>>"$SCRATCH/journal" &
jpid=$!
started+=("$jpid")
wait_for 100 grep -q started "$SCRATCH/journal"
printf '[vm]\nqmp-socket = /run/q.qmp\nbogus = 1\n' >"$conf/vm.d/bad.conf"
kill -HUP "$jpid"
wait_for 100 grep -q "reload failed" "$SCRATCH/journal"
rm "$conf/vm.d/bad.conf"
kill -TERM "$jpid"
wait "$jpid"
check "journal: info lines start with priority <6> and the message" \
	grep -q '^<6>vmplugd .* started with' "$SCRATCH/journal"
check "journal: errors carry <3>" grep -q "^<3>config: .*bad.conf:3: unknown key" "$SCRATCH/journal"
check "journal: no line repeats the program's name or level" \
	bash -c '! grep -q "^vmplugd: " "$1"' _ "$SCRATCH/journal"
JOURNAL_STREAM=0:0 "$VMPLUGD" -f -c "$conf" 2>"$SCRATCH/plain" &
jpid=$!
started+=("$jpid")
wait_for 100 grep -q started "$SCRATCH/plain"
kill -TERM "$jpid"
wait "$jpid"
check "JOURNAL_STREAM naming another file: the usual 'vmplugd: info:' lines" \
	grep -q '^vmplugd: info: vmplugd .* started with' "$SCRATCH/plain"
done_testing
