#!/bin/bash
# The manual pages render without warnings and document every command-line
# option and every configuration key that the code knows.
. "$(dirname "$0")/lib/tap.sh"

command -v groff >/dev/null || skip_all "groff is not installed (apt-get install groff-base)"
man5=$top_builddir/man/vmplug.conf.5
man8=$top_builddir/man/vmplugd.8

for page in "$man5" "$man8"; do
	out=$(groff -man -ww -z "$page" 2>&1)
	check "$(basename "$page") renders without warnings" test -z "$out"
	[ -z "$out" ] || diag "$out"
done

# Config keys: every entry of the key tables in conf/conf.c.
keys=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", key_[a-z_]*,.*/\1/p' "$top_srcdir/conf/conf.c")
check "found the config key tables" test "$(wc -w <<<"$keys")" -ge 20
for k in $keys; do
	check "vmplug.conf(5) documents key '$k'" grep -q "^\.BI ${k//-/\\\\-} " "$man5"
done
# Sections.
for s in daemon switch input vm usb usb-deny; do
	check "vmplug.conf(5) documents section [$s]" grep -q "^\.SS .*\[${s//-/\\\\-}[] ]" "$man5"
done

# Options: every long option vmplugd --help lists is in vmplugd(8), and the
# other way round.
help_opts=$("$VMPLUGD" --help | grep -o -- '--[a-z-]*' | sort -u)
for o in $help_opts; do
	check "vmplugd(8) documents $o" grep -q -- "${o//-/\\\\-}" "$man8"
done
man_opts=$(grep -o '\\-\\-[a-z\\-]*' "$man8" | sed 's/\\//g' | sort -u)
for o in $man_opts; do
	check "vmplugd --help lists $o (named in vmplugd(8))" grep -qx -- "$o" <<<"$help_opts"
done
done_testing
