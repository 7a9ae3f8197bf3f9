-- record_metric(): what it stores, and every bad input refused with its SQLSTATE and message,
-- leaving the table unchanged.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(85);

-- Start from an empty table whatever the database holds.
DELETE FROM thrillmon.metric_time_series;

CREATE FUNCTION pg_temp.n() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.metric_time_series$$;

-- Happy path -------------------------------------------------------------------------------------

SELECT lives_ok($$SELECT thrillmon.record_metric('cpu', 1.5)$$, 'two arguments are enough');
SELECT results_eq($$SELECT metric_name, metric_category, metric_value, "timestamp", metadata
	FROM thrillmon.metric_time_series WHERE metric_name = 'cpu'$$,
	$$VALUES ('cpu'::text, 'custom'::text, 1.5::float8, now(), NULL::jsonb)$$,
	'defaults: category custom, ts now(), metadata NULL');

SELECT lives_ok($$SELECT thrillmon.record_metric('mem', -2.25, 'system', '{"host": "a", "n": [1, 2]}',
	'2026-01-02 03:04:05.678901+00')$$, 'all five arguments');
SELECT results_eq($$SELECT metric_name, metric_category, metric_value, "timestamp", metadata
	FROM thrillmon.metric_time_series WHERE metric_name = 'mem'$$,
	$$VALUES ('mem'::text, 'system'::text, -2.25::float8, '2026-01-02 03:04:05.678901+00'::timestamptz,
		'{"host": "a", "n": [1, 2]}'::jsonb)$$,
	'explicit arguments stored as given');

SELECT lives_ok($$SELECT thrillmon.record_metric('named', 3, ts => now() - interval '2 hours')$$, 'named argument ts =>');
SELECT lives_ok($$SELECT thrillmon.record_metric(metric_value => 4, metric_name => 'named', metadata => '{}',
	metric_category => 'security')$$, 'all arguments named, out of order');
SELECT results_eq($$SELECT metric_category, metric_value, "timestamp", metadata
	FROM thrillmon.metric_time_series WHERE metric_name = 'named' ORDER BY metric_value$$,
	$$VALUES ('custom'::text, 3::float8, now() - interval '2 hours', NULL::jsonb),
	         ('security', 4, now(), '{}'::jsonb)$$,
	'named arguments stored as given');

SELECT lives_ok(format('SELECT thrillmon.record_metric(%L, 1, %L)', c, c), 'category ' || c || ' accepted')
FROM unnest(ARRAY['performance', 'system', 'security', 'workflow', 'monitoring', 'custom']) AS c;
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series
	WHERE metric_name IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')
	  AND metric_name = metric_category), 6, 'one row per category, category stored');

SELECT lives_ok($$SELECT thrillmon.record_metric(x, 0) FROM unnest(ARRAY[
	$n$it's; DROP TABLE thrillmon.metric_time_series; --$n$, '"quoted" \backslash', 'ünïcødé ✓ 📈 指标', ' padded ']) x$$,
	'names with quotes, semicolons, backslashes, unicode, spaces');
SELECT set_eq($$SELECT metric_name FROM thrillmon.metric_time_series WHERE metric_value = 0$$,
	ARRAY[$n$it's; DROP TABLE thrillmon.metric_time_series; --$n$, '"quoted" \backslash', 'ünïcødé ✓ 📈 指标', ' padded '],
	'such names are stored verbatim');

SELECT lives_ok($$SELECT thrillmon.record_metric(x, 1.7976931348623157e308) FROM (VALUES ('big')) v(x)$$, 'largest finite double accepted');
SELECT lives_ok($$SELECT thrillmon.record_metric('tiny', -4.9e-324)$$, 'smallest subnormal accepted');
SELECT is((SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'big'), 1.7976931348623157e308::float8,
	'largest finite double stored exactly');

-- Length limit counts characters, not bytes.
SELECT lives_ok($$SELECT thrillmon.record_metric(repeat('a', 128), 1)$$, '128 ASCII characters accepted');
SELECT lives_ok($$SELECT thrillmon.record_metric(repeat('é', 128), 1)$$, '128 two-byte characters (256 bytes) accepted');
SELECT lives_ok($$SELECT thrillmon.record_metric(repeat('📈', 128), 1)$$, '128 four-byte characters (512 bytes) accepted');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE char_length(metric_name) = 128), 3,
	'the three 128-character names are stored');

-- Old and future timestamps are accepted (they land in the default partition).
SELECT lives_ok($$SELECT thrillmon.record_metric('old', 1, ts => '1960-02-29 12:00+00')$$, 'a 1960 timestamp accepted');
SELECT is((SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'old'), '1960-02-29 12:00+00'::timestamptz,
	'1960 timestamp stored exactly');

-- Metadata at exactly 64 kB (65536 bytes of jsonb) is accepted.
SELECT is(pg_column_size(jsonb_build_object('k', repeat('x', 65523))) - 4, 65536, 'fixture: this object is 65536 bytes');
SELECT lives_ok($$SELECT thrillmon.record_metric('meta64k', 1, metadata => jsonb_build_object('k', repeat('x', 65523)))$$,
	'metadata of exactly 65536 bytes accepted');
SELECT is((SELECT length(metadata->>'k') FROM thrillmon.metric_time_series WHERE metric_name = 'meta64k'), 65523,
	'64 kB metadata stored whole');

SELECT is(pg_temp.n(), 21, 'rows so far');

-- Refused input: SQLSTATE, message, and nothing written --------------------------------------------

SELECT throws_ok($$SELECT thrillmon.record_metric(NULL, 1)$$, '22004', 'thrillmon: metric_name must not be NULL',
	'NULL name refused');
SELECT is(pg_temp.n(), 21, 'nothing written after NULL name');
SELECT throws_ok($$SELECT thrillmon.record_metric('', 1)$$, '22023', 'thrillmon: metric_name must not be empty',
	'empty name refused');
SELECT is(pg_temp.n(), 21, 'nothing written after empty name');
SELECT throws_ok($$SELECT thrillmon.record_metric('   ', 1)$$, '22023', 'thrillmon: metric_name must not be empty',
	'blank name refused');
SELECT is(pg_temp.n(), 21, 'nothing written after blank name');
SELECT throws_ok($$SELECT thrillmon.record_metric(repeat('a', 129), 1)$$, '22001',
	'thrillmon: metric_name is too long (129 characters, at most 128)', '129 ASCII characters refused');
SELECT is(pg_temp.n(), 21, 'nothing written after 129 ASCII characters');
SELECT throws_ok($$SELECT thrillmon.record_metric(repeat('é', 129), 1)$$, '22001',
	'thrillmon: metric_name is too long (129 characters, at most 128)', '129 two-byte characters refused');
SELECT is(pg_temp.n(), 21, 'nothing written after 129 two-byte characters');
SELECT throws_ok($$SELECT thrillmon.record_metric(repeat('📈', 200), 1)$$, '22001',
	'thrillmon: metric_name is too long (200 characters, at most 128)', '200 four-byte characters refused');
SELECT is(pg_temp.n(), 21, 'nothing written after 200 four-byte characters');
SELECT throws_ok($$SELECT thrillmon.record_metric(E'a\nb', 1)$$, '22021',
	'thrillmon: metric_name must not contain control characters', 'newline in name refused');
SELECT is(pg_temp.n(), 21, 'nothing written after newline in name');
SELECT throws_ok($$SELECT thrillmon.record_metric(E'tab\there', 1)$$, '22021', NULL, 'tab in name refused');
SELECT throws_ok($$SELECT thrillmon.record_metric(E'del\x7f', 1)$$, '22021', NULL, 'DEL in name refused');
SELECT throws_ok($$SELECT thrillmon.record_metric(E'\x01', 1)$$, '22021', NULL, 'SOH as the whole name refused');
SELECT is(pg_temp.n(), 21, 'nothing written after control characters');

SELECT throws_ok($$SELECT thrillmon.record_metric('v', NULL)$$, '22004', 'thrillmon: metric_value must not be NULL',
	'NULL value refused');
SELECT is(pg_temp.n(), 21, 'nothing written after NULL value');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 'NaN')$$, '22023',
	'thrillmon: metric_value must be a finite number, not NaN', 'NaN refused');
SELECT is(pg_temp.n(), 21, 'nothing written after NaN');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 'Infinity')$$, '22023',
	'thrillmon: metric_value must be a finite number, not Infinity', 'Infinity refused');
SELECT is(pg_temp.n(), 21, 'nothing written after Infinity');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', '-Infinity')$$, '22023',
	'thrillmon: metric_value must be a finite number, not -Infinity', '-Infinity refused');
SELECT is(pg_temp.n(), 21, 'nothing written after -Infinity');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1e308::float8 * 10)$$, '22003', NULL,
	'an overflowing expression fails before the call (float overflow)');

SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'bogus')$$, '22023', 'thrillmon: unknown metric_category "bogus"',
	'unknown category refused');
SELECT is(pg_temp.n(), 21, 'nothing written after unknown category');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'System')$$, '22023', 'thrillmon: unknown metric_category "System"',
	'category is case-sensitive');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, '')$$, '22023', 'thrillmon: unknown metric_category ""',
	'empty category refused');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, NULL)$$, '22004', 'thrillmon: metric_category must not be NULL',
	'NULL category refused');
SELECT is(pg_temp.n(), 21, 'nothing written after NULL category');

SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'custom', '[1, 2]')$$, '22023',
	'thrillmon: metadata must be a JSON object, not an array', 'array metadata refused');
SELECT is(pg_temp.n(), 21, 'nothing written after array metadata');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'custom', '42')$$, '22023',
	'thrillmon: metadata must be a JSON object, not a scalar', 'number metadata refused');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'custom', '"text"')$$, '22023',
	'thrillmon: metadata must be a JSON object, not a scalar', 'string metadata refused');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'custom', 'null')$$, '22023',
	'thrillmon: metadata must be a JSON object, not a scalar', 'JSON null metadata refused');
SELECT is(pg_temp.n(), 21, 'nothing written after scalar metadata');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, metadata => jsonb_build_object('k', repeat('x', 65524)))$$,
	'22023', 'thrillmon: metadata is too large (65537 bytes, at most 65536)', 'metadata of 65537 bytes refused');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, metadata =>
	(SELECT jsonb_object_agg('key' || i, repeat('y', 100)) FROM generate_series(1, 1000) i))$$,
	'22023', NULL, 'metadata of about 100 kB refused');
SELECT is(pg_temp.n(), 21, 'nothing written after oversized metadata');

SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, ts => 'infinity')$$, '22008', NULL, 'ts infinity refused');
SELECT throws_like($$SELECT thrillmon.record_metric('v', 1, ts => 'infinity')$$,
	'thrillmon: ts must be a finite timestamp%', 'ts infinity: the message says what is wrong');
SELECT is(pg_temp.n(), 21, 'nothing written after ts infinity');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, ts => '-infinity')$$, '22008', NULL, 'ts -infinity refused');
SELECT is(pg_temp.n(), 21, 'nothing written after ts -infinity');

-- First bad parameter wins, in parameter order.
SELECT throws_ok($$SELECT thrillmon.record_metric(NULL, 'NaN', 'bogus', '[]', 'infinity')$$, '22004',
	'thrillmon: metric_name must not be NULL', 'all bad: the name is reported');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 'NaN', 'bogus', '[]', 'infinity')$$, '22023',
	'thrillmon: metric_value must be a finite number, not NaN', 'value, category, metadata, ts bad: the value is reported');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'bogus', '[]', 'infinity')$$, '22023',
	'thrillmon: unknown metric_category "bogus"', 'category, metadata, ts bad: the category is reported');
SELECT throws_ok($$SELECT thrillmon.record_metric('v', 1, 'custom', '[]', 'infinity')$$, '22023',
	'thrillmon: metadata must be a JSON object, not an array', 'metadata, ts bad: the metadata is reported');

-- A set-returning call that fails on its third row writes nothing (statement atomicity).
SELECT throws_ok($$SELECT thrillmon.record_metric(x, 1) FROM unnest(ARRAY['ok1', 'ok2', '', 'ok4']) WITH ORDINALITY u(x, o) ORDER BY o$$,
	'22023', 'thrillmon: metric_name must not be empty', 'a bad row in a multi-row call fails the statement');
SELECT is(pg_temp.n(), 21, 'no row of the failed multi-row statement was written');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'v' OR metric_name LIKE 'ok%'), 0,
	'no row from any refused call exists');

-- Still works after all those errors (the cached plan survived).
SELECT lives_ok($$SELECT thrillmon.record_metric('after', 7)$$, 'records again after refusals');
SELECT is(pg_temp.n(), 22, 'one more row');

SELECT * FROM finish();
ROLLBACK;
