#!/bin/sh
# Scenario: bench/hotplug-gadget runs on the real kernel: the gadget keyboard plugged in and
# unplugged through vmplugd and a nested QEMU (a measurement, not a test: its numbers are
# printed for bench/RESULTS.md and never judged).
# shellcheck shell=dash
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$E2E_DIR/lib.sh"

bench=$VMPLUG_BUILD/bench/hotplug-gadget
[ -x "$bench" ] || skip "bench/hotplug-gadget is not built"
[ -x "$NESTED_QEMU" ] || skip "no $NESTED_QEMU in the host's /usr"
# How long it plugs and unplugs (about 3 s a plug, most of it the quiet vmplugd wants
# between two): 10 s in make check; a run given more than the usual 150 s per scenario
# (E2E_SCENARIO_TIMEOUT=300 tests/e2e/run ... 91) uses all but 40 s of it.
seconds=10
if [ "${E2E_SCENARIO_TIMEOUT:-150}" -gt 150 ]; then
	seconds=$((E2E_SCENARIO_TIMEOUT - 40))
fi

port=$(basename "$(gadget_sysfs)")
vmplug_conf "$T/conf"
usb_vm_conf "$T/conf" vm1

nested_qemu_start vm1 || exit 1
vmplugd_start "$T/conf" || exit 1
check "the keyboard on port $port is attached before the first unplug" \
	waitfor 30 usb_ids_are vm1 "vmplug-usb-$(gadget_busnum)-$(gadget_devnum) " || exit 1
check "bench/hotplug-gadget runs" "$bench" --plugs 200 --seconds "$seconds" \
	"$GADGET" "$(gadget_udc)" "$T/conf/control.sock" "$T/vm1.qmp" "$T/vm1.check" \
	>"$T/bench" 2>&1
sed 's/^/  # /' "$T/bench"
