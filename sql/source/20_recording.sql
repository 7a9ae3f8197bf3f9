-- Recording: one point at a time (record_metric), and high-frequency observations aggregated in
-- shared memory (observe), flushed by each collection as one point per metric. The rules of a
-- point are the core's (src/core/validation.cpp); the glue is src/pg/record.cpp and observe.cpp.

CREATE FUNCTION thrillmon.record_metric(metric_name text, metric_value double precision,
	metric_category text DEFAULT 'custom', metadata jsonb DEFAULT NULL, ts timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'thrillmon_record_metric';
COMMENT ON FUNCTION thrillmon.record_metric(text, double precision, text, jsonb, timestamptz) IS
	'Records one metric point after validating it (name, finite value, category, metadata object <= 64 kB, finite ts)';

-- No table write and no WAL per call: the observation is added to the metric's slot in shared
-- memory (thrillmon.max_observed_metrics of them for the cluster, at most
-- thrillmon.max_observed_metrics_per_database for a database other than the worker's), under
-- that slot's spinlock only.
CREATE FUNCTION thrillmon.observe(metric_name text, value double precision, metric_category text DEFAULT 'custom')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_observe';
COMMENT ON FUNCTION thrillmon.observe(text, double precision, text) IS
	'Records one observation in shared memory (no table write); each collection flushes one row per metric: mean, with count, sum, min, max, p50, p95, p99 in metadata';

-- Exactly once: what a flush takes from shared memory is merged back if its (sub)transaction
-- aborts, so the next flush writes it.
CREATE FUNCTION thrillmon._flush_observations(p_at timestamptz)
RETURNS integer
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_flush_observations';
COMMENT ON FUNCTION thrillmon._flush_observations(timestamptz) IS
	'Internal: writes the observe() aggregates as one row per metric and resets them (given back if the transaction aborts)';

-- observe() takes a slot only in a database something flushes: outside the worker's database
-- (which the C side knows), one whose collection pg_cron runs, or where collect_metrics()
-- succeeded in the last two days (a slot nothing flushes for two days is given back). Definer:
-- a writer may not read job_runs.
CREATE FUNCTION thrillmon._observations_flushed()
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs j WHERE j.job = 'collect')
		OR EXISTS (SELECT 1 FROM thrillmon.job_runs r WHERE r.job = 'collect' AND r.status = 'succeeded'
			AND r.started_at > pg_catalog.now() - interval '2 days')
$fn$;
COMMENT ON FUNCTION thrillmon._observations_flushed() IS
	'Internal: whether something flushes observe()''s slots in this database (pg_cron collects, or collect_metrics() succeeded in the last two days)';
