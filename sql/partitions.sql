-- maintain_partitions(): daily partitions, backfill from the default partition.
\set SHOW_CONTEXT never
SELECT thrillmon.maintain_partitions(-1);
SELECT thrillmon.maintain_partitions(366);

-- Backfilled history lands in the default partition until maintenance moves it (into partitions
-- for the days within the metrics policy's retention: here a century).
UPDATE thrillmon.retention_policies SET retention_days = 36500 WHERE target = 'metrics';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'backfill', g, timestamptz '2020-02-27 00:30:00+00' + g * interval '6 hours' FROM generate_series(0, 11) g;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
	('far', 1, '1960-05-05 23:00:00-05'),
	('far', 2, '20000-01-01 00:00:00+00');
SELECT count(*) AS in_default FROM ONLY thrillmon.metric_time_series_default;

SELECT r->'rows_moved' AS rows_moved,
	(SELECT array_agg(x ORDER BY x) FROM jsonb_array_elements_text(r->'created') x WHERE x < 'metric_time_series_p2025') AS created_for_backfill
FROM thrillmon.maintain_partitions(0) AS r;

SELECT tableoid::regclass AS partition, count(*), min(metric_value), max(metric_value)
FROM thrillmon.metric_time_series WHERE metric_name IN ('backfill', 'far') GROUP BY 1 ORDER BY 1;

-- Idempotent: nothing more to create or move.
SELECT r->'created' AS created, r->'rows_moved' AS rows_moved FROM thrillmon.maintain_partitions(0) AS r;

-- A timestamp written in any zone lands in the partition of its UTC day.
SET TimeZone = 'America/New_York';
SELECT thrillmon.record_metric('tz', 1, ts => '2020-02-28 22:00:00');
SET TimeZone = 'Asia/Kolkata';
SELECT thrillmon.record_metric('tz', 2, ts => '2020-02-29 03:00:00');
RESET TimeZone;
SELECT metric_value, tableoid::regclass FROM thrillmon.metric_time_series WHERE metric_name = 'tz' ORDER BY 1;

-- DROP EXTENSION removes the partitions made after install too.
DROP EXTENSION thrillmon;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'metric_time_series%';
SELECT count(*) AS schema_left FROM pg_namespace WHERE nspname = 'thrillmon';
CREATE EXTENSION thrillmon;
