-- thrillmon.dashboard(): the console's rows at a fixed moment, from fixed data (nothing else in
-- this suite writes near 2025-06-15, so the output is stable).
\set at '''2025-06-15 12:00:00+00'''
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.latency_ms', CASE WHEN g = 50 THEN 200 ELSE 20 + g % 3 END,
	ts => :at::timestamptz - (60 - g) * interval '1 minute') FROM generate_series(1, 60) g) r;
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.flat', 5, ts => :at::timestamptz - g * interval '1 minute') FROM generate_series(0, 59) g) r;
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.rising', g, ts => :at::timestamptz - (59 - g) * interval '1 minute') FROM generate_series(0, 59) g) r;
-- Values at the float's edges (the dashboard computes in numeric: no overflow error).
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.extreme', CASE WHEN g % 2 = 0 THEN 1e300 ELSE -1e300 END,
	ts => :at::timestamptz - g * interval '1 minute') FROM generate_series(0, 9) g) r;
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.<script>alert(1)</script> with a name far wider than its column', 0.000123,
	ts => :at::timestamptz - interval '5 minutes')) r;
-- Every 5 minutes (every other column, filled), and one with a 20-minute hole (left blank).
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.every_5m', g % 4, ts => :at::timestamptz - g * interval '5 minutes')
	FROM generate_series(0, 11) g) r;
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.with_a_hole', 1, ts => :at::timestamptz - g * interval '1 minute')
	FROM generate_series(0, 59) g WHERE g NOT BETWEEN 20 AND 40) r;
SELECT count(*) AS recorded FROM (SELECT thrillmon.record_metric('dash.old', 1, ts => :at::timestamptz - interval '2 hours')) r;
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, baseline_value, anomaly_value,
	deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at)
VALUES ('dash.latency_ms', 'spike', 'high', 21, 200, 9.5, 0.99, 'z_score', :at::timestamptz - interval '10 minutes',
	:at::timestamptz - interval '10 minutes', :at::timestamptz - interval '9 minutes');
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, created_at, resolved_at) VALUES
	('anomaly', 'low', 'a low one', 'dash.flat', :at::timestamptz - interval '3 hours', NULL),
	('anomaly', 'critical', E'latency spike:\nline two of the message', 'dash.latency_ms', :at::timestamptz - interval '8 minutes', NULL),
	('anomaly', 'high', 'resolved before the moment', 'dash.rising', :at::timestamptz - interval '2 hours', :at::timestamptz - interval '1 hour');
INSERT INTO thrillmon.incidents (incident_number, title, severity, status, detected_at) VALUES
	('INC-DASH01', 'Latency on the parks API', 'high', 'investigating', :at::timestamptz - interval '7 minutes');
INSERT INTO thrillmon.job_runs (job, started_at, finished_at, status, error) VALUES
	('collect', :at::timestamptz - interval '4 minutes', :at::timestamptz - interval '4 minutes' + interval '20 ms', 'succeeded', NULL),
	('collect', :at::timestamptz - interval '3 minutes', :at::timestamptz - interval '3 minutes' + interval '20 ms', 'failed', 'boom'),
	('collect', :at::timestamptz - interval '2 minutes', :at::timestamptz - interval '2 minutes' + interval '20 ms', 'succeeded', NULL),
	('detect', :at::timestamptz - interval '26 hours', :at::timestamptz - interval '26 hours' + interval '1 s', 'failed', 'old failure'),
	('detect', :at::timestamptz - interval '5 minutes', :at::timestamptz - interval '5 minutes' + interval '1 s', 'succeeded', NULL);

SELECT * FROM thrillmon.dashboard(:at);

-- It fits 120 columns: psql's aligned line is 1 + the widths + 3 per separator.
SELECT 1 + GREATEST(7, max(char_length(section))) + GREATEST(4, max(char_length(name))) + GREATEST(5, max(char_length(value)))
	+ GREATEST(9, max(char_length(last_hour))) + GREATEST(5, max(char_length(trend))) + GREATEST(4, max(char_length(note))) + 15
	<= 120 AS fits_120_columns
FROM thrillmon.dashboard(:at);

-- Bounded: past p_metrics metrics, one row says how many more.
SELECT section, name FROM thrillmon.dashboard(:at, 2) WHERE section = 'metric';

-- An hour with no data at all.
SELECT * FROM thrillmon.dashboard('2001-01-01 00:00:00+00');

-- A reader may look.
SET ROLE thrillmon_reader;
SELECT count(*) AS rows_for_a_reader FROM thrillmon.dashboard(:at);
RESET ROLE;

-- Bad arguments.
SELECT * FROM thrillmon.dashboard(NULL);
SELECT * FROM thrillmon.dashboard(:at, 0);
SELECT * FROM thrillmon.dashboard(:at, 1001);
