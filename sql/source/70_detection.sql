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
-- horizon waits for the oldest open transaction that has written points by at most ten minutes,
-- and for any other by at most 10 s (a lock storm's holder must not blind detection).
CREATE FUNCTION thrillmon._detect_horizon()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'thrillmon_detect_horizon'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION thrillmon._detect_horizon() IS
	'Internal: the time up to which a detection pass may score (held back by open transactions: at most ten minutes by one that has written points, 10 s by any other)';

CREATE FUNCTION thrillmon._detect_scan(p_prev timestamptz, p_upto timestamptz, p_prev_pass bigint, p_pass bigint)
RETURNS TABLE (metric_name text, metric_category text, ts timestamptz, value double precision, score double precision,
	deviation double precision, baseline double precision, anomaly_type text, severity text, algorithm text,
	uncorroborated boolean)
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

-- The regular metrics (a steady cadence of points) that this backend's last pass found silent:
-- no point for five of their intervals, two minutes at least (src/core/detect_pass.hpp, Cadence).
CREATE FUNCTION thrillmon._detect_pass_silent()
RETURNS TABLE (metric_name text, last_point timestamptz, interval_seconds double precision)
AS 'MODULE_PATHNAME', 'thrillmon_detect_pass_silent'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_pass_silent() IS
	'Internal: the regular metrics this backend''s last detection pass found silent (no point for five intervals), each at most every ten minutes';

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
	would_alert boolean;
	label uuid;
	quiet record;
	quiet_category text;
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
		would_alert := cfg.auto_create_alert AND a.score >= cfg.alert_threshold_score AND a.metric_name NOT IN (@list:self_metric@);
		-- A new metric's anomaly (its detector's calibration not yet trusted) raises an alert only
		-- with another metric anomalous in the same pass (_detect_scan() says when it has none). A
		-- lock storm shows on the locks, the transactions and their rate at once; a new database's
		-- first checkpoints (a burst of full-page writes) on the WAL rate alone. Recorded either
		-- way, and marked.
		IF would_alert AND a.uncorroborated THEN
			UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || '{"uncorroborated": true}'
			WHERE d.id = det.id RETURNING d.* INTO det;
			would_alert := false;
		END IF;
		-- A shape a person labelled a false positive on this metric (same type and direction, at
		-- most a quarter further out) is recorded, marked with the label, and raises nothing.
		IF would_alert THEN
			label := thrillmon._false_positive_for(a.metric_name, a.anomaly_type, a.deviation);
			IF label IS NOT NULL THEN
				UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || pg_catalog.jsonb_build_object('suppressed_by_label', label)
				WHERE d.id = det.id RETURNING d.* INTO det;
				would_alert := false;
			END IF;
		END IF;
		IF would_alert THEN
			fp := 'anomaly:' || a.metric_name;
			-- (The open one first: two passes in one transaction stamp their alerts with one now().)
			SELECT s.* INTO last_alert FROM thrillmon.system_alerts s WHERE s.fingerprint = fp
			ORDER BY s.resolved_at IS NULL DESC, s.created_at DESC LIMIT 1;
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
					-- (A flatline has no deviation to speak of: the engine's is nominal.)
					pg_catalog.left(CASE WHEN a.anomaly_type = 'flatline'
						THEN pg_catalog.format('%s flatline on %s: stuck at %s, where it used to vary around %s',
							a.severity, a.metric_name, a.value, pg_catalog.round(a.baseline::numeric, 4))
						ELSE pg_catalog.format('%s %s on %s: %s against a baseline of %s (%s robust sd, %s)',
							a.severity, pg_catalog.replace(a.anomaly_type, '_', ' '), a.metric_name, a.value,
							pg_catalog.round(a.baseline::numeric, 4), pg_catalog.round(a.deviation::numeric, 1), a.algorithm) END, 2000),
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

	-- A metric that stops arriving: one no_data alert per silence, never silence itself. Not
	-- while one is open, nor again for the same last point (a person resolved it); not for a
	-- metric whose detection or alerts are off, nor under a silence or maintenance window (the
	-- engine reports it again every ten minutes while it lasts).
	FOR quiet IN SELECT * FROM thrillmon._detect_pass_silent() s ORDER BY s.metric_name LOOP
		cfg := thrillmon._config_for(quiet.metric_name);
		CONTINUE WHEN NOT cfg.enabled OR NOT cfg.auto_create_alert OR thrillmon._silence_for(quiet.metric_name, upto) IS NOT NULL;
		fp := 'no_data:' || quiet.metric_name;
		CONTINUE WHEN EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.fingerprint = fp
			AND (s.resolved_at IS NULL OR (s.metadata->>'last_point')::timestamptz = quiet.last_point));
		-- (Read first, in a statement of its own: Citus plans no read of a distributed table
		-- inside an INSERT into a local one.)
		SELECT m.metric_category INTO quiet_category FROM thrillmon.metric_time_series m
		WHERE m.metric_name = quiet.metric_name AND m."timestamp" = quiet.last_point LIMIT 1;
		INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, fingerprint)
		VALUES ('no_data', 'high',
			pg_catalog.left(pg_catalog.format('no data from %s since %s (it came every %s s)', quiet.metric_name, quiet.last_point,
				pg_catalog.round(quiet.interval_seconds::numeric, 1)), 2000),
			pg_catalog.jsonb_build_object('last_point', quiet.last_point, 'interval_seconds', quiet.interval_seconds,
				'silent_seconds', EXTRACT(EPOCH FROM upto - quiet.last_point),
				'category', quiet_category),
			quiet.metric_name, fp)
		RETURNING * INTO al;
		PERFORM thrillmon._notify_listeners(al, 'new');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'new'::text;
		ev_previous := ev_previous || NULL::text;
		new_alerts := new_alerts || al.id;
	END LOOP;
	-- (Only with something to deliver: most passes have nothing, and a call costs as much as
	-- the statements of a quiet pass.)
	IF pg_catalog.cardinality(ev_alerts) > 0 THEN
		PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);
	END IF;
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
			  -- (A probe of its own per alert: see _has_points().)
			  AND thrillmon._has_points(o.metric_name, q.quiet_from, upto)
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
	-- A no_data alert resolves when its metric's points come again.
	FOR al IN UPDATE thrillmon.system_alerts s
		SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		WHERE s.resolved_at IS NULL AND s.alert_type = 'no_data' AND s.metric_name IS NOT NULL
		  AND thrillmon._has_points(s.metric_name, (s.metadata->>'last_point')::timestamptz, upto)
		RETURNING s.*
	LOOP
		PERFORM thrillmon._notify_listeners(al, 'resolved');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'resolved'::text;
		ev_previous := ev_previous || NULL::text;
	END LOOP;
	-- (A batch of their own, after the others: a resolution goes only where the alert was announced.)
	IF pg_catalog.cardinality(ev_alerts) > 0 THEN
		PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);
	END IF;

	IF pg_catalog.cardinality(new_alerts) > 0 THEN
		PERFORM thrillmon._auto_incidents(new_alerts);
	END IF;

	INSERT INTO thrillmon.detector_progress (id, pass, horizon, updated_at) VALUES (true, pass, upto, pg_catalog.now())
	ON CONFLICT (id) DO UPDATE SET pass = EXCLUDED.pass, horizon = EXCLUDED.horizon, updated_at = EXCLUDED.updated_at;
END
$fn$;
COMMENT ON FUNCTION thrillmon._detect_run() IS 'Internal: one detection pass (anomalies, alerts, auto-resolve, incidents, progress)';

------------------------------------------------------------------------------------------------
-- Feedback: a person's verdict on an anomaly, and the sensitivity the verdicts call for.
------------------------------------------------------------------------------------------------

-- The false-positive label whose shape covers this anomaly, if any: the same metric, anomaly type
-- and direction, and a deviation at most 1.25 times the labelled one (a clearly larger deviation
-- is news, and alerts). The pass asks only for an anomaly about to alert.
CREATE FUNCTION thrillmon._false_positive_for(p_metric text, p_type text, p_deviation double precision)
RETURNS uuid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT l.anomaly_id FROM thrillmon.anomaly_labels l
	WHERE l.metric_name = p_metric AND l.label = 'false_positive' AND l.anomaly_type = p_type
	  AND pg_catalog.sign(l.deviation) = pg_catalog.sign(p_deviation)
	  AND pg_catalog.abs(p_deviation) <= 1.25 * pg_catalog.abs(l.deviation)
	ORDER BY pg_catalog.abs(l.deviation) DESC, l.anomaly_id LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._false_positive_for(text, text, double precision) IS
	'Internal: the false-positive label covering an anomaly of this metric, type and deviation (same direction, at most 1.25 times as far out), or NULL';

CREATE FUNCTION thrillmon.label_anomaly(anomaly_id uuid, label text, note text DEFAULT NULL)
RETURNS thrillmon.anomaly_labels
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	an record;
	result thrillmon.anomaly_labels;
BEGIN
	IF $1 IS NULL OR $2 IS NULL THEN
		RAISE EXCEPTION 'thrillmon: label_anomaly needs an anomaly_id and a label' USING ERRCODE = '22004';
	END IF;
	IF $2 NOT IN (@list:anomaly_label@) THEN
		RAISE EXCEPTION 'thrillmon: unknown anomaly label "%"', $2 USING ERRCODE = '22023',
			HINT = 'A label is one of: @words:anomaly_label@.';
	END IF;
	IF pg_catalog.char_length($3) > 2000 THEN
		RAISE EXCEPTION 'thrillmon: a label''s note is at most 2000 characters (got %)', pg_catalog.char_length($3)
			USING ERRCODE = '22001';
	END IF;
	SELECT d.metric_name, d.time_window_end, d.anomaly_type, d.deviation_score INTO an
	FROM (SELECT x.metric_name, x.time_window_end, x.anomaly_type, x.deviation_score FROM thrillmon.anomaly_detections x WHERE x.id = $1
	      UNION ALL
	      SELECT x.metric_name, x.time_window_end, x.anomaly_type, x.deviation_score FROM thrillmon.anomaly_detections_archive x WHERE x.id = $1) d
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no anomaly with id %', $1 USING ERRCODE = 'P0002';
	END IF;
	-- Labellers queue behind each other here (readers and the pass do not), so the bound is exact.
	LOCK TABLE thrillmon.anomaly_labels IN SHARE ROW EXCLUSIVE MODE;
	IF NOT EXISTS (SELECT 1 FROM thrillmon.anomaly_labels l WHERE l.anomaly_id = $1)
	   AND (SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels) >= @limit:max_anomaly_labels@ THEN
		RAISE EXCEPTION 'thrillmon: too many anomaly labels (at most @limit:max_anomaly_labels@)' USING ERRCODE = '54000',
			HINT = 'Delete labels no longer wanted from thrillmon.anomaly_labels.';
	END IF;
	INSERT INTO thrillmon.anomaly_labels AS l (anomaly_id, metric_name, point_time, anomaly_type, deviation, label, note, labelled_by)
	VALUES ($1, an.metric_name, an.time_window_end, an.anomaly_type, an.deviation_score, $2, $3, SESSION_USER)
	ON CONFLICT ON CONSTRAINT anomaly_labels_pkey DO UPDATE
	SET label = EXCLUDED.label, note = EXCLUDED.note, labelled_by = EXCLUDED.labelled_by, labelled_at = pg_catalog.now()
	RETURNING l.* INTO result;
	RETURN result;
END
$fn$;
COMMENT ON FUNCTION thrillmon.label_anomaly(uuid, text, text) IS
	'Stores a person''s verdict on an anomaly (''false_positive'' or ''true_positive''; a second call replaces the first). A false positive keeps anomalies of its shape on its metric from alerting; tune_detection() replays the labels';

-- Replays the labelled stretch of the metric's history through backtest() at each sensitivity of
-- a grid (2 to 12 by 0.25, and the current one) and suggests the one that best separates the
-- labels: the most true positives caught less false positives caught, and of the sensitivities
-- doing that, the one closest to the current (the smallest change). A label counts as caught when
-- the replay reports an anomaly within the metric's cooldown of its point (the same alert). The
-- replay runs from a day before the first label (backtest() warms the detector on the lookback
-- window before that) to the last stored point, so the counts of anomalies include what came
-- after the labels.
CREATE FUNCTION thrillmon.tune_detection(metric_name text, apply boolean DEFAULT false)
RETURNS TABLE (current_sensitivity double precision, suggested_sensitivity double precision,
	true_positives integer, false_positives integer,
	true_positives_caught_before integer, false_positives_caught_before integer,
	true_positives_caught_after integer, false_positives_caught_after integer,
	anomalies_before bigint, anomalies_after bigint, points bigint, applied boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
	cfg thrillmon.anomaly_detection_config;
	first_point timestamptz;
	last_point timestamptz;
	first_label timestamptz;
	replay_from timestamptz;
	episode interval;
	grid double precision[];
	s double precision;
	r record;
	sens double precision[] := '{}';
	tp_caught integer[] := '{}';
	fp_caught integer[] := '{}';
	found_anomalies bigint[] := '{}';
	replayed bigint;
	best_objective integer;
	i_best integer;
	i_current integer;
BEGIN
	IF $1 IS NULL OR $2 IS NULL THEN
		RAISE EXCEPTION 'thrillmon: tune_detection needs a metric_name (and apply true or false)' USING ERRCODE = '22004';
	END IF;
	cfg := thrillmon._config_for($1);
	SELECT pg_catalog.min(m."timestamp"), pg_catalog.max(m."timestamp") INTO first_point, last_point
	FROM thrillmon.metric_time_series m WHERE m.metric_name = $1;
	IF first_point IS NULL THEN
		RAISE EXCEPTION 'thrillmon: metric "%" has no stored points to replay', $1 USING ERRCODE = 'P0002';
	END IF;
	SELECT pg_catalog.min(l.point_time) INTO first_label FROM thrillmon.anomaly_labels l
	WHERE l.metric_name = $1 AND l.point_time BETWEEN first_point AND last_point;
	IF first_label IS NULL THEN
		RAISE EXCEPTION 'thrillmon: metric "%" has no labelled anomaly within its stored points', $1 USING ERRCODE = '22023',
			HINT = 'Label its anomalies first: thrillmon.label_anomaly(anomaly_id, ''false_positive'' | ''true_positive'').';
	END IF;
	replay_from := GREATEST(first_point, first_label - interval '1 day');
	episode := pg_catalog.make_interval(mins => GREATEST(cfg.cooldown_minutes, 1));
	SELECT pg_catalog.array_agg(DISTINCT g.v ORDER BY g.v) INTO grid
	FROM (SELECT x / 4.0::float8 AS v FROM pg_catalog.generate_series(8, 48) x UNION ALL SELECT cfg.sensitivity) g;

	-- (The results go into arrays, not a temporary table a caller could have made first.)
	FOREACH s IN ARRAY grid LOOP
		WITH b AS MATERIALIZED (
			SELECT x."timestamp" AS ts, x.is_anomaly FROM thrillmon._backtest($1, replay_from, last_point, NULL, s) x
		)
		SELECT
			(SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels l
			 WHERE l.metric_name = $1 AND l.label = 'true_positive' AND l.point_time BETWEEN replay_from AND last_point
			   AND EXISTS (SELECT 1 FROM b WHERE b.is_anomaly AND b.ts BETWEEN l.point_time - episode AND l.point_time + episode)) AS tp,
			(SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels l
			 WHERE l.metric_name = $1 AND l.label = 'false_positive' AND l.point_time BETWEEN replay_from AND last_point
			   AND EXISTS (SELECT 1 FROM b WHERE b.is_anomaly AND b.ts BETWEEN l.point_time - episode AND l.point_time + episode)) AS fp,
			(SELECT pg_catalog.count(*) FROM b WHERE b.is_anomaly) AS anomalies,
			(SELECT pg_catalog.count(*) FROM b) AS n
		INTO r;
		sens := sens || s;
		tp_caught := tp_caught || r.tp::integer;
		fp_caught := fp_caught || r.fp::integer;
		found_anomalies := found_anomalies || r.anomalies;
		replayed := r.n;
	END LOOP;
	SELECT pg_catalog.max(t.tp - t.fp) INTO best_objective FROM ROWS FROM (pg_catalog.unnest(tp_caught), pg_catalog.unnest(fp_caught)) t(tp, fp);
	i_current := pg_catalog.array_position(sens, cfg.sensitivity);
	-- The smallest change that separates best (of two as close, the quieter).
	SELECT t.i INTO i_best FROM ROWS FROM (pg_catalog.unnest(sens), pg_catalog.unnest(tp_caught), pg_catalog.unnest(fp_caught)) WITH ORDINALITY t(v, tp, fp, i)
	WHERE t.tp - t.fp = best_objective
	ORDER BY pg_catalog.abs(t.v - cfg.sensitivity), t.v DESC LIMIT 1;

	applied := false;
	IF $2 AND sens[i_best] IS DISTINCT FROM cfg.sensitivity THEN
		INSERT INTO thrillmon.anomaly_detection_config AS c (metric_name, enabled, sensitivity, lookback_window_minutes,
			detection_algorithms, min_data_points, alert_threshold_score, auto_create_alert, cooldown_minutes)
		VALUES ($1, cfg.enabled, sens[i_best], cfg.lookback_window_minutes, cfg.detection_algorithms,
			cfg.min_data_points, cfg.alert_threshold_score, cfg.auto_create_alert, cfg.cooldown_minutes)
		ON CONFLICT ON CONSTRAINT anomaly_detection_config_pkey DO UPDATE SET sensitivity = EXCLUDED.sensitivity;
		applied := true;
	END IF;
	current_sensitivity := cfg.sensitivity;
	suggested_sensitivity := sens[i_best];
	SELECT pg_catalog.count(*) FILTER (WHERE l.label = 'true_positive'), pg_catalog.count(*) FILTER (WHERE l.label = 'false_positive')
	INTO true_positives, false_positives
	FROM thrillmon.anomaly_labels l WHERE l.metric_name = $1 AND l.point_time >= replay_from AND l.point_time <= last_point;
	true_positives_caught_before := tp_caught[i_current];
	false_positives_caught_before := fp_caught[i_current];
	true_positives_caught_after := tp_caught[i_best];
	false_positives_caught_after := fp_caught[i_best];
	anomalies_before := found_anomalies[i_current];
	anomalies_after := found_anomalies[i_best];
	points := replayed;
	RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION thrillmon.tune_detection(text, boolean) IS
	'Replays the metric''s labelled history through backtest() at sensitivities 2 to 12 and returns the one that best separates its true from its false positives, with the counts before and after; apply => true writes it into the metric''s configuration row';

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
