#!/bin/bash
# make check's entry to the end-to-end tests: runs tests/e2e/run, one TAP line per scenario.
# Skipped (with run's reason) where the run cannot happen, e.g. when not root.
# test-timeout: 3600 (tests/e2e/run stops each scenario at its own limit,
# and the whole guest run at their sum and 300 s, if this comes no sooner)
. "$(dirname "$0")/../lib/tap.sh"

out=$(mktemp /tmp/vmplug-e2e.XXXXXX)
trap 'rm -f "$out"' EXIT

status=0
# shellcheck disable=SC2086 # E2E_RUN_ARGS: options of run (check-systemd.sh)
"$top_srcdir/tests/e2e/run" --build-dir "$top_builddir" ${E2E_RUN_ARGS:-} >"$out" 2>&1 || status=$?
sed 's/^/# /' "$out"
if [ "$status" = 77 ]; then
	skip_all "$(sed -n 's/^e2e: SKIP: //p' "$out" | head -n 1)"
fi

# The guest runner closes each scenario with "== NAME: passed|failed|skipped (...)",
# after the scenario's own "SKIP reason" line when it skipped.
reason=
while IFS= read -r line; do
	case $line in
	"SKIP "*)
		reason=${line#SKIP }
		;;
	"== "*": passed ("*)
		name=${line#== }
		ok "${name%%:*}"
		;;
	"== "*": failed ("*)
		name=${line#== }
		not_ok "${name%%:*}"
		;;
	"== "*": skipped ("*)
		name=${line#== }
		skip "${name%%:*}: $reason"
		;;
	esac
done <"$out"

if [ "$status" != 0 ] && [ "$TAP_FAILED" = 0 ]; then
	not_ok "tests/e2e/run finished with status $status (see the output above)"
fi
done_testing
