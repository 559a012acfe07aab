# Helpers for the scenarios of scenarios-systemd (sourced after lib.sh): vmplug installed from its
# Debian package under a real systemd, driven with systemctl.
# shellcheck shell=dash

# package_installed: vmplug's package is installed (01-package does it); a FAIL and status 1 if not.
package_installed() {
	dpkg-query -W -f='${Status}' vmplug 2>/dev/null | grep -q 'ok installed' && return 0
	fail "vmplug's package is installed (by 01-package)"
	return 1
}

# diagnose_more: for diagnose (lib.sh), at a scenario's first failure: the unit's state and
# vmplugd's last lines in the journal (vmplugd runs under systemd, not from the scenario).
diagnose_more() {
	systemctl status --no-pager -n 0 vmplugd.service 2>&1 | sed 's/^/DIAG /'
	journalctl -q --no-pager -o short-monotonic -n 15 -u vmplugd.service 2>&1 |
		sed 's/^/DIAG journal: /'
}

# service_scenario: the start of a scenario that runs vmplugd from the package: skipped without a
# QEMU, ends (status 1) without the package or the gadget's by-id link ($link, kbd_source); $conf
# is /etc/vmplug, with its vm.d, for the scenario to fill.
service_scenario() {
	[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
	package_installed || exit 1
	kbd_source || exit 1
	conf=/etc/vmplug
	mkdir -p "$conf/vm.d"
}

# unit_prop PROPERTY: a property of vmplugd.service (systemctl show).
unit_prop() {
	systemctl show -p "$1" --value vmplugd.service
}

# vmplugd_journal [PID]: vmplugd's log in the journal, of the vmplugd with PID only if given.
vmplugd_journal() {
	if [ -n "${1:-}" ]; then
		journalctl -q -o cat _SYSTEMD_UNIT=vmplugd.service _PID="$1"
	else
		journalctl -q -o cat -u vmplugd.service
	fi
}

# journal_has PID PATTERN: for waitfor, a line of that vmplugd's log matches the grep PATTERN
# (journald writes what it gets a moment later).
journal_has() {
	vmplugd_journal "$1" | grep -q -- "$2"
}

# input_named NAME: print the sysfs directory of the input device called NAME (a sink:
# vmplug-VM-INPUT); status 1 when there is none.
input_named() {
	local n
	for n in /sys/class/input/input*/name; do
		[ -f "$n" ] || continue
		if [ "$(cat "$n")" = "$1" ]; then
			echo "${n%/name}"
			return 0
		fi
	done
	return 1
}

# has_input NAME: for check and waitfor, the input device NAME exists.
has_input() {
	input_named "$1" >/dev/null
}

# qemu_keys_down NAME: the keys (qcodes) that QEMU NAME's trace (nested_qemu_keys) shows
# pressed and not released since, one a line; nothing when none is.
qemu_keys_down() {
	sed -n 's/.*key qcode \([a-z0-9_]*\), down \([01]\).*/\1 \2/p' "$T/$1.err" |
		awk '{ down[$1] = $2 } END { for (k in down) if (down[k] == 1) print k }'
}

# qemu_key_down NAME KEY: for waitfor, QEMU NAME has KEY down now.
qemu_key_down() {
	qemu_keys_down "$1" | grep -qx "$2"
}

# qemu_no_key_down NAME: for waitfor, QEMU NAME has no key down.
qemu_no_key_down() {
	[ -z "$(qemu_keys_down "$1")" ]
}
