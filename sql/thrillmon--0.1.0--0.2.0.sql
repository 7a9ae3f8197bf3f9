-- thrillmon 0.1.0 -> 0.2.0: the background worker's jobs, built-in and SQL collectors, worker
-- status and health, pg_cron scheduling. Released scripts are frozen: change behaviour in the
-- next upgrade script, never here once 0.2.0 is out.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Job runs: begin/end, so the worker can commit a 'running' row before the work (a crash then
-- leaves evidence) and record a failure in a transaction of its own.
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._job_begin(p_job text, p_target text)
RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	INSERT INTO thrillmon.job_runs (job, target, started_at, status)
	VALUES (p_job, p_target, pg_catalog.clock_timestamp(), 'running')
	RETURNING run_id
$fn$;
COMMENT ON FUNCTION thrillmon._job_begin(text, text) IS 'Internal: opens a job_runs row in state running';

CREATE FUNCTION thrillmon._job_end(p_run_id bigint, p_status text, p_rows bigint, p_details jsonb, p_error text)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	UPDATE thrillmon.job_runs
	SET finished_at = pg_catalog.clock_timestamp(), status = p_status, rows_affected = p_rows, details = p_details, error = p_error
	WHERE run_id = p_run_id
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

------------------------------------------------------------------------------------------------
-- Built-in collectors
------------------------------------------------------------------------------------------------

-- Cumulative server counters as last read, so rates cover the interval since the previous
-- collection rather than the time since server start. Not dumped: after a restore the first
-- collection simply has no rate yet.
CREATE TABLE thrillmon.counter_snapshots (
	name text PRIMARY KEY,
	value numeric NOT NULL,
	taken_at timestamptz NOT NULL
);
COMMENT ON TABLE thrillmon.counter_snapshots IS 'Internal: last value of each cumulative counter read by collection';

-- Stores a counter's new reading; returns the increase since the previous one and the seconds
-- between them, or NULLs when there is none or the counter went backwards (stats reset).
CREATE FUNCTION thrillmon._counter_delta(p_name text, p_value numeric, p_at timestamptz,
	OUT delta numeric, OUT seconds double precision)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	prev thrillmon.counter_snapshots;
BEGIN
	SELECT * INTO prev FROM thrillmon.counter_snapshots WHERE name = p_name FOR UPDATE;
	IF FOUND AND p_value >= prev.value AND p_at > prev.taken_at THEN
		delta := p_value - prev.value;
		seconds := EXTRACT(EPOCH FROM p_at - prev.taken_at);
	END IF;
	INSERT INTO thrillmon.counter_snapshots (name, value, taken_at) VALUES (p_name, p_value, p_at)
	ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, taken_at = EXCLUDED.taken_at;
END
$fn$;
COMMENT ON FUNCTION thrillmon._counter_delta(text, numeric, timestamptz) IS 'Internal: rate support for built-in collectors';

-- The catalogue of metrics thrillmon knows by name: built in (collected by the worker), from the
-- application (the origin's names), and every registered SQL collector.
CREATE VIEW thrillmon.metric_catalogue AS
SELECT b.metric_name, b.metric_category, b.unit, b.source, b.description
FROM (VALUES
	('database_connections', 'system', 'connections', 'builtin', 'Client backends connected to this database'),
	('cache_hit_rate', 'performance', 'percent', 'builtin', 'Buffer cache hits over the last interval (not since server start), in percent of block reads'),
	('active_incidents', 'monitoring', 'incidents', 'builtin', 'Incidents open or under investigation'),
	('unresolved_alerts', 'monitoring', 'alerts', 'builtin', 'Alerts not yet resolved'),
	('transactions_per_second', 'performance', 'per second', 'builtin', 'Commits plus rollbacks per second over the last interval'),
	('rollback_rate', 'performance', 'percent', 'builtin', 'Rollbacks in percent of transactions over the last interval'),
	('deadlocks', 'performance', 'deadlocks', 'builtin', 'Deadlocks detected during the last interval'),
	('longest_transaction_seconds', 'performance', 'seconds', 'builtin', 'Age of the oldest open transaction of a client backend'),
	('lock_waits', 'performance', 'backends', 'builtin', 'Backends waiting for a heavyweight lock'),
	('database_size_bytes', 'system', 'bytes', 'builtin', 'Size of this database on disk'),
	('wal_bytes_per_second', 'system', 'bytes per second', 'builtin', 'WAL generated per second over the last interval (whole cluster)'),
	('dead_tuple_ratio', 'system', 'percent', 'builtin', 'Dead tuples in percent of all tuples of user tables'),
	('replication_lag_seconds', 'system', 'seconds', 'builtin', 'Largest replay lag of a connected replica (only recorded when replicas are connected)'),
	('api_response_time', 'performance', 'milliseconds', 'application', 'Mean API response time (origin: Django middleware)'),
	('error_rate', 'performance', 'percent', 'application', 'Percentage of requests that errored (origin: Django)'),
	('celery_queue_size', 'system', 'tasks', 'application', 'Queued background tasks (origin: Celery)'),
	('api_error_count', 'performance', 'errors', 'application', 'Recent API errors (origin: Supabase edge function)'),
	('rate_limit_violations', 'security', 'blocks', 'application', 'Rate limit blocks (origin: Supabase edge function)'),
	('pending_submissions', 'workflow', 'submissions', 'application', 'Submissions awaiting moderation'),
	('submission_approval_rate', 'workflow', 'percent', 'application', 'Percentage of approved submissions'),
	('avg_moderation_time', 'workflow', 'minutes', 'application', 'Average time to moderate a submission')
) AS b(metric_name, metric_category, unit, source, description)
UNION ALL
SELECT c.name, c.metric_category, NULL, 'collector', 'SQL collector (' || c.collect_interval::text || ', owner ' || c.owner_role || ')'
FROM thrillmon.metric_collectors c;
COMMENT ON VIEW thrillmon.metric_catalogue IS 'Metrics thrillmon knows by name: built in, from the application, and SQL collectors (a multi-row collector names its metrics itself)';

CREATE FUNCTION thrillmon._collect_builtin(p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	db record;
	d record;
	dt record;
	dh record;
	dr record;
	n integer;
	points jsonb := '[]';
	-- Counters are stamped with the clock, not the slot, so rates divide by real elapsed time.
	read_at timestamptz := pg_catalog.clock_timestamp();
BEGIN
	SELECT xact_commit, xact_rollback, blks_hit, blks_read, deadlocks INTO db
	FROM pg_catalog.pg_stat_database WHERE datname = pg_catalog.current_database();

	points := points || pg_catalog.jsonb_build_array(
		pg_catalog.jsonb_build_array('database_connections', 'system',
			(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = pg_catalog.current_database() AND backend_type = 'client backend')),
		pg_catalog.jsonb_build_array('active_incidents', 'monitoring',
			(SELECT count(*) FROM thrillmon.incidents WHERE status IN ('open', 'investigating'))),
		pg_catalog.jsonb_build_array('unresolved_alerts', 'monitoring',
			(SELECT count(*) FROM thrillmon.system_alerts WHERE resolved_at IS NULL)),
		pg_catalog.jsonb_build_array('longest_transaction_seconds', 'performance',
			(SELECT coalesce(max(EXTRACT(EPOCH FROM read_at - xact_start)), 0) FROM pg_catalog.pg_stat_activity
			 WHERE backend_type = 'client backend' AND xact_start IS NOT NULL AND pid <> pg_catalog.pg_backend_pid())),
		pg_catalog.jsonb_build_array('lock_waits', 'performance',
			(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock')),
		pg_catalog.jsonb_build_array('database_size_bytes', 'system', pg_catalog.pg_database_size(pg_catalog.current_database())),
		pg_catalog.jsonb_build_array('dead_tuple_ratio', 'system',
			(SELECT coalesce(sum(n_dead_tup) * 100.0 / NULLIF(sum(n_live_tup + n_dead_tup), 0), 0) FROM pg_catalog.pg_stat_user_tables)));

	-- Rates over the interval since the previous collection.
	SELECT * INTO dh FROM thrillmon._counter_delta('blks_hit', db.blks_hit, read_at);
	SELECT * INTO dr FROM thrillmon._counter_delta('blks_read', db.blks_read, read_at);
	IF dh.delta IS NOT NULL AND dr.delta IS NOT NULL AND dh.delta + dr.delta > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('cache_hit_rate', 'performance',
			pg_catalog.round(dh.delta * 100.0 / (dh.delta + dr.delta), 4)));
	END IF;
	SELECT * INTO dt FROM thrillmon._counter_delta('xact_total', db.xact_commit + db.xact_rollback, read_at);
	SELECT * INTO d FROM thrillmon._counter_delta('xact_rollback', db.xact_rollback, read_at);
	IF dt.delta IS NOT NULL AND dt.seconds > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('transactions_per_second', 'performance',
			pg_catalog.round((dt.delta / dt.seconds::numeric), 4)));
		IF d.delta IS NOT NULL AND dt.delta > 0 THEN
			points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('rollback_rate', 'performance',
				pg_catalog.round(d.delta * 100.0 / dt.delta, 4)));
		END IF;
	END IF;
	SELECT * INTO d FROM thrillmon._counter_delta('deadlocks', db.deadlocks, read_at);
	IF d.delta IS NOT NULL THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('deadlocks', 'performance', d.delta));
	END IF;
	SELECT * INTO d FROM thrillmon._counter_delta('wal_lsn', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0'), read_at);
	IF d.delta IS NOT NULL AND d.seconds > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('wal_bytes_per_second', 'system',
			pg_catalog.round(d.delta / d.seconds::numeric, 4)));
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_replication) THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('replication_lag_seconds', 'system',
			(SELECT coalesce(max(EXTRACT(EPOCH FROM coalesce(replay_lag, interval '0'))), 0) FROM pg_catalog.pg_stat_replication)));
	END IF;

	INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
	SELECT p->>0, p->>1, (p->>2)::double precision, p_at FROM pg_catalog.jsonb_array_elements(points) p;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect_builtin(timestamptz) IS 'Internal: records every built-in metric at p_at (the collection slot)';

------------------------------------------------------------------------------------------------
-- SQL collectors
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._probe_collector_query(query text)
RETURNS integer
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_probe_collector_query';
COMMENT ON FUNCTION thrillmon._probe_collector_query(text) IS
	'Internal: checks, as the caller, that a collector query is one read-only SELECT returning (value) or (metric_name, value); returns its column count';

CREATE FUNCTION thrillmon._run_collector_query(query text, owner_role name, timeout_ms integer,
	OUT metric_name text, OUT metric_value double precision)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_run_collector_query';
COMMENT ON FUNCTION thrillmon._run_collector_query(text, name, integer) IS
	'Internal: runs a collector query as its owner, read-only, under a timeout, in a security-restricted context';

-- Direct writes to metric_collectors: a non-superuser becomes the owner of what it writes (so a
-- query never runs with more privileges than whoever last wrote it), and the query is checked.
-- Superusers may keep another owner: that is what pg_restore, as a superuser, needs.
CREATE FUNCTION thrillmon._collector_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) THEN
		NEW.owner_role := CURRENT_USER;
		PERFORM thrillmon._probe_collector_query(NEW.query);
	END IF;
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collector_guard() IS 'Internal: owner and query checks on metric_collectors';
CREATE TRIGGER guard BEFORE INSERT OR UPDATE ON thrillmon.metric_collectors
	FOR EACH ROW EXECUTE FUNCTION thrillmon._collector_guard();

CREATE FUNCTION thrillmon.register_collector(name text, query text, category text DEFAULT 'custom',
	collect_interval interval DEFAULT '60 seconds')
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	-- The same rules and messages as record_metric() (a one-column collector's metric is named
	-- after it), so a collector cannot be registered only to fail on every run.
	IF register_collector.name IS NULL THEN
		RAISE EXCEPTION 'thrillmon: collector name must not be NULL' USING ERRCODE = '22004';
	ELSIF register_collector.name ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'thrillmon: collector name must not contain control characters' USING ERRCODE = '22021';
	ELSIF pg_catalog.btrim(register_collector.name) = '' THEN
		RAISE EXCEPTION 'thrillmon: collector name must not be empty' USING ERRCODE = '22023';
	ELSIF pg_catalog.char_length(register_collector.name) > 128 THEN
		RAISE EXCEPTION 'thrillmon: collector name is too long (% characters, at most 128)',
			pg_catalog.char_length(register_collector.name) USING ERRCODE = '22001';
	ELSIF register_collector.category IS NULL THEN
		RAISE EXCEPTION 'thrillmon: metric_category must not be NULL' USING ERRCODE = '22004',
			HINT = 'Use one of: performance, system, security, workflow, monitoring, custom.';
	ELSIF register_collector.category NOT IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom') THEN
		RAISE EXCEPTION 'thrillmon: unknown metric_category "%"', register_collector.category USING ERRCODE = '22023',
			HINT = 'Use one of: performance, system, security, workflow, monitoring, custom.';
	ELSIF register_collector.collect_interval IS NULL THEN
		RAISE EXCEPTION 'thrillmon: collect_interval must not be NULL' USING ERRCODE = '22004';
	ELSIF register_collector.collect_interval < interval '1 second'
		OR register_collector.collect_interval > interval '1 day' THEN
		RAISE EXCEPTION 'thrillmon: collect_interval must be between 1 second and 1 day, got %',
			coalesce(register_collector.collect_interval::text, 'NULL') USING ERRCODE = '22023';
	END IF;
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
COMMENT ON FUNCTION thrillmon.register_collector(text, text, text, interval) IS
	'Registers (or replaces) a SQL collector: one read-only SELECT returning one numeric value, or rows of (metric_name, value); it will run with the registering role''s privileges';

CREATE FUNCTION thrillmon.unregister_collector(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	DELETE FROM thrillmon.metric_collectors c WHERE c.name = unregister_collector.name;
	RETURN FOUND;
END
$fn$;
COMMENT ON FUNCTION thrillmon.unregister_collector(text) IS 'Removes a SQL collector; returns whether it existed';

-- Runs SQL collectors: all of them, or (p_only_due) those whose interval has elapsed at p_at.
-- Each in its own subtransaction, so a failing one records last_error and the others go on.
CREATE FUNCTION thrillmon._run_collectors(p_at timestamptz, p_only_due boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	c thrillmon.metric_collectors;
	r record;
	t0 timestamptz;
	ok integer := 0;
	failed integer := 0;
	points integer := 0;
	n integer;
BEGIN
	FOR c IN SELECT * FROM thrillmon.metric_collectors WHERE enabled ORDER BY name LOOP
		IF p_only_due AND c.last_run_at IS NOT NULL AND c.last_run_at + c.collect_interval > p_at + interval '100 milliseconds' THEN
			CONTINUE;
		END IF;
		t0 := pg_catalog.clock_timestamp();
		BEGIN
			n := 0;
			FOR r IN SELECT * FROM thrillmon._run_collector_query(c.query, c.owner_role,
				(EXTRACT(EPOCH FROM c.statement_timeout) * 1000)::integer)
			LOOP
				-- A one-column collector's metric is named after the collector.
				PERFORM thrillmon.record_metric(coalesce(r.metric_name, c.name), r.metric_value, c.metric_category,
					pg_catalog.jsonb_build_object('collector', c.name), p_at);
				n := n + 1;
			END LOOP;
			UPDATE thrillmon.metric_collectors SET last_run_at = p_at, last_success_at = p_at, last_error = NULL,
				last_duration_ms = EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - t0) * 1000
			WHERE name = c.name;
			ok := ok + 1;
			points := points + n;
		EXCEPTION WHEN OTHERS THEN
			UPDATE thrillmon.metric_collectors SET last_run_at = p_at, last_error = SQLERRM,
				last_duration_ms = EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - t0) * 1000
			WHERE name = c.name;
			failed := failed + 1;
		END;
	END LOOP;
	RETURN pg_catalog.jsonb_build_object('collectors_ok', ok, 'collectors_failed', failed, 'collector_points', points);
END
$fn$;
COMMENT ON FUNCTION thrillmon._run_collectors(timestamptz, boolean) IS 'Internal: runs SQL collectors, recording each one''s outcome';

-- The collection job: built-ins, then SQL collectors. p_at is the slot the points are stamped
-- with (the worker passes its wall-clock slot so metrics line up).
------------------------------------------------------------------------------------------------
-- observe(): high-frequency observations aggregated in shared memory
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon.observe(metric_name text, value double precision, metric_category text DEFAULT 'custom')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_observe';
COMMENT ON FUNCTION thrillmon.observe(text, double precision, text) IS
	'Records one observation in shared memory (no table write); each collection flushes one row per metric: mean, with count, sum, min, max, p50, p95, p99 in metadata';

CREATE FUNCTION thrillmon._flush_observations(p_at timestamptz)
RETURNS integer
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_flush_observations';
COMMENT ON FUNCTION thrillmon._flush_observations(timestamptz) IS
	'Internal: writes the observe() aggregates as one row per metric and resets them (given back if the transaction aborts)';

CREATE FUNCTION thrillmon._collect(p_at timestamptz, p_only_due boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	builtin integer := thrillmon._collect_builtin(p_at);
	observed integer := thrillmon._flush_observations(p_at);
	collectors jsonb := thrillmon._run_collectors(p_at, p_only_due);
BEGIN
	RETURN pg_catalog.jsonb_build_object('builtin_points', builtin, 'observed_points', observed, 'at', p_at) || collectors;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect(timestamptz, boolean) IS 'Internal: the collection job body';

CREATE FUNCTION thrillmon.collect_metrics(only_due boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	run_id bigint := thrillmon._job_begin('collect', CASE WHEN $1 THEN 'due' ELSE 'all' END);
	result jsonb := thrillmon._collect(pg_catalog.now(), $1);
	points bigint := (result->>'builtin_points')::bigint + (result->>'observed_points')::bigint
		+ (result->>'collector_points')::bigint;
BEGIN
	PERFORM thrillmon._job_end(run_id, 'succeeded', points, result, NULL);
	RETURN result || pg_catalog.jsonb_build_object('run_id', run_id);
END
$fn$;
COMMENT ON FUNCTION thrillmon.collect_metrics(boolean) IS
	'Runs every built-in and SQL collector now (the origin dashboard''s "trigger now"), or with only_due only the SQL collectors whose interval has elapsed; returns counts';

------------------------------------------------------------------------------------------------
-- The worker's entry into SQL
------------------------------------------------------------------------------------------------

-- Runs one job for the worker, whose run row is already committed as 'running', and closes it.
-- A job that raises leaves the row to the worker, which records the error in a new transaction.
CREATE FUNCTION thrillmon._worker_run_job(p_job text, p_run_id bigint, p_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $fn$
DECLARE
	result jsonb;
	status text := 'succeeded';
	n bigint;
BEGIN
	CASE p_job
	WHEN 'collect' THEN
		result := thrillmon._collect(p_at, true);
		n := (result->>'builtin_points')::bigint + (result->>'observed_points')::bigint
			+ (result->>'collector_points')::bigint;
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

------------------------------------------------------------------------------------------------
-- Worker status and health
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon.worker_status(OUT pid integer, OUT state text, OUT database text,
	OUT started_at timestamptz, OUT last_tick_at timestamptz, OUT current_job text,
	OUT last_job text, OUT last_job_at timestamptz, OUT last_error text, OUT last_error_at timestamptz,
	OUT jobs_run bigint, OUT jobs_failed bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_worker_status';
COMMENT ON FUNCTION thrillmon.worker_status() IS
	'Live state of the background worker from shared memory: pid (NULL when not running), state, last tick, current and last job, last error, counts';

CREATE FUNCTION thrillmon.health_check()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	w record;
	reasons text[] := '{}';
	failing boolean := false;
	worker_enabled boolean := coalesce(pg_catalog.current_setting('thrillmon.enabled', true), 'on') = 'on';
	scheduler text := coalesce(pg_catalog.current_setting('thrillmon.scheduler', true), 'internal');
	interval_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.collect_interval'), 60);
	by_cron boolean := EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'collect');
	last_collect timestamptz;
	j record;
	c record;
BEGIN
	SELECT * INTO w FROM thrillmon.worker_status();
	IF by_cron THEN
		interval_s := 60; -- pg_cron runs collection every minute
	END IF;
	IF worker_enabled AND scheduler = 'internal' AND w.pid IS NULL THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker not running (%s)', w.state);
	ELSIF worker_enabled AND scheduler = 'internal' AND w.database IS DISTINCT FROM pg_catalog.current_database() THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker serves database "%s", not this one (set thrillmon.database)', w.database);
	END IF;
	SELECT max(finished_at) INTO last_collect FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded';
	-- Collection is expected unless scheduling was turned off: by the worker, or by pg_cron when
	-- thrillmon.scheduler = pg_cron (if no pg_cron job collects then, that is stale too).
	IF (worker_enabled AND scheduler <> 'off') OR by_cron THEN
		IF last_collect IS NULL THEN
			failing := true;
			reasons := reasons || 'collection stale: no successful collection yet'::text;
		ELSIF pg_catalog.now() - last_collect > pg_catalog.make_interval(secs => 3 * interval_s) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('collection stale: last successful collection %s ago (more than 3 intervals of %s s)',
				pg_catalog.date_trunc('second', pg_catalog.now() - last_collect), interval_s);
		END IF;
	END IF;
	FOR j IN SELECT DISTINCT ON (r.job) r.job, r.status, r.error, r.finished_at FROM thrillmon.job_runs r
		WHERE r.status <> 'running' ORDER BY r.job, r.started_at DESC
	LOOP
		IF j.status = 'failed' THEN
			reasons := reasons || pg_catalog.format('job %s failing: %s', j.job, coalesce(j.error, 'see job_runs'));
		END IF;
	END LOOP;
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc WHERE mc.enabled AND mc.last_error IS NOT NULL ORDER BY mc.name LOOP
		reasons := reasons || pg_catalog.format('collector %s failing: %s', c.name, c.last_error);
	END LOOP;
	RETURN pg_catalog.jsonb_build_object(
		'status', CASE WHEN failing THEN 'failing' WHEN pg_catalog.cardinality(reasons) > 0 THEN 'degraded' ELSE 'ok' END,
		'reasons', pg_catalog.to_jsonb(reasons),
		'checked_at', pg_catalog.now(),
		'last_collection_at', last_collect,
		'worker', pg_catalog.to_jsonb(w));
END
$fn$;
COMMENT ON FUNCTION thrillmon.health_check() IS
	'One call for an external probe: {"status": "ok" | "degraded" | "failing", "reasons": [...]}; failing when the worker is not running or collection is stale (more than 3 intervals), degraded when a job or collector is failing';

CREATE VIEW thrillmon.system_health AS
SELECT 'metric'::text AS section, m.metric_name AS name, NULL::text AS status, m.metric_value AS value,
	m."timestamp" AS observed_at, pg_catalog.jsonb_build_object('category', m.metric_category) AS detail
FROM (SELECT DISTINCT ON (t.metric_name) t.metric_name, t.metric_category, t.metric_value, t."timestamp"
	FROM thrillmon.metric_time_series t WHERE t."timestamp" > pg_catalog.now() - interval '1 day'
	ORDER BY t.metric_name, t."timestamp" DESC) m
UNION ALL
SELECT 'incident', i.incident_number || ': ' || i.title, i.status, NULL, i.detected_at,
	pg_catalog.jsonb_build_object('severity', i.severity, 'acknowledged_at', i.acknowledged_at)
FROM thrillmon.incidents i WHERE i.status IN ('open', 'investigating')
UNION ALL
SELECT 'alert', a.alert_type, a.severity, NULL, a.created_at,
	pg_catalog.jsonb_build_object('message', a.message, 'metric_name', a.metric_name, 'acknowledged_at', a.acknowledged_at)
FROM thrillmon.system_alerts a WHERE a.resolved_at IS NULL
UNION ALL
SELECT 'worker', 'thrillmon collector', w.state, NULL, w.last_tick_at, pg_catalog.to_jsonb(w)
FROM thrillmon.worker_status() w
UNION ALL
SELECT 'job', j.job, j.status, j.rows_affected, j.finished_at,
	pg_catalog.jsonb_build_object('run_id', j.run_id, 'target', j.target, 'duration_ms', j.duration_ms, 'error', j.error)
FROM (SELECT DISTINCT ON (r.job) r.* FROM thrillmon.job_runs r ORDER BY r.job, r.started_at DESC) j
UNION ALL
SELECT 'collector', c.name, 'failing', NULL, c.last_run_at, pg_catalog.jsonb_build_object('error', c.last_error)
FROM thrillmon.metric_collectors c WHERE c.enabled AND c.last_error IS NOT NULL
UNION ALL
SELECT 'health', 'health_check', h->>'status', NULL, pg_catalog.now(), h
FROM thrillmon.health_check() h;
COMMENT ON VIEW thrillmon.system_health IS
	'One view of health: latest value of every metric seen in the last day, open incidents, unresolved alerts, worker state, last run of each job, failing collectors, and health_check()';

------------------------------------------------------------------------------------------------
-- pg_cron
------------------------------------------------------------------------------------------------

-- Jobs handed to pg_cron; the internal scheduler skips these.
CREATE TABLE thrillmon.pg_cron_jobs (
	job text PRIMARY KEY CONSTRAINT cron_job_known CHECK (job IN ('collect', 'maintenance', 'retention')),
	jobname text NOT NULL UNIQUE,
	schedule text NOT NULL,
	command text NOT NULL,
	scheduled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.pg_cron_jobs IS 'Jobs scheduled in pg_cron by schedule_with_pg_cron(); the worker does not run these itself';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.pg_cron_jobs', '');

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
	-- The origin's cron: collection every minute, retention daily at 03:00; plus hourly partition
	-- maintenance, which the origin had no need of. cron.schedule(name, ...) replaces a job of the
	-- same name, so calling this twice changes nothing.
	FOR j IN SELECT * FROM (VALUES
		('collect', 'thrillmon-collect', '* * * * *', 'SELECT thrillmon.collect_metrics(true)'),
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
	'Registers the origin''s schedule in pg_cron (collect every minute, maintenance hourly, retention daily at 03:00) and turns the internal scheduler off for those jobs; idempotent';

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

------------------------------------------------------------------------------------------------
-- Privileges for what this version adds
------------------------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA thrillmon FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA thrillmon TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.worker_status(), thrillmon.health_check() TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.observe(text, double precision, text) TO thrillmon_writer;
GRANT EXECUTE ON FUNCTION thrillmon.collect_metrics(boolean), thrillmon.register_collector(text, text, text, interval),
	thrillmon.unregister_collector(text), thrillmon._probe_collector_query(text),
	thrillmon.schedule_with_pg_cron(), thrillmon.unschedule_pg_cron(), thrillmon._require_pg_cron() TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.metric_collectors TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.pg_cron_jobs TO thrillmon_admin;
