-- Collection: the built-in collectors (in-database health: connections, cache hit rate,
-- transactions, locks, WAL, ...), SQL collectors that run with their owner's privileges
-- (src/pg/collectors.cpp), and collect_metrics(), the collection job that also flushes observe().

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
	('cluster_database_size_bytes', 'system', 'bytes', 'builtin', 'On a Citus coordinator: this database''s size on every node together (only recorded when every worker node answered); each worker node''s own figures are database_connections, database_size_bytes and replication_lag_seconds followed by @host:port'),
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
			(SELECT count(*) FROM thrillmon.incidents WHERE status IN (@list:incident_status_unfinished@))),
		pg_catalog.jsonb_build_array('unresolved_alerts', 'monitoring',
			(SELECT count(*) FROM thrillmon.system_alerts WHERE resolved_at IS NULL)),
		pg_catalog.jsonb_build_array('longest_transaction_seconds', 'performance',
			-- (At least 0: the activity snapshot is taken after read_at, and a transaction that
			-- began in between had a negative age.)
			(SELECT GREATEST(coalesce(max(EXTRACT(EPOCH FROM read_at - xact_start)), 0), 0) FROM pg_catalog.pg_stat_activity
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

	IF NOT thrillmon._metrics_distributed() THEN
		INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
		SELECT p->>0, p->>1, (p->>2)::double precision, p_at FROM pg_catalog.jsonb_array_elements(points) p;
		GET DIAGNOSTICS n = ROW_COUNT;
		RETURN n;
	END IF;
	-- Distributed, each point goes to its metric's shard, and a worker node that is down takes
	-- its shards' points with it: one point a subtransaction, so that the others (and the rest of
	-- the collection, which reports the node) are stored all the same.
	n := 0;
	FOR d IN SELECT p FROM pg_catalog.jsonb_array_elements(points) p LOOP
		BEGIN
			INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
			VALUES (d.p->>0, d.p->>1, (d.p->>2)::double precision, p_at);
			n := n + 1;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'thrillmon: built-in metric % not stored: %', d.p->>0, SQLERRM;
		END;
	END LOOP;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect_builtin(timestamptz) IS 'Internal: records every built-in metric at p_at (the collection slot)';

CREATE FUNCTION thrillmon._probe_collector_query(query text)
RETURNS integer
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_probe_collector_query';
COMMENT ON FUNCTION thrillmon._probe_collector_query(text) IS
	'Internal: checks, as the caller, that a collector query is one read-only SELECT returning (value) or (metric_name, value); returns its column count';

-- Its timeout cancels the query, and if the query catches the cancel and goes on (a PL/pgSQL
-- EXCEPTION WHEN query_canceled), ends its session a second later: the collector's name is then
-- left in shared memory for _defiant_collector(), and the next collection disables it.
CREATE FUNCTION thrillmon._run_collector_query(query text, owner_role name, timeout_ms integer,
	collector_name text, OUT metric_name text, OUT metric_value double precision)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_run_collector_query';
COMMENT ON FUNCTION thrillmon._run_collector_query(text, name, integer, text) IS
	'Internal: runs a collector query as its owner, read-only, under a timeout it cannot escape, in a security-restricted context';

CREATE FUNCTION thrillmon._defiant_collector()
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_defiant_collector';
COMMENT ON FUNCTION thrillmon._defiant_collector() IS
	'Internal: the collector of this database whose session was ended because it went on after its timeout''s cancel (taken once), or NULL';

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

-- register_collector()'s rules for its name (a metric name's: a one-column collector's metric
-- is named after it), category and interval, and their messages: the core's ValidateCollector.
-- A collector cannot be registered only to fail on every run.
CREATE FUNCTION thrillmon._check_collector(name text, category text, collect_interval interval)
RETURNS void
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'thrillmon_check_collector';
COMMENT ON FUNCTION thrillmon._check_collector(text, text, interval) IS
	'Internal: checks a collector''s name, category and interval (register_collector()), raising the rule''s error';

CREATE FUNCTION thrillmon.register_collector(name text, query text, category text DEFAULT 'custom',
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
	defiant text := thrillmon._defiant_collector();
BEGIN
	-- A collector that went on after its timeout cancelled it had its session ended (the last
	-- collection, or one by hand): it runs no more until someone fixes it and enables it again.
	IF defiant IS NOT NULL THEN
		UPDATE thrillmon.metric_collectors SET enabled = false,
			last_error = 'disabled by thrillmon: it went on after its statement_timeout cancelled it, so its session was ended; fix it, then set enabled = true'
		WHERE name = defiant;
	END IF;
	FOR c IN SELECT * FROM thrillmon.metric_collectors WHERE enabled ORDER BY name LOOP
		IF p_only_due AND c.last_run_at IS NOT NULL AND c.last_run_at + c.collect_interval > p_at + interval '100 milliseconds' THEN
			CONTINUE;
		END IF;
		t0 := pg_catalog.clock_timestamp();
		BEGIN
			n := 0;
			FOR r IN SELECT * FROM thrillmon._run_collector_query(c.query, c.owner_role,
				pg_catalog.ceil(EXTRACT(EPOCH FROM c.statement_timeout) * 1000)::integer, c.name)
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

-- The collection job: built-ins, the observe() aggregates, then SQL collectors. p_at is the slot
-- the points are stamped with (the worker passes its wall-clock slot so metrics line up).
CREATE FUNCTION thrillmon._collect(p_at timestamptz, p_only_due boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	nodes integer := 0;
	nodes_error text;
	builtin integer;
	observed integer;
	collectors jsonb;
BEGIN
	-- The Citus worker nodes first (a no-op without Citus), in a subtransaction of its own:
	-- whatever goes wrong asking them must not cost this node's own points; it is reported in
	-- the job's details instead.
	BEGIN
		nodes := thrillmon._collect_nodes(p_at);
	EXCEPTION WHEN OTHERS THEN
		nodes_error := SQLERRM;
	END;
	builtin := thrillmon._collect_builtin(p_at);
	observed := thrillmon._flush_observations(p_at);
	collectors := thrillmon._run_collectors(p_at, p_only_due);
	RETURN pg_catalog.jsonb_build_object('builtin_points', builtin + nodes, 'observed_points', observed, 'at', p_at)
		|| CASE WHEN nodes_error IS NULL THEN '{}'::jsonb ELSE pg_catalog.jsonb_build_object('nodes_error', nodes_error) END
		|| collectors;
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
