#!/usr/bin/env bash
# Runs inside pg_virtualenv: the demo proper (see demo.sh).
set -euo pipefail
# The worker serves thrillmon.database, which demo.sh sets to this cluster's "postgres" database.
export PGDATABASE=postgres
run() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off "$@"; }

echo "== CREATE EXTENSION thrillmon; daily partitions"
run -c "CREATE EXTENSION thrillmon" -c "SELECT jsonb_array_length(thrillmon.maintain_partitions()->'created') AS partitions_made_ahead"

echo "== A ThrillWiki-like application schema, watched by SQL collectors (they run as the role that registered them)"
run <<'SQL'
CREATE SCHEMA thrillwiki;
CREATE TABLE thrillwiki.submissions (id bigserial PRIMARY KEY, status text NOT NULL, submitted_at timestamptz NOT NULL,
	moderated_at timestamptz);
INSERT INTO thrillwiki.submissions (status, submitted_at, moderated_at)
SELECT (ARRAY['pending', 'approved', 'approved', 'rejected'])[1 + g % 4], now() - g * interval '7 minutes',
	CASE WHEN g % 4 <> 0 THEN now() - g * interval '7 minutes' + (g % 50) * interval '1 minute' END
FROM generate_series(1, 2000) g;
CREATE TABLE thrillwiki.rate_limit_blocks (blocked_at timestamptz NOT NULL);
INSERT INTO thrillwiki.rate_limit_blocks SELECT now() - g * interval '13 seconds' FROM generate_series(1, 500) g;
CREATE ROLE thrillwiki_monitor NOLOGIN;
GRANT thrillmon_admin TO thrillwiki_monitor;
GRANT USAGE ON SCHEMA thrillwiki TO thrillwiki_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA thrillwiki TO thrillwiki_monitor;
SET ROLE thrillwiki_monitor;
SELECT thrillmon.register_collector('pending_submissions',
	$$SELECT count(*) FROM thrillwiki.submissions WHERE status = 'pending'$$, 'workflow');
SELECT thrillmon.register_collector('submission_approval_rate',
	$$SELECT 100.0 * count(*) FILTER (WHERE status = 'approved') / NULLIF(count(*) FILTER (WHERE status <> 'pending'), 0)
	  FROM thrillwiki.submissions$$, 'workflow');
SELECT thrillmon.register_collector('avg_moderation_time',
	$$SELECT avg(EXTRACT(EPOCH FROM moderated_at - submitted_at) / 60) FROM thrillwiki.submissions WHERE moderated_at IS NOT NULL$$, 'workflow');
SELECT thrillmon.register_collector('rate_limit_violations',
	$$SELECT count(*) FROM thrillwiki.rate_limit_blocks WHERE blocked_at > now() - interval '5 minutes'$$, 'security');
RESET ROLE;
SELECT name, metric_category, collect_interval, owner_role FROM thrillmon.metric_collectors ORDER BY name;
SQL

echo "== Recording six weeks of the origin's metrics through record_metric() (one point per 5 minutes)"
run <<'SQL'
\timing on
SELECT count(thrillmon.record_metric(m.name, m.base + m.amplitude * sin(s / 48.0) + random() * m.noise, m.category,
		jsonb_build_object('source', 'demo'), date_trunc('minute', now()) - s * interval '5 minutes'))
	AS points_recorded
FROM (VALUES
	('api_response_time', 'performance', 180.0, 40.0, 25.0),
	('error_rate', 'performance', 0.8, 0.3, 0.4),
	('database_connections', 'system', 40.0, 10.0, 5.0),
	('cache_hit_rate', 'performance', 97.0, 1.5, 0.8),
	('celery_queue_size', 'system', 12.0, 8.0, 4.0),
	('pending_submissions', 'workflow', 30.0, 12.0, 3.0),
	('rate_limit_violations', 'security', 2.0, 1.0, 2.0),
	('active_incidents', 'monitoring', 0.0, 0.0, 0.0)
) AS m(name, category, base, amplitude, noise), generate_series(0, 42 * 288) AS s;
\timing off
SQL

echo "== maintain_partitions(): the backfilled history within the 30-day retention moves into daily partitions,"
echo "   at most 32 a call (the worker calls again at once); older rows wait for the cleanup"
run <<'SQL'
DO $$
DECLARE r jsonb; n int := 0;
BEGIN
	LOOP
		r := thrillmon.maintain_partitions();
		n := n + 1;
		RAISE NOTICE 'call %: % partitions created, % rows moved, % days waiting, % rows past the retention',
			n, jsonb_array_length(r->'created'), r->'rows_moved', r->'days_waiting', r->'rows_expired';
		EXIT WHEN (r->>'days_waiting')::int = 0;
	END LOOP;
END $$;
SQL

echo "== Anomalies, alerts and incidents of various ages and states"
run <<'SQL'
-- Alerts: resolved long ago, resolved recently, and one still open.
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, created_at, resolved_at)
SELECT 'anomaly', (ARRAY['low','medium','high','critical'])[1 + d % 4], 'api_response_time spiked', 'api_response_time',
	now() - d * interval '1 day', CASE WHEN d % 5 <> 0 THEN now() - d * interval '1 day' + interval '20 minutes' END
FROM generate_series(1, 120, 3) d;
-- Anomalies: every two days, linked to an alert when one was raised that day.
INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity, baseline_value,
	anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end,
	detected_at, alert_created, alert_id)
SELECT 'api_response_time', 'performance', 'spike', 'high', 180, 900, 9.5, 0.97, 'ensemble',
	now() - d * interval '1 day' - interval '5 minutes', now() - d * interval '1 day', now() - d * interval '1 day',
	a.id IS NOT NULL, a.id
FROM generate_series(1, 60, 2) d
LEFT JOIN LATERAL (SELECT id FROM thrillmon.system_alerts s
	WHERE s.created_at::date = (now() - d * interval '1 day')::date LIMIT 1) a ON true;
-- Incidents: one open (keeps its alerts), the rest resolved at various ages.
INSERT INTO thrillmon.incidents (title, severity, status, detected_at, resolved_at)
SELECT 'API latency incident ' || d, 'high', CASE WHEN d = 100 THEN 'open' ELSE 'resolved' END,
	now() - d * interval '1 day', CASE WHEN d = 100 THEN NULL ELSE now() - d * interval '1 day' + interval '2 hours' END
FROM generate_series(10, 130, 30) d;
INSERT INTO thrillmon.incident_alerts (incident_id, alert_id)
SELECT i.id, a.id FROM thrillmon.incidents i JOIN thrillmon.system_alerts a
	ON a.created_at BETWEEN i.detected_at - interval '3 days' AND i.detected_at + interval '3 days';
ANALYZE;
SQL

echo "== Anomaly detection: a first pass over every metric's last 24 h (the worker would do this every 5 minutes)"
run -c "SELECT metric_name, anomaly_type, severity, round(anomaly_value::numeric, 2) AS value, round(baseline_value::numeric, 2) AS baseline, detection_algorithm FROM thrillmon.detect_anomalies() ORDER BY time_window_end"

echo "== Something goes wrong: api_response_time jumps to 900 ms, error_rate shifts to 6 %; the next pass finds it, raises alerts (NOTIFY thrillmon_alerts) and opens an incident"
run <<'SQL'
LISTEN thrillmon_alerts;
SELECT thrillmon.record_metric('api_response_time', 900, 'performance', ts => clock_timestamp());
SELECT thrillmon.record_metric('error_rate', 6 + g * 0.1, 'performance', ts => clock_timestamp()) FROM generate_series(1, 3) g;
SELECT metric_name, anomaly_type, severity, round(anomaly_value::numeric, 2) AS value, round(baseline_value::numeric, 2) AS baseline,
	round(deviation_score::numeric, 1) AS robust_sd, detection_algorithm, alert_created
FROM thrillmon.detect_anomalies() ORDER BY time_window_end;
SELECT alert_type, severity, message FROM thrillmon.system_alerts WHERE resolved_at IS NULL AND alert_type = 'anomaly' ORDER BY created_at;
SELECT incident_number, title, severity, status, (SELECT count(*) FROM thrillmon.incident_alerts ia WHERE ia.incident_id = i.id) AS alerts
FROM thrillmon.incidents i WHERE metadata->>'source' = 'auto';
SQL

echo "== backtest(): replay api_response_time's last 2 hours at sensitivity 4.5 (default) and 3 before changing the configuration"
run -c "SELECT s AS sensitivity, count(*) AS points, count(*) FILTER (WHERE is_anomaly) AS anomalies, round(max(score)::numeric, 4) AS max_score FROM unnest(ARRAY[4.5, 3]) s, thrillmon.backtest('api_response_time', now() - interval '2 hours', 'infinity', NULL, s) GROUP BY s ORDER BY s DESC"

stats="SELECT target, rows, size, oldest::date, newest::date, retention_days AS keep_days, rows_past_retention AS past_retention, last_cleanup_status AS last_status, last_cleanup_removed AS last_removed FROM thrillmon.retention_stats ORDER BY target"
echo "== retention_stats before"
run -c "$stats"

echo "== SELECT thrillmon.run_data_retention_cleanup()"
run -c "SELECT jsonb_pretty(thrillmon.run_data_retention_cleanup())"

echo "== retention_stats after"
run -c "ANALYZE" -c "$stats"

echo "== job_runs"
run -c "SELECT run_id, job, target, status, rows_affected, round(duration_ms::numeric, 1) AS ms FROM thrillmon.job_runs ORDER BY run_id"
echo "== daily partitions now: $(psql -X -At -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass") (oldest: $(psql -X -At -c "SELECT min(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass AND c.relname <> 'metric_time_series_default'"))"

echo "== The background worker, collecting every $(psql -X -At -c "SHOW thrillmon.collect_interval")"
for _ in $(seq 1 60); do
	n=$(psql -X -At -c "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND target = 'scheduled' AND status = 'succeeded'")
	[ "$n" -ge 3 ] && break
	sleep 0.5
done
run -c "SELECT pid IS NOT NULL AS running, state, jobs_run, jobs_failed FROM thrillmon.worker_status()"
run -c "SELECT run_id, job, target, status, rows_affected, round(duration_ms::numeric, 1) AS ms FROM thrillmon.job_runs WHERE job = 'collect' ORDER BY run_id DESC LIMIT 3"
echo "== system_health: latest value of every metric, and the rest"
run -c "SELECT section, name, status, round(value::numeric, 2) AS value, observed_at FROM thrillmon.system_health WHERE section <> 'metric' OR observed_at > now() - interval '1 minute' ORDER BY section, name"
echo "== health_check()"
run -c "SELECT jsonb_pretty(thrillmon.health_check() - 'worker')"
echo "== The terminal dashboard (SELECT * FROM thrillmon.dashboard() \\watch 5 is a live console)"
run -c "SELECT * FROM thrillmon.dashboard(p_metrics => 12)"
# The report: what a newcomer looks at first (the spike, the shift, the alerts and the incident).
report=${DEMO_REPORT:-$PWD/demo-report.html}
psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT thrillmon.report(now() - interval '2 days', now())" > "$report"
echo "== The report: $report ($(wc -c < "$report") bytes; open it in a browser: one HTML file, nothing loaded from a network)"
