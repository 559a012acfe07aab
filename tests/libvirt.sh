#!/bin/bash
# The libvirt backend against a real libvirtd (private, see
# tests/lib/libvirtd.sh for what it takes) and real QEMUs it starts, all on
# one fake USB tree (umockdev): libvirt checks that a host USB device
# exists in sysfs, and QEMU opens it through libusb. vmplugd started
# before libvirtd says why the VM is down, retries with backoff and
# connects once libvirtd is up, by itself; lifecycle events reach vmplugd, attaches reach the domain XML under vmplug's alias,
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
TAIL_PID=
trap 'stop_vmplugd; [ -z "$TAIL_PID" ] || kill "$TAIL_PID"; kill_domains; stop_libvirtd; libvirtd_cleanup; rm_scratch' EXIT

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

# Boot order: vmplugd first, libvirtd later. The VM is down and status
# says why; the connection is retried with backoff (0.1 s doubling to
# 5 s: a few quiet lines, not a storm), each retry logged at debug level
# only (vmplugd runs with -v here for them); once libvirtd is up vmplugd
# connects by itself. Each log line is stamped with the time it arrived
# (tail -f), for the retry intervals.
stamped=$SCRATCH/vmplugd.stamped
: >"$log"
tail -s 0.02 -n +1 -f "$log" > >(LC_ALL=C; while IFS= read -r line; do
	printf '%s %s\n' "$EPOCHREALTIME" "$line"
done >"$stamped") &
TAIL_PID=$!
start_vmplugd_high "$conf" "$log" -v || bail "vmplugd did not start"
attempts() { grep -c "vm guest: cannot connect to" "$stamped"; }
why_down() {
	"$VMPLUGCTL" -s "$conf/control.sock" status |
		grep -qF "guest (down): cannot connect to $LIBVIRT_URI: "
}
check "no libvirtd: the VM is down" wait_for 50 state_is guest down
check "no libvirtd: status says why" wait_for 50 why_down
six_attempts() { [ "$(attempts)" -ge 6 ]; }
check "no libvirtd: six connection attempts" wait_for 150 six_attempts
# the times of the first six attempts, and the intervals between them
mapfile -t at < <(grep "vm guest: cannot connect to" "$stamped" | head -n 6 | cut -d' ' -f1)
gaps=$(printf '%s\n' "${at[@]}" | awk '{ if (NR > 1) printf "%.3f ", $1 - prev; prev = $1 }')
diag "intervals between connection attempts (s): $gaps"
backs_off() {
	awk '{ n = split($0, g, " ");
	       exit !(n == 5 && g[5] >= 0.8 && g[5] >= 3 * g[1] && g[4] >= 2 * g[1]) }' <<<"$gaps"
}
check "no libvirtd: the retries back off (100 ms doubling)" backs_off
# 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s; a fixed 100 ms retry would take 0.5 s
check "no libvirtd: no storm (six attempts took over 2 s)" \
	awk -v a="${at[0]}" -v b="${at[5]}" 'BEGIN { exit !(b - a > 2) }'
check "no libvirtd: said once, retries only at debug level" \
	test "$(grep -c 'info: vm guest: cannot connect to' "$log")" -eq 1
# everything vmplugd logged meanwhile: both VMs retry (odd too), at
# debug level, and start-up says a few things (no D-Bus, no udevd, no
# uinput here); without backoff that would be about 70 lines
quiet=$(awk -v a="${at[0]}" -v b="${at[5]}" '$1 >= a && $1 <= b' "$stamped" | wc -l)
diag "vmplugd logged $quiet lines in those $(awk -v a="${at[0]}" -v b="${at[5]}" \
	'BEGIN { printf "%.1f", b - a }') s"
check "no libvirtd: at most 30 log lines meanwhile (debug level)" test "$quiet" -le 30
check "no libvirtd: no warning or error about a VM" \
	test -z "$(grep 'vmplugd: \(warning\|error\): vm ' "$log")"
start_libvirtd || bail "libvirtd did not start"
check "libvirtd up: vmplugd connected by itself" \
	wait_for 150 logged "vm guest: connected to libvirt at $LIBVIRT_URI"
kill "$TAIL_PID"
TAIL_PID=

# libvirt's domains later still (boot order does not matter)
check "a domain that is not defined is down" wait_for 50 state_is guest down
check "... and said so once" wait_for 50 logged "vm guest: domain guest is not defined"
not_defined() {
	"$VMPLUGCTL" -s "$conf/control.sock" status | grep -q "^guest (down): domain guest is not defined$"
}
check "... and status says so" wait_for 50 not_defined

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
# The reconciler decides when the list comes back: an attach would be
# pending (or done) by now.
row=$("$VMPLUGCTL" -s "$conf/control.sock" status | grep '^guest ')
check "restarted vmplugd: one device, nothing pending" grep -q '^guest *libvirt *running *1 *0 ' <<<"$row" ||
	diag "status: $row"
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
