#!/bin/bash
# The libvirt backend is a module: a vmplugd whose VMs all speak QMP never
# maps it, libvirt or libxml2; the first libvirt VM (here on libvirt's own
# test driver, no libvirtd) loads it; a module that is missing or that
# others could have changed is an error for the libvirt VMs alone, said
# in their status, while the QMP VM goes on.
. "$(dirname "$0")/lib/tap.sh"
grep -q '^#define HAVE_LIBVIRT 1' "$top_builddir/config.h" ||
	skip_all "vmplugd is built without libvirt (apt-get install libvirt-dev libxml2-dev)"
. "$(dirname "$0")/lib/bed.sh"
bed_begin
cat >"$conf/vm.d/q.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/q.qmp
usb-bus = xhci.0
CONF
cat >"$SCRATCH/node.xml" <<'XML'
<node>
  <domain type='test'>
    <name>lv</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
  </domain>
</node>
XML
libvirt_vm() {
	cat >"$conf/vm.d/lv.conf" <<CONF
[vm]
backend = libvirt
uri = test://$SCRATCH/node.xml
domain = lv
CONF
	chmod go-w "$conf"/vm.d/*
}
chmod go-w "$conf"/vm.d/*
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }
maps() { cat "/proc/$VMPLUGD_PID/maps"; }
# mapped NAME: a file whose name starts with NAME is mapped into vmplugd
mapped() { maps | awk '{print $6}' | grep -q "/$1[^/]*$"; }
not_mapped() { ! mapped "$1"; }
status_of() { ctl status | grep "^$1 "; }

qemu_start q
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "the QMP VM is ready" wait_for 100 grep -q "vm q: ready" "$log"
check "with QMP VMs only, vmplugd has not mapped the libvirt module" not_mapped vmplug-libvirt
check "nor libvirt" not_mapped libvirt.so
check "nor libxml2" not_mapped libxml2.so

# --- the first libvirt VM loads it
libvirt_vm
ctl reload >/dev/null
check "a libvirt VM added by a reload is running for vmplugd" \
	wait_for 100 eval 'status_of lv | grep -q "libvirt *running"'
check "the module is mapped now" mapped vmplug-libvirt
check "and libvirt with it" mapped libvirt.so
check "vmplugd said where it loaded it from" \
	grep -q "the libvirt backend: loaded $top_builddir/vmplug-libvirt.so" "$log"
stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0

# --- no module: the libvirt VM says so, the QMP VM goes on
mkdir -p "$SCRATCH/empty"
: >"$log"
VMPLUG_MODULE_DIR=$SCRATCH/empty start_vmplugd "$conf" "$log" ||
	bail "vmplugd did not start without its module"
check "without the module the QMP VM is ready" wait_for 100 grep -q "vm q: ready" "$log"
check "the log names the missing module" \
	grep -q "the libvirt backend: cannot resolve $SCRATCH/empty/vmplug-libvirt.so" "$log"
check "the libvirt VM cannot start its backend, and says why" \
	grep -q "vm lv: cannot start the libvirt backend: .*shared library" "$log"
out=$(ctl --json status)
check "status gives the libvirt VM that error" \
	test "$(jq -r '.return.vms[] | select(.name == "lv") | ."last-error"' <<<"$out" | grep -c 'shared library')" -eq 1
check "and the QMP VM none" \
	test "$(jq -r '.return.vms[] | select(.name == "q") | .state' <<<"$out")" = running
stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0

# --- a module others could have changed is not loaded
mkdir -p "$SCRATCH/open"
cp "$top_builddir/vmplug-libvirt.so" "$SCRATCH/open/"
chmod 0666 "$SCRATCH/open/vmplug-libvirt.so"
: >"$log"
VMPLUG_MODULE_DIR=$SCRATCH/open start_vmplugd "$conf" "$log" ||
	bail "vmplugd did not start with an open module"
check "a module writable by others is refused, and the log says how to fix it" \
	wait_for 100 grep -q "the libvirt backend: file $SCRATCH/open/vmplug-libvirt.so is writable by group or others (mode 0666); fix with: chmod go-w" "$log"
check "it was not mapped" not_mapped vmplug-libvirt
check "the QMP VM is ready all the same" wait_for 100 grep -q "vm q: ready" "$log"
stop_vmplugd
check "vmplugd exits cleanly" test $? -eq 0
done_testing
