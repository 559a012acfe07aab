#!/bin/bash
# The e2e scenarios' qmp-client where QEMU 7.2 sends an event ahead of its
# greeting (one emitted while QEMU accepts the connection is written
# first): the event is skipped and the command runs. A message that is no
# greeting fails, named in the error.
. "$(dirname "$0")/lib/tap.sh"
make_scratch
peer_pid=
trap '[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null; rm_scratch' EXIT
qmp_client=$top_builddir/tests/e2e/helpers/qmp-client
sock=$SCRATCH/peer.qmp
greeting='{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}'
late_event='{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "kbd", "path": "/machine/peripheral/kbd"}}'

cat >"$SCRATCH/peer" <<'PEER'
#!/bin/sh
# Say the lines of file $1, then answer every command with {"return": {}}.
cat "$1"
while read -r cmd; do
	printf '%s\n' "$cmd" | jq -c '{return: {}, id: .id}'
done
PEER
chmod +x "$SCRATCH/peer"

# peer LINE...: serve one connection on $sock that starts with these lines.
peer() {
	printf '%s\n' "$@" >"$SCRATCH/first"
	rm -f "$sock"
	socat "UNIX-LISTEN:$sock" "EXEC:$SCRATCH/peer $SCRATCH/first" 2>/dev/null &
	peer_pid=$!
}

# run_client: qmp-client's query-status on $sock; its output in $out, its
# status in $status.
run_client() {
	status=0
	out=$("$qmp_client" -t 10000 "$sock" query-status 2>&1) || status=$?
	wait "$peer_pid" 2>/dev/null
	peer_pid=
}

peer "$greeting"
run_client
check "a greeting first: the command's reply" test "$status:$out" = '0:{"return":{}}'

peer "$late_event" "$greeting"
run_client
check "an event before the greeting is skipped" test "$status:$out" = '0:{"return":{}}'
[ "$status" = 0 ] || diag "qmp-client said ($status): $out"

peer '{"return": {}}' "$greeting"
run_client
check "a reply where the greeting belongs fails" test "$status" = 4
check "and is named" grep -qF 'instead of the greeting QEMU sent {"return":{}}' <<<"$out"

done_testing
