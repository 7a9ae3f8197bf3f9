#!/usr/bin/env bash
# B2: observe() against what an application would do instead, in one run: a single-row INSERT
# per request (synchronous_commit on) into an unpartitioned copy of the origin's table with its
# index, and the bare round trip (SELECT 1); pgbench, 2 clients, DURATION_S each. Then one
# backend looping observe() over generate_series. After each observe() run, the counts flushed
# must equal the calls made. Run with `make bench` (scripts/bench.sh) or inside a cluster that
# preloads thrillmon, PG* pointing at it.
set -euo pipefail
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
DURATION_S=${DURATION_S:-15}
db=thrillmon_bench_observe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q <<'SQL'
CREATE EXTENSION thrillmon;
SELECT thrillmon.collect_metrics() IS NOT NULL AS drained;
-- The origin's table: unpartitioned, with its (metric_name, timestamp) index.
CREATE TABLE origin_metric_time_series (id bigserial PRIMARY KEY, metric_name text NOT NULL, metric_category text NOT NULL,
	metric_value float8 NOT NULL, "timestamp" timestamptz NOT NULL DEFAULT now(), metadata jsonb);
CREATE INDEX ON origin_metric_time_series (metric_name, "timestamp" DESC);
SQL
echo "SELECT thrillmon.observe('api_response_time', random() * 500, 'performance');" > "$work/observe.sql"
echo "INSERT INTO origin_metric_time_series (metric_name, metric_category, metric_value) VALUES ('api_response_time', 'performance', random() * 500);" > "$work/insert.sql"
echo "SELECT 1;" > "$work/select1.sql"

tps() { "$PG_BINDIR/pgbench" -n -M prepared -c 2 -j 2 -T "$DURATION_S" -f "$1" $db > "$work/out.txt" 2>&1; \
	sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/out.txt"; }
calls() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/out.txt"; }
flushed() { q -c "SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name = '$1'"; }

observe_tps=$(tps "$work/observe.sql"); observe_calls=$(calls)
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
observe_flushed=$(flushed api_response_time)
insert_tps=$(tps "$work/insert.sql")
select_tps=$(tps "$work/select1.sql")

# One backend, no round trips: the cost of observe() itself.
loop_n=2000000
start=$(date +%s%N)
q -c "SELECT count(thrillmon.observe('loop_metric', g)) FROM generate_series(1, $loop_n) g" >/dev/null
loop_ns=$(( $(date +%s%N) - start ))
q -c "SELECT thrillmon.collect_metrics()" >/dev/null
loop_flushed=$(flushed loop_metric)
shmem=$(q -c "SELECT pg_size_pretty(sum(allocated_size)) FROM pg_shmem_allocations WHERE name LIKE 'thrillmon%'")

python3 - "$observe_tps" "$insert_tps" "$select_tps" "$loop_n" "$loop_ns" "$observe_calls" "$observe_flushed" "$loop_flushed" "$shmem" "$DURATION_S" <<'PY'
import sys
o, i, s, n, ns, calls, flushed, loop_flushed, shmem, dur = sys.argv[1:]
o, i, s, n, ns = float(o), float(i), float(s), int(n), int(ns)
print(f"B2 observe(), pgbench 2 clients, {dur} s each (tps = calls per second)")
print(f"  observe()                        {o:12.0f}")
print(f"  INSERT, synchronous_commit on    {i:12.0f}   observe / INSERT   = {o / i:6.1f}x  (target >= 20x)")
print(f"  SELECT 1 (bare round trip)       {s:12.0f}   observe / SELECT 1 = {o / s:6.2f}x  (target >= 0.8x)")
print(f"  one backend looping observe():   {n / (ns / 1e9):12.0f} per second (target >= 2,000,000)")
print(f"  flushed counts: pgbench {flushed} of {calls} calls, loop {loop_flushed} of {n}: {'exact' if int(flushed) == int(calls) and int(loop_flushed) == n else 'MISMATCH'}")
print(f"  shared memory of thrillmon at these settings: {shmem}")
PY
psql -X -q -c "DROP DATABASE $db" >/dev/null
