#!/usr/bin/env bash
# Runs inside pg_virtualenv (PG* variables point at the throw-away cluster).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
log=$1
rc=0

echo "== pg_regress (API contract and messages, in a temporary instance of its own)"
# As root the suite runs as the postgres OS user in a copy of its inputs (see the Makefile).
regress_copy=$(mktemp -u /tmp/thrillmon-regress.XXXXXX)
make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS_COPY="$regress_copy" > "$log/regress.txt" 2>&1 || {
	rc=1
	cat "$regress_copy/regression.diffs" regression.diffs 2>/dev/null | head -200
}
cat "$log/regress.txt"
rm -rf "$regress_copy"

echo "== pgTAP (behaviour) and scripted tests"
psql -X -q -c "DROP DATABASE IF EXISTS thrillmon_test" -c "CREATE DATABASE thrillmon_test" 2>&1 | grep -v "does not exist, skipping"
psql -X -q -d thrillmon_test -c "CREATE EXTENSION thrillmon" -c "CREATE EXTENSION pgtap"
{
	PGDATABASE=thrillmon_test pg_prove test/pgtap/*.sql
	# Scripted tests speak TAP too; each makes its own database.
	prove --ext .sh -e bash test/scripts/
} > "$log/tap.txt" 2>&1 || rc=1
cat "$log/tap.txt"
exit $rc
