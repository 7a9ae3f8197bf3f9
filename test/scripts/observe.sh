#!/usr/bin/env bash
# observe(): many backends at once (pgbench), then flushes; the counts flushed add up exactly to
# the calls made, across several flushes, an aborted flush and a worker restart; validation;
# a database's quota of slots, idle slots given back, and a backend's stale cached slot. Speaks
# TAP. Needs PG* variables pointing at a cluster that preloads thrillmon, whose worker serves
# another database.
set -uo pipefail
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
db=thrillmon_observe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib/tap.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
flushed() { q -c "SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name = '$1' AND metadata->>'source' = 'observe'"; }

echo "1..19"
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

# A database other than the worker's holds at most thrillmon.max_observed_metrics_per_database
# slots; a second database is not locked out by the first.
db2=thrillmon_observe2
psql -X -q -c "DROP DATABASE IF EXISTS $db2" -c "CREATE DATABASE $db2" >/dev/null 2>&1
q2() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db2 "$@"; }
flush3() { "$1" -c "SELECT thrillmon.collect_metrics()" -c "SELECT thrillmon.collect_metrics()" -c "SELECT thrillmon.collect_metrics()" >/dev/null; }
q2 -c "CREATE EXTENSION thrillmon" -c "SELECT thrillmon.collect_metrics()" >/dev/null
psql -X -q -c "ALTER SYSTEM SET thrillmon.max_observed_metrics_per_database = 10" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
flush3 q # the names observed above go idle and give their slots back
is "$(q -c "SELECT count(thrillmon.observe('quota_' || g, 1)) FROM generate_series(1, 10) g")" "10" "a database takes its 10 slots"
err=$(q -c "SELECT thrillmon.observe('quota_11', 1)" 2>&1 | head -1)
is "$err" "ERROR:  thrillmon: cannot observe \"quota_11\": this database holds 10 observed-metric slots, thrillmon.max_observed_metrics_per_database" \
	"the 11th name is refused, naming the setting"
is "$(q2 -c "SELECT count(thrillmon.observe('other_' || g, 1)) FROM generate_series(1, 10) g")" "10" \
	"another database is not locked out: it takes its own 10"
# A name not observed for a whole interval gives its slot back (after its last observations are
# flushed, two flushes find it empty).
flush3 q
is "$(flushed quota_1)" "1" "the 10 names' observations were flushed"
is "$(q -c "SELECT count(thrillmon.observe('again_' || g, 1)) FROM generate_series(1, 10) g")" "10" \
	"idle for two flushes, their slots were given back: 10 new names fit"
# A backend's cached slot given back and handed out again to another name: its next observation
# goes to a slot of its own name, not to the other one. (psql's \! runs the other sessions in
# between, while this one stays connected.)
flush3 q
psql -X -q -At -v ON_ERROR_STOP=1 -d $db >/dev/null <<EOF
SELECT thrillmon.observe('gen_a', 1);
\! psql -X -q -At -d $db -c "SELECT thrillmon.collect_metrics()" -c "SELECT thrillmon.collect_metrics()" -c "SELECT thrillmon.collect_metrics()" >/dev/null
\! psql -X -q -At -d $db -c "SELECT thrillmon.observe('gen_b', 5)" >/dev/null
SELECT thrillmon.observe('gen_a', 2);
EOF
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
is "$(q -c "SELECT string_agg(metric_name || '=' || (metadata->>'count') || '/' || metric_value, ' ' ORDER BY metric_name, \"timestamp\") FROM thrillmon.metric_time_series WHERE metric_name LIKE 'gen\_%'")" \
	"gen_a=1/1 gen_a=1/2 gen_b=1/5" "a stale cached slot is noticed: gen_b has its one observation, gen_a its own"
psql -X -q -c "ALTER SYSTEM RESET thrillmon.max_observed_metrics_per_database" -c "SELECT pg_reload_conf()" >/dev/null

# A database nothing flushes (no collection there): observe() is refused, not left to fill up.
db3=thrillmon_observe3
psql -X -q -c "DROP DATABASE IF EXISTS $db3" -c "CREATE DATABASE $db3" >/dev/null 2>&1
psql -X -q -d $db3 -c "CREATE EXTENSION thrillmon" >/dev/null
is "$(psql -X -q -At -d $db3 -c "SELECT thrillmon.observe('x', 1)" 2>&1 | head -1)" \
	"ERROR:  thrillmon: cannot observe \"x\": nothing flushes observations in database \"$db3\"" "refused in a database nothing flushes"
# Leave no slot behind for the tests after this one.
flush3 q2
flush3 q

psql -X -q -c "DROP DATABASE $db" -c "DROP DATABASE $db2" -c "DROP DATABASE $db3" >/dev/null
exit $((fails > 0))
