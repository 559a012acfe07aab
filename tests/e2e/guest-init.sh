#!/bin/sh
# /init of the e2e test guest: mounts, modules, 9p shares, udevd, then the scenario runner.
# shellcheck shell=dash
#
# Built into the initramfs by tests/e2e/run; everything that changes with the
# project (runner, scenarios, binaries) comes from the 9p shares instead, so
# editing a scenario needs no new initramfs.  Kernel command line:
#   e2e.only=A,B            run only scenarios whose name contains A or B
#   e2e.scenario_timeout=S  default time limit of one scenario, in seconds
#   e2e.mode=systemd        boot systemd instead (systemd-boot.sh)

export PATH=/bin:/usr/bin:/usr/sbin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Debian's kernel has CONFIG_DEVTMPFS but not CONFIG_DEVTMPFS_MOUNT.
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

# The first serial port carries the kernel log; our own output goes to the
# second so the host sees it free of printk lines.
if [ -c /dev/ttyS1 ]; then
	exec </dev/null >/dev/ttyS1 2>&1
fi

uptime_s() {
	read -r up _ </proc/uptime
	echo "$up"
}

die() {
	echo "E2E-ERROR $*"
	echo "E2E-SUMMARY passed=0 failed=1 skipped=0"
	halt_guest
}

halt_guest() {
	sync
	# Let the UART drain before the machine goes away.
	sleep 0.3
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}

arg() {
	local cmdline word
	read -r cmdline </proc/cmdline
	for word in $cmdline; do
		case $word in
		"$1"=*) echo "${word#*=}" ;;
		esac
	done
}

echo "e2e: guest init at $(uptime_s) s, kernel $(uname -r)"

# shellcheck disable=SC2046 # one module name a line
modprobe -a $(cat /etc/e2e/modules) || die "cannot load the modules: $(cat /etc/e2e/modules)"

mount -t configfs configfs /sys/kernel/config || die "cannot mount configfs"

# The host's /usr (read-only: its QEMU, libraries and udev's dependencies), the
# source tree (read-only) and the build tree (read-write).  Nothing on the host
# changes them during a run, so the guest may cache them.
opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose
mount -t 9p -o "$opts,ro" hostusr /usr || die "cannot mount the host's /usr"
mount -t 9p -o "$opts,ro" vmplugsrc /mnt/src || die "cannot mount the source tree"
mount -t 9p -o "$opts" vmplugbuild /mnt/build || die "cannot mount the build tree"

# e2e.mode=systemd: Debian's systemd becomes PID 1 and runs the scenarios
# of scenarios-systemd (systemd-boot.sh, from the source share).
if [ "$(arg e2e.mode)" = systemd ]; then
	E2E_ONLY=$(arg e2e.only)
	E2E_SCENARIO_TIMEOUT=$(arg e2e.scenario_timeout)
	export E2E_ONLY E2E_SCENARIO_TIMEOUT
	exec sh /mnt/src/tests/e2e/systemd-boot.sh
fi

# systemd-udevd from Debian's udev package: libudev's "udev" monitor source,
# the udev database (ID_INPUT_KEYBOARD ...) and libusb's hotplug in QEMU need it.
# Devices made later get their events anyway; of those already there, udev
# only processes the kinds vmplug cares about (all of them cost 2 s more).
mkdir -p /run/udev
/lib/systemd/systemd-udevd --daemon || die "systemd-udevd did not start"
udevadm trigger --action=add --subsystem-match=usb --subsystem-match=input \
	--subsystem-match=hidraw --subsystem-match=misc
udevadm settle --timeout=60 || die "udevadm settle timed out"

echo "E2E-READY uptime=$(uptime_s)"

runner=/mnt/src/tests/e2e/guest-run.sh
if [ -f "$runner" ]; then
	# shellcheck disable=SC2046 # e2e.only is a comma list of words
	E2E_SCENARIO_TIMEOUT=$(arg e2e.scenario_timeout) \
		sh "$runner" $(arg e2e.only | tr ',' ' ')
else
	die "no $runner in the source share"
fi
halt_guest
