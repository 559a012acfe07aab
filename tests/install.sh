#!/bin/bash
# `make install DESTDIR=...` puts every file where it belongs with the
# right mode and nothing else, never anything under /etc but the desktop
# agent's XDG autostart entry (where the XDG spec wants it); the sysusers.d
# file makes the group vmplug; the systemd unit
# passes `systemd-analyze verify` (its ExecStart and its man pages are the
# installed ones); the OpenRC and runit scripts parse and pass only
# options vmplugd has; the example configuration is valid; and
# `make uninstall` removes every file again.
. "$(dirname "$0")/lib/tap.sh"
make_scratch

root=$SCRATCH/root
# The nested make must not inherit the outer one's jobserver or flags.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" "$@"; }

bindir='' sbindir='' sysconfdir='' mandir='' docdir='' udevrulesdir=''
systemdsystemunitdir='' dbuspolicydir='' bashcompletiondir='' sysusersdir='' pkglibdir=''
systemduserunitdir='' xdgautostartdir=''
eval "$(mk print-install-dirs)" || bail "cannot ask make for the installation directories"
have_systemd=no have_libvirt=no
grep -q '^#define HAVE_SYSTEMD 1' "$top_builddir/config.h" && have_systemd=yes
grep -q '^#define HAVE_LIBVIRT 1' "$top_builddir/config.h" && have_libvirt=yes

mk install DESTDIR="$root" >"$SCRATCH/install.log" 2>&1
rc=$?
check "make install DESTDIR=... succeeds" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$SCRATCH/install.log" | tail -n 20

# expected PATH MODE: one line per file that must be installed
expected=$SCRATCH/expected
{
	echo "$sbindir/vmplugd 755"
	echo "$bindir/vmplugctl 755"
	# the libvirt backend, a module vmplugd loads for libvirt VMs
	[ "$have_libvirt" = no ] || echo "$pkglibdir/vmplug-libvirt.so 755"
	echo "$mandir/man8/vmplugd.8 644"
	echo "$mandir/man5/vmplug.conf.5 644"
	echo "$mandir/man1/vmplugctl.1 644"
	echo "$udevrulesdir/60-vmplug.rules 644"
	echo "$bashcompletiondir/vmplugctl 644"
	[ -z "$sysusersdir" ] || echo "$sysusersdir/vmplug.conf 644"
	if [ "$have_systemd" = yes ]; then
		echo "$systemdsystemunitdir/vmplugd.service 644"
		# vmplug-agent (sd-bus), its manual, user unit and autostart entry
		echo "$bindir/vmplug-agent 755"
		echo "$mandir/man1/vmplug-agent.1 644"
		echo "$systemduserunitdir/vmplug-agent.service 644"
		echo "$xdgautostartdir/vmplug-agent.desktop 644"
		# the D-Bus policies in data/
		for f in "$top_srcdir"/data/*.conf; do
			[ -f "$f" ] && grep -q '<busconfig' "$f" &&
				echo "$dbuspolicydir/$(basename "$f") 644"
		done
	fi
	echo "$docdir/examples/vmplugd.openrc 755"
	echo "$docdir/examples/vmplugd.confd 644"
	# everything under data/examples, generated ones without .in;
	# scripts (run) executable
	(cd "$top_srcdir/data/examples" && find . -type f | sed 's|^\./||; s|\.in$||') |
		while read -r f; do
			case $f in
			*/run | on-switch-*) echo "$docdir/examples/$f 755" ;;
			*) echo "$docdir/examples/$f 644" ;;
			esac
		done
} | sort >"$expected"

while read -r path mode; do
	check "installed: $path (mode $mode)" \
		test -f "$root$path" -a "$(stat -c %a "$root$path" 2>/dev/null)" = "$mode"
done <"$expected"
(cd "$root" && find . -type f -o -type l) | sed 's|^\.||' | sort >"$SCRATCH/installed"
extra=$(comm -13 <(cut -d' ' -f1 "$expected") "$SCRATCH/installed")
check "nothing else is installed" test -z "$extra"
[ -z "$extra" ] || diag "unexpected:" "$extra"
# under_etc DIR: the files under DIR in DESTDIR but the agent's autostart entry
under_etc() { [ ! -e "$root$1" ] || (cd "$root$1" && find . -type f -o -type l | grep -v '^\./xdg/autostart/vmplug-agent\.desktop$'); }
check "nothing is installed under /etc (but the XDG autostart entry)" test -z "$(under_etc /etc)"
check "nothing is installed under sysconfdir ($sysconfdir, but the XDG autostart entry)" \
	test -z "$(under_etc "$sysconfdir")"
check "the installed vmplugd runs" "$root$sbindir/vmplugd" --version

# --- the systemd unit
unit=$root$systemdsystemunitdir/vmplugd.service
if [ "$have_systemd" != yes ]; then
	skip "systemd unit: built without libsystemd, so none is installed"
elif ! command -v systemd-analyze >/dev/null; then
	not_ok "systemd-analyze is installed (apt-get install systemd)"
else
	check "the unit starts the installed vmplugd in the foreground" \
		grep -qx "ExecStart=$sbindir/vmplugd -f" "$unit"
	# verify checks that ExecStart exists and that the Documentation=
	# man pages open: point both into DESTDIR.
	mkdir -p "$SCRATCH/unit"
	sed "s|^ExecStart=$sbindir/|ExecStart=$root$sbindir/|" "$unit" >"$SCRATCH/unit/vmplugd.service"
	if command -v man >/dev/null; then
		manopt=--man=yes
	else
		manopt=--man=no
		diag "man is not installed: the Documentation= pages are not checked"
	fi
	out=$(cd "$SCRATCH/unit" && MANPATH=$root$mandir systemd-analyze verify $manopt \
		./vmplugd.service 2>&1)
	rc=$?
	check "systemd-analyze verify: no complaints" test "$rc" -eq 0 -a -z "$out"
	[ -z "$out" ] || diag "$out"
	check "the unit is Type=notify" grep -qx "Type=notify" "$unit"
	check "the unit keeps the sinks' fds in the fd store" grep -q "^FileDescriptorStoreMax=[1-9]" "$unit"
	check "the unit starts before libvirtd and virtqemud" \
		grep -qx "Before=libvirtd.service virtqemud.service" "$unit"
	score=$(systemd-analyze security --offline=true "$SCRATCH/unit/vmplugd.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for vmplugd.service: \([0-9.]*\).*/\1/p')
	diag "systemd-analyze security: exposure ${score:-unknown}"
	# (what is left is what vmplugd's job needs: SECURITY.md, "The service")
	check "systemd-analyze security: exposure at most 1.8 (got ${score:-none})" \
		awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.8) }'
	check "the unit has a watchdog" grep -q "^WatchdogSec=[1-9]" "$unit"
	check "the unit bounds tasks, memory and files" \
		sh -c 'grep -q "^TasksMax=[1-9]" "$1" && grep -q "^MemoryMax=[1-9]" "$1" && grep -q "^LimitNOFILE=[1-9]" "$1"' _ "$unit"
	check "the unit keeps only CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER" \
		grep -qx "CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER" "$unit"
	check "the unit gives no I2C bus (the ddcutil drop-in does)" \
		sh -c '! grep -q "char-i2c" "$1" && grep -qx "DeviceAllow=char-i2c rw" "$2"' _ "$unit" \
		"$root$docdir/examples/systemd/vmplugd.service.d/ddcutil.conf"
fi

# --- vmplug-agent: started by the user unit or the autostart entry
if [ "$have_systemd" = yes ]; then
	check "the user unit starts the installed vmplug-agent" \
		grep -qx "ExecStart=$bindir/vmplug-agent" "$root$systemduserunitdir/vmplug-agent.service"
	check "the user unit comes and goes with the graphical session" \
		grep -qx "PartOf=graphical-session.target" "$root$systemduserunitdir/vmplug-agent.service"
	check "the autostart entry starts the installed vmplug-agent" \
		grep -qx "Exec=$bindir/vmplug-agent" "$root$xdgautostartdir/vmplug-agent.desktop"
	check "systemd's generator skips the autostart entry (the user unit runs instead)" \
		grep -qx "X-systemd-skip=true" "$root$xdgautostartdir/vmplug-agent.desktop"
	check "the installed vmplug-agent runs" "$root$bindir/vmplug-agent" --version
fi

# --- the sysusers.d file: systemd-sysusers makes the group vmplug from it
if [ -n "$sysusersdir" ] && command -v systemd-sysusers >/dev/null; then
	mkdir -p "$SCRATCH/sysroot/etc"
	systemd-sysusers --root="$SCRATCH/sysroot" "$root$sysusersdir/vmplug.conf" >/dev/null 2>&1
	check "systemd-sysusers makes the group vmplug from the installed file" \
		grep -q '^vmplug:x:[0-9]*:$' "$SCRATCH/sysroot/etc/group"
fi

# --- OpenRC and runit
openrc=$root$docdir/examples/vmplugd.openrc
check "the OpenRC script parses (sh -n)" sh -n "$openrc"
check "the OpenRC script runs the installed vmplugd" grep -qx "command=\"$sbindir/vmplugd\"" "$openrc"
check "the OpenRC script reloads, and starts before libvirtd" \
	bash -c 'grep -q "^extra_started_commands=\"reload\"" "$1" && grep -q "before libvirtd" "$1"' _ "$openrc"
help=$("$VMPLUGD" --help)
sed -n 's/^command_args=//p' "$openrc" | grep -o -- '--[a-z-]*' >"$SCRATCH/opts"
while read -r o; do
	check "the OpenRC script's $o is a vmplugd option" grep -q -- "$o" <<<"$help"
done <"$SCRATCH/opts"
for f in "$root$docdir"/examples/runit/vmplugd/run "$root$docdir"/examples/runit/vmplugd/log/run; do
	check "runit: ${f#"$root$docdir"/} parses (sh -n)" sh -n "$f"
done
grep -o -- '--[a-z-]*' "$root$docdir/examples/runit/vmplugd/run" >"$SCRATCH/opts"
while read -r o; do
	check "the runit script's $o is a vmplugd option" grep -q -- "$o" <<<"$help"
done <"$SCRATCH/opts"

# --- the example configuration is valid
mkdir -p "$SCRATCH/conf"
cp -r "$root$docdir/examples/vmplug.conf" "$root$docdir/examples/vm.d" "$SCRATCH/conf/"
chmod -R go-w "$SCRATCH/conf"
out=$("$VMPLUGD" --check-config -c "$SCRATCH/conf" 2>&1)
rc=$?
check "the example configuration passes --check-config" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$out"

# --- uninstall
mk uninstall DESTDIR="$root" >"$SCRATCH/uninstall.log" 2>&1
check "make uninstall succeeds" test $? -eq 0
left=$(cd "$root" && find . -type f -o -type l)
check "make uninstall leaves no file behind" test -z "$left"
[ -z "$left" ] || diag "left:" "$left"
done_testing
