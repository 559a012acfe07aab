#!/bin/bash
# A VM restored from a saved state (QEMU started with -incoming): while QEMU
# loads the state, a device added would be lost to the guest (the loaded
# USB controller knows nothing of it), so vmplugd waits until the VM is
# loaded, says why meanwhile, and attaches then. QEMU announces the end of
# loading to nobody here (no client enabled migration events, and the
# restored VM stays stopped): vmplugd finds it out by asking.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
bed_begin
cat >"$conf/vm.d/alpha.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
usb-bus = xhci.0
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf"/vm.d/*
ctl() { "$VMPLUGCTL" -s "$conf/control.sock" "$@"; }

# migrated NAME: QEMU NAME's migration is over (either way).
migrated() {
	qmp_check "$1" query-migrate | grep -q -E '"status": *"(completed|failed)"'
}

# The saved VM: the same machine, stopped, saved to a file.
qemu_start saved
qmp_check saved migrate "{\"uri\": \"exec:cat >$SCRATCH/vm.state\"}" >/dev/null
check "a VM's state is saved to a file" wait_for 100 migrated saved
qemu_stop saved

plug 1-1 dev=3 vid=046d pid=0825 name=Webcam
qemu_start alpha -incoming defer
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "vmplugd waits while QEMU loads a saved VM" \
	wait_for 100 grep -q "vm alpha: .*loading a saved or incoming VM" "$log"
check "and attaches nothing meanwhile" usb_in_qemu_is alpha ""
check "status says why the VM is not up" \
	wait_for 100 grep -qxF "alpha (down): QEMU is loading a saved or incoming VM" <(ctl status)

qmp_check alpha migrate-incoming "{\"uri\": \"exec:cat $SCRATCH/vm.state\"}" >/dev/null
check "QEMU has loaded the VM" wait_for 100 migrated alpha
check "then the device is attached" usb_in_qemu_is alpha "vmplug-usb-1-3 attached=true hostaddr=3"
check "vmplugd says the VM is loaded" grep -q "vm alpha: QEMU has loaded the VM" "$log"

stop_vmplugd
check "vmplugd exits cleanly" test $? = 0
done_testing
