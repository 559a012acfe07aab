#!/bin/bash
# Build the e2e helper programs into BUILD_DIR/tests/e2e/helpers when they are missing or stale.
# Usage: build.sh BUILD_DIR   (CC, CFLAGS and PKG_CONFIG are honoured)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: build.sh BUILD_DIR}
out=$build/tests/e2e/helpers
cc=${CC:-gcc}
cflags=${CFLAGS:--O2 -g}
pkgconfig=${PKG_CONFIG:-pkg-config}
warn=(-std=gnu11 -Wall -Wextra -Wno-unused-parameter)

# name:pkg-config modules
programs=(evread:libevdev uevmon:libudev uinput-kbd:libevdev qmp-client:jansson)

mkdir -p "$out"
for entry in "${programs[@]}"; do
	prog=${entry%%:*}
	mods=${entry#*:}
	src=$here/$prog.c
	bin=$out/$prog
	if [ -x "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$here/helper-util.h" ]; then
		continue
	fi
	# shellcheck disable=SC2046,SC2086 # pkg-config output and CFLAGS are word lists
	"$cc" "${warn[@]}" $cflags $("$pkgconfig" --cflags "$mods") -o "$bin.tmp" "$src" \
		$("$pkgconfig" --libs "$mods")
	mv "$bin.tmp" "$bin"
	echo "e2e: built $bin"
done
