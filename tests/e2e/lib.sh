# Helpers for e2e scenarios, sourced inside the test guest (busybox sh): results, waiting,
# the USB keyboard gadget, evdev, nested QEMU and QMP.  See README.md for the list.
# shellcheck shell=dash

# Set by guest-run.sh; the defaults let a scenario be run by hand in the guest.
: "${VMPLUG_SRC:=/mnt/src}"
: "${VMPLUG_BUILD:=/mnt/build}"
: "${E2E_DIR:=$VMPLUG_SRC/tests/e2e}"
: "${E2E_BIN:=$VMPLUG_BUILD/tests/e2e/helpers}"
: "${E2E_SCENARIO:=manual}"
: "${T:=/run/e2e/$E2E_SCENARIO}"
: "${E2E_RESULTS:=$T/.results}"
mkdir -p "$T"

GADGET=/sys/kernel/config/usb_gadget/vmplug-e2e
GADGET_VENDOR=0x1d6b		# Linux Foundation
GADGET_PRODUCT=0x0104		# Multifunction Composite Gadget
GADGET_SERIAL=vmplug-e2e-0001
GADGET_NAME="e2e keyboard"		# the evdev name is "vmplug e2e keyboard"
NESTED_QEMU=${NESTED_QEMU:-/usr/bin/qemu-system-x86_64}
# A nested QEMU starting under TCG in a busy guest on a busy host took
# over 20 s to answer: a wait, so a long one costs nothing when it works.
QMP_TIMEOUT=${QMP_TIMEOUT:-60000}

# ---- results -------------------------------------------------------------

uptime_s() {
	local up _
	read -r up _ </proc/uptime
	echo "$up"
}

# log TEXT: a line of context, not a result.
log() {
	echo "  # $*"
}

# at: "[S s]", the seconds since the scenario started, for the console
# lines of results (where a slow scenario spends its time).
at() {
	[ -n "${E2E_START:-}" ] || return 0
	echo "$E2E_START $(uptime_s)" | awk '{ printf " [%.1f s]", $2 - $1 }'
}

pass() {
	echo "PASS $*$(at)"
	echo "PASS $*" >>"$E2E_RESULTS"
}

fail() {
	echo "FAIL $*$(at)"
	echo "FAIL $*" >>"$E2E_RESULTS"
	diagnose
}

# diagnose: once per scenario, at its first failure, what vmplugd and the
# QEMUs are doing right then and vmplugd's last lines, as "DIAG" lines: a
# failure seen only on a CI machine says there whether a process was stuck
# (and where in the kernel) or never got the event.
diagnose() {
	local p comm state
	[ -n "${T:-}" ] && [ ! -e "$T/.diagnosed" ] || return 0
	: >"$T/.diagnosed"
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		case $comm in
		vmplugd | qemu-system-*) ;;
		*) continue ;;
		esac
		state=$(sed -n 's/^State:[[:space:]]*//p' "$p/status" 2>/dev/null)
		echo "DIAG $comm ${p#/proc/}: $state, in $(cat "$p/wchan" 2>/dev/null)"
		case $state in
		D*) sed 's/^/DIAG   /' "$p/stack" 2>/dev/null | head -n 8 ;;
		esac
	done
	[ -f "$T/vmplugd.log" ] && tail -n 12 "$T/vmplugd.log" | sed 's/^/DIAG vmplugd: /'
	# a scenario's own (lib-systemd.sh: the unit's state and its journal)
	! command -v diagnose_more >/dev/null || diagnose_more
	dmesg 2>/dev/null | tail -n 6 | sed 's/^/DIAG kernel: /'
}

# skip REASON: the scenario cannot run here; ends it.
skip() {
	echo "SKIP $*"
	echo "SKIP $*" >>"$E2E_RESULTS"
	exit 0
}

# check TEXT COMMAND [ARG...]: PASS or FAIL by the command's status, which it returns.
check() {
	local text=$1
	shift
	if "$@"; then
		pass "$text"
		return 0
	fi
	fail "$text"
	return 1
}

# waitfor SECONDS COMMAND [ARG...]: run COMMAND every 0.1 s until it succeeds.
waitfor() {
	local tenths=$(($1 * 10))
	shift
	while ! "$@"; do
		tenths=$((tenths - 1))
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
	done
}

# wait_line SECONDS FILE PATTERN: wait until a line of FILE (which may not
# exist yet) matches the grep PATTERN.
wait_line() {
	waitfor "$1" grep -qs -- "$3" "$2"
}

# matches STRING PATTERN: a line of STRING matches the grep PATTERN.
matches() {
	printf '%s\n' "$1" | grep -q -- "$2"
}

# lacks FILE PATTERN: FILE exists and no line of it matches the grep PATTERN.
lacks() {
	[ -f "$1" ] && ! grep -q -- "$2" "$1"
}

# is_char_dev PATH / is_gone PATH: for waitfor.
is_char_dev() {
	[ -c "$1" ]
}

is_gone() {
	[ ! -e "$1" ]
}

# udev_prop DEVNODE KEY: print a property from the udev database.
udev_prop() {
	udevadm info --query=property --name="$1" 2>/dev/null | sed -n "s/^$2=//p"
}

udev_settle() {
	udevadm settle --timeout=30
}

# ---- the USB keyboard gadget ----------------------------------------------
# A configfs HID boot keyboard on dummy_hcd's UDC: the gadget side (/dev/hidgN)
# is the "physical" keyboard a scenario types on; the host side (usbhid, a
# /dev/bus/usb node and an evdev node) is what vmplug sees.

# The standard 63-byte boot keyboard report descriptor.
GADGET_REPORT_DESC='\005\001\011\006\241\001\005\007\031\340\051\347\025\000\045\001\165\001'\
'\225\010\201\002\225\001\165\010\201\003\225\005\165\001\005\010\031\001\051\005\221\002'\
'\225\001\165\003\221\003\225\006\165\010\025\000\045\145\005\007\031\000\051\145\201\000'\
'\300'

gadget_udc() {
	local u
	for u in /sys/class/udc/*; do
		[ -e "$u" ] || return 1
		echo "${u##*/}"
		return 0
	done
}

# gadget_create: build the gadget in configfs (not plugged in).
gadget_create() {
	local f=$GADGET/functions/hid.usb0 c=$GADGET/configs/c.1
	mkdir "$GADGET" || return 1
	echo "$GADGET_VENDOR" >"$GADGET/idVendor"
	echo "$GADGET_PRODUCT" >"$GADGET/idProduct"
	echo 0x0100 >"$GADGET/bcdDevice"
	echo 0x0200 >"$GADGET/bcdUSB"
	mkdir "$GADGET/strings/0x409"
	echo "$GADGET_SERIAL" >"$GADGET/strings/0x409/serialnumber"
	echo vmplug >"$GADGET/strings/0x409/manufacturer"
	echo "$GADGET_NAME" >"$GADGET/strings/0x409/product"
	mkdir "$c" "$c/strings/0x409"
	echo keyboard >"$c/strings/0x409/configuration"
	echo 100 >"$c/MaxPower"
	mkdir "$f"
	echo 1 >"$f/protocol"		# keyboard
	echo 1 >"$f/subclass"		# boot interface
	echo 8 >"$f/report_length"
	# shellcheck disable=SC2059 # the descriptor is a printf format of octal escapes
	printf "$GADGET_REPORT_DESC" >"$f/report_desc"
	ln -s "$f" "$c/"
}

# gadget_remove: unplug the gadget and take it out of configfs.
gadget_remove() {
	[ -d "$GADGET" ] || return 0
	gadget_unplug
	gadget_remove_mouse
	rm -f "$GADGET/configs/c.1/hid.usb0"
	rmdir "$GADGET/configs/c.1/strings/0x409" "$GADGET/configs/c.1" \
		"$GADGET/functions/hid.usb0" "$GADGET/strings/0x409" "$GADGET"
}

# gadget_sysfs: print the host-side USB device's sysfs directory.
gadget_sysfs() {
	local d
	for d in /sys/bus/usb/devices/*; do
		if [ "$(cat "$d/serial" 2>/dev/null)" = "$GADGET_SERIAL" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

gadget_present() {
	gadget_sysfs >/dev/null
}

# gadget_absent: no USB device of the gadget is left, not even one the
# kernel is still removing (whose serial can no longer be read): under
# TCG that takes a while, and a plug meanwhile would find the old one.
gadget_absent() {
	local d s
	for d in /sys/bus/usb/devices/*; do
		case ${d##*/} in
		usb* | *:*) continue ;; # root hubs, interfaces
		esac
		s=$(cat "$d/serial" 2>/dev/null) && [ "$s" != "$GADGET_SERIAL" ] && continue
		[ -e "$d" ] && return 1
	done
	return 0
}

gadget_busnum() {
	local d
	d=$(gadget_sysfs) && cat "$d/busnum"
}

gadget_devnum() {
	local d
	d=$(gadget_sysfs) && cat "$d/devnum"
}

# gadget_usbnode: print /dev/bus/usb/BBB/DDD of the gadget.
gadget_usbnode() {
	local d
	d=$(gadget_sysfs) || return 1
	printf '/dev/bus/usb/%03d/%03d\n' "$(cat "$d/busnum")" "$(cat "$d/devnum")"
}

# gadget_evdev [INTERFACE]: print the /dev/input/eventN node usbhid made for
# the gadget's interface (default 1.0, the keyboard; 1.1 is the mouse of
# gadget_add_mouse).
gadget_evdev() {
	local d e
	d=$(gadget_sysfs) || return 1
	d=$(readlink -f "$d")
	d="$d/${d##*/}:${1:-1.0}"
	for e in /sys/class/input/event*; do
		case $(readlink -f "$e") in
		"$d"/*)
			echo "/dev/input/${e##*/}"
			return 0
			;;
		esac
	done
	return 1
}

gadget_evdev_ready() {
	local e
	e=$(gadget_evdev) && [ -c "$e" ]
}

# gadget_hidg: print the gadget side's /dev/hidgN.
gadget_hidg() {
	local dev
	dev=$(cat "$GADGET/functions/hid.usb0/dev") || return 1
	echo "/dev/$(sed -n 's/^DEVNAME=//p' "/sys/dev/char/$dev/uevent")"
}

# gadget_interface_driver: print the driver bound to the gadget's interface, or "none".
gadget_interface_driver() {
	local d
	d=$(gadget_sysfs) && interface_driver "$d"
}

# interface_driver DIR: the driver of the first interface of the USB device
# at sysfs DIR, or "none".
interface_driver() {
	local d
	d=$(readlink "$1/${1##*/}:1.0/driver") || {
		echo none
		return 0
	}
	echo "${d##*/}"
}

# gadget_plug [usb]: bind the gadget to the UDC and wait until the host side
# has enumerated it, usbhid has made its evdev node and udev is done with it.
# With "usb" the device is on its way to a VM (QEMU's usb-host takes it from
# usbhid, so there may never be an evdev node): wait only for the USB device.
gadget_plug() {
	local udc
	udc=$(gadget_udc) || return 1
	echo "$udc" >"$GADGET/UDC" || return 1
	if [ "${1:-}" = usb ]; then
		waitfor 20 gadget_present || return 1
	else
		waitfor 20 gadget_evdev_ready || return 1
	fi
	udev_settle
}

# gadget_unplug: unbind the gadget and wait until the host side is gone.
gadget_unplug() {
	[ -n "$(cat "$GADGET/UDC" 2>/dev/null)" ] || return 0
	echo "" >"$GADGET/UDC" || return 1
	waitfor 20 gadget_absent || return 1
	udev_settle
}

# gadget_replug [usb]: unplug, then plug in again (the device number changes).
gadget_replug() {
	gadget_unplug && gadget_plug "$@"
}

# gadget_rename NAME: unplug the gadget, have it call itself NAME (no
# manufacturer string, so usbhid names its evdev NAME alone), plug it in.
gadget_rename() {
	gadget_unplug || return 1
	echo "" >"$GADGET/strings/0x409/manufacturer"
	echo "$1" >"$GADGET/strings/0x409/product"
	gadget_plug
}

# evdev_name DEV: print the name the input device behind DEV gives itself.
evdev_name() {
	cat "/sys/class/input/${1##*/}/device/name"
}

# gadget_reset: a fresh gadget, plugged in and enumerated (run before each scenario).
gadget_reset() {
	gadget_remove && gadget_create && gadget_plug
}

# ---- a mouse beside the keyboard -------------------------------------------
# A second HID function in the same gadget (interface 1.1): five buttons, X,
# Y, the wheel and the horizontal wheel (AC Pan), 8 bits each, so the host
# side's evdev has REL_WHEEL and REL_HWHEEL with their high-resolution events.
GADGET_MOUSE_DESC='\005\001\011\002\241\001\011\001\241\000\005\011\031\001\051\005\025\000'\
'\045\001\225\005\165\001\201\002\225\001\165\003\201\001\005\001\011\060\011\061\011\070'\
'\025\201\045\177\165\010\225\003\201\006\005\014\012\070\002\225\001\201\006\300\300'

# gadget_add_mouse: add the mouse function and plug the gadget in again; wait
# until both evdev nodes are there.
gadget_add_mouse() {
	local f=$GADGET/functions/hid.usb1
	gadget_unplug || return 1
	mkdir "$f" || return 1
	echo 0 >"$f/protocol"
	echo 0 >"$f/subclass"
	echo 5 >"$f/report_length"
	# shellcheck disable=SC2059 # the descriptor is a printf format of octal escapes
	printf "$GADGET_MOUSE_DESC" >"$f/report_desc"
	ln -s "$f" "$GADGET/configs/c.1/"
	gadget_plug && waitfor 20 gadget_mouse_evdev_ready && udev_settle
}

# gadget_remove_mouse: take the mouse function out (the gadget unplugged).
gadget_remove_mouse() {
	[ -d "$GADGET/functions/hid.usb1" ] || return 0
	rm -f "$GADGET/configs/c.1/hid.usb1"
	rmdir "$GADGET/functions/hid.usb1"
}

gadget_mouse_evdev_ready() {
	local e
	e=$(gadget_evdev 1.1) && [ -c "$e" ]
}

# mouse_report BUTTONS X Y [WHEEL [PAN]]: send one mouse report (buttons: bit
# 0 left, 1 right, 2 middle; the others -127..127).
mouse_report() {
	local dev fmt="" v
	dev=$(cat "$GADGET/functions/hid.usb1/dev") || return 1
	dev="/dev/$(sed -n 's/^DEVNAME=//p' "/sys/dev/char/$dev/uevent")"
	for v in "$1" "$2" "$3" "${4:-0}" "${5:-0}"; do
		fmt="$fmt$(printf '\\%03o' $(((v + 256) % 256)))"
	done
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout -s KILL 5 sh -c 'printf "$1" >"$2"' report "$fmt" "$dev"
}

# mouse_source: the mouse's evdev node in $mev and its by-id link
# (...-event-mouse) in $mlink; a FAIL and status 1 when it has none.
mouse_source() {
	mev=$(gadget_evdev 1.1)
	mlink=$(udev_prop "$mev" DEVLINKS | tr ' ' '\n' | grep '^/dev/input/by-id/.*-event-mouse$' | head -n 1)
	check "the gadget mouse's evdev $mev has a by-id link: $mlink" test -n "$mlink"
}

# ---- typing on the gadget keyboard ----------------------------------------

# kbd_report MODIFIERS [USAGE...]: send one 8-byte boot keyboard report (up to six
# HID usages, e.g. 0x04 for "a"; 0x02 in MODIFIERS is left shift).  Gives up after
# 5 s, since the write blocks while no host driver reads the interrupt endpoint.
kbd_report() {
	local fmt u n=0 hidg
	hidg=$(gadget_hidg) || return 1
	fmt=$(printf '\\%03o\\000' $(($1)))
	shift
	for u in "$@"; do
		fmt="$fmt$(printf '\\%03o' $((u)))"
		n=$((n + 1))
	done
	while [ "$n" -lt 6 ]; do
		fmt="$fmt\\000"
		n=$((n + 1))
	done
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout -s KILL 5 sh -c 'printf "$1" >"$2"' report "$fmt" "$hidg"
}

# type_key USAGE...: press and release each key in turn.
type_key() {
	local u
	for u in "$@"; do
		kbd_report 0 "$u" && kbd_report 0 || return 1
	done
}

# ---- the gadget keyboard's lock lights ---------------------------------------
# What the host side sets on the keyboard's LEDs reaches the gadget as output
# reports (one byte: bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock), read from
# its /dev/hidgN: the lights a user would see.

# gadget_leds_start FILE: log each LED report to FILE, one decimal byte a line
# (from now on), in the background.
gadget_leds_start() {
	local hidg
	hidg=$(gadget_hidg) || return 1
	: >"$1"
	(while :; do
		dd if="$hidg" bs=8 count=1 2>/dev/null | od -An -tu1 | tr -d ' ' >>"$1" || exit 0
	done) &
}

# gadget_leds_are FILE VALUE: for waitfor: the last LED report in FILE is VALUE.
gadget_leds_are() {
	[ "$(tail -n 1 "$1")" = "$2" ]
}

# ---- evdev ----------------------------------------------------------------

# key_events FILE: the EV_KEY lines of an evread log on one line, without
# the kernel's autorepeat (value 2): a key held a little long on a busy
# machine repeats, which is not what the scenarios check.
key_events() {
	grep '^EV_KEY' "$1" | grep -v ' 2$' | tr '\n' ' '
}

# evread_start FILE [EVREAD-OPTIONS...] DEVICE: start evread in the background,
# output in FILE, and wait until it reads; its pid is in $EVREAD_PID.
evread_start() {
	local out=$1
	shift
	: >"$out"
	evread "$@" >"$out" 2>&1 &
	# shellcheck disable=SC2034 # for the scenario
	EVREAD_PID=$!
	wait_line 10 "$out" '^ready$'
}

# evread_stop FILE: end the evread of evread_start (output in FILE), for a
# check that nothing came: on SIGTERM it prints what the kernel had queued
# for it and says "stopped". Status 1 if it had ended before (its time
# limit or an error): then it did not see everything until now.
evread_stop() {
	kill -TERM "$EVREAD_PID" 2>/dev/null
	wait "$EVREAD_PID"
	grep -q '^stopped after [0-9]* events$' "$1"
}

# grab_refused DEV: another program's EVIOCGRAB of DEV fails with EBUSY
# (someone holds the grab), not for any other reason.
grab_refused() {
	local err
	err=$(evread -g -t 0 "$1" 2>&1 >/dev/null) && return 1
	[ "$err" = "evread: EVIOCGRAB: Device or resource busy" ] || {
		log "evread -g $1: ${err:-no error}"
		return 1
	}
}

# evdev_keys DEV: print the keys DEV holds down (EVIOCGKEY), e.g. "KEY_A", or "(none)".
evdev_keys() {
	evread -k -t 0 "$1" | sed -n 's/^keys: //p'
}

# keys_held DEV KEYS: for waitfor, does DEV hold exactly KEYS ("(none)" for none)?
keys_held() {
	[ "$(evdev_keys "$1")" = "$2" ]
}

# ---- the gadget keyboard as vmplug's input source ------------------------

# kbd_source: the gadget keyboard's evdev node in $ev and its by-id link
# (/dev/input/by-id/...-event-kbd, what a configuration names) in $link;
# a FAIL and status 1 when it has no link.
kbd_source() {
	ev=$(gadget_evdev)
	link=$(udev_prop "$ev" DEVLINKS | tr ' ' '\n' | grep '^/dev/input/by-id/.*-event-kbd$' | head -n 1)
	check "the gadget's evdev $ev has a by-id link: $link" test -n "$link"
}

# vmplug_rules_install / vmplug_rules_remove: the project's udev rule (a
# sink gets its by-id link and is hidden from the host's libinput) in
# /run/udev/rules.d, udevd reloaded.
vmplug_rules_install() {
	mkdir -p /run/udev/rules.d
	cp "$VMPLUG_SRC/data/60-vmplug.rules" /run/udev/rules.d/
	udevadm control --reload
}

vmplug_rules_remove() {
	rm -f /run/udev/rules.d/60-vmplug.rules
	udevadm control --reload
}

# input_proxy_conf LINK: $T/conf for input-proxy: the cache in $T/cache,
# the keyboard LINK as the input "kbd", and the VM pc with it.
input_proxy_conf() {
	mkdir -p "$T/conf/vm.d" "$T/cache"
	cat >"$T/conf/vmplug.conf" <<CONF
[daemon]
cache-dir = $T/cache
[input "kbd"]
device = $1
CONF
	cat >"$T/conf/vm.d/pc.conf" <<CONF
[vm]
qmp-socket = $T/pc.qmp
inputs = kbd
CONF
}

# input_proxy_start: input-proxy on $T/conf in the background (its pid in
# $PROXY_PID, stdout in $T/proxy.out, log in $T/proxy.log); checks that it
# gets ready, status 1 (and its log) if not.
input_proxy_start() {
	input-proxy "$T/conf" >"$T/proxy.out" 2>"$T/proxy.log" &
	# shellcheck disable=SC2034 # for the scenario
	PROXY_PID=$!
	check "input-proxy starts" wait_line 20 "$T/proxy.out" '^ready$' || {
		sed 's/^/  # /' "$T/proxy.log"
		return 1
	}
}

# ---- nested QEMU ----------------------------------------------------------
# nested_qemu_start NAME [QEMU-ARGS...] starts a paused (-S) TCG QEMU with an
# xhci controller (bus "xhci.0") and two QMP monitors: $T/NAME.qmp for the
# program under test and $T/NAME.check for the scenario (a QMP socket serves one
# client at a time).  Its stderr goes to $T/NAME.err.

nested_qmp_socket() {
	echo "$T/$1.qmp"
}

nested_check_socket() {
	echo "$T/$1.check"
}

pid_running() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}

nested_qemu_start() {
	local name=$1
	shift
	[ -x "$NESTED_QEMU" ] || {
		fail "no $NESTED_QEMU in the shared /usr"
		return 1
	}
	"$NESTED_QEMU" -name "$name" -machine q35 -accel tcg -S -m 64 \
		-display none -nodefaults -no-user-config \
		-device qemu-xhci,id=xhci \
		-qmp "unix:$T/$name.qmp,server=on,wait=off" \
		-chardev "socket,id=check,path=$T/$name.check,server=on,wait=off" \
		-mon chardev=check,mode=control \
		"$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" &
	echo $! >"$T/$name.pid"
	if ! qmp-client -t "$QMP_TIMEOUT" "$T/$name.check"; then
		fail "nested QEMU $name answers QMP"
		sed 's/^/  # qemu: /' "$T/$name.err"
		return 1
	fi
}

# nested_qemu_keys NAME [QEMU-ARGS...]: a QEMU without CPUs (-machine none)
# with the same two monitors, running: it passes input events on (a stopped
# VM drops them), and its trace ($T/NAME.err) shows each key it got
# (qemu_got); more -trace in QEMU-ARGS show more.
nested_qemu_keys() {
	local name=$1
	shift
	"$NESTED_QEMU" -name "$name" -machine none -display none -nodefaults -no-user-config \
		-trace input_event_key_qcode "$@" \
		-qmp "unix:$T/$name.qmp,server=on,wait=off" \
		-chardev "socket,id=check,path=$T/$name.check,server=on,wait=off" \
		-mon chardev=check,mode=control </dev/null >"$T/$name.out" 2>"$T/$name.err" &
	echo $! >"$T/$name.pid"
	check "QEMU answers QMP" qmp-client -t "$QMP_TIMEOUT" "$T/$name.check" || return 1
	qmp "$name" cont >/dev/null
}

# qemu_got NAME KEY: the trace of nested_qemu_keys NAME shows KEY (a QEMU
# qcode: a, b, ...) pressed and released.
qemu_got() {
	grep -q "key qcode $2, down 1" "$T/$1.err" && grep -q "key qcode $2, down 0" "$T/$1.err"
}

pid_gone() {
	! pid_running "$1"
}

# nested_qemu_stop NAME: quit it over QMP; kill it if it does not go.
nested_qemu_stop() {
	local pid
	[ -f "$T/$1.pid" ] || return 0
	pid=$(cat "$T/$1.pid")
	rm -f "$T/$1.pid"
	if pid_running "$pid"; then
		qmp-client -t 5000 "$T/$1.check" quit >/dev/null 2>&1
		if ! waitfor 10 pid_gone "$pid"; then
			log "nested QEMU $1 did not quit, killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# qmp [QMP-CLIENT-OPTIONS...] NAME COMMAND [ARGUMENTS-JSON]: run one command on
# NAME's check monitor and print the reply (-r: the return value, -H: its
# human-readable-text, -w EVENT[:DEVICE]: also wait for that event).
qmp() {
	_qmp check "$@"
}

# qmp_main ...: the same on NAME's primary QMP socket ($T/NAME.qmp).
qmp_main() {
	_qmp qmp "$@"
}

_qmp() {
	local sock=$1 opts=""
	shift
	while :; do
		case $1 in
		-w | -t)
			opts="$opts $1 $2"
			shift 2
			;;
		-*)
			opts="$opts $1"
			shift
			;;
		*) break ;;
		esac
	done
	local name=$1
	shift
	# shellcheck disable=SC2086 # opts holds separate words without spaces
	qmp-client -t "$QMP_TIMEOUT" $opts "$T/$name.$sock" "$@"
}

# ---- vmplugd ---------------------------------------------------------------
# vmplugd_start CONFDIR [ARGS...]: the vmplugd of the build tree, in the
# foreground of a background job, logging to $T/vmplugd.log; waits until its
# control socket answers (the configuration must put it in CONFDIR).

vmplugd_answers() {
	"$VMPLUG_BUILD/vmplugctl" -s "$1/control.sock" status >/dev/null 2>&1
}

vmplugd_start() {
	local conf=$1
	shift
	"$VMPLUG_BUILD/vmplugd" -f -c "$conf" "$@" 2>>"$T/vmplugd.log" &
	echo $! >"$T/vmplugd.pid"
	# (the socket first: a test is cheap, a vmplugctl call is not under TCG)
	waitfor 30 test -S "$conf/control.sock"
	if ! waitfor 30 vmplugd_answers "$conf"; then
		fail "vmplugd starts"
		sed 's/^/  # vmplugd: /' "$T/vmplugd.log"
		return 1
	fi
}

# vmplugd_stop [SIGNAL]: TERM by default, KILL for a crash. Checks how
# it ended: SIGTERM, a clean exit (status 0) within 20 s; SIGKILL, killed
# (status 137); and in both cases no sanitizer report in its log.
vmplugd_stop() {
	local pid sig=${1:-TERM} want=0 status
	[ -f "$T/vmplugd.pid" ] || return 0
	pid=$(cat "$T/vmplugd.pid")
	rm -f "$T/vmplugd.pid"
	kill "-$sig" "$pid" 2>/dev/null
	if ! waitfor 20 pid_gone "$pid"; then
		log "vmplugd did not exit within 20 s of SIG$sig: killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid"
	status=$?
	[ "$sig" = KILL ] && want=137
	check "vmplugd ends with status $want on SIG$sig" test "$status" = "$want" ||
		log "vmplugd's exit status: $status"
	vmplugd_log_clean
}

# vmplugd_log_clean: check that vmplugd's log has no report of ASan,
# LeakSanitizer or UBSan (a build with --enable-asan writes them there).
vmplugd_log_clean() {
	check "vmplugd's log has no sanitizer report" sanitizer_clean "$T/vmplugd.log"
}

# sanitizer_clean FILE: FILE holds no sanitizer report (else they are shown).
sanitizer_clean() {
	local re='ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer'

	[ -f "$1" ] || return 1
	grep -E "$re" "$1" | sed 's/^/  # /'
	! grep -q -E "$re" "$1"
}

# vmplugd_adopted VM ID: a vmplugd restarted with -v (its QMP traffic in
# its log) took the one device QEMU VM had, ID, as it was. The reconciler
# decides when the VM's list comes back, so once status answers after
# "ready" anything it sent is in the log: no add-fd, no device_add, and
# status shows ID attached, nothing pending.
vmplugd_adopted() {
	local st
	st=$("$VMPLUG_BUILD/vmplugctl" -s "$T/conf/control.sock" status)
	check "vmplugd restarted: $1 has $2 attached, nothing pending" \
		_one_attached "$st" "$1" "$2" || printf '%s\n' "$st" | sed 's/^/  # /'
	check "vmplugd restarted: its QMP traffic is in its log" \
		grep -q "vm $1: qmp -> {\"execute\":\"qom-list\"" "$T/vmplugd.log"
	check "vmplugd restarted: nothing attached again (no add-fd, no device_add)" \
		_sent_no_attach "$1"
}

# _sent_no_attach VM: vmplugd's log has no add-fd or device_add sent to VM.
_sent_no_attach() {
	lacks "$T/vmplugd.log" "vm $1: qmp -> {\"execute\":\"add-fd\"" &&
		lacks "$T/vmplugd.log" "vm $1: qmp -> {\"execute\":\"device_add\""
}

# _one_attached STATUS VM ID: vmplugctl's STATUS shows VM running with one
# USB device and nothing pending, and ID attached.
_one_attached() {
	matches "$1" "^$2 *qmp *running *1 *0 " && matches "$1" "^  $3 *attached "
}

# vmplug_conf DIR: a vmplug.conf with its control socket and cache in DIR
# (VM files come from the scenario), with the modes vmplugd insists on.
vmplug_conf() {
	mkdir -p "$1/vm.d" "$1/cache"
	cat >"$1/vmplug.conf" <<CONF
[daemon]
control-socket = $1/control.sock
cache-dir = $1/cache
CONF
	chmod -R go-w "$1"
}

# vmplug_input_conf DIR LINK [LINE...]: vmplug_conf DIR, then the LINEs
# (more of [daemon], or sections of their own) and the keyboard LINK as the
# input "kbd".
vmplug_input_conf() {
	local dir=$1 link=$2
	shift 2
	vmplug_conf "$dir"
	{
		[ $# -eq 0 ] || printf '%s\n' "$@"
		printf '[input "kbd"]\ndevice = %s\n' "$link"
	} >>"$dir/vmplug.conf"
}

# vm_conf DIR NAME [LINE...]: DIR/vm.d/NAME.conf, the VM NAME on the QMP
# socket $T/NAME.qmp (nested_qmp_socket NAME) with the input "kbd", the
# LINEs added to its [vm] section.
vm_conf() {
	local file="$1/vm.d/$2.conf" name=$2
	shift 2
	{
		printf '[vm]\nqmp-socket = %s\ninputs = kbd\n' "$(nested_qmp_socket "$name")"
		[ $# -eq 0 ] || printf '%s\n' "$@"
	} >"$file"
	chmod go-w "$file"
}

# usb_rules_conf DIR NAME [LINE...]: DIR/vm.d/NAME.conf, the VM NAME on the
# QMP socket $T/NAME.qmp with its USB devices on xhci.0, then the LINEs (its
# rules).
usb_rules_conf() {
	local file="$1/vm.d/$2.conf" name=$2
	shift 2
	{
		printf '[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n' "$(nested_qmp_socket "$name")"
		[ $# -eq 0 ] || printf '%s\n' "$@"
	} >"$file"
	chmod go-w "$file"
}

# usb_vm_conf DIR NAME [LINE...]: usb_rules_conf with one rule,
# "keyboard-port", for the gadget's port; the LINEs are added to the rule.
usb_vm_conf() {
	local dir=$1 name=$2
	shift 2
	usb_rules_conf "$dir" "$name" '[usb "keyboard-port"]' \
		"port = $(basename "$(gadget_sysfs)")" "$@"
}

# usb_ids NAME: the ids of the host devices QEMU NAME has really opened
# (x-query-usb shows the gadget's product string only then), one per line.
usb_ids() {
	qmp -H "$1" x-query-usb 2>/dev/null |
		sed -n "s/.*Product $GADGET_NAME, ID: \(.*\)\r*\$/\1/p"
}

# usb_ids_are NAME IDS: for waitfor.
usb_ids_are() {
	[ "$(usb_ids "$1" | tr '\n' ' ')" = "$2" ]
}

# ---- the emulated USB hardware ----------------------------------------------
# The outer QEMU's xhci controller and the devices of tests/e2e/usb-devices,
# which tests/e2e/run plugs in and unplugs over that QEMU's QMP when asked
# through the virtio-serial port "vmplug-e2e.broker" (one request, one answer).

USBHW_LIST=$E2E_DIR/usb-devices
# The first line of the storage device's disk, as tests/e2e/run makes it.
# shellcheck disable=SC2034 # for the scenarios
USBHW_DISK_LABEL=vmplug-e2e-usb-disk

# usbhw_broker_port: print the broker's /dev/vportNpM.
usbhw_broker_port() {
	local p
	for p in /sys/class/virtio-ports/*; do
		[ "$(cat "$p/name" 2>/dev/null)" = vmplug-e2e.broker ] || continue
		echo "/dev/${p##*/}"
		return 0
	done
	return 1
}

usbhw_available() {
	usbhw_broker_port >/dev/null
}

# usbhw_request REQUEST...: send one request to the broker (see run); prints
# what its "ok" carries; status 1 and a log line on "error".
usbhw_request() {
	local port reply
	port=$(usbhw_broker_port) || {
		log "no USB hardware broker (virtio-serial port vmplug-e2e.broker)"
		return 1
	}
	exec 8<>"$port" || return 1
	echo "$*" >&8
	read -r reply <&8
	exec 8>&-
	case $reply in
	ok) return 0 ;;
	"ok "*) echo "${reply#ok }" ;;
	*)
		log "broker: $* -> ${reply:-no answer}" >&2
		return 1
		;;
	esac
}

# usbhw_port NAME: NAME's port on QEMU's xhci.0 ("1.3").
usbhw_port() {
	awk -v n="$1" '!/^#/ && $1 == n { print $2; f = 1 } END { exit !f }' "$USBHW_LIST"
}

# usbhw_bus: the number of the xhci controller's USB 2 bus (its devices' BUS in BUS-PORT).
usbhw_bus() {
	local b
	for b in /sys/bus/pci/drivers/xhci_hcd/*/usb*; do
		[ "$(cat "$b/speed" 2>/dev/null)" = 480 ] || continue
		echo "${b##*/usb}"
		return 0
	done
	return 1
}

# usbhw_sysname NAME: the guest kernel's name of NAME's port ("3-1.3").
usbhw_sysname() {
	local bus port
	bus=$(usbhw_bus) && port=$(usbhw_port "$1") && echo "$bus-$port"
}

# usbhw_sysfs NAME: NAME's /sys/bus/usb/devices directory (whether plugged in or not).
usbhw_sysfs() {
	local n
	n=$(usbhw_sysname "$1") && echo "/sys/bus/usb/devices/$n"
}

usbhw_present() {
	local d
	d=$(usbhw_sysfs "$1") && [ -f "$d/devnum" ]
}

usbhw_absent() {
	! usbhw_present "$1"
}

# usbhw_devnum NAME / usbhw_busnum NAME
usbhw_devnum() {
	local d
	d=$(usbhw_sysfs "$1") && cat "$d/devnum"
}

usbhw_busnum() {
	local d
	d=$(usbhw_sysfs "$1") && cat "$d/busnum"
}

# usbhw_driver NAME: the driver of NAME's first interface in the guest kernel, or "none".
usbhw_driver() {
	local d
	d=$(usbhw_sysfs "$1") && interface_driver "$d"
}

# usbhw_vmplug_id NAME: the id vmplugd gives NAME in a VM (vmplug-usb-BUS-DEV).
usbhw_vmplug_id() {
	local d
	d=$(usbhw_sysfs "$1") && echo "vmplug-usb-$(cat "$d/busnum")-$(cat "$d/devnum")"
}

# usbhw_all NAME...: are all of them present (for waitfor)?
usbhw_all() {
	local n
	for n; do
		usbhw_present "$n" || return 1
	done
}

usbhw_none() {
	local n
	for n; do
		usbhw_absent "$n" || return 1
	done
}

# usbhw_do REQUEST UNTIL WHY NAME...: send "REQUEST NAME...", then wait until
# "UNTIL NAME..." holds and udev is done; logs WHY when it does not.
usbhw_do() {
	local request=$1 until=$2 why=$3
	shift 3
	usbhw_request "$request" "$@" >/dev/null || return 1
	waitfor 30 "$until" "$@" || {
		log "$why after 30 s: $*"
		return 1
	}
	udev_settle
}

# usbhw_plug NAME...: have the outer QEMU plug them in (a device behind a hub
# after the hub), then wait until the guest kernel has each and udev is done.
usbhw_plug() {
	usbhw_do plug usbhw_all "not enumerated" "$@"
}

# usbhw_unplug NAME...: have them unplugged (a hub with what is behind it)
# and wait until the guest kernel has let them go.
usbhw_unplug() {
	usbhw_do unplug usbhw_none "still there" "$@"
}

# usbhw_replug NAME...: unplug them, then plug them in again in this order.
usbhw_replug() {
	usbhw_unplug "$@" && usbhw_plug "$@"
}

# usbhw_cycle N NAME...: N quick unplug/plug cycles, done by the host side
# without waiting for the guest; they end plugged in.
usbhw_cycle() {
	usbhw_request cycle "$@" >/dev/null
}

# usbhw_reset: unplug whatever is plugged in (run after each scenario).
usbhw_reset() {
	local was
	was=$(usbhw_request reset) || return 1
	[ -z "$was" ] || udev_settle
}

# vm_usb VM: the USB devices nested QEMU VM has, "ID PRODUCT" a line
# (x-query-usb: a usb-host device shows its product's own name once QEMU has
# really opened the host device, "USB Host Device" before).
vm_usb() {
	qmp -H "$1" x-query-usb 2>/dev/null | tr -d '\r' |
		sed -n 's/.*, Product \(.*\), ID: \(.*\)$/\2 \1/p'
}

# vm_has_usb VM [NAME...]: for waitfor: QEMU VM has the emulated devices NAME
# (tests/e2e/usb-devices) as vmplugd attaches them, each opened, and nothing
# else.  What it had and wanted is in $T/VM.usb and $T/VM.want.
vm_has_usb() {
	local vm=$1 n
	shift
	for n; do
		usbhw_vmplug_id "$n" || echo "$n-unplugged"
	done | sort >"$T/$vm.want"
	vm_usb "$vm" | sort >"$T/$vm.usb"
	! grep -q ' USB Host Device$' "$T/$vm.usb" &&
		[ "$(cut -d' ' -f1 "$T/$vm.usb")" = "$(cat "$T/$vm.want")" ]
}

# vm_holds VM NAME: QEMU VM's usb-host device for NAME has NAME's bus and
# address as its properties (what QEMU opened, not only vmplugd's name for it).
vm_holds() {
	local id path
	id=$(usbhw_vmplug_id "$2") || return 1
	path="{\"path\": \"/machine/peripheral/$id\", \"property\":"
	[ "$(qmp -r "$1" qom-get "$path \"hostbus\"}")" = "$(usbhw_busnum "$2")" ] &&
		[ "$(qmp -r "$1" qom-get "$path \"hostaddr\"}")" = "$(usbhw_devnum "$2")" ]
}

# check_vm_usb TEXT VM [NAME...]: check that QEMU VM comes to have exactly
# the devices NAME (vm_has_usb) within $VM_USB_WAIT seconds (default 60);
# logs what it has when not.
check_vm_usb() {
	local text=$1
	shift
	check "$text" waitfor "${VM_USB_WAIT:-60}" vm_has_usb "$@" && return 0
	log "$1 has: $(tr '\n' ';' <"$T/$1.usb")"
	log "$1 should have: $(tr '\n' ' ' <"$T/$1.want")"
	return 1
}

# ---- cleanup --------------------------------------------------------------

_e2e_cleanup() {
	local p
	vmplugd_stop TERM
	for p in "$T"/*.pid; do
		[ -f "$p" ] || continue
		p=${p##*/}
		nested_qemu_stop "${p%.pid}"
	done
}
trap _e2e_cleanup EXIT
