-- Scheduling: the job history every job writes, the worker's entry into SQL (its job runner), and
-- pg_cron: schedule_with_pg_cron() hands the origin's schedule to pg_cron and the worker then
-- leaves those jobs alone. The worker itself is src/pg/worker.cpp.

-- A run recorded after the fact, in one row (the functions people call: their run succeeded or
-- raised, and a run that raised rolls back with its caller).
CREATE FUNCTION thrillmon._job_record(p_job text, p_target text, p_started timestamptz, p_status text,
	p_rows bigint, p_details jsonb, p_error text)
RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status, rows_affected, details, error)
	VALUES (p_job, p_target, p_started, pg_catalog.clock_timestamp(), p_status, p_rows, p_details, p_error)
	RETURNING run_id
$fn$;
COMMENT ON FUNCTION thrillmon._job_record(text, text, timestamptz, text, bigint, jsonb, text) IS
	'Internal: appends a finished run to job_runs';

-- The worker opens a run before the work (committed: a crash then leaves evidence) and closes it
-- after; a failure is recorded in a transaction of its own. PL/pgSQL rather than SQL: a SQL
-- function with SET search_path is neither inlined nor keeps its plan, so every call would parse
-- and plan its statement again (0.2 ms; each job makes two calls).
CREATE FUNCTION thrillmon._job_begin(p_job text, p_target text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	id bigint;
BEGIN
	INSERT INTO thrillmon.job_runs (job, target, started_at, status)
	VALUES (p_job, p_target, pg_catalog.clock_timestamp(), 'running')
	RETURNING run_id INTO id;
	RETURN id;
END
$fn$;
COMMENT ON FUNCTION thrillmon._job_begin(text, text) IS 'Internal: opens a job_runs row in state running';

CREATE FUNCTION thrillmon._job_end(p_run_id bigint, p_status text, p_rows bigint, p_details jsonb, p_error text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	UPDATE thrillmon.job_runs
	SET finished_at = pg_catalog.clock_timestamp(), status = p_status, rows_affected = p_rows, details = p_details, error = p_error
	WHERE run_id = p_run_id;
END
$fn$;
COMMENT ON FUNCTION thrillmon._job_end(bigint, text, bigint, jsonb, text) IS 'Internal: closes a job_runs row';

-- At worker start: a run still 'running' was cut short by a crash or restart (the worker runs
-- one job at a time, and only it leaves rows in that state across transactions).
CREATE FUNCTION thrillmon._mark_interrupted_runs()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	n integer;
BEGIN
	UPDATE thrillmon.job_runs
	SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), error = 'interrupted: server or worker restarted'
	WHERE status = 'running';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._mark_interrupted_runs() IS 'Internal: marks runs left running by a crash as failed';

-- Runs one job for the worker, whose run row is already committed as 'running', and closes it.
-- A job that raises leaves the row to the worker, which records the error in a new transaction.
CREATE FUNCTION thrillmon._worker_run_job(p_job text, p_run_id bigint, p_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $fn$
DECLARE
	result jsonb;
	status text := 'succeeded';
	n bigint;
	alerts bigint;
BEGIN
	CASE p_job
	WHEN 'collect' THEN
		result := thrillmon._collect(p_at, true);
		n := (result->>'builtin_points')::bigint + (result->>'observed_points')::bigint
			+ (result->>'collector_points')::bigint;
	WHEN 'detect' THEN
		SELECT count(*), count(*) FILTER (WHERE d.alert_created) INTO n, alerts FROM thrillmon._detect_run() d;
		-- What the pass left unscored or failed to score: health_check() reads it here.
		result := pg_catalog.jsonb_build_object('anomalies', n, 'alerts', alerts)
			|| (SELECT pg_catalog.jsonb_build_object('metrics', s.metrics, 'skipped_metrics', s.skipped, 'failed_metrics', s.failed)
			    FROM thrillmon._detect_pass_stats() s);
	WHEN 'maintenance' THEN
		result := thrillmon._maintain_partitions_run(NULL);
		n := pg_catalog.jsonb_array_length(result->'created');
	WHEN 'retention' THEN
		result := thrillmon._retention_all();
		status := result->>'status';
		n := (result->>'removed')::bigint;
	ELSE
		RAISE EXCEPTION 'thrillmon: unknown job "%"', p_job;
	END CASE;
	PERFORM thrillmon._job_end(p_run_id, status, n, result - 'error', result->>'error');
	RETURN result;
END
$fn$;
COMMENT ON FUNCTION thrillmon._worker_run_job(text, bigint, timestamptz) IS 'Internal: one worker job';

CREATE FUNCTION thrillmon._require_pg_cron()
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		RAISE EXCEPTION 'thrillmon: pg_cron is not installed in database "%"', pg_catalog.current_database()
			USING ERRCODE = '55000',
			HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, then CREATE EXTENSION pg_cron.';
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._require_pg_cron() IS 'Internal: clear error when pg_cron is absent';

CREATE FUNCTION thrillmon.schedule_with_pg_cron()
RETURNS TABLE (job text, jobname text, schedule text, command text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
	j record;
BEGIN
	PERFORM thrillmon._require_pg_cron();
	-- The origin's cron: collection every minute, detection every 5 minutes, retention daily at
	-- 03:00; plus hourly partition maintenance, which the origin had no need of.
	-- cron.schedule(name, ...) replaces a job of the same name, so calling this twice changes nothing.
	-- pg_cron runs each command as the caller, with the database's search_path, which its owner
	-- chooses: every name in them is schema-qualified (count(*) included).
	FOR j IN SELECT * FROM (VALUES
		('collect', 'thrillmon-collect', '* * * * *', 'SELECT thrillmon.collect_metrics(true)'),
		('detect', 'thrillmon-detect', '*/5 * * * *', 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()'),
		('maintenance', 'thrillmon-maintenance', '15 * * * *', 'SELECT thrillmon.maintain_partitions()'),
		('retention', 'thrillmon-retention', '0 3 * * *', 'SELECT thrillmon.run_data_retention_cleanup()')
	) AS v(job, jobname, schedule, command)
	LOOP
		EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING j.jobname, j.schedule, j.command;
		INSERT INTO thrillmon.pg_cron_jobs (job, jobname, schedule, command) VALUES (j.job, j.jobname, j.schedule, j.command)
		ON CONFLICT (job) DO UPDATE SET jobname = EXCLUDED.jobname, schedule = EXCLUDED.schedule, command = EXCLUDED.command;
		job := j.job; jobname := j.jobname; schedule := j.schedule; command := j.command;
		RETURN NEXT;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon.schedule_with_pg_cron() IS
	'Registers the origin''s schedule in pg_cron (collect every minute, detect every 5 minutes, maintenance hourly, retention daily at 03:00) and turns the internal scheduler off for those jobs; idempotent';

CREATE FUNCTION thrillmon.unschedule_pg_cron()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	j record;
	n integer := 0;
BEGIN
	PERFORM thrillmon._require_pg_cron();
	FOR j IN SELECT * FROM thrillmon.pg_cron_jobs LOOP
		-- Only the jobs we made, and only if still there (a DBA may have removed one by hand).
		IF EXISTS (SELECT 1 FROM cron.job c WHERE c.jobname = j.jobname) THEN
			EXECUTE 'SELECT cron.unschedule($1)' USING j.jobname;
			n := n + 1;
		END IF;
		DELETE FROM thrillmon.pg_cron_jobs WHERE job = j.job;
	END LOOP;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon.unschedule_pg_cron() IS
	'Removes exactly the pg_cron jobs schedule_with_pg_cron() made and gives them back to the internal scheduler; returns how many were removed';
