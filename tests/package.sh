#!/bin/bash
# The Debian package as a user makes and installs it, in a throwaway copy
# of this machine (an overlay on its root file system, in a private mount
# namespace, gone when the test ends): from a clean copy of the source
# tree, the commands of the README's "Install from a package" build
# vmplug_*.deb and install it; lintian finds no error and no warning but
# those debian/README.source keeps; the package holds what `make install`
# installs and nothing else, makes the group vmplug and enables the unit;
# `apt-get purge` leaves nothing of it but the administrator's
# /etc/vmplug. The .deb stays in BUILD/tests/package/.
. "$(dirname "$0")/lib/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (a mount namespace, an overlay on /, chroot)"
for tool in dpkg-buildpackage:dpkg-dev lintian:lintian dh:debhelper unshare:util-linux; do
	command -v "${tool%%:*}" >/dev/null ||
		skip_all "${tool%%:*} is not installed (apt-get install ${tool#*:})"
done
# Everything below runs in a mount namespace of its own: the mounts go
# with it, whatever happens.
if [ -z "${VMPLUG_PACKAGE_NS:-}" ]; then
	VMPLUG_PACKAGE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi

make_scratch
# The overlay's upper layer must be on another file system than its lower
# one (/): a tmpfs, which also holds the build.
fs=$SCRATCH/fs
root=$fs/root
upper=$fs/upper
mkdir -p "$fs"
mount -t tmpfs -o mode=755 vmplug-package "$fs" || bail "cannot mount a tmpfs"
# (unmounted first: the root's /proc must not be walked by rm -rf)
trap 'umount -R "$fs" 2>/dev/null || umount -R -l "$fs"; rm_scratch' EXIT
mkdir -p "$upper" "$fs/work" "$root"
mount -t overlay vmplug-package -o "lowerdir=/,upperdir=$upper,workdir=$fs/work" "$root" ||
	bail "cannot mount an overlay on / (no overlayfs?)"
mount -t proc proc "$root/proc"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
ln -s /proc/self/fd "$root/dev/fd"

# inroot CMD...: CMD in the throwaway root, with a clean environment.
inroot() {
	chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive DEB_BUILD_OPTIONS="parallel=${JOBS:-$(nproc)}" "$@"
}

# --- a clean copy of the source tree: what a checkout has (tracked files
# and new ones not ignored), or the whole tree of a release tarball.
src=$top_srcdir
tree=$root/build/vmplug
mkdir -p "$tree"
if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
		(cd "$src" && tar --null -T - -cf -) | tar -C "$tree" -xf -
else
	cp -a "$src/." "$tree/"
fi
check "a clean copy of the source tree has debian/" test -x "$tree/debian/rules"

upstream=$(sed -n 's/^AC_INIT(\[vmplug\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac")
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
check "debian/changelog's version ($version) is configure.ac's ($upstream) plus a revision" \
	test "${version%-*}" = "$upstream"

# --- the README's commands, as written, in the tree's copy
cmds=$(awk '/^## Install from a package/ { s = 1 } s && /^```sh/ { c = 1; next }
	c && /^```/ { exit } c' "$src/README.md")
diag "README, Install from a package:"
while IFS= read -r line; do diag "  $line"; done <<<"$cmds"
check "the README has the commands of 'Install from a package'" test -n "$cmds"
log=$SCRATCH/install.log
inroot bash -euxc "cd /build/vmplug; $cmds" >"$log" 2>&1
rc=$?
check "they build the package and install it (status $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || {
	tail -n 40 "$log" | sed 's/^/# /'
	done_testing
}
debs=("$root"/build/vmplug_*.deb)
check "dpkg-buildpackage made one vmplug_*.deb: ${debs[*]##*/}" \
	test ${#debs[@]} -eq 1 -a -f "${debs[0]}"
check "the unit tests ran in the package build" grep -q '^PASS: tests/unit/test-conf' "$log"
mkdir -p "$top_builddir/tests/package"
rm -f "$top_builddir"/tests/package/vmplug_*.deb
cp "${debs[0]}" "$top_builddir/tests/package/"

# --- lintian: no error, and only the warnings debian/README.source keeps
changes=("$root"/build/vmplug_*.changes)
lintian --tag-display-limit 0 "${changes[0]}" >"$SCRATCH/lintian" 2>&1
sed 's/^/# lintian: /' "$SCRATCH/lintian"
check "lintian: no errors" bash -c '! grep -q "^E: " "$1"' _ "$SCRATCH/lintian"
kept=$(sed -n 's/^ - \([a-z0-9.+-]*\): .*/\1/p' "$src/debian/README.source")
warned=$(sed -n 's/^W: [^ ]*: \([a-z0-9.+-]*\).*/\1/p' "$SCRATCH/lintian" | sort -u)
for tag in $warned; do
	check "lintian warning $tag is one debian/README.source keeps" grep -qxF "$tag" <<<"$kept"
done
for tag in $kept; do
	check "debian/README.source keeps $tag, which lintian still gives" grep -qxF "$tag" <<<"$warned"
done

# --- what is installed
check "vmplug is installed" \
	test "$(inroot dpkg-query -W -f='${db:Status-Abbrev}' vmplug)" = "ii "
expected=$SCRATCH/expected
{
	printf '%s\n' /usr/sbin/vmplugd /usr/bin/vmplugctl \
		/usr/share/man/man8/vmplugd.8.gz /usr/share/man/man5/vmplug.conf.5.gz \
		/usr/share/man/man1/vmplugctl.1.gz /lib/udev/rules.d/60-vmplug.rules \
		/lib/systemd/system/vmplugd.service /usr/share/dbus-1/system.d/org.vmplug.Switch1.conf \
		/usr/share/bash-completion/completions/vmplugctl /usr/lib/sysusers.d/vmplug.conf \
		/usr/share/doc/vmplug/copyright /usr/share/doc/vmplug/changelog.Debian.gz \
		/usr/share/doc/vmplug/README.md.gz /usr/share/doc/vmplug/SECURITY.md.gz \
		/usr/share/doc/vmplug/examples/vmplugd.openrc /usr/share/doc/vmplug/examples/vmplugd.confd \
		/usr/bin/vmplug-agent /usr/share/man/man1/vmplug-agent.1.gz \
		/usr/lib/systemd/user/vmplug-agent.service /etc/xdg/autostart/vmplug-agent.desktop
	# the libvirt backend, a module in the package's private directory
	echo "/usr/lib/$(inroot dpkg-architecture -qDEB_HOST_MULTIARCH)/vmplug/vmplug-libvirt.so"
	(cd "$src/data/examples" && find . -type f | sed 's|^\./|/usr/share/doc/vmplug/examples/|; s|\.in$||')
} | sort >"$expected"
inroot dpkg -L vmplug | sort >"$SCRATCH/listed"
while read -r f; do [ -f "$root$f" ] && [ ! -L "$root$f" ] && echo "$f"; done \
	<"$SCRATCH/listed" >"$SCRATCH/files"
while read -r f; do
	check "installed: $f" grep -qxF "$f" "$SCRATCH/files"
done <"$expected"
extra=$(comm -13 "$expected" "$SCRATCH/files")
check "nothing else is installed" test -z "$extra"
[ -z "$extra" ] || diag "unexpected:" "$extra"
check "no configuration file (conffile) but the agent's autostart entry: /etc/vmplug is the administrator's" \
	test "$(inroot dpkg-query -W -f='${Conffiles}' vmplug | awk 'NF { print $1 }')" = \
	/etc/xdg/autostart/vmplug-agent.desktop
check "the installed vmplugd runs" inroot vmplugd --version
check "the installed vmplugctl runs" inroot vmplugctl --help
check "the bash completion completes vmplugctl" \
	inroot bash -c '. /usr/share/bash-completion/completions/vmplugctl && complete -p vmplugctl'
check "postinst made the group vmplug (systemd-sysusers)" inroot getent group vmplug
check "postinst enabled vmplugd.service" \
	test "$(inroot systemctl is-enabled vmplugd.service)" = enabled
unit=$root/lib/systemd/system/vmplugd.service
check "the unit runs the installed vmplugd" grep -qx 'ExecStart=/usr/sbin/vmplugd -f' "$unit"
check "the unit waits for a configuration (/etc/vmplug)" \
	grep -qx 'ConditionPathExists=/etc/vmplug' "$unit"

# --- purge: what vmplugd made as a service goes, the administrator's
# configuration stays.
mkdir -p "$root/var/cache/vmplug" "$root/etc/vmplug"
echo '{}' >"$root/var/cache/vmplug/kbd.json"
echo '[daemon]' >"$root/etc/vmplug/vmplug.conf"
inroot apt-get purge -y vmplug >"$SCRATCH/purge.log" 2>&1
rc=$?
check "apt-get purge vmplug succeeds" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$SCRATCH/purge.log"
check "vmplug is no longer installed" bash -c '! chroot "$1" dpkg-query -W vmplug >/dev/null 2>&1' _ "$root"
left=$(while read -r f; do [ -e "$root$f" ] || [ -L "$root$f" ] && echo "$f"; done <"$SCRATCH/files")
check "every file of the package is gone" test -z "$left"
[ -z "$left" ] || diag "left:" "$left"
check "the cache /var/cache/vmplug is gone" test ! -e "$root/var/cache/vmplug"
check "the unit is no longer enabled" \
	test ! -e "$root/etc/systemd/system/multi-user.target.wants/vmplugd.service" -a \
	! -L "$root/etc/systemd/system/multi-user.target.wants/vmplugd.service"
check "the administrator's /etc/vmplug stays" test -f "$root/etc/vmplug/vmplug.conf"
# Nothing the package or its scripts made is left: no file named after it
# in the layer that took every change, but /etc/vmplug and the build.
named=$(cd "$upper" && find . -name '*vmplug*' ! -path './etc/vmplug*' ! -path './build/*' |
	sed 's|^\.||')
check "nothing named after vmplug is left on the system" test -z "$named"
[ -z "$named" ] || diag "left:" "$named"
done_testing
