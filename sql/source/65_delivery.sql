-- Alert delivery: channels (checked as they are written), the outbox the alert paths fill in
-- their own transaction (_enqueue_deliveries, called by _notify_alert), what the delivery worker
-- (src/pg/delivery.cpp) claims and records, Alertmanager's format and re-sends, test_channel(),
-- and silences and maintenance windows.

-- A URL's problem as a channel's target: NULL when it is an http(s) URL whose host
-- thrillmon.notify_allowed_hosts allows, else why not. (C: the setting is superuser-only, and the
-- check is the one the worker repeats before every request.)
CREATE FUNCTION thrillmon._url_problem(url text)
RETURNS text
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'thrillmon_url_problem';
COMMENT ON FUNCTION thrillmon._url_problem(text) IS 'Internal: why a URL cannot be a channel''s (NULL: it can)';

-- One POST now, from this backend, with the worker's rules (allow-list, no redirects, timeout,
-- bounded answer). Only test_channel() calls it: no role is granted it.
CREATE FUNCTION thrillmon._http_post(url text, header_lines text, body text, timeout_ms integer,
	OUT http_status integer, OUT latency_ms double precision, OUT error text, OUT response text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_http_post';
COMMENT ON FUNCTION thrillmon._http_post(text, text, text, integer) IS 'Internal: one HTTP POST under the delivery rules (test_channel())';

-- The seconds of a delivery setting; without the library loaded, the default. (current_setting()
-- shows a value in its unit, '1d' or '5min', which reads as an interval: it is called on every
-- claim and attempt, where a scan of pg_settings would cost more than the rest.)
CREATE FUNCTION thrillmon._delivery_setting(p_name text, p_default integer)
RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT coalesce(EXTRACT(EPOCH FROM pg_catalog.current_setting(p_name, true)::interval)::integer, p_default)
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_setting(text, integer) IS 'Internal: a delivery setting in seconds';

-- Checks a channel as it is written: the bound on channels, a URL that may be reached, headers
-- that are plain strings and cannot smuggle a second header or replace the ones thrillmon sets.
CREATE FUNCTION thrillmon._check_channel()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	problem text;
	h record;
BEGIN
	IF TG_OP = 'INSERT' AND (SELECT pg_catalog.count(*) FROM thrillmon.notification_channels) >= @limit:max_channels@ THEN
		RAISE EXCEPTION 'thrillmon: at most @limit:max_channels@ notification channels'
			USING ERRCODE = '54000', HINT = 'Delete or reuse a channel; one channel can carry every alert.';
	END IF;
	problem := thrillmon._url_problem(NEW.url);
	IF problem LIKE '%thrillmon.notify_allowed_hosts%' THEN
		RAISE EXCEPTION 'thrillmon: channel "%" cannot use this URL: %', NEW.name, problem USING ERRCODE = '42501',
			HINT = 'A superuser lists the hosts channels may reach in thrillmon.notify_allowed_hosts (ALTER SYSTEM, then reload).';
	ELSIF problem IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: channel "%" cannot use this URL: %', NEW.name, problem USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.octet_length(NEW.headers::text) > @limit:max_headers_bytes@ THEN
		RAISE EXCEPTION 'thrillmon: channel "%" headers take more than @limit:max_headers_bytes@ bytes', NEW.name USING ERRCODE = '54000';
	END IF;
	FOR h IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(NEW.headers) e LOOP
		IF pg_catalog.jsonb_typeof(h.value) <> 'string' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" header "%" must be a string', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF h.key !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{1,128}$' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" has an invalid header name "%"', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF (h.value #>> '{}') ~ '[[:cntrl:]]' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" header "%" contains a control character', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF pg_catalog.lower(h.key) IN ('host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'idempotency-key', 'expect') THEN
			RAISE EXCEPTION 'thrillmon: channel "%" cannot set header "%": thrillmon sets it', NEW.name, h.key USING ERRCODE = '22023';
		END IF;
	END LOOP;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION thrillmon._check_channel() IS 'Internal: checks a notification channel as it is written';
CREATE TRIGGER check_channel BEFORE INSERT OR UPDATE ON thrillmon.notification_channels
	FOR EACH ROW EXECUTE FUNCTION thrillmon._check_channel();

-- What readers may know of the channels: everything but the URL and headers.
CREATE VIEW thrillmon.channel_status AS
SELECT c.name, c.kind, c.enabled, c.min_severity, c.metric_pattern, c.timeout_ms,
	(SELECT pg_catalog.count(*) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'pending') AS pending,
	(SELECT pg_catalog.min(d.created_at) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'pending') AS oldest_pending_at,
	(SELECT pg_catalog.count(*) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'dead'
	   AND d.finished_at > pg_catalog.now() - interval '1 day') AS dead_last_day,
	coalesce(s.consecutive_failures, 0) AS consecutive_failures,
	s.last_success_at, s.last_failure_at, s.last_error, s.last_resend_at
FROM thrillmon.notification_channels c
LEFT JOIN thrillmon.channel_state s ON s.channel = c.name
ORDER BY c.name;
COMMENT ON VIEW thrillmon.channel_status IS
	'Each notification channel without its URL or headers: deliveries pending and dead in the last day, failures in a row, last success and error';

-- The webhook payload: what NOTIFY thrillmon_alerts carries, plus the idempotency key, the
-- alertname, category, deviation and database (the other kinds are made from it at send time).
-- The idempotency key is stable across re-sends and distinct per event (each escalation has its
-- own, by the severity reached). Alertmanager's alertname is the alert type in camel case:
-- anomaly -> ThrillmonAnomaly, delivery_failing -> ThrillmonDeliveryFailing.
CREATE FUNCTION thrillmon._alert_payload(p_alert thrillmon.system_alerts, p_event text, p_previous_severity text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'event', p_event,
		'idempotency_key', p_alert.id::text || ':' || p_event || CASE WHEN p_event = 'escalated' THEN ':' || p_alert.severity ELSE '' END,
		'alert_id', p_alert.id,
		'alertname', 'Thrillmon' || pg_catalog.replace(pg_catalog.initcap(pg_catalog.regexp_replace(p_alert.alert_type, '[^A-Za-z0-9]+', ' ', 'g')), ' ', ''),
		'alert_type', pg_catalog.left(p_alert.alert_type, 128),
		'metric', pg_catalog.left(p_alert.metric_name, 200),
		'category', coalesce(p_alert.metadata->>'category',
			(SELECT d.metric_category FROM thrillmon.anomaly_detections d WHERE d.id = p_alert.anomaly_id),
			CASE WHEN p_alert.metric_name IS NULL THEN 'monitoring' ELSE 'custom' END),
		'severity', p_alert.severity,
		'previous_severity', p_previous_severity,
		'channel', p_alert.metadata->>'channel',
		'value', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'value') = 'number' THEN p_alert.metadata->'value' END,
		'baseline', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'baseline') = 'number' THEN p_alert.metadata->'baseline' END,
		'deviation', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'deviation') = 'number' THEN p_alert.metadata->'deviation' END,
		'message', pg_catalog.left(p_alert.message, 2000),
		'database', pg_catalog.current_database(),
		'created_at', p_alert.created_at,
		'resolved_at', p_alert.resolved_at))
$fn$;
COMMENT ON FUNCTION thrillmon._alert_payload(thrillmon.system_alerts, text, text) IS 'Internal: an alert event as a webhook''s JSON';

-- The outbox write: one delivery per enabled channel each alert event is for, in the caller's
-- transaction. The events come as arrays so that a detection pass writes all of its own with one
-- statement, made and planned once per pass, rather than once per alert. A resolution goes only
-- where the alert was announced (an alert the channel never heard of is not resolved to it), so a
-- batch must not hold a resolution after another event of the same alert (the pass writes its
-- resolutions in a batch of their own); ThrillmonDeliveryFailing never goes to the channel it is
-- about. Past @limit:max_pending_deliveries@ pending deliveries (receivers down for long, many
-- alerts) an event is not queued: the alert says so (metadata deliveries_dropped) and
-- health_check() fails.
-- (jit off: the planner, which knows no channel count, prices the resolution check once per
-- event and guessed channel, past jit_above_cost, and compiling would cost more than the insert.)
CREATE FUNCTION thrillmon._enqueue_deliveries(p_alerts thrillmon.system_alerts[], p_events text[], p_previous_severities text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
	total integer := coalesce(pg_catalog.cardinality(p_alerts), 0);
	channels integer;
	one_by_one boolean;
	i integer := 1;
	j integer;
	n integer;
	written integer := 0;
BEGIN
	SELECT pg_catalog.count(*) INTO channels FROM thrillmon.notification_channels c WHERE c.enabled;
	IF total = 0 OR channels = 0 THEN
		RETURN 0;
	END IF;
	-- The pending rows lie between the oldest pending id and the sequence's last: when that span,
	-- with all this batch could add, stays below the bound, so does their number, and nothing is
	-- counted (counting on every pass would cost it time in proportion to the outbox). Near the
	-- bound the events go one at a time, each after a count.
	one_by_one := (SELECT q.last_value FROM thrillmon.deliveries_id_seq q) - coalesce((
	        SELECT pg_catalog.min(f.id) FROM thrillmon.notification_channels c
	        CROSS JOIN LATERAL (SELECT x.id FROM thrillmon.deliveries x WHERE x.channel = c.name AND x.status = 'pending'
	                            ORDER BY x.id LIMIT 1) f), 2^62) + total::bigint * channels >= @limit:max_pending_deliveries@ - 1;
	WHILE i <= total LOOP
		j := CASE WHEN one_by_one THEN i ELSE total END;
		IF one_by_one AND (SELECT pg_catalog.count(*) FROM (SELECT 1 FROM thrillmon.deliveries d WHERE d.status = 'pending'
		                   LIMIT @limit:max_pending_deliveries@) x) >= @limit:max_pending_deliveries@ THEN
			UPDATE thrillmon.system_alerts s SET metadata = coalesce(s.metadata, '{}')
				|| pg_catalog.jsonb_build_object('deliveries_dropped', coalesce(s.metadata->'deliveries_dropped', '[]') || pg_catalog.to_jsonb(p_events[i]))
			WHERE s.id = (p_alerts[i]).id;
			RAISE WARNING 'thrillmon: % deliveries are pending (the most the outbox holds); the % event of alert % is not delivered',
				@limit:max_pending_deliveries@, p_events[i], (p_alerts[i]).id;
		ELSE
			-- Each event's payload, which holds its key, is made once, whatever the number of channels
			-- (materialized: joined first, it would be made once per channel). The alerts are read by
			-- unnest(): subscripting an array of rows walks it from its start on each access.
			WITH e AS MATERIALIZED (
				SELECT o.alert, o.ord, p_events[i - 1 + o.ord] AS event,
					thrillmon._alert_payload(o.alert, p_events[i - 1 + o.ord], p_previous_severities[i - 1 + o.ord]) AS payload,
					thrillmon._severity_rank((o.alert).severity) AS rank
				FROM (SELECT a AS alert, pg_catalog.row_number() OVER () AS ord FROM pg_catalog.unnest(p_alerts[i:j]) a) o
			)
			INSERT INTO thrillmon.deliveries (channel, alert_id, event, idempotency_key, payload)
			SELECT c.name, (e.alert).id, e.event, e.payload->>'idempotency_key', e.payload
			FROM e
			-- (Ranks once per event, above, and once per channel, here: not once per pair.)
			JOIN (SELECT c.name, c.metric_pattern, thrillmon._severity_rank(c.min_severity) AS min_rank
			      FROM thrillmon.notification_channels c WHERE c.enabled) c
			  ON e.rank >= c.min_rank
			 AND ((e.alert).metric_name IS NULL OR (e.alert).metric_name LIKE c.metric_pattern)
			 AND (e.event <> 'resolved' OR EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = (e.alert).id AND d.channel = c.name))
			 AND NOT ((e.alert).alert_type = 'delivery_failing' AND c.name = (e.alert).metadata->>'channel')
			ORDER BY e.ord, c.name
			ON CONFLICT ON CONSTRAINT delivery_key_unique DO NOTHING;
			GET DIAGNOSTICS n = ROW_COUNT;
			written := written + n;
		END IF;
		i := j + 1;
	END LOOP;
	RETURN written;
END
$fn$;
COMMENT ON FUNCTION thrillmon._enqueue_deliveries(thrillmon.system_alerts[], text[], text[]) IS
	'Internal: writes alert events'' deliveries to the outbox (in the caller''s transaction)';

-- What a channel of that kind is sent for a delivery, made at send time (Alertmanager's endsAt
-- is relative to the moment of sending).
CREATE FUNCTION thrillmon._delivery_body(p_payload jsonb, p_kind text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- An open alert stays open on Alertmanager's side for four re-send intervals past each send.
	hold interval := pg_catalog.make_interval(secs => 4 * thrillmon._delivery_setting('thrillmon.alertmanager_resend_interval', 60));
	firing jsonb;
BEGIN
	IF p_kind = 'webhook' THEN
		RETURN p_payload::text;
	ELSIF p_kind = 'slack' THEN
		RETURN pg_catalog.jsonb_build_object('text', pg_catalog.format('[thrillmon %s] %s%s%s',
			p_payload->>'database',
			CASE p_payload->>'event' WHEN 'resolved' THEN 'RESOLVED: ' WHEN 'escalated' THEN 'ESCALATED to ' || (p_payload->>'severity') || ': '
				WHEN 'test' THEN 'TEST: ' ELSE pg_catalog.upper(p_payload->>'severity') || ': ' END,
			p_payload->>'message',
			CASE WHEN p_payload ? 'alert_id' THEN ' (alert ' || (p_payload->>'alert_id') || ')' ELSE '' END))::text;
	END IF;
	-- Alertmanager: an array of alerts, label values and annotations strings.
	firing := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'labels', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'alertname', p_payload->>'alertname',
			'metric', p_payload->>'metric',
			'channel', p_payload->>'channel',
			'category', p_payload->>'category',
			'severity', p_payload->>'severity',
			'database', p_payload->>'database')),
		'annotations', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'summary', pg_catalog.left(p_payload->>'message', 200),
			'message', p_payload->>'message',
			'value', p_payload->>'value',
			'baseline', p_payload->>'baseline',
			'deviation', p_payload->>'deviation',
			'alert_id', p_payload->>'alert_id')),
		'startsAt', p_payload->'created_at',
		'endsAt', CASE WHEN p_payload->>'event' = 'resolved' THEN coalesce(p_payload->'resolved_at', pg_catalog.to_jsonb(pg_catalog.now()))
			ELSE pg_catalog.to_jsonb(pg_catalog.now() + hold) END));
	IF p_payload->>'event' = 'escalated' AND p_payload ? 'previous_severity' THEN
		-- The severity is a label, so part of the alert's identity there: the alert at its old
		-- severity ends now, or it would stay firing beside the new one until it expired.
		RETURN pg_catalog.jsonb_build_array(
			pg_catalog.jsonb_set(pg_catalog.jsonb_set(firing, '{labels,severity}', p_payload->'previous_severity'),
				'{endsAt}', pg_catalog.to_jsonb(pg_catalog.now())),
			firing)::text;
	END IF;
	RETURN pg_catalog.jsonb_build_array(firing)::text;
END
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_body(jsonb, text) IS 'Internal: the request body a channel of that kind is sent for a delivery';

-- The request headers for a channel, one "Name: value" per line (the worker splits them).
CREATE FUNCTION thrillmon._header_lines(p_headers jsonb, p_key text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.concat_ws(E'\n', 'Content-Type: application/json',
		CASE WHEN p_key IS NOT NULL THEN 'Idempotency-Key: ' || p_key END,
		(SELECT pg_catalog.string_agg(e.key || ': ' || e.value, E'\n' ORDER BY e.key) FROM pg_catalog.jsonb_each_text(p_headers) e))
$fn$;
COMMENT ON FUNCTION thrillmon._header_lines(jsonb, text) IS 'Internal: a request''s header lines';

-- The delivery worker's claim: marks what has waited longer than thrillmon.delivery_max_age dead,
-- then returns, for each enabled channel, its oldest deliveries due, up to
-- @limit:max_in_flight_per_channel@ in flight per channel (those in flight, p_in_flight, count
-- and are skipped), never one whose alert has an earlier delivery to that channel still pending
-- (so an alert's events go one at a time, in order: a resolved never overtakes its new; a dead one
-- no longer holds the rest back).
CREATE FUNCTION thrillmon._deliveries_due(p_in_flight bigint[])
RETURNS TABLE (delivery_id bigint, channel text, kind text, url text, header_lines text, timeout_ms integer, body text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	max_age interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.delivery_max_age', 86400));
BEGIN
	UPDATE thrillmon.deliveries d SET status = 'dead', finished_at = pg_catalog.now(),
		last_error = pg_catalog.left(coalesce(d.last_error, 'not attempted'), 900) || ' (given up after thrillmon.delivery_max_age)'
	WHERE d.status = 'pending' AND d.created_at < pg_catalog.now() - max_age;
	-- A failing channel that was deleted or disabled no longer has a failure to report.
	-- (Through the index of open fingerprints: the open alerts, not the whole table, every claim.)
	PERFORM thrillmon._resolve_delivery_failing(a.metadata->>'channel')
	FROM thrillmon.system_alerts a
	WHERE a.resolved_at IS NULL AND a.fingerprint IS NOT NULL AND a.fingerprint LIKE 'delivery:%'
	  AND a.alert_type = 'delivery_failing'
	  AND NOT EXISTS (SELECT 1 FROM thrillmon.notification_channels c WHERE c.name = a.metadata->>'channel' AND c.enabled);
	-- Per channel, its pending deliveries in order (deliveries_pending_idx), the first ones due; the
	-- bodies are made for the chosen rows only.
	RETURN QUERY
	SELECT d.id, c.name, c.kind, c.url, thrillmon._header_lines(c.headers, d.idempotency_key), c.timeout_ms,
		thrillmon._delivery_body(d.payload, c.kind)
	FROM thrillmon.notification_channels c
	CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM thrillmon.deliveries f
	                    WHERE f.id = ANY (coalesce(p_in_flight, '{}')) AND f.channel = c.name) busy
	CROSS JOIN LATERAL (
		SELECT x.id, x.idempotency_key, x.payload FROM thrillmon.deliveries x
		WHERE x.channel = c.name AND x.status = 'pending' AND x.next_attempt_at <= pg_catalog.now()
		  AND NOT (x.id = ANY (coalesce(p_in_flight, '{}')))
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.deliveries e
		                  WHERE e.alert_id = x.alert_id AND e.channel = x.channel AND e.id < x.id AND e.status = 'pending')
		ORDER BY x.id LIMIT GREATEST(@limit:max_in_flight_per_channel@ - busy.n, 0)) d
	WHERE c.enabled
	ORDER BY c.name, d.id;
END
$fn$;
COMMENT ON FUNCTION thrillmon._deliveries_due(bigint[]) IS 'Internal: the delivery worker''s next requests per channel';

-- Alertmanager forgets an alert it is not told about again before its endsAt: every
-- thrillmon.alertmanager_resend_interval each Alertmanager channel with nothing in flight is sent
-- every alert still open that it was told of and has nothing pending for (an alert whose new or
-- resolved is waiting goes in order through the outbox instead).
CREATE FUNCTION thrillmon._resends_due(p_busy text[])
RETURNS TABLE (channel text, url text, header_lines text, timeout_ms integer, body text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	every interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.alertmanager_resend_interval', 60));
	c thrillmon.notification_channels;
	alerts jsonb;
BEGIN
	FOR c IN SELECT ch.* FROM thrillmon.notification_channels ch
		LEFT JOIN thrillmon.channel_state s ON s.channel = ch.name
		WHERE ch.enabled AND ch.kind = 'alertmanager' AND NOT (ch.name = ANY (coalesce(p_busy, '{}')))
		  AND (s.last_resend_at IS NULL OR s.last_resend_at <= pg_catalog.now() - every)
		ORDER BY ch.name
	LOOP
		-- (ON CONSTRAINT: the output column "channel" would make a column list ambiguous.)
		INSERT INTO thrillmon.channel_state AS s (channel, last_resend_at) VALUES (c.name, pg_catalog.now())
		ON CONFLICT ON CONSTRAINT channel_state_pkey DO UPDATE SET last_resend_at = EXCLUDED.last_resend_at;
		SELECT pg_catalog.jsonb_agg(b.elem) INTO alerts
		FROM thrillmon.system_alerts a
		CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(thrillmon._delivery_body(thrillmon._alert_payload(a, 'new'), 'alertmanager')::jsonb) b(elem)
		WHERE a.resolved_at IS NULL
		  AND EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = a.id AND d.channel = c.name AND d.status = 'delivered')
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = a.id AND d.channel = c.name AND d.status = 'pending');
		IF alerts IS NOT NULL THEN
			channel := c.name;
			url := c.url;
			header_lines := thrillmon._header_lines(c.headers, NULL);
			timeout_ms := c.timeout_ms;
			body := alerts::text;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._resends_due(text[]) IS 'Internal: Alertmanager re-sends of the alerts still open';

CREATE FUNCTION thrillmon._resolve_delivery_failing(p_channel text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	al thrillmon.system_alerts;
BEGIN
	FOR al IN UPDATE thrillmon.system_alerts s SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		WHERE s.fingerprint = 'delivery:' || p_channel AND s.resolved_at IS NULL
		RETURNING s.*
	LOOP
		PERFORM thrillmon._notify_alert(al, 'resolved');
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._resolve_delivery_failing(text) IS 'Internal: resolves a channel''s ThrillmonDeliveryFailing alert';

-- Records one finished request. A delivery's failure is retried after an exponential backoff
-- with jitter (0.5 to 1 times 2^(attempts-1) seconds, at most thrillmon.delivery_retry_max), and
-- goes dead once its next try would be past thrillmon.delivery_max_age. Three failures in a row
-- on a channel raise ThrillmonDeliveryFailing (sent through the other channels); its next success
-- resolves it.
CREATE FUNCTION thrillmon._delivery_attempted(p_delivery_id bigint, p_channel text, p_purpose text, p_at timestamptz,
	p_http_status integer, p_error text, p_latency_ms double precision, p_excerpt text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	ok boolean := p_error IS NULL AND p_http_status BETWEEN 200 AND 299;
	why text := coalesce(p_error, 'HTTP ' || p_http_status::text);
	max_age interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.delivery_max_age', 86400));
	retry_max integer := thrillmon._delivery_setting('thrillmon.delivery_retry_max', 300);
	failures integer;
	al thrillmon.system_alerts;
BEGIN
	INSERT INTO thrillmon.delivery_attempts (delivery_id, channel, purpose, attempted_at, http_status, error, latency_ms, response_excerpt)
	SELECT p_delivery_id, p_channel, p_purpose, p_at, NULLIF(p_http_status, 0), pg_catalog.left(p_error, 1000),
		pg_catalog.round(p_latency_ms::numeric, 3)::double precision,
		pg_catalog.left(p_excerpt, @limit:response_excerpt_chars@)
	WHERE p_delivery_id IS NULL OR EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.id = p_delivery_id);
	IF p_delivery_id IS NOT NULL THEN
		UPDATE thrillmon.deliveries d
		SET attempts = d.attempts + 1, last_http_status = NULLIF(p_http_status, 0),
			last_error = CASE WHEN ok THEN NULL ELSE pg_catalog.left(why, 1000) END,
			status = CASE WHEN ok THEN 'delivered' WHEN n.next_at > d.created_at + max_age THEN 'dead' ELSE 'pending' END,
			finished_at = CASE WHEN ok OR n.next_at > d.created_at + max_age THEN pg_catalog.now() END,
			next_attempt_at = CASE WHEN ok THEN d.next_attempt_at ELSE n.next_at END
		FROM (SELECT pg_catalog.now() + pg_catalog.make_interval(secs =>
				LEAST(retry_max::double precision, pg_catalog.power(2, LEAST(dd.attempts, 30))) * (0.5 + 0.5 * pg_catalog.random())) AS next_at
		      FROM thrillmon.deliveries dd WHERE dd.id = p_delivery_id) n
		WHERE d.id = p_delivery_id AND d.status = 'pending';
	END IF;
	IF p_purpose = 'test' OR NOT EXISTS (SELECT 1 FROM thrillmon.notification_channels c WHERE c.name = p_channel) THEN
		RETURN;
	END IF;
	INSERT INTO thrillmon.channel_state AS s (channel, consecutive_failures, last_success_at, last_failure_at, last_error)
	VALUES (p_channel, CASE WHEN ok THEN 0 ELSE 1 END, CASE WHEN ok THEN p_at END, CASE WHEN NOT ok THEN p_at END,
		CASE WHEN NOT ok THEN pg_catalog.left(why, 1000) END)
	ON CONFLICT (channel) DO UPDATE SET
		consecutive_failures = CASE WHEN ok THEN 0 ELSE s.consecutive_failures + 1 END,
		last_success_at = CASE WHEN ok THEN p_at ELSE s.last_success_at END,
		last_failure_at = CASE WHEN ok THEN s.last_failure_at ELSE p_at END,
		last_error = CASE WHEN ok THEN s.last_error ELSE pg_catalog.left(why, 1000) END
	RETURNING s.consecutive_failures INTO failures;
	IF ok THEN
		PERFORM thrillmon._resolve_delivery_failing(p_channel);
	ELSIF failures >= 3 AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s
	                                    WHERE s.fingerprint = 'delivery:' || p_channel AND s.resolved_at IS NULL) THEN
		INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, fingerprint)
		VALUES ('delivery_failing', 'high',
			pg_catalog.left(pg_catalog.format('thrillmon cannot deliver alerts to channel "%s": %s failures in a row, the last: %s',
				p_channel, failures, why), 2000),
			pg_catalog.jsonb_build_object('channel', p_channel, 'error', pg_catalog.left(why, 1000), 'category', 'monitoring'),
			'delivery:' || p_channel)
		RETURNING * INTO al;
		PERFORM thrillmon._notify_alert(al, 'new');
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_attempted(bigint, text, text, timestamptz, integer, text, double precision, text) IS
	'Internal: records a request the delivery worker made, schedules a retry or gives up';

CREATE FUNCTION thrillmon.test_channel(channel_name text)
RETURNS TABLE (http_status integer, latency_ms double precision, error text, response text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	c thrillmon.notification_channels;
	payload jsonb;
	r record;
	at timestamptz := pg_catalog.clock_timestamp();
BEGIN
	SELECT * INTO c FROM thrillmon.notification_channels ch WHERE ch.name = channel_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no notification channel "%"', channel_name USING ERRCODE = '42704';
	END IF;
	payload := pg_catalog.jsonb_build_object('event', 'test', 'idempotency_key', 'test:' || pg_catalog.gen_random_uuid(),
		'alertname', 'ThrillmonTest', 'alert_type', 'test', 'category', 'monitoring', 'severity', 'low',
		'message', pg_catalog.format('Test message from thrillmon in database %s to channel "%s"', pg_catalog.current_database(), c.name),
		'database', pg_catalog.current_database(), 'created_at', pg_catalog.now());
	SELECT * INTO r FROM thrillmon._http_post(c.url, thrillmon._header_lines(c.headers, payload->>'idempotency_key'),
		thrillmon._delivery_body(payload, c.kind), c.timeout_ms);
	PERFORM thrillmon._delivery_attempted(NULL, c.name, 'test', at, r.http_status, r.error, r.latency_ms, r.response);
	http_status := r.http_status;
	latency_ms := r.latency_ms;
	error := r.error;
	response := r.response;
	RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION thrillmon.test_channel(text) IS
	'Sends a test message to the channel now, from this session, and returns what the receiver answered (recorded in delivery_attempts)';

------------------------------------------------------------------------------------------------
-- Silences and maintenance windows
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._create_silence(p_pattern text, p_starts timestamptz, p_ends timestamptz, p_reason text, p_maintenance boolean)
RETURNS thrillmon.silence_rules
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	s thrillmon.silence_rules;
BEGIN
	IF p_pattern IS NULL OR p_starts IS NULL OR p_ends IS NULL OR p_reason IS NULL OR pg_catalog.btrim(p_reason) = '' THEN
		RAISE EXCEPTION 'thrillmon: a % needs a metric pattern, a start, an end and a reason',
			CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END USING ERRCODE = '22004';
	ELSIF p_ends <= p_starts THEN
		RAISE EXCEPTION 'thrillmon: a % must end after it starts (% is not after %)',
			CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END, p_ends, p_starts USING ERRCODE = '22023';
	ELSIF p_ends <= pg_catalog.now() THEN
		RAISE EXCEPTION 'thrillmon: a % that ended at % would cover nothing', CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END,
			p_ends USING ERRCODE = '22023';
	ELSIF p_ends - p_starts > interval '366 days' THEN
		RAISE EXCEPTION 'thrillmon: a silence or maintenance window lasts at most 366 days' USING ERRCODE = '22023';
	END IF;
	-- One at a time, so two callers cannot both take the last place.
	LOCK TABLE thrillmon.silence_rules IN SHARE ROW EXCLUSIVE MODE;
	IF (SELECT pg_catalog.count(*) FROM thrillmon.silence_rules r WHERE r.expired_at IS NULL AND r.ends_at > pg_catalog.now())
	   >= @limit:max_active_silences@ THEN
		RAISE EXCEPTION 'thrillmon: at most @limit:max_active_silences@ silences and maintenance windows can be active or pending'
			USING ERRCODE = '54000', HINT = 'Expire some (thrillmon.expire_silence(id)), or cover more metrics with one pattern.';
	END IF;
	INSERT INTO thrillmon.silence_rules (metric_pattern, starts_at, ends_at, reason, maintenance)
	VALUES (p_pattern, p_starts, p_ends, p_reason, p_maintenance)
	RETURNING * INTO s;
	RETURN s;
END
$fn$;
COMMENT ON FUNCTION thrillmon._create_silence(text, timestamptz, timestamptz, text, boolean) IS 'Internal: the body of create_silence() and create_maintenance_window()';

CREATE FUNCTION thrillmon.create_silence(metric_pattern text, starts_at timestamptz, ends_at timestamptz, reason text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT (thrillmon._create_silence($1, $2, $3, $4, false)).id
$fn$;
COMMENT ON FUNCTION thrillmon.create_silence(text, timestamptz, timestamptz, text) IS
	'Silences metrics LIKE metric_pattern from starts_at to ends_at: their anomalies are recorded (marked with the silence) but raise no alert and deliver nothing; returns its id';

CREATE FUNCTION thrillmon.create_maintenance_window(metric_pattern text, starts_at timestamptz, ends_at timestamptz, reason text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT (thrillmon._create_silence($1, $2, $3, $4, true)).id
$fn$;
COMMENT ON FUNCTION thrillmon.create_maintenance_window(text, timestamptz, timestamptz, text) IS
	'A silence whose metrics'' points inside it are also neither scored nor learned by the detectors (a deploy or migration does not teach them a new normal); returns its id';

-- Ends a silence now: it covers nothing from now on (expired_at cuts it short). A maintenance
-- window keeps what it covered until then, so a detector rebuilt from history later still skips
-- those points.
CREATE FUNCTION thrillmon.expire_silence(silence_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM thrillmon.silence_rules r WHERE r.id = silence_id) THEN
		RAISE EXCEPTION 'thrillmon: no silence or maintenance window %', silence_id USING ERRCODE = '42704';
	END IF;
	UPDATE thrillmon.silence_rules r SET expired_at = pg_catalog.now()
	WHERE r.id = silence_id AND r.expired_at IS NULL AND r.ends_at > pg_catalog.now();
	RETURN FOUND;
END
$fn$;
COMMENT ON FUNCTION thrillmon.expire_silence(bigint) IS 'Ends a silence or maintenance window now; false when it had already ended';

CREATE VIEW thrillmon.silences AS
SELECT r.id, CASE WHEN r.maintenance THEN 'maintenance' ELSE 'silence' END AS kind, r.metric_pattern, r.starts_at, r.ends_at,
	CASE WHEN r.expired_at IS NOT NULL THEN 'expired'
		WHEN r.ends_at <= pg_catalog.now() THEN 'ended'
		WHEN r.starts_at > pg_catalog.now() THEN 'pending'
		ELSE 'active' END AS state,
	r.reason, r.created_by, r.created_at, r.expired_at, r.silenced_anomalies
FROM thrillmon.silence_rules r
ORDER BY r.starts_at DESC, r.id DESC;
COMMENT ON VIEW thrillmon.silences IS
	'Silences and maintenance windows: state pending, active, ended or expired (ended early by expire_silence()), and how many anomalies each silenced';

-- The silence covering a metric's anomaly, if any (a maintenance window first): one in force
-- now (an anomaly found while it is on, whenever its point was), or one that covered the point
-- (a pass that runs late, after the silence ended).
CREATE FUNCTION thrillmon._silence_for(p_metric text, p_at timestamptz)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT r.id FROM thrillmon.silence_rules r
	WHERE ((r.starts_at <= p_at AND r.ends_at > p_at AND (r.expired_at IS NULL OR r.expired_at > p_at))
	    OR (r.starts_at <= pg_catalog.now() AND r.ends_at > pg_catalog.now() AND r.expired_at IS NULL))
	  AND p_metric LIKE r.metric_pattern
	ORDER BY r.maintenance DESC, r.id
	LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._silence_for(text, timestamptz) IS 'Internal: the silence covering a metric''s point, or NULL';
