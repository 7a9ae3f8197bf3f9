-- Alerts and incidents: acknowledging and resolving alerts (NOTIFY thrillmon_alerts on commit, and
-- the outbox of 65_delivery.sql in the same transaction),
-- incidents by hand, and the incidents detection opens by itself. Alerts are raised by the
-- detection pass (70_detection.sql).

-- 1 for low up to 4 for critical (the vocabulary's order), 0 for anything else.
CREATE FUNCTION thrillmon._severity_rank(p_severity text)
RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT coalesce(pg_catalog.array_position(@array:severity@::text[], p_severity), 0)
$fn$;
COMMENT ON FUNCTION thrillmon._severity_rank(text) IS 'Internal: orders severities';

-- NOTIFY thrillmon_alerts: delivered when (and only if) the transaction commits. NOTIFY refuses a
-- payload of 8000 bytes or more, and an error here would fail the transaction that resolves or
-- raises the alert: every later detection pass too, if the alert waits to be resolved. The large
-- fields are the alert's own (an admin may edit its metadata, metric name and message), so past
-- 7,900 bytes value and baseline are kept only as short numbers, the texts are cut to 200
-- characters and the payload says "truncated": true.
CREATE FUNCTION thrillmon._notify_listeners(p_alert thrillmon.system_alerts, p_event text)
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
COMMENT ON FUNCTION thrillmon._notify_listeners(thrillmon.system_alerts, text) IS
	'Internal: NOTIFY thrillmon_alerts of an alert event, with a JSON payload';

-- An alert event (new, escalated, resolved) outside the detection pass: NOTIFY, and the event's
-- deliveries to the outbox (65_delivery.sql), in the same transaction. (The pass notifies each
-- event as it happens and writes the deliveries of all of them at once.)
CREATE FUNCTION thrillmon._notify_alert(p_alert thrillmon.system_alerts, p_event text, p_previous_severity text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	PERFORM thrillmon._notify_listeners(p_alert, p_event);
	PERFORM thrillmon._enqueue_deliveries(ARRAY[p_alert], ARRAY[p_event], ARRAY[p_previous_severity]);
END
$fn$;
COMMENT ON FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text, text) IS
	'Internal: an alert event (new, escalated, resolved): NOTIFY thrillmon_alerts with a JSON payload, and its deliveries to the outbox';

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
	IF $2 IS NULL OR $2 NOT IN (@list:severity@) THEN
		RAISE EXCEPTION 'thrillmon: unknown severity "%"', coalesce($2, 'NULL')
			USING ERRCODE = '22023', HINT = 'Severities: @words:severity@.';
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
	order_of constant text[] := @array:incident_status@;
	from_rank integer;
	to_rank integer;
BEGIN
	to_rank := pg_catalog.array_position(order_of, $2);
	IF to_rank IS NULL THEN
		RAISE EXCEPTION 'thrillmon: unknown incident status "%"', coalesce($2, 'NULL')
			USING ERRCODE = '22023', HINT = 'Statuses: @words:incident_status@.';
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
			WHERE i.status IN (@list:incident_status_unfinished@) AND i.metadata->>'source' = 'auto' AND i.detected_at > pg_catalog.now() - win
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
		                  WHERE ia.alert_id = s.id AND i.status IN (@list:incident_status_unfinished@));
		IF metrics >= pol.correlation_min_metrics AND ids && p_new_alerts THEN
			SELECT i.id INTO inc_id FROM thrillmon.incidents i
			WHERE i.status IN (@list:incident_status_unfinished@) AND i.metadata->>'source' = 'auto' AND i.detected_at > pg_catalog.now() - win
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
