#!/usr/bin/env bash
# B1, B3, B4, B5 side by side in one run: thrillmon's partitioned table against the origin's
# unpartitioned table (with its index) and pg_partman on the same data.
#   B3  DAYS days x METRICS metrics x one point a minute (60 x 100 = 8.64 M rows): time, WAL and
#       disk returned by cleanup_old_metrics(30) vs DELETE ... WHERE timestamp < now() - 30 days
#       (+ VACUUM) vs pg_partman's run_maintenance() retention.
#   B4  cleanup_old_metrics while 2 clients insert: the longest insert wait, and no row newer
#       than the cut-off lost.
#   B5  the dashboard query (last 24 h of one metric) on the partitioned vs the unpartitioned table.
#   B1  record_metric() vs a plain single-row INSERT into the unpartitioned copy, 1 and 2 clients.
# Run with `make bench` (scripts/bench.sh), or inside a cluster with pg_partman available.
set -euo pipefail
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
DAYS=${DAYS:-60}
METRICS=${METRICS:-100}
B1_S=${B1_S:-5}
B1_ROUNDS=${B1_ROUNDS:-5}
db=thrillmon_bench_retention
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }
now_ns() { date +%s%N; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1

echo "loading $DAYS days x $METRICS metrics x 1/min = $((DAYS * METRICS * 1440)) rows into each of three tables..."
q <<SQL
CREATE EXTENSION thrillmon;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
-- thrillmon: a point per day first, so maintain_partitions() makes every daily partition (at most
-- 32 a call, for the days the metrics policy keeps: as if it kept them all while they arrived),
-- then the bulk.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'seed', 'system', 0, date_trunc('minute', now()) - d * interval '1 day' FROM generate_series(0, $DAYS) d;
UPDATE thrillmon.retention_policies SET retention_days = 36500 WHERE target = 'metrics';
DO \$\$ BEGIN WHILE (thrillmon.maintain_partitions()->>'days_waiting')::int > 0 LOOP END LOOP; END \$\$;
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';
DELETE FROM thrillmon.metric_time_series WHERE metric_name = 'seed';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'system', random() * 100, date_trunc('minute', now()) - s * interval '1 minute'
FROM generate_series(1, $METRICS) m, generate_series(0, $DAYS * 1440 - 1) s;
-- The origin's table: unpartitioned, with its index.
CREATE TABLE public.origin (id bigserial PRIMARY KEY, metric_name text NOT NULL, metric_category text NOT NULL,
	metric_value float8 NOT NULL, "timestamp" timestamptz NOT NULL DEFAULT now(), metadata jsonb);
INSERT INTO public.origin (metric_name, metric_category, metric_value, "timestamp", metadata)
SELECT metric_name, metric_category, metric_value, "timestamp", metadata FROM thrillmon.metric_time_series;
CREATE INDEX ON public.origin (metric_name, "timestamp" DESC);
-- pg_partman: daily native partitions over the same range, same index.
CREATE TABLE public.pm (metric_name text NOT NULL, metric_category text NOT NULL, metric_value float8 NOT NULL,
	"timestamp" timestamptz NOT NULL DEFAULT now(), metadata jsonb) PARTITION BY RANGE ("timestamp");
CREATE INDEX ON public.pm (metric_name, "timestamp" DESC);
SELECT partman.create_parent('public.pm', 'timestamp', 'native', 'daily', p_premake := 4,
	p_start_partition := (now() - interval '$((DAYS + 1)) days')::date::text);
INSERT INTO public.pm SELECT * FROM thrillmon.metric_time_series;
UPDATE partman.part_config SET retention = '30 days', retention_keep_table = false, retention_keep_index = false
WHERE parent_table = 'public.pm';
CHECKPOINT;
SQL
q -c "VACUUM ANALYZE" >/dev/null
rows=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series")
echo "loaded: $rows rows per table"

tsize="SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)"
measure() { # label, sql, size-sql
	local w0 s0 t0 t1 w1 s1
	q -c "CHECKPOINT" >/dev/null
	s0=$(q -c "$3"); w0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	t0=$(now_ns); q -c "$2" >/dev/null; t1=$(now_ns)
	w1=$(q -c "SELECT pg_current_wal_insert_lsn()"); s1=$(q -c "$3")
	echo "$1 $(ms "$t0" "$t1") $(q -c "SELECT pg_wal_lsn_diff('$w1', '$w0')") $s0 $s1"
}
# B5 first, before anything is removed: the dashboard query, median of 20 runs each.
dash() {
	python3 - "$1" <<'PY'
import subprocess, sys, time, os
sql = sys.argv[1]
times = []
for _ in range(21):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-d", os.environ.get("DB", ""), "-c", "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) " + sql],
                         capture_output=True, text=True, check=True).stdout
    t = [l for l in out.splitlines() if l.startswith("Execution Time")]
    times.append(float(t[0].split()[2]))
times = sorted(times[1:])
print(times[len(times) // 2])
PY
}
export DB=$db
b5_part=$(dash "SELECT \"timestamp\", metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'metric_7' AND \"timestamp\" > now() - interval '24 hours' ORDER BY \"timestamp\"")
b5_orig=$(dash "SELECT \"timestamp\", metric_value FROM public.origin WHERE metric_name = 'metric_7' AND \"timestamp\" > now() - interval '24 hours' ORDER BY \"timestamp\"")

# B3.
r_tm=$(measure thrillmon "SELECT thrillmon.cleanup_old_metrics(30)" "$(printf "$tsize" "'thrillmon.metric_time_series'")")
r_pm=$(measure partman "SELECT partman.run_maintenance('public.pm')" "$(printf "$tsize" "'public.pm'")")
r_del=$(measure delete "DELETE FROM public.origin WHERE \"timestamp\" < now() - interval '30 days'" "SELECT pg_total_relation_size('public.origin')")
t0=$(now_ns); q -c "VACUUM public.origin" >/dev/null; t1=$(now_ns)
vac_ms=$(ms "$t0" "$t1"); after_vacuum=$(q -c "SELECT pg_total_relation_size('public.origin')")
left_tm=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" < now() - interval '30 days 1 minute'")
left_pm=$(q -c "SELECT count(*) FROM public.pm WHERE \"timestamp\" < now() - interval '30 days 1 minute'")

# B4: reload 31..40 days ago into thrillmon (expired data to drop), then clean up under insert load.
q <<SQL >/dev/null
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'seed', 'system', 0, date_trunc('minute', now()) - d * interval '1 day' FROM generate_series(31, 40) d;
UPDATE thrillmon.retention_policies SET retention_days = 36500 WHERE target = 'metrics';
DO \$\$ BEGIN WHILE (thrillmon.maintain_partitions()->>'days_waiting')::int > 0 LOOP END LOOP; END \$\$;
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'system', 1, date_trunc('minute', now()) - interval '31 days' - s * interval '1 minute'
FROM generate_series(1, $METRICS) m, generate_series(0, 9 * 1440) s;
CHECKPOINT;
SQL
cat > "$work/ingest.sql" <<'SQL'
SELECT thrillmon.record_metric('b4_ingest', random(), 'performance');
SQL
# One fixed lower bound for both counts: with now() in it, a minute boundary passing between them
# moved the window and 100 rows (a minute of 100 metrics) seemed lost.
b4_since=$(q -c "SELECT now() - interval '29 days'")
before_b4=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" >= '$b4_since'")
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -T 8 -l --log-prefix="$work/b4" -f "$work/ingest.sql" $db > "$work/b4.txt" 2>&1 &
bench=$!
sleep 2
b4_t0=$(now_ns); q -c "SELECT thrillmon.cleanup_old_metrics(30)" > "$work/b4_removed.txt"; b4_t1=$(now_ns)
wait $bench
b4_calls=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/b4.txt")
b4_rows=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'b4_ingest'")
after_b4=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" >= '$b4_since' AND metric_name <> 'b4_ingest'")
# pgbench -l: one line per transaction, field 3 = latency in microseconds, fields 5 and 6 its end
# (epoch seconds, microseconds). The target is about inserts that overlap the cleanup; the longest
# insert of the whole run, and when it ended relative to the cleanup's start, is reported too.
read -r b4_max_ms b4_all_ms b4_all_at < <(cat "$work"/b4.[0-9]* 2>/dev/null | awk -v t0="$((b4_t0 / 1000))" -v t1="$((b4_t1 / 1000))" '
	NF >= 6 { end = $5 * 1000000 + $6; lat = $3
	          if (end >= t0 && end - lat <= t1 && lat > m) m = lat
	          if (lat > a) { a = lat; at = end - t0 } }
	END { printf "%.1f %.1f %.0f\n", m / 1000, a / 1000, at / 1000 }')

# B1: record_metric vs a plain INSERT, 1 and 2 clients (prepared statements, as a driver would).
echo "SELECT thrillmon.record_metric('b1', random(), 'performance');" > "$work/b1_tm.sql"
echo "INSERT INTO public.origin (metric_name, metric_category, metric_value) VALUES ('b1', 'performance', random());" > "$work/b1_orig.sql"
b1() { "$PG_BINDIR/pgbench" -n -M prepared -c "$2" -j "$2" -T "$B1_S" -f "$1" $db 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
# B1_ROUNDS rounds, thrillmon and the baseline alternating, so that a checkpoint or an autovacuum
# lands on both alike; each figure is the median of its rounds.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for c in 1 2; do
	tm="" or=""
	for r in $(seq "$B1_ROUNDS"); do
		tm="$tm $(b1 "$work/b1_tm.sql" $c)"; or="$or $(b1 "$work/b1_orig.sql" $c)"
	done
	echo "B1 rounds, $c client(s): record_metric$tm; INSERT$or"
	printf -v "b1_tm$c" '%s' "$(echo "$tm" | median)"; printf -v "b1_or$c" '%s' "$(echo "$or" | median)"
done

python3 - <<PY
def f(x): return float(x)
tm = "$r_tm".split(); pm = "$r_pm".split(); de = "$r_del".split()
mb = lambda b: f(b) / 2**20
print(f"B3 retention over {int('$rows'):,} rows ($DAYS days x $METRICS metrics x 1/min), cut-off 30 days")
print(f"  {'':22s} {'time ms':>10s} {'WAL MB':>9s} {'size before MB':>15s} {'size after MB':>14s}")
print(f"  {'thrillmon cleanup':22s} {f(tm[1]):10.1f} {mb(tm[2]):9.2f} {mb(tm[3]):15.1f} {mb(tm[4]):14.1f}")
print(f"  {'pg_partman run_maint.':22s} {f(pm[1]):10.1f} {mb(pm[2]):9.2f} {mb(pm[3]):15.1f} {mb(pm[4]):14.1f}")
print(f"  {'DELETE (origin)':22s} {f(de[1]):10.1f} {mb(de[2]):9.2f} {mb(de[3]):15.1f} {mb(de[4]):14.1f}  + VACUUM {f('$vac_ms'):.0f} ms -> {mb('$after_vacuum'):.1f} MB")
print(f"  DELETE / thrillmon time: {f(de[1]) / f(tm[1]):.1f}x (target >= 10x);  thrillmon / pg_partman time: {f(tm[1]) / f(pm[1]):.2f}x (target <= 1)")
print(f"  thrillmon WAL / DELETE WAL: 1/{f(de[2]) / max(f(tm[2]), 1):.0f} (target <= 1/500);  pg_partman: 1/{f(de[2]) / max(f(pm[2]), 1):.0f}")
print(f"  rows older than the cut-off left: thrillmon $left_tm, pg_partman $left_pm (both drop whole days only)")
print(f"B4 cleanup_old_metrics under 2 inserting clients: cleanup {(int('$b4_t1') - int('$b4_t0')) / 1e6:.0f} ms, removed $(cat $work/b4_removed.txt) rows;")
print(f"  longest insert overlapping the cleanup {f('$b4_max_ms'):.1f} ms (target <= 100 ms); longest of the whole run {f('$b4_all_ms'):.1f} ms, ending {int('$b4_all_at')} ms after the cleanup started; inserts made $b4_calls, found $b4_rows; rows newer than the cut-off before $before_b4, after $after_b4")
print(f"B5 dashboard query (24 h of one metric), median execution: partitioned {f('$b5_part'):.3f} ms, unpartitioned {f('$b5_orig'):.3f} ms: {f('$b5_part') / f('$b5_orig'):.2f}x (target <= 1.5x)")
print(f"B1 record_metric vs INSERT (median tps of $B1_ROUNDS alternating rounds of {int('$B1_S')} s): 1 client {f('$b1_tm1'):.0f} vs {f('$b1_or1'):.0f} = {f('$b1_tm1') / f('$b1_or1'):.2f}; 2 clients {f('$b1_tm2'):.0f} vs {f('$b1_or2'):.0f} = {f('$b1_tm2') / f('$b1_or2'):.2f} (target >= 0.9)")
PY
psql -X -q -c "DROP DATABASE $db" >/dev/null
