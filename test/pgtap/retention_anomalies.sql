-- cleanup_old_anomalies(): resolved anomalies archived after archive_after_days (7), unresolved
-- ones deleted after retention_days (30), archive purged after archive_retention_days (90).
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(31);

\ir fixtures/clean_slate.sql

-- Fixture: anomalies at several ages, each with no alert, a resolved alert, an unresolved alert.
CREATE TEMP TABLE spec AS
SELECT format('a%s_%s', d, state) AS name, d, now() - make_interval(days => d) AS detected_at, state,
	CASE WHEN state = 'none' THEN NULL ELSE gen_random_uuid() END AS alert_id
FROM unnest(ARRAY[5, 8, 29, 31, 100]) d, unnest(ARRAY['none', 'resolved', 'unresolved']) state;
-- Exactly at the archive and retention cut-offs (not older than them): kept.
INSERT INTO spec VALUES
	('a7exact_none', 7, now() - interval '7 days', 'none', NULL),
	('a30exact_unresolved', 30, now() - interval '30 days', 'unresolved', gen_random_uuid());

INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, metric_name, created_at, resolved_at)
SELECT alert_id, 'anomaly', 'high', 'alert for ' || name, name, detected_at,
	CASE state WHEN 'resolved' THEN detected_at + interval '1 hour' END
FROM spec WHERE alert_id IS NOT NULL;

INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity, baseline_value,
	anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end,
	detected_at, alert_created, alert_id, metadata)
SELECT name, 'performance', 'spike', 'critical', 10.5, 99.25 + d, 4.5, 0.875, 'mad',
	detected_at - interval '1 hour', detected_at, detected_at, alert_id IS NOT NULL, alert_id,
	jsonb_build_object('age', d, 'state', state)
FROM spec;

-- Rows already in the archive, by detected_at: 89 days (kept) and 91 days (purged).
INSERT INTO thrillmon.anomaly_detections_archive (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, archived_at)
VALUES ('arch89', 'drop', 'low', 1, 1, 0.5, 'ewma', now() - interval '89 days', now() - interval '89 days',
		now() - interval '89 days', now() - interval '80 days'),
	('arch91', 'drop', 'low', 1, 1, 0.5, 'ewma', now() - interval '91 days', now() - interval '91 days',
		now() - interval '91 days', now() - interval '1 day');

CREATE TEMP TABLE live_before AS SELECT * FROM thrillmon.anomaly_detections;
SELECT is((SELECT count(*)::int FROM live_before), 17, 'fixture: 17 live anomalies');

-- Refused arguments change nothing ----------------------------------------------------------------------

SELECT throws_ok('SELECT thrillmon.cleanup_old_anomalies(0)', '22023', 'thrillmon: retention_days must be at least 1, got 0',
	'retention_days 0 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_anomalies(-7)', '22023', 'thrillmon: retention_days must be at least 1, got -7',
	'retention_days -7 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_anomalies(NULL)', '22004', 'thrillmon: retention_days must not be NULL',
	'retention_days NULL refused');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections), 17, 'refused calls removed no live anomaly');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections_archive), 2, 'refused calls archived or purged nothing');

-- The cleanup ------------------------------------------------------------------------------------------------

CREATE TEMP TABLE removed AS SELECT thrillmon.cleanup_old_anomalies(30) AS n;
SELECT is((SELECT n FROM removed), 10::bigint, 'returns archived (8) + deleted (2) = 10');

SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections',
	ARRAY['a5_none', 'a5_resolved', 'a5_unresolved', 'a7exact_none', 'a8_unresolved', 'a29_unresolved', 'a30exact_unresolved'],
	'live: everything under 7 days, and unresolved ones up to 30 days');
SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections_archive',
	ARRAY['a8_none', 'a8_resolved', 'a29_none', 'a29_resolved', 'a31_none', 'a31_resolved', 'arch89'],
	'archive: resolved ones older than 7 days, and archived rows younger than 90 days');
SELECT is_empty($$SELECT metric_name FROM thrillmon.anomaly_detections_archive WHERE metric_name LIKE '%unresolved'$$,
	'no unresolved anomaly was archived');
SELECT is_empty($$SELECT metric_name FROM thrillmon.anomaly_detections WHERE metric_name IN ('a31_unresolved', 'a100_unresolved')
	UNION ALL SELECT metric_name FROM thrillmon.anomaly_detections_archive WHERE metric_name IN ('a31_unresolved', 'a100_unresolved')$$,
	'unresolved anomalies older than 30 days are deleted, not archived');
SELECT is_empty($$SELECT metric_name FROM thrillmon.anomaly_detections WHERE metric_name LIKE 'a100%'
	UNION ALL SELECT metric_name FROM thrillmon.anomaly_detections_archive WHERE metric_name LIKE 'a100%' OR metric_name = 'arch91'$$,
	'anomalies older than 90 days are in neither table (archived then purged)');

-- Archived rows keep every column.
SELECT bag_eq($$SELECT id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value,
		deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at,
		alert_created, alert_id, metadata
	FROM thrillmon.anomaly_detections_archive WHERE metric_name <> 'arch89'$$,
	$$SELECT id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value,
		deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at,
		alert_created, alert_id, metadata
	FROM live_before WHERE metric_name IN ('a8_none', 'a8_resolved', 'a29_none', 'a29_resolved', 'a31_none', 'a31_resolved')$$,
	'archived rows are equal, column for column, to the live rows they were');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections_archive WHERE metric_name <> 'arch89' AND archived_at = now()), 6,
	'archived_at is set to the time of archiving');
SELECT is((SELECT archived_at FROM thrillmon.anomaly_detections_archive WHERE metric_name = 'arch89'), now() - interval '80 days',
	'rows already archived are left as they were');
SELECT bag_eq('SELECT * FROM thrillmon.anomaly_detections', $$SELECT * FROM live_before WHERE metric_name IN
	('a5_none', 'a5_resolved', 'a5_unresolved', 'a7exact_none', 'a8_unresolved', 'a29_unresolved', 'a30exact_unresolved')$$,
	'surviving live rows are untouched');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 11, 'anomaly cleanup leaves alerts alone');

-- Job history.
SELECT results_eq($$SELECT target, status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('anomalies'::text, 'succeeded'::text, 10::bigint)$$, 'one job_runs row: anomalies / succeeded / 10');
SELECT is((SELECT details - 'cutoff' - 'archive_cutoff' - 'archive_purge_cutoff' FROM thrillmon.job_runs WHERE job = 'retention'),
	'{"removed": 10, "archived": 8, "deleted": 2, "archive_purged": 3}'::jsonb,
	'details: archived 8, deleted 2, purged 3 from the archive');
SELECT is((SELECT (details->>'archive_cutoff')::timestamptz FROM thrillmon.job_runs WHERE job = 'retention'),
	now() - 7 * interval '24 hours', 'archive cut-off is now() - 7 x 24 h');

-- Idempotent.
SELECT is(thrillmon.cleanup_old_anomalies(30), 0::bigint, 'a second call removes nothing');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections), 7, 'live count unchanged');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections_archive), 7, 'archive count unchanged');

-- Resolving an alert makes its anomaly archivable on the next run.
UPDATE thrillmon.system_alerts SET resolved_at = now() WHERE metric_name = 'a29_unresolved';
SELECT is(thrillmon.cleanup_old_anomalies(30), 1::bigint, 'once its alert is resolved, the 29-day anomaly is archived');
SELECT ok(EXISTS (SELECT 1 FROM thrillmon.anomaly_detections_archive WHERE metric_name = 'a29_unresolved'), 'it is in the archive');
-- An anomaly whose alert was deleted (alert_id set NULL by the foreign key) counts as resolved.
DELETE FROM thrillmon.system_alerts WHERE metric_name = 'a8_unresolved';
SELECT is((SELECT alert_id FROM thrillmon.anomaly_detections WHERE metric_name = 'a8_unresolved'), NULL::uuid,
	'deleting the alert clears alert_id');
SELECT is(thrillmon.cleanup_old_anomalies(30), 1::bigint, 'an anomaly whose alert is gone is archived');

-- The policy's archive settings are used.
UPDATE thrillmon.retention_policies SET archive_after_days = 3, archive_retention_days = 20 WHERE target = 'anomalies';
SELECT is(thrillmon.cleanup_old_anomalies(30), 3::bigint, 'archive_after_days 3: the three 5- and 7-day resolved ones are archived');
SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections', ARRAY['a5_unresolved', 'a30exact_unresolved'],
	'only unresolved anomalies remain live');
SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections_archive',
	ARRAY['a5_none', 'a5_resolved', 'a7exact_none', 'a8_none', 'a8_resolved', 'a8_unresolved'],
	'archive_retention_days 20: archived rows detected more than 20 days ago are purged');

-- The default retention is 30 days.
UPDATE thrillmon.anomaly_detections SET detected_at = now() - interval '30 days' - interval '1 second'
WHERE metric_name = 'a30exact_unresolved';
SELECT is(thrillmon.cleanup_old_anomalies(), 1::bigint, 'no argument: 30 days, the unresolved anomaly just past it is deleted');

SELECT * FROM finish();
ROLLBACK;
