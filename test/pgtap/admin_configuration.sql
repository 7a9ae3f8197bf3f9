-- A non-superuser member of thrillmon_admin cannot use thrillmon's configuration or collectors to
-- read or run what it could not itself (pg_authid, pg_read_file, COPY ... TO PROGRAM, server
-- settings, another owner's privileges): each attempt is refused, or stored as inert data, or
-- runs with the admin's own privileges and its failure is recorded.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(22);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL AS partitions_made \gset
CREATE ROLE tap_cfg_admin NOLOGIN;
GRANT thrillmon_admin TO tap_cfg_admin;
CREATE ROLE tap_private NOLOGIN;
CREATE TABLE public.tap_secret (v integer);
INSERT INTO public.tap_secret VALUES (42);
REVOKE ALL ON public.tap_secret FROM PUBLIC;
-- A collector a superuser registered, reading what only a superuser may read.
SELECT thrillmon.register_collector('su_authid', 'SELECT count(*) FROM pg_authid', 'security', '1 second');

SET ROLE tap_cfg_admin;

-- What the admin cannot do directly (the baseline the rest must not get around).
SELECT throws_ok($$SELECT pg_read_file('/etc/passwd')$$, '42501', NULL, 'admin: pg_read_file() itself is denied');
SELECT throws_ok($$SELECT count(*) FROM public.tap_secret$$, '42501', NULL, 'admin: another role''s table is denied');

-- Server settings: not through thrillmon's GUCs either.
-- (ALTER SYSTEM cannot run in this file's transaction: its privilege is asked directly.)
SELECT is(has_parameter_privilege('thrillmon.enabled', 'ALTER SYSTEM'), false, 'admin: no ALTER SYSTEM on thrillmon.enabled');
SELECT throws_ok($$SET thrillmon.scheduler = 'off'$$, '55P02', NULL, 'admin: thrillmon.scheduler cannot be SET in a session');
SELECT throws_ok($$SET thrillmon.database = 'postgres'$$, '55P02', NULL, 'admin: thrillmon.database cannot be SET');
SELECT throws_ok(format('ALTER DATABASE %I SET thrillmon.collect_interval = 1', current_database()), '42501', NULL,
	'admin: ALTER DATABASE ... SET thrillmon.* is denied (not the owner)');

-- Collectors run as their owner: registering one that reads beyond the admin's rights fails at once.
SELECT throws_like($$SELECT thrillmon.register_collector('authid', 'SELECT count(*) FROM pg_authid')$$,
	'%permission denied for table pg_authid%', 'collector: reading pg_authid is refused at registration');
SELECT throws_like($$SELECT thrillmon.register_collector('passwd', $q$SELECT length(pg_read_file('/etc/passwd'))$q$)$$,
	'%permission denied for function pg_read_file%', 'collector: pg_read_file() is refused at registration');
SELECT throws_like($$SELECT thrillmon.register_collector('secret', 'SELECT v FROM public.tap_secret')$$,
	'%permission denied for table tap_secret%', 'collector: another role''s table is refused at registration');
SELECT throws_ok($$SELECT thrillmon.register_collector('program', $q$COPY (SELECT 1) TO PROGRAM 'touch /tmp/thrillmon_pwned'$q$)$$,
	NULL, NULL, 'collector: COPY ... TO PROGRAM is refused (one SELECT only)');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_collectors WHERE name IN ('authid', 'passwd', 'secret', 'program')), 0,
	'collector: none of them was registered');

-- A superuser's collector cannot be taken over: the admin's UPDATE re-checks its query as the
-- admin (and would make the admin its owner), so it is refused.
SELECT throws_like($$UPDATE thrillmon.metric_collectors SET collect_interval = '2 seconds' WHERE name = 'su_authid'$$,
	'%permission denied for table pg_authid%', 'collector: an admin cannot take over a superuser''s collector');
SELECT is((SELECT owner_role::text || '/' || collect_interval FROM thrillmon.metric_collectors WHERE name = 'su_authid'),
	'postgres/00:00:01', 'collector: ... which keeps its owner and settings');
-- Privileges are those of the owner at run time: a right revoked after registration makes the
-- next run fail, and the failure is recorded.
RESET ROLE;
GRANT SELECT ON public.tap_secret TO tap_cfg_admin;
SET ROLE tap_cfg_admin;
SELECT lives_ok($$SELECT thrillmon.register_collector('secret_then', 'SELECT v FROM public.tap_secret', 'custom', '1 second')$$,
	'collector: registered while the admin may read the table');
UPDATE thrillmon.metric_collectors SET owner_role = 'postgres' WHERE name = 'secret_then';
SELECT is((SELECT owner_role::text FROM thrillmon.metric_collectors WHERE name = 'secret_then'), 'tap_cfg_admin',
	'collector: an admin cannot make a superuser its owner');
RESET ROLE;
REVOKE SELECT ON public.tap_secret FROM tap_cfg_admin;
SET ROLE tap_cfg_admin;
SELECT lives_ok($$SELECT thrillmon.collect_metrics()$$, 'collect_metrics() runs');
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'secret_then'), 'permission denied for table tap_secret',
	'collector: the denied read is recorded (last_error)');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'secret_then'), 0,
	'collector: and no value was recorded');

-- Configuration is data: names that look like SQL are stored verbatim and never executed.
SELECT lives_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity)
	VALUES ($n$x'); COPY (SELECT 1) TO PROGRAM 'touch /tmp/thrillmon_pwned'; --$n$, 5)$$,
	'config: a metric name that looks like SQL is accepted as a name');
SELECT lives_ok($$SELECT count(thrillmon.record_metric($n$x'); COPY (SELECT 1) TO PROGRAM 'touch /tmp/thrillmon_pwned'; --$n$,
		100 + (g % 3), ts => now() - g * interval '1 minute')) FROM generate_series(1, 60) g;
	SELECT count(*) FROM thrillmon.detect_anomalies();
	SELECT count(*) FROM thrillmon.backtest($n$x'); COPY (SELECT 1) TO PROGRAM 'touch /tmp/thrillmon_pwned'; --$n$, '-infinity', 'infinity')$$,
	'config: recording, detection and backtest over it work');
SELECT throws_ok($$INSERT INTO thrillmon.retention_policies (target, retention_days) VALUES ('pg_authid', 1)$$, '23514', NULL,
	'config: retention cannot be pointed at another table');

RESET ROLE;
SELECT is(pg_stat_file('/tmp/thrillmon_pwned', true), NULL, 'nothing ran the COPY TO PROGRAM (no file)');

SELECT * FROM finish();
ROLLBACK;
