-- Retention: the origin's cleanup functions (names, signatures, defaults), one run each recorded
-- in job_runs, and run_data_retention_cleanup(), which runs every enabled policy of
-- retention_policies in one job. Metrics go by whole daily partitions (src/pg/partitions.cpp,
-- the plan is the core's); the other targets are small and deleted by row. retention_stats is the
-- origin's "Data Retention panel".

-- "N days" is exactly N x 24 hours before the transaction's start, whatever the session's
-- TimeZone (the core's RetentionCutoff); 1..@limit:retention_days_max@ days, else a clear error.
CREATE FUNCTION thrillmon._retention_cutoff(days integer, argument_name text)
RETURNS timestamptz
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'thrillmon_retention_cutoff';
COMMENT ON FUNCTION thrillmon._retention_cutoff(integer, text) IS
	'Internal: validates retention days (1..@limit:retention_days_max@) and returns now() minus that many 24-hour days';

CREATE FUNCTION thrillmon._cleanup_metrics(cutoff timestamptz,
	OUT partitions_dropped text[], OUT rows_dropped bigint, OUT rows_deleted bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_cleanup_metrics_internal';
COMMENT ON FUNCTION thrillmon._cleanup_metrics(timestamptz) IS
	'Internal: drops the daily partitions whose UTC day ended at or before cutoff (their rows counted from exact statistics, else with count(*)), deletes older rows in the default partition';

CREATE FUNCTION thrillmon._cleanup_metrics_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	r record;
BEGIN
	SELECT * INTO r FROM thrillmon._cleanup_metrics(cutoff);
	RETURN pg_catalog.jsonb_build_object(
		'removed', r.rows_dropped + r.rows_deleted,
		'cutoff', cutoff,
		'partitions_dropped', pg_catalog.to_jsonb(r.partitions_dropped),
		'rows_in_dropped_partitions', r.rows_dropped,
		'rows_deleted', r.rows_deleted);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_metrics_run(integer) IS 'Internal: metric retention, returns what it did';

CREATE FUNCTION thrillmon._cleanup_anomalies_run(days integer, archive_after integer, archive_retention integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	archive_cutoff timestamptz := thrillmon._retention_cutoff(archive_after, 'archive_after_days');
	purge_cutoff timestamptz := thrillmon._retention_cutoff(archive_retention, 'archive_retention_days');
	n_archived bigint;
	n_deleted bigint;
	n_purged bigint;
BEGIN
	-- Archive resolved anomalies: no alert was raised, or their alert is resolved (or gone).
	WITH moved AS (
		DELETE FROM thrillmon.anomaly_detections a
		WHERE a.detected_at < archive_cutoff
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.id = a.alert_id AND s.resolved_at IS NULL)
		RETURNING a.*
	)
	INSERT INTO thrillmon.anomaly_detections_archive
		(id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		 confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created,
		 alert_id, metadata)
	SELECT id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created,
		alert_id, metadata
	FROM moved;
	GET DIAGNOSTICS n_archived = ROW_COUNT;

	-- What is left past retention is unresolved: delete it.
	DELETE FROM thrillmon.anomaly_detections WHERE detected_at < cutoff;
	GET DIAGNOSTICS n_deleted = ROW_COUNT;

	DELETE FROM thrillmon.anomaly_detections_archive WHERE detected_at < purge_cutoff;
	GET DIAGNOSTICS n_purged = ROW_COUNT;

	RETURN pg_catalog.jsonb_build_object('removed', n_archived + n_deleted, 'archived', n_archived,
		'deleted', n_deleted, 'archive_purged', n_purged, 'cutoff', cutoff, 'archive_cutoff', archive_cutoff,
		'archive_purge_cutoff', purge_cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_anomalies_run(integer, integer, integer) IS 'Internal: anomaly retention and archiving';

CREATE FUNCTION thrillmon._cleanup_alerts_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	n bigint;
BEGIN
	-- Only alerts resolved before the cut-off, and never one that an unfinished incident links.
	DELETE FROM thrillmon.system_alerts a
	WHERE a.resolved_at IS NOT NULL AND a.resolved_at < cutoff
	  AND NOT EXISTS (
		SELECT 1 FROM thrillmon.incident_alerts ia JOIN thrillmon.incidents i ON i.id = ia.incident_id
		WHERE ia.alert_id = a.id AND i.status IN (@list:incident_status_unfinished@));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n, 'cutoff', cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_alerts_run(integer) IS 'Internal: alert retention';

CREATE FUNCTION thrillmon._cleanup_incidents_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	n bigint;
BEGIN
	-- Aged from when it ended: the later of resolved_at and closed_at.
	DELETE FROM thrillmon.incidents
	WHERE status IN ('resolved', 'closed') AND greatest(resolved_at, closed_at) < cutoff;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n, 'cutoff', cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_incidents_run(integer) IS 'Internal: incident retention';

CREATE FUNCTION thrillmon._cleanup_job_history_run(days integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	failed_cutoff timestamptz := thrillmon._retention_cutoff(coalesce(failed_days, days), 'failed_retention_days');
	n_ok bigint;
	n_failed bigint;
BEGIN
	-- Failures are kept longer than successes: they are what a DBA comes looking for.
	DELETE FROM thrillmon.job_runs WHERE status IN ('succeeded', 'skipped') AND started_at < cutoff;
	GET DIAGNOSTICS n_ok = ROW_COUNT;
	DELETE FROM thrillmon.job_runs WHERE status = 'failed' AND started_at < failed_cutoff;
	GET DIAGNOSTICS n_failed = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n_ok + n_failed, 'cutoff', cutoff, 'failed_cutoff', failed_cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_job_history_run(integer, integer) IS 'Internal: job history retention';

CREATE FUNCTION thrillmon._cleanup_deliveries_run(days integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	failed_cutoff timestamptz := thrillmon._retention_cutoff(coalesce(failed_days, days), 'failed_retention_days');
	n_ok bigint;
	n_dead bigint;
	n_attempts bigint;
	n_silences bigint;
BEGIN
	-- Like job history: dead deliveries (alerts nobody was told of) are kept longer. Pending ones
	-- are never removed here (they go dead after thrillmon.delivery_max_age first). A delivery's
	-- attempts go with it; re-sends and tests, and silences that ended, by their own time.
	DELETE FROM thrillmon.deliveries WHERE status = 'delivered' AND finished_at < cutoff;
	GET DIAGNOSTICS n_ok = ROW_COUNT;
	DELETE FROM thrillmon.deliveries WHERE status = 'dead' AND finished_at < failed_cutoff;
	GET DIAGNOSTICS n_dead = ROW_COUNT;
	DELETE FROM thrillmon.delivery_attempts WHERE delivery_id IS NULL AND attempted_at < cutoff;
	GET DIAGNOSTICS n_attempts = ROW_COUNT;
	DELETE FROM thrillmon.silence_rules WHERE LEAST(ends_at, coalesce(expired_at, ends_at)) < cutoff;
	GET DIAGNOSTICS n_silences = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n_ok + n_dead, 'cutoff', cutoff, 'failed_cutoff', failed_cutoff,
		'attempts_removed', n_attempts, 'silences_removed', n_silences);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_deliveries_run(integer, integer) IS 'Internal: delivery retention (the outbox, re-sends and tests, ended silences)';

-- One retention target with explicit settings: the body shared by the single-target functions
-- and the full cleanup.
CREATE FUNCTION thrillmon._cleanup_target(target text, days integer, archive_after integer,
	archive_retention integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	RETURN CASE target
		WHEN 'metrics' THEN thrillmon._cleanup_metrics_run(days)
		WHEN 'anomalies' THEN thrillmon._cleanup_anomalies_run(days, coalesce(archive_after, 7), coalesce(archive_retention, 90))
		WHEN 'alerts' THEN thrillmon._cleanup_alerts_run(days)
		WHEN 'incidents' THEN thrillmon._cleanup_incidents_run(days)
		WHEN 'job_history' THEN thrillmon._cleanup_job_history_run(days, failed_days)
		WHEN 'deliveries' THEN thrillmon._cleanup_deliveries_run(days, failed_days)
	END;
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_target(text, integer, integer, integer, integer) IS 'Internal: one retention target';

-- A single-target cleanup called by hand: retention_days from the caller, the target's other
-- settings (archive) from its policy; one job run recorded.
CREATE FUNCTION thrillmon._cleanup_one(target_name text, days integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	p thrillmon.retention_policies;
	r jsonb;
BEGIN
	SELECT * INTO p FROM thrillmon.retention_policies rp WHERE rp.target = target_name;
	r := thrillmon._cleanup_target(target_name, days, p.archive_after_days, p.archive_retention_days, p.failed_retention_days);
	PERFORM thrillmon._job_record('retention', target_name, started, 'succeeded', (r->>'removed')::bigint, r, NULL);
	RETURN (r->>'removed')::bigint;
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_one(text, integer) IS 'Internal: a single-target cleanup, recorded';

-- The public cleanup functions: the origin's names, signatures and defaults. Each is one run,
-- recorded in job_runs. SECURITY DEFINER because dropping a partition needs its owner.
CREATE FUNCTION thrillmon.cleanup_old_metrics(retention_days integer DEFAULT 30)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
AS $fn$ SELECT thrillmon._cleanup_one('metrics', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_metrics(integer) IS
	'Removes metric points by whole UTC days: drops the daily partitions whose day ended more than retention_days x 24 h ago (so a point goes when between retention_days and retention_days + 1 day old), and older points waiting in the default partition; returns rows removed';

CREATE FUNCTION thrillmon.cleanup_old_anomalies(retention_days integer DEFAULT 30)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('anomalies', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_anomalies(integer) IS
	'Archives resolved anomalies older than archive_after_days (7), deletes anomalies older than retention_days, purges the archive past archive_retention_days (90); returns rows removed from the live table (archived + deleted)';

CREATE FUNCTION thrillmon.cleanup_old_alerts(retention_days integer DEFAULT 90)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('alerts', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_alerts(integer) IS
	'Deletes alerts resolved more than retention_days ago, except those linked to an open or investigating incident; returns rows removed';

CREATE FUNCTION thrillmon.cleanup_old_incidents(retention_days integer DEFAULT 90)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('incidents', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_incidents(integer) IS
	'Deletes resolved or closed incidents that ended more than retention_days ago (with their alert links); returns rows removed';

-- Every enabled policy, each target in its own subtransaction; the body the worker runs too.
CREATE FUNCTION thrillmon._retention_all()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- Metrics go last: dropping a partition locks the parent table against inserts until
	-- commit, so the less the transaction does after it, the shorter ingest waits.
	order_of_targets text[] := ARRAY['anomalies', 'alerts', 'incidents', 'job_history', 'deliveries', 'metrics'];
	started timestamptz := pg_catalog.clock_timestamp();
	target_name text;
	p thrillmon.retention_policies;
	t0 timestamptz;
	r jsonb;
	targets jsonb := '{}';
	total bigint := 0;
	failures text[] := '{}';
	holder integer;
BEGIN
	-- One full cleanup at a time. The lock (a row lock of job_locks) is transaction-scoped, so it
	-- cannot outlive a caller that errors out; a second caller returns at once, saying so, instead
	-- of queueing. The holder is the backend whose transaction locked the row (its xmax).
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = @job_lock:retention_cleanup@ FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		SELECT k.pid INTO holder FROM pg_catalog.pg_locks k
		WHERE k.locktype = 'transactionid' AND k.mode = 'ExclusiveLock' AND k.granted
		  AND k.transactionid = (SELECT l.xmax FROM thrillmon.job_locks l WHERE l.name = @job_lock:retention_cleanup@)
		LIMIT 1;
		RETURN pg_catalog.jsonb_build_object('status', 'skipped', 'removed', 0,
			'reason', pg_catalog.format('another run_data_retention_cleanup() is in progress (pid %s)', coalesce(holder::text, 'unknown')));
	END IF;

	FOREACH target_name IN ARRAY order_of_targets LOOP
		SELECT * INTO p FROM thrillmon.retention_policies rp WHERE rp.target = target_name;
		IF NOT FOUND THEN
			targets := targets || pg_catalog.jsonb_build_object(target_name, pg_catalog.jsonb_build_object('status', 'no policy'));
			CONTINUE;
		ELSIF NOT p.enabled THEN
			targets := targets || pg_catalog.jsonb_build_object(target_name, pg_catalog.jsonb_build_object('status', 'disabled'));
			CONTINUE;
		END IF;
		t0 := pg_catalog.clock_timestamp();
		-- Each target in its own subtransaction: one that fails (say, a lock it cannot get in
		-- time) is rolled back and reported, and the others still run.
		BEGIN
			r := thrillmon._cleanup_target(target_name, p.retention_days, p.archive_after_days,
				p.archive_retention_days, p.failed_retention_days);
			r := r || pg_catalog.jsonb_build_object('status', 'succeeded', 'retention_days', p.retention_days);
			total := total + (r->>'removed')::bigint;
		EXCEPTION WHEN OTHERS THEN
			r := pg_catalog.jsonb_build_object('status', 'failed', 'error', SQLERRM, 'sqlstate', SQLSTATE,
				'retention_days', p.retention_days);
			failures := failures || pg_catalog.format('%s: %s', target_name, SQLERRM);
		END;
		r := r || pg_catalog.jsonb_build_object('duration_ms',
			pg_catalog.round((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - t0) * 1000)::numeric, 3));
		targets := targets || pg_catalog.jsonb_build_object(target_name, r);
	END LOOP;

	RETURN pg_catalog.jsonb_build_object(
		'status', CASE WHEN pg_catalog.cardinality(failures) = 0 THEN 'succeeded' ELSE 'failed' END,
		'removed', total,
		'duration_ms', pg_catalog.round((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - started) * 1000)::numeric, 3),
		'targets', targets,
		'error', NULLIF(pg_catalog.array_to_string(failures, '; '), ''));
END
$fn$;
COMMENT ON FUNCTION thrillmon._retention_all() IS 'Internal: the body of the full retention cleanup';

CREATE FUNCTION thrillmon.run_data_retention_cleanup()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	result jsonb := thrillmon._retention_all();
	run_id bigint;
BEGIN
	IF result->>'status' = 'skipped' THEN
		RAISE NOTICE 'thrillmon: %', result->>'reason';
	END IF;
	run_id := thrillmon._job_record('retention', 'all', started, result->>'status', (result->>'removed')::bigint,
		result - 'error', result->>'error');
	RETURN (result - 'error') || pg_catalog.jsonb_build_object('run_id', run_id);
END
$fn$;
COMMENT ON FUNCTION thrillmon.run_data_retention_cleanup() IS
	'Runs every enabled retention policy in one job recorded in job_runs; returns per-target counts and durations. A concurrent second call returns at once with status "skipped"';

-- Metric figures without scanning millions of rows: rows come from each partition's planner
-- statistics (pg_class.reltuples), except that partitions never analysed yet and the default
-- partition are counted exactly. Rows past retention are what a cleanup would remove now: the
-- daily partitions whose day ended by the cut-off, whole, and the default partition's older rows
-- (the partition holding the cut-off goes only once its own day has expired). Oldest and newest
-- read one partition at a time.
CREATE FUNCTION thrillmon._metric_retention_stats(
	OUT row_count bigint, OUT total_bytes bigint, OUT oldest timestamptz, OUT newest timestamptz,
	OUT rows_past_retention bigint, OUT partitions integer)
-- SECURITY DEFINER: it reads the daily partitions directly (ONLY, one at a time), which readers
-- have no grant on (they read through the parent); it returns only aggregates.
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	days integer;
	cutoff timestamptz;
	part record;
	n bigint;
	n_past bigint;
	lo timestamptz;
	hi timestamptz;
	-- Distributed (Citus), the coordinator's partitions are empty shells: their statistics and
	-- sizes say nothing. Rows are counted (Citus runs the count on every shard) and sizes summed
	-- over the shards.
	distributed boolean := thrillmon._metrics_distributed();
	bytes bigint;
BEGIN
	SELECT p.retention_days INTO days FROM thrillmon.retention_policies p WHERE p.target = 'metrics';
	cutoff := thrillmon._retention_cutoff(coalesce(days, 30), 'retention_days');
	row_count := 0;
	total_bytes := 0;
	rows_past_retention := 0;
	partitions := 0;
	FOR part IN
		SELECT c.oid::regclass AS rel, c.relname, c.reltuples,
			CASE WHEN c.relname ~ '^metric_time_series_p[0-9]{8}$'
				THEN pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 21), 'YYYYMMDD')::date END AS day
		FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass
		ORDER BY c.relname
	LOOP
		partitions := partitions + 1;
		IF distributed THEN
			EXECUTE 'SELECT pg_catalog.citus_total_relation_size($1)' INTO bytes USING part.rel;
		ELSE
			bytes := pg_catalog.pg_total_relation_size(part.rel);
		END IF;
		total_bytes := total_bytes + bytes;
		IF part.reltuples >= 0 AND part.relname <> 'metric_time_series_default' AND NOT distributed THEN
			n := part.reltuples::bigint;
		ELSE
			EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s', part.rel) INTO n;
		END IF;
		row_count := row_count + n;
		-- What a cleanup would remove now: the daily partitions whose day has ended by the
		-- cut-off, whole, and the default partition's rows older than it. The partition holding
		-- the cut-off is kept whole, so its older rows are not past retention yet.
		IF part.relname = 'metric_time_series_default' THEN
			EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s WHERE "timestamp" < $1', part.rel) INTO n_past USING cutoff;
			rows_past_retention := rows_past_retention + n_past;
		ELSIF part.day IS NOT NULL AND (part.day::timestamp AT TIME ZONE 'UTC') + interval '1 day' <= cutoff THEN
			rows_past_retention := rows_past_retention + n;
		END IF;
		IF n > 0 OR part.day IS NULL THEN
			EXECUTE pg_catalog.format('SELECT min("timestamp"), max("timestamp") FROM ONLY %s', part.rel) INTO lo, hi;
			-- Partitions come in day order, so only the first non-empty one can hold the oldest
			-- point; the newest is re-read per non-empty partition but each read is one partition.
			oldest := CASE WHEN oldest IS NULL THEN lo ELSE least(oldest, lo) END;
			newest := CASE WHEN newest IS NULL THEN hi ELSE greatest(newest, hi) END;
		END IF;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metric_retention_stats() IS 'Internal: metric figures for retention_stats';

CREATE FUNCTION thrillmon._last_cleanup(target_name text,
	OUT last_cleanup_at timestamptz, OUT last_cleanup_status text, OUT last_cleanup_removed bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT j.finished_at,
		coalesce(j.details->'targets'->target_name->>'status', j.status),
		CASE WHEN j.target = 'all' THEN (j.details->'targets'->target_name->>'removed')::bigint ELSE j.rows_affected END
	FROM thrillmon.job_runs j
	WHERE j.job = 'retention' AND j.status <> 'skipped'
	  AND (j.target = target_name OR (j.target = 'all' AND j.details->'targets' ? target_name))
	ORDER BY j.started_at DESC
	LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._last_cleanup(text) IS 'Internal: the last retention run that covered a target';

CREATE VIEW thrillmon.retention_stats AS
WITH policy AS (
	SELECT p.target, p.retention_days, p.archive_after_days, p.archive_retention_days, p.failed_retention_days, p.enabled,
		thrillmon._retention_cutoff(p.retention_days, 'retention_days') AS cutoff
	FROM thrillmon.retention_policies p
),
m AS (SELECT * FROM thrillmon._metric_retention_stats()),
figures AS (
	SELECT 'metrics'::text AS target, 'thrillmon.metric_time_series'::text AS table_name, m.row_count AS row_count,
		NOT thrillmon._metrics_distributed() AS rows_estimated, m.total_bytes, m.oldest, m.newest, m.rows_past_retention
	FROM m
	UNION ALL
	SELECT 'anomalies', 'thrillmon.anomaly_detections', (SELECT count(*) FROM thrillmon.anomaly_detections), false,
		pg_catalog.pg_total_relation_size('thrillmon.anomaly_detections'),
		(SELECT min(detected_at) FROM thrillmon.anomaly_detections), (SELECT max(detected_at) FROM thrillmon.anomaly_detections),
		(SELECT count(*) FROM thrillmon.anomaly_detections a, policy p
		 WHERE p.target = 'anomalies' AND (a.detected_at < p.cutoff OR (a.detected_at < thrillmon._retention_cutoff(coalesce(p.archive_after_days, 7), 'archive_after_days')
			AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.id = a.alert_id AND s.resolved_at IS NULL))))
	UNION ALL
	SELECT 'anomalies_archive', 'thrillmon.anomaly_detections_archive', (SELECT count(*) FROM thrillmon.anomaly_detections_archive), false,
		pg_catalog.pg_total_relation_size('thrillmon.anomaly_detections_archive'),
		(SELECT min(detected_at) FROM thrillmon.anomaly_detections_archive), (SELECT max(detected_at) FROM thrillmon.anomaly_detections_archive),
		(SELECT count(*) FROM thrillmon.anomaly_detections_archive a, policy p
		 WHERE p.target = 'anomalies' AND a.detected_at < thrillmon._retention_cutoff(coalesce(p.archive_retention_days, 90), 'archive_retention_days'))
	UNION ALL
	SELECT 'alerts', 'thrillmon.system_alerts', (SELECT count(*) FROM thrillmon.system_alerts), false,
		pg_catalog.pg_total_relation_size('thrillmon.system_alerts'),
		(SELECT min(created_at) FROM thrillmon.system_alerts), (SELECT max(created_at) FROM thrillmon.system_alerts),
		(SELECT count(*) FROM thrillmon.system_alerts a, policy p
		 WHERE p.target = 'alerts' AND a.resolved_at < p.cutoff AND NOT EXISTS (
			SELECT 1 FROM thrillmon.incident_alerts ia JOIN thrillmon.incidents i ON i.id = ia.incident_id
			WHERE ia.alert_id = a.id AND i.status IN (@list:incident_status_unfinished@)))
	UNION ALL
	SELECT 'incidents', 'thrillmon.incidents', (SELECT count(*) FROM thrillmon.incidents), false,
		pg_catalog.pg_total_relation_size('thrillmon.incidents'),
		(SELECT min(detected_at) FROM thrillmon.incidents), (SELECT max(detected_at) FROM thrillmon.incidents),
		(SELECT count(*) FROM thrillmon.incidents i, policy p
		 WHERE p.target = 'incidents' AND i.status IN ('resolved', 'closed') AND greatest(i.resolved_at, i.closed_at) < p.cutoff)
	UNION ALL
	SELECT 'job_history', 'thrillmon.job_runs', (SELECT count(*) FROM thrillmon.job_runs), false,
		pg_catalog.pg_total_relation_size('thrillmon.job_runs'),
		(SELECT min(started_at) FROM thrillmon.job_runs), (SELECT max(started_at) FROM thrillmon.job_runs),
		(SELECT count(*) FROM thrillmon.job_runs j, policy p
		 WHERE p.target = 'job_history' AND ((j.status IN ('succeeded', 'skipped') AND j.started_at < p.cutoff)
			OR (j.status = 'failed' AND j.started_at < thrillmon._retention_cutoff(coalesce(p.failed_retention_days, p.retention_days), 'failed_retention_days'))))
	UNION ALL
	SELECT 'deliveries', 'thrillmon.deliveries', (SELECT count(*) FROM thrillmon.deliveries), false,
		pg_catalog.pg_total_relation_size('thrillmon.deliveries') + pg_catalog.pg_total_relation_size('thrillmon.delivery_attempts'),
		(SELECT min(created_at) FROM thrillmon.deliveries), (SELECT max(created_at) FROM thrillmon.deliveries),
		(SELECT count(*) FROM thrillmon.deliveries d, policy p
		 WHERE p.target = 'deliveries' AND ((d.status = 'delivered' AND d.finished_at < p.cutoff)
			OR (d.status = 'dead' AND d.finished_at < thrillmon._retention_cutoff(coalesce(p.failed_retention_days, p.retention_days), 'failed_retention_days'))))
)
SELECT f.target, f.table_name, f.row_count AS rows, f.rows_estimated, f.total_bytes AS bytes,
	pg_catalog.pg_size_pretty(f.total_bytes) AS size, f.oldest, f.newest,
	CASE WHEN f.target = 'anomalies_archive' THEN p.archive_retention_days ELSE p.retention_days END AS retention_days,
	p.enabled AS policy_enabled,
	CASE WHEN f.target = 'anomalies_archive'
		THEN thrillmon._retention_cutoff(p.archive_retention_days, 'archive_retention_days') ELSE p.cutoff END AS cutoff,
	f.rows_past_retention, lc.last_cleanup_at, lc.last_cleanup_status, lc.last_cleanup_removed
FROM figures f
LEFT JOIN policy p ON p.target = (CASE WHEN f.target = 'anomalies_archive' THEN 'anomalies' ELSE f.target END)
LEFT JOIN LATERAL thrillmon._last_cleanup(CASE WHEN f.target = 'anomalies_archive' THEN 'anomalies' ELSE f.target END) lc ON true
ORDER BY f.target;
COMMENT ON VIEW thrillmon.retention_stats IS
	'Per retention target: rows, bytes, oldest/newest record, rows past retention now (what a cleanup would remove now), last cleanup and what it removed. For metrics, rows are estimates (rows_estimated = true) from each partition''s pg_class.reltuples, counted exactly only for never-analysed partitions and the default partition (and for all when the table is distributed with Citus: rows_estimated = false); rows past retention are the rows of the daily partitions whose whole day is older than the cut-off plus the default partition''s older rows (the partition holding the cut-off is dropped only once its day has expired). Other targets are counted exactly (their retention keeps them small). For anomalies_archive, last_cleanup_removed is the anomalies run''s.';
