-- SQL collectors: what register_collector() accepts and stores, the exact error for each bad
-- input, and the outcome collect_metrics() records for each collector.
-- (CONTEXT lines name internal helpers; they are not part of the contract.)
\set SHOW_CONTEXT never

-- Accepted: one numeric column, or (metric_name text, value numeric).
SELECT thrillmon.register_collector('answer', 'SELECT 42');
SELECT thrillmon.register_collector('pairs', $$SELECT 'queue_' || g, g * 1.5 FROM generate_series(1, 2) g$$, 'workflow', '5 minutes');
SELECT thrillmon.register_collector('named', $$SELECT 'v'::varchar, 3::bigint$$, 'system', '1 second');
SELECT thrillmon.register_collector('limits', 'SELECT 1::smallint', 'security', '1 day');
SELECT name, query, metric_category, collect_interval, enabled, statement_timeout,
	owner_role = current_user AS owned_by_caller, last_run_at IS NULL AS never_run
FROM thrillmon.metric_collectors ORDER BY name;

-- Re-registering a name replaces it.
SELECT thrillmon.register_collector('named', 'SELECT 4.5::real', 'monitoring', '2 minutes');
SELECT name, query, metric_category, collect_interval FROM thrillmon.metric_collectors WHERE name = 'named';

-- Bad names, categories and intervals.
SELECT thrillmon.register_collector('', 'SELECT 1');
SELECT thrillmon.register_collector('   ', 'SELECT 1');
SELECT thrillmon.register_collector(repeat('x', 129), 'SELECT 1');
SELECT thrillmon.register_collector(repeat('é', 129), 'SELECT 1');
SELECT thrillmon.register_collector('c', 'SELECT 1', 'bogus');
SELECT thrillmon.register_collector('c', 'SELECT 1', 'custom', '999 milliseconds');
SELECT thrillmon.register_collector('c', 'SELECT 1', 'custom', '0');
SELECT thrillmon.register_collector('c', 'SELECT 1', 'custom', '1 day 1 second');

-- Bad queries.
SELECT thrillmon.register_collector('c', NULL);
SELECT thrillmon.register_collector('c', '');
SELECT thrillmon.register_collector('c', 'SELECT 1; SELECT 2');
SELECT thrillmon.register_collector('c', $$INSERT INTO thrillmon.counter_snapshots VALUES ('x', 1, now()) RETURNING value$$);
SELECT thrillmon.register_collector('c', 'UPDATE thrillmon.counter_snapshots SET value = 0 RETURNING value');
SELECT thrillmon.register_collector('c', 'DELETE FROM thrillmon.counter_snapshots RETURNING value');
SELECT thrillmon.register_collector('c', 'CREATE TABLE t (a int)');
SELECT thrillmon.register_collector('c', 'SET ROLE thrillmon_reader');
SELECT thrillmon.register_collector('c', 'WITH d AS (DELETE FROM thrillmon.counter_snapshots RETURNING value) SELECT count(*) FROM d');
SELECT thrillmon.register_collector('c', 'SELECT 1 AS a INTO t');
SELECT thrillmon.register_collector('c', 'SELECT 1 FROM thrillmon.counter_snapshots FOR UPDATE');
SELECT thrillmon.register_collector('c', 'SELECT 1 FROM thrillmon.counter_snapshots FOR SHARE');
SELECT thrillmon.register_collector('c', $$SELECT 'x'::text$$);
SELECT thrillmon.register_collector('c', $$SELECT 'x'::text, 1, 2$$);
SELECT thrillmon.register_collector('c', $$SELECT 1.5, 'x'::text$$);
-- Parser errors are Postgres's own (terse: the cursor points into an internal query).
\set VERBOSITY terse
SELECT thrillmon.register_collector('c', 'SELEC 1');
SELECT thrillmon.register_collector('c', 'SELECT count(*) FROM no_such_table');
\set VERBOSITY default

-- The query is checked with the caller's privileges.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_thrillmon_collector;
RESET client_min_messages;
CREATE ROLE regress_thrillmon_collector NOLOGIN;
GRANT thrillmon_admin TO regress_thrillmon_collector;
SET ROLE regress_thrillmon_collector;
SELECT thrillmon.register_collector('c', 'SELECT count(*) FROM pg_authid');
RESET ROLE;
DROP ROLE regress_thrillmon_collector;

SELECT count(*) AS refused_ones_stored FROM thrillmon.metric_collectors WHERE name NOT IN ('answer', 'pairs', 'named', 'limits');

-- Running: each collector's outcome (in a transaction rolled back, leaving no metrics or job runs
-- behind for the files that follow).
BEGIN;
SELECT thrillmon.register_collector('div0', 'SELECT 1/(count(*)-count(*)) FROM pg_class');
SELECT thrillmon.register_collector('too_many', 'SELECT g FROM generate_series(1, 1001) g');
SELECT thrillmon.register_collector('slow', 'SELECT 1 FROM pg_sleep(2)');
UPDATE thrillmon.metric_collectors SET statement_timeout = '200 ms' WHERE name = 'slow';
SELECT thrillmon.register_collector('readonly', $$SELECT nextval('thrillmon.job_runs_run_id_seq')$$);
SELECT thrillmon.register_collector('setrole', $$SELECT length(set_config('role', 'thrillmon_reader', true))$$);
SELECT r->'collectors_ok' AS ok, r->'collectors_failed' AS failed, r->'collector_points' AS points
FROM thrillmon.collect_metrics() AS r;
SELECT name, last_error, last_run_at IS NOT NULL AS ran, last_success_at IS NOT NULL AS succeeded
FROM thrillmon.metric_collectors ORDER BY name;
SELECT metric_name, metric_category, metric_value, metadata
FROM thrillmon.metric_time_series WHERE metadata ? 'collector' ORDER BY metric_name;

SELECT thrillmon.unregister_collector('div0') AS existed, thrillmon.unregister_collector('div0') AS existed_again;
ROLLBACK;
DELETE FROM thrillmon.metric_collectors;

-- NULL name, category and interval: "must not be NULL" (22004), as in record_metric.
SELECT thrillmon.register_collector(NULL, 'SELECT 1');
SELECT thrillmon.register_collector('c', 'SELECT 1', NULL);
SELECT thrillmon.register_collector('c', 'SELECT 1', 'custom', NULL);
-- A one-column collector's metric is named after it: no control characters.
SELECT thrillmon.register_collector(E'tab\there', 'SELECT 1');
-- One statement with a trailing semicolon is fine.
SELECT thrillmon.register_collector('semicolon', 'SELECT 1;');
SELECT thrillmon.unregister_collector('semicolon') AS semicolon_was_registered;
DELETE FROM thrillmon.metric_collectors;
