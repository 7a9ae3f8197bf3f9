-- collect_metrics(): the built-in metrics (rates only once a previous counter reading exists), their
-- catalogue categories, the job_runs row, and only_due for SQL collectors.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(30);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.counter_snapshots;
-- Observations other files left in shared memory (a flush that rolls back gives them back) would
-- be flushed by the first collection below: flush them now and drop the rows.
SELECT thrillmon._flush_observations(now()) IS NOT NULL AS drained \gset
DELETE FROM thrillmon.metric_time_series;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL AS partitions_made \gset

-- replication_lag_seconds is recorded only while replicas are connected.
CREATE TEMP TABLE replicas AS SELECT EXISTS (SELECT 1 FROM pg_stat_replication) AS present;
CREATE FUNCTION pg_temp.expected(names text[]) RETURNS text[] LANGUAGE sql AS $$
	SELECT CASE WHEN (SELECT present FROM pg_temp.replicas) THEN names || 'replication_lag_seconds'::text ELSE names END
$$;
CREATE FUNCTION pg_temp.v(name text) RETURNS float8 LANGUAGE sql AS $$
	SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = name AND "timestamp" = now() AND metadata IS NULL
$$;

-- Fixture: 3 incidents open or investigating (and 2 ended), 4 unresolved alerts (and 2 resolved).
INSERT INTO thrillmon.incidents (title, severity, status, resolved_at, closed_at) VALUES
	('a', 'high', 'open', NULL, NULL), ('b', 'low', 'open', NULL, NULL), ('c', 'medium', 'investigating', NULL, NULL),
	('d', 'low', 'resolved', now(), NULL), ('e', 'low', 'closed', NULL, now());
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, acknowledged_at, resolved_at) VALUES
	('t1', 'low', 'm', now() - interval '1 hour', NULL, NULL), ('t2', 'high', 'm', now() - interval '1 hour', now(), NULL),
	('t3', 'low', 'm', now() - interval '1 hour', NULL, NULL), ('t4', 'critical', 'm', now() - interval '1 hour', NULL, NULL),
	('t5', 'low', 'm', now() - interval '1 hour', NULL, now()), ('t6', 'low', 'm', now() - interval '1 hour', NULL, now());

-- First collection: no previous counter reading, so no rates --------------------------------------

CREATE TEMP TABLE run1 AS SELECT thrillmon.collect_metrics() AS r;

SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_time_series$$,
	pg_temp.expected(ARRAY['database_connections', 'active_incidents', 'unresolved_alerts', 'longest_transaction_seconds',
		'lock_waits', 'database_size_bytes', 'dead_tuple_ratio']),
	'first collection: the seven metrics that need no previous reading');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), (SELECT (r->>'builtin_points')::int FROM run1),
	'builtin_points counts them, one row each');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" <> now() OR metadata IS NOT NULL$$,
	'stamped now(), no metadata');
SELECT is_empty($$SELECT t.metric_name, t.metric_category, c.metric_category FROM thrillmon.metric_time_series t
	LEFT JOIN thrillmon.metric_catalogue c ON c.metric_name = t.metric_name AND c.source = 'builtin'
	WHERE c.metric_category IS DISTINCT FROM t.metric_category$$, 'each with its catalogue category');
SELECT is(pg_temp.v('active_incidents'), 3::float8, 'active_incidents counts open and investigating incidents');
SELECT is(pg_temp.v('unresolved_alerts'), 4::float8, 'unresolved_alerts counts unresolved alerts (acknowledged or not)');
SELECT ok(pg_temp.v('database_connections') >= 1, 'database_connections counts at least this session');
SELECT ok(pg_temp.v('database_size_bytes') > 0, 'database_size_bytes is a size');
SELECT ok(pg_temp.v('longest_transaction_seconds') >= 0 AND pg_temp.v('lock_waits') >= 0, 'longest_transaction_seconds and lock_waits are not negative');
SELECT ok(pg_temp.v('dead_tuple_ratio') BETWEEN 0 AND 100, 'dead_tuple_ratio is a percentage');
SELECT set_eq($$SELECT name FROM thrillmon.counter_snapshots$$,
	ARRAY['blks_hit', 'blks_read', 'xact_total', 'xact_rollback', 'deadlocks', 'wal_lsn'], 'the counters are remembered for the next collection');

SELECT results_eq($$SELECT job, target, status, rows_affected, error, run_by, finished_at IS NOT NULL FROM thrillmon.job_runs WHERE job = 'collect'$$,
	$$SELECT 'collect'::text, 'all'::text, 'succeeded'::text, (SELECT count(*) FROM thrillmon.metric_time_series), NULL::text, session_user, true$$,
	'one job_runs row: collect, all, succeeded, rows_affected = the points recorded');
SELECT results_eq($$SELECT run_id, details FROM thrillmon.job_runs WHERE job = 'collect'$$,
	$$SELECT (r->>'run_id')::bigint, r - 'run_id' FROM run1$$, '... its run_id is returned and its details are the result');
SELECT is((SELECT (r->>'at')::timestamptz FROM run1), now(), 'the result says when (now())');

-- With an older counter reading: the rates too -----------------------------------------------------

DELETE FROM thrillmon.metric_time_series;
DELETE FROM thrillmon.counter_snapshots;
INSERT INTO thrillmon.counter_snapshots (name, value, taken_at)
SELECT n, 0, now() - interval '1 minute' FROM unnest(ARRAY['blks_hit', 'blks_read', 'xact_total', 'xact_rollback', 'deadlocks', 'wal_lsn']) n;
CREATE TEMP TABLE run2 AS SELECT thrillmon.collect_metrics() AS r;

SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_time_series$$,
	pg_temp.expected(ARRAY['database_connections', 'active_incidents', 'unresolved_alerts', 'longest_transaction_seconds',
		'lock_waits', 'database_size_bytes', 'dead_tuple_ratio',
		'cache_hit_rate', 'transactions_per_second', 'rollback_rate', 'deadlocks', 'wal_bytes_per_second']),
	'with a previous counter reading: the twelve metrics');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), (SELECT (r->>'builtin_points')::int FROM run2), '... one row each');
SELECT is_empty($$SELECT t.metric_name FROM thrillmon.metric_time_series t
	LEFT JOIN thrillmon.metric_catalogue c ON c.metric_name = t.metric_name AND c.source = 'builtin'
	WHERE c.metric_category IS DISTINCT FROM t.metric_category$$, '... each with its catalogue category');
SELECT ok(pg_temp.v('cache_hit_rate') BETWEEN 0 AND 100 AND pg_temp.v('rollback_rate') BETWEEN 0 AND 100,
	'cache_hit_rate and rollback_rate are percentages');
SELECT ok(pg_temp.v('transactions_per_second') > 0 AND pg_temp.v('wal_bytes_per_second') > 0 AND pg_temp.v('deadlocks') >= 0,
	'transactions_per_second and wal_bytes_per_second are positive, deadlocks not negative');
SELECT ok((SELECT bool_and(taken_at > now() AND (value > 0 OR name IN ('deadlocks', 'xact_rollback', 'blks_read'))) AND count(*) = 6
	FROM thrillmon.counter_snapshots), 'the counters hold the new reading');

-- A counter that went backwards (statistics reset) gives no rate that time.
DELETE FROM thrillmon.metric_time_series;
UPDATE thrillmon.counter_snapshots SET value = 1e30, taken_at = now() - interval '1 minute' WHERE name = 'wal_lsn';
UPDATE thrillmon.counter_snapshots SET taken_at = now() - interval '1 minute' WHERE name <> 'wal_lsn';
SELECT thrillmon.collect_metrics() IS NOT NULL AS ran \gset
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name = 'wal_bytes_per_second'$$,
	'a counter lower than its previous reading gives no rate');
SELECT ok((SELECT value < 1e30 FROM thrillmon.counter_snapshots WHERE name = 'wal_lsn'), '... and the new reading replaces it');

-- only_due: SQL collectors whose interval has elapsed ------------------------------------------------

DELETE FROM thrillmon.metric_time_series;
SELECT thrillmon.register_collector('tap_new', 'SELECT 1');
SELECT thrillmon.register_collector('tap_old', 'SELECT 2');
SELECT thrillmon.register_collector('tap_exact', 'SELECT 3');
SELECT thrillmon.register_collector('tap_recent', 'SELECT 4');
SELECT thrillmon.register_collector('tap_recent_long', 'SELECT 5', 'custom', '1 hour');
SELECT thrillmon.register_collector('tap_off', 'SELECT 6');
UPDATE thrillmon.metric_collectors SET last_run_at = now() - interval '2 minutes' WHERE name = 'tap_old';
UPDATE thrillmon.metric_collectors SET last_run_at = now() - interval '60 seconds' WHERE name = 'tap_exact';
UPDATE thrillmon.metric_collectors SET last_run_at = now() - interval '10 seconds' WHERE name = 'tap_recent';
UPDATE thrillmon.metric_collectors SET last_run_at = now() - interval '59 minutes' WHERE name = 'tap_recent_long';
UPDATE thrillmon.metric_collectors SET enabled = false WHERE name = 'tap_off';
CREATE TEMP TABLE run3 AS SELECT thrillmon.collect_metrics(true) AS r;

SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_time_series WHERE metadata ? 'collector'$$,
	ARRAY['tap_new', 'tap_old', 'tap_exact'], 'collect_metrics(true): only collectors never run or whose interval elapsed');
SELECT results_eq($$SELECT (r->>'collectors_ok')::int, (r->>'collectors_failed')::int, (r->>'collector_points')::int FROM run3$$,
	$$VALUES (3, 0, 3)$$, '... counted as such');
SELECT results_eq($$SELECT name, last_run_at FROM thrillmon.metric_collectors WHERE name LIKE 'tap_recent%' ORDER BY name$$,
	$$VALUES ('tap_recent'::text, now() - interval '10 seconds'), ('tap_recent_long', now() - interval '59 minutes')$$,
	'... the others are left as they were');
SELECT ok((SELECT (r->>'builtin_points')::int >= 7 FROM run3), 'the built-in metrics are collected too');
SELECT results_eq($$SELECT target, status, rows_affected FROM thrillmon.job_runs WHERE run_id = (SELECT (r->>'run_id')::bigint FROM run3)$$,
	$$SELECT 'due'::text, 'succeeded'::text, (SELECT count(*) FROM thrillmon.metric_time_series)$$, '... recorded as a collect run with target due');

DELETE FROM thrillmon.metric_time_series;
CREATE TEMP TABLE run4 AS SELECT thrillmon.collect_metrics(true) AS r;
SELECT is((SELECT (r->>'collector_points')::int FROM run4), 0, 'right after, nothing is due');

DELETE FROM thrillmon.metric_time_series;
CREATE TEMP TABLE run5 AS SELECT thrillmon.collect_metrics() AS r;
SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_time_series WHERE metadata ? 'collector'$$,
	ARRAY['tap_new', 'tap_old', 'tap_exact', 'tap_recent', 'tap_recent_long'], 'collect_metrics(): every enabled collector, due or not');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'collect'), 6, 'each call is one collect run');

SELECT * FROM finish();
ROLLBACK;
