-- thrillmon 0.5.0 -> 0.6.0: what an installed 0.5.0 needs to equal a fresh 0.6.0 install (which
-- is built from sql/source/ and never runs this file). Frozen once 0.6.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.6.0'" to load this file. \quit

-- Configuration is validated by the core only (src/core/detect_config.cpp): the trigger calls it,
-- as backtest() and the detection pass do. Same rules, same messages.
CREATE FUNCTION thrillmon._check_detection_config(detection_algorithms text[], sensitivity double precision,
	min_data_points integer, lookback_window_minutes integer, alert_threshold_score double precision,
	cooldown_minutes integer)
RETURNS void
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'thrillmon_check_detection_config';
COMMENT ON FUNCTION thrillmon._check_detection_config(text[], double precision, integer, integer, double precision, integer) IS
	'Internal: checks a detection configuration, raising the first broken rule''s error (SQLSTATE 22023 or 22004)';
REVOKE ALL ON FUNCTION thrillmon._check_detection_config(text[], double precision, integer, integer, double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._check_detection_config(text[], double precision, integer, integer,
	double precision, integer) TO thrillmon_admin;

CREATE OR REPLACE FUNCTION thrillmon._config_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	PERFORM thrillmon._check_detection_config(NEW.detection_algorithms, NEW.sensitivity, NEW.min_data_points,
		NEW.lookback_window_minutes, NEW.alert_threshold_score, NEW.cooldown_minutes);
	IF TG_OP = 'UPDATE' THEN
		NEW.updated_at := pg_catalog.now();
	END IF;
	RETURN NEW;
END
$fn$;

-- register_collector()'s name, category and interval rules are the core's (ValidateCollector).
CREATE FUNCTION thrillmon._check_collector(name text, category text, collect_interval interval)
RETURNS void
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'thrillmon_check_collector';
COMMENT ON FUNCTION thrillmon._check_collector(text, text, interval) IS
	'Internal: checks a collector''s name, category and interval (register_collector()), raising the rule''s error';
REVOKE ALL ON FUNCTION thrillmon._check_collector(text, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._check_collector(text, text, interval) TO thrillmon_admin;

CREATE OR REPLACE FUNCTION thrillmon.register_collector(name text, query text, category text DEFAULT 'custom',
	collect_interval interval DEFAULT '60 seconds')
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	PERFORM thrillmon._check_collector(register_collector.name, register_collector.category,
		register_collector.collect_interval);
	-- Checked with the caller's privileges: the query will run with them too.
	PERFORM thrillmon._probe_collector_query(register_collector.query);
	INSERT INTO thrillmon.metric_collectors AS c (name, query, metric_category, collect_interval, owner_role)
	VALUES (register_collector.name, register_collector.query, register_collector.category,
		register_collector.collect_interval, CURRENT_USER)
	ON CONFLICT ON CONSTRAINT metric_collectors_pkey DO UPDATE
	SET query = EXCLUDED.query, metric_category = EXCLUDED.metric_category, collect_interval = EXCLUDED.collect_interval,
		owner_role = EXCLUDED.owner_role, enabled = true, last_error = NULL;
END
$fn$;

-- Severities rank in the order of the core's vocabulary.
CREATE OR REPLACE FUNCTION thrillmon._severity_rank(p_severity text)
RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT coalesce(pg_catalog.array_position('{low,medium,high,critical}'::text[], p_severity), 0)
$fn$;

-- pg_cron_jobs.job takes the job vocabulary, in its order (the same set of four jobs).
ALTER TABLE thrillmon.pg_cron_jobs DROP CONSTRAINT cron_job_known,
	ADD CONSTRAINT cron_job_known CHECK (job IN ('collect', 'detect', 'retention', 'maintenance'));

-- What this backend's last pass did, for a DBA wondering what a pass costs, and for the tests
-- (a pass over many metrics scores them in thrillmon.detect_threads threads).
CREATE FUNCTION thrillmon._detect_pass_stats(OUT pass bigint, OUT metrics bigint, OUT rebuilt bigint,
	OUT points bigint, OUT anomalies bigint, OUT cached bigint, OUT threads integer)
RETURNS record
AS 'MODULE_PATHNAME', 'thrillmon_detect_pass_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_pass_stats() IS
	'Internal: this backend''s last detection pass: its number, metrics scored, detectors rebuilt, points scored, anomalies, detectors kept, threads that scored (NULLs before the first)';
REVOKE ALL ON FUNCTION thrillmon._detect_pass_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._detect_pass_stats() TO thrillmon_reader;
