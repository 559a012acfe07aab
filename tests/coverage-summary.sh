#!/bin/bash
# Lines and branches covered per folder, from gcovr's JSON summary (make
# coverage), as a Markdown table: one row per top folder of the source
# tree, then the total.
# Usage: tests/coverage-summary.sh coverage/summary.json
set -euo pipefail
jq -r '
	def pct(c; t): if t == 0 then "-"
		else (c * 1000 / t | floor) as $p | "\($p / 10 | floor).\($p % 10) %" end;
	def row(name; f): "| \(name) | \(pct(f.lc; f.lt)) (\(f.lc)/\(f.lt)) | \(pct(f.bc; f.bt)) (\(f.bc)/\(f.bt)) |";
	def sums: { lc: (map(.line_covered) | add), lt: (map(.line_total) | add),
		    bc: (map(.branch_covered) | add), bt: (map(.branch_total) | add) };
	"| folder | lines | branches |",
	"| --- | --- | --- |",
	(.files | group_by(.filename | split("/")[0])[] |
		row("`\(.[0].filename | split("/")[0])/`"; sums)),
	row("all"; .files | sums)
' "$1"
