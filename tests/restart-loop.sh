#!/bin/bash
# Restart loops on a fake USB tree with two real QEMUs: vmplugd SIGKILLed
# and started again N times while devices are plugged in and pulled out
# (before it starts, while it starts, while it reconciles), then the
# QEMUs SIGKILLed and started again N times the same way. After each loop
# every VM has exactly the devices its rules claim: none twice, none left
# over. N is VMPLUG_RESTARTS (default 100). Nothing in the tree sets it:
# tests/run-all.sh runs the full 100 in each of its passes (ASan `make
# check`, `make check-valgrind` under valgrind, and distcheck); set it
# lower by hand for a quicker run.
. "$(dirname "$0")/lib/tap.sh"

# The umockdev testbed process keeps a fixed table (about 50 entries) that
# grows with every device plugged in while QEMUs come and go, and aborts
# when it is full: the loops run in rounds of at most 20 restarts, each
# on a testbed of its own, and this part reports each round's results.
if [ -z "${RESTART_ROUND:-}" ]; then
	total=${VMPLUG_RESTARTS:-100}
	for ((round = 1, done_n = 0; done_n < total; round++)); do
		n=$((total - done_n < 20 ? total - done_n : 20))
		done_n=$((done_n + n))
		out=$(RESTART_ROUND=$round VMPLUG_RESTARTS=$n bash "$0" 2>&1)
		rc=$?
		case $out in "1..0 # SKIP"*) echo "$out"; exit 0 ;; esac
		while IFS= read -r line; do
			case $line in
			"ok "*) ok "round $round: ${line#ok * - }" ;;
			"not ok "*) not_ok "round $round: ${line#not ok * - }" ;;
			"#"*) echo "$line" ;;
			"Bail out!"*) not_ok "round $round: ${line#Bail out! }" ;;
			esac
		done <<<"$out"
		check "round $round ran to its end" test "$rc" -eq 0 -a -n "$(grep '^1\.\.' <<<"$out")"
	done
	done_testing
fi

. "$(dirname "$0")/lib/bed.sh"
make_scratch
trap 'stop_vmplugd; stop_all_qemu; rm_scratch' EXIT

restarts=${VMPLUG_RESTARTS:-20}
conf=$SCRATCH/conf
log=$SCRATCH/vmplugd.log
write_conf "$conf"
# The VMs take their devices by port, which QEMU, paused, does not open:
# the umockdev testbed keeps a small table of the device streams QEMU
# opens and does not clean up after a QEMU that is killed or a device
# pulled out from under it, so a hundred of those end the testbed. What
# QEMU has (qom-list) is still the truth checked; tests/usb-hotplug.sh
# covers QEMU opening the devices.
for vm in alpha:1-1 beta:2-1; do
	cat >"$conf/vm.d/${vm%%:*}.conf" <<CONF
[vm]
qmp-socket = $SCRATCH/${vm%%:*}.qmp
usb-bus = xhci.0
[usb "ports"]
port = ${vm#*:}
attach-mode = port
CONF
done
chmod go-w "$conf"/vm.d/*

# What is plugged in: port -> device number. Two ports per VM, so QEMU
# (which polls every device it holds through the testbed) stays light.
declare -A present
ports=(1-1.1 1-1.2 2-1.1 2-1.2)
next=10
step=0

# change: plug a free port or unplug a used one, chosen by a fixed
# sequence so every run does the same.
change() {
	local port=${ports[$(((step * 7 + 3) % 4))]}
	step=$((step + 1))
	if [ -n "${present[$port]:-}" ]; then
		unplug "$port"
		unset "present[$port]"
	else
		next=$((next >= 120 ? 10 : next + 1))
		plug "$port" dev=$next vid=1234 pid=$((4096 + next))
		present[$port]=$next
	fi
}

# expected BUS: what the VM owning bus BUS must have, as usb_in_qemu prints it.
expected() {
	local port
	for port in "${!present[@]}"; do
		[ "${port%%-*}" = "$1" ] || continue
		echo "vmplug-usbport-$1-${present[$port]} attached=false hostaddr=0"
	done | sort
}

# converged: both VMs have exactly what their rules claim.
converged() {
	local what=$1
	check "$what: alpha has exactly its devices" usb_in_qemu_is alpha "$(expected 1)"
	check "$what: beta has exactly its devices" usb_in_qemu_is beta "$(expected 2)"
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }

qemu_start alpha
qemu_start beta
change
change
start_vmplugd "$conf" "$log" || bail "vmplugd did not start"
converged "before the loops"

# --- vmplugd SIGKILLed and restarted -----------------------------------
t0=$(ms_now)
for ((i = 0; i < restarts; i++)); do
	kill -KILL "$VMPLUGD_PID"
	wait "$VMPLUGD_PID" 2>/dev/null
	VMPLUGD_PID=
	change # while it is down
	# shellcheck disable=SC2046
	$(vmplugd_cmd) -f -c "$conf" 2>>"$log" &
	VMPLUGD_PID=$!
	case $((i % 4)) in
	0) ;;                                   # killed while it starts
	1) change ;;                            # a device comes or goes as it starts
	2) sleep 0.0$((i % 10)) && change ;;    # ... a little later
	3) wait_for 100 ctl_ok "$conf/control.sock" && change ;; # once it answers
	esac
done
loop_ms=$(($(ms_now) - t0))
wait_for 100 ctl_ok "$conf/control.sock" || bail "vmplugd did not start after the loop"
converged "vmplugd killed $restarts times"
diag "vmplugd killed and restarted $restarts times in $loop_ms ms"
check "it was really killed midway: never a clean exit in the log" \
	test "$(grep -c 'vmplugd stopped' "$log")" -eq 0

# --- QEMU SIGKILLed and restarted ---------------------------------------
t0=$(ms_now)
for ((i = 0; i < restarts; i++)); do
	vm=$([ $((i % 2)) -eq 0 ] && echo alpha || echo beta)
	qemu_stop "$vm" KILL
	change # while it is down
	qemu_start "$vm"
	case $((i % 3)) in
	0) ;;
	1) change ;;                                    # while vmplugd reconnects
	2) sleep 0.1 && change ;;
	esac
done
loop_ms=$(($(ms_now) - t0))
converged "QEMU killed $restarts times"
diag "QEMU killed and restarted $restarts times in $loop_ms ms"
check "vmplugd saw the QEMUs go" test "$(grep -c ": gone (" "$log")" -ge $((restarts / 2))

out=$("$VMPLUGCTL" -s "$conf/control.sock" status 2>&1)
check "vmplugd still answers" grep -q "^VM " <<<"$out"
stop_vmplugd
check "vmplugd exits cleanly (valgrind: no errors, no leaks)" test $? -eq 0
done_testing
