-- Schema objects, shipped configuration rows and the CHECK constraints that refuse impossible states.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(87);

-- Objects ----------------------------------------------------------------------------------------

SELECT has_schema('thrillmon');
SELECT has_table('thrillmon', t, 'table thrillmon.' || t || ' exists')
FROM unnest(ARRAY['metric_time_series', 'metric_time_series_default', 'anomaly_detection_config', 'system_alerts',
	'anomaly_detections', 'anomaly_detections_archive', 'incidents', 'incident_alerts', 'metric_collectors',
	'retention_policies', 'job_runs', 'incident_policy', 'detector_progress']) AS t;
SELECT has_view('thrillmon', 'retention_stats', 'view thrillmon.retention_stats exists');

SELECT has_function('thrillmon', 'record_metric',
	ARRAY['text', 'double precision', 'text', 'jsonb', 'timestamp with time zone']);
SELECT function_returns('thrillmon', 'record_metric',
	ARRAY['text', 'double precision', 'text', 'jsonb', 'timestamp with time zone'], 'void');
SELECT has_function('thrillmon', 'maintain_partitions', ARRAY['integer']);
SELECT function_returns('thrillmon', 'maintain_partitions', ARRAY['integer'], 'jsonb');
SELECT has_function('thrillmon', f, ARRAY['integer']) FROM unnest(ARRAY['cleanup_old_metrics',
	'cleanup_old_anomalies', 'cleanup_old_alerts', 'cleanup_old_incidents']) AS f;
SELECT function_returns('thrillmon', f, ARRAY['integer'], 'bigint') FROM unnest(ARRAY['cleanup_old_metrics',
	'cleanup_old_anomalies', 'cleanup_old_alerts', 'cleanup_old_incidents']) AS f;
SELECT has_function('thrillmon', 'run_data_retention_cleanup', '{}'::name[]);
SELECT function_returns('thrillmon', 'run_data_retention_cleanup', '{}'::name[], 'jsonb');

-- Defaults of the cleanup functions are the origin's (30/30/90/90).
SELECT is(pg_get_function_arguments(('thrillmon.' || f || '(integer)')::regprocedure), 'retention_days integer DEFAULT ' || d,
	f || ' defaults to ' || d || ' days')
FROM (VALUES ('cleanup_old_metrics', 30), ('cleanup_old_anomalies', 30), ('cleanup_old_alerts', 90),
	('cleanup_old_incidents', 90)) AS v(f, d);

-- Every SECURITY DEFINER function pins search_path (DESIGN §7).
SELECT is_empty($$
	SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.pronamespace = 'thrillmon'::regnamespace AND p.prosecdef
	  AND NOT coalesce(p.proconfig, '{}') && ARRAY['search_path=pg_catalog, pg_temp']$$,
	'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');

-- No thrillmon function is executable by PUBLIC.
SELECT is_empty($$
	SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.pronamespace = 'thrillmon'::regnamespace
	  AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
	'no thrillmon function is executable by PUBLIC');

-- metric_time_series: range-partitioned on "timestamp", with a default partition.
SELECT is((SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'thrillmon.metric_time_series'::regclass),
	'r', 'metric_time_series is range-partitioned');
SELECT is((SELECT a.attname::text FROM pg_partitioned_table pt
	JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
	WHERE pt.partrelid = 'thrillmon.metric_time_series'::regclass), 'timestamp', 'partition key is "timestamp"');
SELECT is((SELECT partdefid FROM pg_partitioned_table WHERE partrelid = 'thrillmon.metric_time_series'::regclass),
	'thrillmon.metric_time_series_default'::regclass::oid, 'metric_time_series_default is the default partition');
SELECT columns_are('thrillmon', 'metric_time_series',
	ARRAY['metric_name', 'metric_category', 'metric_value', 'timestamp', 'metadata']);
SELECT col_type_is('thrillmon', 'metric_time_series', 'metric_value', 'double precision', 'metric_value is double precision');
SELECT col_type_is('thrillmon', 'metric_time_series', 'timestamp', 'timestamp with time zone', '"timestamp" is timestamptz');
SELECT is((SELECT array_agg(pg_get_indexdef(x.indexrelid) ORDER BY 1) FROM pg_index x
	WHERE x.indrelid = 'thrillmon.metric_time_series_default'::regclass),
	ARRAY['CREATE INDEX metric_time_series_default_name_time_idx ON thrillmon.metric_time_series_default USING btree (metric_name, "timestamp" DESC)',
		'CREATE INDEX metric_time_series_default_time_brin_idx ON thrillmon.metric_time_series_default USING brin ("timestamp") WITH (pages_per_range=''8'')'],
	'the default partition has the (metric_name, "timestamp" DESC) index and, since 0.3.0, a BRIN on "timestamp"');
-- The install script made no daily partition that would be an extension member (DROP would be refused).
SELECT is_empty($$
	SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'thrillmon')
	  AND c.relname ~ '^metric_time_series_p'$$,
	'no daily partition is an extension member');

-- Shipped configuration rows ---------------------------------------------------------------------

SELECT results_eq($$
	SELECT metric_name, enabled, sensitivity, lookback_window_minutes, detection_algorithms, min_data_points,
		alert_threshold_score, auto_create_alert, cooldown_minutes
	FROM thrillmon.anomaly_detection_config WHERE metric_name = '*'$$,
	$$VALUES ('*'::text, true, 4.5::float8, 1440, '{ensemble}'::text[], 30, 0.8::float8, true, 30)$$,
	'default detection row ''*'' with the documented defaults (sensitivity 4.5 since 0.3.0)');

SELECT results_eq($$
	SELECT target, retention_days, archive_after_days, archive_retention_days, failed_retention_days, enabled
	FROM thrillmon.retention_policies ORDER BY target$$,
	$$VALUES ('alerts'::text, 90, NULL::int, NULL::int, NULL::int, true),
	         ('anomalies', 30, 7, 90, NULL, true),
	         ('deliveries', 30, NULL, NULL, 90, true),
	         ('incidents', 90, NULL, NULL, NULL, true),
	         ('job_history', 30, NULL, NULL, 90, true),
	         ('metrics', 30, NULL, NULL, NULL, true)$$,
	'the six default retention policies (deliveries since 0.8.0)');

-- CHECK constraints refuse impossible states (23514) ------------------------------------------------

SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value)
	VALUES ('m', 'bogus', 1)$$, '23514', NULL, 'metric_time_series: unknown category refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('m', 'NaN')$$,
	'23514', NULL, 'metric_time_series: NaN metric_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('m', 'Infinity')$$,
	'23514', NULL, 'metric_time_series: Infinity metric_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('m', '-Infinity')$$,
	'23514', NULL, 'metric_time_series: -Infinity metric_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('', 1)$$,
	'23514', NULL, 'metric_time_series: empty metric_name refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES (repeat('x', 129), 1)$$,
	'23514', NULL, 'metric_time_series: 129-character metric_name refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('m', 1, 'infinity')$$,
	'23514', NULL, 'metric_time_series: infinite timestamp refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, metadata) VALUES ('m', 1, '[1]')$$,
	'23514', NULL, 'metric_time_series: array metadata refused');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'm'), 0, 'no refused metric row was written');
-- One CHECK (a C function) rather than an expression per rule: Postgres rebuilds a table's CHECK
-- expressions for every INSERT statement, and seven of them cost as much as the insert.
SELECT is((SELECT array_agg(conname::text ORDER BY conname) FROM pg_constraint
	WHERE conrelid = 'thrillmon.metric_time_series'::regclass AND contype = 'c'),
	ARRAY['metric_point_valid'], 'metric_time_series has one CHECK constraint, metric_point_valid');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, metadata) VALUES ('m', 1, '"s"')$$,
	'23514', 'thrillmon: metadata must be a JSON object, not a scalar', 'metric_time_series: the check says which rule is broken');

SELECT throws_ok($$INSERT INTO thrillmon.system_alerts (alert_type, severity, message) VALUES ('t', 'urgent', 'm')$$,
	'23514', NULL, 'system_alerts: unknown severity refused');
SELECT throws_ok($$INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, resolved_at)
	VALUES ('t', 'low', 'm', now(), now() - interval '1 hour')$$,
	'23514', NULL, 'system_alerts: resolved before created refused');

SELECT throws_ok($$INSERT INTO thrillmon.incidents (title, severity, status) VALUES ('t', 'low', 'pending')$$,
	'23514', NULL, 'incidents: unknown status refused');
SELECT throws_ok($$INSERT INTO thrillmon.incidents (title, severity) VALUES ('t', 'extreme')$$,
	'23514', NULL, 'incidents: unknown severity refused');
SELECT throws_ok($$INSERT INTO thrillmon.incidents (title, severity, status) VALUES ('t', 'low', 'resolved')$$,
	'23514', NULL, 'incidents: resolved without resolved_at/closed_at refused');

-- A valid anomaly row, varied one column at a time.
CREATE TEMP TABLE good_anomaly AS
SELECT 'm'::text AS metric_name, 'custom'::text AS metric_category, 'spike'::text AS anomaly_type, 'high'::text AS severity,
	1.0::float8 AS baseline_value, 10.0::float8 AS anomaly_value, 5.0::float8 AS deviation_score, 0.9::float8 AS confidence_score,
	'z_score'::text AS detection_algorithm, now() - interval '1 hour' AS time_window_start, now() AS time_window_end;
SELECT lives_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT * FROM good_anomaly$$, 'anomaly_detections: a valid row is accepted');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, 'wobble', severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: unknown anomaly_type refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, 'severe', baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: unknown severity refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, 'bogus', anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: unknown category refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, 'magic', time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: unknown detection_algorithm refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, 'NaN', deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: NaN anomaly_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, 'Infinity', deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: Infinity anomaly_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, '-Infinity', anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: -Infinity baseline_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, 'NaN',
		confidence_score, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: NaN deviation_score refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		1.5, detection_algorithm, time_window_start, time_window_end FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: confidence_score above 1 refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections (metric_name, metric_category, anomaly_type, severity,
	baseline_value, anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	SELECT metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_end, time_window_start FROM good_anomaly$$,
	'23514', NULL, 'anomaly_detections: window ending before it starts refused');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections), 1, 'only the valid anomaly row was written');

-- The archive carries the same checks.
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections_archive (metric_name, anomaly_type, severity, anomaly_value,
	deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	VALUES ('m', 'spike', 'high', 'NaN', 1, 0.5, 'mad', now(), now())$$,
	'23514', NULL, 'anomaly_detections_archive: NaN anomaly_value refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detections_archive (metric_name, anomaly_type, severity, anomaly_value,
	deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end)
	VALUES ('m', 'spike', 'high', 1, 1, 0.5, 'magic', now(), now())$$,
	'23514', NULL, 'anomaly_detections_archive: unknown detection_algorithm refused');

-- Since 0.3.0 the guard trigger refuses bad rows first, with clear messages (test/pgtap/detection.sql);
-- the CHECK constraints stay behind it as the last line of defence, tested here with it switched off.
ALTER TABLE thrillmon.anomaly_detection_config DISABLE TRIGGER guard;
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms)
	VALUES ('cfg', '{z_score,magic}')$$, '23514', NULL, 'anomaly_detection_config: unknown algorithm in the array refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms)
	VALUES ('cfg', '{}')$$, '23514', NULL, 'anomaly_detection_config: empty algorithm array refused');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 0)$$,
	'23514', NULL, 'anomaly_detection_config: sensitivity 0 refused');
SELECT throws_ok($$UPDATE thrillmon.anomaly_detection_config SET alert_threshold_score = 1.5 WHERE metric_name = '*'$$,
	'23514', NULL, 'anomaly_detection_config: alert_threshold_score above 1 refused');
ALTER TABLE thrillmon.anomaly_detection_config ENABLE TRIGGER guard;
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 0)$$,
	'22023', NULL, 'anomaly_detection_config: with the guard trigger on, the same row is refused with 22023');
SELECT lives_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms)
	VALUES ('cfg', '{z_score,mad,cusum}')$$, 'anomaly_detection_config: known algorithms accepted');

SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = 0 WHERE target = 'metrics'$$,
	'23514', NULL, 'retention_policies: retention_days 0 refused');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = -5 WHERE target = 'alerts'$$,
	'23514', NULL, 'retention_policies: negative retention_days refused');
SELECT throws_ok($$INSERT INTO thrillmon.retention_policies (target, retention_days) VALUES ('everything', 10)$$,
	'23514', NULL, 'retention_policies: unknown target refused');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET archive_after_days = 3 WHERE target = 'metrics'$$,
	'23514', NULL, 'retention_policies: archive_after_days only for anomalies');

SELECT throws_ok($$INSERT INTO thrillmon.metric_collectors (name, query, metric_category) VALUES ('c', 'SELECT 1', 'bogus')$$,
	'23514', NULL, 'metric_collectors: unknown category refused');
SELECT throws_ok($$INSERT INTO thrillmon.job_runs (job, status, finished_at) VALUES ('dance', 'succeeded', now())$$,
	'23514', NULL, 'job_runs: unknown job refused');

SELECT * FROM finish();
ROLLBACK;
