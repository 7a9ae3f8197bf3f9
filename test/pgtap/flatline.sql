-- A metric that stops changing (a stuck sensor, a collector repeating its last reading) shows no
-- deviation at all: the ensemble reports the flatline itself, once, through the SQL path.
BEGIN;
SET client_min_messages = warning;
SELECT plan(6);

\ir fixtures/clean_slate.sql
UPDATE thrillmon.incident_policy SET open_on_critical = false;

-- A day of one-minute points: noise for 1300 minutes, then the same value for the last 140.
SELECT setseed(0.3);
SELECT count(thrillmon.record_metric('stuck', CASE WHEN g > 1300 THEN 41.5 ELSE 40 + random() * 3 END, 'system', NULL,
	now() - make_interval(mins => 1441 - g))) FROM generate_series(1, 1440) g \g /dev/null
CREATE TEMP TABLE found AS SELECT * FROM thrillmon.detect_anomalies();
SELECT is((SELECT count(*)::int FROM found WHERE anomaly_type = 'flatline'), 1, 'one flatline is reported');
SELECT is((SELECT time_window_end FROM found WHERE anomaly_type = 'flatline'), now() - make_interval(mins => 1441 - 1360),
	'... at the 60th repeat of the value');
SELECT is((SELECT row(severity, anomaly_value, detection_algorithm)::text FROM found WHERE anomaly_type = 'flatline'),
	row('medium', 41.5::float8, 'ensemble')::text, '... medium, at the repeated value, by the ensemble');
SELECT ok((SELECT message ~ '^medium flatline on stuck: stuck at 41.5, where it used to vary around 4[01]\.' FROM thrillmon.system_alerts
	WHERE metric_name = 'stuck' AND (metadata->>'anomaly_type') = 'flatline'), 'it alerts, saying what it is');
SELECT is((SELECT count(*)::int FROM found WHERE anomaly_type <> 'flatline' AND time_window_end > now() - interval '140 minutes'), 0,
	'nothing else is reported over the flat stretch');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('stuck', '-infinity', 'infinity') WHERE anomaly_type = 'flatline'), 1,
	'backtest() finds the same flatline');

SELECT * FROM finish();
ROLLBACK;
