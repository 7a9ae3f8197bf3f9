-- retention_stats: one row per target with rows, oldest/newest, rows past retention (matching what
-- the cleanup then removes) and the last cleanup.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(28);

-- Clean slate.
\ir fixtures/clean_slate.sql

-- Metrics: 12 rows, 7 older than 30 days (one of them waiting in the default partition). Six are past
-- retention: the one just before the cut-off sits in the partition holding it, which a cleanup
-- keeps whole until its UTC day has expired.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('m', 1, now()), ('m', 1, now() - interval '1 hour'),
	('m', 1, now() - interval '5 days'), ('m', 1, now() - interval '5 days'),
	('m', 1, now() - interval '30 days' + interval '1 minute'),
	('m', 1, now() - interval '30 days' - interval '1 microsecond'),
	('m', 1, now() - interval '31 days'), ('m', 1, now() - interval '31 days'),
	('m', 1, now() - interval '45 days'), ('m', 1, now() - interval '45 days'), ('m', 1, now() - interval '45 days');
SELECT thrillmon.maintain_partitions(1);
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('m', 1, now() - interval '60 days');

-- Anomalies: 4 live (past retention: the resolved 8-day one, to be archived, and the unresolved 31-day one).
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at) VALUES
	('00000000-0000-0000-0000-00000000000a', 'open', 'high', 'm', now() - interval '200 days');
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_id)
SELECT name, 'spike', 'high', 1, 1, 0.5, 'mad', now() - age, now() - age, now() - age, alert
FROM (VALUES ('resolved8', interval '8 days', NULL::uuid),
	('unresolved10', interval '10 days', '00000000-0000-0000-0000-00000000000a'::uuid),
	('unresolved31', interval '31 days', '00000000-0000-0000-0000-00000000000a'::uuid),
	('new2', interval '2 days', NULL)) v(name, age, alert);
-- Archive: one row past its 90 days.
INSERT INTO thrillmon.anomaly_detections_archive (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at)
SELECT 'arch', 'drop', 'low', 1, 1, 0.5, 'mad', now() - age, now() - age, now() - age
FROM (VALUES (interval '50 days'), (interval '95 days')) v(age);
-- Alerts: 4 (past retention: the one resolved 91 days ago, not the one an open incident links).
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at, resolved_at) VALUES
	('00000000-0000-0000-0000-00000000000b', 'r91', 'low', 'm', now() - interval '95 days', now() - interval '91 days'),
	('00000000-0000-0000-0000-00000000000c', 'r10', 'low', 'm', now() - interval '12 days', now() - interval '10 days'),
	('00000000-0000-0000-0000-00000000000d', 'linked', 'low', 'm', now() - interval '120 days', now() - interval '100 days');
-- Incidents: 2 (past retention: the one resolved 91 days ago).
INSERT INTO thrillmon.incidents (id, title, severity, status, detected_at, resolved_at) VALUES
	('00000000-0000-0000-0000-0000000000e1', 'open', 'low', 'open', now() - interval '300 days', NULL),
	('00000000-0000-0000-0000-0000000000e2', 'old', 'low', 'resolved', now() - interval '100 days', now() - interval '91 days');
INSERT INTO thrillmon.incident_alerts (incident_id, alert_id) VALUES
	('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000d');
-- Job history: the maintenance run above plus 3 (past retention: succeeded 31 days, failed 91 days).
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status) VALUES
	('collect', 'a', now() - interval '31 days', now() - interval '31 days', 'succeeded'),
	('collect', 'b', now() - interval '31 days', now() - interval '31 days', 'failed'),
	('collect', 'c', now() - interval '91 days', now() - interval '91 days', 'failed');
-- Deliveries (0.8.0): 3 (past retention: the one delivered 31 days ago; the dead one is kept 90 days).
SET LOCAL thrillmon.notify_allowed_hosts = '127.0.0.1';
INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('hook', 'webhook', 'http://127.0.0.1:9/');
INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload, status, created_at, finished_at) VALUES
	('hook', 'new', 'k1', '{}', 'delivered', now() - interval '32 days', now() - interval '31 days'),
	('hook', 'new', 'k2', '{}', 'dead', now() - interval '33 days', now() - interval '31 days'),
	('hook', 'new', 'k3', '{}', 'delivered', now() - interval '2 days', now() - interval '2 days');

-- Before ANALYZE, never-analysed partitions are counted exactly.
SELECT is((SELECT rows FROM thrillmon.retention_stats WHERE target = 'metrics'), 12::bigint,
	'metrics rows counted exactly before any ANALYZE');
ANALYZE thrillmon.metric_time_series;

CREATE TEMP TABLE before AS SELECT * FROM thrillmon.retention_stats;

SELECT set_eq('SELECT target FROM before', ARRAY['metrics', 'anomalies', 'anomalies_archive', 'alerts', 'incidents', 'job_history',
	'deliveries'], 'one row per target');
SELECT is((SELECT count(*)::int FROM before), 7, 'exactly seven rows');
SELECT results_eq($$SELECT target, table_name, rows, rows_estimated, oldest, newest, retention_days, policy_enabled,
		cutoff, rows_past_retention
	FROM before ORDER BY array_position(ARRAY['metrics', 'anomalies', 'anomalies_archive', 'alerts', 'incidents', 'job_history',
		'deliveries'], target)$$,
	$$VALUES
	('metrics'::text, 'thrillmon.metric_time_series'::text, 12::bigint, true, now() - interval '60 days', now(), 30, true,
		now() - interval '30 days', 6::bigint),
	('anomalies', 'thrillmon.anomaly_detections', 4, false, now() - interval '31 days', now() - interval '2 days', 30, true,
		now() - interval '30 days', 2),
	('anomalies_archive', 'thrillmon.anomaly_detections_archive', 2, false, now() - interval '95 days', now() - interval '50 days', 90, true,
		now() - interval '90 days', 1),
	('alerts', 'thrillmon.system_alerts', 4, false, now() - interval '200 days', now() - interval '12 days', 90, true,
		now() - interval '90 days', 1),
	('incidents', 'thrillmon.incidents', 2, false, now() - interval '300 days', now() - interval '100 days', 90, true,
		now() - interval '90 days', 1),
	('job_history', 'thrillmon.job_runs', 4, false, now() - interval '91 days',
		(SELECT max(started_at) FROM thrillmon.job_runs), 30, true, now() - interval '30 days', 2),
	('deliveries', 'thrillmon.deliveries', 3, false, now() - interval '33 days', now() - interval '2 days', 30, true,
		now() - interval '30 days', 1)$$,
	'rows, oldest, newest, policy, cut-off and rows past retention per target');
SELECT ok((SELECT bool_and(bytes > 0 AND size IS NOT NULL) FROM before), 'bytes and size reported');
SELECT is_empty($$SELECT target FROM before WHERE last_cleanup_at IS NOT NULL OR last_cleanup_status IS NOT NULL
	OR last_cleanup_removed IS NOT NULL$$, 'no last cleanup before any cleanup ran');

-- A policy change shows at once.
UPDATE thrillmon.retention_policies SET retention_days = 40 WHERE target = 'metrics';
SELECT results_eq($$SELECT retention_days, cutoff, rows_past_retention FROM thrillmon.retention_stats WHERE target = 'metrics'$$,
	$$VALUES (40, now() - interval '40 days', 4::bigint)$$, 'metrics policy 40 days: 4 rows past it');
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';

-- The cleanup removes exactly what the view said.
CREATE TEMP TABLE run AS SELECT thrillmon.run_data_retention_cleanup() AS r;
SELECT is((SELECT r->>'status' FROM run), 'succeeded', 'cleanup succeeded');
SELECT is((SELECT (r->'targets'->b.target->>'removed')::bigint FROM run), b.rows_past_retention,
	b.target || ': cleanup removed rows_past_retention rows')
FROM before b WHERE b.target <> 'anomalies_archive' ORDER BY b.target;
SELECT is((SELECT (r->'targets'->'anomalies'->>'archive_purged')::bigint FROM run),
	(SELECT rows_past_retention FROM before WHERE target = 'anomalies_archive'),
	'anomalies_archive: the purge removed rows_past_retention rows');

ANALYZE thrillmon.metric_time_series;
CREATE TEMP TABLE after AS SELECT * FROM thrillmon.retention_stats;
SELECT is_empty($$SELECT target FROM after WHERE rows_past_retention <> 0$$, 'nothing past retention after the cleanup');
SELECT results_eq($$SELECT target, rows FROM after ORDER BY target COLLATE "C"$$,
	$$VALUES ('alerts'::text, 3::bigint), ('anomalies', 2), ('anomalies_archive', 2), ('deliveries', 2), ('incidents', 1), ('job_history', 3),
		('metrics', 6)$$,
	'rows after the cleanup');
-- The straddling partition keeps its row from just before the cut-off until its day has expired.
SELECT is((SELECT oldest FROM after WHERE target = 'metrics'), now() - interval '30 days' - interval '1 microsecond',
	'metrics oldest after the cleanup is the oldest surviving row, in the partition holding the cut-off');
SELECT is((SELECT oldest FROM after WHERE target = 'metrics'), (SELECT min("timestamp") FROM thrillmon.metric_time_series),
	'metrics oldest = min("timestamp")');
SELECT is((SELECT newest FROM after WHERE target = 'metrics'), now(), 'metrics newest = now()');

-- Last cleanup, per target, from the one job.
SELECT results_eq($$SELECT target, last_cleanup_at, last_cleanup_status, last_cleanup_removed FROM after
	ORDER BY target COLLATE "C"$$,
	$$SELECT t, j.finished_at, 'succeeded'::text, (j.details->'targets'->(CASE t WHEN 'anomalies_archive' THEN 'anomalies' ELSE t END)->>'removed')::bigint
	FROM unnest(ARRAY['alerts', 'anomalies', 'anomalies_archive', 'deliveries', 'incidents', 'job_history', 'metrics']) t,
		thrillmon.job_runs j WHERE j.job = 'retention' AND j.target = 'all'
	ORDER BY t COLLATE "C"$$,
	'last_cleanup_* filled from the run_data_retention_cleanup job');
SELECT is((SELECT last_cleanup_removed FROM after WHERE target = 'metrics'), 6::bigint, 'metrics: last cleanup removed 6');

-- A later single-target cleanup becomes that target's last cleanup.
SELECT is(thrillmon.cleanup_old_alerts(90), 0::bigint, 'cleanup_old_alerts removes nothing more');
SELECT results_eq($$SELECT last_cleanup_status, last_cleanup_removed FROM thrillmon.retention_stats WHERE target = 'alerts'$$,
	$$VALUES ('succeeded'::text, 0::bigint)$$, 'alerts: last cleanup is the cleanup_old_alerts run');
SELECT is((SELECT last_cleanup_at FROM thrillmon.retention_stats WHERE target = 'alerts'),
	(SELECT finished_at FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'alerts'), 'alerts: its finish time');
SELECT is((SELECT last_cleanup_removed FROM thrillmon.retention_stats WHERE target = 'incidents'), 1::bigint,
	'incidents: still the full run');

-- A disabled target: the run says so, and so does the view.
UPDATE thrillmon.retention_policies SET enabled = false WHERE target = 'incidents';
SELECT is(thrillmon.run_data_retention_cleanup()->'targets'->'incidents'->>'status', 'disabled', 'incidents disabled');
SELECT results_eq($$SELECT policy_enabled, last_cleanup_status, last_cleanup_removed FROM thrillmon.retention_stats WHERE target = 'incidents'$$,
	$$VALUES (false, 'disabled'::text, NULL::bigint)$$, 'the view shows the policy disabled and the last run skipping it');

SELECT * FROM finish();
ROLLBACK;
