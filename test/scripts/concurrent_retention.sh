#!/usr/bin/env bash
# Concurrency: run_data_retention_cleanup() from two sessions at once while two pgbench clients
# insert, then prove that exactly one cleanup ran, the other said it skipped, and that no row
# of a day not yet expired was lost (seeded history and every insert made during the cleanup).
# Speaks TAP. Needs PG* variables pointing at a cluster where thrillmon is installable.
set -uo pipefail
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
db=thrillmon_concurrency
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psqlq() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

source "$(dirname "$0")/lib/tap.sh"

echo "1..9"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
psqlq -c "CREATE EXTENSION thrillmon"

# 40 days of history for 20 metrics, a point every 5 minutes (230k rows), partitioned by day.
# A plain copy of it (seed_copy) is kept to check afterwards which rows should have survived.
psqlq <<'SQL'
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'seed_' || m, 'system', random() * 100, date_trunc('minute', now()) - s * interval '5 minutes'
FROM generate_series(1, 20) m, generate_series(0, 40 * 288) s;
-- Partitions are made for the days the metrics policy keeps: as if it kept 100 days while this
-- history arrived, and was then cut back to its 30.
-- At most 32 partitions a call: call again until no day waits.
UPDATE thrillmon.retention_policies SET retention_days = 100 WHERE target = 'metrics';
DO $$ BEGIN WHILE (thrillmon.maintain_partitions()->>'days_waiting')::int > 0 LOOP END LOOP; END $$;
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';
CREATE TABLE public.seed_copy AS SELECT * FROM thrillmon.metric_time_series;
ANALYZE;
SQL
ok $? "seeded 40 days of history into daily partitions"

# Each pgbench transaction records two points: one now, and one 29 days ago (inside retention).
cat > "$work/ingest.sql" <<'SQL'
SELECT thrillmon.record_metric('ingest_now', random() * 10, 'performance');
SELECT thrillmon.record_metric('ingest_recent', random() * 10, 'performance', NULL, now() - interval '29 days');
SQL
per_client=1500
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -t $per_client -f "$work/ingest.sql" "$db" > "$work/pgbench.txt" 2>&1 &
bench=$!

# Session A holds its cleanup open for 3 s (as a slow cleanup would); B arrives during it.
sleep 0.5
psqlq -c "BEGIN" -c "SELECT thrillmon.run_data_retention_cleanup()" -c "SELECT pg_sleep(3)" -c "COMMIT" \
	> "$work/a.txt" 2>&1 &
a=$!
sleep 1
psqlq -c "SELECT thrillmon.run_data_retention_cleanup()->>'status'" > "$work/b.txt" 2>&1
wait $a
ok $? "session A's cleanup completed"
wait $bench
bench_rc=$?
a_status=$(head -1 "$work/a.txt" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["status"])' 2>/dev/null)
is "$a_status" "succeeded" "session A ran the cleanup"
is "$(tail -1 "$work/b.txt")" "skipped" "session B, concurrent with A, skipped instead of running"
is "$(psqlq -c "SELECT string_agg(status, ',' ORDER BY status) FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'all'")" \
	"skipped,succeeded" "job_runs records one run and one skip"

ok $bench_rc "pgbench inserted during the cleanup without errors"
cat "$work/pgbench.txt" | grep -E "transactions actually processed|failed" | sed 's/^/# /'
is "$(psqlq -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name IN ('ingest_now', 'ingest_recent')")" \
	"$((2 * 2 * per_client))" "every point inserted during the cleanup is there"

# The cut-off the cleanup used is in its result. Retention drops whole UTC days: every seeded row
# from the start of the cut-off's day on must remain, row for row (the day holding the cut-off is
# kept whole until it has expired too), and none before it.
cutoff=$(head -1 "$work/a.txt" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["targets"]["metrics"]["cutoff"])')
day_start="date_trunc('day', '$cutoff'::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
is "$(psqlq <<SQL
SELECT count(*) FROM (
	(SELECT * FROM public.seed_copy WHERE "timestamp" >= $day_start
	 EXCEPT ALL SELECT * FROM thrillmon.metric_time_series WHERE metric_name LIKE 'seed\_%')
	UNION ALL
	(SELECT * FROM thrillmon.metric_time_series WHERE metric_name LIKE 'seed\_%'
	 EXCEPT ALL SELECT * FROM public.seed_copy WHERE "timestamp" >= $day_start)) d
SQL
)" "0" "seeded rows of days not yet expired are all kept, and only they"
is "$(psqlq -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" < $day_start")" "0" \
	"nothing older than the start of the cut-off's UTC day is left"

psql -X -q -c "DROP DATABASE $db" >/dev/null
exit $((fails > 0))
