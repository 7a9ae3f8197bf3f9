-- Detection: the configuration's guard, the C engine (the pass's horizon and scan, backtest),
-- and the pass itself, which turns the engine's anomalies into anomaly rows, alerts (de-duplicated
-- per metric and episode, escalated, resolved automatically), NOTIFYs and incidents. The engine is
-- src/pg/detect_*.cpp over the core's detectors (src/core/detect.cpp) and pass policy
-- (src/core/detect_pass.cpp).

-- The rules of a configuration row, and their messages, are the core's (src/core/detect_config.cpp,
-- the same validator backtest() and the pass use); the CHECK constraints stay as the last line of
-- defence. Called from the trigger with the writer's privileges, so admins may execute it.
CREATE FUNCTION thrillmon._check_detection_config(detection_algorithms text[], sensitivity double precision,
	min_data_points integer, lookback_window_minutes integer, alert_threshold_score double precision,
	cooldown_minutes integer)
RETURNS void
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'thrillmon_check_detection_config';
COMMENT ON FUNCTION thrillmon._check_detection_config(text[], double precision, integer, integer, double precision, integer) IS
	'Internal: checks a detection configuration, raising the first broken rule''s error (SQLSTATE 22023 or 22004)';

CREATE FUNCTION thrillmon._config_guard() RETURNS trigger
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
COMMENT ON FUNCTION thrillmon._config_guard() IS 'Internal: validates anomaly_detection_config rows with clear messages';

-- "guard" sorts before "upsert_on_insert": BEFORE triggers fire in name order.
CREATE TRIGGER guard BEFORE INSERT OR UPDATE ON thrillmon.anomaly_detection_config
	FOR EACH ROW EXECUTE FUNCTION thrillmon._config_guard();

-- A point becomes visible when its transaction commits, which can be after its timestamp: the
-- horizon waits for the oldest open transaction, by at most ten minutes.
CREATE FUNCTION thrillmon._detect_horizon()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'thrillmon_detect_horizon'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION thrillmon._detect_horizon() IS
	'Internal: the time up to which a detection pass may score (held back by open transactions, at most ten minutes)';

CREATE FUNCTION thrillmon._detect_scan(p_prev timestamptz, p_upto timestamptz, p_prev_pass bigint, p_pass bigint)
RETURNS TABLE (metric_name text, metric_category text, ts timestamptz, value double precision, score double precision,
	deviation double precision, baseline double precision, anomaly_type text, severity text, algorithm text)
AS 'MODULE_PATHNAME', 'thrillmon_detect_scan'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_scan(timestamptz, timestamptz, bigint, bigint) IS
	'Internal: scores every enabled metric''s points in (prev, upto] and returns the anomalies; writes nothing';

-- What this backend's last pass did, for a DBA wondering what a pass costs, and for the tests
-- (a pass over many metrics scores them in thrillmon.detect_threads threads).
CREATE FUNCTION thrillmon._detect_pass_stats(OUT pass bigint, OUT metrics bigint, OUT rebuilt bigint,
	OUT points bigint, OUT anomalies bigint, OUT cached bigint, OUT threads integer, OUT skipped bigint,
	OUT failed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'thrillmon_detect_pass_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_pass_stats() IS
	'Internal: this backend''s last detection pass: its number, metrics scored, detectors rebuilt, points scored, anomalies, metrics kept, threads that scored, metrics left unscored (past thrillmon.max_metrics_per_pass) and metrics whose scoring failed (NULLs before the first)';

-- backtest() replays history through the same engine, causally, writing nothing.
CREATE FUNCTION thrillmon._backtest(p_metric text, p_from timestamptz, p_to timestamptz, p_algorithms text[], p_sensitivity double precision)
RETURNS TABLE ("timestamp" timestamptz, value double precision, score double precision, is_anomaly boolean,
	anomaly_type text, severity text, algorithm text, deviation double precision, baseline double precision)
AS 'MODULE_PATHNAME', 'thrillmon_backtest'
LANGUAGE C STABLE;
COMMENT ON FUNCTION thrillmon._backtest(text, timestamptz, timestamptz, text[], double precision) IS 'Internal: backtest() engine';

CREATE FUNCTION thrillmon.backtest(metric_name text, "from" timestamptz, "to" timestamptz,
	algorithms text[] DEFAULT NULL, sensitivity double precision DEFAULT NULL)
RETURNS TABLE ("timestamp" timestamptz, value double precision, score double precision, is_anomaly boolean,
	anomaly_type text, severity text, algorithm text, deviation double precision, baseline double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN
		RAISE EXCEPTION 'thrillmon: backtest needs metric_name, from and to' USING ERRCODE = '22004';
	END IF;
	IF $2 > $3 THEN
		RAISE EXCEPTION 'thrillmon: backtest range is empty: from (%) is after to (%)', $2, $3 USING ERRCODE = '22023';
	END IF;
	RETURN QUERY SELECT * FROM thrillmon._backtest($1, $2, $3, $4, $5);
END
$fn$;
COMMENT ON FUNCTION thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision) IS
	'Replays the metric''s stored points in [from, to] through the live detector (warmed on its lookback window before from), causally, and returns one row per point; writes nothing. algorithms and sensitivity override the metric''s configuration';

CREATE FUNCTION thrillmon._config_for(p_metric text)
RETURNS thrillmon.anomaly_detection_config
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT c.* FROM thrillmon.anomaly_detection_config c
	WHERE c.metric_name IN (p_metric, '*')
	ORDER BY c.metric_name = '*' LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._config_for(text) IS 'Internal: a metric''s detection configuration (its row or the ''*'' defaults)';

-- One pass: score what arrived since the last pass's horizon (the engine reads it through each
-- partition's BRIN and keeps the detectors between passes), write the anomalies, raise, escalate
-- and resolve alerts, open incidents, and move the horizon, all in one transaction.
CREATE FUNCTION thrillmon._detect_run()
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
	silence bigint;
	-- The pass's alert events, their deliveries written at once (see _enqueue_deliveries).
	ev_alerts thrillmon.system_alerts[] := '{}';
	ev_events text[] := '{}';
	ev_previous text[] := '{}';
BEGIN
	-- One pass at a time (the worker, pg_cron, a person): the second waits, then scores only
	-- what arrived after the first one's horizon.
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = @job_lock:detect_pass@ FOR UPDATE;
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
		VALUES (a.metric_name, CASE WHEN a.metric_category IN (@list:metric_category@)
				THEN a.metric_category ELSE 'custom' END,
			a.anomaly_type, a.severity, a.baseline, a.value, a.deviation, a.score, a.algorithm, a.ts, a.ts,
			pg_catalog.jsonb_build_object('pass', pass, 'sensitivity', cfg.sensitivity))
		ON CONFLICT (metric_name, time_window_end) DO NOTHING
		RETURNING d.* INTO det;
		IF NOT FOUND THEN
			CONTINUE;
		END IF;
		-- A silence (or maintenance window) covering the point: the anomaly is recorded, marked
		-- with it, and keeps an open alert from resolving, but raises or escalates nothing.
		silence := thrillmon._silence_for(a.metric_name, a.ts);
		IF silence IS NOT NULL THEN
			UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || pg_catalog.jsonb_build_object('silence_id', silence)
			WHERE d.id = det.id RETURNING d.* INTO det;
			UPDATE thrillmon.silence_rules r SET silenced_anomalies = r.silenced_anomalies + 1 WHERE r.id = silence;
			UPDATE thrillmon.system_alerts s SET metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
			WHERE s.fingerprint = 'anomaly:' || a.metric_name AND s.resolved_at IS NULL;
			RETURN NEXT det;
			CONTINUE;
		END IF;
		-- (thrillmon's own alert and incident counts are never alerted on: an alert moves them.)
		IF cfg.auto_create_alert AND a.score >= cfg.alert_threshold_score AND a.metric_name NOT IN (@list:self_metric@) THEN
			fp := 'anomaly:' || a.metric_name;
			SELECT s.* INTO last_alert FROM thrillmon.system_alerts s WHERE s.fingerprint = fp ORDER BY s.created_at DESC LIMIT 1;
			IF last_alert.id IS NOT NULL
			   AND (last_alert.resolved_at IS NULL
			        OR last_alert.resolved_at > pg_catalog.now() - pg_catalog.make_interval(mins => cfg.cooldown_minutes)) THEN
				-- Same episode: the anomaly joins the alert, which escalates if this one is worse.
				UPDATE thrillmon.anomaly_detections d SET alert_id = last_alert.id WHERE d.id = det.id RETURNING d.* INTO det;
				IF last_alert.resolved_at IS NULL THEN
					-- (An escalation is an event of its own: NOTIFY and the outbox hear of it.)
					UPDATE thrillmon.system_alerts s
					SET severity = CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity) THEN a.severity ELSE s.severity END,
						metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
							|| CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity)
							   THEN pg_catalog.jsonb_build_object('escalated_at', pg_catalog.now(), 'value', a.value, 'baseline', a.baseline)
							   ELSE '{}' END
					WHERE s.id = last_alert.id
					RETURNING s.* INTO al;
					IF thrillmon._severity_rank(al.severity) > thrillmon._severity_rank(last_alert.severity) THEN
						PERFORM thrillmon._notify_listeners(al, 'escalated');
						ev_alerts := ev_alerts || al;
						ev_events := ev_events || 'escalated'::text;
						ev_previous := ev_previous || last_alert.severity;
					END IF;
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
				PERFORM thrillmon._notify_listeners(al, 'new');
				ev_alerts := ev_alerts || al;
				ev_events := ev_events || 'new'::text;
				ev_previous := ev_previous || NULL::text;
				new_alerts := new_alerts || al.id;
			END IF;
		ELSE
			-- Below the alert threshold: no alert, but the metric is not normal yet either.
			UPDATE thrillmon.system_alerts s SET metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
			WHERE s.fingerprint = 'anomaly:' || a.metric_name AND s.resolved_at IS NULL;
		END IF;
		RETURN NEXT det;
	END LOOP;
	PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);
	ev_alerts := '{}';
	ev_events := '{}';
	ev_previous := '{}';

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
		PERFORM thrillmon._notify_listeners(al, 'resolved');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'resolved'::text;
		ev_previous := ev_previous || NULL::text;
	END LOOP;
	-- (A batch of their own, after the others: a resolution goes only where the alert was announced.)
	PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);

	PERFORM thrillmon._auto_incidents(new_alerts);

	INSERT INTO thrillmon.detector_progress (id, pass, horizon, updated_at) VALUES (true, pass, upto, pg_catalog.now())
	ON CONFLICT (id) DO UPDATE SET pass = EXCLUDED.pass, horizon = EXCLUDED.horizon, updated_at = EXCLUDED.updated_at;
END
$fn$;
COMMENT ON FUNCTION thrillmon._detect_run() IS 'Internal: one detection pass (anomalies, alerts, auto-resolve, incidents, progress)';

CREATE FUNCTION thrillmon.detect_anomalies()
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
