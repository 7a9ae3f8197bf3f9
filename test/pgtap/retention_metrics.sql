-- cleanup_old_metrics(): retention by whole UTC days at the cut-off now() - N x 24 h. Partitions
-- whose day ended by the cut-off are dropped, the one holding the cut-off is kept whole (its older
-- rows go the day after), the default partition is trimmed; rows removed counted exactly, from the
-- statistics when they hold the count; argument checks, job history; maintenance ANALYZEs days
-- that are over.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(44);

-- Start from no daily partition and no metric row, whatever the database holds.
\ir fixtures/clean_slate.sql

CREATE FUNCTION pg_temp.pname(t timestamptz) RETURNS text LANGUAGE sql STABLE AS
$$SELECT 'metric_time_series_p' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD')$$;
CREATE FUNCTION pg_temp.cutoff(days integer) RETURNS timestamptz LANGUAGE sql STABLE AS
$$SELECT now() - days * interval '24 hours'$$;
-- Start and end of the UTC day holding an instant: the bounds of its daily partition.
CREATE FUNCTION pg_temp.day_start(t timestamptz) RETURNS timestamptz LANGUAGE sql STABLE AS
$$SELECT date_trunc('day', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'$$;
CREATE FUNCTION pg_temp.day_end(t timestamptz) RETURNS timestamptz LANGUAGE sql STABLE AS
$$SELECT pg_temp.day_start(t) + interval '24 hours'$$;
CREATE FUNCTION pg_temp.n() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.metric_time_series$$;
CREATE FUNCTION pg_temp.retention_run(i integer) RETURNS jsonb LANGUAGE sql AS
$$SELECT details FROM thrillmon.job_runs WHERE job = 'retention' ORDER BY run_id OFFSET i - 1 LIMIT 1$$;

-- Fixture: three rows at each point. fate: 'expired' (its whole UTC day ended by the 30-day
-- cut-off: dropped), 'straddling' (older than the cut-off, but in the partition holding it: kept
-- until that day has expired too), 'kept' (at or after the cut-off). The points are placed
-- relative to the cut-off's UTC day, so the fates do not depend on the time of day the test runs.
CREATE TEMP TABLE fixture (name text, ts timestamptz, fate text);
INSERT INTO fixture
SELECT name || '_' || i, ts, fate
FROM (VALUES
	('d29', now() - interval '29 days', 'kept'),
	('d30_plus_1min', pg_temp.cutoff(30) + interval '1 minute', 'kept'),
	('at_cutoff', pg_temp.cutoff(30), 'kept'),
	('d30_minus_1us', pg_temp.cutoff(30) - interval '1 microsecond', 'straddling'),
	('cutoff_day_start', pg_temp.day_start(pg_temp.cutoff(30)), 'straddling'),
	('day_before_end', pg_temp.day_start(pg_temp.cutoff(30)) - interval '1 microsecond', 'expired'),
	('d31', now() - interval '31 days', 'expired'),
	('d45', now() - interval '45 days', 'expired'),
	('d45_minus_1h', now() - interval '45 days' - interval '1 hour', 'expired'),
	('d45_plus_1h', now() - interval '45 days' + interval '1 hour', 'expired'),
	('now', now(), 'kept')) v(name, ts, fate),
	generate_series(1, 3) i;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") SELECT name, 1, ts FROM fixture;
-- Partitions are made only for days the metrics policy keeps: as if it had kept 100 days while
-- the fixture's rows arrived (the cleanups below are told their retention_days).
SELECT retention_days AS metrics_days FROM thrillmon.retention_policies WHERE target = 'metrics' \gset
UPDATE thrillmon.retention_policies SET retention_days = 100 WHERE target = 'metrics';
SELECT is((thrillmon.maintain_partitions(1)->>'rows_moved')::int, 33, 'fixture moved into daily partitions');
UPDATE thrillmon.retention_policies SET retention_days = :metrics_days WHERE target = 'metrics';

-- Rows that arrive for days without a partition wait in the default partition, where retention
-- deletes them by the exact cut-off (maintenance normally moves them out first).
CREATE TEMP TABLE fixture_default (name text, ts timestamptz, fate text);
INSERT INTO fixture_default VALUES
	('default_d60', now() - interval '60 days', 'expired'),
	('default_d60b', now() - interval '60 days' - interval '5 hours', 'expired'),
	('default_d20', now() - interval '20 days', 'kept'),
	('default_y20000', '20000-01-01 00:00+00', 'kept');
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
SELECT is(pg_temp.n(), 37, 'refused calls removed nothing');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass),
	(SELECT count(*)::int + 1 FROM parts_before), 'refused calls dropped no partition');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'retention'), 0, 'refused calls record no job run');

-- The cleanup (no argument: the default, 30 days) ------------------------------------------------------------

CREATE TEMP TABLE removed AS SELECT thrillmon.cleanup_old_metrics() AS n;
SELECT is((pg_temp.retention_run(1)->>'cutoff')::timestamptz, pg_temp.cutoff(30), 'no argument: the cut-off is now() - 30 x 24 h');
SELECT is((SELECT n FROM removed), 17::bigint, 'returns exactly the 17 rows it removed');
SELECT is((SELECT n FROM removed), (SELECT count(*) FROM fixture WHERE fate = 'expired'),
	'returned count = rows of the expired days + older rows of the default partition');
SELECT bag_eq($$SELECT metric_name, "timestamp" FROM thrillmon.metric_time_series$$,
	$$SELECT name, ts FROM fixture WHERE fate <> 'expired'$$, 'exactly the rows of days not yet expired survive, each one of them');
SELECT bag_eq($$SELECT metric_name, "timestamp" FROM thrillmon.metric_time_series WHERE "timestamp" < now() - interval '720 hours'$$,
	$$SELECT name, ts FROM fixture WHERE fate = 'straddling'$$,
	'the only rows older than the cut-off left are those of the day holding it');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" < pg_temp.day_start(pg_temp.cutoff(30))$$,
	'nothing older than the start of the cut-off''s UTC day is left');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name LIKE 'at_cutoff%'), 3,
	'rows exactly at the cut-off are kept');

-- Partitions wholly older than the cut-off are really dropped; the straddling one is untouched.
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
	format($$SELECT name, ts FROM fixture WHERE ts >= %L AND ts < %L$$, pg_temp.day_start(pg_temp.cutoff(30)),
		pg_temp.day_end(pg_temp.cutoff(30))),
	'the straddling partition still holds all its rows, those older than the cut-off included');
SELECT bag_eq($$SELECT metric_name, "timestamp" FROM ONLY thrillmon.metric_time_series_default$$,
	$$VALUES ('default_d20', now() - interval '20 days'), ('default_y20000', '20000-01-01 00:00+00'::timestamptz)$$,
	'old rows in the default partition are deleted, newer ones kept');

-- Job history.
SELECT results_eq($$SELECT job, target, status, rows_affected, error IS NULL FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('retention'::text, 'metrics'::text, 'succeeded'::text, 17::bigint, true)$$,
	'one job_runs row: retention / metrics / succeeded / rows_affected = returned count');
SELECT is((pg_temp.retention_run(1)->>'removed')::bigint, 17::bigint, 'details.removed = returned count');
SELECT is((pg_temp.retention_run(1)->>'rows_in_dropped_partitions')::bigint, 15::bigint,
	'rows_in_dropped_partitions: the 15 rows of the expired days');
SELECT is((pg_temp.retention_run(1)->>'rows_deleted')::bigint, 2::bigint, 'rows_deleted: the 2 old rows of the default partition');
SELECT set_eq($$SELECT jsonb_array_elements_text(pg_temp.retention_run(1)->'partitions_dropped')$$,
	$$SELECT relname FROM parts_before WHERE lo + interval '24 hours' <= pg_temp.cutoff(30)$$,
	'details.partitions_dropped names the dropped partitions');

-- Idempotent.
SELECT is(thrillmon.cleanup_old_metrics(30), 0::bigint, 'a second call removes nothing');
SELECT is(pg_temp.n(), 20, 'all 20 rows of days not yet expired still there');
SELECT results_eq($$SELECT status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention' ORDER BY run_id$$,
	$$VALUES ('succeeded'::text, 17::bigint), ('succeeded', 0)$$, 'the second call is recorded too, with 0 rows');

-- A day later, the straddling day has expired too. A cut-off one day later (29 days now) stands
-- for it; under another session time zone it is the same instant (24-hour days, and UTC days).
SET LOCAL TimeZone = 'America/New_York';
CREATE TEMP TABLE straddling_rows AS
SELECT metric_name, "timestamp" FROM thrillmon.metric_time_series WHERE tableoid = ('thrillmon.' || pg_temp.pname(pg_temp.cutoff(30)))::regclass;
SELECT is(thrillmon.cleanup_old_metrics(29), (SELECT count(*) FROM straddling_rows),
	'cleanup_old_metrics(29) removes the partition that held the 30-day cut-off, all its rows');
SELECT ok(to_regclass('thrillmon.' || pg_temp.pname(pg_temp.cutoff(30))) IS NULL, 'that partition is dropped');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" < now() - interval '720 hours'$$,
	'no row older than the 30-day cut-off is left');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name LIKE 'd29%'), 3,
	'rows at exactly now() - 29 x 24 h are kept');
SELECT is_empty($$SELECT 1 FROM thrillmon.metric_time_series WHERE "timestamp" < pg_temp.day_start(pg_temp.cutoff(29))$$,
	'nothing older than the start of the 29-day cut-off''s UTC day is left');
SET LOCAL TimeZone = 'UTC';

-- Rows removed, counted from statistics ----------------------------------------------------------------------
-- The statistics are used when exact: the partition's last ANALYZE read every page and nothing
-- changed since. To see which way a partition was counted without reading it, these partitions
-- are empty and their pg_class.reltuples is then set by hand to a count they do not hold.

CREATE FUNCTION pg_temp.old_partition(days_ago integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE name text := pg_temp.pname(now() - days_ago * interval '1 day');
BEGIN
	EXECUTE format('CREATE TABLE thrillmon.%I PARTITION OF thrillmon.metric_time_series FOR VALUES FROM (%L) TO (%L)', name,
		pg_temp.day_start(now() - days_ago * interval '1 day'), pg_temp.day_end(now() - days_ago * interval '1 day'));
	EXECUTE format('ANALYZE thrillmon.%I', name);
	UPDATE pg_class SET reltuples = 1000 WHERE oid = ('thrillmon.' || name)::regclass;
	RETURN name;
END
$$;
SELECT pg_temp.old_partition(50) AS p50, pg_temp.old_partition(51) AS p51 \gset
SELECT is(reltuples, 1000::real, 'fixture: an analysed empty partition 50 days back, reltuples set to 1000')
FROM pg_class WHERE relname = :'p50';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('after_analyze', 1, now() - interval '51 days'), ('after_analyze', 2, now() - interval '51 days');
SELECT is(thrillmon.cleanup_old_metrics(30), 1002::bigint,
	'the unchanged partition counted from its statistics (1000), the one written after its ANALYZE read (2)');
SELECT results_eq($$SELECT jsonb_array_length(pg_temp.retention_run(4)->'partitions_dropped'),
	(pg_temp.retention_run(4)->>'rows_in_dropped_partitions')::bigint$$,
	$$VALUES (2, 1002::bigint)$$, 'both partitions dropped');

-- maintain_partitions() ANALYZEs daily partitions whose day is over -------------------------------------------

DELETE FROM thrillmon.metric_time_series;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'm', g, now() - g * interval '1 hour' FROM generate_series(0, 3 * 24) g;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL;
SELECT thrillmon.maintain_partitions(1) IS NOT NULL;
SELECT pg_stat_clear_snapshot();
CREATE TEMP TABLE analysed AS
SELECT c.relname::text, c.reltuples, pg_stat_get_last_analyze_time(c.oid) IS NOT NULL AS analysed,
	(SELECT count(*) FROM thrillmon.metric_time_series m WHERE m.tableoid = c.oid) AS n
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass AND c.relname <> 'metric_time_series_default';
SELECT set_eq($$SELECT relname FROM analysed WHERE analysed AND relname >= pg_temp.pname(now() - interval '3 days')$$,
	ARRAY[pg_temp.pname(now() - interval '1 day'), pg_temp.pname(now() - interval '2 days'), pg_temp.pname(now() - interval '3 days')],
	'the partitions of the days that are over are analysed, today''s and later ones not');
SELECT is_empty($$SELECT relname FROM analysed WHERE analysed AND reltuples <> n$$,
	'their reltuples is their exact row count');

SELECT * FROM finish();
ROLLBACK;
