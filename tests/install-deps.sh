#!/bin/bash
# Install what building and testing vmplug needs on Debian 12 (as root);
# with --demo, only what ./demo needs. Does nothing when everything is
# already there.
set -euo pipefail

packages=(
	# build
	gcc make autoconf automake pkg-config
	libudev-dev libevdev-dev libjansson-dev libinih-dev
	# optional backends and service integration
	libvirt-dev libxml2-dev libtirpc-dev libsystemd-dev
	# tests
	check valgrind clang-format groff-base shellcheck procps jq socat
	# tests/switch.sh: a private D-Bus system bus, dbus-send, dbus-monitor
	dbus
	# tests/agent.sh: a notification server under a virtual X server, and
	# the screenshot of the notification (xwd, netpbm)
	dunst xvfb x11-apps netpbm fonts-dejavu-core
	# fuzzing: clang with libFuzzer's runtime (only recommended by clang)
	clang libclang-rt-dev
	# tests/install.sh: systemd-analyze verify, and the man pages it opens
	systemd man-db
	qemu-system-x86 umockdev libumockdev-dev
	# tests/usb-remote.sh: a loopback in the test's namespace (ip); the
	# exporting side of usbredir ([usb-export])
	iproute2 usbredirect
	# the libvirt backend's tests: a private libvirtd, virsh, xmllint
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils
	# end-to-end tests: a Debian kernel booted under QEMU
	busybox-static cpio kmod
	# tests/package.sh: the Debian package, built and linted
	# (dpkg-buildpackage requires build-essential beside Build-Depends)
	dpkg-dev debhelper lintian build-essential
	# make coverage (a build configured with --enable-coverage)
	gcovr
)

# --demo: only what ./demo needs (build, QEMU, the throwaway guest).
if [ "${1:-}" = --demo ]; then
	packages=(
		gcc make autoconf automake pkg-config
		libudev-dev libevdev-dev libjansson-dev libinih-dev check
		qemu-system-x86 busybox-static cpio kmod xz-utils
	)
fi

missing=()
for p in "${packages[@]}"; do
	[[ $p == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages are installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
