#!/bin/sh
# Scenario: a hung vmplugd (SIGSTOP) under the shipped unit: systemd's watchdog (WatchdogSec=30s,
# unchanged) kills it and starts a new one; the keyboard the hung one held grabbed is free again
# (the new vmplugd grabs it: a grab another descriptor holds cannot be taken), and typing goes
# through the sink the new one took back from the fd store.
# e2e-timeout: 400
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib-systemd.sh
. "$E2E_DIR/lib-systemd.sh"

service_scenario
printf '[input "kbd"]\ndevice = %s\n' "$link" >"$conf/vmplug.conf"
vm_conf "$conf" vm1 "focus-on-start = yes"
stop_all() {
	kill -CONT "${pid:-0}" 2>/dev/null
	systemctl stop vmplugd
	rm -rf "$conf"
	_e2e_cleanup
}
trap stop_all EXIT

nested_qemu_keys vm1 || exit 1
check "systemctl start vmplugd" systemctl start vmplugd || exit 1
pid=$(unit_prop MainPID)
check "vmplugd ($pid) runs under the shipped watchdog: WatchdogUSec=30s" \
	test "$(unit_prop WatchdogUSec)" = 30s
check "the keyboard is opened and grabbed" waitfor 30 journal_has "$pid" 'opened and grabbed' ||
	exit 1
type_key 0x04
check "typing A reaches QEMU" waitfor 20 qemu_got vm1 a

# --- hung: no more pings. systemd sends SIGABRT and then SIGCONT, which
# ends it within WatchdogSec (30 s) and a moment, far less than this bound.
restarts=$(unit_prop NRestarts)
kill -STOP "$pid"
check "vmplugd $pid is stopped" sh -c "grep -q '^State:.*T' /proc/$pid/status"
new_main() {
	new=$(unit_prop MainPID)
	[ "$new" != "$pid" ] && [ "$new" != 0 ]
}
check "systemd's watchdog ended it and started a new vmplugd" waitfor 180 new_main || exit 1
check "the hung vmplugd is gone" waitfor 20 pid_gone "$pid"
check "the journal says why: a watchdog timeout" \
	sh -c 'journalctl -q -o cat -u vmplugd.service | grep -q "Watchdog timeout"'
check "systemd counted one restart" test "$(unit_prop NRestarts)" = $((restarts + 1))
check "the new vmplugd ($new) is ready: the unit is active" \
	waitfor 60 test "$(systemctl is-active vmplugd)" = active
check "it took the VM's sink back from the fd store" \
	waitfor 30 journal_has "$new" "vm vm1: vmplug-vm1-kbd (.*) taken back from the fd store"
check "the hung one's grab is gone: the new vmplugd grabbed the keyboard" \
	waitfor 60 journal_has "$new" 'opened and grabbed'
type_key 0x05
check "typing B reaches QEMU through the new vmplugd" waitfor 20 qemu_got vm1 b
