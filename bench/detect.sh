#!/usr/bin/env bash
# Detection cost, side by side with what the origin had to do, in one run:
#   steady state: a detect_anomalies() pass over METRICS metrics with 5 new points each, in the
#     backend that ran the previous pass and kept its detectors (the worker's case:
#     thrillmon.session_detector_cache), against a plain SQL z-score query
#     over the last 24 h of the same metrics (target: at least 30x faster); with the default
#     thrillmon.detect_threads (2) and, alternately, with 1;
#   cold start: a pass in a new backend, which rebuilds every metric from its 24 h lookback,
#     against a serial SELECT count(*), sum(metric_value) over the same rows (target: at most 3x);
#   memory: the backend's private memory (RssAnon) before and after the cold pass, per metric.
# Medians of ROUNDS runs. Run with `make bench` or inside a cluster that preloads thrillmon.
set -euo pipefail
METRICS=${METRICS:-1000}
ROUNDS=${ROUNDS:-5}
db=thrillmon_bench_detect
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q <<SQL
CREATE EXTENSION thrillmon;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL;
-- 24 h of one-minute points for each metric, ending two minutes ago, inserted in time order (as
-- collection writes them).
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'performance', 100 + 10 * random(), now() - interval '2 minutes' - g * interval '1 minute'
FROM generate_series(0, 1439) g, generate_series(1, $METRICS) m
ORDER BY g DESC, m;
VACUUM ANALYZE thrillmon.metric_time_series;
CREATE FUNCTION bench_ms(q text) RETURNS double precision LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN EXTRACT(EPOCH FROM clock_timestamp() - t0) * 1000;
END \$\$;
-- Five new points per metric, stamped over the last half second (after the last pass's horizon:
-- the horizon is the real clock, so new points cannot be a minute apart without waiting minutes).
CREATE FUNCTION add_points() RETURNS void LANGUAGE sql AS \$\$
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'metric_' || m, 'performance', 100 + 10 * random(), clock_timestamp() - k * interval '100 milliseconds'
FROM generate_series(5, 1, -1) k, generate_series(1, $METRICS) m
\$\$;
-- A first pass, so that there is a previous pass (and its horizon) to carry on from.
SELECT count(*) >= 0 FROM thrillmon.detect_anomalies();
SQL
rows=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series")
zscore="SELECT count(*) FROM (SELECT r.metric_name, (r.metric_value - s.mu) / nullif(s.sd, 0) AS z
	FROM (SELECT metric_name, avg(metric_value) AS mu, stddev_samp(metric_value) AS sd FROM thrillmon.metric_time_series
	      WHERE \"timestamp\" > now() - interval '24 hours' GROUP BY metric_name) s
	JOIN thrillmon.metric_time_series r ON r.metric_name = s.metric_name AND r.\"timestamp\" > now() - interval '5 minutes') x"

# Steady state: one session, ROUNDS passes, each after 5 new points per metric.
steady=$( {
	# (A session other than the worker gives its detectors back after each pass; this one keeps
	# them, as the worker does: the case the steady figure is about.)
	echo "SET thrillmon.session_detector_cache = on;"
	echo "SELECT add_points(); SELECT bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()') AS warm;"
	for _ in $(seq "$ROUNDS"); do
		# the default (thrillmon.detect_threads = 2), then the backend alone, alternately
		echo "SELECT pg_sleep(0.5), add_points();"
		echo "SELECT 'steady', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');"
		echo "SET thrillmon.detect_threads = 1; SELECT pg_sleep(0.5), add_points();"
		echo "SELECT 'steady1', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()'); RESET thrillmon.detect_threads;"
		echo "SELECT 'zscore', bench_ms(\$q\$$zscore\$q\$);"
	done
} | q -F ' ')
steady_ms=$(echo "$steady" | awk '$1 == "steady" {print $2}' | median)
steady1_ms=$(echo "$steady" | awk '$1 == "steady1" {print $2}' | median)
zscore_ms=$(echo "$steady" | awk '$1 == "zscore" {print $2}' | median)

# Cold start: each pass in a new backend (no cache), so it rebuilds 24 h x METRICS from the table.
cold_list=; scan_list=; mem_list=
for _ in $(seq "$ROUNDS"); do
	q -c "SELECT add_points()" >/dev/null
	# (The backend keeps what it rebuilt, as the worker does: the memory figure is the detectors'.)
	out=$(q -F ' ' <<'SQL'
SET thrillmon.session_detector_cache = on;
SELECT 'before', (SELECT regexp_replace(l, '\D', '', 'g') FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/status'), E'\n') l WHERE l LIKE 'RssAnon:%');
SELECT 'cold', bench_ms('SELECT count(*) FROM thrillmon.detect_anomalies()');
SELECT 'after', (SELECT regexp_replace(l, '\D', '', 'g') FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/status'), E'\n') l WHERE l LIKE 'RssAnon:%');
SET max_parallel_workers_per_gather = 0;
SELECT 'scan', bench_ms($q$SELECT count(*), sum(metric_value) FROM thrillmon.metric_time_series WHERE "timestamp" > now() - interval '24 hours' - interval '10 minutes'$q$);
SQL
)
	cold_list="$cold_list $(echo "$out" | awk '$1 == "cold" {print $2}')"
	scan_list="$scan_list $(echo "$out" | awk '$1 == "scan" {print $2}')"
	mem_list="$mem_list $(echo "$out" | awk '$1 == "before" {b=$2} $1 == "after" {a=$2} END {print a - b}')"
done
cold_ms=$(echo $cold_list | tr ' ' '\n' | median)
scan_ms=$(echo $scan_list | tr ' ' '\n' | median)
mem_kb=$(echo $mem_list | tr ' ' '\n' | median)

printf 'rows in metric_time_series: %s (%s metrics x 24 h of one-minute points, plus new ones)\n' "$rows" "$METRICS"
printf 'steady state: detect_anomalies() %.1f ms, SQL z-score over 24 h %.1f ms: %.1fx faster (target >= 30x)\n' \
	"$steady_ms" "$zscore_ms" "$(awk -v a="$zscore_ms" -v b="$steady_ms" 'BEGIN {print a / b}')"
printf '              with thrillmon.detect_threads = 1: %.1f ms, %.1fx\n' \
	"$steady1_ms" "$(awk -v a="$zscore_ms" -v b="$steady1_ms" 'BEGIN {print a / b}')"
printf 'cold start:   detect_anomalies() %.1f ms, serial count/sum over the same rows %.1f ms: %.2fx (target <= 3x)\n' \
	"$cold_ms" "$scan_ms" "$(awk -v a="$cold_ms" -v b="$scan_ms" 'BEGIN {print a / b}')"
printf 'memory: backend private memory grew %s kB over the cold pass: %.1f kB per metric (target <= 32 kB)\n' \
	"$mem_kb" "$(awk -v a="$mem_kb" -v b="$METRICS" 'BEGIN {print a / b}')"
