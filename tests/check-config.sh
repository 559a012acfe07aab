#!/bin/bash
# vmplugd's command line: --check-config on good and bad configs, --help,
# --version, and bad usage.
. "$(dirname "$0")/lib/tap.sh"
make_scratch

corpus=$top_srcdir/tests/data/conf
# Copy a corpus case with the modes a root-owned config has, so the owner
# check (active when the tests run as root) judges the content only.
copy_case() {
	rm -rf "$SCRATCH/conf"
	cp -r "$corpus/$1" "$SCRATCH/conf"
	chmod -R u+w,go-w "$SCRATCH/conf"
}

copy_case good/full
out=$("$VMPLUGD" --check-config -c "$SCRATCH/conf" 2>"$SCRATCH/err")
rc=$?
check "--check-config on a good config exits 0" test "$rc" -eq 0
check "--check-config prints the effective config" \
	test "$out" = "$(cat "$corpus/good/full/expected")"
check "--check-config on a good config prints nothing on stderr" test ! -s "$SCRATCH/err"

copy_case bad/unknown-key-typo
out=$("$VMPLUGD" --check-config -c "$SCRATCH/conf" 2>"$SCRATCH/err")
rc=$?
check "--check-config on a bad config exits 1" test "$rc" -eq 1
check "--check-config on a bad config prints nothing on stdout" test -z "$out"
check "the error names file:line, the key and what is valid" \
	grep -qxF "$SCRATCH/conf/$(cat "$corpus/bad/unknown-key-typo/expected")" "$SCRATCH/err"
check "the error count closes the report" grep -qx "1 error(s) in $SCRATCH/conf" "$SCRATCH/err"

if [ "$(id -u)" = 0 ]; then
	copy_case good/minimal
	chmod g+w "$SCRATCH/conf/vm.d/one.conf"
	"$VMPLUGD" --check-config -c "$SCRATCH/conf" >/dev/null 2>"$SCRATCH/err"
	rc=$?
	check "as root, a group-writable VM file is refused (exit 1)" test "$rc" -eq 1
	check "as root, the refusal says why and how to fix it" \
		grep -q "refusing a file writable by group or others (mode 0664).*chmod go-w" "$SCRATCH/err"
else
	skip "owner checks apply when running as root"
	skip "owner checks apply when running as root"
fi

"$VMPLUGD" --check-config -c /nonexistent/dir >/dev/null 2>"$SCRATCH/err"
check "a missing config dir exits 1" test $? -eq 1
check "a missing config dir is named" grep -q "^/nonexistent/dir: cannot read" "$SCRATCH/err"

out=$("$VMPLUGD" --help)
check "--help exits 0 and documents every option" \
	bash -c 'for o in --config-dir --foreground --verbose --check-config --help --version; do grep -q -- "$o" <<<"$1" || exit 1; done' _ "$out"
check "--version prints the version" bash -c '[[ $("$1" --version) =~ ^vmplugd\ [0-9]+\.[0-9]+ ]]' _ "$VMPLUGD"
"$VMPLUGD" --no-such-option >/dev/null 2>"$SCRATCH/err"
check "an unknown option exits 2" test $? -eq 2
check "an unknown option points at --help" grep -q "Try 'vmplugd --help'" "$SCRATCH/err"
"$VMPLUGD" extra-arg >/dev/null 2>&1
check "a stray argument exits 2" test $? -eq 2
done_testing
