#!/usr/bin/env bash
# observe(): many backends at once (pgbench), then flushes; the counts flushed add up exactly to
# the calls made, across several flushes, an aborted flush and a worker restart; validation;
# the slot limit. Speaks TAP. Needs PG* variables pointing at a cluster that preloads thrillmon.
set -uo pipefail
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
db=thrillmon_observe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib/tap.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
flushed() { q -c "SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name = '$1' AND metadata->>'source' = 'observe'"; }

echo "1..12"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION thrillmon"
q -c "SELECT thrillmon.collect_metrics()" >/dev/null # drain anything an earlier test left in shared memory

# Two clients observe concurrently while a third flushes every 0.2 s.
cat > "$work/observe.sql" <<'SQL'
\set v random(1, 5000)
SELECT thrillmon.observe('obs_latency', :v, 'performance');
SQL
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -t 20000 -f "$work/observe.sql" $db > "$work/pgbench.txt" 2>&1 &
bench=$!
flushes=0
while kill -0 $bench 2>/dev/null; do
	q -c "SELECT thrillmon.collect_metrics()" >/dev/null && flushes=$((flushes + 1))
	sleep 0.2
done
wait $bench
is "$?" "0" "pgbench: 2 clients x 20000 observe() calls"
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
is "$(flushed obs_latency)" "40000" "the counts flushed add up exactly to the calls made (over $flushes flushes during the run)"
is "$(q -c "SELECT count(*) > 1 FROM thrillmon.metric_time_series WHERE metric_name = 'obs_latency'")" "t" "several rows: one per flush that had observations"
is "$(q -c "SELECT bool_and(metric_value = (metadata->>'sum')::float8 / (metadata->>'count')::float8 AND metric_category = 'performance' AND (metadata->>'min')::float8 >= 1 AND (metadata->>'max')::float8 <= 5000 AND (metadata->>'p50')::float8 <= (metadata->>'p95')::float8 AND (metadata->>'p95')::float8 <= (metadata->>'p99')::float8) FROM thrillmon.metric_time_series WHERE metric_name = 'obs_latency'")" \
	"t" "each row: mean = sum/count, min/max in range, p50 <= p95 <= p99"

# An aborted flush gives its observations back; the next one writes them.
q -c "SELECT count(thrillmon.observe('obs_abort', g)) FROM generate_series(1, 1000) g" >/dev/null
q -c "BEGIN" -c "SELECT thrillmon.collect_metrics()" -c "ROLLBACK" >/dev/null
q -c "BEGIN" -c "SAVEPOINT s" -c "SELECT thrillmon._flush_observations(now())" -c "ROLLBACK TO SAVEPOINT s" -c "COMMIT" >/dev/null
is "$(flushed obs_abort)" "0" "nothing written by rolled-back flushes"
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
is "$(flushed obs_abort)" "1000" "...and nothing lost: the next flush writes all 1000"
is "$(q -c "SELECT (metadata->>'p50')::float8 BETWEEN 495 AND 505 AND (metadata->>'p99')::float8 BETWEEN 980 AND 1000 FROM thrillmon.metric_time_series WHERE metric_name = 'obs_abort'")" \
	"t" "quantiles of 1..1000 within 1%"

# Observations live in shared memory, not in the worker: terminating it loses nothing.
q -c "SELECT count(thrillmon.observe('obs_restart', 1)) FROM generate_series(1, 500) g" >/dev/null
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'thrillmon collector'" >/dev/null
sleep 0.5
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
is "$(flushed obs_restart)" "500" "a worker restart loses no observation"

# Validation, and no table write per call.
err=$(q -c "SELECT thrillmon.observe('x', 'NaN')" 2>&1)
is "$err" "ERROR:  thrillmon: metric_value must be a finite number, not NaN" "NaN refused"
err=$(q -c "SELECT thrillmon.observe('', 1)" 2>&1)
is "$err" "ERROR:  thrillmon: metric_name must not be empty" "empty name refused"
before=$(q -c "SELECT pg_current_wal_insert_lsn()")
q -c "SELECT count(thrillmon.observe('obs_nowal', g)) FROM generate_series(1, 100000) g" >/dev/null
after=$(q -c "SELECT pg_current_wal_insert_lsn()")
is "$(q -c "SELECT pg_wal_lsn_diff('$after', '$before') < 100000")" "t" "100000 observe() calls write (almost) no WAL: no table write per call"
is "$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'obs_nowal'")" "0" "...and no row until a flush"
q -c "SELECT thrillmon.collect_metrics()" >/dev/null

psql -X -q -c "DROP DATABASE $db" >/dev/null
exit $((fails > 0))
