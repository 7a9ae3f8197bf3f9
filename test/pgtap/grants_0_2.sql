-- Privileges on what 0.2.0 adds, for thrillmon_reader, thrillmon_writer, thrillmon_admin and a role
-- with none of them: readers read (views, worker and health), writers record (nothing new), admins
-- configure collectors, run collection and schedule jobs. _run_collector_query() runs a query as
-- any role, so nobody but a superuser (collect_metrics() is SECURITY DEFINER) may call it.
BEGIN;
SET client_min_messages = warning;
SELECT plan(62);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.pg_cron_jobs;
CREATE ROLE tap_nobody_02 NOLOGIN;

CREATE TEMP TABLE calls (what text, call text);
INSERT INTO calls VALUES
	('collect_metrics', 'SELECT thrillmon.collect_metrics()'),
	('register_collector', $$SELECT thrillmon.register_collector('tap_g', 'SELECT 1')$$),
	('unregister_collector', $$SELECT thrillmon.unregister_collector('tap_g')$$),
	('worker_status', 'SELECT * FROM thrillmon.worker_status()'),
	('health_check', 'SELECT thrillmon.health_check()'),
	('schedule_with_pg_cron', 'SELECT * FROM thrillmon.schedule_with_pg_cron()'),
	('unschedule_pg_cron', 'SELECT thrillmon.unschedule_pg_cron()'),
	('_run_collector_query', $$SELECT * FROM thrillmon._run_collector_query('SELECT 1', 'thrillmon_reader', 1000, 'c')$$),
	('SELECT system_health', 'SELECT * FROM thrillmon.system_health'),
	('SELECT metric_catalogue', 'SELECT * FROM thrillmon.metric_catalogue'),
	('SELECT counter_snapshots', 'SELECT * FROM thrillmon.counter_snapshots'),
	('SELECT pg_cron_jobs', 'SELECT * FROM thrillmon.pg_cron_jobs');
GRANT SELECT ON calls TO PUBLIC;
-- Whether pg_cron is installed decides what an allowed call raises; in the test database it is not.
CREATE TEMP TABLE cron AS SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS installed;
GRANT SELECT ON cron TO PUBLIC;

-- thrillmon_reader ------------------------------------------------------------------------------------------
SET LOCAL ROLE thrillmon_reader;
SELECT lives_ok(call, 'reader: ' || what) FROM calls
WHERE what IN ('worker_status', 'health_check', 'SELECT system_health', 'SELECT metric_catalogue', 'SELECT counter_snapshots',
	'SELECT pg_cron_jobs') ORDER BY what;
SELECT throws_ok(call, '42501', NULL, 'reader: ' || what || ' refused') FROM calls
WHERE what IN ('collect_metrics', 'register_collector', 'unregister_collector', 'schedule_with_pg_cron', 'unschedule_pg_cron',
	'_run_collector_query') ORDER BY what;
SELECT throws_ok($$INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('tap_r', 'SELECT 1')$$, '42501', NULL,
	'reader: INSERT metric_collectors refused');
SELECT throws_ok($$INSERT INTO thrillmon.pg_cron_jobs (job, jobname, schedule, command) VALUES ('collect', 'x', '* * * * *', 'SELECT 1')$$,
	'42501', NULL, 'reader: INSERT pg_cron_jobs refused');
RESET ROLE;

-- thrillmon_writer ------------------------------------------------------------------------------------------
SET LOCAL ROLE thrillmon_writer;
SELECT throws_ok(call, '42501', NULL, 'writer: ' || what || ' refused') FROM calls ORDER BY what;
SELECT throws_ok($$INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('tap_w', 'SELECT 1')$$, '42501', NULL,
	'writer: INSERT metric_collectors refused');
SELECT lives_ok($$SELECT thrillmon.record_metric('tap_by_writer', 1)$$, 'writer: record_metric still allowed');
RESET ROLE;

-- thrillmon_admin -------------------------------------------------------------------------------------------
SET LOCAL ROLE thrillmon_admin;
SELECT lives_ok(call, 'admin: ' || what) FROM calls
WHERE what IN ('collect_metrics', 'register_collector', 'unregister_collector', 'worker_status', 'health_check',
	'SELECT system_health', 'SELECT metric_catalogue', 'SELECT counter_snapshots', 'SELECT pg_cron_jobs')
ORDER BY what = 'unregister_collector', what;  -- register before unregister
SELECT CASE WHEN (SELECT installed FROM cron) THEN skip('pg_cron is installed here', 1)
	ELSE throws_ok(call, '55000', NULL, 'admin: ' || what || ' allowed (then refused for want of pg_cron)') END
FROM calls WHERE what IN ('schedule_with_pg_cron', 'unschedule_pg_cron') ORDER BY what;
SELECT throws_ok(call, '42501', 'permission denied for function _run_collector_query', 'admin: _run_collector_query refused')
FROM calls WHERE what = '_run_collector_query';
SELECT lives_ok($$INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('tap_a', 'SELECT 1')$$, 'admin: INSERT metric_collectors');
SELECT lives_ok($$UPDATE thrillmon.metric_collectors SET enabled = false WHERE name = 'tap_a'$$, 'admin: UPDATE metric_collectors');
SELECT lives_ok($$DELETE FROM thrillmon.metric_collectors WHERE name = 'tap_a'$$, 'admin: DELETE metric_collectors');
SELECT lives_ok($$INSERT INTO thrillmon.pg_cron_jobs (job, jobname, schedule, command) VALUES ('collect', 'x', '* * * * *', 'SELECT 1')$$,
	'admin: INSERT pg_cron_jobs');
SELECT lives_ok($$DELETE FROM thrillmon.pg_cron_jobs$$, 'admin: DELETE pg_cron_jobs');
SELECT throws_ok($$INSERT INTO thrillmon.counter_snapshots VALUES ('blks_hit', 0, now())$$, '42501', NULL,
	'admin: INSERT counter_snapshots refused (internal to collection)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'collect' AND run_by = session_user), 1,
	'the admin''s collect_metrics() run is recorded');

-- No thrillmon membership -----------------------------------------------------------------------------------
SET LOCAL ROLE tap_nobody_02;
SELECT throws_ok(call, '42501', NULL, 'no membership: ' || what || ' refused') FROM calls ORDER BY what;
RESET ROLE;

-- _run_collector_query: EXECUTE for no role but superusers (the catalogue, for every thrillmon role).
SELECT ok(NOT has_function_privilege(r, 'thrillmon._run_collector_query(text, name, integer, text)', 'EXECUTE'),
	r || ' has no EXECUTE on _run_collector_query')
FROM unnest(ARRAY['thrillmon_reader', 'thrillmon_writer', 'thrillmon_admin']) r;

SELECT * FROM finish();
ROLLBACK;
