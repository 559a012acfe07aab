#!/bin/bash
# The libvirt backend against a real libvirtd (private, see
# tests/lib/libvirtd.sh for what it takes) and real QEMUs it starts, all on
# one fake USB tree (umockdev): libvirt checks that a host USB device
# exists in sysfs, and QEMU opens it through libusb. Lifecycle events
# reach vmplugd, attaches reach the domain XML under vmplug's alias,
# detaches remove them (DEVICE_REMOVED), one removed by someone else is
# noticed and attached again, a restarted domain gets its devices again,
# a restarted vmplugd adds no duplicates, a restarted libvirtd is
# reconnected to, the user's hostdevs are left alone, hostile domain names
# break nothing, and status names sinks a domain lacks.
. "$(dirname "$0")/lib/tap.sh"
grep -q '^#define HAVE_LIBVIRT 1' "$top_builddir/config.h" ||
	skip_all "vmplugd is built without libvirt (apt-get install libvirt-dev libxml2-dev)"
command -v xmllint >/dev/null || skip_all "xmllint is not installed (apt-get install libxml2-utils)"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
. "$(dirname "$0")/lib/libvirtd.sh"
trap 'stop_vmplugd; kill_domains; stop_libvirtd; libvirtd_cleanup; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
hostile="it's \"<b>&amp; co\""
write_conf "$conf"
cat >>"$conf/vmplug.conf" <<CONF
[input "kbd"]
device = /dev/input/by-id/usb-none-event-kbd
CONF
cat >"$conf/vm.d/guest.conf" <<CONF
[vm]
backend = libvirt
uri = $LIBVIRT_URI
inputs = kbd
[usb "stick"]
vendor = 1234
[usb "cam"]
vendor = 046d
product = 0825
attach-mode = fd
CONF
cat >"$conf/vm.d/odd.conf" <<CONF
[vm]
backend = libvirt
uri = $LIBVIRT_URI
domain = $hostile
[usb "odd"]
vendor = 4321
CONF
chmod go-w "$conf"/vm.d/*

# umockdev names a process's fake uevent socket after the socket's fd
# number ($UMOCKDEV_DIR/eventN), and another process under the testbed
# that binds one with the same number later takes the name over. The
# QEMUs libvirtd starts listen too (libusb), on low numbers, so vmplugd's
# numbers start above 64 (under valgrind they would meet).
start_vmplugd_high() {
	local fd r held=()
	for fd in $(seq 3 64); do
		[ -e "/proc/$$/fd/$fd" ] && continue
		eval "exec $fd</dev/null"
		held+=("$fd")
	done
	start_vmplugd "$@"
	r=$?
	for fd in "${held[@]}"; do eval "exec $fd<&-"; done
	return $r
}

ours() { hostdevs "$1" | grep '^ua-vmplug-'; }
# has NAME EXPECTED: wait (15 s) until vmplug's hostdevs in NAME are EXPECTED.
has() { wait_output 150 "$2" "domain $1" ours "$1"; }
logged() { grep -qF -- "$1" "$log"; }
user_dev() { hostdevs guest | grep -q '^hostdev0 3 6$'; }
state_is() { "$VMPLUGCTL" -s "$conf/control.sock" status | grep -q "^$1 *libvirt *$2 "; }
count() { grep -cF -- "$1" "$log"; }

plug 3-1 dev=5 vid=1234 pid=5678 name=Stick
plug 3-2 dev=6 vid=0bda pid=8153 name=Mine
start_libvirtd || bail "libvirtd did not start"

# vmplugd first, libvirt's domains later (boot order does not matter)
start_vmplugd_high "$conf" "$log" || bail "vmplugd did not start"
check "a domain that is not defined is down" wait_for 50 state_is guest down
check "... and said so once" wait_for 50 logged "vm guest: domain guest is not defined"

start_domain guest || bail "cannot start domain guest: $(tail -n 3 "$LIBVIRTD_LOG")"
check "lifecycle: the domain started, vmplugd knows (vm_up)" wait_for 100 state_is guest running
check "attach: the hostdev is in the domain XML with vmplug's alias" \
	has guest "ua-vmplug-usb-3-5 3 5"
vsh dumpxml guest >"$SCRATCH/live.xml"
check "attach: by vendor, product, bus and device" \
	grep -q "<vendor id='0x1234'/>" "$SCRATCH/live.xml"
out=$("$VMPLUGCTL" -s "$conf/control.sock" status)
check "status: the device is attached" grep -q "vmplug-usb-3-5 *attached" <<<"$out"
check "status: the domain's XML lacks the sink of input kbd" \
	grep -q "vmplug-in-kbd *missing .*/dev/input/by-id/vmplug-guest-kbd" <<<"$out"

# the user's own hostdevs: one without an alias, one with a ua- alias
cat >"$SCRATCH/mine.xml" <<XML
<hostdev mode='subsystem' type='usb' managed='no'>
  <source><address bus='3' device='6'/></source>
</hostdev>
XML
vsh attach-device guest "$SCRATCH/mine.xml" --live >/dev/null
check "the user's hostdev is there" wait_for 50 user_dev

# detach: unplug, DEVICE_REMOVED
unplug 3-1
check "detach: the hostdev left the domain XML" has guest ""
check "detach: completed by DEVICE_REMOVED" wait_for 100 logged "vmplug-usb-3-5: detached"
check "detach: no timeout waiting for DEVICE_REMOVED" test "$(count 'no DEVICE_REMOVED')" -eq 0
plug 3-1 dev=7 vid=1234 pid=5678 name=Stick
check "replug: attached again, with the new device number" has guest "ua-vmplug-usb-3-7 3 7"

# someone else removes vmplug's hostdev: vmplugd hears DEVICE_REMOVED and,
# since its rules still claim the device, attaches it again
vsh detach-device-alias guest ua-vmplug-usb-3-7 --live >/dev/null
check "removed by someone else: vmplugd notices" \
	wait_for 100 logged "vmplug-usb-3-7 was removed from the domain by someone else"
reattached() { [ "$(count 'vmplug-usb-3-7: attached')" -eq 2 ]; }
check "... and attaches it again" wait_for 100 reattached
check "... once" has guest "ua-vmplug-usb-3-7 3 7"

# attach-mode fd: libvirt opens the device itself; vmplug says so once
plug 3-3 dev=8 vid=046d pid=0825 name=Cam
check "attach-mode fd: attached by bus and device" has guest "ua-vmplug-usb-3-7 3 7
ua-vmplug-usbfd-3-8 3 8"
check "attach-mode fd: logged once that libvirt attaches by address" \
	test "$(count 'attach-mode fd: libvirt attaches by bus and device number')" -eq 1
unplug 3-3
check "attach-mode fd: detached" has guest "ua-vmplug-usb-3-7 3 7"

# the domain stopped and started again (a new QEMU): everything back
vsh destroy guest >/dev/null
check "lifecycle: the domain stopped, vmplugd knows (vm_gone)" wait_for 100 state_is guest down
start_domain guest
check "restarted domain: its device is attached again" has guest "ua-vmplug-usb-3-7 3 7"
# (the user's live hostdev went with the old QEMU; it comes back by hand)
vsh attach-device guest "$SCRATCH/mine.xml" --live >/dev/null

# vmplugd restarted: it reads the XML, adds nothing twice
stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0
log=$SCRATCH/vmplugd-2.log
start_vmplugd_high "$conf" "$log" || bail "vmplugd did not start again"
check "restarted vmplugd: finds its device in the XML" \
	wait_for 100 logged "vm guest: ready, 1 object(s) of vmplug's already there"
sleep 0.5
check "restarted vmplugd: no duplicate" has guest "ua-vmplug-usb-3-7 3 7"
check "restarted vmplugd: no attach at all" test "$(count 'vmplug-usb-3-7: attached')" -eq 0

# libvirtd restarted (the domain runs on): vmplugd reconnects
stop_libvirtd
check "libvirtd gone: the VM is down for vmplugd" wait_for 100 state_is guest down
check "libvirtd gone: logged" logged "lost the connection to libvirt"
start_libvirtd || bail "libvirtd did not start again"
check "libvirtd back: vmplugd reconnected" wait_for 150 state_is guest running
check "libvirtd back: still one device, nothing twice" has guest "ua-vmplug-usb-3-7 3 7"
plug 3-4 dev=9 vid=1234 pid=0001
check "libvirtd back: a new device goes through the new connection" \
	has guest "ua-vmplug-usb-3-7 3 7
ua-vmplug-usb-3-9 3 9"
unplug 3-4
check "libvirtd back: and leaves through it (DEVICE_REMOVED)" has guest "ua-vmplug-usb-3-7 3 7"
check "the user's hostdev was never touched" user_dev

# a domain whose name has quotes, '<', '&' and spaces
plug 3-5 dev=10 vid=4321 pid=0001
start_domain "$hostile" || bail "libvirt refused the domain name $hostile"
check "hostile domain name: up" wait_for 100 state_is odd running
check "hostile domain name: attached" has "$hostile" "ua-vmplug-usb-3-10 3 10"
vsh destroy "$hostile" >/dev/null
check "hostile domain name: down" wait_for 100 state_is odd down

# (no /dev/uinput here: the sink cannot be made, and that is logged)
check "no other error in vmplugd's log" \
	test -z "$(grep 'vmplugd: error:' "$log" | grep -v 'cannot create vmplug-\(guest\|host\)-kbd')"
vsh destroy guest >/dev/null
stop_vmplugd
check "vmplugd exits cleanly at the end" test $? -eq 0
if [ "$TAP_FAILED" -gt 0 ]; then
	for f in "$SCRATCH"/vmplugd*.log; do
		diag "$f:"
		sed 's/^/# /' "$f" | tail -n 40
	done
fi
done_testing
