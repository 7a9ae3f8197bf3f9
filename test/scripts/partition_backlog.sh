#!/usr/bin/env bash
# A backlog of daily partitions worked off by the worker in runs of at most 32, a transaction
# each, run one after the other at once (not an hour apart), while a writer goes on recording;
# and rows dated far ahead that get no partition at all. Own cluster. Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

echo "1..7"
cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 3600" \
	"thrillmon.detect_interval = 3600" "thrillmon.enabled = off"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
# 100 past days within a 365-day retention (two rows each), and 500 far-future days by direct INSERT.
# The past rows are at 11:00 and 12:00 of their day: stamped from now() itself, the hour-earlier
# row fell on the day before in the first hour after midnight, and the backlog was 101 days.
sql "UPDATE thrillmon.retention_policies SET retention_days = 365 WHERE target = 'metrics'" >/dev/null
sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT 'backfill', 1, date_trunc('day', now()) + interval '12 hours' - make_interval(days => 1 + d) - make_interval(hours => h)
	FROM generate_series(1, 100) d, generate_series(0, 1) h
	UNION ALL SELECT 'ahead', 1, now() + make_interval(days => 30 + d) FROM generate_series(1, 500) d" >/dev/null

# A writer recording all along (pgbench, one client), its latencies logged.
cat >"$work/record.sql" <<'EOF'
SELECT thrillmon.record_metric('writer', 1);
EOF
chmod a+r "$work/record.sql"
(cd "$work" && "$PG_BINDIR/pgbench" -n -f record.sql -T 12 -c 1 -l --log-prefix=lat >/dev/null 2>&1) &
bench=$!
sleep 1
sql "ALTER SYSTEM SET thrillmon.enabled = on" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_for 30 "SELECT NOT EXISTS (SELECT 1 FROM ONLY thrillmon.metric_time_series_default WHERE metric_name = 'backfill')"
ok $? "the worker moved the whole backlog out of the default partition"
wait $bench
is "$(sql "SELECT string_agg(jsonb_array_length(details->'created') || '/' || (details->>'days_waiting'), ' ' ORDER BY run_id)
	FROM thrillmon.job_runs WHERE job = 'maintenance' AND status = 'succeeded'")" "32/77 32/45 32/13 13/0" \
	"in four runs of at most 32 partitions (9 premade days and 100 backfilled ones)"
is "$(sql "SELECT (max(finished_at) - min(started_at)) < interval '30 seconds' FROM thrillmon.job_runs WHERE job = 'maintenance'")" "t" \
	"one right after the other, not an hour apart"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'backfill' AND tableoid::regclass::text ~ '_p[0-9]{8}$'")" "200" \
	"every backfilled row is in its day's partition"
is "$(sql "SELECT count(*) || '/' || bool_and(tableoid = 'thrillmon.metric_time_series_default'::regclass) FROM thrillmon.metric_time_series WHERE metric_name = 'ahead'")" \
	"500/true" "the 500 far-future rows got no partition: they wait in the default partition"
is "$(sql "SELECT (details->>'rows_ahead') FROM thrillmon.job_runs WHERE job = 'maintenance' ORDER BY run_id DESC LIMIT 1")" "500" \
	"and the last run says so (rows_ahead)"
sql "SELECT 'maintenance run ' || run_id || ': ' || round(extract(epoch FROM finished_at - started_at) * 1000) || ' ms'
	FROM thrillmon.job_runs WHERE job = 'maintenance' ORDER BY run_id" | sed 's/^/# /'
# The writer's latencies (pgbench's log: the third field, microseconds), shown, not asserted.
max_ms=$(($(cat "$work"/lat.* 2>/dev/null | awk '{ print $3 }' | sort -n | tail -1) / 1000))
count=$(cat "$work"/lat.* 2>/dev/null | wc -l)
ok "$([ "$count" -gt 0 ] && echo 0 || echo 1)" "the writer recorded $count points meanwhile (slowest ${max_ms} ms)"

pg_ctl -m fast -w stop >/dev/null
exit $((fails > 0))
