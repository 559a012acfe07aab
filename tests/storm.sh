#!/bin/bash
# A flapping device (a KVM switch that bounces, a USB reset loop): one
# port removed and added again 10 000 times, a new device number each
# time, under vmplugd and a real QEMU on a fake USB tree. vmplugd
# debounces: the QMP commands it sends stay a handful (counted in its QMP
# trace), the VM ends with exactly the last device, and a device plugged
# in normally is still attached at once. The latencies and counts go to
# the log. VMPLUG_STORM_REPLUGS changes the number of replugs.
. "$(dirname "$0")/lib/tap.sh"
# Every replug is two uevents to each listener: only a deep datagram
# queue (tests/lib/bed.sh, as root) lets the testbed go this fast.
[ "$(id -u)" = 0 ] || skip_all "needs root: a network namespace with a deeper datagram queue"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; stop_all_qemu; rm_scratch' EXIT

replugs=${VMPLUG_STORM_REPLUGS:-10000}
conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
write_conf "$conf"
cat >"$conf/vm.d/vm.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/vm.qmp
usb-bus = xhci.0
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf"/vm.d/*

ms_now() { echo $(($(date +%s%N) / 1000000)); }
# attached_within NAME EXPECTED: poll QEMU (finely) until it has EXPECTED;
# prints how long that took, in ms.
attached_within() {
	local t0 n=0
	t0=$(ms_now)
	until [ "$(usb_in_qemu "$1")" = "$2" ]; do
		n=$((n + 1))
		[ "$n" -gt 3000 ] && return 1
		sleep 0.005
	done
	echo $(($(ms_now) - t0))
}
sent() { tail -n +"$1" "$log" | grep -c "qmp -> .*\"execute\":\"$2\"" || true; }

qemu_start vm
# -v: every udev event and QMP message is logged
start_vmplugd "$conf" "$log" -v || bail "vmplugd did not start"
wait_for 100 grep -q "vm vm: ready" "$log" || bail "vmplugd did not reach the VM"

# sent_within ID: ms until vmplugd sent device_add for ID (its log, polled
# every millisecond): what vmplug itself adds to a plug, QEMU aside.
sent_within() {
	local t0 n=0
	t0=$(ms_now)
	until grep -q "qmp -> .*\"device_add\".*\"id\":\"$1\"" "$log"; do
		n=$((n + 1))
		[ "$n" -gt 10000 ] && return 1
		sleep 0.001
	done
	echo $(($(ms_now) - t0))
}

plug 1-1.2 dev=2 vid=1234 pid=0001 name=Flappy
cmd=$(sent_within vmplug-usb-1-2)
fresh=$(attached_within vm "vmplug-usb-1-2 attached=true hostaddr=2")
check "a device plugged in is attached" test -n "$fresh"
diag "plugged in: device_add sent ${cmd} ms after the plug, attached in QEMU after ${fresh} ms"
# one replug (a device reset) right after: no settle delay either
unplug 1-1.2
plug 1-1.2 dev=3 vid=1234 pid=0001 name=Flappy
cmd=$(sent_within vmplug-usb-1-3)
once=$(attached_within vm "vmplug-usb-1-3 attached=true hostaddr=3")
check "a device replugged once is attached at once too" test -n "$once"
diag "replugged once: device_add sent ${cmd} ms after the plug, attached after ${once} ms"

# In batches of 100 replugs, each when vmplugd has read the one before
# (its -v log names every event), so no listener's queue overflows. The
# device still flaps far faster than any debounce delay, as long as the
# pause between batches stays well under the 2 s that end a burst: the
# wait reads only what vmplugd logged since the batch began (a grep of
# the whole log, megabytes by the end, every 10 ms slowed everything down
# on a busy machine, to over 3 s per batch). The testbed makes no device
# node for the numbers it flaps through, so QEMU could not open them
# anyway.
mark=$(($(wc -l <"$log") + 1))
t0=$(ms_now)
done_n=0 dev=3
while [ "$done_n" -lt "$replugs" ]; do
	n=$((replugs - done_n < 100 ? replugs - done_n : 100))
	from=$(($(stat -c %s "$log") + 1))
	"$USBBED_RUN" flap 1-1.2 "$n" dev="$dev" vid=1234 pid=0001 name=Flappy ||
		bail "the testbed could not flap the port"
	done_n=$((done_n + n))
	dev=$(((dev - 2 + n) % 126 + 2))
	waited=0
	until [ "$(tail -c +"$from" "$log" | grep -c 'udev: add 1-1.2 ')" -ge "$n" ]; do
		waited=$((waited + 1))
		[ "$waited" -gt 6000 ] && bail "vmplugd did not read the uevents of the storm"
		sleep 0.01
	done
done
# The last one for real, with the device node QEMU opens.
unplug 1-1.2
plug 1-1.2 dev="$dev" vid=1234 pid=0001 name=Flappy
storm_ms=$(($(ms_now) - t0))
last=$dev
settled=$(attached_within vm "vmplug-usb-1-$last attached=true hostaddr=$last")
check "after $replugs replugs the VM has exactly the last device" test -n "$settled"
diag "$replugs replugs in $storm_ms ms; the last device attached ${settled} ms after the storm ended"
adds=$(sent "$mark" device_add)
dels=$(sent "$mark" device_del)
total=$(tail -n +"$mark" "$log" | grep -c 'qmp -> ' || true)
diag "QMP commands sent during and after the storm: $total ($adds device_add, $dels device_del)"
check "QMP traffic stays bounded: at most 4 device_add and 4 device_del" \
	test "$adds" -le 4 -a "$dels" -le 4
check "the flapping was logged once, not per replug" \
	test "$(tail -n +"$mark" "$log" | grep -c 'its port changed')" -le 2
out=$("$VMPLUGCTL" -s "$conf/control.sock" status 2>&1)
check "vmplugd still answers" grep -q "^VM " <<<"$out"
stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
done_testing
