-- cleanup_old_metrics(): exact rows removed at the cut-off now() - N x 24 h, whole partitions
-- dropped, the straddling and default partitions trimmed, argument checks, job history.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(37);

-- Start from no daily partition and no metric row, whatever the database holds.
\ir fixtures/clean_slate.sql

CREATE FUNCTION pg_temp.pname(t timestamptz) RETURNS text LANGUAGE sql STABLE AS
$$SELECT 'metric_time_series_p' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD')$$;
CREATE FUNCTION pg_temp.cutoff(days integer) RETURNS timestamptz LANGUAGE sql STABLE AS
$$SELECT now() - days * interval '24 hours'$$;
CREATE FUNCTION pg_temp.n() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.metric_time_series$$;

-- Fixture: three rows at each point, some older than the 30-day cut-off, some not.
CREATE TEMP TABLE fixture (name text, ts timestamptz, old boolean);
INSERT INTO fixture
SELECT name || '_' || i, now() - age, old
FROM (VALUES
	('d29', interval '29 days', false),
	('d30_plus_1min', interval '30 days' - interval '1 minute', false),
	('at_cutoff', interval '30 days', false),
	('d30_minus_1us', interval '30 days' + interval '1 microsecond', true),
	('d30_minus_1min', interval '30 days' + interval '1 minute', true),
	('d31', interval '31 days', true),
	('d45', interval '45 days', true),
	('d45_minus_1h', interval '45 days' + interval '1 hour', true),
	('d45_plus_1h', interval '45 days' - interval '1 hour', true),
	('now', interval '0', false)) v(name, age, old),
	generate_series(1, 3) i;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") SELECT name, 1, ts FROM fixture;
SELECT is((thrillmon.maintain_partitions(1)->>'rows_moved')::int, 30, 'fixture moved into daily partitions');

-- Rows that arrive for days without a partition wait in the default partition.
CREATE TEMP TABLE fixture_default (name text, ts timestamptz, old boolean);
INSERT INTO fixture_default VALUES
	('default_d60', now() - interval '60 days', true),
	('default_d60b', now() - interval '60 days' - interval '5 hours', true),
	('default_d20', now() - interval '20 days', false),
	('default_y20000', '20000-01-01 00:00+00', false);
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") SELECT name, 2, ts FROM fixture_default;
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 4, 'four rows in the default partition');
INSERT INTO fixture SELECT * FROM fixture_default;

-- Which partitions should go: those whose UTC day ends at or before the cut-off.
CREATE TEMP TABLE parts_before AS
SELECT c.relname::text AS relname,
	(to_date(substr(c.relname, 21), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC') AS lo
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass AND c.relname <> 'metric_time_series_default';
SELECT ok((SELECT count(*) FROM parts_before WHERE lo + interval '24 hours' <= pg_temp.cutoff(30)) >= 2,
	'fixture: at least two partitions lie wholly before the cut-off');
SELECT ok(EXISTS (SELECT 1 FROM parts_before WHERE relname = pg_temp.pname(pg_temp.cutoff(30))),
	'fixture: a partition straddles the cut-off');

-- Refused arguments remove nothing and record nothing --------------------------------------------------

SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(0)', '22023', 'thrillmon: retention_days must be at least 1, got 0',
	'retention_days 0 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(-1)', '22023', 'thrillmon: retention_days must be at least 1, got -1',
	'retention_days -1 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(NULL)', '22004', 'thrillmon: retention_days must not be NULL',
	'retention_days NULL refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(36501)', '22023', NULL, 'retention_days 36501 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_metrics(-2147483648)', '22023', NULL, 'retention_days INT_MIN refused');
SELECT is(pg_temp.n(), 34, 'refused calls removed nothing');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass),
	(SELECT count(*)::int + 1 FROM parts_before), 'refused calls dropped no partition');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'retention'), 0, 'refused calls record no job run');

-- The cleanup ---------------------------------------------------------------------------------------------

CREATE TEMP TABLE removed AS SELECT thrillmon.cleanup_old_metrics(30) AS n;
SELECT is((SELECT n FROM removed), 20::bigint, 'returns exactly the 20 rows older than the cut-off');
SELECT is((SELECT n FROM removed), (SELECT count(*) FROM fixture WHERE ts < pg_temp.cutoff(30)),
	'returned count = rows with "timestamp" < now() - 30 x 24 h');
SELECT bag_eq($$SELECT metric_name, "timestamp" FROM thrillmon.metric_time_series$$,
	$$SELECT name, ts FROM fixture WHERE NOT old$$, 'exactly the newer rows survive, each one of them');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" < now() - interval '720 hours'$$,
	'no row older than the cut-off is left');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name LIKE 'at_cutoff%'), 3,
	'rows exactly at the cut-off are kept');

-- Partitions wholly older than the cut-off are really dropped, the straddling one trimmed.
SELECT is_empty($$SELECT relname FROM parts_before WHERE lo + interval '24 hours' <= pg_temp.cutoff(30)
	AND to_regclass('thrillmon.' || quote_ident(relname)) IS NOT NULL$$,
	'every partition wholly older than the cut-off no longer exists');
SELECT ok(to_regclass('thrillmon.' || pg_temp.pname(now() - interval '31 days')) IS NULL, 'the 31-days-ago partition is dropped');
SELECT ok(to_regclass('thrillmon.' || pg_temp.pname(now() - interval '45 days')) IS NULL, 'the 45-days-ago partition is dropped');
SELECT is_empty($$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'thrillmon'::regnamespace
	AND c.relname IN (SELECT relname FROM parts_before WHERE lo + interval '24 hours' <= pg_temp.cutoff(30))$$,
	'dropped partitions are gone from pg_class');
SELECT set_eq($$SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass$$,
	$$SELECT relname FROM parts_before WHERE lo + interval '24 hours' > pg_temp.cutoff(30)
	  UNION ALL SELECT 'metric_time_series_default'$$,
	'the straddling and newer partitions, and the default one, still exist');
SELECT bag_eq(format('SELECT metric_name, "timestamp" FROM ONLY thrillmon.%I', pg_temp.pname(pg_temp.cutoff(30))),
	format($$SELECT name, ts FROM fixture WHERE ts >= %L AND ts < %L$$, pg_temp.cutoff(30),
		date_trunc('day', pg_temp.cutoff(30) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '24 hours'),
	'the straddling partition holds only its rows at or after the cut-off');
SELECT bag_eq($$SELECT metric_name, "timestamp" FROM ONLY thrillmon.metric_time_series_default$$,
	$$VALUES ('default_d20', now() - interval '20 days'), ('default_y20000', '20000-01-01 00:00+00'::timestamptz)$$,
	'old rows in the default partition are deleted, newer ones kept');

-- Job history.
SELECT results_eq($$SELECT job, target, status, rows_affected, error IS NULL FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('retention'::text, 'metrics'::text, 'succeeded'::text, 20::bigint, true)$$,
	'one job_runs row: retention / metrics / succeeded / rows_affected = returned count');
SELECT is((SELECT (details->>'removed')::bigint FROM thrillmon.job_runs WHERE job = 'retention'), 20::bigint,
	'details.removed = returned count');
SELECT is((SELECT (details->>'rows_in_dropped_partitions')::bigint + (details->>'rows_deleted')::bigint
	FROM thrillmon.job_runs WHERE job = 'retention'), 20::bigint, 'rows in dropped partitions + rows deleted = returned count');
SELECT set_eq($$SELECT jsonb_array_elements_text(details->'partitions_dropped') FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$SELECT relname FROM parts_before WHERE lo + interval '24 hours' <= pg_temp.cutoff(30)$$,
	'details.partitions_dropped names the dropped partitions');
SELECT is((SELECT (details->>'cutoff')::timestamptz FROM thrillmon.job_runs WHERE job = 'retention'), pg_temp.cutoff(30),
	'details.cutoff = now() - 30 x 24 h');

-- Idempotent.
SELECT is(thrillmon.cleanup_old_metrics(30), 0::bigint, 'a second call removes nothing');
SELECT is(pg_temp.n(), 14, 'all 14 newer rows still there');
SELECT results_eq($$SELECT status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention' ORDER BY run_id$$,
	$$VALUES ('succeeded'::text, 20::bigint), ('succeeded', 0)$$, 'the second call is recorded too, with 0 rows');

-- The default is 30 days: one row just past it goes, one just inside stays.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('default_arg_old', 3, now() - interval '30 days' - interval '1 second'),
	('default_arg_new', 3, now() - interval '30 days' + interval '1 second');
SELECT is(thrillmon.cleanup_old_metrics(), 1::bigint, 'no argument: 30 days, removes the one older row');
SELECT is((SELECT array_agg(metric_name) FROM thrillmon.metric_time_series WHERE metric_value = 3), ARRAY['default_arg_new'],
	'the row inside 30 days stays');

-- Under another session time zone the cut-off is the same instant (24-hour days, not calendar days).
SET LOCAL TimeZone = 'America/New_York';
SELECT is(thrillmon.cleanup_old_metrics(29), 7::bigint, 'cleanup_old_metrics(29) removes the 7 rows older than 29 x 24 h');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name LIKE 'd29%'), 3,
	'rows at exactly now() - 29 x 24 h are kept');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" < now() - interval '696 hours'$$,
	'nothing older than now() - 29 x 24 h is left');

SELECT * FROM finish();
ROLLBACK;
