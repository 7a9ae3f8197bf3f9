#!/usr/bin/env bash
# pg_dump of a database thrillmon has been working in (worker collecting and detecting, a SQL
# collector, edited configuration, anomalies, alerts, an incident), restored with pg_restore into
# a NEW cluster (roles first, with pg_dumpall --roles-only, as a DBA would): everything comes
# back, and that cluster's worker carries on there: it collects, runs the collector as its owner,
# and detection continues from the dumped horizon without scoring an old point again. Speaks TAP.
# Makes, runs and removes its own clusters (the worker needs preload settings).
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

conf() { cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 1" "thrillmon.detect_interval = 1"; }
snapshot="SELECT (SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'svc') || '/' ||
	(SELECT count(*) FROM thrillmon.anomaly_detections) || '/' || (SELECT count(*) FROM thrillmon.system_alerts) || '/' ||
	(SELECT count(*) FROM thrillmon.incidents) || '/' || (SELECT count(*) FROM thrillmon.incident_alerts) || '/' ||
	(SELECT count(*) FROM thrillmon.metric_collectors)"
config="SELECT (SELECT string_agg(metric_name || ':' || sensitivity || ':' || cooldown_minutes, ',' ORDER BY metric_name) FROM thrillmon.anomaly_detection_config)
	|| '/' || (SELECT open_on_critical || ':' || correlation_min_metrics FROM thrillmon.incident_policy)
	|| '/' || (SELECT retention_days FROM thrillmon.retention_policies WHERE target = 'metrics')"

echo "1..12"
# ---- the first cluster: thrillmon at work ----------------------------------------------------
cluster_init tm
conf
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "CREATE ROLE tm_admin LOGIN" >/dev/null 2>&1
sql "GRANT thrillmon_admin TO tm_admin" >/dev/null
sql "SELECT thrillmon.maintain_partitions(1)" >/dev/null
sql "UPDATE thrillmon.anomaly_detection_config SET sensitivity = 5, cooldown_minutes = 45 WHERE metric_name = '*';
	INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('svc', 6);
	UPDATE thrillmon.incident_policy SET correlation_min_metrics = 0;
	UPDATE thrillmon.retention_policies SET retention_days = 21 WHERE target = 'metrics'" >/dev/null
PGUSER=tm_admin sql "SELECT thrillmon.register_collector('answer', 'SELECT 42', 'custom', '1 second')" >/dev/null
sql "SELECT setseed(0.5); SELECT count(thrillmon.record_metric('svc', 100 + (random() - 0.5) * 2, 'performance',
	ts => clock_timestamp() - (400 - g) * interval '1 second')) FROM generate_series(1, 399) g" >/dev/null
wait_for 20 "SELECT count(*) >= 2 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'"
sql "SELECT thrillmon.record_metric('svc', 150, 'performance', ts => clock_timestamp())" >/dev/null
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.anomaly_detections WHERE metric_name = 'svc' AND anomaly_value = 150)"
ok $? "the first cluster's worker detects a spike (alert raised, critical: an incident)"
wait_for 10 "SELECT EXISTS (SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name = 'answer')"
sql "SELECT thrillmon.create_incident('by hand', 'low')" >/dev/null

# ---- dump: roles, then the database; the worker stopped first so nothing changes under us ----
sql "ALTER SYSTEM SET thrillmon.enabled = off" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
before=$(sql "$snapshot")
before_config=$(sql "$config")
before_progress=$(sql "SELECT pass || '/' || horizon FROM thrillmon.detector_progress")
before_pass=$(sql "SELECT pass FROM thrillmon.detector_progress")
as_pg "$PG_BINDIR/pg_dumpall" -h "$work" -p "$port" -U postgres --roles-only > "$work/roles.sql" 2>"$work/dumpall.err"
as_pg "$PG_BINDIR/pg_dump" -h "$work" -p "$port" -U postgres -Fc -f "$work/tm.dump" tm 2>"$work/dump.err"
ok $? "pg_dumpall --roles-only and pg_dump -Fc succeed"
pg_ctl -m fast -w stop >/dev/null

# ---- a new cluster, restored as the README says: roles first, then pg_restore with the worker
#      off (or --single-transaction); then the worker is switched on and serves it -------------
mv "$data" "$work/old_data"
cluster_init tm
conf
echo "thrillmon.enabled = off" >> "$data/postgresql.conf"
cluster_start
psql -X -q -d postgres -f "$work/roles.sql" >/dev/null 2>&1
as_pg "$PG_BINDIR/pg_restore" -h "$work" -p "$port" -U postgres --single-transaction -d tm "$work/tm.dump" > "$work/restore.txt" 2>&1
is "$?/$(grep -c -i error "$work/restore.txt")" "0/0" "pg_restore into the new cluster reports no error"
sed 's/^/# /' "$work/restore.txt" | head -5
is "$(sql "$snapshot")" "$before" "metrics, anomalies, alerts, incidents, their links and collectors are all there"
is "$(sql "$config")" "$before_config" "edited configuration (detection defaults and per metric, incident policy, retention) kept"
is "$(sql "SELECT pass || '/' || horizon FROM thrillmon.detector_progress")" "$before_progress" \
	"detection progress (pass and horizon) kept"
is "$(sql "SELECT nextval('thrillmon.detector_pass_seq') > $before_pass")" "t" "the pass sequence continues past the dumped pass"
is "$(sql "SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'answer'")" "tm_admin" "the collector keeps its owner"

# ---- the worker carries on ---------------------------------------------------------------------
restored_at=$(sql "SELECT clock_timestamp()")
sql "ALTER SYSTEM SET thrillmon.enabled = on" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded' AND started_at > '$restored_at')"
ok $? "the new cluster's worker collects in the restored database"
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name = 'answer' AND \"timestamp\" > '$restored_at')"
ok $? "and runs the restored SQL collector (as its owner)"
sql "SELECT thrillmon.record_metric('svc', 100, 'performance', ts => clock_timestamp() + g * interval '10 milliseconds') FROM generate_series(1, 20) g" >/dev/null
sleep 0.5
sql "SELECT thrillmon.record_metric('svc', 180, 'performance', ts => clock_timestamp())" >/dev/null
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.anomaly_detections WHERE metric_name = 'svc' AND anomaly_value = 180)"
ok $? "detection carries on: a new spike is found"
is "$(sql "SELECT count(*) FROM (SELECT metric_name, time_window_end FROM thrillmon.anomaly_detections GROUP BY 1, 2 HAVING count(*) > 1) d")" "0" \
	"no point of the old cluster was scored again"

pg_ctl -m fast -w stop >/dev/null
exit $((fails > 0))
