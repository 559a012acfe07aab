#!/bin/bash
# The manual pages render without warnings and document every command-line
# option and every configuration key that the code knows.
. "$(dirname "$0")/lib/tap.sh"

command -v groff >/dev/null || skip_all "groff is not installed (apt-get install groff-base)"
man5=$top_builddir/man/vmplug.conf.5
man8=$top_builddir/man/vmplugd.8
man1=$top_builddir/man/vmplugctl.1

agent1=$top_builddir/man/vmplug-agent.1 # built with libsystemd only
[ -f "$agent1" ] || agent1=

for page in "$man5" "$man8" "$man1" $agent1; do
	# Every warning but "cannot adjust line": an installation path longer
	# than a line (make distcheck's prefix in a deep directory) leaves a
	# line of nothing but path, which groff cannot justify and leaves
	# ragged, as it should.
	out=$(groff -man -ww -z "$page" 2>&1 | grep -v ': warning .*: cannot adjust line$')
	check "$(basename "$page") renders without warnings" test -z "$out"
	[ -z "$out" ] || diag "$out"
	# Installation paths come from configure and may be long (a package's
	# build root, make distcheck's): each must be able to break after every
	# slash, or the line holding it cannot be filled and groff warns.
	in=$top_srcdir/man/$(basename "$page").in
	bad=$(grep -n '@\(CONFDIR\|DOCDIR\|sbindir\|DBUSPOLICYDIR\)@' "$in" | cut -d: -f1 |
		while read -r n; do
			sed -n "${n}p" "$page" | grep -q '/\\:' || echo "line $n"
		done | tr "\n" " ")
	check "$(basename "$page"): installation paths can break at their slashes" test -z "$bad"
	[ -z "$bad" ] || diag "no break points: $bad"
done

# Config keys: every entry of the key tables in conf/keys.c.
keys=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", key_[a-z_]*,.*/\1/p' "$top_srcdir/conf/keys.c")
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
# Options in the code's getopt tables: each in --help (and so, above, in
# the manual page).
code_opts() { sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*_argument,.*/--\1/p' "$1"; }
opts=$(code_opts "$top_srcdir/daemon/main.c")
check "found vmplugd's option table" test "$(wc -w <<<"$opts")" -ge 6
for o in $opts; do
	check "vmplugd --help lists $o (in daemon/main.c)" grep -qx -- "$o" <<<"$help_opts"
done
# The environment variables vmplugd reads, and the signals it handles.
vars=$(cat "$top_srcdir"/{daemon,control,util,loop,conf,reconcile,qmp,usb,input,backends}/*.c |
	grep -o 'getenv("[A-Z_]*")' | sed 's/getenv("\(.*\)")/\1/' | sort -u)
check "found the environment variables vmplugd reads" test -n "$vars"
env_section=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$man8")
for v in $vars; do
	check "vmplugd(8) ENVIRONMENT documents $v" grep -Eq "^\.BR? (.* )?$v( |$)" <<<"$env_section"
done
# (SIGCHLD only reaps vmplugd's own on-switch program: nothing for users)
sigs=$(grep -oh 'loop_add_signal([^,]*, SIG[A-Z]*' "$top_srcdir"/daemon/*.c | grep -o 'SIG[A-Z]*' |
	grep -vx SIGCHLD | sort -u)
check "found the signals vmplugd handles" test -n "$sigs"
sig_section=$(sed -n '/^\.SH SIGNALS/,/^\.SH /p' "$man8")
for sig in $sigs; do
	check "vmplugd(8) SIGNALS documents $sig" grep -Eq "^\.BR? (.* )?$sig( |\"|$)" <<<"$sig_section"
	check "vmplugd --help mentions $sig" grep -q "$sig" <<<"$("$VMPLUGD" --help)"
done

# vmplugctl: its options and commands, both ways.
ctl_help=$("$VMPLUGCTL" --help)
ctl_opts=$(grep -o -- '--[a-z-]*' <<<"$ctl_help" | sort -u)
for o in $ctl_opts; do
	check "vmplugctl(1) documents $o" grep -q -- "${o//-/\\\\-}" "$man1"
done
opts=$(code_opts "$top_srcdir/ctl/vmplugctl.c")
check "found vmplugctl's option table" test "$(wc -w <<<"$opts")" -ge 5
for o in $opts; do
	check "vmplugctl --help lists $o (in ctl/vmplugctl.c)" grep -qx -- "$o" <<<"$ctl_opts"
	check "vmplugctl(1) documents $o (in ctl/vmplugctl.c)" grep -q -- "${o//-/\\\\-}" "$man1"
done
ctl_cmds=$(sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p' <<<"$ctl_help")
check "found vmplugctl's commands in --help" test "$(wc -w <<<"$ctl_cmds")" -ge 8
for cmd in $ctl_cmds; do
	check "vmplugctl(1) documents command '$cmd'" grep -Eq "^\.(B|BI|BR) \"?$cmd( |\"|$)" "$man1"
done
man_cmds=$(sed -n '/^\.SH COMMANDS/,/^\.SH /{/^\.TP/{n;s/^\.B[IR]* "*\([a-z]*\).*/\1/p}}' "$man1" | sort -u)
for cmd in $man_cmds; do
	check "vmplugctl --help lists '$cmd' (named in vmplugctl(1))" grep -q "^  $cmd\b" <<<"$ctl_help"
done
# vmplug-agent(1) documents every option of vmplug-agent --help
if [ -n "$agent1" ]; then
	for o in $("$top_builddir/vmplug-agent" --help | grep -o -- '--[a-z-]*' | sort -u); do
		check "vmplug-agent(1) documents $o" grep -q -- "${o//-/\\\\-}" "$agent1"
	done
fi
done_testing
