-- Privileges of thrillmon_writer, thrillmon_reader, thrillmon_admin and of a role with none of them.
-- Each block runs its statements under SET LOCAL ROLE (pgTAP itself works under these roles) and
-- ends with RESET ROLE.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(72);

-- Clean slate: no daily partition, no metric row.
\ir fixtures/clean_slate.sql

SELECT ok(pg_has_role('thrillmon_admin', 'thrillmon_reader', 'MEMBER') AND pg_has_role('thrillmon_admin', 'thrillmon_writer', 'MEMBER'),
	'thrillmon_admin is a member of thrillmon_reader and thrillmon_writer');
SELECT ok(NOT pg_has_role('thrillmon_writer', 'thrillmon_reader', 'MEMBER') AND NOT pg_has_role('thrillmon_reader', 'thrillmon_writer', 'MEMBER'),
	'reader and writer are separate');

-- Reader, before any daily partition exists ---------------------------------------------------------------
SET LOCAL ROLE thrillmon_reader;
SELECT lives_ok('SELECT * FROM thrillmon.retention_stats', 'reader: SELECT retention_stats (no daily partition yet)');
RESET ROLE;

SELECT thrillmon.maintain_partitions(1);
SELECT thrillmon.record_metric('seed', 1);

-- thrillmon_writer ------------------------------------------------------------------------------------------
SET LOCAL ROLE thrillmon_writer;
SELECT lives_ok($$SELECT thrillmon.record_metric('by_writer', 1)$$, 'writer: record_metric');
SELECT lives_ok($$SELECT thrillmon.record_metric('by_writer', 2, 'system', '{"a": 1}', now() - interval '3 days')$$,
	'writer: record_metric with every argument (into the default partition)');
SELECT lives_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('by_writer', 3)$$,
	'writer: INSERT into metric_time_series');
-- The table's check calls thrillmon._metric_point_valid() with the inserting role's rights.
SELECT is(ARRAY[has_function_privilege('public', f, 'EXECUTE'), has_function_privilege('thrillmon_reader', f, 'EXECUTE'),
		has_function_privilege('thrillmon_writer', f, 'EXECUTE'), has_function_privilege('thrillmon_admin', f, 'EXECUTE')],
	ARRAY[false, false, true, true], 'EXECUTE on the table''s check function: writer and admin only (PUBLIC, reader, writer, admin)')
FROM (SELECT 'thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb)'::regprocedure f) x;
SELECT throws_ok('SELECT * FROM thrillmon.metric_time_series', '42501', NULL, 'writer: SELECT metric_time_series refused');
SELECT throws_ok('DELETE FROM thrillmon.metric_time_series', '42501', NULL, 'writer: DELETE metric_time_series refused');
SELECT throws_ok('UPDATE thrillmon.metric_time_series SET metric_value = 0', '42501', NULL, 'writer: UPDATE metric_time_series refused');
SELECT throws_ok('TRUNCATE thrillmon.metric_time_series', '42501', NULL, 'writer: TRUNCATE metric_time_series refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics()', '42501', NULL, 'writer: cleanup_old_metrics refused');
SELECT throws_ok('SELECT thrillmon.maintain_partitions()', '42501', NULL, 'writer: maintain_partitions refused');
SELECT throws_ok('SELECT thrillmon.run_data_retention_cleanup()', '42501', NULL, 'writer: run_data_retention_cleanup refused');
SELECT throws_ok('SELECT * FROM thrillmon.retention_stats', '42501', NULL, 'writer: SELECT retention_stats refused');
SELECT throws_ok('SELECT * FROM thrillmon.system_alerts', '42501', NULL, 'writer: SELECT system_alerts refused');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = 1$$, '42501', NULL, 'writer: UPDATE retention_policies refused');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'by_writer'), 3, 'the writer''s three rows are stored');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), 4, 'and nothing was deleted');

-- thrillmon_reader ------------------------------------------------------------------------------------------
SET LOCAL ROLE thrillmon_reader;
SELECT lives_ok(format('SELECT * FROM thrillmon.%I', t), 'reader: SELECT ' || t)
FROM unnest(ARRAY['metric_time_series', 'metric_time_series_default', 'anomaly_detection_config', 'system_alerts',
	'anomaly_detections', 'anomaly_detections_archive', 'incidents', 'incident_alerts', 'metric_collectors',
	'retention_policies', 'job_runs']) t;
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), 4, 'reader sees every metric row through the parent');
-- Regression: the view reads each daily partition directly (FROM ONLY ...); readers have no grant on
-- the partitions maintain_partitions() makes, so that must not run with the caller's rights.
SELECT lives_ok('SELECT * FROM thrillmon.retention_stats', 'reader: SELECT retention_stats with daily partitions present');
SELECT throws_ok($$SELECT thrillmon.record_metric('by_reader', 1)$$, '42501', NULL, 'reader: record_metric refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('by_reader', 1)$$, '42501', NULL,
	'reader: INSERT metric_time_series refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(30)', '42501', NULL, 'reader: cleanup_old_metrics refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_anomalies(30)', '42501', NULL, 'reader: cleanup_old_anomalies refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_alerts(90)', '42501', NULL, 'reader: cleanup_old_alerts refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_incidents(90)', '42501', NULL, 'reader: cleanup_old_incidents refused');
SELECT throws_ok('SELECT thrillmon.run_data_retention_cleanup()', '42501', NULL, 'reader: run_data_retention_cleanup refused');
SELECT throws_ok('SELECT thrillmon.maintain_partitions(1)', '42501', NULL, 'reader: maintain_partitions refused');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = 1 WHERE target = 'metrics'$$, '42501', NULL,
	'reader: UPDATE retention_policies refused');
SELECT throws_ok($$UPDATE thrillmon.system_alerts SET resolved_at = now()$$, '42501', NULL, 'reader: UPDATE system_alerts refused');
SELECT throws_ok('DELETE FROM thrillmon.job_runs', '42501', NULL, 'reader: DELETE job_runs refused');
RESET ROLE;
SELECT is((SELECT retention_days FROM thrillmon.retention_policies WHERE target = 'metrics'), 30, 'policy unchanged by the reader');

-- thrillmon_admin -------------------------------------------------------------------------------------------
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at, resolved_at) VALUES
	('00000000-0000-0000-0000-0000000000a1', 'old', 'low', 'm', now() - interval '100 days', now() - interval '95 days');
SET LOCAL ROLE thrillmon_admin;
SELECT lives_ok($$SELECT thrillmon.record_metric('by_admin', 1)$$, 'admin: record_metric');
SELECT lives_ok('SELECT thrillmon.maintain_partitions(2)', 'admin: maintain_partitions');
SELECT lives_ok('SELECT thrillmon.cleanup_old_metrics(30)', 'admin: cleanup_old_metrics');
SELECT lives_ok('SELECT thrillmon.cleanup_old_anomalies(30)', 'admin: cleanup_old_anomalies');
SELECT lives_ok('SELECT thrillmon.cleanup_old_alerts(90)', 'admin: cleanup_old_alerts');
SELECT lives_ok('SELECT thrillmon.cleanup_old_incidents(90)', 'admin: cleanup_old_incidents');
SELECT lives_ok('SELECT thrillmon.run_data_retention_cleanup()', 'admin: run_data_retention_cleanup');
SELECT lives_ok($$UPDATE thrillmon.retention_policies SET retention_days = 14 WHERE target = 'metrics'$$,
	'admin: UPDATE retention_policies');
SELECT throws_ok($$INSERT INTO thrillmon.retention_policies (target, retention_days) VALUES ('alerts', 60)$$,
	'23505', NULL, 'admin: INSERT of an existing policy is a duplicate (only a restore''s COPY replaces rows)');
SELECT lives_ok($$INSERT INTO thrillmon.retention_policies (target, retention_days) VALUES ('alerts', 60)
	ON CONFLICT (target) DO UPDATE SET retention_days = EXCLUDED.retention_days$$,
	'admin: upsert of a policy');
SELECT lives_ok($$UPDATE thrillmon.anomaly_detection_config SET sensitivity = 4 WHERE metric_name = '*'$$,
	'admin: UPDATE anomaly_detection_config');
SELECT lives_ok($$UPDATE thrillmon.system_alerts SET acknowledged_at = now() WHERE id = '00000000-0000-0000-0000-0000000000a1'$$,
	'admin: UPDATE system_alerts');
-- Same regression as for the reader.
SELECT lives_ok('SELECT * FROM thrillmon.retention_stats', 'admin: SELECT retention_stats with daily partitions present');
RESET ROLE;
SELECT results_eq($$SELECT target, retention_days FROM thrillmon.retention_policies WHERE target IN ('metrics', 'alerts') ORDER BY target$$,
	$$VALUES ('alerts'::text, 60), ('metrics', 14)$$, 'the admin''s policy changes are stored');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a1'), 0,
	'the admin''s cleanup removed the old resolved alert');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE run_by = session_user AND job = 'retention'
	AND started_at >= now()), 5, 'the admin''s five cleanup runs are recorded');

-- A role with no thrillmon membership ----------------------------------------------------------------------
CREATE ROLE tap_nobody NOLOGIN;
SET LOCAL ROLE tap_nobody;
SELECT throws_ok(format('SELECT %s', f), '42501', NULL, 'no membership: ' || f || ' refused')
FROM unnest(ARRAY[$$thrillmon.record_metric('x', 1)$$, 'thrillmon.maintain_partitions(1)', 'thrillmon.cleanup_old_metrics(30)',
	'thrillmon.cleanup_old_anomalies(30)', 'thrillmon.cleanup_old_alerts(90)', 'thrillmon.cleanup_old_incidents(90)',
	'thrillmon.run_data_retention_cleanup()', $$thrillmon._retention_cutoff(30, 'x')$$]) f;
SELECT throws_ok('SELECT * FROM thrillmon.retention_stats', '42501', NULL, 'no membership: retention_stats refused');
SELECT throws_ok('SELECT * FROM thrillmon.metric_time_series', '42501', NULL, 'no membership: metric_time_series refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('x', 1)$$, '42501', NULL,
	'no membership: INSERT refused');
RESET ROLE;
-- PUBLIC has no EXECUTE on any thrillmon function, even one not named above.
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'thrillmon'::regnamespace
	AND has_function_privilege('tap_nobody', p.oid, 'EXECUTE')$$, 'no membership: no thrillmon function is executable');

SELECT * FROM finish();
ROLLBACK;
