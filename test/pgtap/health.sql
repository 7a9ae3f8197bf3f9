-- Health: worker_status(), health_check(), the system_health view and metric_catalogue. The worker
-- does not serve the test database (thrillmon.database names another), so only what does not
-- depend on it is asserted about the worker.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(52);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;

-- worker_status() ----------------------------------------------------------------------------------

SELECT is((SELECT array_agg(u.n || ' ' || format_type(u.t, NULL) ORDER BY u.o)
	FROM pg_proc p, unnest(p.proargnames, p.proallargtypes) WITH ORDINALITY AS u(n, t, o)
	WHERE p.oid = 'thrillmon.worker_status()'::regprocedure),
	ARRAY['pid integer', 'state text', 'database text', 'started_at timestamp with time zone',
		'last_tick_at timestamp with time zone', 'current_job text', 'last_job text', 'last_job_at timestamp with time zone',
		'last_error text', 'last_error_at timestamp with time zone', 'jobs_run bigint', 'jobs_failed bigint'],
	'worker_status(): its columns and types');
SELECT is((SELECT count(*)::int FROM thrillmon.worker_status()), 1, 'worker_status(): exactly one row');
SELECT ok((SELECT state IS NOT NULL AND jobs_run >= 0 AND jobs_failed >= 0 FROM thrillmon.worker_status()),
	'state is set; jobs_run and jobs_failed are counts');
SELECT ok((SELECT pid IS NULL OR pid > 0 FROM thrillmon.worker_status()), 'pid is NULL or a process id');
SELECT ok((SELECT pid IS NOT NULL OR current_job IS NULL FROM thrillmon.worker_status()), 'no current job without a live worker');
SELECT ok((SELECT pid IS NOT NULL OR state IN ('not running', 'not loaded (add thrillmon to shared_preload_libraries)')
	FROM thrillmon.worker_status()), 'without a pid the state says why');
SELECT ok((SELECT state LIKE 'not loaded%' OR database = current_setting('thrillmon.database', true) FROM thrillmon.worker_status()),
	'database is the one thrillmon.database names');

-- health_check() -----------------------------------------------------------------------------------

CREATE FUNCTION pg_temp.h() RETURNS jsonb LANGUAGE sql AS $$SELECT thrillmon.health_check()$$;
CREATE FUNCTION pg_temp.has_reason(r text) RETURNS boolean LANGUAGE sql AS $$SELECT pg_temp.h()->'reasons' ? r$$;

SELECT is(jsonb_typeof(pg_temp.h()), 'object', 'health_check() returns a JSON object');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(pg_temp.h()) k),
	ARRAY['checked_at', 'last_collection_at', 'reasons', 'status', 'worker'], '... with keys status, reasons, checked_at, last_collection_at, worker');
SELECT ok(pg_temp.h()->>'status' IN ('ok', 'degraded', 'failing'), 'status is ok, degraded or failing');
SELECT is(jsonb_typeof(pg_temp.h()->'reasons'), 'array', 'reasons is an array');
SELECT is((pg_temp.h()->>'checked_at')::timestamptz, now(), 'checked_at is now()');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(pg_temp.h()->'worker') k),
	(SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys((SELECT to_jsonb(w) FROM thrillmon.worker_status() w)) k),
	'worker is worker_status() as JSON (its keys)');
SELECT is(pg_temp.h()->'worker'->>'database', (SELECT database FROM thrillmon.worker_status()), '... (its database)');
SELECT is(pg_temp.h()->'last_collection_at', 'null'::jsonb, 'no successful collection yet: last_collection_at is null');
SELECT ok(CASE WHEN coalesce(current_setting('thrillmon.enabled', true), 'on') = 'on'
		AND coalesce(current_setting('thrillmon.scheduler', true), 'internal') = 'internal'
	THEN pg_temp.has_reason('collection stale: no successful collection yet') AND pg_temp.h()->>'status' = 'failing'
	ELSE true END, 'with the internal scheduler on and no collection yet: failing, collection stale');

SELECT thrillmon.collect_metrics() IS NOT NULL AS collected \gset
SELECT is((pg_temp.h()->>'last_collection_at')::timestamptz,
	(SELECT finished_at FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'), 'last_collection_at is the collect run''s end');
SELECT ok(NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(pg_temp.h()->'reasons') r WHERE r LIKE 'collection stale%'),
	'after a collection: not stale');

-- A failing collector.
SELECT thrillmon.register_collector('tap_bad', 'SELECT 1/(count(*)-count(*)) FROM pg_class');
SELECT thrillmon.register_collector('tap_good', 'SELECT 1');
SELECT thrillmon.collect_metrics() IS NOT NULL AS collected \gset
SELECT ok(pg_temp.has_reason('collector tap_bad failing: division by zero'), 'a failing collector is a reason: collector <name> failing: <error>');
SELECT ok(NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(pg_temp.h()->'reasons') r WHERE r LIKE 'collector tap_good%'),
	'a healthy collector is not');
SELECT isnt(pg_temp.h()->>'status', 'ok', 'with a reason the status is not ok');

-- A failed job: the last finished run of each job counts.
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status, error)
VALUES ('retention', 'all', now() - interval '2 hours', now() - interval '2 hours', 'succeeded', NULL),
       ('retention', 'all', now() - interval '1 hour', now() - interval '1 hour', 'failed', 'tap: lock timeout'),
       ('detect', NULL, now() - interval '1 hour', now() - interval '1 hour', 'failed', NULL);
SELECT ok(pg_temp.has_reason('job retention failing: tap: lock timeout'), 'a job whose last run failed is a reason: job <job> failing: <error>');
SELECT ok(pg_temp.has_reason('job detect failing: see job_runs'), '... without an error: see job_runs');
SELECT ok(NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(pg_temp.h()->'reasons') r WHERE r LIKE 'job collect%'),
	'a job whose last run succeeded is not');

-- system_health ------------------------------------------------------------------------------------

SELECT thrillmon.record_metric('tap_h', 1, 'system', ts => now() - interval '3 hours');
SELECT thrillmon.record_metric('tap_h', 2, 'system', ts => now() - interval '1 hour');
SELECT thrillmon.record_metric('tap_h', 3, 'system', ts => now() - interval '2 hours');
SELECT thrillmon.record_metric('tap_old', 9, 'workflow', ts => now() - interval '25 hours');
INSERT INTO thrillmon.incidents (incident_number, title, severity, status, detected_at, acknowledged_at, resolved_at, closed_at) VALUES
	('TAP-1', 'disk filling', 'high', 'open', now() - interval '1 hour', NULL, NULL, NULL),
	('TAP-2', 'slow api', 'medium', 'investigating', now() - interval '2 hours', now() - interval '90 minutes', NULL, NULL),
	('TAP-3', 'old', 'low', 'resolved', now() - interval '3 hours', NULL, now() - interval '150 minutes', NULL),
	('TAP-4', 'older', 'low', 'closed', now() - interval '4 hours', NULL, NULL, now() - interval '210 minutes');
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, created_at, acknowledged_at, resolved_at) VALUES
	('tap_spike', 'critical', 'spike on tap_h', 'tap_h', now() - interval '10 minutes', NULL, NULL),
	('tap_drop', 'low', 'drop', NULL, now() - interval '20 minutes', now() - interval '5 minutes', NULL),
	('tap_gone', 'high', 'resolved', NULL, now() - interval '30 minutes', NULL, now() - interval '1 minute');

SELECT is((SELECT array_agg(DISTINCT section ORDER BY section) FROM thrillmon.system_health),
	ARRAY['alert', 'collector', 'health', 'incident', 'job', 'metric', 'worker'], 'system_health: the seven sections');
SELECT results_eq($$SELECT name, status, value, observed_at, detail FROM thrillmon.system_health
	WHERE section = 'metric' AND name IN ('tap_h', 'tap_old') ORDER BY name$$,
	$$VALUES ('tap_h'::text, NULL::text, 2::float8, now() - interval '1 hour', '{"category": "system"}'::jsonb)$$,
	'metric: the latest value of each metric of the last day (older metrics left out)');
SELECT is((SELECT count(*)::int FROM thrillmon.system_health WHERE section = 'metric'),
	(SELECT count(DISTINCT metric_name)::int FROM thrillmon.metric_time_series WHERE "timestamp" > now() - interval '1 day'),
	'metric: one row per metric');
SELECT results_eq($$SELECT name, status, value, observed_at, detail FROM thrillmon.system_health WHERE section = 'incident' ORDER BY name$$,
	$$VALUES ('TAP-1: disk filling'::text, 'open'::text, NULL::float8, now() - interval '1 hour',
			'{"severity": "high", "acknowledged_at": null}'::jsonb),
	         ('TAP-2: slow api', 'investigating', NULL, now() - interval '2 hours',
			jsonb_build_object('severity', 'medium', 'acknowledged_at', now() - interval '90 minutes'))$$,
	'incident: open and investigating incidents only');
SELECT results_eq($$SELECT name, status, value, observed_at, detail FROM thrillmon.system_health WHERE section = 'alert' ORDER BY name$$,
	$$VALUES ('tap_drop'::text, 'low'::text, NULL::float8, now() - interval '20 minutes',
			jsonb_build_object('message', 'drop', 'metric_name', NULL, 'acknowledged_at', now() - interval '5 minutes')),
	         ('tap_spike', 'critical', NULL, now() - interval '10 minutes',
			'{"message": "spike on tap_h", "metric_name": "tap_h", "acknowledged_at": null}'::jsonb)$$,
	'alert: unresolved alerts only, status = severity');
SELECT results_eq($$SELECT name, status, observed_at FROM thrillmon.system_health WHERE section = 'worker'$$,
	$$SELECT 'thrillmon collector'::text, state, last_tick_at FROM thrillmon.worker_status()$$, 'worker: one row from worker_status()');
SELECT results_eq($$SELECT name, status, value, observed_at, detail->>'error' FROM thrillmon.system_health
	WHERE section = 'job' AND name IN ('retention', 'detect') ORDER BY name$$,
	$$VALUES ('detect'::text, 'failed'::text, NULL::float8, now() - interval '1 hour', NULL::text),
	         ('retention', 'failed', NULL, now() - interval '1 hour', 'tap: lock timeout')$$,
	'job: the last run of each job');
SELECT results_eq($$SELECT name, status, value, detail->>'target' FROM thrillmon.system_health WHERE section = 'job' AND name = 'collect'$$,
	$$SELECT 'collect'::text, status, rows_affected::float8, target FROM thrillmon.job_runs WHERE job = 'collect' ORDER BY started_at DESC LIMIT 1$$,
	'job: collect shows its latest run');
SELECT results_eq($$SELECT name, status, value, observed_at, detail FROM thrillmon.system_health WHERE section = 'collector'$$,
	$$VALUES ('tap_bad'::text, 'failing'::text, NULL::float8, now(), '{"error": "division by zero"}'::jsonb)$$,
	'collector: failing enabled collectors only');
UPDATE thrillmon.metric_collectors SET enabled = false WHERE name = 'tap_bad';
SELECT is_empty($$SELECT 1 FROM thrillmon.system_health WHERE section = 'collector'$$, 'collector: a disabled one is not listed');
SELECT ok(NOT pg_temp.has_reason('collector tap_bad failing: division by zero'), 'nor is it a health_check() reason');
SELECT results_eq($$SELECT name, status, observed_at, detail - 'checked_at' - 'worker' FROM thrillmon.system_health WHERE section = 'health'$$,
	$$SELECT 'health_check'::text, h->>'status', now(), h - 'checked_at' - 'worker' FROM thrillmon.health_check() h$$,
	'health: one row, health_check()');

-- metric_catalogue ---------------------------------------------------------------------------------

SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_catalogue WHERE source = 'builtin'$$,
	ARRAY['database_connections', 'cache_hit_rate', 'active_incidents', 'unresolved_alerts', 'transactions_per_second',
		'rollback_rate', 'deadlocks', 'longest_transaction_seconds', 'lock_waits', 'database_size_bytes',
		'wal_bytes_per_second', 'dead_tuple_ratio', 'replication_lag_seconds', 'cluster_database_size_bytes'],
	'metric_catalogue: the 14 built-in metrics (cluster_database_size_bytes is recorded on a Citus coordinator only)');
SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_catalogue WHERE source = 'application'$$,
	ARRAY['api_response_time', 'error_rate', 'celery_queue_size', 'api_error_count', 'rate_limit_violations',
		'pending_submissions', 'submission_approval_rate', 'avg_moderation_time'],
	'metric_catalogue: the 8 application metrics');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_catalogue WHERE source IN ('builtin', 'application')), 22,
	'... each listed once');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_catalogue WHERE metric_category NOT IN
	('performance', 'system', 'security', 'workflow', 'monitoring', 'custom') OR description IS NULL OR metric_category IS NULL$$,
	'every entry has a known category and a description');
SELECT results_eq($$SELECT metric_name, metric_category, unit, source, description FROM thrillmon.metric_catalogue
	WHERE source = 'collector' ORDER BY metric_name$$,
	$$VALUES ('tap_bad'::text, 'custom'::text, NULL::text, 'collector'::text, format('SQL collector (00:01:00, owner %s)', current_user)),
	         ('tap_good', 'custom', NULL, 'collector', format('SQL collector (00:01:00, owner %s)', current_user))$$,
	'registered collectors are listed with source collector');

-- Overdue retention, expected daily when the worker or pg_cron runs it (a pg_cron job row makes it
-- expected whatever this cluster's settings): none in a fresh install's first day, one after a day
-- and an hour without a successful full cleanup.
CREATE FUNCTION pg_temp.overdue() RETURNS text LANGUAGE sql AS
	$$SELECT coalesce(string_agg(r, '; '), '') FROM jsonb_array_elements_text(pg_temp.h()->'reasons') r WHERE r LIKE 'retention overdue%'$$;
DELETE FROM thrillmon.job_runs;
INSERT INTO thrillmon.pg_cron_jobs (job, jobname, schedule, command)
VALUES ('retention', 'thrillmon-retention', '0 3 * * *', 'SELECT thrillmon.run_data_retention_cleanup()');
SELECT is(pg_temp.overdue(), '', 'retention overdue: not in a fresh install (no job history older than a day)');
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status)
VALUES ('collect', 'scheduled', now() - interval '3 days', now() - interval '3 days', 'succeeded');
SELECT is(pg_temp.overdue(), 'retention overdue: no successful run_data_retention_cleanup() yet',
	'retention overdue: job history older than a day and no successful cleanup ever');
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status)
VALUES ('retention', 'all', now() - interval '26 hours', now() - interval '26 hours', 'succeeded'),
       ('retention', 'all', now() - interval '2 hours', now() - interval '2 hours', 'skipped'),
       ('retention', 'all', now() - interval '1 hour', now() - interval '1 hour', 'failed');
SELECT is(pg_temp.overdue(), 'retention overdue: last successful run_data_retention_cleanup() 1 day 02:00:00 ago',
	'retention overdue: the last success 26 hours ago (later runs skipped or failed do not count)');
SELECT isnt(pg_temp.h()->>'status', 'ok', '... and the status is not ok');
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status)
VALUES ('retention', 'all', now() - interval '20 hours', now() - interval '20 hours', 'succeeded');
SELECT is(pg_temp.overdue(), '', 'retention overdue: not after a success 20 hours ago');
DELETE FROM thrillmon.pg_cron_jobs;
DELETE FROM thrillmon.job_runs WHERE job = 'retention' AND started_at > now() - interval '25 hours';
SELECT is(pg_temp.overdue(), CASE WHEN coalesce(current_setting('thrillmon.enabled', true), 'on') = 'on'
		AND coalesce(current_setting('thrillmon.scheduler', true), 'internal') = 'internal'
	THEN 'retention overdue: last successful run_data_retention_cleanup() 1 day 02:00:00 ago' ELSE '' END,
	'retention overdue: expected without pg_cron exactly when the internal scheduler runs');

-- Detection stalled: the horizon has not moved for three intervals and ten minutes while the
-- worker or pg_cron is to run detection (a pg_cron job row makes it expected here).
CREATE FUNCTION pg_temp.detection() RETURNS text LANGUAGE sql AS
	$$SELECT coalesce(string_agg(r, '; '), '') FROM jsonb_array_elements_text(pg_temp.h()->'reasons') r WHERE r LIKE 'detection%'$$;
DELETE FROM thrillmon.detector_progress;
DELETE FROM thrillmon.job_runs WHERE job = 'detect';
INSERT INTO thrillmon.pg_cron_jobs (job, jobname, schedule, command)
VALUES ('detect', 'thrillmon-detect', '*/5 * * * *', 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()');
SELECT is(pg_temp.detection(), '', 'detection: no pass yet is not a stall');
INSERT INTO thrillmon.detector_progress (pass, horizon) VALUES (1, now() - interval '10 minutes');
SELECT is(pg_temp.detection(), '', 'detection: a horizon 10 minutes old is not a stall');
UPDATE thrillmon.detector_progress SET horizon = now() - interval '2 hours';
SELECT is(pg_temp.detection(), format('detection stalled: points are scored up to %s, 02:00:00 ago', now() - interval '2 hours'),
	'detection stalled: the horizon two hours old');
SELECT is(pg_temp.h()->>'status', 'failing', '... and that is failing, not degraded');
DELETE FROM thrillmon.pg_cron_jobs;
UPDATE thrillmon.detector_progress SET horizon = now();
INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status, details)
VALUES ('detect', 'all', now() - interval '1 minute', now() - interval '1 minute', 'succeeded',
	'{"anomalies": 0, "metrics": 10000, "skipped_metrics": 25, "failed_metrics": 3}');
SELECT is(pg_temp.detection(), format('detection left 25 metrics unscored in its last pass (more than thrillmon.max_metrics_per_pass = %s had new points); '
	'detection could not score 3 metrics in its last pass (out of memory)', current_setting('thrillmon.max_metrics_per_pass')),
	'detection: the last pass''s skipped and failed metrics are named');

SELECT * FROM finish();
ROLLBACK;
