-- Partitions: metric_time_series has one partition per UTC day, made ahead of time and for
-- backfilled days by maintain_partitions() (the worker runs it hourly). The day arithmetic is the
-- core's (src/core/partitions.cpp); the DDL is src/pg/partitions.cpp.

-- Creating or dropping a partition needs an ACCESS EXCLUSIVE lock on the parent, and only on the
-- parent (LOCK TABLE ONLY): locking every partition would make one partition under VACUUM, whose
-- lock conflicts, fail every try. NOWAIT would succeed only at an instant when no insert at all
-- is in flight, which steady ingest may never leave; queueing for the lock gets it as soon as the
-- inserts in flight commit (they are short), while inserts arriving meanwhile wait behind it. So
-- each try queues for at most 50 ms, which bounds how long an insert waits for it, and a long
-- transaction in the way is waited out by retrying until the caller's lock_timeout.
-- The partitions the caller changes (`also`: the ones retention drops, the default partition
-- maintenance moves rows out of) are locked after the parent, in the same try, without waiting:
-- a writer takes the parent's lock and then its partition's, so taking a partition's first
-- deadlocked with a writer into it until lock_timeout; and waiting for one (an autovacuum of it)
-- while holding the parent's would stall every insert. A busy one gives the parent's lock back
-- with the try, and the next try takes both again.
CREATE FUNCTION thrillmon._lock_metrics_parent(also regclass[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- The caller's lock_timeout (the cleanup and maintenance functions set 5 s), or 5 s if none.
	deadline timestamptz := pg_catalog.clock_timestamp()
		+ coalesce(NULLIF(pg_catalog.current_setting('lock_timeout')::interval, interval '0'), interval '5 s');
	caller_timeout text := pg_catalog.current_setting('lock_timeout');
	holders text;
	r regclass;
BEGIN
	LOOP
		BEGIN
			-- Local to this function (it has a SET clause): the caller's value is back on return.
			PERFORM pg_catalog.set_config('lock_timeout', '50ms', true);
			LOCK TABLE ONLY thrillmon.metric_time_series IN ACCESS EXCLUSIVE MODE;
			IF also IS NOT NULL THEN
				FOREACH r IN ARRAY also LOOP
					EXECUTE pg_catalog.format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE NOWAIT', r);
				END LOOP;
			END IF;
			RETURN;
		EXCEPTION WHEN lock_not_available THEN
			IF pg_catalog.clock_timestamp() >= deadline THEN
				-- Say who: a DBA reading the job history should not have to catch it in pg_locks.
				SELECT pg_catalog.string_agg(pg_catalog.format('pid %s (%s on %s, %s%s)', l.pid, l.mode, l.relation::pg_catalog.regclass,
				           coalesce(a.backend_type, '?'), coalesce(': ' || pg_catalog.left(a.query, 60), '')), '; ' ORDER BY l.pid)
				INTO holders
				FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'relation' AND l.granted
				  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
				  AND l.relation OPERATOR(pg_catalog.=) ANY (ARRAY['thrillmon.metric_time_series'::pg_catalog.regclass::pg_catalog.oid]
				      OPERATOR(pg_catalog.||) coalesce(also::pg_catalog.oid[], '{}'))
				  AND l.pid <> pg_catalog.pg_backend_pid();
				RAISE EXCEPTION 'thrillmon: could not lock thrillmon.metric_time_series within lock_timeout (%): another session holds a lock on it',
					caller_timeout USING ERRCODE = '55P03',
					DETAIL = 'Held by: ' || coalesce(holders, 'none seen (released meanwhile)') || '.',
					HINT = 'See pg_locks; the next run will try again.';
			END IF;
			-- Let the inserts that queued behind this try through before the next one.
			PERFORM pg_catalog.pg_sleep(0.02);
		END;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._lock_metrics_parent(regclass[]) IS
	'Internal: takes the partition-DDL lock on metric_time_series (and, without waiting, on the partitions the caller changes) without making inserts queue behind a wait';

-- How many partitions exist is the configuration's to decide, not a writer's: partitions are
-- made only for the days from the metrics policy's cut-off to premake_days ahead (the core's
-- PlanMaintenance), at most 32 a run, each run a transaction of its own. Rows dated outside that
-- reach wait in the default partition (health_check() says so); the worker runs maintenance
-- again at once while days within reach are waiting.
CREATE FUNCTION thrillmon._maintain_partitions(premake_days integer, OUT created text[], OUT rows_moved bigint,
	OUT days_waiting bigint, OUT rows_ahead bigint, OUT rows_expired bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_maintain_partitions_internal';
COMMENT ON FUNCTION thrillmon._maintain_partitions(integer) IS 'Internal: partition DDL of maintain_partitions()';

CREATE FUNCTION thrillmon._maintain_partitions_run(premake_days integer)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.jsonb_build_object('created', pg_catalog.to_jsonb(m.created), 'rows_moved', m.rows_moved,
		'days_waiting', m.days_waiting, 'rows_ahead', m.rows_ahead, 'rows_expired', m.rows_expired)
	FROM thrillmon._maintain_partitions(premake_days) m
$fn$;
COMMENT ON FUNCTION thrillmon._maintain_partitions_run(integer) IS 'Internal: the partition maintenance job body';

CREATE FUNCTION thrillmon.maintain_partitions(premake_days integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	result jsonb := thrillmon._maintain_partitions_run(premake_days);
BEGIN
	PERFORM thrillmon._job_record('maintenance', 'partitions', started, 'succeeded',
		pg_catalog.jsonb_array_length(result->'created')::bigint, result, NULL);
	RETURN result;
END
$fn$;
COMMENT ON FUNCTION thrillmon.maintain_partitions(integer) IS
	'Creates daily partitions from yesterday to premake_days (default thrillmon.partition_premake_days) ahead, and for the days within the metrics retention that have rows waiting in the default partition (moving them in), at most 32 a call; ANALYZEs days that are over so retention can count their rows from statistics';
