#!/bin/bash
# The control socket and vmplugctl, on a fake USB tree: status, usb,
# explain, attach/detach overrides, reload, identify and monitor, in human
# and --json form; bad requests get error replies while other clients go
# on; clients outside root and the control group are refused.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
golden=$top_srcdir/tests/data/ctl
CONTROL_GROUP=nogroup write_conf "$conf"
cat >"$conf/vm.d/alpha.conf" <<'CONF'
[vm]
qmp-socket = /run/vmplug-test/alpha.qmp
[usb "desk"]
port = 1-1
[usb "shared"]
vendor = 1234
[usb-deny "receiver"]
vendor = 046d
product = c52b
CONF
cat >"$conf/vm.d/beta.conf" <<'CONF'
[vm]
qmp-socket = /run/vmplug-test/beta.qmp
[usb "shared"]
vendor = 1234
product = 5678
CONF
chmod go-w "$conf"/vm.d/*

plug 1-1 dev=2 vid=05e3 pid=0608 class=09 name=Hub
plug 1-1.2 dev=3 vid=046d pid=0825 serial=CAM1 name=Webcam
plug 1-1.3 dev=4 vid=046d pid=c52b name=Receiver
plug 2-1 dev=2 vid=1234 pid=5678 name=Token
plug 3-1 dev=2 vid=abcd pid=0001
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
# compare OUTPUT GOLDEN: golden files name the scratch dir @CONF@
same_as() {
	local want
	if [ -n "${VMPLUG_UPDATE_GOLDEN:-}" ]; then
		printf "%s\n" "${1//$conf/@CONF@}" >"$golden/$2"
	fi
	want=$(sed "s|@CONF@|$conf|g" "$golden/$2")
	if [ "$1" = "$want" ]; then return 0; fi
	diff <(echo "$want") <(echo "$1") | sed 's/^/# /'
	return 1
}

out=$(ctl status)
check "status exits 0" test $? -eq 0
check "status: the daemon and each VM in a table" same_as "$out" status.txt
out=$(ctl usb)
check "usb: every device, where it goes, hubs and conflicts" same_as "$out" usb.txt
out=$(ctl explain 1-1.3)
check "explain: every rule, matched or the first key that did not" same_as "$out" explain.txt
out=$(ctl --json explain 1234:5678)
check "explain --json prints vmplugd's reply" \
	test "$(jq -r '.return.devices[0].vms[1].rules[0].matched' <<<"$out")" = true
ctl explain 9-9 2>"$SCRATCH/err"
check "explain of a device that is not there exits 1" test $? -eq 1
check "and says what to do" grep -q "no USB device matches '9-9' (see: vmplugctl usb)" "$SCRATCH/err"
ctl explain nonsense 2>"$SCRATCH/err"
check "a malformed DEVICE is explained" grep -q "give a port path (3-10.2), VID:PID or VID:PID:SERIAL" "$SCRATCH/err"
out=$(ctl explain 046d:0825:CAM1)
check "explain VID:PID:SERIAL: the device with that serial" test "$out" = "$(ctl explain 1-1.2)"
ctl explain 046d:0825:CAM2 2>"$SCRATCH/err"
check "a VID:PID:SERIAL with another serial matches nothing" \
	grep -q "no USB device matches '046d:0825:CAM2'" "$SCRATCH/err"
ctl explain 1234:5678:X 2>"$SCRATCH/err"
check "nor does a serial given for a device that has none" \
	grep -q "no USB device matches '1234:5678:X'" "$SCRATCH/err"
ctl explain 046d:0825:CAM1:extra 2>"$SCRATCH/err"
check "a fourth field is refused" grep -q "'046d:0825:CAM1:extra' is not a device" "$SCRATCH/err"

# Overrides while the VMs are down: recorded, applied when they come up.
out=$(ctl attach beta 3-1)
check "attach to a VM that is down waits for it" test "$out" = "beta: 3-1 waiting for the VM"
out=$(ctl --json detach alpha 046d:0825:CAM1)
check "detach --json (VID:PID:SERIAL) of a VM that is down: vmplugd's reply" \
	test "$(jq -c .return <<<"$out")" = '{"vm":"alpha","port":"1-1.2","state":"detached"}'
out=$(ctl --json usb)
check "usb --json shows the override" \
	test "$(jq -r '.return.devices[] | select(.port=="3-1") | "\(.owner) \(.override.action)"' <<<"$out")" = "beta attach"
ctl attach gamma 3-1 2>"$SCRATCH/err"
check "attach to an unknown VM exits 1" test $? -eq 1
check "and names the problem" grep -q "no VM named 'gamma'" "$SCRATCH/err"
ctl attach alpha 1-1 2>"$SCRATCH/err"
check "a hub cannot be attached" grep -q "1-1 is a hub: hubs are never attached" "$SCRATCH/err"
# A deny rule holds against every request; only the configuration lifts it.
ctl attach alpha 1-1.3 2>"$SCRATCH/err"
check "attach against a deny rule exits 1" test $? -eq 1
check "and names the rule and where it is written" grep -qF \
	"vm alpha: 1-1.3 is denied by [usb-deny \"receiver\"] at $conf/vm.d/alpha.conf:7; no request can attach it, only a change to the configuration" "$SCRATCH/err"
check "the refusal is logged with who asked" \
	grep -q "control: uid 0 pid [0-9]*: attach alpha 1-1.3 refused: denied by \[usb-deny \"receiver\"\]" "$log"
out=$(ctl --json usb)
check "and records no override" \
	test "$(jq -c '.return.devices[] | select(.port=="1-1.3") | [.owner, .override]' <<<"$out")" = '[null,null]'
ctl attach alpha 046d: 2>"$SCRATCH/err"
check "an incomplete VID:PID is refused" test $? -eq 1
plug 2-2 dev=3 vid=1234 pid=5678
ctl attach alpha 1234:5678 2>"$SCRATCH/err"
check "a DEVICE matching two devices asks for the port" \
	grep -q "'1234:5678' matches 2 devices (2-1, 2-2); give the port" "$SCRATCH/err"

# monitor sees events; reload emits one.
: >"$SCRATCH/monitor"
"$VMPLUGCTL" -s "$conf/control.sock" monitor >"$SCRATCH/monitor" 2>&1 &
mon=$!
wait_for 50 grep -q "watching" "$SCRATCH/monitor"
out=$(ctl reload)
check "reload reports what it loaded" test "$out" = "reloaded: 2 VM(s), 0 input(s)"
check "monitor prints the reload" wait_for 50 grep -q "CONFIG_RELOADED" "$SCRATCH/monitor"
out=$(ctl --json usb)
check "a reload ends the override" \
	test "$(jq -r '.return.devices[] | select(.port=="3-1") | .override' <<<"$out")" = null

# A bad config: reload fails with the errors, the old one stays.
printf '[vm]\nqmp-socket = /run/x.qmp\nbogus = 1\n' >"$conf/vm.d/bad.conf"
ctl reload 2>"$SCRATCH/err"
check "a failed reload exits 1" test $? -eq 1
check "and lists the errors" grep -q "bad.conf:3: unknown key 'bogus'" "$SCRATCH/err"
# vmplugctl reads its socket from vmplug.conf alone: a VM file's error
# does not send it to the default socket.
out=$("$VMPLUGCTL" -c "$conf" status 2>&1)
check "vmplugctl -c finds the socket while a VM file has an error" grep -q "^VM " <<<"$out"
rm "$conf/vm.d/bad.conf"

# A configuration that cannot say where the socket is: a clear error.
"$VMPLUGCTL" -c "$SCRATCH/nowhere" status 2>"$SCRATCH/err"
check "-c with a directory that does not exist: exit 3" test $? -eq 3
check "and the message names it" grep -qx \
	"vmplugctl: $SCRATCH/nowhere: cannot read the configuration directory: No such file or directory" "$SCRATCH/err"
mkdir "$SCRATCH/relative"
printf '[daemon]\ncontrol-socket = run/vmplug.sock\n' >"$SCRATCH/relative/vmplug.conf"
"$VMPLUGCTL" -c "$SCRATCH/relative" status 2>"$SCRATCH/err"
check "a control-socket that is not an absolute path: exit 3" test $? -eq 3
check "and the message gives the file and line" grep -qx \
	"vmplugctl: $SCRATCH/relative/vmplug.conf:2: control-socket: 'run/vmplug.sock' is not an absolute path" "$SCRATCH/err"
check "and says what to do" grep -q "give it with -s" "$SCRATCH/err"
out=$("$VMPLUGCTL" -c "$SCRATCH/relative" -s "$conf/control.sock" status 2>&1)
check "-s needs no configuration" grep -q "^VM " <<<"$out"

# identify: the next device plugged in, with a section to paste.
"$VMPLUGCTL" -s "$conf/control.sock" identify --timeout 20 \
	>"$SCRATCH/identify" 2>"$SCRATCH/identify.err" &
idp=$!
wait_for 50 grep -q "plug the device in now" "$SCRATCH/identify.err"
# vmplugctl has sent its request once it waits in read() (syscall 0) for
# the answer; a status round trip then shows that vmplugd has read it
# too (one thread: a client ready to be read is read before a newer
# client's request is).
waits_for_answer() { [ "$(cut -d' ' -f1 "/proc/$idp/syscall" 2>/dev/null)" = 0 ]; }
check "identify waits for its answer" wait_for 50 waits_for_answer
ctl status >/dev/null
plug 4-3 dev=7 vid=0781 pid=5581 serial=4C530001 name="Ultra"
wait "$idp"
check "identify exits 0 once a device is plugged in" test $? -eq 0
check "identify prints a port rule and an identity rule" same_as "$(cat "$SCRATCH/identify")" identify.txt
out=$(ctl identify --timeout 1 2>&1)
check "identify times out with a clear message" grep -q "nothing was plugged in within the time given" <<<"$out"

# Bad requests: an error reply each; other clients are not disturbed.
# shellcheck disable=SC2094 # the requests end once socat has written the last answer
{
	printf '{"execute": "nope", "id": 7}\n'
	printf 'not json\n'
	printf '[1, 2]\n'
	printf '{"execute": "explain", "arguments": {"device": 5}}\n'
	printf '{"execute": "explain", "arguments": "x"}\n'
	head -c 70000 /dev/zero | tr '\0' 'x'
	printf '\n{"execute": "query-status", "id": "after"}\n'
	# (socat hangs up when this ends: not before the last answer)
	wait_for 50 grep -qs '"id":"after"' "$SCRATCH/raw"
} | socat - "UNIX-CONNECT:$conf/control.sock" >"$SCRATCH/raw" 2>&1
check "an unknown command: CommandNotFound, with the request's id" \
	grep -qF '{"error":{"class":"CommandNotFound","desc":"The command nope has not been found"},"id":7}' "$SCRATCH/raw"
check "invalid JSON: an error reply" grep -q '"desc":"invalid JSON' "$SCRATCH/raw"
check "a request that is not an object: an error reply" grep -q 'a request must be a JSON object' "$SCRATCH/raw"
check "a wrong argument type: an error reply" grep -q "argument 'device' must be a string" "$SCRATCH/raw"
check "arguments that are not an object: an error reply" grep -q '"arguments\\" must be an object' "$SCRATCH/raw"
check "a request over 64 KiB: an error reply" grep -q 'request too large: over 65536 bytes' "$SCRATCH/raw"
check "the same client goes on after all that" grep -q '"id":"after"' "$SCRATCH/raw"
ctl reload >/dev/null
reloaded_twice() { [ "$(grep -c CONFIG_RELOADED "$SCRATCH/monitor")" -ge 2 ]; }
check "the monitor client was not disturbed" wait_for 50 reloaded_twice
kill -INT "$mon"
wait "$mon"
check "monitor stops on Ctrl-C with status 0" test $? -eq 0

# Who may talk to vmplugd.
if [ "$(id -u)" = 0 ]; then
	perm=$(stat -c '%a %G' "$conf/control.sock")
	check "the socket is 0660 and belongs to the control group" test "$perm" = "660 nogroup"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VMPLUGCTL" -s "$conf/control.sock" status 2>&1)
	check "a member of the control group may use it" grep -q "^VM " <<<"$out"
	setpriv --reuid=1 --regid=1 --clear-groups "$VMPLUGCTL" -s "$conf/control.sock" status >"$SCRATCH/out" 2>&1
	check "a user outside the group cannot connect (exit 3)" test $? -eq 3
	check "and is told who may" grep -q "only root and members of vmplugd's control-group may use it" "$SCRATCH/out"
	# even if the socket's mode is loosened, vmplugd checks the peer itself
	chmod 0666 "$conf/control.sock"
	setpriv --reuid=1 --regid=1 --clear-groups "$VMPLUGCTL" -s "$conf/control.sock" status >"$SCRATCH/out" 2>&1
	check "vmplugd itself refuses a peer outside the group" grep -q "uid 1 may not use vmplugd: only root and members of group nogroup may" "$SCRATCH/out"
	chmod 0660 "$conf/control.sock"
	check "refusals are logged" grep -q "control: refused uid 1 pid [0-9]*: not root and not in group nogroup" "$log"
	out=$(setpriv --reuid=1 --regid=1 --groups=65534 "$VMPLUGCTL" -s "$conf/control.sock" status 2>&1)
	check "a supplementary member of the control group may use it" grep -q "^VM " <<<"$out"
	chmod 0666 "$conf/control.sock"
	setpriv --reuid=1 --regid=1 --groups=100,65533 "$VMPLUGCTL" -s "$conf/control.sock" status >"$SCRATCH/out" 2>&1
	check "other supplementary groups do not count" grep -q "uid 1 may not use vmplugd" "$SCRATCH/out"
	chmod 0660 "$conf/control.sock"
	# A member of the control group who may not read vmplug.conf: told
	# so, and vmplugctl tries the default socket.
	mkdir -m 0755 "$SCRATCH/private"
	printf '[daemon]\ncontrol-socket = %s\n' "$conf/control.sock" >"$SCRATCH/private/vmplug.conf"
	chmod 0600 "$SCRATCH/private/vmplug.conf"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VMPLUGCTL" -c "$SCRATCH/private" status >"$SCRATCH/out" 2>&1
	check "an unreadable vmplug.conf: said, and the default socket tried" grep -qx \
		"vmplugctl: $SCRATCH/private/vmplug.conf: cannot open: Permission denied; trying the default socket /run/vmplug/control.sock" "$SCRATCH/out"
else
	for _ in 1 2 3 4 5 6 7 8 9; do skip "the permission checks need root"; done
fi
check "state-changing commands are logged with the peer's uid and pid" \
	grep -q "control: uid 0 pid [0-9]*: attach beta 3-1" "$log"

# bash completion: commands, VM names and ports from the running daemon.
_init_completion() {
	words=("${COMP_WORDS[@]}")
	cword=$COMP_CWORD
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
}
_filedir() { :; }
# shellcheck source=../data/vmplugctl.bash-completion
. "$top_srcdir/data/vmplugctl.bash-completion"
completes() {
	local want=$1
	shift
	COMP_WORDS=(vmplugctl -s "$conf/control.sock" "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	PATH=$top_builddir:$PATH _vmplugctl
	[ "${COMPREPLY[*]}" = "$want" ] || { diag "got '${COMPREPLY[*]}', want '$want'"; return 1; }
}
check "completion: commands" completes "attach" at
check "completion: VM names" completes "alpha beta" attach ""
check "completion: switch targets" completes "host next alpha beta" switch ""
check "completion: ports of present devices" completes "1-1 1-1.2 1-1.3" attach alpha 1-1
check "completion: options" completes "--json" --js

# Exit codes.
"$VMPLUGCTL" -s "$SCRATCH/none.sock" status 2>"$SCRATCH/err"
check "vmplugd not reachable: exit 3" test $? -eq 3
check "with the socket path in the message" grep -q "cannot reach vmplugd at $SCRATCH/none.sock" "$SCRATCH/err"
ctl attach alpha >/dev/null 2>&1
check "a missing argument: exit 2" test $? -eq 2
ctl frobnicate >/dev/null 2>&1
check "an unknown command: exit 2" test $? -eq 2

stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
check "the socket is removed on exit" test ! -e "$conf/control.sock"

# Without control-group only root may talk to vmplugd, whatever the
# socket's mode says.
if [ "$(id -u)" = 0 ]; then
	write_conf "$conf"
	start_vmplugd "$conf" "$log" || bail "vmplugd did not start without a control group"
	check "without control-group the socket is root's alone" \
		test "$(stat -c '%a %U' "$conf/control.sock")" = "600 root"
	chmod 0666 "$conf/control.sock"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VMPLUGCTL" -s "$conf/control.sock" status >"$SCRATCH/out" 2>&1
	check "without control-group a non-root peer is refused" grep -q "uid 65534 may not use vmplugd: only root may" "$SCRATCH/out"
	check "root still may" ctl_ok "$conf/control.sock"
	stop_vmplugd
	check "vmplugd exits cleanly again" test $? -eq 0
else
	for _ in 1 2 3 4; do skip "the permission checks need root"; done
fi
done_testing
