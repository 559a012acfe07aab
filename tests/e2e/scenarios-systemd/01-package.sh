#!/bin/sh
# Scenario: dpkg -i installs vmplug's package on a machine that runs systemd: the group vmplug is
# made, vmplugd.service is enabled, and without /etc/vmplug it is neither started nor failed,
# not even by systemctl start.
# e2e-timeout: 700
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib-systemd.sh
. "$E2E_DIR/lib-systemd.sh"

check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
systemd-analyze time | while IFS= read -r l; do log "$l"; done
systemctl --failed --no-legend --plain | while IFS= read -r l; do log "failed at boot: $l"; done
check "no configuration: there is no /etc/vmplug" test ! -e /etc/vmplug

start=$(uptime_s)
# dpkg's lines with the guest's uptime: where an install spends its time
{
	dpkg -i /mnt/e2e/debs/vmplug.deb
	echo "dpkg-status $?"
} 2>&1 | while IFS= read -r l; do echo "$(uptime_s) $l"; done >"$T/dpkg.log"
sed 's/^/  # /' "$T/dpkg.log"
check "dpkg -i vmplug.deb" grep -q ' dpkg-status 0$' "$T/dpkg.log"
log "dpkg -i took $(echo "$start $(uptime_s)" | awk '{ printf "%.1f", $2 - $1 }') s"
check "vmplug is installed" package_installed
check "the group vmplug exists" sh -c 'getent group vmplug >/dev/null'
check "vmplugd.service is enabled" test "$(systemctl is-enabled vmplugd)" = enabled
# never_ran: vmplugd.service is inactive (dead) and never ran vmplugd
never_ran() {
	[ "$(unit_prop ActiveState)/$(unit_prop SubState)" = inactive/dead ] &&
		[ "$(unit_prop ExecMainStartTimestampMonotonic)" = 0 ] &&
		[ "$(unit_prop NRestarts)" = 0 ]
}
check "the package's start found no configuration: inactive, vmplugd never ran" never_ran
check "its start condition was not met (ConditionPathExists=/etc/vmplug)" \
	test "$(unit_prop ConditionResult)" = no
check "systemctl start vmplugd, without a configuration, succeeds" systemctl start vmplugd
check "and still vmplugd never ran" never_ran
check "systemctl is-failed vmplugd: no" sh -c '! systemctl is-failed --quiet vmplugd'
