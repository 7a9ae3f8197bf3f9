#!/usr/bin/env bash
# The worker's detection job against a real cluster of its own: it runs detect_anomalies() every
# thrillmon.detect_interval, finds a spike recorded before its first pass and one recorded
# later (its steady state), raises one alert per episode, scores no point twice across passes,
# a SIGTERM of the worker (its detector cache is lost: the next pass rebuilds it) and an
# immediate stop of the whole cluster (a pass in flight is rolled back and marked failed), and
# schedule_with_pg_cron() hands detection to pg_cron; metrics that stop arriving raise no_data,
# across those restarts, and resolve when they come back. Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND datname = 'tm'"
detect_runs() { sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'"; }
# wait_runs SECONDS N: until N more detection runs than now have succeeded.
wait_runs() { local want=$(($(detect_runs) + $2)); wait_for "$1" "SELECT count(*) >= $want FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'"; }
# A noise series for METRIC: N points a second apart ending now, then (optionally) a spike now.
noise() { sql "SELECT setseed(0.5); SELECT count(thrillmon.record_metric('$1', 100 + (random() - 0.5) * 2, 'performance',
	ts => clock_timestamp() - ($2 - g) * interval '1 second')) FROM generate_series(1, $2) g" >/dev/null; }
spike() { sql "SELECT thrillmon.record_metric('$1', $2, 'performance', ts => clock_timestamp())" >/dev/null; }

echo "1..23"
cluster_init tm
# (Its metrics are new, a few hundred points: each spike alone would raise no alert while its
# detector is not calibrated. The worker's passes are the subject here, not corroboration.)
cluster_conf "shared_preload_libraries = 'thrillmon,pg_cron'" "thrillmon.collect_interval = 3600" \
	"thrillmon.detect_interval = 1" "thrillmon.enabled = off" "cron.database_name = 'tm'" "cron.host = '$work'" \
	"thrillmon.corroborate_new_metrics = off"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "SELECT thrillmon.maintain_partitions(1)" >/dev/null
# Alerts for every anomaly; no automatic incidents (not the subject here).
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null

# 1. History with a spike in it, recorded before the first pass: the first pass scores the lookback.
sql "SELECT setseed(0.25); SELECT count(thrillmon.record_metric('early', CASE WHEN g = 300 THEN 130 ELSE 100 + (random() - 0.5) * 2 END,
	'performance', ts => clock_timestamp() - (400 - g) * interval '1 second')) FROM generate_series(1, 360) g" >/dev/null
# (The worker was off until now, so its first pass comes after the history was recorded.)
sql "ALTER SYSTEM SET thrillmon.enabled = on" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_runs 20 2
ok $? "the worker runs detection every thrillmon.detect_interval (two passes within 20 s)"
is "$(sql "SELECT count(*) || '/' || min(anomaly_type) || '/' || (min(anomaly_value) = 130) FROM thrillmon.anomaly_detections WHERE metric_name = 'early'")" \
	"1/spike/true" "its first pass found the spike in the history it had not seen (once, as a spike)"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND status <> 'succeeded'")" \
	"0" "no detection run failed"

# 2. Steady state: a spike recorded while the worker runs is found by a later pass.
noise live 300
wait_runs 20 2
spike live 140
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.anomaly_detections WHERE metric_name = 'live' AND anomaly_value = 140)"
ok $? "a spike recorded now is found by the next passes (the worker's cached detectors)"
is "$(sql "SELECT count(*) FROM thrillmon.system_alerts WHERE metric_name = 'live' AND alert_type = 'anomaly' AND resolved_at IS NULL")" "1" \
	"one alert for it"
spike live 141
wait_runs 20 2
is "$(sql "SELECT count(*) FROM thrillmon.system_alerts WHERE metric_name = 'live' AND alert_type = 'anomaly'")" "1" \
	"a second spike in the same episode raises no second alert (de-duplicated within the cooldown)"

# 3. SIGTERM: the worker restarts (after bgw_restart_time), its cache is gone; the next pass
#    rebuilds from history and finds a new spike, and nothing is scored twice.
before=$(sql "SELECT count(*) FROM thrillmon.anomaly_detections")
old_pid=$(sql "$worker_pid_sql")
sql "SELECT pg_terminate_backend(($worker_pid_sql))" >/dev/null
wait_for 30 "SELECT EXISTS ($worker_pid_sql) AND ($worker_pid_sql) <> $old_pid"
ok $? "the worker is back after SIGTERM"
noise after_restart 200
spike after_restart 150
wait_for 30 "SELECT EXISTS (SELECT 1 FROM thrillmon.anomaly_detections WHERE metric_name = 'after_restart' AND anomaly_value = 150)"
ok $? "after the restart a new spike is found (the detectors were rebuilt from history)"
is "$(sql "SELECT count(*) FROM (SELECT metric_name, time_window_end FROM thrillmon.anomaly_detections GROUP BY 1, 2 HAVING count(*) > 1) d")" "0" \
	"no point was scored twice"
is "$(sql "SELECT count(*) FROM thrillmon.anomaly_detections WHERE metric_name IN ('early', 'live') AND anomaly_value NOT IN (130, 140, 141)")" "0" \
	"the noise around the spikes raised nothing"
sql "SELECT metric_name, anomaly_value, anomaly_type, detection_algorithm, deviation_score FROM thrillmon.anomaly_detections WHERE anomaly_value NOT IN (130, 140, 141, 150)" | sed 's/^/# /' 

# 4. Immediate stop in the middle of a pass: a session holds the detection lock, so the worker's
#    next pass waits inside its transaction (its job_runs row committed as 'running'); then
#    pg_ctl stop -m immediate. At start the run is marked failed, the pass's work is gone with
#    its transaction, and detection carries on from the last committed horizon.
horizon=$(sql "SELECT horizon FROM thrillmon.detector_progress")
anomalies=$(sql "SELECT count(*) FROM thrillmon.anomaly_detections")
psql -X -q -At -c "BEGIN; SELECT 1 FROM thrillmon.job_locks WHERE name = 'detect_pass' FOR UPDATE; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
holder=$!
noise mid_pass 200 # (past a new metric's 128 learning points)
spike mid_pass 160
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'running' AND started_at > '$horizon')"
ok $? "a detection pass is in flight (waiting on the lock)"
pg_ctl -m immediate -w stop >/dev/null
wait $holder 2>/dev/null
cluster_start
wait_runs 30 1
ok $? "after the immediate stop and a restart, detection runs again"
is "$(sql "SELECT count(*) || '/' || min(error) FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'failed'")" \
	"1/interrupted: server or worker restarted" "the interrupted pass is marked failed"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'running'")" "0" "no detection run is left running"
is "$(sql "SELECT horizon >= '$horizon' FROM thrillmon.detector_progress")" "t" "the horizon never moves back"
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.anomaly_detections WHERE metric_name = 'mid_pass' AND anomaly_value = 160)"
ok $? "the spike the interrupted pass was about to score is found by the next one"
is "$(sql "SELECT count(*) FROM (SELECT metric_name, time_window_end FROM thrillmon.anomaly_detections GROUP BY 1, 2 HAVING count(*) > 1) d")" "0" \
	"still no point scored twice"
is "$(sql "SELECT count(*) FROM thrillmon.system_alerts WHERE metric_name = 'mid_pass' AND alert_type = 'anomaly'")" "1" "and one alert for it, not two"
: "$anomalies"

# 5. Metrics that stop arriving. 'live' (a point a second) has had none since section 2, and the
#    worker has restarted twice since (each start learns every metric's cadence from its lookback:
#    a silent metric has no new point to be seen by). Its silence is due two minutes (the floor)
#    after its last point.
wait_for 200 "SELECT EXISTS (SELECT 1 FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND metric_name = 'live' AND resolved_at IS NULL)"
ok $? "a metric that stopped arriving raises a no_data alert, across restarts of the worker"
is "$(sql "SELECT count(*) = count(DISTINCT metric_name) FROM thrillmon.system_alerts WHERE alert_type = 'no_data'")" "t" \
	"one no_data alert per silent metric"
spike live 100
wait_for 20 "SELECT resolved_at IS NOT NULL FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND metric_name = 'live'"
ok $? "its points coming again resolve it"

# 6. pg_cron takes detection over: the worker stops running it.
sql "CREATE EXTENSION pg_cron" >/dev/null
is "$(sql "SELECT string_agg(job || '=' || schedule, ',' ORDER BY job) FROM thrillmon.schedule_with_pg_cron()")" \
	"collect=* * * * *,detect=*/5 * * * *,maintenance=15 * * * *,retention=0 3 * * *" \
	"schedule_with_pg_cron() registers detection every 5 minutes, as the origin ran it"
sleep 1
runs=$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND run_by = 'postgres' AND started_at > now()")
last=$(sql "SELECT max(run_id) FROM thrillmon.job_runs WHERE job = 'detect'")
sleep 3
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'detect' AND run_id > $last")" "0" \
	"with detection in pg_cron's hands the worker runs no detection pass of its own"
: "$runs"

pg_ctl -m fast -w stop >/dev/null
exit $((fails > 0))
