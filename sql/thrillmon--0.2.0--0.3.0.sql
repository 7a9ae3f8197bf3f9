-- thrillmon 0.2.0 -> 0.3.0: anomaly detection (streaming C++ detectors), backtest, alerts with
-- de-duplication, cooldown, auto-resolve and NOTIFY, incidents (by hand and automatic), the
-- worker's detection job and its pg_cron schedule. Released scripts are frozen: change behaviour
-- in the next upgrade script, never here once 0.3.0 is out.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------------------------

-- The default sensitivity becomes 4.5 robust standard deviations: at 3.0 (the origin's figure)
-- white noise alone crosses the line about 27 times a week at one point a minute; at 4.5 the
-- default ensemble stays under one a week (test/unit/detect_test.cpp, QuietOnNoise). A '*' row
-- still at the old default follows; one a user changed is left alone.
ALTER TABLE thrillmon.anomaly_detection_config ALTER COLUMN sensitivity SET DEFAULT 4.5;
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 4.5 WHERE metric_name = '*' AND sensitivity = 3.0;

-- Clear messages for bad configuration (the CHECK constraints stay as the last line of defence).
CREATE FUNCTION thrillmon._config_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	unknown text[];
BEGIN
	IF NEW.detection_algorithms IS NULL OR pg_catalog.cardinality(NEW.detection_algorithms) = 0 THEN
		RAISE EXCEPTION 'thrillmon: detection_algorithms must name at least one algorithm'
			USING ERRCODE = '22023',
			HINT = 'Known algorithms: z_score, mad, moving_average, rate_of_change, ewma, cusum, seasonal, predictive, ensemble.';
	END IF;
	IF pg_catalog.array_position(NEW.detection_algorithms, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: detection_algorithms must not contain NULL' USING ERRCODE = '22004';
	END IF;
	SELECT pg_catalog.array_agg(a ORDER BY a) INTO unknown
	FROM pg_catalog.unnest(NEW.detection_algorithms) a
	WHERE a <> ALL ('{z_score,mad,moving_average,rate_of_change,ewma,cusum,seasonal,predictive,ensemble}'::text[]);
	IF unknown IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: unknown detection algorithm "%"', pg_catalog.array_to_string(unknown, '", "')
			USING ERRCODE = '22023',
			HINT = 'Known algorithms: z_score, mad, moving_average, rate_of_change, ewma, cusum, seasonal, predictive, ensemble.';
	END IF;
	IF NEW.sensitivity IS NULL OR NOT (NEW.sensitivity > 0 AND NEW.sensitivity <= 100) THEN
		RAISE EXCEPTION 'thrillmon: sensitivity must be greater than 0 and at most 100, got %', NEW.sensitivity
			USING ERRCODE = '22023', HINT = 'It is the deviation, in robust standard deviations, that makes a point an anomaly (default 4.5).';
	END IF;
	IF NEW.min_data_points IS NULL OR NEW.min_data_points < 2 OR NEW.min_data_points > 1000000 THEN
		RAISE EXCEPTION 'thrillmon: min_data_points must be between 2 and 1000000, got %', NEW.min_data_points USING ERRCODE = '22023';
	END IF;
	IF NEW.lookback_window_minutes IS NULL OR NEW.lookback_window_minutes < 1 OR NEW.lookback_window_minutes > 527040 THEN
		RAISE EXCEPTION 'thrillmon: lookback_window_minutes must be between 1 and 527040 (366 days), got %', NEW.lookback_window_minutes
			USING ERRCODE = '22023';
	END IF;
	IF NEW.lookback_window_minutes < NEW.min_data_points THEN
		RAISE EXCEPTION 'thrillmon: lookback_window_minutes (%) is shorter than min_data_points (%)', NEW.lookback_window_minutes, NEW.min_data_points
			USING ERRCODE = '22023',
			HINT = 'At one point a minute the detector would never see enough history to score; lengthen the lookback or lower min_data_points.';
	END IF;
	IF NEW.alert_threshold_score IS NULL OR NOT (NEW.alert_threshold_score >= 0 AND NEW.alert_threshold_score <= 1) THEN
		RAISE EXCEPTION 'thrillmon: alert_threshold_score must be between 0 and 1, got %', NEW.alert_threshold_score USING ERRCODE = '22023';
	END IF;
	IF NEW.cooldown_minutes IS NULL OR NEW.cooldown_minutes < 0 OR NEW.cooldown_minutes > 527040 THEN
		RAISE EXCEPTION 'thrillmon: cooldown_minutes must be between 0 and 527040, got %', NEW.cooldown_minutes USING ERRCODE = '22023';
	END IF;
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

-- The restore trigger of the shipped configuration rows compared the key as text, which only
-- worked for text keys; incident_policy's key is a boolean. Compare the key's text form.
CREATE OR REPLACE FUNCTION thrillmon._upsert_config_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	key_column text := TG_ARGV[0];
	key_value text;
	exists_already boolean;
BEGIN
	IF pg_catalog.current_query() !~* '^\s*COPY\M' THEN
		RETURN NEW;
	END IF;
	EXECUTE pg_catalog.format('SELECT ($1).%I::text', key_column) INTO key_value USING NEW;
	EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE %I::text = $1)', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column)
		INTO exists_already USING key_value;
	IF NOT exists_already THEN
		RETURN NEW;
	END IF;
	EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE %I::text = $1', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column) USING key_value;
	RETURN NEW;
END
$fn$;

-- When detection opens incidents by itself (one row, like the other shipped configuration).
CREATE TABLE thrillmon.incident_policy (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	open_on_critical boolean NOT NULL DEFAULT true,
	correlation_window_minutes integer NOT NULL DEFAULT 10
		CONSTRAINT correlation_window_range CHECK (correlation_window_minutes BETWEEN 1 AND 1440),
	correlation_min_metrics integer NOT NULL DEFAULT 3
		CONSTRAINT correlation_min_metrics_range CHECK (correlation_min_metrics = 0 OR correlation_min_metrics BETWEEN 2 AND 1000)
);
COMMENT ON TABLE thrillmon.incident_policy IS
	'Automatic incidents: one for each critical alert (open_on_critical), and one when alerts on at least correlation_min_metrics metrics (0: never) start within correlation_window_minutes';
INSERT INTO thrillmon.incident_policy DEFAULT VALUES;
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.incident_policy
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('id');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_policy', '');

-- How far detection has got: one row, written by each pass in the same transaction as its
-- anomalies, so a point is scored once (a pass that rolls back leaves it where it was). Dumped,
-- so a restored database carries on from where the dump left off.
CREATE TABLE thrillmon.detector_progress (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	pass bigint NOT NULL,
	horizon timestamptz NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.detector_progress IS
	'Detection progress: points up to horizon have been scored; pass numbers the passes (a detector cache is valid for one pass)';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.detector_progress', '');
-- Pass numbers come from a sequence, which a rolled-back pass cannot give back: a backend whose
-- cache was made by a pass that rolled back never finds its number committed by another pass.
CREATE SEQUENCE thrillmon.detector_pass_seq;
SELECT pg_catalog.pg_extension_config_dump('thrillmon.detector_pass_seq', '');

-- Detection reads "every point since the last pass": a BRIN index on time per partition (rows
-- arrive in time order) finds them without a second B-tree on the ingest path. Daily partitions
-- get theirs from maintain_partitions(); the ones made before this version get it here.
CREATE INDEX metric_time_series_default_time_brin_idx ON thrillmon.metric_time_series_default
	USING brin ("timestamp") WITH (pages_per_range = 8);
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'thrillmon.metric_time_series'::pg_catalog.regclass AND c.relname <> 'metric_time_series_default'
	LOOP
		EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON thrillmon.%I USING brin ("timestamp") WITH (pages_per_range = 8)',
			r.relname || '_time_brin_idx', r.relname);
	END LOOP;
END
$$;

-- One anomaly per metric and point, whatever happens (a second line of defence behind the horizon).
-- Before 0.3.0 nothing detected, but rows may have been written by hand: of two for the same
-- metric and point, the one detected first stays.
DELETE FROM thrillmon.anomaly_detections a
USING thrillmon.anomaly_detections b
WHERE a.metric_name = b.metric_name AND a.time_window_end = b.time_window_end
  AND (a.detected_at, a.id::text) > (b.detected_at, b.id::text);
CREATE UNIQUE INDEX anomaly_detections_point_idx ON thrillmon.anomaly_detections (metric_name, time_window_end);
CREATE INDEX system_alerts_open_metric_idx ON thrillmon.system_alerts (metric_name) WHERE resolved_at IS NULL;

ALTER TABLE thrillmon.pg_cron_jobs DROP CONSTRAINT cron_job_known;
ALTER TABLE thrillmon.pg_cron_jobs ADD CONSTRAINT cron_job_known CHECK (job IN ('collect', 'detect', 'maintenance', 'retention'));

------------------------------------------------------------------------------------------------
-- The engine (C): the pass's horizon, its scan, and backtest
------------------------------------------------------------------------------------------------

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

------------------------------------------------------------------------------------------------
-- Alerts
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._severity_rank(p_severity text)
RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT CASE p_severity WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE 0 END
$fn$;
COMMENT ON FUNCTION thrillmon._severity_rank(text) IS 'Internal: orders severities';

-- NOTIFY thrillmon_alerts: delivered when (and only if) the transaction commits.
CREATE FUNCTION thrillmon._notify_alert(p_alert thrillmon.system_alerts, p_event text)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.pg_notify('thrillmon_alerts', pg_catalog.jsonb_build_object(
		'event', p_event,
		'alert_id', p_alert.id,
		'alert_type', p_alert.alert_type,
		'metric', p_alert.metric_name,
		'severity', p_alert.severity,
		'value', p_alert.metadata->'value',
		'baseline', p_alert.metadata->'baseline',
		'message', pg_catalog.left(p_alert.message, 1000),
		'created_at', p_alert.created_at,
		'resolved_at', p_alert.resolved_at)::text)
$fn$;
COMMENT ON FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text) IS 'Internal: NOTIFY thrillmon_alerts with a JSON payload';

CREATE FUNCTION thrillmon.acknowledge_alert(alert_id uuid)
RETURNS thrillmon.system_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	a thrillmon.system_alerts;
BEGIN
	UPDATE thrillmon.system_alerts s SET acknowledged_at = coalesce(s.acknowledged_at, GREATEST(pg_catalog.now(), s.created_at))
	WHERE s.id = $1 RETURNING * INTO a;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no alert with id %', coalesce($1::text, 'NULL') USING ERRCODE = 'P0002';
	END IF;
	RETURN a;
END
$fn$;
COMMENT ON FUNCTION thrillmon.acknowledge_alert(uuid) IS 'Marks an alert acknowledged (once; later calls keep the first time) and returns it';

CREATE FUNCTION thrillmon.resolve_alert(alert_id uuid)
RETURNS thrillmon.system_alerts
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	a thrillmon.system_alerts;
BEGIN
	UPDATE thrillmon.system_alerts s
	SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
		metadata = coalesce(s.metadata, '{}') || pg_catalog.jsonb_build_object('resolved_by', SESSION_USER::text)
	WHERE s.id = $1 AND s.resolved_at IS NULL RETURNING * INTO a;
	IF FOUND THEN
		PERFORM thrillmon._notify_alert(a, 'resolved');
		RETURN a;
	END IF;
	SELECT * INTO a FROM thrillmon.system_alerts s WHERE s.id = $1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no alert with id %', coalesce($1::text, 'NULL') USING ERRCODE = 'P0002';
	END IF;
	RETURN a; -- already resolved: unchanged, no second notification
END
$fn$;
COMMENT ON FUNCTION thrillmon.resolve_alert(uuid) IS 'Resolves an alert (NOTIFY thrillmon_alerts with event "resolved"); an alert already resolved is returned unchanged';

------------------------------------------------------------------------------------------------
-- Incidents
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._check_alert_ids(p_alert_ids uuid[])
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	missing text;
BEGIN
	IF pg_catalog.array_position(p_alert_ids, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: alert ids must not contain NULL' USING ERRCODE = '22004';
	END IF;
	SELECT pg_catalog.string_agg(i::text, ', ') INTO missing
	FROM pg_catalog.unnest(p_alert_ids) i WHERE NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.id = i);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: no alert with id %', missing USING ERRCODE = 'P0002';
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._check_alert_ids(uuid[]) IS 'Internal: every id names an alert';

CREATE FUNCTION thrillmon.create_incident(title text, severity text, alert_ids uuid[] DEFAULT NULL, description text DEFAULT NULL)
RETURNS thrillmon.incidents
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	inc thrillmon.incidents;
BEGIN
	-- Any white space (tabs, new lines), not only spaces, is no title.
	title := pg_catalog.regexp_replace($1, '^\s+|\s+$', '', 'g');
	IF title IS NULL OR title = '' THEN
		RAISE EXCEPTION 'thrillmon: an incident needs a title' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.char_length(title) > 500 THEN
		RAISE EXCEPTION 'thrillmon: incident title is too long (% characters, at most 500)', pg_catalog.char_length(title)
			USING ERRCODE = '22001';
	END IF;
	IF $2 IS NULL OR $2 NOT IN ('low', 'medium', 'high', 'critical') THEN
		RAISE EXCEPTION 'thrillmon: unknown severity "%"', coalesce($2, 'NULL')
			USING ERRCODE = '22023', HINT = 'Severities: low, medium, high, critical.';
	END IF;
	PERFORM thrillmon._check_alert_ids(coalesce($3, '{}'));
	INSERT INTO thrillmon.incidents (title, severity, description, metadata)
	VALUES (title, $2, $4, pg_catalog.jsonb_build_object('source', 'manual', 'created_by', SESSION_USER::text))
	RETURNING * INTO inc;
	INSERT INTO thrillmon.incident_alerts (incident_id, alert_id)
	SELECT DISTINCT inc.id, i FROM pg_catalog.unnest(coalesce($3, '{}')) i;
	RETURN inc;
END
$fn$;
COMMENT ON FUNCTION thrillmon.create_incident(text, text, uuid[], text) IS 'Opens an incident linking the given alerts; all or nothing';

CREATE FUNCTION thrillmon.link_alerts(incident_id uuid, alert_ids uuid[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	n integer;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM thrillmon.incidents i WHERE i.id = $1) THEN
		RAISE EXCEPTION 'thrillmon: no incident with id %', coalesce($1::text, 'NULL') USING ERRCODE = 'P0002';
	END IF;
	PERFORM thrillmon._check_alert_ids(coalesce($2, '{}'));
	INSERT INTO thrillmon.incident_alerts (incident_id, alert_id)
	SELECT DISTINCT $1, i FROM pg_catalog.unnest(coalesce($2, '{}')) i
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon.link_alerts(uuid, uuid[]) IS 'Links more alerts to an incident; returns how many links are new';

-- open -> investigating -> resolved -> closed; steps may be skipped, never taken back (a
-- recurrence is a new incident). Each step stamps its time once.
CREATE FUNCTION thrillmon.update_incident_status(incident_id uuid, status text)
RETURNS thrillmon.incidents
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	inc thrillmon.incidents;
	order_of constant text[] := '{open,investigating,resolved,closed}';
	from_rank integer;
	to_rank integer;
BEGIN
	to_rank := pg_catalog.array_position(order_of, $2);
	IF to_rank IS NULL THEN
		RAISE EXCEPTION 'thrillmon: unknown incident status "%"', coalesce($2, 'NULL')
			USING ERRCODE = '22023', HINT = 'Statuses: open, investigating, resolved, closed.';
	END IF;
	SELECT * INTO inc FROM thrillmon.incidents i WHERE i.id = $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no incident with id %', coalesce($1::text, 'NULL') USING ERRCODE = 'P0002';
	END IF;
	from_rank := pg_catalog.array_position(order_of, inc.status);
	IF to_rank < from_rank THEN
		RAISE EXCEPTION 'thrillmon: incident % is %; it cannot go back to %', inc.incident_number, inc.status, $2
			USING ERRCODE = '22023', HINT = 'Open a new incident for a recurrence.';
	END IF;
	IF to_rank = from_rank THEN
		RETURN inc;
	END IF;
	UPDATE thrillmon.incidents i SET
		status = $2,
		acknowledged_at = CASE WHEN to_rank >= 2 THEN coalesce(i.acknowledged_at, pg_catalog.now()) ELSE i.acknowledged_at END,
		resolved_at = CASE WHEN to_rank >= 3 THEN coalesce(i.resolved_at, pg_catalog.now()) ELSE i.resolved_at END,
		closed_at = CASE WHEN to_rank = 4 THEN coalesce(i.closed_at, pg_catalog.now()) ELSE i.closed_at END
	WHERE i.id = $1 RETURNING * INTO inc;
	RETURN inc;
END
$fn$;
COMMENT ON FUNCTION thrillmon.update_incident_status(uuid, text) IS
	'Moves an incident forward (open -> investigating -> resolved -> closed), stamping acknowledged_at, resolved_at and closed_at';

-- Incidents opened by detection: for each new critical alert, and for alerts on several metrics
-- starting within the correlation window. An auto incident still open from within the window
-- takes the new alerts instead of a second incident being opened for the same event.
CREATE FUNCTION thrillmon._auto_incidents(p_new_alerts uuid[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	pol thrillmon.incident_policy;
	win interval;
	a record;
	inc_id uuid;
	opened integer := 0;
	metrics integer;
	worst text;
	names text;
	ids uuid[];
BEGIN
	IF p_new_alerts IS NULL OR pg_catalog.cardinality(p_new_alerts) = 0 THEN
		RETURN 0;
	END IF;
	SELECT * INTO pol FROM thrillmon.incident_policy;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	win := pg_catalog.make_interval(mins => pol.correlation_window_minutes);

	IF pol.open_on_critical THEN
		FOR a IN SELECT s.* FROM thrillmon.system_alerts s WHERE s.id = ANY (p_new_alerts) AND s.severity = 'critical' ORDER BY s.created_at LOOP
			SELECT i.id INTO inc_id FROM thrillmon.incidents i
			WHERE i.status IN ('open', 'investigating') AND i.metadata->>'source' = 'auto' AND i.detected_at > pg_catalog.now() - win
			ORDER BY i.detected_at DESC LIMIT 1;
			IF inc_id IS NULL THEN
				INSERT INTO thrillmon.incidents (title, severity, description, metadata)
				VALUES (pg_catalog.left(pg_catalog.format('Critical anomaly on %s', a.metric_name), 500), 'critical', a.message,
					pg_catalog.jsonb_build_object('source', 'auto', 'reason', 'critical alert'))
				RETURNING id INTO inc_id;
				opened := opened + 1;
			END IF;
			INSERT INTO thrillmon.incident_alerts (incident_id, alert_id) VALUES (inc_id, a.id) ON CONFLICT DO NOTHING;
			inc_id := NULL;
		END LOOP;
	END IF;

	IF pol.correlation_min_metrics > 0 THEN
		-- Unresolved alerts started within the window and in no open incident.
		SELECT pg_catalog.array_agg(s.id), count(DISTINCT s.metric_name),
		       (pg_catalog.array_agg(s.severity ORDER BY thrillmon._severity_rank(s.severity) DESC))[1],
		       pg_catalog.string_agg(DISTINCT s.metric_name, ', ')
		INTO ids, metrics, worst, names
		FROM thrillmon.system_alerts s
		WHERE s.resolved_at IS NULL AND s.created_at > pg_catalog.now() - win AND s.metric_name IS NOT NULL
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.incident_alerts ia JOIN thrillmon.incidents i ON i.id = ia.incident_id
		                  WHERE ia.alert_id = s.id AND i.status IN ('open', 'investigating'));
		IF metrics >= pol.correlation_min_metrics AND ids && p_new_alerts THEN
			SELECT i.id INTO inc_id FROM thrillmon.incidents i
			WHERE i.status IN ('open', 'investigating') AND i.metadata->>'source' = 'auto' AND i.detected_at > pg_catalog.now() - win
			ORDER BY i.detected_at DESC LIMIT 1;
			IF inc_id IS NULL THEN
				INSERT INTO thrillmon.incidents (title, severity, description, metadata)
				VALUES (pg_catalog.format('Anomalies on %s metrics within %s minutes', metrics, pol.correlation_window_minutes), worst,
					names, pg_catalog.jsonb_build_object('source', 'auto', 'reason', 'correlated alerts'))
				RETURNING id INTO inc_id;
				opened := opened + 1;
			END IF;
			INSERT INTO thrillmon.incident_alerts (incident_id, alert_id)
			SELECT inc_id, i FROM pg_catalog.unnest(ids) i ON CONFLICT DO NOTHING;
		END IF;
	END IF;
	RETURN opened;
END
$fn$;
COMMENT ON FUNCTION thrillmon._auto_incidents(uuid[]) IS 'Internal: opens incidents for critical or correlated alerts';

------------------------------------------------------------------------------------------------
-- The detection pass
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._config_for(p_metric text)
RETURNS thrillmon.anomaly_detection_config
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT c.* FROM thrillmon.anomaly_detection_config c
	WHERE c.metric_name IN (p_metric, '*')
	ORDER BY c.metric_name = '*' LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._config_for(text) IS 'Internal: a metric''s detection configuration (its row or the ''*'' defaults)';

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
	-- The BRIN indexes only describe page ranges that were summarised; the pages filled since
	-- the last summary would all be read (and rechecked) by the scan. Summarising the days this
	-- pass reads costs a look at those new pages only, and keeps the scan to the ranges that
	-- hold the new points.
	PERFORM pg_catalog.brin_summarize_new_values(i)
	FROM (SELECT pg_catalog.to_regclass(pg_catalog.format('thrillmon.metric_time_series_p%s_time_brin_idx',
	              pg_catalog.to_char(d, 'YYYYMMDD'))) AS i
	      FROM pg_catalog.generate_series(
	              pg_catalog.date_trunc('day', coalesce(prog.horizon, upto) AT TIME ZONE 'UTC'),
	              pg_catalog.date_trunc('day', upto AT TIME ZONE 'UTC'), interval '1 day') d
	      UNION ALL SELECT 'thrillmon.metric_time_series_default_time_brin_idx'::pg_catalog.regclass) x
	WHERE i IS NOT NULL;

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

CREATE FUNCTION thrillmon.detect_anomalies()
RETURNS SETOF thrillmon.anomaly_detections
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	run_id bigint := thrillmon._job_begin('detect', 'all');
	n bigint;
BEGIN
	RETURN QUERY SELECT * FROM thrillmon._detect_run();
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM thrillmon._job_end(run_id, 'succeeded', n, pg_catalog.jsonb_build_object('anomalies', n), NULL);
END
$fn$;
COMMENT ON FUNCTION thrillmon.detect_anomalies() IS
	'Runs detection now over every enabled metric (the points that arrived since the last pass) and returns the new anomalies';

------------------------------------------------------------------------------------------------
-- The worker's job list and the pg_cron schedule gain detection
------------------------------------------------------------------------------------------------

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
		result := pg_catalog.jsonb_build_object('anomalies', n, 'alerts', alerts);
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
	FOR j IN SELECT * FROM (VALUES
		('collect', 'thrillmon-collect', '* * * * *', 'SELECT thrillmon.collect_metrics(true)'),
		('detect', 'thrillmon-detect', '*/5 * * * *', 'SELECT count(*) FROM thrillmon.detect_anomalies()'),
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

------------------------------------------------------------------------------------------------
-- Privileges for what this version adds
------------------------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA thrillmon FROM PUBLIC;
GRANT SELECT ON thrillmon.incident_policy, thrillmon.detector_progress TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision) TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.detect_anomalies(), thrillmon.acknowledge_alert(uuid), thrillmon.resolve_alert(uuid),
	thrillmon.create_incident(text, text, uuid[], text), thrillmon.link_alerts(uuid, uuid[]),
	thrillmon.update_incident_status(uuid, text) TO thrillmon_admin;
GRANT UPDATE ON thrillmon.incident_policy TO thrillmon_admin;
