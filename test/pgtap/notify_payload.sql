-- NOTIFY thrillmon_alerts' payload stays under NOTIFY's 8000-byte limit whatever an alert holds
-- (an admin may edit its metadata, metric name and message): resolving such an alert, by hand or
-- by a detection pass, must not fail. (What a listener receives is notify.sh's.)
BEGIN;
SET client_min_messages = warning;
SELECT plan(6);

\ir fixtures/clean_slate.sql

-- An alert with 10 kB in its metadata's value, as an admin may leave it.
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, metadata, metric_name, fingerprint, created_at)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'anomaly', 'high', repeat('m', 5000),
	jsonb_build_object('value', repeat('v', 10000), 'baseline', 1), 'big', 'anomaly:big', now() - interval '2 hours');
SELECT lives_ok($$SELECT thrillmon.resolve_alert('00000000-0000-0000-0000-0000000000a1')$$,
	'resolve_alert() of an alert whose metadata alone is over 8000 bytes');
SELECT ok((SELECT resolved_at IS NOT NULL FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a1'),
	'... and it is resolved');

-- The same, waiting for a detection pass to resolve it: its metric has been quiet for longer than
-- the cooldown and points have kept coming.
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, metadata, metric_name, fingerprint, created_at)
VALUES ('00000000-0000-0000-0000-0000000000a2', 'anomaly', 'high', 'big2 spiked',
	jsonb_build_object('value', repeat('v', 10000), 'last_anomaly_at', now() - interval '2 hours', 'cooldown_minutes', 30),
	'big2', 'anomaly:big2', now() - interval '2 hours');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('big2', 1, now() - interval '1 minute');
SELECT lives_ok($$SELECT count(*) FROM thrillmon.detect_anomalies()$$, 'a detection pass that resolves such an alert');
SELECT ok((SELECT resolved_at IS NOT NULL FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a2'),
	'... resolves it');
SELECT lives_ok($$SELECT count(*) FROM thrillmon.detect_anomalies()$$, 'and the next pass runs too');

-- An alert within bounds notifies in full (no "truncated"): its payload is built the same way as
-- before, which notify.sh checks with a listener.
SELECT lives_ok($$SELECT thrillmon._notify_alert(a, 'new') FROM thrillmon.system_alerts a WHERE id = '00000000-0000-0000-0000-0000000000a1'$$,
	'_notify_alert() of the large alert directly');

SELECT * FROM finish();
ROLLBACK;
