#!/bin/sh
# The systemd mode's boot (e2e.mode=systemd): a root that is the host machine booted afresh, then
# Debian's systemd as PID 1, which runs the scenarios of scenarios-systemd as a service.
# shellcheck shell=dash
#
# guest-init.sh runs it as PID 1 (with E2E_ONLY and E2E_SCENARIO_TIMEOUT from the kernel's
# command line) once /proc, /sys, /dev, the modules and the
# shares (/usr, /mnt/src, /mnt/build) are there. The new root is a tmpfs:
#   /usr           the host's /usr, with systemd and udev unpacked from their
#                  .debs on top (tests/e2e/run, WORK/systemd/root), writable
#   /etc           the host's /etc with those packages' /etc on top, writable,
#                  without the host's enabled units, fstab and machine-id
#   /var/lib/dpkg  a copy of the host's dpkg database: dpkg -i works
#   /bin, /lib ... links into /usr, as on the host
# Every writable layer is in RAM and goes with the guest.

root=/sysroot
opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose

die() {
	echo "E2E-ERROR systemd mode: $*"
	echo "E2E-SUMMARY passed=0 failed=1 skipped=0"
	sync
	sleep 0.3
	poweroff -f
}

# layer NAME DIR LOWERDIRS: an overlay on DIR whose changes stay in RAM.
layer() {
	mkdir -p "$root/.layers/$1/upper" "$root/.layers/$1/work" "$root/$2"
	mount -t overlay "e2e-$1" \
		-o "lowerdir=$3,upperdir=$root/.layers/$1/upper,workdir=$root/.layers/$1/work" \
		"$root/$2" || die "cannot mount the overlay on /$2"
}

# at STEP: a line on the console with the guest's uptime (where the boot spends its time).
at() {
	local up _
	read -r up _ </proc/uptime
	echo "e2e: systemd-boot: $1 at $up s"
}

at start
modprobe overlay || die "cannot load the overlay module"
mkdir -p "$root"
mount -t tmpfs -o mode=755 sysroot "$root" || die "cannot mount the new root"
mkdir -p "$root"/proc "$root"/sys "$root"/dev "$root"/run "$root"/tmp "$root"/root \
	"$root"/var/log "$root"/var/tmp "$root"/var/cache "$root"/mnt/src "$root"/mnt/build \
	"$root"/mnt/host/usr "$root"/mnt/host/etc "$root"/mnt/e2e "$root"/var/lib/dpkg
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
for d in bin sbin lib lib64; do
	ln -s "usr/$d" "$root/$d"
done

mount -t 9p -o "$opts,ro" hostetc "$root/mnt/host/etc" || die "cannot mount the host's /etc"
mount -t 9p -o "$opts,ro" e2esystemd "$root/mnt/e2e" || die "cannot mount the systemd share"
mount -o move /usr "$root/mnt/host/usr"
mount -o move /mnt/src "$root/mnt/src"
mount -o move /mnt/build "$root/mnt/build"

layer usr usr "$root/mnt/e2e/root/usr:$root/mnt/host/usr"
layer etc etc "$root/mnt/e2e/root/etc:$root/mnt/host/etc"
at "layers mounted"
tar -C "$root/var/lib/dpkg" -xf "$root/mnt/e2e/dpkg.tar" || die "cannot unpack the dpkg database"

at "dpkg database unpacked"
# The guest kernel's modules (modprobe@uinput.service and friends).
mkdir -p "$root/usr/lib/modules"
cp -a "/lib/modules/$(uname -r)" "$root/usr/lib/modules/"

# A fresh boot of this machine: none of its enabled units, mounts or identity,
# and no policy-rc.d (a container's "start no service" for maintainer scripts).
rm -rf "$root"/etc/systemd/system/*
rm -f "$root/etc/fstab" "$root/etc/machine-id" "$root/usr/sbin/policy-rc.d"
tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
echo vmplug-e2e >"$root/etc/hostname"
# udev is unpacked, not installed: the system groups its postinst adds.
for group in input sgx kvm render; do
	chroot "$root" /usr/sbin/groupadd -f -r "$group" || die "cannot add the group $group"
done

at "groups made"
# The scenarios run as a service once the system is up; the machine powers
# off when they are done.
filters=$(echo "${E2E_ONLY:-}" | tr ',' ' ')
timeout=${E2E_SCENARIO_TIMEOUT:-}
cat >"$root/etc/systemd/system/vmplug-e2e.service" <<UNIT
[Unit]
Description=vmplug's end-to-end scenarios under systemd
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=simple
Environment=E2E_SCENARIOS=/mnt/src/tests/e2e/scenarios-systemd
Environment=E2E_LOGDIR=/mnt/build/tests/e2e/logs-systemd
Environment=E2E_SCENARIO_TIMEOUT=$timeout
ExecStartPre=/bin/sh -c 'read -r up _ </proc/uptime; echo "E2E-READY uptime=\$up"'
ExecStart=/bin/sh /mnt/src/tests/e2e/guest-run.sh $filters
StandardInput=null
StandardOutput=file:/dev/ttyS1
StandardError=inherit
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -s ../vmplug-e2e.service "$root/etc/systemd/system/multi-user.target.wants/"

at "handing over to systemd"
mount -o move /dev "$root/dev"
mount -o move /proc "$root/proc"
mount -o move /sys "$root/sys"
exec switch_root "$root" /lib/systemd/systemd
