#!/usr/bin/env bash
# pg_dump / pg_restore of a database using thrillmon: every user table's rows, edited shipped
# configuration rows, sequences and daily partitions (with their indexes) come back, and the
# restore itself reports no error. Speaks TAP. Needs PG* variables pointing at a cluster.
set -uo pipefail
src=thrillmon_dump_src
dst=thrillmon_dump_dst
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib/tap.sh"

echo "1..5"
for d in $src $dst; do psql -X -q -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null 2>&1; done
psql -X -q -v ON_ERROR_STOP=1 -d $src <<'SQL' >/dev/null
CREATE EXTENSION thrillmon;
SELECT thrillmon.maintain_partitions(2);
SELECT thrillmon.record_metric('m', g, ts => now() - g * interval '1 hour') FROM generate_series(1, 100) g;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('backfill', 1, '2020-01-01 12:00+00'), ('far_future', 2, '20000-01-01 00:00+00');
SELECT thrillmon.maintain_partitions(2);
UPDATE thrillmon.retention_policies SET retention_days = 14 WHERE target = 'metrics';
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 4.5 WHERE metric_name = '*';
INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('m', 2);
INSERT INTO thrillmon.system_alerts (alert_type, severity, message) VALUES ('anomaly', 'high', 'spike');
INSERT INTO thrillmon.incidents (title, severity) VALUES ('first', 'low'), ('second', 'high');
INSERT INTO thrillmon.incident_alerts SELECT i.id, a.id FROM thrillmon.incidents i, thrillmon.system_alerts a;
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end)
VALUES ('m', 'spike', 'high', 9, 9, 0.9, 'mad', now(), now());
INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('c', 'SELECT 1');
SELECT thrillmon.cleanup_old_alerts(90);
SQL

pg_dump -Fc -d $src -f "$work/db.dump"
pg_restore -d $dst "$work/db.dump" > "$work/restore.txt" 2>&1
is "$?" "0" "pg_restore reports no error"
sed 's/^/# /' "$work/restore.txt"

snapshot() {
	psql -X -At -d "$1" <<'SQL'
SELECT 'metrics', count(*), sum(metric_value) FROM thrillmon.metric_time_series;
SELECT 'partitions', string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass;
SELECT 'indexes', count(*) FROM pg_indexes WHERE schemaname = 'thrillmon';
SELECT 'policies', string_agg(target || '=' || retention_days, ',' ORDER BY target) FROM thrillmon.retention_policies;
SELECT 'config', string_agg(metric_name || '=' || sensitivity, ',' ORDER BY metric_name) FROM thrillmon.anomaly_detection_config;
SELECT 'alerts', count(*) FROM thrillmon.system_alerts;
SELECT 'incidents', string_agg(incident_number || ':' || title, ',' ORDER BY incident_number) FROM thrillmon.incidents;
SELECT 'links', count(*) FROM thrillmon.incident_alerts;
SELECT 'anomalies', count(*) FROM thrillmon.anomaly_detections;
SELECT 'collectors', string_agg(name, ',') FROM thrillmon.metric_collectors;
SELECT 'jobs', string_agg(job || '/' || target, ',' ORDER BY run_id) FROM thrillmon.job_runs;
SQL
}
snapshot $src > "$work/src.txt"
snapshot $dst > "$work/dst.txt"
is "$(diff "$work/src.txt" "$work/dst.txt" && echo same)" "same" "every table, partition, index and edited config row is restored"
grep -q "policies.*metrics=14" "$work/dst.txt"
is "$?" "0" "an edited shipped policy keeps its edited value"
# Sequences continue where they were: the next incident is INC-000003, the next run after the last.
is "$(psql -X -At -q -d $dst -c "INSERT INTO thrillmon.incidents (title, severity) VALUES ('third', 'low') RETURNING incident_number")" \
	"INC-000003" "the incident number sequence continues after restore"
is "$(psql -X -At -d $dst -c "SELECT thrillmon.cleanup_old_metrics(30) >= 1")" "t" "retention works on the restored partitions"

for d in $src $dst; do psql -X -q -c "DROP DATABASE $d" >/dev/null; done
exit $((fails > 0))
