-- thrillmon 0.6.0 -> 0.7.0: what an installed 0.6.0 needs to equal a fresh 0.7.0 install (which
-- is built from sql/source/ and never runs this file). Frozen once 0.7.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.7.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- pg_cron commands are run with the database's search_path, which its owner chooses: the detect
-- command's count(*) becomes pg_catalog.count(*). Jobs already scheduled get the new command.
------------------------------------------------------------------------------------------------
UPDATE thrillmon.pg_cron_jobs SET command = 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()'
WHERE job = 'detect' AND command = 'SELECT count(*) FROM thrillmon.detect_anomalies()';
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
	   AND pg_catalog.to_regprocedure('cron.alter_job(bigint,text,text,text,text,boolean)') IS NOT NULL THEN
		PERFORM cron.alter_job(j.jobid, command => 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()')
		FROM cron.job j
		WHERE j.jobname = 'thrillmon-detect' AND j.command = 'SELECT count(*) FROM thrillmon.detect_anomalies()';
	END IF;
END
$$;

------------------------------------------------------------------------------------------------
-- Job locks: row locks of a table no role may update, not advisory locks any role may take.
------------------------------------------------------------------------------------------------
CREATE TABLE thrillmon.job_locks (
	name text PRIMARY KEY,
	serialises text NOT NULL
);
COMMENT ON TABLE thrillmon.job_locks IS 'Internal: one row per lock that serialises a job, locked FOR UPDATE by it (no role may)';
INSERT INTO thrillmon.job_locks (name, serialises) VALUES
	('maintain_partitions', 'partition maintenance with itself and with metric retention'),
	('metric_retention', 'metric retention (dropping daily partitions)'),
	('retention_cleanup', 'run_data_retention_cleanup() (tried: a second caller skips)'),
	('flush_observed', 'flushes of observe()''s shared memory'),
	('detect_pass', 'detection passes');
GRANT SELECT ON thrillmon.job_locks TO thrillmon_reader;

------------------------------------------------------------------------------------------------
-- Collectors: a timeout they cannot escape (at least 1 ms), the collector's name passed to the
-- runner, and _defiant_collector() for the one whose session had to be ended.
------------------------------------------------------------------------------------------------
UPDATE thrillmon.metric_collectors SET statement_timeout = interval '1 millisecond'
WHERE statement_timeout < interval '1 millisecond';
ALTER TABLE thrillmon.metric_collectors DROP CONSTRAINT statement_timeout_range,
	ADD CONSTRAINT statement_timeout_range CHECK (statement_timeout >= '1 millisecond' AND statement_timeout <= '1 hour');
DROP FUNCTION thrillmon._run_collector_query(text, name, integer);
CREATE FUNCTION thrillmon._run_collector_query(query text, owner_role name, timeout_ms integer,
	collector_name text, OUT metric_name text, OUT metric_value double precision)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_run_collector_query';
COMMENT ON FUNCTION thrillmon._run_collector_query(text, name, integer, text) IS
	'Internal: runs a collector query as its owner, read-only, under a timeout it cannot escape, in a security-restricted context';
REVOKE ALL ON FUNCTION thrillmon._run_collector_query(text, name, integer, text) FROM PUBLIC;
CREATE FUNCTION thrillmon._defiant_collector()
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_defiant_collector';
COMMENT ON FUNCTION thrillmon._defiant_collector() IS
	'Internal: the collector of this database whose session was ended because it went on after its timeout''s cancel (taken once), or NULL';
REVOKE ALL ON FUNCTION thrillmon._defiant_collector() FROM PUBLIC;

------------------------------------------------------------------------------------------------
-- Partition maintenance: a window of days and a cap per run; what waits is reported.
------------------------------------------------------------------------------------------------
-- _lock_metrics_parent() takes the partitions the caller changes too (defined below).
DROP FUNCTION thrillmon._lock_metrics_parent();
DROP FUNCTION thrillmon._maintain_partitions(integer);
CREATE FUNCTION thrillmon._maintain_partitions(premake_days integer, OUT created text[], OUT rows_moved bigint,
	OUT days_waiting bigint, OUT rows_ahead bigint, OUT rows_expired bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_maintain_partitions_internal';
COMMENT ON FUNCTION thrillmon._maintain_partitions(integer) IS 'Internal: partition DDL of maintain_partitions()';
REVOKE ALL ON FUNCTION thrillmon._maintain_partitions(integer) FROM PUBLIC;
COMMENT ON FUNCTION thrillmon.maintain_partitions(integer) IS
	'Creates daily partitions from yesterday to premake_days (default thrillmon.partition_premake_days) ahead, and for the days within the metrics retention that have rows waiting in the default partition (moving them in), at most 32 a call; ANALYZEs days that are over so retention can count their rows from statistics';

------------------------------------------------------------------------------------------------
-- Detection: a pass's stats say what it left unscored or failed to score.
------------------------------------------------------------------------------------------------
DROP FUNCTION thrillmon._detect_pass_stats();
CREATE FUNCTION thrillmon._detect_pass_stats(OUT pass bigint, OUT metrics bigint, OUT rebuilt bigint,
	OUT points bigint, OUT anomalies bigint, OUT cached bigint, OUT threads integer, OUT skipped bigint,
	OUT failed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'thrillmon_detect_pass_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_pass_stats() IS
	'Internal: this backend''s last detection pass: its number, metrics scored, detectors rebuilt, points scored, anomalies, metrics kept, threads that scored, metrics left unscored (past thrillmon.max_metrics_per_pass) and metrics whose scoring failed (NULLs before the first)';
REVOKE ALL ON FUNCTION thrillmon._detect_pass_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._detect_pass_stats() TO thrillmon_reader;

------------------------------------------------------------------------------------------------
-- Sensitivity: at least 0.5 (below it nearly every point is an anomaly). Lower values are raised.
------------------------------------------------------------------------------------------------
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 0.5 WHERE sensitivity < 0.5;
ALTER TABLE thrillmon.anomaly_detection_config DROP CONSTRAINT sensitivity_range,
	ADD CONSTRAINT sensitivity_range CHECK (sensitivity >= 0.5 AND sensitivity <= 100);

------------------------------------------------------------------------------------------------
-- observe(): a slot only in a database something flushes.
------------------------------------------------------------------------------------------------
CREATE FUNCTION thrillmon._observations_flushed()
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs j WHERE j.job = 'collect')
		OR EXISTS (SELECT 1 FROM thrillmon.job_runs r WHERE r.job = 'collect' AND r.status = 'succeeded'
			AND r.started_at > pg_catalog.now() - interval '2 days')
$fn$;
COMMENT ON FUNCTION thrillmon._observations_flushed() IS
	'Internal: whether something flushes observe()''s slots in this database (pg_cron collects, or collect_metrics() succeeded in the last two days)';
REVOKE ALL ON FUNCTION thrillmon._observations_flushed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._observations_flushed() TO thrillmon_writer;

------------------------------------------------------------------------------------------------
-- The functions 0.7.0 changes, as sql/source/ defines them.
------------------------------------------------------------------------------------------------
-- functions: _lock_metrics_parent schedule_with_pg_cron _retention_all _detect_run health_check _notify_alert _run_collectors _maintain_partitions_run detect_anomalies _worker_run_job
-- views: system_health

CREATE OR REPLACE FUNCTION thrillmon._lock_metrics_parent(also regclass[] DEFAULT NULL)
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
REVOKE ALL ON FUNCTION thrillmon._lock_metrics_parent(regclass[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon.schedule_with_pg_cron()
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
REVOKE ALL ON FUNCTION thrillmon.schedule_with_pg_cron() FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._retention_all()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- Metrics go last: dropping a partition locks the parent table against inserts until
	-- commit, so the less the transaction does after it, the shorter ingest waits.
	order_of_targets text[] := ARRAY['anomalies', 'alerts', 'incidents', 'job_history', 'metrics'];
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
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = 'retention_cleanup' FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		SELECT k.pid INTO holder FROM pg_catalog.pg_locks k
		WHERE k.locktype = 'transactionid' AND k.mode = 'ExclusiveLock' AND k.granted
		  AND k.transactionid = (SELECT l.xmax FROM thrillmon.job_locks l WHERE l.name = 'retention_cleanup')
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
REVOKE ALL ON FUNCTION thrillmon._retention_all() FROM PUBLIC;

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
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = 'detect_pass' FOR UPDATE;
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
COMMENT ON FUNCTION thrillmon._detect_run() IS 'Internal: one detection pass (anomalies, alerts, auto-resolve, incidents, progress)';
REVOKE ALL ON FUNCTION thrillmon._detect_run() FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon.health_check()
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
	last_retention timestamptz;
	-- The first instant after the last day maintenance makes a partition for.
	reach timestamptz := (pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC')
		+ pg_catalog.make_interval(days => 1 + coalesce(pg_catalog.current_setting('thrillmon.partition_premake_days', true)::integer, 7)))
		AT TIME ZONE 'UTC';
	ahead bigint;
	detect_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.detect_interval'), 300);
	horizon timestamptz;
	d jsonb;
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
	-- Retention is expected daily when the worker or pg_cron runs it: a day and an hour without a
	-- successful full cleanup (and job history older than that, so not a fresh install) is overdue,
	-- whatever the reason (its lock held, a run failing or cut short).
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'retention') THEN
		SELECT max(r.started_at) INTO last_retention FROM thrillmon.job_runs r
		WHERE r.job = 'retention' AND r.target = 'all' AND r.status = 'succeeded';
		IF (last_retention IS NULL OR last_retention < pg_catalog.now() - interval '25 hours')
		   AND EXISTS (SELECT 1 FROM thrillmon.job_runs r WHERE r.started_at < pg_catalog.now() - interval '25 hours') THEN
			reasons := reasons || CASE WHEN last_retention IS NULL THEN 'retention overdue: no successful run_data_retention_cleanup() yet'
				ELSE pg_catalog.format('retention overdue: last successful run_data_retention_cleanup() %s ago',
					pg_catalog.date_trunc('second', pg_catalog.now() - last_retention)) END;
		END IF;
	END IF;
	-- Points dated past the last day partitions are made for (a direct INSERT's; record_metric()
	-- refuses them) wait in the default partition, where the latest values ignore them.
	SELECT pg_catalog.count(*) INTO ahead FROM ONLY thrillmon.metric_time_series_default d WHERE d."timestamp" >= reach;
	IF ahead > 0 THEN
		reasons := reasons || pg_catalog.format('%s points dated %s or later (past thrillmon.partition_premake_days) wait in the default partition',
			ahead, (reach AT TIME ZONE 'UTC')::date);
	END IF;
	-- Detection: stalled (the horizon has not moved for three intervals and ten minutes, the most
	-- an open transaction may hold it back, while something is to run it), or its last pass left
	-- metrics unscored or failed to score some.
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'detect') THEN
		SELECT p.horizon INTO horizon FROM thrillmon.detector_progress p;
		IF horizon < pg_catalog.now() - pg_catalog.make_interval(secs => 3 * detect_s + 600) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('detection stalled: points are scored up to %s, %s ago',
				horizon, pg_catalog.date_trunc('second', pg_catalog.now() - horizon));
		END IF;
	END IF;
	SELECT r.details INTO d FROM thrillmon.job_runs r
	WHERE r.job = 'detect' AND r.status = 'succeeded' ORDER BY r.started_at DESC LIMIT 1;
	IF coalesce((d->>'skipped_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection left %s metrics unscored in its last pass (more than thrillmon.max_metrics_per_pass = %s had new points)',
			d->>'skipped_metrics', pg_catalog.current_setting('thrillmon.max_metrics_per_pass', true));
	END IF;
	IF coalesce((d->>'failed_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection could not score %s metrics in its last pass (out of memory)',
			d->>'failed_metrics');
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
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc
		WHERE NOT mc.enabled AND mc.last_error LIKE 'disabled by thrillmon:%' ORDER BY mc.name
	LOOP
		reasons := reasons || pg_catalog.format('collector %s %s', c.name, c.last_error);
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
REVOKE ALL ON FUNCTION thrillmon.health_check() FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._notify_alert(p_alert thrillmon.system_alerts, p_event text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	payload text := pg_catalog.jsonb_build_object(
		'event', p_event,
		'alert_id', p_alert.id,
		'alert_type', p_alert.alert_type,
		'metric', p_alert.metric_name,
		'severity', p_alert.severity,
		'value', p_alert.metadata->'value',
		'baseline', p_alert.metadata->'baseline',
		'message', pg_catalog.left(p_alert.message, 1000),
		'created_at', p_alert.created_at,
		'resolved_at', p_alert.resolved_at)::text;
BEGIN
	IF pg_catalog.octet_length(payload) > 7900 THEN
		payload := pg_catalog.jsonb_build_object(
			'event', p_event,
			'alert_id', p_alert.id,
			'alert_type', pg_catalog.left(p_alert.alert_type, 200),
			'metric', pg_catalog.left(p_alert.metric_name, 200),
			'severity', p_alert.severity,
			'value', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'value') = 'number'
				AND pg_catalog.length((p_alert.metadata->'value')::text) <= 40 THEN p_alert.metadata->'value' END,
			'baseline', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'baseline') = 'number'
				AND pg_catalog.length((p_alert.metadata->'baseline')::text) <= 40 THEN p_alert.metadata->'baseline' END,
			'message', pg_catalog.left(p_alert.message, 200),
			'created_at', p_alert.created_at,
			'resolved_at', p_alert.resolved_at,
			'truncated', true)::text;
	END IF;
	PERFORM pg_catalog.pg_notify('thrillmon_alerts', payload);
END
$fn$;
COMMENT ON FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text) IS 'Internal: NOTIFY thrillmon_alerts with a JSON payload';
REVOKE ALL ON FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._run_collectors(p_at timestamptz, p_only_due boolean)
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
REVOKE ALL ON FUNCTION thrillmon._run_collectors(timestamptz, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._maintain_partitions_run(premake_days integer)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.jsonb_build_object('created', pg_catalog.to_jsonb(m.created), 'rows_moved', m.rows_moved,
		'days_waiting', m.days_waiting, 'rows_ahead', m.rows_ahead, 'rows_expired', m.rows_expired)
	FROM thrillmon._maintain_partitions(premake_days) m
$fn$;
COMMENT ON FUNCTION thrillmon._maintain_partitions_run(integer) IS 'Internal: the partition maintenance job body';
REVOKE ALL ON FUNCTION thrillmon._maintain_partitions_run(integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon.detect_anomalies()
RETURNS SETOF thrillmon.anomaly_detections
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	run_id bigint := thrillmon._job_begin('detect', 'all');
	n bigint;
BEGIN
	RETURN QUERY SELECT * FROM thrillmon._detect_run();
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM thrillmon._job_end(run_id, 'succeeded', n, pg_catalog.jsonb_build_object('anomalies', n)
		|| (SELECT pg_catalog.jsonb_build_object('metrics', s.metrics, 'skipped_metrics', s.skipped, 'failed_metrics', s.failed)
		    FROM thrillmon._detect_pass_stats() s), NULL);
END
$fn$;
COMMENT ON FUNCTION thrillmon.detect_anomalies() IS
	'Runs detection now over every enabled metric (the points that arrived since the last pass) and returns the new anomalies';
REVOKE ALL ON FUNCTION thrillmon.detect_anomalies() FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._worker_run_job(p_job text, p_run_id bigint, p_at timestamptz)
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
REVOKE ALL ON FUNCTION thrillmon._worker_run_job(text, bigint, timestamptz) FROM PUBLIC;

CREATE OR REPLACE VIEW thrillmon.system_health AS
SELECT 'metric'::text AS section, m.metric_name AS name, NULL::text AS status, m.metric_value AS value,
	m."timestamp" AS observed_at, pg_catalog.jsonb_build_object('category', m.metric_category) AS detail
FROM (SELECT DISTINCT ON (t.metric_name) t.metric_name, t.metric_category, t.metric_value, t."timestamp"
	FROM thrillmon.metric_time_series t
	WHERE t."timestamp" > pg_catalog.now() - interval '1 day' AND t."timestamp" <= pg_catalog.now()
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
