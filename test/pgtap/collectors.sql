-- SQL collectors: register_collector() accepts one read-only SELECT of the right shape and refuses
-- everything else with a clear error; collect_metrics() runs each collector as its owner, read-only,
-- under its timeout, records its values, and isolates a failing collector from the others.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SET LOCAL IntervalStyle = 'postgres';
SELECT plan(105);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.counter_snapshots;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL AS partitions_made \gset

CREATE FUNCTION pg_temp.collectors() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.metric_collectors$$;

-- Accepted shapes ---------------------------------------------------------------------------------

SELECT lives_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_' || t, format('SELECT 7::%s', t)),
	'one column of type ' || t || ' accepted')
FROM unnest(ARRAY['smallint', 'integer', 'bigint', 'real', 'double precision', 'numeric']) t;
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_pair', $q$SELECT 'a'::text, 1.5::numeric$q$)$$,
	'two columns (text, numeric) accepted');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_varchar', $q$SELECT 'a'::varchar(10), 2::integer$q$)$$,
	'two columns (varchar, integer) accepted');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_name', $q$SELECT relname, relpages FROM pg_class LIMIT 1$q$)$$,
	'two columns (name, integer) accepted');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_comment', 'SELECT 1 -- a trailing comment')$$,
	'a trailing line comment is fine');
-- "SELECT 1;" is one statement: the trailing semicolon must not break the wrapping subquery.
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_semicolon', 'SELECT 1;')$$,
	'one statement with a trailing semicolon accepted');
SELECT lives_ok(format('SELECT thrillmon.register_collector(%L, %L)', repeat('é', 128), 'SELECT 1'),
	'a name of 128 characters (256 bytes) accepted');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_min', 'SELECT 1', 'system', '1 second')$$, 'interval of 1 second accepted');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_max', 'SELECT 1', 'security', '1 day')$$, 'interval of 1 day accepted');

SELECT results_eq($$SELECT metric_category, collect_interval, owner_role, enabled, statement_timeout,
		last_run_at, last_success_at, last_error, last_duration_ms
	FROM thrillmon.metric_collectors WHERE name = 'tap_integer'$$,
	$$VALUES ('custom'::text, interval '60 seconds', current_user::name, true, interval '5 seconds',
		NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::float8)$$,
	'defaults: category custom, every 60 s, owned by the caller, enabled, 5 s timeout, never run');
SELECT results_eq($$SELECT name, query, metric_category, collect_interval FROM thrillmon.metric_collectors
	WHERE name IN ('tap_min', 'tap_max') ORDER BY name$$,
	$$VALUES ('tap_max'::text, 'SELECT 1'::text, 'security'::text, interval '1 day'),
	         ('tap_min', 'SELECT 1', 'system', interval '1 second')$$,
	'name, query, category and interval stored as given');

-- Re-registering replaces.
SELECT thrillmon.register_collector('tap_re', 'SELECT 1');
UPDATE thrillmon.metric_collectors SET last_error = 'old failure', enabled = false WHERE name = 'tap_re';
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_re', 'SELECT 2', 'workflow', '2 minutes')$$,
	're-registering the same name');
SELECT results_eq($$SELECT count(*)::int, min(query), min(metric_category), min(collect_interval), bool_and(enabled),
		count(last_error)::int FROM thrillmon.metric_collectors WHERE name = 'tap_re'$$,
	$$VALUES (1, 'SELECT 2'::text, 'workflow'::text, interval '2 minutes', true, 0)$$,
	'... replaces query, category and interval, re-enables it and clears last_error (still one row)');

-- Refused ------------------------------------------------------------------------------------------

SELECT pg_temp.collectors() AS before_refusals \gset

-- NULLs get 22004 "... must not be NULL", as in record_metric.
SELECT throws_ok($$SELECT thrillmon.register_collector(NULL, 'SELECT 1')$$,
	'22004', 'thrillmon: collector name must not be NULL', 'NULL name');
SELECT throws_ok($$SELECT thrillmon.register_collector('', 'SELECT 1')$$,
	'22023', 'thrillmon: collector name must not be empty', 'empty name');
SELECT throws_ok($$SELECT thrillmon.register_collector('   ', 'SELECT 1')$$,
	'22023', 'thrillmon: collector name must not be empty', 'blank name');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', repeat('x', 129), 'SELECT 1'),
	'22001', 'thrillmon: collector name is too long (129 characters, at most 128)', 'name of 129 characters');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', repeat('é', 129), 'SELECT 1'),
	'22001', 'thrillmon: collector name is too long (129 characters, at most 128)', 'name of 129 characters (multi-byte)');
-- A one-column collector's metric is named after it, so its name follows the metric name rules.
SELECT throws_ok($$SELECT thrillmon.register_collector(E'tap\tx', 'SELECT 1')$$,
	'22021', 'thrillmon: collector name must not contain control characters', 'name with a control character');
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT 1', 'bogus')$$,
	'22023', 'thrillmon: unknown metric_category "bogus"', 'unknown category');
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT 1', NULL)$$,
	'22004', 'thrillmon: metric_category must not be NULL', 'NULL category');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L, %L, %L)', 'tap_x', 'SELECT 1', 'custom', i),
	'22023', 'thrillmon: collect_interval must be between 1 second and 1 day, got ' || i::interval::text,
	'interval ' || i || ' refused')
FROM unnest(ARRAY['999 milliseconds', '0', '-1 minute', '1 day 1 second', '25 hours', '1 mon']) i;
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT 1', 'custom', NULL)$$,
	'22004', 'thrillmon: collect_interval must not be NULL', 'NULL interval');
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', NULL)$$,
	'22004', 'thrillmon: collector query must not be NULL', 'NULL query');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_x', q),
	'22023', 'thrillmon: a collector query must be exactly one SELECT statement, got 0 statements', format('query %L refused', q))
FROM unnest(ARRAY['', '   ', '-- nothing']) q;
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELEC 1')$$,
	'42601', 'syntax error at or near "SELEC"', 'syntax error');
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT 1; SELECT 2')$$,
	'22023', 'thrillmon: a collector query must be exactly one SELECT statement, got 2 statements', 'two statements');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_x', q),
	'22023', 'thrillmon: a collector query must be a SELECT; data-modifying and other statements are refused',
	'statement refused: ' || q)
FROM unnest(ARRAY[
	$$INSERT INTO thrillmon.counter_snapshots VALUES ('x', 1, now()) RETURNING value$$,
	$$UPDATE thrillmon.counter_snapshots SET value = 1 RETURNING value$$,
	'DELETE FROM thrillmon.counter_snapshots RETURNING value',
	'CREATE TABLE tap_t (a int)',
	'DROP TABLE thrillmon.counter_snapshots',
	'TRUNCATE thrillmon.counter_snapshots',
	'SET ROLE thrillmon_reader',
	'EXPLAIN SELECT 1']) q;
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_x', q),
	'22023', 'thrillmon: a collector query must not modify data (WITH "d" is not a SELECT)', 'data-modifying WITH: ' || q)
FROM unnest(ARRAY[
	'WITH d AS (DELETE FROM thrillmon.counter_snapshots RETURNING value) SELECT count(*) FROM d',
	'WITH s AS (SELECT 1), d AS (UPDATE thrillmon.counter_snapshots SET value = 0 RETURNING value) SELECT 1']) q;
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT 1 AS a INTO tap_t')$$,
	'22023', 'thrillmon: a collector query must not use SELECT INTO', 'SELECT INTO');
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_x', 'SELECT 1 FROM thrillmon.counter_snapshots ' || l),
	'22023', 'thrillmon: a collector query must not lock rows (FOR UPDATE/SHARE)', l)
FROM unnest(ARRAY['FOR UPDATE', 'FOR SHARE', 'FOR NO KEY UPDATE SKIP LOCKED']) l;
SELECT throws_ok(format('SELECT thrillmon.register_collector(%L, %L)', 'tap_x', q), '42804',
	format('thrillmon: a collector query must return one numeric column, or two columns (metric_name text, value numeric); it returns (%s)', t),
	'shape (' || t || ') refused')
FROM (VALUES ($$SELECT 'x'::text$$, 'text'), ($$SELECT 'x'::text, 1, 2$$, 'text, integer, integer'),
	($$SELECT 1.5, 'x'::text$$, 'numeric, text'), ('SELECT true', 'boolean'),
	($$SELECT 1, 2$$, 'integer, integer')) s(q, t);
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT count(*) FROM tap_no_such_table')$$,
	'42P01', 'relation "tap_no_such_table" does not exist', 'unknown table');

-- A table the caller cannot read: the query would run with the caller's privileges.
CREATE ROLE tap_collector_admin NOLOGIN;
GRANT thrillmon_admin TO tap_collector_admin;
SET LOCAL ROLE tap_collector_admin;
SELECT throws_ok($$SELECT thrillmon.register_collector('tap_x', 'SELECT count(*) FROM pg_authid')$$,
	'42501', 'permission denied for table pg_authid', 'non-superuser admin: a table it cannot read is refused');
RESET ROLE;
SELECT is(pg_temp.collectors(), :before_refusals, 'no refused collector was stored');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_collectors WHERE name = 'tap_x'$$, '... in particular none named tap_x');

-- unregister_collector()
SELECT is(thrillmon.unregister_collector('tap_re'), true, 'unregister_collector: true when it existed');
SELECT is(thrillmon.unregister_collector('tap_re'), false, '... false the second time');
SELECT is(thrillmon.unregister_collector(NULL), false, '... false for NULL');

-- Running ------------------------------------------------------------------------------------------

DELETE FROM thrillmon.metric_collectors;
SELECT thrillmon.register_collector('tap_one', 'SELECT 42');
SELECT thrillmon.register_collector('tap_two',
	$$SELECT 'tap_m' || g, g * 1.5 FROM generate_series(1, 3) g UNION ALL SELECT 'tap_skipped', NULL$$, 'workflow');
SELECT thrillmon.register_collector('tap_null', 'SELECT NULL::integer');
SELECT thrillmon.register_collector('tap_empty', 'SELECT 1 WHERE false');
SELECT thrillmon.register_collector('tap_div0', 'SELECT 1/(count(*)-count(*)) FROM pg_class', 'performance');
SELECT thrillmon.register_collector('tap_1000', 'SELECT 1 FROM generate_series(1, 1000) g');
SELECT thrillmon.register_collector('tap_1001', 'SELECT g FROM generate_series(1, 1001) g');
SELECT thrillmon.register_collector('tap_slow', 'SELECT 1 FROM pg_sleep(2)');
UPDATE thrillmon.metric_collectors SET statement_timeout = '200 ms' WHERE name = 'tap_slow';
SELECT thrillmon.register_collector('tap_disabled', 'SELECT 5');
UPDATE thrillmon.metric_collectors SET enabled = false WHERE name = 'tap_disabled';

CREATE TEMP TABLE run1 AS SELECT thrillmon.collect_metrics() AS r;

SELECT results_eq($$SELECT (r->>'collectors_ok')::int, (r->>'collectors_failed')::int, (r->>'collector_points')::int FROM run1$$,
	$$VALUES (5, 3, 1004)$$, 'collect_metrics(): 5 collectors ok, 3 failed, 1004 collector points');
SELECT results_eq($$SELECT metric_name, metric_category, metric_value, "timestamp", metadata
	FROM thrillmon.metric_time_series WHERE metadata->>'collector' IN ('tap_one', 'tap_two') ORDER BY metric_name$$,
	$$VALUES ('tap_m1'::text, 'workflow'::text, 1.5::float8, now(), '{"collector": "tap_two"}'::jsonb),
	         ('tap_m2', 'workflow', 3, now(), '{"collector": "tap_two"}'),
	         ('tap_m3', 'workflow', 4.5, now(), '{"collector": "tap_two"}'),
	         ('tap_one', 'custom', 42, now(), '{"collector": "tap_one"}')$$,
	'a one-column collector''s metric is named after it; a two-column one names its metrics; stamped now(), category and metadata of the collector');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name IN ('tap_skipped', 'tap_null', 'tap_empty')
	OR metadata->>'collector' IN ('tap_null', 'tap_empty')$$, 'NULL values and empty results record nothing');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'tap_1000' AND metadata->>'collector' = 'tap_1000'),
	1000, 'a collector returning exactly 1000 rows records them all');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE metadata->>'collector' IN ('tap_div0', 'tap_1001', 'tap_slow', 'tap_disabled')$$,
	'failed and disabled collectors record nothing');

SELECT results_eq($$SELECT name, last_run_at, last_success_at, last_error FROM thrillmon.metric_collectors ORDER BY name$$,
	$$VALUES ('tap_1000'::text, now(), now(), NULL::text),
	         ('tap_1001', now(), NULL, 'thrillmon: collector query returned more than 1000 rows'),
	         ('tap_disabled', NULL, NULL, NULL),
	         ('tap_div0', now(), NULL, 'division by zero'),
	         ('tap_empty', now(), now(), NULL),
	         ('tap_null', now(), now(), NULL),
	         ('tap_one', now(), now(), NULL),
	         ('tap_slow', now(), NULL, 'thrillmon: collector query timed out after 200 ms'),
	         ('tap_two', now(), now(), NULL)$$,
	'each collector''s outcome: last_run_at, last_success_at and last_error');
SELECT ok((SELECT bool_and(last_duration_ms >= 0) AND count(*) = 8 FROM thrillmon.metric_collectors WHERE last_duration_ms IS NOT NULL),
	'last_duration_ms set for every collector that ran');
SELECT ok((SELECT last_duration_ms BETWEEN 150 AND 1900 FROM thrillmon.metric_collectors WHERE name = 'tap_slow'),
	'the timed-out collector was stopped near its 200 ms, not after pg_sleep(2)');
SELECT is(current_user::text, session_user::text, 'the session''s user is back after running collectors as their owners');
SELECT is(current_setting('transaction_read_only'), 'off', 'the transaction is read-write again');

-- A failing collector that is fixed succeeds on the next run and its error is cleared.
UPDATE thrillmon.metric_collectors SET query = 'SELECT 7' WHERE name = 'tap_div0';
UPDATE thrillmon.metric_collectors SET enabled = false WHERE name IN ('tap_1000', 'tap_1001', 'tap_slow');
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT results_eq($$SELECT last_success_at, last_error FROM thrillmon.metric_collectors WHERE name = 'tap_div0'$$,
	$$VALUES (now(), NULL::text)$$, 'a fixed collector succeeds and its last_error is cleared');
SELECT results_eq($$SELECT metric_name, metric_category, metric_value FROM thrillmon.metric_time_series WHERE metadata->>'collector' = 'tap_div0'$$,
	$$VALUES ('tap_div0'::text, 'performance'::text, 7::float8)$$, '... and records its value');

-- Owners and privileges ----------------------------------------------------------------------------

DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.metric_time_series;
SET LOCAL ROLE tap_collector_admin;
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_owned', 'SELECT count(*) FROM pg_class')$$,
	'non-superuser admin registers a collector');
SELECT lives_ok($$SELECT thrillmon.register_collector('tap_whoami', $q$SELECT (current_user = 'tap_collector_admin')::int$q$)$$,
	'... and one that reports who runs it');
RESET ROLE;
SELECT results_eq($$SELECT name, owner_role FROM thrillmon.metric_collectors ORDER BY name$$,
	$$VALUES ('tap_owned'::text, 'tap_collector_admin'::name), ('tap_whoami', 'tap_collector_admin')$$,
	'owner_role is the registering role');
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT results_eq($$SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'tap_whoami'$$,
	$$VALUES (1::float8)$$, 'collect_metrics() run by a superuser runs the collector as its owner');
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_owned'), NULL, 'the owner''s collector succeeds');
UPDATE thrillmon.metric_collectors SET query = 'SELECT count(*) FROM pg_authid' WHERE name = 'tap_owned';
SELECT is((SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'tap_owned'), 'tap_collector_admin'::name,
	'a superuser''s UPDATE keeps owner_role');
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_owned'), 'permission denied for table pg_authid',
	'the query runs with the owner''s privileges, not the caller''s superuser ones');

-- What a collector may not do at run time (the probe at registration fetches no row, so these pass it).
DELETE FROM thrillmon.metric_collectors;
CREATE TABLE public.tap_sink (a integer);
CREATE FUNCTION pg_temp.tap_write() RETURNS integer LANGUAGE plpgsql VOLATILE AS $f$
BEGIN INSERT INTO public.tap_sink VALUES (1); RETURN 1; END $f$;
CREATE FUNCTION pg_temp.tap_escape() RETURNS integer LANGUAGE plpgsql VOLATILE AS $f$
BEGIN PERFORM set_config('transaction_read_only', 'off', true); INSERT INTO public.tap_sink VALUES (2); RETURN 1; END $f$;
SELECT thrillmon.register_collector('tap_setrole', $$SELECT length(set_config('role', 'thrillmon_reader', false))$$);
SELECT thrillmon.register_collector('tap_setrole_local', $$SELECT length(set_config('role', 'thrillmon_reader', true))$$);
SELECT thrillmon.register_collector('tap_write', 'SELECT pg_temp.tap_write()');
SELECT thrillmon.register_collector('tap_escape', 'SELECT pg_temp.tap_escape()');
SELECT thrillmon.register_collector('tap_nextval', $$SELECT nextval('thrillmon.job_runs_run_id_seq')$$);
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT matches((SELECT last_error FROM thrillmon.metric_collectors WHERE name = c), '^cannot set parameter "role" within ',
	c || ': SET ROLE refused (security-restricted)')
FROM unnest(ARRAY['tap_setrole', 'tap_setrole_local']) c;
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_write'), 'cannot execute INSERT in a read-only transaction',
	'a volatile function that writes fails: the collector runs read-only');
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_escape'),
	'cannot set transaction read-write mode inside a read-only transaction', 'read-only cannot be switched off');
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_nextval'), 'cannot execute nextval() in a read-only transaction',
	'nextval() refused');
SELECT is((SELECT count(*)::int FROM public.tap_sink), 0, 'nothing was written');
SELECT is(current_user::text, session_user::text, 'the session''s user is unchanged');

-- A collector whose query a superuser made a DELETE is still refused when it runs.
UPDATE thrillmon.metric_collectors SET query = 'DELETE FROM public.tap_sink RETURNING a' WHERE name = 'tap_write';
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_write'),
	'thrillmon: a collector query must be a SELECT; data-modifying and other statements are refused',
	'the statement check is repeated at run time');

-- Direct writes to metric_collectors by a non-superuser admin.
DELETE FROM thrillmon.metric_collectors;
SET LOCAL ROLE tap_collector_admin;
SELECT lives_ok($$INSERT INTO thrillmon.metric_collectors (name, query, owner_role) VALUES ('tap_direct', 'SELECT 1', 'thrillmon_reader')$$,
	'admin: direct INSERT');
RESET ROLE;
SELECT is((SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'tap_direct'), 'tap_collector_admin'::name,
	'... owner_role forced to the inserting admin');
UPDATE thrillmon.metric_collectors SET owner_role = session_user WHERE name = 'tap_direct';
SELECT is((SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'tap_direct'), session_user::name,
	'a superuser may set another owner (what pg_restore needs)');
SET LOCAL ROLE tap_collector_admin;
SELECT lives_ok($$UPDATE thrillmon.metric_collectors SET collect_interval = '2 minutes' WHERE name = 'tap_direct'$$, 'admin: direct UPDATE');
RESET ROLE;
SELECT is((SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'tap_direct'), 'tap_collector_admin'::name,
	'... an UPDATE by the admin takes ownership');
SET LOCAL ROLE tap_collector_admin;
SELECT throws_ok($$INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('tap_bad', 'DELETE FROM thrillmon.metric_collectors')$$,
	'22023', 'thrillmon: a collector query must be a SELECT; data-modifying and other statements are refused',
	'admin: direct INSERT of a bad query refused');
SELECT throws_ok($$INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('tap_bad', 'SELECT count(*) FROM pg_authid')$$,
	'42501', 'permission denied for table pg_authid', 'admin: direct INSERT of a query it cannot run refused');
SELECT throws_ok($$UPDATE thrillmon.metric_collectors SET query = $q$SELECT 'x'::text$q$ WHERE name = 'tap_direct'$$,
	'42804', 'thrillmon: a collector query must return one numeric column, or two columns (metric_name text, value numeric); it returns (text)',
	'admin: direct UPDATE to a bad query refused');
SELECT throws_ok($$UPDATE thrillmon.metric_collectors SET owner_role = 'thrillmon_reader', query = 'SELECT 1; SELECT 2' WHERE name = 'tap_direct'$$,
	'22023', 'thrillmon: a collector query must be exactly one SELECT statement, got 2 statements',
	'admin: direct UPDATE to two statements refused');
RESET ROLE;
SELECT results_eq($$SELECT name, query, owner_role FROM thrillmon.metric_collectors$$,
	$$VALUES ('tap_direct'::text, 'SELECT 1'::text, 'tap_collector_admin'::name)$$, 'the refused writes changed nothing');

-- Session settings: a collector must not reach the state of the session that runs it (a DBA's, or
-- the worker's): a plain set_config(..., false) inside a collector must be undone when it returns,
-- or a non-superuser admin's collector could plant a search_path in a superuser's session.
DELETE FROM thrillmon.metric_collectors;
SET LOCAL ROLE tap_collector_admin;
SELECT thrillmon.register_collector('tap_leak',
	$$SELECT length(set_config('search_path', 'tap_evil, pg_catalog', false)) + length(set_config('work_mem', '77kB', false))$$);
RESET ROLE;
CREATE TEMP TABLE settings_before AS SELECT current_setting('search_path') AS sp, current_setting('work_mem') AS wm;
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
CREATE TEMP TABLE settings_after AS SELECT pg_catalog.current_setting('search_path') AS sp, pg_catalog.current_setting('work_mem') AS wm;
-- Put them back so the rest of this file (pgTAP lives in the default search_path) still works.
SELECT pg_catalog.set_config('search_path', sp, true) IS NOT NULL AS sp_back, pg_catalog.set_config('work_mem', wm, true) IS NOT NULL AS wm_back
FROM pg_temp.settings_before \gset
SELECT is((SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'tap_leak'), NULL, 'the settings collector ran');
SELECT is((SELECT sp FROM settings_after), (SELECT sp FROM settings_before), 'a collector cannot change the caller''s search_path');
SELECT is((SELECT wm FROM settings_after), (SELECT wm FROM settings_before), 'a collector cannot change the caller''s work_mem');

SELECT * FROM finish();
ROLLBACK;
