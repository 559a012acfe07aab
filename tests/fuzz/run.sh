#!/bin/bash
# Fuzz every target for FUZZ_SECONDS (default 25) with libFuzzer, from the
# committed corpus (tests/fuzz/corpus/NAME, read-only: new inputs go to a
# scratch dir). Run by `make check-fuzz` in a build configured with
# --enable-fuzzer. One TAP line per target; the log keeps libFuzzer's
# final stats (executions, coverage). A crash leaves its input in
# $top_builddir/tests/fuzz/crashes/: add it to the corpus as
# regression-WHAT so `make check` replays it from then on.
. "$(dirname "$0")/../lib/tap.sh"
make_scratch
secs=${FUZZ_SECONDS:-25}
crashes=$top_builddir/tests/fuzz/crashes
mkdir -p "$crashes"
for name in qmp conf control cache; do
	bin=$top_builddir/tests/fuzz/fuzz-$name
	if [ ! -x "$bin" ]; then
		not_ok "fuzz-$name: not built (configure --enable-fuzzer, then make check-fuzz)"
		continue
	fi
	mkdir -p "$SCRATCH/$name"
	out=$SCRATCH/$name.log
	# -rss_limit_mb: ASan's shadow memory is not counted against it
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -artifact_prefix="$crashes/$name-" \
		"$SCRATCH/$name" "$top_srcdir/tests/fuzz/corpus/$name" >"$out" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out")
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$out" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$done_line")
	diag "fuzz-$name: ${execs:-?} executions in ${secs} s, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?} (${rc})"
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		ok "fuzz-$name: no crash in $secs s"
	else
		not_ok "fuzz-$name: libFuzzer exited $rc"
		tail -n 40 "$out" | sed 's/^/# /'
		for f in "$crashes/$name-"*; do
			[ -e "$f" ] || continue
			diag "input that failed ($f), base64:"
			base64 -w 76 "$f" | head -n 40 | sed 's/^/#   /'
		done
	fi
done
done_testing
