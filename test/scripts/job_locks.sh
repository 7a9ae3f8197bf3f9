#!/usr/bin/env bash
# Nobody but thrillmon can stop thrillmon's jobs by holding their locks. A role that may only
# connect (here reached with SET ROLE, as the suite's server may not let it log in) takes, in a session of its own, every advisory lock thrillmon took up to 0.6.0
# (pg_advisory_lock(1950896716, 1..5)) and holds them; collection (the observe() flush), detection,
# partition maintenance, metric retention and the full cleanup must all still run, and the full
# cleanup must run rather than say "skipped". A thrillmon_reader cannot lock the rows of
# thrillmon.job_locks that thrillmon locks instead. A second full cleanup while one runs still
# skips, naming the holder's pid. Runs against the PG* server with thrillmon installable (no
# worker needed). Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/scripts/lib/tap.sh
db=thrillmon_job_locks
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION thrillmon" -c "DROP ROLE IF EXISTS thrillmon_test_nobody" -c "CREATE ROLE thrillmon_test_nobody" \
	-c "DROP ROLE IF EXISTS thrillmon_test_reader" -c "CREATE ROLE thrillmon_test_reader IN ROLE thrillmon_reader" \
	-c "SET client_min_messages = warning" >/dev/null 2>&1
bg=()
cleanup() { for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null
	psql -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS thrillmon_test_nobody" \
		-c "DROP ROLE IF EXISTS thrillmon_test_reader" >/dev/null 2>&1; }
trap cleanup EXIT

echo "1..10"
# The squatter: connect only, hold the five keys, sleep.
PGAPPNAME=squatter psql -X -q -At -d "$db" -c "SET ROLE thrillmon_test_nobody" \
	-c "SELECT count(pg_catalog.pg_advisory_lock(1950896716, k)) FROM pg_catalog.generate_series(1, 5) k" \
	-c "SELECT pg_catalog.pg_sleep(60)" >/dev/null 2>&1 &
bg+=($!)
for _ in $(seq 1 40); do
	[ "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1950896716 AND granted")" = 5 ] && break
	sleep 0.25
done
is "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1950896716 AND granted")" "5" \
	"precondition: a role that may only connect holds all five of 0.6.0's advisory lock keys"

# Every job, each bounded by a 3 s lock_timeout so that a wait shows as a failure, not a hang.
run() { q -c "SET lock_timeout = '3s'" -c "$1" 2>&1 | tail -1; }
is "$(run "SELECT thrillmon.collect_metrics() ? 'observed_points'")" "t" "collect_metrics() (the observe() flush's lock) runs"
is "$(run "SELECT count(*) >= 0 FROM thrillmon.detect_anomalies()")" "t" "detect_anomalies() (the pass lock) runs"
is "$(run "SELECT thrillmon.maintain_partitions(1) ? 'created'")" "t" "maintain_partitions() runs"
is "$(run "SELECT thrillmon.cleanup_old_metrics(30) >= 0")" "t" "cleanup_old_metrics() (metric retention's lock) runs"
is "$(run "SELECT thrillmon.run_data_retention_cleanup()->>'status'")" "succeeded" \
	"run_data_retention_cleanup() runs, rather than saying another cleanup is in progress"

# The locks thrillmon takes now cannot be taken by its readers (nor by anyone without UPDATE).
err=$(psql -X -q -At -d "$db" -c "SET ROLE thrillmon_test_reader" -c "SELECT * FROM thrillmon.job_locks FOR UPDATE" 2>&1)
like "$err" "permission denied" "a thrillmon_reader cannot lock a job lock's row FOR UPDATE"
err=$(psql -X -q -At -d "$db" -c "SET ROLE thrillmon_test_reader" -c "SELECT * FROM thrillmon.job_locks FOR KEY SHARE" 2>&1)
like "$err" "permission denied" "nor FOR KEY SHARE"

# A second full cleanup while one runs: skipped, naming the first one's backend.
PGAPPNAME=first_cleanup psql -X -q -At -d "$db" -c "BEGIN" -c "SELECT thrillmon.run_data_retention_cleanup()" \
	-c "SELECT pg_catalog.pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 &
bg+=($!)
for _ in $(seq 1 40); do
	[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'first_cleanup' AND query LIKE '%pg_sleep%'")" = 1 ] && break
	sleep 0.25
done
first_pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'first_cleanup'")
res=$(q -c "SELECT thrillmon.run_data_retention_cleanup()" 2>/dev/null)
is "$(q -c "SELECT \$j\$$res\$j\$::jsonb->>'status'")" "skipped" "a second run_data_retention_cleanup() meanwhile is skipped"
is "$(q -c "SELECT \$j\$$res\$j\$::jsonb->>'reason'")" "another run_data_retention_cleanup() is in progress (pid $first_pid)" \
	"and names the backend running the first one"
exit $((fails > 0))
