#!/bin/bash
# The log a bug report asks for (vmplugd(8), BUG REPORTS): at debug level
# (-v on log-level info) it shows each udev event, who gets each USB
# device and by which rule, and the QMP traffic of each VM; every line
# about a VM or a device names it. VMPLUG_QMP_TRACE=1 shows the QMP
# traffic without the rest of debug. On a fake USB tree with a real QEMU.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/bed.sh"
bed_begin
cat >"$conf/vm.d/alpha.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/alpha.qmp
[usb "desk"]
port = 1-1
CONF
chmod go-w "$conf/vm.d/alpha.conf"

plug 2-1 dev=2 vid=1234 pid=5678 name=Token
qemu_start alpha
start_vmplugd "$conf" "$log" -v || bail "vmplugd did not start"
plug 1-1.2 dev=3 vid=046d pid=0825 name=Webcam
check "the device is attached" usb_in_qemu_is alpha "vmplug-usb-1-3 attached=true hostaddr=3"
logged() { grep -q -- "$1" "$log"; }
check "debug: udev events" logged "vmplugd: debug: udev: add 1-1.2 (usb)"
check "debug: who gets a device, and by which rule" \
	logged 'usb 1-1.2 046d:0825 "Webcam": goes to vm alpha (rule desk), attach-mode address'
check "debug: a device present at start that no VM claims says so" \
	logged 'usb 2-1 1234:5678 "Token": no VM claims it'
check "debug: QMP commands, with the VM's name" logged 'vm alpha: qmp -> {"execute":"device_add"'
check "debug: QMP replies, with the VM's name" logged 'vm alpha: qmp <- {"return"'
check "every QMP line names its VM" bash -c '! grep "qmp [<-][->]" "$1" | grep -v "vm alpha: qmp"' _ "$log"
check "the attach is logged with VM, port, ids and name" \
	logged 'vm alpha: usb 1-1.2 046d:0825 "Webcam" vmplug-usb-1-3: attached'
stop_vmplugd

# VMPLUG_QMP_TRACE=1 at the default level: the QMP traffic, not the rest
: >"$log"
VMPLUG_QMP_TRACE=1 start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
check "trace: the VM's QMP traffic at info" \
	wait_for 100 logged 'vmplugd: info: vm alpha: qmp <- {"return"'
check "trace: no other debug lines" bash -c '! grep -q "vmplugd: debug:" "$1"' _ "$log"
stop_vmplugd
done_testing
