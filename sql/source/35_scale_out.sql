-- Scale-out on Citus (DESIGN §8, docs/scale-out.md): metric_time_series distributed by
-- metric_name, with its partitions, and everything else local on the coordinator. Citus is
-- optional: nothing here names a Citus object outside EXECUTE, so the functions exist (and say
-- what is missing) on a server without it.

-- Whether metric_time_series is distributed here. False without Citus and on a node whose Citus
-- metadata does not list it.
CREATE FUNCTION thrillmon._metrics_distributed()
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	d boolean;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
	                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''thrillmon.metric_time_series''::pg_catalog.regclass)' INTO d;
	RETURN d;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metrics_distributed() IS 'Internal: true when Citus lists metric_time_series as distributed on this node';

-- Whether any point of a metric is in (lo, hi]. A function of its own, in PL/pgSQL so that it is
-- never inlined: a statement over a local table (an alert) that also reads a distributed one is
-- a join Citus refuses in a modification; this way each probe is a query of its own, routed to
-- the one shard that holds the metric (on one node, the same index probe as before).
CREATE FUNCTION thrillmon._has_points(metric text, lo timestamptz, hi timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	RETURN EXISTS (SELECT 1 FROM thrillmon.metric_time_series m
	               WHERE m.metric_name OPERATOR(pg_catalog.=) metric AND m."timestamp" > lo AND m."timestamp" <= hi);
END
$fn$;
COMMENT ON FUNCTION thrillmon._has_points(text, timestamptz, timestamptz) IS 'Internal: whether a metric has a point in (lo, hi]';

-- The checks distribute() and undistribute() share: Citus is there and this is its coordinator.
CREATE FUNCTION thrillmon._require_citus_coordinator(caller text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	coordinator boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
		RAISE EXCEPTION 'thrillmon: %() needs the citus extension in this database', caller USING ERRCODE = '0A000',
			HINT = 'Install Citus, add citus to shared_preload_libraries, CREATE EXTENSION citus and add the worker nodes first (docs/scale-out.md).';
	END IF;
	EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
	IF NOT coordinator THEN
		RAISE EXCEPTION 'thrillmon: %() runs on the Citus coordinator only', caller USING ERRCODE = '0A000',
			HINT = 'Connect to the coordinator (citus_set_coordinator_host()) and call it there.';
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._require_citus_coordinator(text) IS 'Internal: errors unless Citus is installed and this is its coordinator';

-- Going distributed moves the points onto the worker nodes' shards, partition by partition
-- (Citus copies the rows out), then empties the coordinator's own copies: Citus leaves them on
-- disk under the shell tables, where they would feed the planner statistics retention reads and
-- take space for nothing. The partition-DDL lock is held throughout, so maintenance and
-- retention (which take it too) wait rather than create or drop a partition half-way.
CREATE FUNCTION thrillmon.distribute(shard_count integer DEFAULT 32,
	OUT relation regclass, OUT shards integer, OUT partitions integer, OUT nodes text[], OUT already_distributed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '30s'
AS $fn$
BEGIN
	PERFORM thrillmon._require_citus_coordinator('distribute');
	IF shard_count IS NULL OR shard_count < 1 OR shard_count > 64000 THEN
		RAISE EXCEPTION 'thrillmon: shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	already_distributed := thrillmon._metrics_distributed();
	IF NOT already_distributed THEN
		PERFORM thrillmon._lock_metrics_parent();
		-- colocate_with none: thrillmon's table has no partner to join with, and a shard count of
		-- its own must not be forced by (or force) another distributed table's.
		EXECUTE 'SELECT pg_catalog.create_distributed_table(''thrillmon.metric_time_series'', ''metric_name'',
		             shard_count => $1, colocate_with => ''none'')' USING shard_count;
		EXECUTE 'SELECT pg_catalog.truncate_local_data_after_distributing_table(''thrillmon.metric_time_series'')';
	END IF;
	relation := 'thrillmon.metric_time_series'::regclass;
	EXECUTE 'SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
	         WHERE s.logicalrelid OPERATOR(pg_catalog.=) ''thrillmon.metric_time_series''::pg_catalog.regclass' INTO shards;
	SELECT pg_catalog.count(*)::integer INTO partitions FROM pg_catalog.pg_inherits i
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass;
	EXECUTE 'SELECT pg_catalog.array_agg(n.nodename || '':'' || n.nodeport ORDER BY n.nodeid) FROM pg_catalog.pg_dist_node n
	         WHERE n.isactive AND n.noderole OPERATOR(pg_catalog.=) ''primary'' AND n.shouldhaveshards AND n.groupid > 0' INTO nodes;
END
$fn$;
COMMENT ON FUNCTION thrillmon.distribute(integer) IS
	'Distributes metric_time_series (its partitions and default partition) by metric_name over the Citus worker nodes, shard_count shards (default 32); the other tables stay local on the coordinator. Runs on the coordinator; calling it again changes nothing';

-- The way back. Citus' undistribute_table() recreates a table, which it refuses for an
-- extension's (and new OIDs would lose the extension membership and the grants); instead the
-- table's Citus metadata is removed as Citus' own drop trigger removes it (from the workers'
-- metadata, the shards themselves, pg_dist_partition and pg_dist_object), Citus' truncate
-- trigger goes, and the points, read back through Citus first, are written into the local
-- tables again. The workers' copies of the daily partitions go with their metadata; their copies
-- of the extension's own tables stay as the extension's (empty) tables there.
CREATE FUNCTION thrillmon.undistribute(keep_data boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '30s'
AS $fn$
DECLARE
	r record;
	n bigint := 0;
BEGIN
	PERFORM thrillmon._require_citus_coordinator('undistribute');
	IF NOT thrillmon._metrics_distributed() THEN
		RETURN 0;
	END IF;
	PERFORM thrillmon._lock_metrics_parent();
	IF keep_data THEN
		DROP TABLE IF EXISTS pg_temp.thrillmon_undistribute;
		CREATE TEMP TABLE thrillmon_undistribute ON COMMIT DROP AS SELECT * FROM thrillmon.metric_time_series;
		GET DIAGNOSTICS n = ROW_COUNT;
	END IF;
	-- Partitions first (their shards only in the metadata: dropping the parent's shards drops
	-- theirs), then the parent.
	FOR r IN
		SELECT c.oid::regclass AS rel, c.relname::text AS name, c.oid <> 'thrillmon.metric_time_series'::regclass AS is_partition
		FROM pg_catalog.pg_class c
		WHERE c.oid = 'thrillmon.metric_time_series'::regclass
		   OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass)
		ORDER BY 3 DESC, 2
	LOOP
		EXECUTE 'SELECT pg_catalog.master_remove_distributed_table_metadata_from_workers($1, $2, $3)'
			USING r.rel, 'thrillmon', r.name;
		EXECUTE 'SELECT pg_catalog.citus_drop_all_shards($1, $2, $3, $4)' USING r.rel, 'thrillmon', r.name, r.is_partition;
		EXECUTE 'SELECT pg_catalog.master_remove_partition_metadata($1, $2, $3)' USING r.rel, 'thrillmon', r.name;
		EXECUTE 'SELECT pg_catalog.citus_unmark_object_distributed(''pg_catalog.pg_class''::pg_catalog.regclass, $1, 0, false)'
			USING r.rel::oid;
	END LOOP;
	-- Citus names its truncate trigger after the trigger's OID, so it is found by its function.
	FOR r IN
		SELECT t.tgname, t.tgrelid::regclass AS rel
		FROM pg_catalog.pg_trigger t
		WHERE t.tgfoid = 'pg_catalog.citus_truncate_trigger()'::regprocedure
		  AND (t.tgrelid = 'thrillmon.metric_time_series'::regclass
		       OR t.tgrelid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass))
	LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
	END LOOP;
	TRUNCATE thrillmon.metric_time_series;
	IF keep_data THEN
		INSERT INTO thrillmon.metric_time_series SELECT * FROM pg_temp.thrillmon_undistribute;
		DROP TABLE pg_temp.thrillmon_undistribute;
	END IF;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon.undistribute(boolean) IS
	'Makes metric_time_series a local table of the coordinator again: removes its shards from every node and its Citus metadata, and (keep_data, the default) brings its points back first; returns the points kept. Runs on the coordinator; a no-op when it is not distributed';

-- DROP EXTENSION thrillmon while the table is distributed: Citus' drop trigger cannot drop an
-- extension's distributed partitioned table (it errors on the workers), so the extension takes
-- the table back first, without its points (they go with the extension). Event triggers see no
-- object list at ddl_command_start, so the statement is read: one DROP EXTENSION naming
-- thrillmon. Anything it cannot read surely (a multi-statement string) is refused with the way
-- out, rather than guessed at: a wrong guess would discard the points.
CREATE FUNCTION thrillmon._on_drop_extension()
RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	q text := pg_catalog.btrim(pg_catalog.current_query(), E' \t\r\n;');
	names text;
BEGIN
	IF NOT thrillmon._metrics_distributed() THEN
		RETURN;
	END IF;
	IF q !~* '^drop\s+extension\s' OR pg_catalog.strpos(q, ';') > 0 THEN
		IF q ~* '\mthrillmon\M' THEN
			RAISE EXCEPTION 'thrillmon: metric_time_series is distributed; run SELECT thrillmon.undistribute() before dropping the extension'
				USING ERRCODE = '55000';
		END IF;
		RETURN;
	END IF;
	names := pg_catalog.regexp_replace(q, '^drop\s+extension\s+(if\s+exists\s+)?(.*?)(\s+(cascade|restrict))?$', '\2', 'i');
	IF EXISTS (SELECT 1 FROM pg_catalog.regexp_split_to_table(names, '\s*,\s*') AS n(name)
	           WHERE pg_catalog.lower(pg_catalog.btrim(n.name, '"')) = 'thrillmon') THEN
		PERFORM thrillmon.undistribute(keep_data => false);
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._on_drop_extension() IS 'Internal: before DROP EXTENSION thrillmon, takes metric_time_series back from Citus';
CREATE EVENT TRIGGER thrillmon_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION thrillmon._on_drop_extension();

-- The distinct metric names with a point in [p_from, p_to], in name order, at most p_max. One
-- node finds them by a skip scan of the (metric_name, timestamp) indexes (a recursive CTE: the
-- names without reading every point); Citus plans no recursive CTE over a distributed table
-- without a filter on metric_name, so there each shard finds its own distinct names (in
-- parallel) and the coordinator merges them. report() and the postgres_exporter queries use it.
CREATE FUNCTION thrillmon._metric_names(p_from timestamptz, p_to timestamptz, p_max integer)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF thrillmon._metrics_distributed() THEN
		RETURN QUERY SELECT DISTINCT t.metric_name FROM thrillmon.metric_time_series t
			WHERE t."timestamp" >= p_from AND t."timestamp" <= p_to ORDER BY 1 LIMIT p_max;
		RETURN;
	END IF;
	RETURN QUERY
	WITH RECURSIVE n(metric_name) AS (
		SELECT pg_catalog.min(t.metric_name) FROM thrillmon.metric_time_series t
		WHERE t."timestamp" >= p_from AND t."timestamp" <= p_to
		UNION ALL
		SELECT (SELECT pg_catalog.min(t.metric_name) FROM thrillmon.metric_time_series t
			WHERE t.metric_name > n.metric_name AND t."timestamp" >= p_from AND t."timestamp" <= p_to)
		FROM n WHERE n.metric_name IS NOT NULL)
	SELECT n.metric_name FROM n WHERE n.metric_name IS NOT NULL LIMIT p_max;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metric_names(timestamptz, timestamptz, integer) IS
	'Internal: the distinct metric names with points in [p_from, p_to], in name order, at most p_max';

-- The latest point of each of the first p_max metric names (in name order) with points in
-- [p_from, p_to]. One node: an index probe a name. Distributed: a correlated LATERAL probe per
-- name is not something Citus plans, but DISTINCT ON the distribution column is pushed down
-- to the shards whole.
CREATE FUNCTION thrillmon._latest_points(p_from timestamptz, p_to timestamptz, p_max integer)
RETURNS TABLE (metric_name text, metric_category text, metric_value double precision, "timestamp" timestamptz, metadata jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	names text[] := ARRAY(SELECT thrillmon._metric_names(p_from, p_to, p_max));
BEGIN
	IF thrillmon._metrics_distributed() THEN
		RETURN QUERY SELECT DISTINCT ON (t.metric_name) t.metric_name, t.metric_category, t.metric_value, t."timestamp", t.metadata
			FROM thrillmon.metric_time_series t
			WHERE t.metric_name = ANY (names) AND t."timestamp" >= p_from AND t."timestamp" <= p_to
			ORDER BY t.metric_name, t."timestamp" DESC;
		RETURN;
	END IF;
	RETURN QUERY SELECT n.name, l.metric_category, l.metric_value, l."timestamp", l.metadata
		FROM pg_catalog.unnest(names) n(name)
		CROSS JOIN LATERAL (
			SELECT t.metric_category, t.metric_value, t."timestamp", t.metadata FROM thrillmon.metric_time_series t
			WHERE t.metric_name = n.name AND t."timestamp" >= p_from AND t."timestamp" <= p_to
			ORDER BY t."timestamp" DESC LIMIT 1) l
		ORDER BY n.name;
END
$fn$;
COMMENT ON FUNCTION thrillmon._latest_points(timestamptz, timestamptz, integer) IS
	'Internal: the latest point in [p_from, p_to] of each of the first p_max metric names with points there';

-- One system point, in a subtransaction of its own: its metric's shard may be on the node that
-- is down (its points are lost with it; the others go on). Returns 1 if stored, else 0.
CREATE FUNCTION thrillmon._store_point(p_name text, p_value double precision, p_at timestamptz, p_metadata jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp", metadata)
	VALUES (p_name, 'system', p_value, p_at, p_metadata);
	RETURN 1;
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'thrillmon: metric % not stored: %', p_name, SQLERRM;
	RETURN 0;
END
$fn$;
COMMENT ON FUNCTION thrillmon._store_point(text, double precision, timestamptz, jsonb) IS
	'Internal: stores one system point, or warns and returns 0 when its shard cannot take it';

-- The cluster watched as a cluster: on a Citus coordinator with worker nodes, each collection
-- asks every active worker node, in one round (Citus' run_command_on_workers, in parallel, a node
-- that does not answer reported as a failure rather than an error), for its client connections,
-- its database's size (its shards are in it) and its replicas' lag, recorded as METRIC@host:port;
-- and, when every node answered, cluster_database_size_bytes (the coordinator and the workers).
-- A node that fails two collections in a row raises an alert of its own (node_down, critical,
-- one per node), resolved by its next answer; health_check() reports it failing meanwhile.
-- Collection goes on for the other nodes. Returns the points recorded.
CREATE FUNCTION thrillmon._collect_nodes(p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	r record;
	v record;
	this_node text;
	parts text[];
	n integer := 0;
	total numeric := pg_catalog.pg_database_size(pg_catalog.current_database());
	everyone boolean := true;
	failures integer;
	al thrillmon.system_alerts;
	is_coordinator boolean;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL
	   OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
		RETURN 0;
	END IF;
	EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO is_coordinator;
	IF NOT is_coordinator THEN
		RETURN 0;
	END IF;
	-- A node that is down refuses the connection at once; one that hangs would hold collection
	-- for Citus' default 30 s, so each connection gets 5 s (this transaction only).
	PERFORM pg_catalog.set_config('citus.node_connection_timeout', '5000', true);
	FOR r IN EXECUTE $q$
		SELECT w.nodename || ':' || w.nodeport AS node, w.success, w.result
		FROM pg_catalog.run_command_on_workers($c$SELECT pg_catalog.concat_ws(',',
			(SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a
			 WHERE a.datname = pg_catalog.current_database() AND a.backend_type = 'client backend'),
			pg_catalog.pg_database_size(pg_catalog.current_database()),
			(SELECT pg_catalog.max(EXTRACT(EPOCH FROM coalesce(s.replay_lag, interval '0'))) FROM pg_catalog.pg_stat_replication s))$c$) w
		ORDER BY 1 $q$
	LOOP
		this_node := r.node;
		IF r.success THEN
			parts := pg_catalog.string_to_array(r.result, ',');
			FOR v IN SELECT x.name || '@' || this_node AS name, x.value
				FROM (VALUES ('database_connections', parts[1]::double precision), ('database_size_bytes', parts[2]::double precision),
				             ('replication_lag_seconds', parts[3]::double precision)) x(name, value)
				WHERE x.value IS NOT NULL
			LOOP
				n := n + thrillmon._store_point(v.name, v.value, p_at, pg_catalog.jsonb_build_object('node', this_node));
			END LOOP;
			total := total + parts[2]::numeric;
			INSERT INTO thrillmon.node_state AS s (node, consecutive_failures, last_success_at) VALUES (this_node, 0, p_at)
			ON CONFLICT (node) DO UPDATE SET consecutive_failures = 0, last_success_at = p_at;
			FOR al IN UPDATE thrillmon.system_alerts s SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
					metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
				WHERE s.fingerprint = 'node_down:' || this_node AND s.resolved_at IS NULL
				RETURNING s.*
			LOOP
				PERFORM thrillmon._notify_alert(al, 'resolved');
			END LOOP;
		ELSE
			everyone := false;
			INSERT INTO thrillmon.node_state AS s (node, consecutive_failures, last_failure_at, last_error)
			VALUES (this_node, 1, p_at, pg_catalog.left(r.result, 1000))
			ON CONFLICT (node) DO UPDATE SET consecutive_failures = s.consecutive_failures + 1, last_failure_at = p_at,
				last_error = pg_catalog.left(r.result, 1000)
			RETURNING s.consecutive_failures INTO failures;
			IF failures >= 2 AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s
			                                 WHERE s.fingerprint = 'node_down:' || this_node AND s.resolved_at IS NULL) THEN
				INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, fingerprint)
				VALUES ('node_down', 'critical',
					pg_catalog.left(pg_catalog.format('Citus worker node %s does not answer (%s collections in a row): %s',
						this_node, failures, r.result), 2000),
					pg_catalog.jsonb_build_object('node', this_node, 'error', pg_catalog.left(r.result, 1000), 'category', 'system'),
					'node_down:' || this_node)
				RETURNING * INTO al;
				PERFORM thrillmon._notify_alert(al, 'new');
			END IF;
		END IF;
	END LOOP;
	-- Nodes removed from the cluster are no longer watched.
	EXECUTE 'DELETE FROM thrillmon.node_state s WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node d
	         WHERE d.nodename || '':'' || d.nodeport = s.node AND d.isactive AND d.groupid > 0)';
	IF everyone AND this_node IS NOT NULL THEN
		n := n + thrillmon._store_point('cluster_database_size_bytes', total::double precision, p_at, NULL);
	END IF;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect_nodes(timestamptz) IS
	'Internal: on a Citus coordinator, records each worker node''s health (METRIC@host:port) and raises node_down for a node that misses two collections';
