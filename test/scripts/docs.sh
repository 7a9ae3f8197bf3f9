#!/usr/bin/env bash
# The docs stay true to the catalog: every SQL function, table, view and sequence of schema
# thrillmon and every thrillmon.* setting is named in README.md or docs/, and every thrillmon.NAME
# the docs name exists (an object of a fresh install, a setting, or a file of the tree). Runs
# against the PG* server with thrillmon installable. Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/scripts/lib/tap.sh
db=thrillmon_docs
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q "CREATE EXTENSION thrillmon" >/dev/null || { echo "Bail out! CREATE EXTENSION thrillmon failed"; exit 1; }

docs=(README.md docs/*.md)
objects=$(q "SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'thrillmon'::regnamespace
	UNION SELECT CASE relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' ELSE 'table ' END || relname FROM pg_class
	WHERE relnamespace = 'thrillmon'::regnamespace AND relkind IN ('r', 'p', 'v', 'S')
	  AND relname !~ '^metric_time_series_p[0-9]{8}$'
	UNION SELECT 'setting ' || name FROM pg_settings WHERE name LIKE 'thrillmon.%'
	ORDER BY 1")
names=$(q "SELECT proname FROM pg_proc WHERE pronamespace = 'thrillmon'::regnamespace
	UNION SELECT relname FROM pg_class WHERE relnamespace = 'thrillmon'::regnamespace
	UNION SELECT substr(name, 11) FROM pg_settings WHERE name LIKE 'thrillmon.%'")
# What the docs call thrillmon.NAME, beyond the catalog's names: files of the tree.
files="control so"

mentioned=$(grep -ohE 'thrillmon\.[a-z_][a-z0-9_]*' "${docs[@]}" | sort -u | sed 's/^thrillmon\.//')
echo "1..$(( $(echo "$objects" | wc -l) + $(echo "$mentioned" | wc -l) ))"
while read -r kind name; do
	# A name as a word: `record_metric()`, thrillmon.record_metric, `thrillmon.enabled`.
	grep -qwF -- "$name" "${docs[@]}"
	ok $? "$kind $name is described in README.md or docs/"
done <<< "$objects"
while read -r name; do
	# (A here-string: grep -q stops early, and under pipefail the writer's SIGPIPE would count.)
	grep -qxF -- "$name" <<<"$(echo "$names $files" | tr ' ' '\n')"
	ok $? "thrillmon.$name, named in the docs, exists"
done <<< "$mentioned"
psql -X -q -c "DROP DATABASE $db" >/dev/null
exit $((fails > 0))
