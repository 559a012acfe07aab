#!/bin/bash
# QEMU attaches a fake USB device from a umockdev testbed: runs the
# umockdev-attach program under the umockdev preload, which QEMU, its
# child, inherits. The preload then comes before ASan's runtime in the
# library list, so ASan's link-order check is turned off (pitfalls.md).
. "$(dirname "$0")/../lib/tap.sh"

prog=$top_builddir/tests/integration/umockdev-attach
[ -x "$prog" ] || skip_all "built without umockdev (apt-get install umockdev libumockdev-dev, then configure)"
export LD_PRELOAD="libumockdev-preload.so.0${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "$top_srcdir/tests/run-test" "$prog"
