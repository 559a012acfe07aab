#!/bin/bash
# vmplugctl prints what vmplugd says escaped: a daemon (here a fake one,
# socat and canned replies) relays text that QEMU, libvirt, a device or
# a configuration chose, with newlines, terminal escapes (ESC, BEL, C1
# CSI) and lines meant to look like vmplugctl's own. status, usb,
# explain, attach, reload, switch, identify and monitor print it as
# \xNN on the line it belongs to; --json prints valid JSON in ASCII.
. "$(dirname "$0")/lib/tap.sh"
command -v socat >/dev/null || skip_all "no socat"
make_scratch
trap 'kill "$daemon" 2>/dev/null; rm_scratch' EXIT
VMPLUGCTL=${VMPLUGCTL:-$top_builddir/vmplugctl}

sock=$SCRATCH/control.sock
replies=$SCRATCH/replies
mkdir "$replies"
# JSON escapes: what a peer may put in a string vmplugd passes on
evil='QEMU says: no\nvmplugctl: forged line \u001b[2J\u001b]0;pwned\u0007 \u009b31m'
dev='{"port": "1-1", "bus": 1, "devnum": 2, "vendor": "046d", "product": "0825", "serial": "S\u001b[5m", "manufacturer": null, "product-name": "Cam\u001b[8m\nvmplugctl: forged", "hub": false}'
cat >"$replies/query-status" <<EOF
{"return": {"version": "1", "config-dir": "/etc/vmplug\u001b[2J", "udev": "udevd", "focus": "pc\u001b[1m", "input-released": false, "vms": [{"name": "pc", "backend": "qmp", "target": "/run/pc.qmp\u0007", "state": "running", "last-error": "$evil", "pending": 0, "inputs": [{"id": "vmplug-in-kbd", "state": "missing", "error": "$evil"}], "usb": [{"id": "vmplug-usb-1-2", "state": "retrying", "bus": 1, "devnum": 2, "error": "$evil", "device": $dev}]}]}, "id": 1}
EOF
cat >"$replies/query-usb" <<EOF
{"return": {"devices": [{"port": "1-1", "bus": 1, "devnum": 2, "vendor": "046d", "product": "0825", "serial": "S\u001b[5m", "product-name": "$evil", "hub": false, "owner": "pc", "rule": "r\u001b[2J", "claimed-by": ["pc"], "denied-by": [], "attached": [{"vm": "pc", "id": "x", "state": "retrying\u001b[2J"}], "override": null}]}, "id": 1}
EOF
cat >"$replies/explain" <<EOF
{"return": {"devices": [{"device": $dev, "owner": "pc", "rule": "r\u001b[2J", "claimers": 1, "vms": [{"vm": "pc", "verdict": "claims", "rules": [{"rule": "r\nvmplugctl: forged", "deny": false, "matched": false, "missed": "$evil"}]}]}]}, "id": 1}
EOF
cat >"$replies/attach" <<EOF
{"error": {"class": "GenericError", "desc": "vm pc: attach failed: $evil"}, "id": 1}
EOF
cat >"$replies/reload" <<EOF
{"error": {"class": "ConfigError", "desc": "the configuration has 2 error(s); the running one is kept:\nvm.d/a.conf:3: unknown key '\u001b[2J'\n$evil"}, "id": 1}
EOF
cat >"$replies/switch" <<EOF
{"return": {"from": "host\u001b[2J", "to": "$evil"}, "id": 1}
EOF
cat >"$replies/identify" <<EOF
{"return": {"kind": "usb", "suggestion": "# Cam\u001b[2J\u009b2J: for a VM's file\n[usb \"cam\"]\nport = 1-1\n"}, "id": 1}
EOF
cat >"$replies/subscribe" <<EOF
{"return": {}, "id": 1}
{"event": "USB_FAILED", "data": {"vm": "pc", "id": "vmplug-usb-1-2\u001b[2J", "device": $dev, "error": "$evil", "final": true}, "timestamp": {"seconds": 1, "microseconds": 0}}
{"event": "VM_GONE", "data": {"vm": "pc", "reason": "$evil"}, "timestamp": {"seconds": 2, "microseconds": 0}}
{"event": "INPUT_FOCUS", "data": {"from": "pc\u001b[2J", "to": "host\nvmplugctl: forged"}, "timestamp": {"seconds": 3, "microseconds": 0}}
EOF

# The fake daemon: a greeting, a line that is not JSON (raw ESC bytes),
# then the canned reply to the command it is asked for.
cat >"$SCRATCH/daemon" <<EOF
#!/bin/bash
printf '%s\n' '{"vmplug": {"version": "1"}}'
read -r line
cmd=\$(sed -n 's/.*"execute": *"\([a-z-]*\)".*/\1/p' <<<"\$line")
printf '\033[2J{not json\n'
cat "$replies/\$cmd"
EOF
chmod +x "$SCRATCH/daemon"
socat "UNIX-LISTEN:$sock,fork" "EXEC:$SCRATCH/daemon" 2>/dev/null &
daemon=$!
wait_for 50 test -S "$sock" || bail "the fake daemon did not start"

ctl() { "$VMPLUGCTL" -s "$sock" "$@" 2>&1; }
# clean TEXT: no control character but newlines, no C1 control, no line
# of the peer's that passes for one of vmplugctl's own (a continuation
# line of an error is indented)
clean() {
	if LC_ALL=C grep -q $'[\001-\011\013-\037\177]\|\xc2[\x80-\x9f]' <<<"$1"; then
		diag "raw control characters:" "$(LC_ALL=C tr -c '[:print:]\n' '?' <<<"$1")"
		return 1
	fi
	if grep -q '^vmplugctl: forged\|^forged' <<<"$1"; then
		diag "a forged line:" "$1"
		return 1
	fi
}
escaped() { grep -qF "$2" <<<"$1" || { diag "no '$2' in:" "$1"; return 1; }; }

out=$(ctl status)
check "status: a VM's last error, items' errors, paths and names escaped" clean "$out"
check "status: the escape shows as \\x1b" escaped "$out" 'vmplugctl: forged line \x1b[2J\x1b]0;pwned\x07 \xc2\x9b31m'
out=$(ctl usb)
check "usb: device strings and names escaped" clean "$out"
out=$(ctl explain 1-1)
check "explain: rule names, verdicts and device strings escaped" clean "$out"
out=$(ctl attach pc 1-1)
check "attach: QEMU's error escaped, on vmplugctl's line" clean "$out"
check "attach: its newline is a new, indented line" escaped "$out" '  vmplugctl: forged line \x1b[2J'
check "a line that is not JSON is reported escaped" escaped "$out" 'vmplugd sent invalid JSON'
out=$(ctl reload)
check "reload: each error on a line of its own, escaped" clean "$out"
check "reload: the errors indented under vmplugctl's line" escaped "$out" "  vm.d/a.conf:3: unknown key '\\x1b[2J'"
out=$(ctl switch pc)
check "switch: from and to escaped" clean "$out"
out=$(ctl identify --timeout 1)
check "identify: the suggestion keeps its lines, escapes the rest" clean "$out"
check "identify: the section is printed as is" escaped "$out" $'[usb "cam"]\nport = 1-1'
out=$(timeout 10 "$VMPLUGCTL" -s "$sock" monitor 2>&1)
check "monitor: events' names, errors and reasons escaped" clean "$out"
check "monitor: one line per event" test "$(grep -c '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.' <<<"$out")" -eq 3
json=$("$VMPLUGCTL" -s "$sock" --json status 2>/dev/null)
check "--json status: ASCII only" clean "$json"
check "--json status: valid JSON that keeps the text" \
	test "$(jq -r '.return.vms[0]."last-error"' <<<"$json" 2>/dev/null | head -c 9)" = "QEMU says"
json=$(timeout 10 "$VMPLUGCTL" -s "$sock" --json monitor 2>&1)
check "--json monitor: ASCII only" clean "$json"
done_testing
