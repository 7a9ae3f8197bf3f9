#!/usr/bin/env bash
# What distribution costs (issue 16): thrillmon on a loopback Citus cluster (a coordinator and two
# worker nodes, each its own server on 127.0.0.1, metric_time_series distributed with the default
# 32 shards) against a single-node database on the coordinator's own server, given the same
# data, in one run, ROUNDS times each, alternately:
#   record_metric()  pgbench, 2 clients, RECORD_S s: calls per second;
#   observe() flush  _flush_observations() after OBS_CALLS observe() calls over OBS_NAMES names;
#   steady pass      detect_anomalies() with 5 new points per metric, detectors kept in the session;
#   cold pass        detect_anomalies() in a new backend, METRICS x 24 h of one-minute points;
#   retention        cleanup_old_metrics() dropping one day (METRICS x 1440 points).
# Three servers on two cores cannot be faster than one: the figures are the overhead, and the
# per-point costs docs/scale-out.md projects from. Builds Citus first if it is missing (as the
# Citus test does). Run with `make bench-citus`; as root the servers run as the postgres user.
set -uo pipefail
. "$(dirname "$0")/../test/scripts/lib/citus.sh"
METRICS=${METRICS:-200}
DAYS=${DAYS:-5}
ROUNDS=${ROUNDS:-3}
RECORD_S=${RECORD_S:-10}
OBS_CALLS=${OBS_CALLS:-200000}
OBS_NAMES=${OBS_NAMES:-50}
export PGOPTIONS="-c statement_timeout=0"
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# q DB [psql arguments]: on the coordinator's server; tm is the cluster's database, single the other.
q() { local d=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -p "$cport" -d "$d" "$@"; }

citus_ensure
citus_start "thrillmon.enabled = off" "max_connections = 100"
q tm -c "CREATE DATABASE single" >/dev/null
echo "loading $METRICS metrics x $DAYS days of one-minute points into each database ($((METRICS * DAYS * 1440)) rows)..."
for d in single tm; do
	out=$(q $d -F ' ' <<SQL
CREATE EXTENSION thrillmon;
CREATE FUNCTION bench_ms(q text) RETURNS double precision LANGUAGE plpgsql AS \$f\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN EXTRACT(EPOCH FROM clock_timestamp() - t0) * 1000;
END \$f\$;
-- A point a day first, so that maintain_partitions() makes every daily partition (retention long
-- enough meanwhile), then the metrics policy back to DAYS - 1 days for the cleanup rounds.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'seed', 'system', 0, date_trunc('minute', now()) - d * interval '1 day' FROM generate_series(0, $DAYS + 1) d;
UPDATE thrillmon.retention_policies SET retention_days = 36500 WHERE target = 'metrics';
DO \$\$ BEGIN WHILE (thrillmon.maintain_partitions(2)->>'days_waiting')::int > 0 LOOP END LOOP; END \$\$;
DELETE FROM thrillmon.metric_time_series WHERE metric_name = 'seed';
SELECT CASE WHEN '$d' = 'tm' THEN (SELECT shards FROM thrillmon.distribute()) END IS NULL;
-- The bulk load is timed too: one INSERT ... SELECT, Citus splitting it by shard (the way a
-- batch or COPY arrives).
SELECT 'load', bench_ms(\$q\$INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'performance', 100 + 10 * random(), now() - interval '2 minutes' - g * interval '1 minute'
FROM generate_series(0, $DAYS * 1440 - 1) g, generate_series(1, $METRICS) m
ORDER BY g DESC, m\$q\$);
VACUUM ANALYZE thrillmon.metric_time_series;
SELECT 'bytes', bytes / nullif(rows, 0) FROM thrillmon.retention_stats WHERE target = 'metrics';
CREATE FUNCTION add_points() RETURNS void LANGUAGE sql AS \$f\$
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'performance', 100 + 10 * random(), clock_timestamp() - k * interval '100 milliseconds'
FROM generate_series(5, 1, -1) k, generate_series(1, $METRICS) m
\$f\$;
SELECT count(*) >= 0 FROM thrillmon.detect_anomalies();
-- (A collection that succeeded: observe() refuses a database where nothing has flushed lately.)
SELECT thrillmon.collect_metrics() IS NOT NULL;
SQL
) || { echo "loading $d failed"; exit 1; }
	eval "load_$d=$(echo "$out" | awk '$1 == "load" {print $2}')"
	eval "bytes_$d=$(echo "$out" | awk '$1 == "bytes" {print $2}')"
done
q tm -c "SELECT count(*) FROM pg_dist_shard" | sed 's/^/shards on the cluster (every daily partition and the default one): /'
echo "SELECT thrillmon.record_metric('rec_' || (random() * $((METRICS - 1)))::int, random() * 100, 'performance');" >"$work/record.sql"
chmod a+r "$work/record.sql"

# One row per round and operation: "op single_ms_or_tps cluster_ms_or_tps".
results=$work/results.txt
: >"$results"
for r in $(seq "$ROUNDS"); do
	echo "round $r of $ROUNDS..."
	for d in single tm; do
		"$PG_BINDIR/pgbench" -n -M prepared -c 2 -j 2 -T "$RECORD_S" -p "$cport" -f "$work/record.sql" $d >"$work/pgbench.txt" 2>&1
		eval "rec_$d=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.txt")"
		eval "[ -n \"\$rec_$d\" ]" || { cat "$work/pgbench.txt"; exit 1; }
		# (observe() slots are bounded, 64 a database: the same OBS_NAMES names every round.)
		out=$(q $d <<SQL
SELECT count(thrillmon.observe('obs_' || (g % $OBS_NAMES), g)) FROM generate_series(1, $OBS_CALLS) g;
SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name LIKE 'obs\\_%';
SELECT round(bench_ms('SELECT thrillmon._flush_observations(now())')::numeric, 1);
SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name LIKE 'obs\\_%';
SQL
)
		eval "flush_$d=$(echo "$out" | sed -n 3p)"
		eval "flushed_$d=$(echo "$out" | awk 'NR == 2 {b = $1} NR == 4 {print $1 - b}')"
		out=$(q $d -F ' ' <<SQL
SET thrillmon.session_detector_cache = on;
SELECT add_points(); SELECT 'cold', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');
SELECT pg_sleep(0.5), add_points(); SELECT 'steady', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');
SELECT pg_sleep(0.5), add_points(); SELECT 'steady', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');
SELECT pg_sleep(0.5), add_points(); SELECT 'steady', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');
SQL
)
		eval "cold_$d=$(echo "$out" | awk '$1 == "cold" {print $2}')"
		eval "steady_$d=$(echo "$out" | awk '$1 == "steady" {print $2}' | median)"
		# One day more past the policy each round: each cleanup drops one whole daily partition.
		eval "ret_$d=$(q $d -c "SELECT round(bench_ms('SELECT thrillmon.cleanup_old_metrics($((DAYS - r)))')::numeric, 1)")"
		eval "retrows_$d=$(q $d -c "SELECT details->>'rows_in_dropped_partitions' FROM thrillmon.job_runs WHERE job = 'retention' ORDER BY started_at DESC LIMIT 1")"
	done
	for v in "$rec_single" "$rec_tm" "$flush_single" "$flush_tm" "$steady_single" "$steady_tm" "$cold_single" "$cold_tm" "$ret_single" "$ret_tm"; do
		[[ "$v" =~ ^[0-9.]+$ ]] || { echo "bench: a measurement failed (see above)"; exit 1; }
	done
	[ "$flushed_single" = "$OBS_CALLS" ] && [ "$flushed_tm" = "$OBS_CALLS" ] \
		|| echo "  the flush wrote $flushed_single (one node) and $flushed_tm (cluster) of $OBS_CALLS observations: MISMATCH"
	[ "$retrows_single" = "$retrows_tm" ] || echo "  cleanup removed $retrows_single rows on one node but $retrows_tm on the cluster: MISMATCH"
	{
		echo "record $rec_single $rec_tm"
		echo "flush $flush_single $flush_tm"
		echo "steady $steady_single $steady_tm"
		echo "cold $cold_single $cold_tm"
		echo "retention $ret_single $ret_tm $retrows_single"
	} | tee -a "$results" | sed 's/^/  /'
done

echo "load $load_single $load_tm" >>"$results"
echo "bytes $bytes_single $bytes_tm" >>"$results"
python3 - "$results" "$METRICS" "$RECORD_S" "$OBS_CALLS" "$OBS_NAMES" "$DAYS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
metrics, record_s, obs_calls, obs_names, days = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def series(op, i): return [float(r[i]) for r in rows if r[0] == op]
print(f"\nthrillmon on Citus (coordinator + 2 worker nodes, 32 shards) against one node, same server, {len(series('record', 1))} rounds")
print(f"{'operation':44s} {'one node':>12s} {'cluster':>12s} {'cluster/one':>12s}   per round")
for op, label, unit, lower_better in (
        ("record", f"record_metric(), pgbench 2 clients {record_s} s", "calls/s", False),
        ("flush", f"observe() flush, {obs_names} names, {obs_calls} calls", "ms", True),
        ("steady", f"steady pass, {metrics} metrics x 5 new points", "ms", True),
        ("cold", f"cold pass, {metrics} metrics x 24 h", "ms", True),
        ("retention", "cleanup_old_metrics(), one daily partition", "ms", True)):
    a, b = series(op, 1), series(op, 2)
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{label + ' (' + unit + ')':44s} {statistics.median(a):12.1f} {statistics.median(b):12.1f} {statistics.median(ratios):11.2f}x   "
          + " ".join(f"{x:.2f}" for x in ratios))
load, nbytes = series("load", 1) + series("load", 2), series("bytes", 1) + series("bytes", 2)
n = metrics * days * 1440
print(f"{'bulk INSERT ... SELECT of ' + str(n) + ' rows (ms, once)':44s} {load[0]:12.1f} {load[1]:12.1f} {load[1] / load[0]:11.2f}x")
print(f"{'bytes per stored point (retention_stats)':44s} {nbytes[0]:12.0f} {nbytes[1]:12.0f}")
ret = [r[3] for r in rows if r[0] == "retention"]
print(f"rows removed per cleanup round: {', '.join(ret)} (the same on both: checked each round)")
rec = series("record", 2)
print(f"per point on the cluster: record_metric() {1e6 / statistics.median(rec) * 2:.0f} us of a client's time;"
      f" steady pass {statistics.median(series('steady', 2)) * 1000 / (metrics * 5):.0f} us,"
      f" cold pass {statistics.median(series('cold', 2)) * 1000 / (metrics * 1440):.2f} us,"
      f" flush {statistics.median(series('flush', 2)) * 1000 / obs_names:.0f} us per name;"
      f" bulk insert {load[1] * 1000 / n:.1f} us (one node {load[0] * 1000 / n:.1f} us)")
PY
