#!/bin/bash
# vmplugctl status for a libvirt VM, through libvirt's own test driver
# (test:///FILE: a running domain that lives in vmplugd's process, no
# libvirtd, no root): the sinks the domain's XML has are listed, the ones
# it lacks are named with the <input> to add, hostdevs are listed by
# vmplug's alias only, status waits for the domain before it judges, and
# says why a domain is down.
. "$(dirname "$0")/lib/tap.sh"
grep -q '^#define HAVE_LIBVIRT 1' "$top_builddir/config.h" ||
	skip_all "vmplugd is built without libvirt (apt-get install libvirt-dev libxml2-dev)"
. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; rm_scratch' EXIT

conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
write_conf "$conf"
cat >>"$conf/vmplug.conf" <<CONF
[input "kbd"]
device = /dev/input/by-id/usb-none-event-kbd
[input "mouse"]
device = /dev/input/by-id/usb-none-event-mouse
CONF
cat >"$SCRATCH/node.xml" <<'XML'
<node>
  <domain type='test'>
    <name>win10</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <input type='evdev'>
        <source dev='/dev/input/by-id/vmplug-pc-kbd' grab='all' repeat='on'/>
      </input>
      <input type='evdev'>
        <source dev='/dev/input/by-id/vmplug-other-mouse'/>
      </input>
      <hostdev mode='subsystem' type='usb' managed='no'>
        <source><address bus='3' device='6'/></source>
        <alias name='ua-mine'/>
      </hostdev>
    </devices>
  </domain>
</node>
XML
cat >"$conf/vm.d/pc.conf" <<CONF
[vm]
backend = libvirt
uri = test://$SCRATCH/node.xml
domain = win10
inputs = kbd, mouse
CONF
cat >"$conf/vm.d/gone.conf" <<CONF
[vm]
backend = libvirt
uri = test://$SCRATCH/node.xml
inputs = kbd
CONF
chmod go-w "$conf"/vm.d/*

start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
running() { ctl status | grep -q '^pc *libvirt *running '; }
check "the domain is running for vmplugd" wait_for 100 running
out=$(ctl status)
check "a sink the domain's XML has is listed" \
	grep -q '^  vmplug-in-kbd  *attached *input' <<<"$out"
check "a sink it lacks is missing, with the <input> to add" \
	grep -qF "vmplug-in-mouse  missing   input  -  (not in the VM's definition: add <input type='evdev'> with <source dev='/dev/input/by-id/vmplug-pc-mouse'/>)" <<<"$out"
check "another VM's sink does not count" test "$(grep -c 'vmplug-in-mouse' <<<"$out")" -eq 1
check "the user's hostdev is not vmplug's" test "$(grep -c 'mine\|3-6' <<<"$out")" -eq 0
check "a domain that is not there is down, and status says why" \
	grep -q '^gone (down): domain gone is not defined$' <<<"$out"
nothing_for_gone() { grep -A1 '^gone (down)' <<<"$out" | grep -q '^  nothing attached$'; }
check "... and nothing listed for it" nothing_for_gone
json=$(ctl --json status)
check "status --json: the missing sink's state and error" \
	test "$(jq -r '.return.vms[] | select(.name == "pc") | .inputs[] | select(.id == "vmplug-in-mouse") | "\(.state) \(.error != null)"' <<<"$json")" = "missing true"
check "vmplugd logged the undefined domain once" \
	test "$(grep -c 'vm gone: domain gone is not defined' "$log")" -eq 1
stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0
done_testing
