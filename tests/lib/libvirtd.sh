# shellcheck shell=bash
# A private libvirtd for tests (sourced after tap.sh and bed.sh): root, in
# a container, never touching a system libvirtd. What it takes here, and
# why:
#
# - its own mount namespace (unshare -m, as root), in which scratch
#   directories are bound over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
#   /var/cache/libvirt and /var/log/libvirt: a privileged libvirtd
#   (qemu:///system) has those paths built in. The bind mounts outlive
#   libvirtd, so a restarted one finds its running domains again. Mount
#   points that do not exist are made (empty) and removed again by
#   libvirtd_cleanup; nothing is ever written to them;
# - /etc/passwd and /etc/group with a libvirt-qemu user and group (bound,
#   in the namespace only): the QEMU driver looks up its built-in default
#   user before it reads qemu.conf, and fails to start without it;
# - libvirtd.conf: its sockets in the scratch directory (unix_sock_dir),
#   no TCP (no --listen), no polkit (auth_unix_rw = "none"), logs to
#   stderr; a PID file in the scratch directory (-p), not /run;
# - qemu.conf: QEMU as root (user, group), no security driver, no
#   ownership changes (dynamic_ownership, remember_owner), no cgroups
#   (cgroup_controllers = [ ]), no private /dev for QEMU (namespaces = [ ]),
#   QEMU's output to a file instead of virtlogd (stdio_handler = "file");
# - the fake USB tree: libvirtd checks a host USB device in sysfs before it
#   attaches one. The umockdev preload cannot carry libvirtd (its netlink
#   uevent socket fails under it: "cannot connect to netlink socket with
#   protocol 15"), so the testbed's /sys/bus/usb and its controller
#   directory are bound over tmpfs at /sys/bus and
#   /sys/devices/pci0000:00 in the namespace; QEMU is started with the
#   preload through the domain's <qemu:env> (domain_xml below).
#
# Connect with $LIBVIRT_URI (qemu:///system?socket=...).

command -v libvirtd >/dev/null || skip_all "libvirtd is not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
command -v virsh >/dev/null || skip_all "virsh is not installed (apt-get install libvirt-clients)"
[ "$(id -u)" = 0 ] || skip_all "a private libvirtd needs root (mount namespace)"
unshare -m true 2>/dev/null || skip_all "cannot make a mount namespace here (unshare -m)"

LIBVIRT_DIR=$SCRATCH/libvirt
LIBVIRT_URI="qemu:///system?socket=$LIBVIRT_DIR/sock/libvirt-sock"
LIBVIRTD_LOG=$SCRATCH/libvirtd.log

# virsh talks to the private daemon, outside the umockdev preload.
vsh() { env -u LD_PRELOAD virsh -q -c "$LIBVIRT_URI" "$@"; }

libvirtd_setup() {
	local d=$LIBVIRT_DIR
	mkdir -p "$d"/{etc,run,lib,cache,log,sock}
	cat >"$d/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$d/sock"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
CONF
	cat >"$d/etc/qemu.conf" <<CONF
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
	local m
	for m in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
		[ -e "$m" ] && continue
		mkdir -p "$m"
		echo "$m" >>"$d/made"
	done
	cp /etc/passwd "$d/passwd"
	cp /etc/group "$d/group"
	grep -q '^libvirt-qemu:' "$d/passwd" ||
		echo 'libvirt-qemu:x:64055:64055:libvirt QEMU:/nonexistent:/usr/sbin/nologin' >>"$d/passwd"
	grep -q '^libvirt-qemu:' "$d/group" || echo 'libvirt-qemu:x:64055:' >>"$d/group"
	# Runs in the namespace, without the umockdev preload.
	cat >"$d/start" <<'SCRIPT'
#!/bin/bash
set -e
d=$1 fakesys=$2
mount --bind "$d/etc" /etc/libvirt
mount --bind "$d/run" /run/libvirt
mount --bind "$d/lib" /var/lib/libvirt
mount --bind "$d/cache" /var/cache/libvirt
mount --bind "$d/log" /var/log/libvirt
mount --bind "$d/passwd" /etc/passwd
mount --bind "$d/group" /etc/group
mount -t tmpfs vmplug-test /sys/bus
mkdir /sys/bus/usb
mount --bind "$fakesys/bus/usb" /sys/bus/usb
mount -t tmpfs vmplug-test /sys/devices/pci0000:00
mkdir /sys/devices/pci0000:00/0000:00:14.0
mount --bind "$fakesys/devices/pci0000:00/0000:00:14.0" /sys/devices/pci0000:00/0000:00:14.0
exec libvirtd -f "$d/etc/libvirtd.conf" -p "$d/libvirtd.pid"
SCRIPT
	chmod +x "$d/start"
}

libvirtd_up() { vsh version >/dev/null 2>&1; }

start_libvirtd() {
	[ -f "$LIBVIRT_DIR/start" ] || libvirtd_setup
	rm -f "$LIBVIRT_DIR"/sock/*
	env -u LD_PRELOAD unshare -m --propagation private \
		"$LIBVIRT_DIR/start" "$LIBVIRT_DIR" "$UMOCKDEV_DIR/sys" 2>>"$LIBVIRTD_LOG" &
	LIBVIRTD_PID=$!
	if ! wait_for 300 libvirtd_up; then
		diag "libvirtd did not start:"
		tail -n 20 "$LIBVIRTD_LOG" | sed 's/^/# /'
		return 1
	fi
}

stop_libvirtd() {
	[ -n "${LIBVIRTD_PID:-}" ] || return 0
	kill -TERM "$LIBVIRTD_PID" 2>/dev/null
	wait "$LIBVIRTD_PID" 2>/dev/null
	LIBVIRTD_PID=
}

# The mount points libvirtd_setup made, gone again (after stop_libvirtd).
libvirtd_cleanup() {
	[ -f "$LIBVIRT_DIR/made" ] || return 0
	tac "$LIBVIRT_DIR/made" | xargs -r rmdir 2>/dev/null
	rm -f "$LIBVIRT_DIR/made"
}

# domain_xml NAME: a q35 TCG domain with an xhci controller and no disk.
# QEMU runs under the umockdev preload, and is told to find host devices
# by bus and address (libusb sees the testbed through udev) rather than
# to open /dev/bus/usb/BBB/DDD itself (hostdevice=), whose usbfs ioctls a
# fake node cannot answer.
domain_xml() {
	local name
	name=$(sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e "s/'/\&apos;/g" \
		-e 's/"/\&quot;/g' <<<"$1")
	cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>$QEMU_SYSTEM</emulator>
    <controller type='usb' model='qemu-xhci'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:env name='LD_PRELOAD' value='libumockdev-preload.so.0'/>
    <qemu:env name='UMOCKDEV_DIR' value='$UMOCKDEV_DIR'/>
  </qemu:commandline>
  <qemu:capabilities>
    <qemu:del capability='usb-host.hostdevice'/>
  </qemu:capabilities>
</domain>
XML
}

# start_domain NAME: transient, paused.
start_domain() {
	domain_xml "$1" >"$SCRATCH/domain.xml"
	vsh create "$SCRATCH/domain.xml" --paused >/dev/null
}

# Every QEMU the private libvirtd started, killed (a libvirtd that is not
# running cannot destroy them).
kill_domains() {
	local f
	for f in "$LIBVIRT_DIR"/run/qemu/*.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	return 0
}

# hostdevs NAME: the USB hostdevs of a domain's live XML, one per line,
# sorted: "ALIAS BUS DEVICE".
hostdevs() {
	vsh dumpxml "$1" | xmllint --xpath \
		"//devices/hostdev[@type='usb']/alias/@name | //devices/hostdev[@type='usb']/source/address/@bus | //devices/hostdev[@type='usb']/source/address/@device" - 2>/dev/null |
		sed -e 's/^ *//' | paste -d ' ' - - - | sed -e 's/bus="\([0-9]*\)" device="\([0-9]*\)" name="\(.*\)"/\3 \1 \2/' | sort
}
