-- A metric that stops arriving raises an alert of its own type, no_data, never silence: once per
-- silence, resolved when its points come again. Only regular metrics (a steady cadence) can be
-- silent; a metric whose points come when something happens cannot. (A backend other than the
-- worker sees silent metrics in its cold passes: each pass here starts from the lookback.)
BEGIN;
SET client_min_messages = warning;
SELECT plan(16);

\ir fixtures/clean_slate.sql
UPDATE thrillmon.incident_policy SET open_on_critical = false;

-- Collected every minute for five hours, until 30 minutes ago.
SELECT count(thrillmon.record_metric('stopped', 10 + g % 3, 'system', NULL, now() - make_interval(mins => 30 + g)))
FROM generate_series(0, 300) g \g /dev/null
-- Still arriving, up to a minute ago.
SELECT count(thrillmon.record_metric('alive', 10 + g % 3, 'system', NULL, now() - make_interval(mins => 1 + g)))
FROM generate_series(0, 300) g \g /dev/null
-- Points when something happens: gaps of 1 to 90 minutes, the last 2 hours ago.
SELECT count(thrillmon.record_metric('events', 1, 'custom', NULL, now() - interval '2 hours' - make_interval(mins => (g * g * 7) % 90 + g * 45)))
FROM generate_series(0, 40) g \g /dev/null
-- Regular, stopped, but detection is off for it.
SELECT count(thrillmon.record_metric('switched_off', 1, 'custom', NULL, now() - make_interval(mins => 30 + g)))
FROM generate_series(0, 300) g \g /dev/null
INSERT INTO thrillmon.anomaly_detection_config (metric_name, enabled) VALUES ('switched_off', false);
-- Regular, stopped, under a silence.
SELECT count(thrillmon.record_metric('hushed', 1, 'custom', NULL, now() - make_interval(mins => 30 + g)))
FROM generate_series(0, 300) g \g /dev/null
SELECT thrillmon.create_silence('hushed', now() - interval '1 hour', now() + interval '1 hour', 'planned') \g /dev/null

SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT array_agg(metric_name ORDER BY metric_name) FROM thrillmon.system_alerts WHERE alert_type = 'no_data'),
	ARRAY['stopped'], 'the first pass raises no_data for the metric that stopped, and only for it');
SELECT is((SELECT row(severity, fingerprint, (metadata->>'last_point')::timestamptz, round((metadata->>'interval_seconds')::numeric))::text
	FROM thrillmon.system_alerts WHERE alert_type = 'no_data'),
	row('high', 'no_data:stopped', now() - interval '30 minutes', 60)::text, '... high, with its last point and its interval');
SELECT ok((SELECT message LIKE 'no data from stopped since % (it came every 60.0 s)' FROM thrillmon.system_alerts WHERE alert_type = 'no_data'),
	'... and a message saying so');
SELECT ok((SELECT (metadata->>'silent_seconds')::float8 >= 1800 FROM thrillmon.system_alerts WHERE alert_type = 'no_data'),
	'... for how long it has been silent');
SELECT is((SELECT count(*)::int FROM thrillmon.deliveries d JOIN thrillmon.system_alerts a ON a.id = d.alert_id WHERE a.alert_type = 'no_data'), 0,
	'(no channel: nothing in the outbox)');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND metric_name IN ('events', 'alive')), 0,
	'a metric whose points come when something happens, and one still arriving, raise none');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND metric_name = 'switched_off'), 0,
	'... nor one whose detection is off');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND metric_name = 'hushed'), 0,
	'... nor one under a silence');

-- Again: one alert per silence.
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data'), 1, 'a second pass raises no second alert');
SELECT id AS first_alert FROM thrillmon.system_alerts WHERE alert_type = 'no_data' \gset
SELECT thrillmon.resolve_alert(:'first_alert') \g /dev/null
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data'), 1,
	'resolved by a person: not raised again for the same silence');

-- The metric comes back: the alert resolves by itself.
UPDATE thrillmon.system_alerts SET resolved_at = NULL, metadata = metadata - 'resolved_by' WHERE id = :'first_alert';
SELECT thrillmon.record_metric('stopped', 11, 'system', NULL, now() - interval '10 seconds') \g /dev/null
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT metadata->>'resolved_by' FROM thrillmon.system_alerts WHERE id = :'first_alert'), 'auto',
	'its points coming again resolve it');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND resolved_at IS NULL), 0, '... and none is open');

-- Stopping again later is a new silence: a new alert.
DELETE FROM thrillmon.metric_time_series WHERE metric_name = 'stopped' AND "timestamp" > now() - interval '30 minutes';
SELECT count(thrillmon.record_metric('stopped', 10, 'system', NULL, now() - make_interval(mins => 20 - g))) FROM generate_series(0, 9) g \g /dev/null
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND resolved_at IS NULL), 1,
	'stopping again after it came back raises a new alert');
SELECT is((SELECT (metadata->>'last_point')::timestamptz FROM thrillmon.system_alerts WHERE alert_type = 'no_data' AND resolved_at IS NULL),
	now() - interval '11 minutes', '... naming the new last point');

-- What the engine reported, for a DBA: _detect_pass_silent() after the pass.
SELECT is((SELECT array_agg(metric_name ORDER BY metric_name) FROM thrillmon._detect_pass_silent()), ARRAY['hushed', 'stopped'],
	'_detect_pass_silent(): the regular, enabled metrics the pass found silent (the silence is the pass''s to apply)');
-- An alert_type of its own, so Alertmanager names it ThrillmonNoData.
SELECT is((thrillmon._alert_payload((SELECT a FROM thrillmon.system_alerts a WHERE alert_type = 'no_data' AND resolved_at IS NULL), 'new') - 'idempotency_key' - 'alert_id' - 'created_at' - 'message' - 'database'),
	'{"event": "new", "alertname": "ThrillmonNoData", "alert_type": "no_data", "metric": "stopped", "category": "system", "severity": "high"}'::jsonb,
	'delivered as ThrillmonNoData, with its metric''s category');

SELECT * FROM finish();
ROLLBACK;
