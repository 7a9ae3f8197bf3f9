#!/usr/bin/env bash
# Detection's memory against a flood of names, in a cluster of its own: the worker scoring
# NAMES metric names of one point each grows by a few MB, not ~23.5 kB a name (0.6.0: 2.36 GB for
# 100k); thrillmon.max_metrics_per_pass leaves the excess unscored and health_check() says so; a
# backend other than the worker gives its detectors back after a pass, and one that keeps them (as
# the worker does) holds them, not the cold pass's points. Memory is read from
# /proc/PID/status (RssAnon: the process's own heap, not the shared buffers it touched).
# And backtest() over a long range holds a batch, not the range. NAMES=20000 and
# BACKTEST_POINTS=300000 in make test; `make detect-memory` for the issue's cases (100,000 names,
# a million points).
# Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

names=${NAMES:-20000}
worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND datname = 'tm'"
rss_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }
detect_runs() { sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'"; }
wait_runs() { local want=$(($(detect_runs) + $2)); wait_for "$1" "SELECT count(*) >= $want FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'"; }
# one_point_names PREFIX N: N names of one point each, dated now.
one_point_names() { sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT '$1' || g, g % 7, now() FROM generate_series(1, $2) g"; }

echo "1..13"
cluster_init tm
# Every name in one pass (the default thrillmon.max_metrics_per_pass is 10,000).
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 3600" \
	"thrillmon.detect_interval = 2" "thrillmon.enabled = off" "thrillmon.max_metrics_per_pass = 1000000"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "SELECT thrillmon.maintain_partitions(1)" >/dev/null
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null
sql "SELECT thrillmon.collect_metrics()" >/dev/null # health_check() wants a collection within the hour

# 1. The worker, settled (a few passes over a handful of metrics), then NAMES one-point names.
sql "SELECT count(thrillmon.record_metric('steady' || g, 100)) FROM generate_series(1, 10) g" >/dev/null
sql "ALTER SYSTEM SET thrillmon.enabled = on" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_runs 30 3
ok $? "the worker runs detection"
wpid=$(sql "$worker_pid_sql")
before=$(rss_kb "$wpid")
one_point_names flood "$names"
wait_for 60 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded' AND (details->>'metrics')::int >= $names)"
ok $? "a pass scored the $names new names"
wait_runs 30 2
after=$(rss_kb "$wpid")
growth_mb=$(((after - before) / 1024))
echo "# worker RssAnon: ${before} kB before, ${after} kB after $names one-point names (+${growth_mb} MB; 0.6.0: ~$((names * 235 / 10240)) MB)"
# 0.6.0 held a 23.5 kB detector per name; the lazy entries are a few dozen bytes each, and the
# pass's scratch is given back. 2 kB a name is ten times what they cost and a tenth of 0.6.0.
ok "$([ "$growth_mb" -lt $((names * 2 / 1024 + 16)) ] && echo 0 || echo 1)" \
	"the worker grew by less than 2 kB a name (+${growth_mb} MB for $names names)"
is "$(sql "SELECT thrillmon.health_check()->>'status'")" "ok" "health_check() is ok after the flood"

# 2. More names with new points than a pass may score: the excess is left, and said.
sql "ALTER SYSTEM SET thrillmon.max_metrics_per_pass = 1000" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
mark=$(sql "SELECT max(run_id) FROM thrillmon.job_runs")
one_point_names more 3000
wait_for 30 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded' AND run_id > $mark AND (details->>'skipped_metrics')::int > 0)"
ok $? "with thrillmon.max_metrics_per_pass = 1000, a pass leaves names unscored"
is "$(sql "SELECT (details->>'metrics') || '/' || (details->>'skipped_metrics') FROM thrillmon.job_runs
	WHERE job = 'detect' AND run_id > $mark AND (details->>'skipped_metrics')::int > 0 ORDER BY run_id LIMIT 1")" "1000/2000" \
	"it scored 1,000 of the 3,000 new names and left 2,000"
is "$(sql "SELECT count(*) FROM jsonb_array_elements_text(thrillmon.health_check()->'reasons') r
	WHERE r = 'detection left 2000 metrics unscored in its last pass (more than thrillmon.max_metrics_per_pass = 1000 had new points)'")" \
	"1" "health_check() says how many were left"
sql "ALTER SYSTEM RESET thrillmon.max_metrics_per_pass" >/dev/null
sql "ALTER SYSTEM SET thrillmon.enabled = off" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_log 10 "internal scheduling is off" 2 # (once at start) the worker's passes are over

# 3. A backend other than the worker: detect_anomalies() over 3,000 metrics of 40 points each
#    (each needs a detector; dated after the last horizon, so they are new) and its memory
#    afterwards, in the same session.
sql "DELETE FROM thrillmon.metric_time_series WHERE metric_name LIKE 'flood%' OR metric_name LIKE 'more%'" >/dev/null
sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT 'full' || g, 100 + i % 3, now() - i * interval '1 microsecond' FROM generate_series(1, 3000) g, generate_series(1, 40) i"
out=$(psql -X -q -At -v ON_ERROR_STOP=1 <<'EOF'
SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'RssAnon:\s+(\d+)');
SELECT count(*) FROM thrillmon.detect_anomalies();
SELECT metrics FROM thrillmon._detect_pass_stats();
SELECT cached FROM thrillmon._detect_pass_stats();
SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'RssAnon:\s+(\d+)');
EOF
)
read -r b_before _ b_metrics b_cached b_after <<<"$(echo $out)"
echo "# backend RssAnon: ${b_before} kB before detect_anomalies(), ${b_after} kB after scoring ${b_metrics} metrics"
is "$b_metrics/$b_cached" "3000/0" "a manual pass scored every metric and kept nothing for the session"
ok "$([ $(((b_after - b_before) / 1024)) -lt 32 ] && echo 0 || echo 1)" \
	"its detectors were given back: the session grew by $(((b_after - b_before) / 1024)) MB (3,000 detectors are ~70 MB)"

# 3b. A backend that keeps its detectors, as the worker does (thrillmon.session_detector_cache):
#    a cold pass over 1,000 metrics with 24 h of one-minute history each (1.44 M points, 46 MB
#    read) leaves the detectors, not the points, resident: at most 32 kB a metric (a detector is
#    about 24 kB). 0.8.0 kept the freed history among the detectors (46–59 kB a metric at 24 h of
#    history): its "was the pass large" test ran after the history had been handed over.
sql "DELETE FROM thrillmon.metric_time_series WHERE metric_name LIKE 'full%'" >/dev/null
sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT 'kept' || m, 100 + (g * m) % 11, now() - interval '2 minutes' - g * interval '1 minute'
	FROM generate_series(0, 1439) g, generate_series(1, 1000) m ORDER BY g DESC, m" >/dev/null
# and one new point each (after the last pass's horizon): the pass scores it, and rebuilds first
sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT 'kept' || m, 100, now() FROM generate_series(1, 1000) m" >/dev/null
out=$(psql -X -q -At -v ON_ERROR_STOP=1 <<'EOF'
SET thrillmon.session_detector_cache = on;
SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'RssAnon:\s+(\d+)');
SELECT count(*) >= 0 FROM thrillmon.detect_anomalies();
SELECT rebuilt || '/' || cached FROM thrillmon._detect_pass_stats();
SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'RssAnon:\s+(\d+)');
EOF
)
read -r k_before _ k_counts k_after <<<"$(echo $out)"
echo "# keeping backend RssAnon: ${k_before} kB before, ${k_after} kB after a cold pass over 1000 metrics ($k_counts rebuilt/cached)"
is "$k_counts" "1000/1000" "the cold pass rebuilt 1,000 detectors and kept them"
ok "$([ -n "$k_after" ] && [ $((k_after - k_before)) -le 32000 ] && echo 0 || echo 1)" \
	"what it keeps is its detectors: $(((k_after - k_before) / 1000)) kB a metric (at most 32)"
sql "DELETE FROM thrillmon.metric_time_series WHERE metric_name LIKE 'kept%'" >/dev/null

# 4. backtest() over BACKTEST_POINTS points of one metric (any reader may call it): its backend's
#    memory while it runs, polled from here. 0.6.0 held every point and score at once (322 MB a
#    million points); the replay holds a batch, and the result spills to disk past work_mem.
points=${BACKTEST_POINTS:-300000}
sql "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
	SELECT 'long', 100 + (g % 17), now() - interval '5 days' + g * interval '1 second' FROM generate_series(1, $points) g"
PGAPPNAME=backtest_mem psql -X -q -At -c "SELECT count(*) FROM thrillmon.backtest('long', '-infinity', 'infinity')" >"$work/bt.txt" 2>&1 &
bt=$!
peak=0
while kill -0 $bt 2>/dev/null; do
	pid=$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'backtest_mem' AND state = 'active'" 2>/dev/null)
	if [ -n "$pid" ]; then
		kb=$(rss_kb "$pid" 2>/dev/null)
		[ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
	fi
	sleep 0.05
done
wait $bt
is "$(cat "$work/bt.txt")" "$points" "backtest() scored all $points points"
echo "# backtest backend RssAnon peak: ${peak} kB for $points points (0.6.0: ~$((points * 322 / 1000000)) MB)"
ok "$([ "$peak" -gt 0 ] && [ $((peak / 1024)) -lt 48 ] && echo 0 || echo 1)" \
	"backtest()'s memory does not grow with the range: peak $((peak / 1024)) MB for $points points"

pg_ctl -m fast -w stop >/dev/null
exit $((fails > 0))
