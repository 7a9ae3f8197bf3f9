-- thrillmon 0.3.0 -> 0.4.0. Frozen once 0.4.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.4.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Detection pass cost: the job history helpers in PL/pgSQL
------------------------------------------------------------------------------------------------
-- A SQL-language function with SET search_path is neither inlined nor keeps its plan: every
-- call parsed and planned its one statement again (0.2 ms each; every detection pass, collection
-- and cleanup makes two calls). PL/pgSQL keeps the plans for the session.
CREATE OR REPLACE FUNCTION thrillmon._job_begin(p_job text, p_target text)
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

CREATE OR REPLACE FUNCTION thrillmon._job_end(p_run_id bigint, p_status text, p_rows bigint, p_details jsonb, p_error text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	UPDATE thrillmon.job_runs
	SET finished_at = pg_catalog.clock_timestamp(), status = p_status, rows_affected = p_rows, details = p_details, error = p_error
	WHERE run_id = p_run_id;
END
$fn$;

------------------------------------------------------------------------------------------------
-- Retention: partition granularity
------------------------------------------------------------------------------------------------
-- Metric retention drops only the daily partitions whose whole UTC day is older than the
-- cut-off; the partition containing the cut-off is kept whole until its day has expired too, so
-- a cleanup never reads or deletes rows of a daily partition (only of the default one). Rows in
-- dropped partitions are counted from the statistics when those are exact (maintenance ANALYZEs
-- each day once it is over), else with count(*). The C functions keep their signatures; what
-- changes in SQL is what retention_stats calls "past retention" (what a cleanup removes now) and
-- the descriptions.

CREATE OR REPLACE FUNCTION thrillmon._metric_retention_stats(
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
		total_bytes := total_bytes + pg_catalog.pg_total_relation_size(part.rel);
		IF part.reltuples >= 0 AND part.relname <> 'metric_time_series_default' THEN
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

COMMENT ON FUNCTION thrillmon._cleanup_metrics(timestamptz) IS
	'Internal: drops the daily partitions whose UTC day ended at or before cutoff (their rows counted from exact statistics, else with count(*)), deletes older rows in the default partition';
COMMENT ON FUNCTION thrillmon.cleanup_old_metrics(integer) IS
	'Removes metric points by whole UTC days: drops the daily partitions whose day ended more than retention_days x 24 h ago (so a point goes when between retention_days and retention_days + 1 day old), and older points waiting in the default partition; returns rows removed';
COMMENT ON FUNCTION thrillmon.maintain_partitions(integer) IS
	'Creates daily partitions from yesterday to premake_days (default thrillmon.partition_premake_days) ahead, moves rows from the default partition into daily partitions it creates for them, and ANALYZEs days that are over so retention can count their rows from statistics';
COMMENT ON VIEW thrillmon.retention_stats IS
	'Per retention target: rows, bytes, oldest/newest record, rows past retention now (what a cleanup would remove now), last cleanup and what it removed. For metrics, rows are estimates (rows_estimated = true) from each partition''s pg_class.reltuples, counted exactly only for never-analysed partitions and the default partition; rows past retention are the rows of the daily partitions whose whole day is older than the cut-off plus the default partition''s older rows (the partition holding the cut-off is dropped only once its day has expired). Other targets are counted exactly (their retention keeps them small). For anomalies_archive, last_cleanup_removed is the anomalies run''s.';
------------------------------------------------------------------------------------------------
-- Detection pass cost: the BRIN summary moves into the scan
------------------------------------------------------------------------------------------------
-- _detect_scan() now reads new points through each partition's BRIN itself, and summarises the
-- ranges filled since the last pass first, but only when it can lock them at once: a pass no
-- longer queues behind an autovacuum of the partition. The pass loses its own summarising step.
CREATE OR REPLACE FUNCTION thrillmon._detect_run()
RETURNS SETOF thrillmon.anomaly_detections
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	prog thrillmon.detector_progress;
	upto timestamptz;
	pass bigint;
	a record;
	cfg thrillmon.anomaly_detection_config;
	det thrillmon.anomaly_detections;
	last_alert thrillmon.system_alerts;
	al thrillmon.system_alerts;
	new_alerts uuid[] := '{}';
	fp text;
BEGIN
	-- One pass at a time (the worker, pg_cron, a person): the second waits, then scores only
	-- what arrived after the first one's horizon.
	PERFORM pg_catalog.pg_advisory_xact_lock(1950896716, 5);
	SELECT * INTO prog FROM thrillmon.detector_progress;
	upto := thrillmon._detect_horizon();
	IF prog.horizon IS NOT NULL AND upto < prog.horizon THEN
		upto := prog.horizon;
	END IF;
	pass := pg_catalog.nextval('thrillmon.detector_pass_seq'::pg_catalog.regclass);

	FOR a IN SELECT * FROM thrillmon._detect_scan(prog.horizon, upto, coalesce(prog.pass, 0), pass) s ORDER BY s.ts, s.metric_name LOOP
		cfg := thrillmon._config_for(a.metric_name);
		INSERT INTO thrillmon.anomaly_detections AS d (metric_name, metric_category, anomaly_type, severity, baseline_value,
			anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end, metadata)
		VALUES (a.metric_name, CASE WHEN a.metric_category IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')
				THEN a.metric_category ELSE 'custom' END,
			a.anomaly_type, a.severity, a.baseline, a.value, a.deviation, a.score, a.algorithm, a.ts, a.ts,
			pg_catalog.jsonb_build_object('pass', pass, 'sensitivity', cfg.sensitivity))
		ON CONFLICT (metric_name, time_window_end) DO NOTHING
		RETURNING d.* INTO det;
		IF NOT FOUND THEN
			CONTINUE;
		END IF;
		IF cfg.auto_create_alert AND a.score >= cfg.alert_threshold_score THEN
			fp := 'anomaly:' || a.metric_name;
			SELECT s.* INTO last_alert FROM thrillmon.system_alerts s WHERE s.fingerprint = fp ORDER BY s.created_at DESC LIMIT 1;
			IF last_alert.id IS NOT NULL
			   AND (last_alert.resolved_at IS NULL
			        OR last_alert.resolved_at > pg_catalog.now() - pg_catalog.make_interval(mins => cfg.cooldown_minutes)) THEN
				-- Same episode: the anomaly joins the alert, which escalates if this one is worse.
				UPDATE thrillmon.anomaly_detections d SET alert_id = last_alert.id WHERE d.id = det.id RETURNING d.* INTO det;
				IF last_alert.resolved_at IS NULL THEN
					UPDATE thrillmon.system_alerts s
					SET severity = CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity) THEN a.severity ELSE s.severity END,
						metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
							|| CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity)
							   THEN pg_catalog.jsonb_build_object('escalated_at', pg_catalog.now(), 'value', a.value, 'baseline', a.baseline)
							   ELSE '{}' END
					WHERE s.id = last_alert.id;
				END IF;
			ELSE
				INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, anomaly_id, fingerprint)
				VALUES ('anomaly', a.severity,
					pg_catalog.left(pg_catalog.format('%s %s on %s: %s against a baseline of %s (%s robust sd, %s)',
						a.severity, pg_catalog.replace(a.anomaly_type, '_', ' '), a.metric_name, a.value,
						pg_catalog.round(a.baseline::numeric, 4), pg_catalog.round(a.deviation::numeric, 1), a.algorithm), 2000),
					pg_catalog.jsonb_build_object('value', a.value, 'baseline', a.baseline, 'deviation', a.deviation,
						'score', a.score, 'anomaly_type', a.anomaly_type, 'algorithm', a.algorithm, 'point_time', a.ts,
						'last_anomaly_at', a.ts, 'cooldown_minutes', cfg.cooldown_minutes),
					a.metric_name, det.id, fp)
				RETURNING * INTO al;
				UPDATE thrillmon.anomaly_detections d SET alert_created = true, alert_id = al.id WHERE d.id = det.id RETURNING d.* INTO det;
				PERFORM thrillmon._notify_alert(al, 'new');
				new_alerts := new_alerts || al.id;
			END IF;
		ELSE
			-- Below the alert threshold: no alert, but the metric is not normal yet either.
			UPDATE thrillmon.system_alerts s SET metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
			WHERE s.fingerprint = 'anomaly:' || a.metric_name AND s.resolved_at IS NULL;
		END IF;
		RETURN NEXT det;
	END LOOP;

	-- Auto-resolve: an alert raised by detection whose metric has been normal for its cooldown
	-- (its last anomaly, kept on the alert, is older than that, and points have kept coming
	-- since). The alert keeps the cooldown it was raised with. One statement; only alerts past
	-- their cooldown cost an index probe.
	FOR al IN WITH resolved AS (
		UPDATE thrillmon.system_alerts s
		SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		FROM (
			SELECT o.id
			FROM thrillmon.system_alerts o
			-- (An alert made by hand or imported may lack these: its creation and the metric's
			-- configured cooldown stand in.)
			CROSS JOIN LATERAL (SELECT coalesce((o.metadata->>'last_anomaly_at')::timestamptz, (o.metadata->>'point_time')::timestamptz, o.created_at)
			                           + pg_catalog.make_interval(mins => coalesce((o.metadata->>'cooldown_minutes')::integer,
			                                                                      (thrillmon._config_for(o.metric_name)).cooldown_minutes)) AS quiet_from) q
			WHERE o.resolved_at IS NULL AND o.alert_type = 'anomaly' AND o.metric_name IS NOT NULL
			  AND q.quiet_from <= upto
			  AND EXISTS (SELECT 1 FROM thrillmon.metric_time_series m
			              WHERE m.metric_name = o.metric_name AND m."timestamp" > q.quiet_from AND m."timestamp" <= upto)
		) due
		WHERE s.id = due.id
		RETURNING s.*
	) SELECT * FROM resolved
	LOOP
		PERFORM thrillmon._notify_alert(al, 'resolved');
	END LOOP;

	PERFORM thrillmon._auto_incidents(new_alerts);

	INSERT INTO thrillmon.detector_progress (id, pass, horizon, updated_at) VALUES (true, pass, upto, pg_catalog.now())
	ON CONFLICT (id) DO UPDATE SET pass = EXCLUDED.pass, horizon = EXCLUDED.horizon, updated_at = EXCLUDED.updated_at;
END
$fn$;

------------------------------------------------------------------------------------------------
-- Partition DDL: lock the parent only, and queue for it briefly instead of polling
------------------------------------------------------------------------------------------------
-- Two faults of 0.1.0's lock loop, both seen in the B4 benchmark (a cleanup while two clients
-- insert without pause), where the cleanup gave up after lock_timeout:
-- * LOCK TABLE on a partitioned table also locks every partition: one partition under VACUUM
--   (autovacuum's lock conflicts with ACCESS EXCLUSIVE) failed every try. Creating or dropping a
--   partition needs the parent's lock only (a cleanup locks each partition it drops, waiting,
--   which makes an autovacuum of it step aside).
-- * NOWAIT succeeds only at an instant when no insert at all is in flight; under steady ingest
--   such instants can be too rare. Queueing for the lock gets it as soon as the inserts in
--   flight commit (they are short), while the inserts arriving meanwhile wait behind it; so each
--   try queues for 50 ms at most, which bounds how long an insert can wait for it, and a long
--   transaction in the way is waited out by retrying until the caller's lock_timeout.
CREATE OR REPLACE FUNCTION thrillmon._lock_metrics_parent()
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- The caller's lock_timeout (the cleanup and maintenance functions set 5 s), or 5 s if none.
	deadline timestamptz := pg_catalog.clock_timestamp()
		+ coalesce(NULLIF(pg_catalog.current_setting('lock_timeout')::interval, interval '0'), interval '5 s');
	caller_timeout text := pg_catalog.current_setting('lock_timeout');
	holders text;
BEGIN
	LOOP
		BEGIN
			-- Local to this function (it has a SET clause): the caller's value is back on return.
			PERFORM pg_catalog.set_config('lock_timeout', '50ms', true);
			LOCK TABLE ONLY thrillmon.metric_time_series IN ACCESS EXCLUSIVE MODE;
			RETURN;
		EXCEPTION WHEN lock_not_available THEN
			IF pg_catalog.clock_timestamp() >= deadline THEN
				-- Say who: a DBA reading the job history should not have to catch it in pg_locks.
				SELECT pg_catalog.string_agg(pg_catalog.format('pid %s (%s, %s%s)', l.pid, l.mode, coalesce(a.backend_type, '?'),
				           coalesce(': ' || pg_catalog.left(a.query, 60), '')), '; ' ORDER BY l.pid)
				INTO holders
				FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'relation' AND l.granted
				  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
				  AND l.relation = 'thrillmon.metric_time_series'::pg_catalog.regclass AND l.pid <> pg_catalog.pg_backend_pid();
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

