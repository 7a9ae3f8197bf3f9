#!/usr/bin/env bash
# Code checks that need no server (make lint; make test runs them): the C++ sources are formatted
# as .clang-format says, and every glue file includes the C++ standard headers (and the core's)
# before postgres.h (STYLE.md rule 3: postgres.h's macros - snprintf, Min, Max, gettext - would
# otherwise reach them). The include order is read from the preprocessor itself (g++ -H), so a
# header that pulls in postgres.h early is caught too. Prints one "ok"/"not ok" line per check
# and "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
pass=0
fail=0
check() { # STATUS NAME [DETAIL...]
	if [ "$1" = 0 ]; then
		pass=$((pass + 1)); echo "ok - $2"
	else
		fail=$((fail + 1)); echo "not ok - $2"; shift 2; printf '#   %s\n' "$@"
	fi
}

inc="-I$($PG_CONFIG --includedir-server) -Isrc"
for f in src/pg/*.cpp; do
	# -H prints each header as it is first opened, one dot per level of nesting.
	out=$(g++ -std=c++17 $inc -H -fsyntax-only "$f" 2>&1 >/dev/null; echo "g++ exit status $?")
	order=$(printf '%s\n' "$out" | grep -E '^\.+ ')
	# What postgres.h itself includes (its subtree, deeper than it) is its business; a C++ or core
	# header opened anywhere after that subtree would see its macros.
	late=$(printf '%s\n' "$order" | awk '{ depth = length($1) }
		/\/postgres\.h$/ && !seen { seen = 1; pg_depth = depth; inside = 1; next }
		inside && depth > pg_depth { next }
		{ inside = 0 }
		seen && /\/c\+\+\/[0-9]+\/|\/src\/core\// { print $2 }' | head -3)
	# (A here-string, not a pipe: grep -q stops at the first match, and under pipefail the
	# writer's SIGPIPE would fail the test by chance.)
	if grep -q '/postgres\.h$' <<<"$order"; then
		check "$([ -z "$late" ]; echo $?)" "$f: C++ and core headers before postgres.h" $late
	else
		check 1 "$f: includes postgres.h (every glue file does)" "g++ -H saw no postgres.h" \
			"$(printf '%s\n' "$out" | grep -vE '^\.+ ' | head -5)"
	fi
done

# The core is built and tested without Postgres: no Postgres or glue header in it (its guard,
# core/no_postgres.hpp, stops a build that tries; this says which file).
core_pg=$(grep -lE '#include +[<"](postgres\.h|fmgr\.h|c\.h|pg_config|utils/|catalog/|access/|executor/|storage/|pg/)' src/core/*.cpp src/core/*.hpp)
check "$([ -z "$core_pg" ]; echo $?)" "src/core includes no Postgres or glue header" $core_pg

if command -v clang-format-14 >/dev/null 2>&1; then
	files=$(ls src/core/*.cpp src/core/*.hpp src/pg/*.cpp src/pg/*.hpp src/tools/*.cpp test/unit/*.cpp test/fuzz/*.cpp \
		bench/core/*.cpp bench/nab/*.cpp 2>/dev/null)
	unformatted=$(for f in $files; do clang-format-14 --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
	check "$([ -z "$unformatted" ]; echo $?)" "the C++ sources are formatted as .clang-format says (make format)" $unformatted
else
	check 1 "clang-format-14 is installed (scripts/deps.sh installs it)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
