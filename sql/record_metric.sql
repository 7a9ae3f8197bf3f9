-- record_metric(): accepted input, and the exact error for each bad input.
SELECT thrillmon.maintain_partitions(3) IS NOT NULL AS maintained;

SELECT thrillmon.record_metric('api_response_time', 123.5, 'performance', '{"endpoint": "/parks"}', '2026-01-15 12:00:00+00');
SELECT thrillmon.record_metric('cache_hit_rate', 97.25, ts => '2026-01-15 12:01:00+00');
SELECT thrillmon.record_metric('it''s; "quoted"', -1e-3, 'custom', NULL, '2026-01-15 12:02:00+00');
SELECT thrillmon.record_metric('température', 21, 'system', '{}', '2026-01-15 12:03:00+00');
SELECT metric_name, metric_category, metric_value, "timestamp" AT TIME ZONE 'UTC' AS ts_utc, metadata
FROM thrillmon.metric_time_series ORDER BY "timestamp";

-- Defaults: category custom, ts = now() (the transaction's start).
BEGIN;
SELECT thrillmon.record_metric('defaults', 1);
SELECT metric_category, "timestamp" = now() AS ts_is_now, metadata IS NULL AS no_metadata
FROM thrillmon.metric_time_series WHERE metric_name = 'defaults';
COMMIT;

-- Bad input: each is refused and writes nothing.
SELECT count(*) AS before FROM thrillmon.metric_time_series;
SELECT thrillmon.record_metric(NULL, 1);
SELECT thrillmon.record_metric('', 1);
SELECT thrillmon.record_metric('   ', 1);
SELECT thrillmon.record_metric(repeat('x', 129), 1);
SELECT thrillmon.record_metric(repeat('é', 129), 1);
SELECT thrillmon.record_metric(E'tab\there', 1);
SELECT thrillmon.record_metric(E'nel\u0085', 1);
SELECT thrillmon.record_metric(E'\u202Eevil', 1);
SELECT thrillmon.record_metric(E'zero\u200Bwidth', 1);
SELECT thrillmon.record_metric('far', 1, ts => now() + interval '367 days');
SELECT thrillmon.record_metric('m', NULL);
SELECT thrillmon.record_metric('m', 'NaN');
SELECT thrillmon.record_metric('m', 'Infinity');
SELECT thrillmon.record_metric('m', '-Infinity');
SELECT thrillmon.record_metric('m', 1, 'bogus');
SELECT thrillmon.record_metric('m', 1, NULL);
SELECT thrillmon.record_metric('m', 1, 'custom', '[1, 2]');
SELECT thrillmon.record_metric('m', 1, 'custom', '"text"');
SELECT thrillmon.record_metric('m', 1, 'custom', jsonb_build_object('blob', repeat('x', 70000)));
SELECT thrillmon.record_metric('m', 1, 'custom', NULL, 'infinity');
SELECT thrillmon.record_metric('m', 1, 'custom', NULL, '-infinity');
SELECT count(*) AS after FROM thrillmon.metric_time_series;

-- The table's own check (one constraint, metric_point_valid) holds for direct inserts too, with
-- record_metric()'s messages and SQLSTATE 23514, check_violation.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('', 1, '2020-01-01 00:00+00');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('direct', 'NaN', '2020-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, metric_category, "timestamp") VALUES ('direct', 1, 'nope', '2020-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, metadata, "timestamp") VALUES ('direct', 1, '[]', '2020-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('direct', 1, 'infinity');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES (repeat('y', 129), 1, '2020-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES (E'new\nline', 1, '2020-01-01 00:00+00');
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, metadata, "timestamp")
VALUES ('big', 1, jsonb_build_object('blob', repeat('x', 70000)), '2020-01-01 00:00+00');
-- A name of spaces only is stored (the table accepted it before 0.5.0), where record_metric() refuses it.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES ('   ', 1, '2020-01-01 00:00+00');
SELECT thrillmon.record_metric('   ', 1);
\set VERBOSITY default
SELECT count(*) AS direct_rows FROM thrillmon.metric_time_series WHERE metric_name = '   ';
DELETE FROM thrillmon.metric_time_series WHERE metric_name = '   ';
