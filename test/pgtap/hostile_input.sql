-- Hostile input: every public function of schema thrillmon called with edge values (NULLs in every
-- position, empty and 1 MB strings, unicode, quotes and semicolons, NaN and infinities, INT_MAX and
-- negative numbers, absurd intervals, timestamps at the ends of the range). Each call either fails
-- with a clear error (SQLSTATE class 22, 23, 42 or 55; 'thrillmon:' messages where thrillmon raises
-- it) and writes nothing, or succeeds and does the right thing.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SET LOCAL IntervalStyle = 'postgres';
SELECT plan(405);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.counter_snapshots;
-- observe() takes slots only in a database something flushes: this one collects (rolled back).
SELECT thrillmon._job_record('collect', 'all', now(), 'succeeded', 0, '{}', NULL) IS NULL AS recorded \gset
DELETE FROM thrillmon.pg_cron_jobs;

-- What a refused call could leave behind. Not table rows: refused() runs each call in an EXCEPTION
-- block, whose rollback undoes every row the call wrote, so comparing rows could never fail.
-- What a rollback does not give back is a sequence's position: a call that wrote a job run, an
-- incident or a detection pass (even one rolled back) before it failed moves one of these, which
-- shows it did work before checking its input.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT format('job_runs_run_id_seq=%s incident_number_seq=%s detector_pass_seq=%s',
		(SELECT last_value || '/' || is_called FROM thrillmon.job_runs_run_id_seq),
		(SELECT last_value || '/' || is_called FROM thrillmon.incident_number_seq),
		(SELECT last_value || '/' || is_called FROM thrillmon.detector_pass_seq))
$$;

-- Runs one call that must be refused; three assertions: the SQLSTATE, the message (its start, or,
-- when want_msg is NULL because Postgres rather than thrillmon refuses it, the SQLSTATE class), and
-- that it was refused before it did any work (no sequence moved; see state()).
CREATE FUNCTION pg_temp.refused(call text, want_state text, want_msg text, what text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	before text := pg_temp.state();
	st text := 'none (the call succeeded)';
	msg text := '';
BEGIN
	BEGIN
		EXECUTE call;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	END;
	RETURN NEXT is(st, want_state, what || ': SQLSTATE');
	IF want_msg IS NULL THEN
		RETURN NEXT ok(left(st, 2) IN ('22', '23', '42', '55'), what || ': error class 22, 23, 42 or 55');
	ELSE
		RETURN NEXT ok(starts_with(msg, want_msg), what || ': message starts with ' || left(want_msg, 90));
		IF NOT starts_with(msg, want_msg) THEN
			RETURN NEXT diag('message: ' || left(msg, 300));
		END IF;
	END IF;
	RETURN NEXT is(pg_temp.state(), before, what || ': refused before any work (no sequence moved)');
END
$$;

-- 1 MB strings.
SELECT repeat('x', 1048576) AS mb \gset

------------------------------------------------------------------------------------------------
-- record_metric(): refused
------------------------------------------------------------------------------------------------

SELECT pg_temp.refused(c, s, m, w) FROM (VALUES
	('SELECT thrillmon.record_metric(NULL, NULL, NULL, NULL, NULL)', '22004', 'thrillmon: metric_name must not be NULL', 'record_metric: all NULL'),
	('SELECT thrillmon.record_metric(NULL, 1)', '22004', 'thrillmon: metric_name must not be NULL', 'record_metric: NULL name'),
	($$SELECT thrillmon.record_metric('m', NULL)$$, '22004', 'thrillmon: metric_value must not be NULL', 'record_metric: NULL value'),
	($$SELECT thrillmon.record_metric('m', 1, NULL)$$, '22004', 'thrillmon: metric_category must not be NULL', 'record_metric: NULL category'),
	($$SELECT thrillmon.record_metric('', 1)$$, '22023', 'thrillmon: metric_name must not be empty', 'record_metric: empty name'),
	($$SELECT thrillmon.record_metric('   ', 1)$$, '22023', 'thrillmon: metric_name must not be empty', 'record_metric: blank name'),
	(format('SELECT thrillmon.record_metric(%L, 1)', :'mb'), '22001',
		'thrillmon: metric_name is too long (1048576 characters, at most 128)', 'record_metric: 1 MB name'),
	(format('SELECT thrillmon.record_metric(%L, 1)', repeat('📈', 129)), '22001',
		'thrillmon: metric_name is too long (129 characters, at most 128)', 'record_metric: 129 emoji (characters, not bytes)'),
	(format('SELECT thrillmon.record_metric(%L, 1)', repeat(E'e\u0301', 65)), '22001',
		'thrillmon: metric_name is too long (130 characters, at most 128)', 'record_metric: 65 e + combining accent = 130 characters'),
	($$SELECT thrillmon.record_metric(E'a\nb', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'record_metric: newline in name'),
	($$SELECT thrillmon.record_metric(E'x\u007f', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'record_metric: DEL in name'),
	($$SELECT thrillmon.record_metric(E'next\u0085line', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'record_metric: a C1 control (NEL)'),
	($$SELECT thrillmon.record_metric(E'\u202Eevil\u202C override', 1)$$, '22021',
		'thrillmon: metric_name must not contain invisible or bidirectional formatting characters (U+202E)', 'record_metric: a right-to-left override'),
	($$SELECT thrillmon.record_metric(E'iso\u2066late', 1)$$, '22021',
		'thrillmon: metric_name must not contain invisible or bidirectional formatting characters (U+2066)', 'record_metric: a bidi isolate'),
	($$SELECT thrillmon.record_metric(E'zero\u200Bwidth', 1)$$, '22021',
		'thrillmon: metric_name must not contain invisible or bidirectional formatting characters (U+200B)', 'record_metric: a zero-width space'),
	($$SELECT thrillmon.record_metric(E'\uFEFFbom', 1)$$, '22021',
		'thrillmon: metric_name must not contain invisible or bidirectional formatting characters (U+FEFF)', 'record_metric: a byte-order mark'),
	($$SELECT thrillmon.record_metric('m', 'NaN')$$, '22023', 'thrillmon: metric_value must be a finite number, not NaN', 'record_metric: NaN'),
	($$SELECT thrillmon.record_metric('m', 'Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not Infinity', 'record_metric: Infinity'),
	($$SELECT thrillmon.record_metric('m', '-Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not -Infinity', 'record_metric: -Infinity'),
	($$SELECT thrillmon.record_metric('m', 1, '')$$, '22023', 'thrillmon: unknown metric_category ""', 'record_metric: empty category'),
	($$SELECT thrillmon.record_metric('m', 1, 'Custom')$$, '22023', 'thrillmon: unknown metric_category "Custom"', 'record_metric: category is case-sensitive'),
	($$SELECT thrillmon.record_metric('m', 1, $c$custom'; DROP TABLE thrillmon.metric_time_series; --$c$)$$, '22023',
		'thrillmon: unknown metric_category "custom''; DROP TABLE', 'record_metric: injection in category'),
	(format('SELECT thrillmon.record_metric(%L, 1, %L)', 'm', :'mb'), '22023', 'thrillmon: unknown metric_category "', 'record_metric: 1 MB category'),
	($$SELECT thrillmon.record_metric('m', 1, 'custom', '[1, 2]')$$, '22023', 'thrillmon: metadata must be a JSON object, not an array', 'record_metric: metadata array'),
	($$SELECT thrillmon.record_metric('m', 1, 'custom', '"it''s"')$$, '22023', 'thrillmon: metadata must be a JSON object, not a scalar', 'record_metric: metadata string'),
	($$SELECT thrillmon.record_metric('m', 1, 'custom', 'null')$$, '22023', 'thrillmon: metadata must be a JSON object', 'record_metric: metadata JSON null'),
	(format('SELECT thrillmon.record_metric(%L, 1, %L, jsonb_build_object(%L, %L))', 'm', 'custom', 'k', :'mb'), '22023',
		'thrillmon: metadata is too large (', 'record_metric: 1 MB metadata'),
	($$SELECT thrillmon.record_metric('m', 1, 'custom', NULL, 'infinity')$$, '22008',
		'thrillmon: ts must be a finite timestamp, not infinity or -infinity', 'record_metric: ts infinity'),
	($$SELECT thrillmon.record_metric('m', 1, 'custom', NULL, '-infinity')$$, '22008',
		'thrillmon: ts must be a finite timestamp, not infinity or -infinity', 'record_metric: ts -infinity'),
	-- Past the ends of timestamptz: the type itself refuses it, before thrillmon is called.
	($$SELECT thrillmon.record_metric('m', 1, 'custom', NULL, '294277-01-02 00:00+00')$$, '22008', NULL, 'record_metric: ts beyond 294276 AD')
) AS t(c, s, m, w);

------------------------------------------------------------------------------------------------
-- record_metric(): accepted, stored verbatim
------------------------------------------------------------------------------------------------

CREATE TEMP TABLE odd_names (name text PRIMARY KEY);
INSERT INTO odd_names VALUES
	($n$it's; DROP TABLE x; --$n$),
	($n$"quoted" \backslash \\ \' $$ $n$),
	('📈🔥 指标 ✓'),
	(E'e\u0301 combining'),                  -- not normalised: stays two code points
	('مقياس الاستجابة'),                      -- right-to-left
	(repeat('📈', 128)),                      -- 128 characters, 512 bytes: at the limit
	(repeat(E'e\u0301', 64)),                -- 128 code points
	(' padded ');
SELECT lives_ok(format('SELECT thrillmon.record_metric(%L, 0)', name), 'record_metric accepts name ' || left(name, 30))
FROM odd_names ORDER BY name;
SELECT is((SELECT count(*)::int FROM odd_names o
	WHERE (SELECT count(*) FROM thrillmon.metric_time_series m
		WHERE convert_to(m.metric_name, 'UTF8') = convert_to(o.name, 'UTF8') AND m.metric_value = 0) = 1),
	(SELECT count(*)::int FROM odd_names), 'every odd name stored verbatim, byte for byte, once');
-- The table's own check is older and more lenient (rows restored from a dump of 0.6.0 must load):
-- a direct INSERT may store what record_metric() refuses.
SELECT lives_ok($$INSERT INTO thrillmon.metric_time_series (metric_name, metric_value) VALUES (E'\u202Eevil\u202C direct', 0)$$,
	'a direct INSERT of a name with a bidi override is not refused by the table''s check');

SELECT lives_ok(format('SELECT thrillmon.record_metric(%L, %s::float8)', 'extreme_' || n, v), 'record_metric accepts value ' || v)
FROM (VALUES (1, '1.7976931348623157e308'), (2, '-1.7976931348623157e308'), (3, '5e-324'), (4, '-0'), (5, '0'),
	(6, '2147483647'), (7, '-2147483648'), (8, '-1'), (9, '9223372036854775807')) AS t(n, v);
SELECT results_eq($$SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name LIKE 'extreme\_%' ORDER BY metric_name$$,
	$$VALUES (1.7976931348623157e308::float8), (-1.7976931348623157e308), (5e-324), (0), (0), (2147483647), (-2147483648), (-1),
		(9223372036854775807::float8)$$, 'extreme finite values stored exactly');

SELECT lives_ok($$SELECT thrillmon.record_metric('ts_null', 1, 'custom', '{}', NULL)$$, 'record_metric: ts NULL means now()');
SELECT is((SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'ts_null'), now(), 'ts NULL stored as now()');
SELECT lives_ok($$SELECT thrillmon.record_metric('meta', 1, 'custom',
	jsonb_build_object($k$it's; DROP TABLE x; --$k$, '📈', E'e\u0301', repeat('y', 60000)))$$, 'record_metric: odd metadata keys, just under 64 kB');
SELECT is((SELECT metadata->>$k$it's; DROP TABLE x; --$k$ FROM thrillmon.metric_time_series WHERE metric_name = 'meta'), '📈',
	'metadata stored verbatim');

-- Far past and far future. record_metric() takes any past, and at most 366 days of future (a
-- point dated further ahead would never get a daily partition); a direct INSERT may still write
-- one, and everything below must cope with it.
SELECT lives_ok(format('SELECT thrillmon.record_metric(%L, 1, %L, NULL, %L)', 'far', 'custom', ts), 'record_metric accepts ts ' || ts)
FROM unnest(ARRAY['4713-01-01 BC', '4714-11-24 00:00:00+00 BC', '0001-01-01 00:00+00', '1970-01-01 00:00+00']) ts;
SELECT throws_ok(format('SELECT thrillmon.record_metric(%L, 1, %L, NULL, %L)', 'far', 'custom', ts), '22008',
	'thrillmon: ts must not be more than 366 days after now()', 'record_metric refuses ts ' || ts)
FROM unnest(ARRAY['9999-12-31 23:59:59+00', '294276-12-31 23:59:59.999999+00']) ts;
SELECT lives_ok($$SELECT thrillmon.record_metric('far_ok', 1, ts => now() + interval '366 days')$$,
	'record_metric accepts ts 366 days ahead');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'far', 1, ts::timestamptz FROM unnest(ARRAY['9999-12-31 23:59:59+00', '294276-12-31', '294276-12-31 23:59:59.999999+00']) ts;
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'far'), 7,
	'all seven far timestamps stored (the three future ones by a direct INSERT)');
SELECT lives_ok('SELECT thrillmon.maintain_partitions()', 'maintain_partitions() after far timestamps does not fail');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'far'), 7, 'maintain_partitions() kept every far point');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series
	WHERE tableoid::regclass::text !~ '^thrillmon\.metric_time_series_(default|p[0-9]{8})$'), 0,
	'every point is in the default partition or a daily one');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series t
	WHERE tableoid::regclass::text ~ '_p[0-9]{8}$'
	  AND to_char(t."timestamp" AT TIME ZONE 'UTC', 'YYYYMMDD') <> right(tableoid::regclass::text, 8)), 0,
	'every point in a daily partition is in the one of its UTC day');
SELECT lives_ok('SELECT thrillmon.maintain_partitions()', 'maintain_partitions() a second time does not fail');
SELECT lives_ok('SELECT * FROM thrillmon.retention_stats', 'retention_stats with far timestamps does not fail');
SELECT lives_ok('SELECT thrillmon.cleanup_old_metrics(36500)', 'cleanup_old_metrics(36500) with far timestamps does not fail');
SELECT is((SELECT array_agg(extract(year FROM "timestamp")::int ORDER BY "timestamp") FROM thrillmon.metric_time_series WHERE metric_name = 'far'),
	ARRAY[1970, 9999, 294276, 294276], 'cleanup_old_metrics(36500) removed exactly the points over 100 years old');

------------------------------------------------------------------------------------------------
-- observe(): refused (it writes nothing to tables; the flush below shows nothing was aggregated)
------------------------------------------------------------------------------------------------

SELECT pg_temp.refused(c, s, m, w) FROM (VALUES
	('SELECT thrillmon.observe(NULL, NULL, NULL)', '22004', 'thrillmon: metric_name must not be NULL', 'observe: all NULL'),
	($$SELECT thrillmon.observe('obs_bad', NULL)$$, '22004', 'thrillmon: metric_value must not be NULL', 'observe: NULL value'),
	($$SELECT thrillmon.observe('obs_bad', 1, NULL)$$, '22004', 'thrillmon: metric_category must not be NULL', 'observe: NULL category'),
	($$SELECT thrillmon.observe('', 1, '')$$, '22023', 'thrillmon: metric_name must not be empty', 'observe: empty name'),
	(format('SELECT thrillmon.observe(%L, 1)', :'mb'), '22001', 'thrillmon: metric_name is too long (1048576 characters', 'observe: 1 MB name'),
	($$SELECT thrillmon.observe(E'tab\there', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'observe: tab in name'),
	($$SELECT thrillmon.observe(E'c1\u009Bname', 1)$$, '22021', 'thrillmon: metric_name must not contain control characters', 'observe: a C1 control (CSI)'),
	($$SELECT thrillmon.observe(E'ltr\u200Emark', 1)$$, '22021',
		'thrillmon: metric_name must not contain invisible or bidirectional formatting characters (U+200E)', 'observe: a left-to-right mark'),
	($$SELECT thrillmon.observe('obs_bad', 'NaN')$$, '22023', 'thrillmon: metric_value must be a finite number, not NaN', 'observe: NaN'),
	($$SELECT thrillmon.observe('obs_bad', 'Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not Infinity', 'observe: Infinity'),
	($$SELECT thrillmon.observe('obs_bad', '-Infinity')$$, '22023', 'thrillmon: metric_value must be a finite number, not -Infinity', 'observe: -Infinity'),
	($$SELECT thrillmon.observe('obs_bad', 1, $c$x'; --$c$)$$, '22023', 'thrillmon: unknown metric_category "x''; --"', 'observe: injection in category'),
	(format('SELECT thrillmon.observe(%L, 1, %L)', 'obs_bad', :'mb'), '22023', 'thrillmon: unknown metric_category "', 'observe: 1 MB category')
) AS t(c, s, m, w);

-- observe() is not transactional and the final ROLLBACK gives this file's flushes back to shared
-- memory, so earlier runs' observations may be waiting: flush them out of the way first. The values
-- below stay far from the float8 limit, except the overflow case at the end.
SELECT lives_ok('SELECT thrillmon.collect_metrics()', 'flush observations left by earlier runs');
DELETE FROM thrillmon.metric_time_series;
DELETE FROM thrillmon.job_runs WHERE job <> 'collect'; -- the collection says observations are flushed here
SELECT lives_ok($$SELECT thrillmon.observe($n$obs it's; DROP TABLE x; --$n$, 2), thrillmon.observe($n$obs it's; DROP TABLE x; --$n$, 4)$$,
	'observe: quoted name accepted');
SELECT lives_ok($$SELECT thrillmon.observe('obs 📈 مقياس', 1e300, 'performance')$$, 'observe: unicode name, huge value');
SELECT lives_ok($$SELECT thrillmon.observe('obs_neg', -1e300), thrillmon.observe('obs_neg', 0)$$,
	'observe: huge negative value');
SELECT lives_ok('SELECT thrillmon.collect_metrics()', 'collect_metrics() flushes the observations');
SELECT results_eq($$SELECT convert_to(metric_name, 'UTF8'), metric_value FROM thrillmon.metric_time_series
	WHERE metadata->>'source' = 'observe' ORDER BY metric_name COLLATE "C"$$,
	$$VALUES (convert_to($n$obs it's; DROP TABLE x; --$n$, 'UTF8'), 3::float8),
		(convert_to('obs 📈 مقياس', 'UTF8'), 1e300::float8),
		(convert_to('obs_neg', 'UTF8'), -1e300::float8 / 2)$$,
	'observed names stored verbatim with their means; refused observations left no trace');

------------------------------------------------------------------------------------------------
-- Retention functions
------------------------------------------------------------------------------------------------

SELECT pg_temp.refused(format('SELECT thrillmon.%s(%s)', f, d), s, format(m, d), f || '(' || d || ')')
FROM unnest(ARRAY['cleanup_old_metrics', 'cleanup_old_anomalies', 'cleanup_old_alerts', 'cleanup_old_incidents']) f
CROSS JOIN (VALUES
	('NULL', '22004', 'thrillmon: retention_days must not be NULL'),
	('0', '22023', 'thrillmon: retention_days must be at least 1, got %s'),
	('-1', '22023', 'thrillmon: retention_days must be at least 1, got %s'),
	('-2147483648', '22023', 'thrillmon: retention_days must be at least 1, got %s'),
	('36501', '22023', 'thrillmon: retention_days must be at most 36500, got %s'),
	('2147483647', '22023', 'thrillmon: retention_days must be at most 36500, got %s')
) AS t(d, s, m)
ORDER BY f, d;

SELECT lives_ok(format('SELECT thrillmon.%s(%s)', f, d), f || '(' || d || ') accepted')
FROM unnest(ARRAY['cleanup_old_metrics', 'cleanup_old_anomalies', 'cleanup_old_alerts', 'cleanup_old_incidents']) f
CROSS JOIN unnest(ARRAY[1, 36500]) d ORDER BY f, d;
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'retention' AND status = 'succeeded'
	AND target IN ('metrics', 'anomalies', 'alerts', 'incidents')), 8, 'each accepted cleanup recorded one succeeded run');

SELECT lives_ok('SELECT thrillmon.run_data_retention_cleanup()', 'run_data_retention_cleanup() with far and odd data');
SELECT is((SELECT status FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'all'), 'succeeded', 'and it succeeded');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = -1 WHERE target = 'metrics'$$, '23514', NULL,
	'a negative retention policy is refused by the table');
SELECT throws_ok($$UPDATE thrillmon.retention_policies SET retention_days = 2147483647 WHERE target = 'metrics'$$, '23514', NULL,
	'an absurd retention policy is refused by the table');

------------------------------------------------------------------------------------------------
-- maintain_partitions()
------------------------------------------------------------------------------------------------

SELECT pg_temp.refused(format('SELECT thrillmon.maintain_partitions(%s)', d), '22023',
	format('thrillmon: premake_days must be between 0 and 365, got %s', d), 'maintain_partitions(' || d || ')')
FROM unnest(ARRAY['-1', '366', '2147483647', '-2147483648']) d;
SELECT lives_ok('SELECT thrillmon.maintain_partitions(NULL)', 'maintain_partitions(NULL) uses the default');
SELECT lives_ok('SELECT thrillmon.maintain_partitions(0)', 'maintain_partitions(0)');
SELECT lives_ok('SELECT thrillmon.maintain_partitions(365)', 'maintain_partitions(365), the maximum');
-- At most 32 partitions a call: calling again while days wait makes the rest (the worker does so itself).
CREATE FUNCTION pg_temp.premake_all() RETURNS int LANGUAGE plpgsql AS $$
DECLARE calls int := 1;
BEGIN
	WHILE (thrillmon.maintain_partitions(365)->>'days_waiting')::int > 0 AND calls < 20 LOOP
		calls := calls + 1;
	END LOOP;
	RETURN calls;
END $$;
SELECT is(pg_temp.premake_all(), 11, 'maintain_partitions(365) again until nothing waits: 11 more calls of at most 32');
SELECT ok((SELECT count(*) FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass) >= 367,
	'365 days ahead plus yesterday and today exist');

------------------------------------------------------------------------------------------------
-- register_collector() / unregister_collector()
------------------------------------------------------------------------------------------------

SELECT pg_temp.refused(c, s, m, w) FROM (VALUES
	('SELECT thrillmon.register_collector(NULL, NULL, NULL, NULL)', '22004', 'thrillmon: collector name must not be NULL', 'register_collector: all NULL'),
	($$SELECT thrillmon.register_collector(NULL, 'SELECT 1')$$, '22004', 'thrillmon: collector name must not be NULL', 'register_collector: NULL name'),
	($$SELECT thrillmon.register_collector('c', NULL)$$, '22004', 'thrillmon: collector query must not be NULL', 'register_collector: NULL query'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1', NULL)$$, '22004', 'thrillmon: metric_category must not be NULL', 'register_collector: NULL category'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1', 'custom', NULL)$$, '22004', 'thrillmon: collect_interval must not be NULL', 'register_collector: NULL interval'),
	($$SELECT thrillmon.register_collector('', 'SELECT 1')$$, '22023', 'thrillmon: collector name must not be empty', 'register_collector: empty name'),
	($$SELECT thrillmon.register_collector(E' \t', 'SELECT 1')$$, '22021', 'thrillmon: collector name must not contain control characters', 'register_collector: tab name'),
	($$SELECT thrillmon.register_collector(E'\u202Ecollector', 'SELECT 1')$$, '22021',
		'thrillmon: collector name must not contain invisible or bidirectional formatting characters (U+202E)', 'register_collector: a right-to-left override'),
	($$SELECT thrillmon.register_collector(E'a\u200Db', 'SELECT 1')$$, '22021',
		'thrillmon: collector name must not contain invisible or bidirectional formatting characters (U+200D)', 'register_collector: a zero-width joiner'),
	(format('SELECT thrillmon.register_collector(%L, %L)', :'mb', 'SELECT 1'), '22001',
		'thrillmon: collector name is too long (1048576 characters, at most 128)', 'register_collector: 1 MB name'),
	(format('SELECT thrillmon.register_collector(%L, %L)', repeat('📈', 129), 'SELECT 1'), '22001',
		'thrillmon: collector name is too long (129 characters', 'register_collector: 129 emoji name'),
	($$SELECT thrillmon.register_collector('c', '')$$, '22023', 'thrillmon: a collector query must be exactly one SELECT statement', 'register_collector: empty query'),
	($$SELECT thrillmon.register_collector('c', ';;')$$, '22023', 'thrillmon: a collector query must be exactly one SELECT statement', 'register_collector: only semicolons'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1; DROP TABLE thrillmon.metric_collectors; --')$$, '22023',
		'thrillmon: a collector query must be exactly one SELECT statement', 'register_collector: piggy-backed DROP'),
	($$SELECT thrillmon.register_collector('c', 'DELETE FROM thrillmon.job_runs RETURNING 1')$$, '22023',
		'thrillmon: a collector query must be a SELECT', 'register_collector: DELETE'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1) AS x; DROP TABLE thrillmon.job_runs; SELECT (1')$$, '42601', NULL,
		'register_collector: breaking out of the wrapping subquery'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1) AS x UNION ALL SELECT (2')$$, '42601', NULL,
		'register_collector: unbalanced parenthesis'),
	(format('SELECT thrillmon.register_collector(%L, %L)', 'c', :'mb'), '42601', NULL, 'register_collector: 1 MB garbage query'),
	($$SELECT thrillmon.register_collector('c', $q$SELECT 'it''s'::text$q$)$$, '42804', 'thrillmon: a collector query must return one numeric column',
		'register_collector: text column'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1', '')$$, '22023', 'thrillmon: unknown metric_category ""', 'register_collector: empty category'),
	($$SELECT thrillmon.register_collector('c', 'SELECT 1', $c$custom'); --$c$)$$, '22023', 'thrillmon: unknown metric_category "custom''); --"',
		'register_collector: injection in category')
) AS t(c, s, m, w);
SELECT pg_temp.refused(format('SELECT thrillmon.register_collector(%L, %L, %L, %L)', 'c', 'SELECT 1', 'custom', i), '22023',
	'thrillmon: collect_interval must be between 1 second and 1 day, got ', 'register_collector: interval ' || i)
FROM unnest(ARRAY['-1 day', '0', '999 milliseconds', '1 day 1 second', '1 mon', '1000 years', '-178000000 years', '178000000 years']) i;

SELECT lives_ok(format('SELECT thrillmon.register_collector(%L, %L, %L, %L)', n, q, 'custom', i), 'register_collector accepts ' || left(n, 30))
FROM (VALUES
	($n$it's; DROP TABLE x; --$n$, 'SELECT 7', '1 second'),
	('coll 📈 مقياس', $q$SELECT length('it''s; DROP TABLE x; --')$q$, '1 day'),
	(repeat('é', 128), 'SELECT 1;', '60 seconds'),
	($n$nan "collector"; --$n$, $q$SELECT 'NaN'::float8$q$, '1 minute'),
	('too_big', 'SELECT 1e400::numeric', '1 minute'),
	('bad_names', $q$SELECT E'bad\tname', 1.0$q$, '1 minute')
) AS t(n, q, i);
SELECT is((SELECT query FROM thrillmon.metric_collectors WHERE convert_to(name, 'UTF8') = convert_to('coll 📈 مقياس', 'UTF8')),
	$q$SELECT length('it''s; DROP TABLE x; --')$q$, 'collector query stored verbatim');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_collectors WHERE convert_to(name, 'UTF8') = convert_to($n$it's; DROP TABLE x; --$n$, 'UTF8')),
	1, 'quoted collector name stored verbatim');

SELECT lives_ok('SELECT thrillmon.collect_metrics()', 'collect_metrics() with hostile collectors does not fail');
SELECT is((SELECT metric_value FROM thrillmon.metric_time_series WHERE convert_to(metric_name, 'UTF8') = convert_to($n$it's; DROP TABLE x; --$n$, 'UTF8')
	AND metadata->>'collector' IS NOT NULL), 7::float8, 'the quoted collector recorded under its verbatim name');
SELECT is((SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'coll 📈 مقياس'), 22::float8, 'the unicode collector recorded');
SELECT ok((SELECT last_error LIKE 'thrillmon: metric_value must be a finite number, not NaN%' FROM thrillmon.metric_collectors
	WHERE name = $n$nan "collector"; --$n$), 'a collector returning NaN fails with thrillmon''s message');
SELECT ok((SELECT last_error IS NOT NULL FROM thrillmon.metric_collectors WHERE name = 'too_big'), 'a collector returning 1e400 fails');
SELECT ok((SELECT last_error LIKE 'thrillmon: metric_name must not contain control characters%' FROM thrillmon.metric_collectors
	WHERE name = 'bad_names'), 'a collector returning a name with a tab fails with thrillmon''s message');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series
	WHERE metadata->>'collector' IN ($n$nan "collector"; --$n$, 'too_big', 'bad_names')), 0, 'failing collectors wrote nothing');
SELECT is((SELECT status FROM thrillmon.job_runs WHERE job = 'collect' ORDER BY run_id DESC LIMIT 1), 'succeeded',
	'the collection run itself succeeded');

SELECT lives_ok('SELECT thrillmon.collect_metrics(NULL)', 'collect_metrics(NULL) is treated as false (all collectors)');
SELECT is((SELECT target FROM thrillmon.job_runs WHERE job = 'collect' ORDER BY run_id DESC LIMIT 1), 'all', 'recorded as target all');

SELECT is(thrillmon.unregister_collector(NULL), false, 'unregister_collector(NULL) is false');
SELECT is(thrillmon.unregister_collector(''), false, 'unregister_collector('''') is false');
SELECT is(thrillmon.unregister_collector(:'mb'), false, 'unregister_collector(1 MB) is false');
SELECT is(thrillmon.unregister_collector($n$it's; DROP TABLE x$n$), false, 'unregister_collector of a prefix is false');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_collectors), 6, 'nothing unregistered so far');
SELECT is(thrillmon.unregister_collector($n$it's; DROP TABLE x; --$n$), true, 'unregister_collector of the quoted name is true');
SELECT is(thrillmon.unregister_collector($n$it's; DROP TABLE x; --$n$), false, 'and false the second time');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_collectors), 5, 'exactly that one removed');

------------------------------------------------------------------------------------------------
-- health_check(), worker_status(), pg_cron
------------------------------------------------------------------------------------------------

SELECT lives_ok('SELECT thrillmon.health_check()', 'health_check() with failing hostile collectors');
SELECT ok(thrillmon.health_check()->>'status' IN ('ok', 'degraded', 'failing'), 'health_check() status is one of three');
SELECT ok(EXISTS (SELECT 1 FROM jsonb_array_elements_text(thrillmon.health_check()->'reasons') r
	WHERE starts_with(r, $n$collector nan "collector"; -- failing: thrillmon: metric_value must be a finite number$n$)),
	'health_check() names the failing collector verbatim');
SELECT lives_ok('SELECT * FROM thrillmon.worker_status()', 'worker_status()');
SELECT ok((SELECT state IS NOT NULL FROM thrillmon.worker_status()), 'worker_status() has a state');

-- This database has no pg_cron (as in pg_cron.sql): a clear error, nothing recorded.
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'), 'precondition: pg_cron is not installed in this database');
SELECT pg_temp.refused('SELECT * FROM thrillmon.schedule_with_pg_cron()', '55000', 'thrillmon: pg_cron is not installed', 'schedule_with_pg_cron() without pg_cron');
SELECT pg_temp.refused('SELECT thrillmon.unschedule_pg_cron()', '55000', 'thrillmon: pg_cron is not installed', 'unschedule_pg_cron() without pg_cron');

------------------------------------------------------------------------------------------------
-- observe(): a sum that overflows float8
------------------------------------------------------------------------------------------------

-- Each value is finite but their sum is not a float8: the flush must still write a finite mean
-- (the sum is kept in extended precision and reported as null when it does not fit). A failing
-- flush would give its statistics back and fail every later collection in this database.
SELECT lives_ok($$SELECT thrillmon.observe('obs_overflow', 1.7976931348623157e308), thrillmon.observe('obs_overflow', 1.7976931348623157e308)$$,
	'observe: two largest finite values');
SELECT lives_ok('SELECT thrillmon.collect_metrics()', 'collect_metrics() survives an observed sum that overflows float8');
SELECT results_eq($$SELECT metric_value, metadata->'sum', (metadata->>'count')::int FROM thrillmon.metric_time_series WHERE metric_name = 'obs_overflow'$$,
	$$VALUES (1.7976931348623157e308::float8, 'null'::jsonb, 2)$$, 'the mean is exact; the sum that does not fit a float8 is null');

SELECT * FROM finish();
ROLLBACK;
