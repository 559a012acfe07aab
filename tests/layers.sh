#!/bin/bash
# The house keeps its floors (DESIGN.md "Layers"): every #include "DIR/..."
# of a folder is one its row allows, the allowed arrows make no circle,
# every source folder has a row, and every name a folder's objects export
# from libvmplug.a carries one of its row's prefixes.
. "$(dirname "$0")/lib/tap.sh"

cd "$top_srcdir" || bail "no source dir"
builddir=${top_builddir:-.}

# The table: "| `DIR/` | `A/`, `B/x.h` | `p_`, `q_` |" rows after "## Layers".
declare -A allows prefixes
folders=()
while IFS='|' read -r _ dir inc pre _; do
	dir=$(tr -d '` /' <<<"$dir")
	case $dir in "" | folder | -*) continue ;; esac
	folders+=("$dir")
	allows[$dir]=$(grep -o '`[^`]*`' <<<"$inc" | tr -d '`' | tr '\n' ' ')
	prefixes[$dir]=$(grep -o '`[^`]*`' <<<"$pre" | tr -d '`' | tr '\n' ' ')
done < <(sed -n '/^## Layers$/,/^## /p' DESIGN.md | grep '^| `')
[ "${#folders[@]}" -ge 5 ] || bail "no Layers table in DESIGN.md"

# Every folder with C sources has a row (a new folder is a design decision).
while IFS= read -r d; do
	case $d in tests | bench | build* | autom4te.cache) continue ;; esac
	if [ -n "${allows[$d]+x}" ]; then
		ok "$d/ has a row in DESIGN.md's Layers table"
	else
		not_ok "$d/ has a row in DESIGN.md's Layers table"
	fi
done < <(find . -mindepth 2 -maxdepth 2 \( -name '*.c' -o -name '*.h' \) -printf '%h\n' |
	sed 's|^\./||' | sort -u)

# The allowed arrows themselves make no circle (tsort names one if they do).
arrows=$(for d in "${folders[@]}"; do
	for a in ${allows[$d]}; do echo "${a%%/*} $d"; done
done)
if out=$(tsort <<<"$arrows" 2>&1 >/dev/null) && [ -z "$out" ]; then
	ok "the allowed include arrows make no circle"
else
	not_ok "the allowed include arrows make no circle"
	diag "$out"
fi

# verdict TEXT DETAIL [BAD...]: ok TEXT when nothing is bad, else not ok
# "TEXT DETAIL" with each bad place as a diagnostic.
verdict() {
	local text=$1 detail=$2
	shift 2
	if [ $# -eq 0 ]; then
		ok "$text"
	else
		not_ok "$text${detail:+ $detail}"
		diag "$@"
	fi
}

# allowed DIR TARGET: TARGET ("x/y.h") may be included from DIR.
allowed() {
	local a
	[ "${2%%/*}" = "$1" ] && return 0
	for a in ${allows[$1]}; do
		case $a in
		*/) [ "${2%%/*}/" = "$a" ] && return 0 ;;
		*) [ "$2" = "$a" ] && return 0 ;;
		esac
	done
	return 1
}

for d in "${folders[@]}"; do
	bad=()
	while IFS=: read -r file line target; do
		allowed "$d" "$target" || bad+=("$file:$line: includes $target")
	done < <(grep -H -n -o '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z]*/[^"]*"' \
		"$d"/*.[ch] 2>/dev/null | sed -E 's/^([^:]*):([0-9]+):.*"([^"]*)"$/\1:\2:\3/')
	verdict "$d/ includes only what its row allows" "(${allows[$d]:-nothing})" "${bad[@]}"
done

# Exported names: the library's objects of each folder (automake names them
# libvmplug_a-*.o). Sanitizer bookkeeping symbols are not ours.
for d in "${folders[@]}"; do
	case ${prefixes[$d]} in "(any"* | "(a program"* | "") continue ;; esac
	# (only those of sources that exist: an incremental build may keep the
	# object of a file that moved)
	objs=()
	for o in "$builddir/$d"/libvmplug_a-*.o; do
		name=${o##*/libvmplug_a-}
		[ -e "$d/${name%.o}.c" ] && objs+=("$o")
	done
	if [ ${#objs[@]} -eq 0 ]; then
		not_ok "$d/ exports only names with its prefixes (no objects in $builddir/$d: build first)"
		continue
	fi
	bad=()
	while read -r obj sym; do
		good=
		for p in ${prefixes[$d]}; do
			case $sym in "$p"*) good=1 ;; esac
		done
		[ -n "$good" ] || bad+=("${obj##*/}: $sym")
	done < <(nm -A -g --defined-only "${objs[@]}" |
		awk '$2 ~ /^[BDGRSTVW]$/ && $3 !~ /^__(odr_)?asan|^__sancov|^__llvm|^__gcov/ {
			sub(/:.*/, "", $1); print $1, $3 }')
	verdict "$d/ exports only names with its prefixes (${prefixes[$d]% })" "" "${bad[@]}"
done
done_testing
