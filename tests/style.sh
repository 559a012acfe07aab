#!/bin/bash
# The C sources are formatted as .clang-format says, and the shell scripts
# pass shellcheck (CODING_STYLE.md).
. "$(dirname "$0")/lib/tap.sh"

command -v clang-format >/dev/null || skip_all "clang-format is not installed (apt-get install clang-format)"
cd "$top_srcdir" || bail "no source dir"
# The source folders are the rows of DESIGN.md's Layers table (tests/layers.sh
# checks that every folder with C sources has one).
mapfile -t source_folders < <(sed -n '/^## Layers$/,/^## /p' DESIGN.md | grep '^| `' | cut -d'`' -f2 | tr -d /)
[ "${#source_folders[@]}" -ge 5 ] || bail "no Layers table in DESIGN.md"
n=0
while IFS= read -r f; do
	n=$((n + 1))
	if out=$(clang-format --dry-run --Werror "$f" 2>&1); then
		ok "$f is formatted"
	else
		not_ok "$f is formatted (run: clang-format -i $f)"
		echo "$out" | head -n 20 | sed 's/^/# /'
	fi
done < <(find "${source_folders[@]}" bench tests \
	\( -name '*.c' -o -name '*.h' \) -print 2>/dev/null | sort)
[ "$n" -gt 0 ] || not_ok "found C sources to check"

# Shell scripts: shellcheck with the project's .shellcheckrc.
if command -v shellcheck >/dev/null; then
	scripts=(autogen.sh demo .ci/run tests/run-test tests/e2e/run data/vmplugctl.bash-completion
		data/examples/on-switch-ddcutil)
	while IFS= read -r f; do scripts+=("$f"); done < <(find tests -name '*.sh' | sort)
	# the service scripts (sources of the installed ones)
	scripts+=(data/vmplugd.openrc.in data/examples/runit/vmplugd/run.in
		data/examples/runit/vmplugd/log/run)
	for f in "${scripts[@]}"; do
		if out=$(shellcheck -x "$f" 2>&1); then
			ok "$f passes shellcheck"
		else
			not_ok "$f passes shellcheck"
			echo "$out" | head -n 20 | sed 's/^/# /'
		fi
	done
else
	skip "shellcheck is not installed (apt-get install shellcheck)"
fi
done_testing
