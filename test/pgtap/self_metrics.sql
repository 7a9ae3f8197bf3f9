-- thrillmon's own alert and incident counts (unresolved_alerts, active_incidents) are scored like
-- any metric, but never alerted on: each alert moves them, so an alert on them would be an alert
-- about alerts, and the first real alert of a quiet database would raise a second one.
BEGIN;
SET client_min_messages = warning;
SELECT plan(6);
-- (A metric of a few hundred points is new: its lone anomaly would raise no alert. What is tested
-- here is what alerts do; corroboration has its own section in detection.sql.)
SET thrillmon.corroborate_new_metrics = off;

\ir fixtures/clean_slate.sql

-- 300 points a minute apart ending now, around 2, with a jump to 40 at the last one (the shape of
-- an alert storm in unresolved_alerts).
CREATE FUNCTION pg_temp.history(p_name text, p_category text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(thrillmon.record_metric(p_name, CASE WHEN g = 300 THEN 40 ELSE 2 + (g * 37) % 3 END,
		p_category, NULL, now() - make_interval(mins => 301 - g))) FROM generate_series(1, 300) g
$$;
SELECT pg_temp.history('unresolved_alerts', 'monitoring') \g /dev/null
SELECT pg_temp.history('active_incidents', 'monitoring') \g /dev/null
SELECT pg_temp.history('app_errors', 'performance') \g /dev/null
UPDATE thrillmon.incident_policy SET open_on_critical = false;

CREATE TEMP TABLE found AS SELECT * FROM thrillmon.detect_anomalies();
SELECT ok((SELECT count(*) FROM found WHERE metric_name = 'unresolved_alerts' AND severity IN ('high', 'critical')) > 0,
	'a jump in unresolved_alerts is found and recorded as an anomaly');
SELECT ok((SELECT count(*) FROM found WHERE metric_name = 'active_incidents') > 0, '... as is one in active_incidents');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name IN ('unresolved_alerts', 'active_incidents')), 0,
	'... but neither raises an alert');
SELECT is((SELECT count(*)::int FROM found WHERE metric_name IN ('unresolved_alerts', 'active_incidents') AND alert_id IS NOT NULL), 0,
	'... and no anomaly of theirs joins one');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'app_errors'), 1,
	'the same jump in any other metric raises its alert');
-- (Even a configuration row asking for alerts on them does not: the rule is not a setting.)
INSERT INTO thrillmon.anomaly_detection_config (metric_name, auto_create_alert, alert_threshold_score)
VALUES ('unresolved_alerts', true, 0);
DELETE FROM thrillmon.anomaly_detections WHERE metric_name = 'unresolved_alerts';
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'unresolved_alerts'), 0,
	'a configuration row with auto_create_alert on unresolved_alerts raises none either');

SELECT * FROM finish();
ROLLBACK;
