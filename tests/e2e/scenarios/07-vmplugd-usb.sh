#!/bin/sh
# Scenario: vmplugd gives the gadget keyboard to a nested QEMU by a port rule, and keeps
# giving it through unplug, replug (a new device number), a QEMU restart and its own restart.
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"

port=$(basename "$(gadget_sysfs)")
vmplug_conf "$T/conf"
usb_vm_conf "$T/conf" vm1

nested_qemu_start vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
bus=$(gadget_busnum)
dev=$(gadget_devnum)
check "the keyboard on port $port is attached as vmplug-usb-$bus-$dev" \
	waitfor 30 usb_ids_are vm1 "vmplug-usb-$bus-$dev "
check "vmplugd says so" \
	waitfor 10 grep -q "vm vm1: usb $port .*vmplug-usb-$bus-$dev: attached" "$T/vmplugd.log"

gadget_unplug
check "unplugged: detached (DEVICE_DELETED seen)" \
	waitfor 30 grep -q "vm vm1: usb .*vmplug-usb-$bus-$dev: detached" "$T/vmplugd.log"
check "QEMU no longer lists it" waitfor 10 usb_ids_are vm1 ""

gadget_plug usb
new=$(gadget_devnum)
check "replugged with a new device number ($dev -> $new)" test "$new" != "$dev"
check "replugged: attached again with the new address" \
	waitfor 30 usb_ids_are vm1 "vmplug-usb-$bus-$new "

nested_qemu_stop vm1
check "vmplugd sees QEMU go" waitfor 20 grep -q "vm vm1: gone" "$T/vmplugd.log"
nested_qemu_start vm1 || exit 1
check "QEMU restarted: attached again" waitfor 30 usb_ids_are vm1 "vmplug-usb-$bus-$new "

vmplugd_stop KILL
mv "$T/vmplugd.log" "$T/vmplugd.first.log"
vmplugd_start "$T/conf" -v || exit 1
check "vmplugd restarted: learns what QEMU has" \
	waitfor 30 grep -q "vm vm1: ready, 1 object" "$T/vmplugd.log"
check "vmplugd restarted: nothing duplicated" usb_ids_are vm1 "vmplug-usb-$bus-$new "
vmplugd_adopted vm1 "vmplug-usb-$bus-$new"
