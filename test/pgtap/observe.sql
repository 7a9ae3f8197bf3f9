-- observe(): signature, validation (same rules and messages as record_metric), privileges, and
-- a flush inside this transaction (given back by the final ROLLBACK).
BEGIN;
SET client_min_messages = warning;
SELECT plan(23);

SELECT has_function('thrillmon', 'observe', ARRAY['text', 'double precision', 'text'], 'observe(text, float8, text) exists');
SELECT function_returns('thrillmon', 'observe', ARRAY['text', 'double precision', 'text'], 'void', 'observe returns void');

SELECT throws_ok($$SELECT thrillmon.observe(NULL, 1)$$, '22004', 'thrillmon: metric_name must not be NULL', 'NULL name');
SELECT throws_ok($$SELECT thrillmon.observe('', 1)$$, '22023', 'thrillmon: metric_name must not be empty', 'empty name');
SELECT throws_ok($$SELECT thrillmon.observe(E'a\tb', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'control character');
SELECT throws_ok(format('SELECT thrillmon.observe(%L, 1)', repeat('é', 129)), '22001',
	'thrillmon: metric_name is too long (129 characters, at most 128)', 'name of 129 characters');
SELECT throws_ok($$SELECT thrillmon.observe('m', NULL)$$, '22004', 'thrillmon: metric_value must not be NULL', 'NULL value');
SELECT throws_ok($$SELECT thrillmon.observe('m', 'NaN')$$, '22023', 'thrillmon: metric_value must be a finite number, not NaN', 'NaN');
SELECT throws_ok($$SELECT thrillmon.observe('m', 'Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not Infinity', 'Infinity');
SELECT throws_ok($$SELECT thrillmon.observe('m', '-Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not -Infinity', '-Infinity');
SELECT throws_ok($$SELECT thrillmon.observe('m', 1, 'bogus')$$, '22023', 'thrillmon: unknown metric_category "bogus"', 'unknown category');
SELECT throws_ok($$SELECT thrillmon.observe('m', 1, NULL)$$, '22004', 'thrillmon: metric_category must not be NULL', 'NULL category');

-- Outside the worker's database observe() takes a slot only where something flushes: here,
-- once collect_metrics() has succeeded (a job_runs row, rolled back with the rest).
SELECT throws_ok($$SELECT thrillmon.observe('tap_unflushed', 1)$$, '55000',
	format('thrillmon: cannot observe "tap_unflushed": nothing flushes observations in database "%s"', current_database()),
	'refused in a database nothing flushes (the worker serves another)')
WHERE current_database() <> current_setting('thrillmon.database')
UNION ALL SELECT pass('(the worker serves this database: nothing to refuse)') WHERE current_database() = current_setting('thrillmon.database');
SELECT thrillmon._job_record('collect', 'all', now(), 'succeeded', 0, '{}', NULL) IS NULL AS recorded \gset

-- Observations an earlier run left in shared memory (its flush was rolled back, which gives them
-- back) would be added in: flush them first, inside this transaction, and drop their rows.
SELECT thrillmon._flush_observations(now()) IS NOT NULL AS drained \gset
DELETE FROM thrillmon.metric_time_series WHERE metric_name LIKE 'tap\_observed%';

-- Observations reach the table only through a flush: one row per metric, exact aggregates.
SELECT lives_ok($$SELECT count(thrillmon.observe('tap_observed', g, 'performance')) FROM generate_series(1, 1000) g$$, '1000 observations');
SELECT lives_ok($$SELECT thrillmon.observe('tap_observed_2', 7)$$, 'another metric');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name LIKE 'tap\_observed%'), 0, 'no row before a flush');
SELECT cmp_ok(thrillmon._flush_observations(now()), '>=', 2, 'the flush writes a row per observed metric');
SELECT results_eq($$SELECT metric_value, metric_category, (metadata->>'count')::int, (metadata->>'sum')::float8,
		(metadata->>'min')::float8, (metadata->>'max')::float8
	FROM thrillmon.metric_time_series WHERE metric_name = 'tap_observed'$$,
	$$VALUES (500.5::float8, 'performance'::text, 1000, 500500::float8, 1::float8, 1000::float8)$$,
	'mean, category, count, sum, min and max are exact');
SELECT ok((SELECT abs((metadata->>'p50')::float8 - 500) <= 5 AND abs((metadata->>'p95')::float8 - 950) <= 9.5
		AND abs((metadata->>'p99')::float8 - 990) <= 9.9
	FROM thrillmon.metric_time_series WHERE metric_name = 'tap_observed'), 'p50, p95, p99 within 1%');
SELECT is((SELECT metadata->>'count' FROM thrillmon.metric_time_series WHERE metric_name = 'tap_observed_2'), '1', 'the other metric: one observation');

-- Privileges: writers observe; readers and others do not.
SET LOCAL ROLE thrillmon_writer;
SELECT lives_ok($$SELECT thrillmon.observe('tap_by_writer', 1)$$, 'a writer may observe');
RESET ROLE;
SET LOCAL ROLE thrillmon_reader;
SELECT throws_ok($$SELECT thrillmon.observe('tap_by_reader', 1)$$, '42501', NULL, 'a reader may not observe');
RESET ROLE;
SET LOCAL ROLE thrillmon_writer;
SELECT throws_ok($$SELECT thrillmon._flush_observations(now())$$, '42501', NULL, 'a writer may not flush');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
