-- maintain_partitions(): daily partitions by UTC day, idempotence, backfill from the default
-- partition, time zones and DST, argument checks, job history, clean DROP EXTENSION.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(64);

-- Start from no daily partition and no metric row, whatever the database holds.
\ir fixtures/clean_slate.sql

-- Helpers: the partition name of a UTC day offset from today, the current daily partitions, the
-- partition a row sits in.
CREATE FUNCTION pg_temp.pname(day_offset integer) RETURNS text LANGUAGE sql STABLE AS
$$SELECT 'metric_time_series_p' || to_char((now() AT TIME ZONE 'UTC')::date + day_offset, 'YYYYMMDD')$$;
CREATE FUNCTION pg_temp.pnames(lo integer, hi integer) RETURNS text[] LANGUAGE sql STABLE AS
$$SELECT array_agg(pg_temp.pname(d) ORDER BY d) FROM generate_series(lo, hi) d$$;
CREATE FUNCTION pg_temp.parts() RETURNS SETOF text LANGUAGE sql STABLE AS
$$SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass AND c.relname <> 'metric_time_series_default'$$;
CREATE FUNCTION pg_temp.part_of(name text) RETURNS SETOF text LANGUAGE sql STABLE AS
$$SELECT c.relname::text FROM thrillmon.metric_time_series m JOIN pg_class c ON c.oid = m.tableoid
  WHERE m.metric_name = name$$;

-- Creation and idempotence ---------------------------------------------------------------------

CREATE TEMP TABLE results (step text PRIMARY KEY, r jsonb);

INSERT INTO results SELECT 'p0', thrillmon.maintain_partitions(0);
SELECT is((SELECT r FROM results WHERE step = 'p0'),
	jsonb_build_object('created', to_jsonb(pg_temp.pnames(-1, 0)), 'rows_moved', 0, 'days_waiting', 0, 'rows_ahead', 0,
		'rows_expired', 0),
	'premake 0: creates yesterday and today (UTC), reports them, moves nothing');
SELECT set_eq('SELECT * FROM pg_temp.parts()', pg_temp.pnames(-1, 0), 'exactly yesterday and today exist');

INSERT INTO results SELECT 'p3', thrillmon.maintain_partitions(3);
SELECT is((SELECT r->'created' FROM results WHERE step = 'p3'), to_jsonb(pg_temp.pnames(1, 3)),
	'premake 3: creates today+1 .. today+3 only');
SELECT set_eq('SELECT * FROM pg_temp.parts()', pg_temp.pnames(-1, 3), 'exactly yesterday .. today+3 exist');

INSERT INTO results SELECT 'p3again', thrillmon.maintain_partitions(3);
SELECT is((SELECT r FROM results WHERE step = 'p3again'),
	'{"created": [], "rows_moved": 0, "days_waiting": 0, "rows_ahead": 0, "rows_expired": 0}'::jsonb,
	'calling again creates nothing');
SELECT set_eq('SELECT * FROM pg_temp.parts()', pg_temp.pnames(-1, 3), 'partitions unchanged by the second call');

INSERT INTO results SELECT 'p1', thrillmon.maintain_partitions(1);
SELECT is((SELECT r->'created' FROM results WHERE step = 'p1'), '[]'::jsonb, 'a smaller premake drops and creates nothing');
SELECT set_eq('SELECT * FROM pg_temp.parts()', pg_temp.pnames(-1, 3), 'partitions unchanged by a smaller premake');

INSERT INTO results SELECT 'pdefault', thrillmon.maintain_partitions();
SELECT is((SELECT r->'created' FROM results WHERE step = 'pdefault'),
	to_jsonb(coalesce(pg_temp.pnames(4, current_setting('thrillmon.partition_premake_days')::int), '{}')),
	'no argument: premakes thrillmon.partition_premake_days days');
SELECT set_eq('SELECT * FROM pg_temp.parts()',
	pg_temp.pnames(-1, greatest(3, current_setting('thrillmon.partition_premake_days')::int)),
	'partitions after the default call');

-- Bounds are whole UTC days: first and last microsecond of today land in today's partition.
SELECT lives_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('today_first', 1, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
	('today_last', 1, (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day' - interval '1 microsecond') AT TIME ZONE 'UTC'),
	('tomorrow_first', 1, (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC')$$,
	'insert at day boundaries');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('today_first') UNION ALL SELECT * FROM pg_temp.part_of('today_last')$$,
	ARRAY[pg_temp.pname(0), pg_temp.pname(0)], 'first and last microsecond of the UTC day in that day''s partition');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('tomorrow_first')$$, ARRAY[pg_temp.pname(1)],
	'midnight UTC belongs to the next day');

-- Daily partitions are not extension members (retention must be able to DROP them).
SELECT is_empty($$
	SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND c.relname ~ '^metric_time_series_p'$$,
	'daily partitions are not extension members');

-- Job history: one 'maintenance' row per call, rows_affected = partitions created, details = result.
SELECT results_eq($$SELECT target, status, rows_affected, details FROM thrillmon.job_runs
	WHERE job = 'maintenance' ORDER BY run_id$$,
	$$SELECT 'partitions'::text, 'succeeded'::text, jsonb_array_length(r->'created')::bigint, r
	  FROM results ORDER BY CASE step WHEN 'p0' THEN 1 WHEN 'p3' THEN 2 WHEN 'p3again' THEN 3 WHEN 'p1' THEN 4 ELSE 5 END$$,
	'one job_runs row per call, with what it did');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'maintenance' AND finished_at IS NOT NULL
	AND finished_at >= started_at), 5, 'each maintenance run has started_at <= finished_at');

-- Argument checks ------------------------------------------------------------------------------------

SELECT throws_ok('SELECT thrillmon.maintain_partitions(-1)', '22023',
	'thrillmon: premake_days must be between 0 and 365, got -1', 'premake_days -1 refused');
SELECT throws_ok('SELECT thrillmon.maintain_partitions(400)', '22023',
	'thrillmon: premake_days must be between 0 and 365, got 400', 'premake_days 400 refused');
SELECT throws_ok('SELECT thrillmon.maintain_partitions(366)', '22023', NULL, 'premake_days 366 refused');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'maintenance'), 5, 'refused calls leave no job_runs row');
SELECT set_eq('SELECT * FROM pg_temp.parts()',
	pg_temp.pnames(-1, greatest(3, current_setting('thrillmon.partition_premake_days')::int)),
	'refused calls create no partition');

-- Backfill: rows waiting in the default partition -------------------------------------------------------
-- (Partitions are made for days within the metrics policy's retention only: keep a century.)
UPDATE thrillmon.retention_policies SET retention_days = 36500 WHERE target = 'metrics';
DELETE FROM thrillmon.metric_time_series;
CREATE TEMP TABLE backfill AS
SELECT * FROM (VALUES
	('d40', 6), ('d40', 12), ('d40', 18)) v(name, h)
CROSS JOIN LATERAL (SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '40 days' + make_interval(hours => h))
	AT TIME ZONE 'UTC' AS ts) t;
INSERT INTO backfill VALUES
	('d40_last', 0, (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '39 days' - interval '1 microsecond') AT TIME ZONE 'UTC'),
	('d39_first', 0, (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '39 days') AT TIME ZONE 'UTC'),
	('y1960', 0, '1960-06-15 10:00+00'), ('y1960', 0, '1960-06-15 23:59:59.999999+00'), ('y1960', 0, '1960-06-15 00:00+00'),
	('y1969', 0, '1969-12-31 23:30+00'),
	('y20000', 0, '20000-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") SELECT name, h, ts FROM backfill;
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 10, 'backfilled rows wait in the default partition');

INSERT INTO results SELECT 'backfill', thrillmon.maintain_partitions(3);
SELECT is((SELECT r->'rows_moved' FROM results WHERE step = 'backfill'), '9'::jsonb, 'rows_moved counts the rows moved out of default');
SELECT set_eq($$SELECT jsonb_array_elements_text(r->'created') FROM results WHERE step = 'backfill'$$,
	ARRAY[pg_temp.pname(-40), pg_temp.pname(-39), 'metric_time_series_p19600615', 'metric_time_series_p19691231'],
	'created exactly the partitions the waiting rows need');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), 10, 'row count conserved');
SELECT bag_eq($$SELECT metric_name, metric_value, "timestamp" FROM thrillmon.metric_time_series$$,
	$$SELECT name, h::float8, ts FROM backfill$$, 'every row conserved exactly');
SELECT results_eq($$SELECT metric_name, "timestamp" FROM ONLY thrillmon.metric_time_series_default$$,
	$$VALUES ('y20000'::text, '20000-01-01 00:00+00'::timestamptz)$$,
	'only the year-20000 row stays in the default partition');
SELECT set_eq($$SELECT DISTINCT * FROM pg_temp.part_of('d40')$$, ARRAY[pg_temp.pname(-40)], '40-days-ago rows in their partition');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series m JOIN pg_class c ON c.oid = m.tableoid
	WHERE c.relname = pg_temp.pname(-40)), 4, 'the 40-days-ago partition holds its 4 rows');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('d39_first')$$, ARRAY[pg_temp.pname(-39)], 'midnight row moved to the next day');
SELECT set_eq($$SELECT DISTINCT * FROM pg_temp.part_of('y1960')$$, ARRAY['metric_time_series_p19600615'], '1960 rows in p19600615');
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_p19600615), 3, 'p19600615 holds the 3 rows of that day');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('y1969')$$, ARRAY['metric_time_series_p19691231'],
	'a pre-epoch time late in the day goes to its own UTC day');

-- Backfilled partitions are ordinary partitions: bounds, checks, index, no leftover constraint.
SELECT is(pg_get_expr(c.relpartbound, c.oid), $$FOR VALUES FROM ('1960-06-15 00:00:00+00') TO ('1960-06-16 00:00:00+00')$$,
	'p19600615 bounds are that UTC day')
FROM pg_class c WHERE c.oid = 'thrillmon.metric_time_series_p19600615'::regclass;
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series_p19600615 (metric_name, metric_value, "timestamp")
	VALUES ('x', 'NaN', '1960-06-15 12:00+00')$$, '23514', NULL, 'a backfilled partition keeps the CHECK constraints');
SELECT throws_ok($$INSERT INTO thrillmon.metric_time_series_p19600615 (metric_name, metric_value, "timestamp")
	VALUES ('x', 1, '1960-06-16 00:00+00')$$, '23514', NULL, 'a backfilled partition refuses rows outside its day');
SELECT is_empty($$SELECT conname FROM pg_constraint WHERE conname = 'thrillmon_bounds'
	AND connamespace = 'thrillmon'::regnamespace$$, 'no temporary bounds constraint is left behind');
SELECT is((SELECT array_agg(pg_get_indexdef(x.indexrelid) ORDER BY 1) FROM pg_index x
	WHERE x.indrelid = 'thrillmon.metric_time_series_p19600615'::regclass),
	ARRAY['CREATE INDEX metric_time_series_p19600615_name_time_idx ON thrillmon.metric_time_series_p19600615 USING btree (metric_name, "timestamp" DESC)',
		'CREATE INDEX metric_time_series_p19600615_time_brin_idx ON thrillmon.metric_time_series_p19600615 USING brin ("timestamp") WITH (pages_per_range=''8'')'],
	'a backfilled partition has the (metric_name, "timestamp" DESC) index and a BRIN on "timestamp"');
SELECT is_empty($$
	SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass
	  AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid
		AND pg_get_indexdef(x.indexrelid) LIKE '% USING btree (metric_name, "timestamp" DESC)')$$,
	'every partition, premade or backfilled, has the (metric_name, "timestamp" DESC) index');

INSERT INTO results SELECT 'backfill_again', thrillmon.maintain_partitions(3);
SELECT is((SELECT r FROM results WHERE step = 'backfill_again'),
	'{"created": [], "rows_moved": 0, "days_waiting": 0, "rows_ahead": 1, "rows_expired": 0}'::jsonb,
	'calling again: nothing created or moved, the year-20000 row stays put (one row ahead)');
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 1, 'default partition still holds 1 row');

-- Time zones: rows land in the partition of their UTC day ------------------------------------------------

DELETE FROM thrillmon.metric_time_series;
SET LOCAL TimeZone = 'America/New_York';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('ny_evening', 1, '2026-03-07 21:00'),          -- 2026-03-08 02:00 UTC
	('ny_before_dst', 1, '2026-03-08 01:30'),       -- EST: 06:30 UTC
	('ny_after_dst', 1, '2026-03-08 03:30'),        -- EDT: 07:30 UTC
	('ny_fall_edt', 1, '2026-11-01 01:30-04'),      -- 05:30 UTC
	('ny_fall_est', 1, '2026-11-01 01:30-05'),      -- 06:30 UTC
	('ny_fall_eve', 1, '2026-10-31 20:30'),         -- EDT: 2026-11-01 00:30 UTC
	('ny_late', 1, '2026-06-30 23:59:59');          -- 2026-07-01 03:59:59 UTC
SET LOCAL TimeZone = 'Asia/Kolkata';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('kolkata_early', 1, '2026-05-10 03:00'),       -- 2026-05-09 21:30 UTC
	('kolkata_noon', 1, '2026-05-10 12:00');        -- 2026-05-10 06:30 UTC
SET LOCAL TimeZone = 'Pacific/Chatham';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('chatham_winter', 1, '2026-07-01 12:00'),      -- +12:45: 2026-06-30 23:15 UTC
	('chatham_summer', 1, '2026-01-01 13:50');      -- +13:45: 2026-01-01 00:05 UTC
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('offset_plus1', 1, '2026-02-01 00:30+01'),     -- 2026-01-31 23:30 UTC
	('offset_minus1130', 1, '2026-02-01 12:45-11:30'); -- 2026-02-02 00:15 UTC
INSERT INTO results SELECT 'tz', thrillmon.maintain_partitions(3);
SET LOCAL TimeZone = 'Asia/Kolkata';
SELECT bag_eq($$
	SELECT m.metric_name, c.relname::text COLLATE "default" FROM thrillmon.metric_time_series m
	JOIN pg_class c ON c.oid = m.tableoid$$,
	$$VALUES ('chatham_summer'::text, 'metric_time_series_p20260101'::text),
	         ('chatham_winter', 'metric_time_series_p20260630'),
	         ('kolkata_early', 'metric_time_series_p20260509'),
	         ('kolkata_noon', 'metric_time_series_p20260510'),
	         ('ny_after_dst', 'metric_time_series_p20260308'),
	         ('ny_before_dst', 'metric_time_series_p20260308'),
	         ('ny_evening', 'metric_time_series_p20260308'),
	         ('ny_fall_edt', 'metric_time_series_p20261101'),
	         ('ny_fall_eve', 'metric_time_series_p20261101'),
	         ('ny_fall_est', 'metric_time_series_p20261101'),
	         ('ny_late', 'metric_time_series_p20260701'),
	         ('offset_minus1130', 'metric_time_series_p20260202'),
	         ('offset_plus1', 'metric_time_series_p20260131')$$,
	'each row is in the partition of its UTC day, whatever the session time zone');
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 0, 'default partition empty after the move');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), 13, 'all 13 time-zone rows conserved');
SELECT is((SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'ny_fall_est'),
	'2026-11-01 06:30+00'::timestamptz, 'instant preserved across the move (-05 offset)');
SELECT is((SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'ny_fall_edt'),
	'2026-11-01 05:30+00'::timestamptz, 'instant preserved across the move (-04 offset)');

-- Partitions created while the session time zone is not UTC are still UTC days.
DELETE FROM thrillmon.metric_time_series;
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT * FROM pg_temp.parts() p WHERE p = ANY (pg_temp.pnames(-1, 3)) LOOP
		EXECUTE format('DROP TABLE thrillmon.%I', r.p);
	END LOOP;
END
$$;
SET LOCAL TimeZone = 'Pacific/Chatham';
-- A row for today waits in the default partition: its day is both premade and backfilled.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES ('waiting_today', 1);
INSERT INTO results SELECT 'chatham', thrillmon.maintain_partitions(3);
SELECT is((SELECT r FROM results WHERE step = 'chatham'),
	jsonb_build_object('created', to_jsonb(pg_temp.pnames(-1, 3)), 'rows_moved', 1, 'days_waiting', 0, 'rows_ahead', 0,
		'rows_expired', 0),
	'under Pacific/Chatham: the names are still yesterday .. today+3 in UTC; the waiting row is moved');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('waiting_today')$$, ARRAY[pg_temp.pname(0)], 'waiting row now in today''s partition');
SET LOCAL TimeZone = 'UTC';
SELECT is(pg_get_expr(c.relpartbound, c.oid),
	format($$FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')$$,
		(now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + 1),
	'today''s partition made under Pacific/Chatham spans the UTC day')
FROM pg_class c WHERE c.relname = pg_temp.pname(0) AND c.relnamespace = 'thrillmon'::regnamespace;

SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 0, 'default partition empty');

-- record_metric goes to the daily partition too.
SELECT lives_ok($$SELECT thrillmon.record_metric('via_api', 1)$$, 'record_metric after partitions exist');
SELECT set_eq($$SELECT * FROM pg_temp.part_of('via_api')$$, ARRAY[pg_temp.pname(0)], 'record_metric row in today''s partition');

-- Job history for every successful call.
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'maintenance' AND target = 'partitions'
	AND status = 'succeeded'), 9, 'nine successful maintenance calls, nine job_runs rows');
SELECT is((SELECT details FROM thrillmon.job_runs WHERE job = 'maintenance' ORDER BY run_id DESC LIMIT 1),
	(SELECT r FROM results WHERE step = 'chatham'), 'the last job_runs row holds the last result');

-- A writer does not decide how many partitions exist ----------------------------------------------
-- Rows for 2,000 days past premake_days and 2,000 days before the retention cut-off: no partition
-- for any of them (0.6.0 made all 4,000, holding the lock that blocks every insert meanwhile).
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';
DELETE FROM thrillmon.metric_time_series;
-- Earlier steps made partitions for some old days; without them every old row goes to the default.
SELECT format('DROP TABLE thrillmon.%I', p) FROM pg_temp.parts() p WHERE p < pg_temp.pname(-1) \gexec
SELECT count(*) AS partitions_before FROM pg_temp.parts() \gset
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'w', 1, now() + make_interval(days => 9 + g) FROM generate_series(1, 2000) g
UNION ALL SELECT 'w', 1, now() - make_interval(days => 32 + g) FROM generate_series(1, 2000) g;
INSERT INTO results SELECT 'writer', thrillmon.maintain_partitions(7);
SELECT is((SELECT r - 'created' FROM results WHERE step = 'writer'),
	jsonb_build_object('rows_moved', 0, 'days_waiting', 0, 'rows_ahead', 2000, 'rows_expired', 2000),
	'2,000 rows dated past premake_days wait (rows_ahead), 2,000 older than the cut-off are the cleanup''s (rows_expired)');
SELECT is((SELECT count(*)::int FROM pg_temp.parts()), :partitions_before + (SELECT jsonb_array_length(r->'created') FROM results WHERE step = 'writer'),
	'... and they got no partition');
SELECT ok((SELECT jsonb_array_length(r->'created') <= 9 FROM results WHERE step = 'writer'), '... (only premade days, if any, were made)');
SELECT ok(thrillmon.health_check()->'reasons' ? format('2000 points dated %s or later (past thrillmon.partition_premake_days) wait in the default partition',
		(now() AT TIME ZONE 'UTC')::date + 1 + coalesce(current_setting('thrillmon.partition_premake_days', true)::int, 7)),
	'health_check() says how many points wait past the partitions, from which day');
SELECT is(thrillmon.cleanup_old_metrics(30), 2000::bigint, 'the cleanup deletes the 2,000 old rows from the default partition');

-- A backfill within reach is made in runs of at most 32 partitions (a transaction each).
UPDATE thrillmon.retention_policies SET retention_days = 365 WHERE target = 'metrics';
DELETE FROM thrillmon.metric_time_series;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'b', 1, now() - make_interval(days => 1 + g) FROM generate_series(1, 100) g;
CREATE TEMP TABLE runs (n int, r jsonb);
INSERT INTO runs SELECT 1, thrillmon.maintain_partitions(7);
INSERT INTO runs SELECT 2, thrillmon.maintain_partitions(7);
INSERT INTO runs SELECT 3, thrillmon.maintain_partitions(7);
INSERT INTO runs SELECT 4, thrillmon.maintain_partitions(7);
SELECT is(ARRAY(SELECT jsonb_array_length(r->'created') || '/' || (r->>'days_waiting') FROM runs ORDER BY n),
	ARRAY['32/68', '32/36', '32/4', '4/0'], 'a 100-day backfill: 32 partitions a run, the rest waiting for the next');
SELECT is((SELECT count(*)::int FROM ONLY thrillmon.metric_time_series_default), 0, '... until every row is in its day''s partition');
UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics';

-- DROP EXTENSION removes everything, daily partitions included (rolled back at the end).
SELECT lives_ok('DROP EXTENSION thrillmon', 'DROP EXTENSION succeeds with daily partitions present');
SELECT hasnt_schema('thrillmon', 'schema thrillmon is gone');
SELECT is_empty($$SELECT relname FROM pg_class WHERE relname ~ '^metric_time_series'$$, 'no metric_time_series relation left');

SELECT * FROM finish();
ROLLBACK;
