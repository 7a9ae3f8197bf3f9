-- Delivery (0.8.0) inside one transaction, without the delivery worker (test/scripts/delivery.sh
-- sends for real): channels checked as they are written, the outbox written with the alert and
-- only where it belongs, formats, retries and giving up, ThrillmonDeliveryFailing, order per
-- alert, silences and maintenance windows, the bounds, health_check().
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(76);
-- (A metric of a few hundred points is new: its lone anomaly would raise no alert. What is tested
-- here is what alerts do; corroboration has its own section in detection.sql.)
SET thrillmon.corroborate_new_metrics = off;

\ir fixtures/clean_slate.sql
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0;

-- A metric of 300 points a minute apart ending a minute ago, around 100 (sd ~0.6), with a spike
-- of +p_spike at point p_at.
CREATE FUNCTION pg_temp.history(p_name text, p_at integer, p_spike double precision) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(thrillmon.record_metric(p_name, CASE WHEN g = p_at THEN 100 + p_spike ELSE 100 + ((g * 37) % 11 - 5) * 0.2 END,
		'performance', NULL, now() - make_interval(mins => 301 - g))) FROM generate_series(1, 300) g
$$;

-- Channels: the allow-list ------------------------------------------------------------------------------
SET LOCAL thrillmon.notify_allowed_hosts = '';
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'http://127.0.0.1:9/')$$,
	'42501', 'thrillmon: channel "c" cannot use this URL: host "127.0.0.1" port 9 is not in thrillmon.notify_allowed_hosts',
	'an empty thrillmon.notify_allowed_hosts allows no channel');
SET LOCAL thrillmon.notify_allowed_hosts = '127.0.0.1, localhost:9093, *.example.invalid';
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'http://127.0.0.2/')$$,
	'42501', NULL, 'a host not listed is refused');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'http://unknown.invalid/')$$,
	'42501', NULL, 'a host name not listed (nor resolving into a listed address) is refused');
SET LOCAL thrillmon.notify_allowed_hosts = 'localhost:9093';
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'http://localhost:9094/')$$,
	'42501', NULL, 'a listed host on another port is refused');
SET LOCAL thrillmon.notify_allowed_hosts = '127.0.0.1, localhost:9093, *.example.invalid';
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'file:///etc/passwd')$$,
	'22023', 'thrillmon: channel "c" cannot use this URL: URL scheme must be http or https, not "file"', 'file: URLs refused');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'gopher://127.0.0.1/')$$,
	'22023', NULL, 'other schemes refused');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'webhook', 'http://u:pw@127.0.0.1/')$$,
	'22023', NULL, 'credentials in the URL refused (headers are for them)');
SELECT lives_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('ok', 'webhook', 'https://hooks.example.invalid/x')$$,
	'a host under an allowed *.domain');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('c', 'pager', 'http://127.0.0.1/')$$,
	'23514', NULL, 'an unknown kind refused');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('bad name', 'webhook', 'http://127.0.0.1/')$$,
	'23514', NULL, 'a channel name with a space refused');
-- Headers: strings, one line each, not the ones thrillmon sets.
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url, headers) VALUES ('c', 'webhook', 'http://127.0.0.1/', '{"X-N": 1}')$$,
	'22023', 'thrillmon: channel "c" header "X-N" must be a string', 'a header value must be a string');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url, headers)
	VALUES ('c', 'webhook', 'http://127.0.0.1/', jsonb_build_object('X-A', E'v\r\nX-Evil: 1'))$$,
	'22023', 'thrillmon: channel "c" header "X-A" contains a control character', 'no header smuggling through CR/LF');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url, headers) VALUES ('c', 'webhook', 'http://127.0.0.1/', '{"Host": "x"}')$$,
	'22023', 'thrillmon: channel "c" cannot set header "Host": thrillmon sets it', 'Host cannot be replaced');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url, headers) VALUES ('c', 'webhook', 'http://127.0.0.1/', '{"a b": "x"}')$$,
	'22023', 'thrillmon: channel "c" has an invalid header name "a b"', 'a header name must be a token');
-- At most 32 channels.
DELETE FROM thrillmon.notification_channels;
INSERT INTO thrillmon.notification_channels (name, kind, url, enabled)
SELECT 'n' || g, 'webhook', 'http://127.0.0.1/', false FROM generate_series(1, 32) g;
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('n33', 'webhook', 'http://127.0.0.1/')$$,
	'54000', 'thrillmon: at most 32 notification channels', 'the 33rd channel is refused');
DELETE FROM thrillmon.notification_channels;

-- The outbox ----------------------------------------------------------------------------------------------
INSERT INTO thrillmon.notification_channels (name, kind, url, headers) VALUES
	('hook', 'webhook', 'http://127.0.0.1:9/hook', '{"Authorization": "Bearer secret"}'),
	('am', 'alertmanager', 'http://localhost:9093/api/v2/alerts', '{}'),
	('chat', 'slack', 'http://127.0.0.1:9/chat', '{}');
INSERT INTO thrillmon.notification_channels (name, kind, url, min_severity) VALUES ('pager', 'webhook', 'http://127.0.0.1:9/p', 'critical');
INSERT INTO thrillmon.notification_channels (name, kind, url, metric_pattern) VALUES ('dbonly', 'webhook', 'http://127.0.0.1:9/d', 'db\_%');
INSERT INTO thrillmon.notification_channels (name, kind, url, enabled) VALUES ('off', 'webhook', 'http://127.0.0.1:9/o', false);

SELECT pg_temp.history('spiky', 295, 8) \g /dev/null
-- A pass rolled back delivers nothing.
SAVEPOINT before_pass;
SELECT ok((SELECT count(*) FROM thrillmon.detect_anomalies()) > 0, 'a pass finds the spike');
SELECT ok((SELECT count(*) FROM thrillmon.deliveries) > 0, '... and writes deliveries in its transaction');
ROLLBACK TO SAVEPOINT before_pass;
SELECT is((SELECT count(*)::int FROM thrillmon.deliveries), 0, 'a rolled-back pass leaves no delivery');

SELECT ok((SELECT count(*) FROM thrillmon.detect_anomalies()) > 0, 'the pass again, committed with the test');
CREATE TEMP TABLE al AS SELECT * FROM thrillmon.system_alerts WHERE metric_name = 'spiky';
SELECT is((SELECT count(*)::int FROM al), 1, 'one alert');
SELECT is((SELECT array_agg(channel ORDER BY channel) FROM thrillmon.deliveries),
	CASE WHEN (SELECT severity FROM al) = 'critical' THEN ARRAY['am', 'chat', 'hook', 'pager'] ELSE ARRAY['am', 'chat', 'hook'] END,
	'one delivery per enabled channel the alert is for (severity, metric pattern, enabled)');
SELECT is((SELECT array_agg(DISTINCT idempotency_key) FROM thrillmon.deliveries), ARRAY[(SELECT id FROM al)::text || ':new'],
	'the idempotency key is the alert id and the event');
SELECT is((SELECT payload - 'created_at' FROM thrillmon.deliveries WHERE channel = 'hook'),
	(SELECT jsonb_build_object('event', 'new', 'idempotency_key', a.id::text || ':new', 'alert_id', a.id, 'alertname', 'ThrillmonAnomaly',
		'alert_type', 'anomaly', 'metric', 'spiky', 'category', 'performance', 'severity', a.severity,
		'value', a.metadata->'value', 'baseline', a.metadata->'baseline', 'deviation', a.metadata->'deviation',
		'message', a.message, 'database', current_database()) FROM al a),
	'the webhook payload: the alert, its alertname, category, value, baseline, deviation and database');
SELECT is((SELECT status FROM thrillmon.deliveries WHERE channel = 'hook'), 'pending', 'pending until the worker sends it');

-- Formats at send time.
SELECT is((SELECT (thrillmon._delivery_body(payload, 'alertmanager')::jsonb->0->'labels') FROM thrillmon.deliveries WHERE channel = 'am'),
	jsonb_build_object('alertname', 'ThrillmonAnomaly', 'metric', 'spiky', 'category', 'performance',
		'severity', (SELECT severity FROM al), 'database', current_database()),
	'Alertmanager labels: alertname, metric, category, severity, database');
SELECT ok((SELECT (b->0->>'endsAt')::timestamptz > now() + interval '3 minutes' AND (b->0->>'startsAt')::timestamptz = (SELECT created_at FROM al)
		AND b->0->'annotations' ?& ARRAY['message', 'value', 'baseline', 'deviation', 'alert_id', 'summary']
	FROM (SELECT thrillmon._delivery_body(payload, 'alertmanager')::jsonb b FROM thrillmon.deliveries WHERE channel = 'am') x),
	'Alertmanager: startsAt the alert''s creation, endsAt four re-send intervals ahead, annotations');
SELECT alike((SELECT thrillmon._delivery_body(payload, 'slack')::jsonb->>'text' FROM thrillmon.deliveries WHERE channel = 'chat'),
	'[thrillmon ' || current_database() || '] %spiky%', 'Slack: one text line');
SELECT is((SELECT thrillmon._header_lines(c.headers, 'k') FROM thrillmon.notification_channels c WHERE name = 'hook'),
	E'Content-Type: application/json\nIdempotency-Key: k\nAuthorization: Bearer secret', 'request headers');

-- Order: a resolved waits for its new; the worker's claim is one delivery per idle channel.
SELECT thrillmon.resolve_alert((SELECT id FROM al)) \g /dev/null
SELECT is((SELECT array_agg(channel ORDER BY channel) FROM thrillmon.deliveries WHERE event = 'resolved'),
	(SELECT array_agg(channel ORDER BY channel) FROM thrillmon.deliveries WHERE event = 'new'),
	'the resolution goes where the alert was announced');
SELECT is((SELECT array_agg(channel || ':' || (SELECT event FROM thrillmon.deliveries d WHERE d.id = q.delivery_id) ORDER BY channel)
	FROM thrillmon._deliveries_due('{}') q),
	CASE WHEN (SELECT severity FROM al) = 'critical' THEN ARRAY['am:new', 'chat:new', 'hook:new', 'pager:new'] ELSE ARRAY['am:new', 'chat:new', 'hook:new'] END,
	'the claim: each channel''s oldest deliveries due, never a resolved before its new');
SELECT is((SELECT array_agg(q.channel ORDER BY q.channel) FROM thrillmon._deliveries_due(
		(SELECT array_agg(id) FROM thrillmon.deliveries WHERE channel = 'hook' AND event = 'new')) q),
	CASE WHEN (SELECT severity FROM al) = 'critical' THEN ARRAY['am', 'chat', 'pager'] ELSE ARRAY['am', 'chat'] END,
	'a delivery in flight is not claimed again, and its alert''s next event waits for it');
INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload) SELECT 'hook', 'test', 'many' || g, '{}' FROM generate_series(1, 6) g;
SELECT is((SELECT count(*)::int FROM thrillmon._deliveries_due('{}') WHERE channel = 'hook'), 4,
	'at most 4 requests in flight per channel (for different alerts)');
DELETE FROM thrillmon.deliveries WHERE idempotency_key LIKE 'many%';
SELECT is((SELECT (thrillmon._delivery_body(d.payload, 'alertmanager')::jsonb->0->>'endsAt')::timestamptz FROM thrillmon.deliveries d
	WHERE channel = 'am' AND event = 'resolved'), (SELECT resolved_at FROM thrillmon.system_alerts WHERE id = (SELECT id FROM al)),
	'Alertmanager: a resolution ends the alert at its resolved_at');

-- Alertmanager re-sends: the open alerts an Alertmanager channel was told of (delivered), nothing
-- while one is pending for it; at most once per thrillmon.alertmanager_resend_interval.
SELECT is((SELECT count(*)::int FROM thrillmon._resends_due('{}')), 0, 're-sends: none while the alert''s deliveries are pending');
CREATE TEMP TABLE open_alert AS SELECT gen_random_uuid() AS id;
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, metric_name, fingerprint)
SELECT id, 'anomaly', 'high', 'still open', 'resend_me', 'anomaly:resend_me' FROM open_alert;
INSERT INTO thrillmon.deliveries (channel, alert_id, event, idempotency_key, payload, status)
SELECT 'am', id, 'new', id::text || ':new', '{}', 'delivered' FROM open_alert;
UPDATE thrillmon.channel_state SET last_resend_at = NULL;
SELECT is((SELECT array_agg(x->'labels'->>'metric') FROM thrillmon._resends_due('{}') r, jsonb_array_elements(r.body::jsonb) x
	WHERE r.channel = 'am'), ARRAY['resend_me'], 're-sends: the open alert Alertmanager was told of');
SELECT is((SELECT count(*)::int FROM thrillmon._resends_due('{}')), 0, 're-sends: not again within the interval');
DELETE FROM thrillmon.system_alerts WHERE id = (SELECT id FROM open_alert);
UPDATE thrillmon.channel_state SET last_resend_at = NULL;

-- Attempts: retries with backoff, then dead; failures in a row raise ThrillmonDeliveryFailing.
CREATE TEMP TABLE d_hook AS SELECT id FROM thrillmon.deliveries WHERE channel = 'hook' AND event = 'new';
SELECT thrillmon._delivery_attempted((SELECT id FROM d_hook), 'hook', 'delivery', now(), 503, NULL, 12.5, 'busy') \g /dev/null
SELECT ok((SELECT status = 'pending' AND attempts = 1 AND last_error = 'HTTP 503' AND last_http_status = 503
		AND next_attempt_at BETWEEN now() + interval '0.5 s' AND now() + interval '1 s'
	FROM thrillmon.deliveries WHERE id = (SELECT id FROM d_hook)), 'a 503: pending, retried after 0.5 to 1 s');
SELECT thrillmon._delivery_attempted((SELECT id FROM d_hook), 'hook', 'delivery', now(), 0, 'Connection refused', 0.1, NULL) \g /dev/null
SELECT ok((SELECT attempts = 2 AND next_attempt_at BETWEEN now() + interval '1 s' AND now() + interval '2 s'
	FROM thrillmon.deliveries WHERE id = (SELECT id FROM d_hook)), 'the second failure: 1 to 2 s (exponential, with jitter)');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'delivery_failing'), 0, 'two failures raise nothing yet');
SELECT thrillmon._delivery_attempted((SELECT id FROM d_hook), 'hook', 'delivery', now(), 302, NULL, 1, 'moved') \g /dev/null
SELECT is((SELECT last_error FROM thrillmon.deliveries WHERE id = (SELECT id FROM d_hook)), 'HTTP 302', 'a redirect is a failure');
SELECT is((SELECT DISTINCT d.payload->>'alertname' FROM thrillmon.deliveries d JOIN thrillmon.system_alerts a ON a.id = d.alert_id
	WHERE a.alert_type = 'delivery_failing' AND a.resolved_at IS NULL), 'ThrillmonDeliveryFailing',
	'three failures in a row raise ThrillmonDeliveryFailing');
SELECT is((SELECT array_agg(channel ORDER BY channel) FROM thrillmon.deliveries d JOIN thrillmon.system_alerts a ON a.id = d.alert_id
	WHERE a.alert_type = 'delivery_failing'), ARRAY['am', 'chat', 'dbonly'],
	'... delivered through every other enabled channel (whatever its metric pattern), not the failing one');
SELECT is((SELECT consecutive_failures FROM thrillmon.channel_status WHERE name = 'hook'), 3, 'channel_status: 3 failures in a row');
SELECT ok((SELECT h->'reasons' @> '["channel hook failing: 3 attempts in a row, the last: HTTP 302"]' FROM thrillmon.health_check() h),
	'health_check() names the failing channel');
SELECT thrillmon._delivery_attempted((SELECT id FROM d_hook), 'hook', 'delivery', now(), 200, NULL, 3, 'ok') \g /dev/null
SELECT ok((SELECT status = 'delivered' AND finished_at IS NOT NULL AND attempts = 4 FROM thrillmon.deliveries WHERE id = (SELECT id FROM d_hook)),
	'a 2xx: delivered');
SELECT ok((SELECT resolved_at IS NOT NULL FROM thrillmon.system_alerts WHERE alert_type = 'delivery_failing'),
	'the channel''s next success resolves ThrillmonDeliveryFailing');
SELECT is((SELECT count(*)::int FROM thrillmon.delivery_attempts WHERE delivery_id = (SELECT id FROM d_hook)), 4, 'every attempt recorded');
-- Giving up: past thrillmon.delivery_max_age (24 h) a delivery is dead, and health_check() fails.
UPDATE thrillmon.deliveries SET created_at = now() - interval '25 hours' WHERE channel = 'chat' AND event = 'new' AND alert_id = (SELECT id FROM al);
SELECT count(*) FROM thrillmon._deliveries_due('{}') \g /dev/null
SELECT is((SELECT status FROM thrillmon.deliveries WHERE channel = 'chat' AND event = 'new' AND alert_id = (SELECT id FROM al)), 'dead',
	'older than delivery_max_age: dead');
SELECT ok((SELECT h->>'status' = 'failing' AND h->'reasons' @> '["deliveries dead: 1 to channel chat given up in the last day (see thrillmon.deliveries)"]'
	FROM thrillmon.health_check() h), 'health_check() fails on a dead delivery');
SELECT ok((SELECT bool_or(d.event = 'resolved' AND d.alert_id = (SELECT id FROM al)) FROM thrillmon._deliveries_due('{}') q
	JOIN thrillmon.deliveries d ON d.id = q.delivery_id WHERE q.channel = 'chat'), 'a dead delivery no longer holds back the alert''s next one');

-- Escalation is an event of its own ------------------------------------------------------------------------
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, fingerprint, created_at)
VALUES ('anomaly', 'low', 'esc', jsonb_build_object('last_anomaly_at', now() - interval '3 minutes', 'cooldown_minutes', 1440),
	'esc', 'anomaly:esc', now() - interval '3 minutes');
SELECT pg_temp.history('esc', 299, 40) \g /dev/null
DELETE FROM thrillmon.detector_progress; -- (each pass here starts cold: the transaction's now() does not move)
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT severity FROM thrillmon.system_alerts WHERE metric_name = 'esc'), 'critical', 'the open alert escalated');
SELECT is((SELECT array_agg(DISTINCT idempotency_key || ' ' || (payload->>'previous_severity'))
	FROM thrillmon.deliveries d JOIN thrillmon.system_alerts a ON a.id = d.alert_id WHERE a.metric_name = 'esc'),
	(SELECT ARRAY[id::text || ':escalated:critical low'] FROM thrillmon.system_alerts WHERE metric_name = 'esc'),
	'an escalation is delivered with its own key and the severity it left');
SELECT is((SELECT jsonb_array_length(thrillmon._delivery_body(d.payload, 'alertmanager')::jsonb) FROM thrillmon.deliveries d
	JOIN thrillmon.system_alerts a ON a.id = d.alert_id WHERE a.metric_name = 'esc' AND d.channel = 'am'), 2,
	'Alertmanager: the alert at its old severity ends, the new one fires');

-- One pass, many events: written together, in the order they happened --------------------------------------
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, fingerprint, created_at)
VALUES ('anomaly', 'medium', 'old', jsonb_build_object('last_anomaly_at', now() - interval '200 minutes', 'cooldown_minutes', 1),
	'batch_old', 'anomaly:batch_old', now() - interval '200 minutes')
RETURNING id AS old_id \gset
SELECT thrillmon._notify_alert(a, 'new') FROM thrillmon.system_alerts a WHERE id = :'old_id' \g /dev/null
SELECT pg_temp.history('batch_old', 0, 0) \g /dev/null
SELECT pg_temp.history('batch' || g, 295, 8 + g) FROM generate_series(1, 3) g \g /dev/null
SELECT max(id) AS before_batch FROM thrillmon.deliveries \gset
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
CREATE TEMP TABLE batch AS SELECT d.*, a.metric_name, a.severity FROM thrillmon.deliveries d JOIN thrillmon.system_alerts a ON a.id = d.alert_id
	WHERE d.id > :before_batch;
SELECT is((SELECT array_agg(DISTINCT metric_name || ':' || event ORDER BY metric_name || ':' || event) FROM batch),
	ARRAY['batch1:new', 'batch2:new', 'batch3:new', 'batch_old:resolved'],
	'one pass: three new alerts and a resolution, all in the outbox');
SELECT is((SELECT count(*)::int FROM batch WHERE event = 'new'),
	(SELECT sum(CASE WHEN severity = 'critical' THEN 4 ELSE 3 END)::int FROM thrillmon.system_alerts WHERE metric_name LIKE 'batch_'),
	'... each new alert to every channel it is for');
SELECT is((SELECT array_agg(channel ORDER BY channel) FROM batch WHERE event = 'resolved'),
	(SELECT array_agg(channel ORDER BY channel) FROM thrillmon.deliveries WHERE alert_id = :'old_id' AND event = 'new'),
	'... the resolution where that alert was announced');
SELECT ok((SELECT max(id) FILTER (WHERE event = 'new') < min(id) FILTER (WHERE event = 'resolved') FROM batch)
	AND (SELECT bool_and(n = hi - lo + 1) FROM (SELECT count(*) n, min(id) lo, max(id) hi FROM batch WHERE event = 'new' GROUP BY alert_id) x),
	'... in the order of the events: each alert''s deliveries together, the resolution after the new alerts');

-- Silences and maintenance windows ----------------------------------------------------------------------
SELECT throws_ok($$SELECT thrillmon.create_silence('x', now(), now() - interval '1 hour', 'r')$$, '22023', NULL, 'a silence ending before it starts');
SELECT throws_ok($$SELECT thrillmon.create_silence('x', now() - interval '2 hours', now() - interval '1 hour', 'r')$$, '22023', NULL,
	'a silence already over');
SELECT throws_ok($$SELECT thrillmon.create_silence('x', now(), now() + interval '400 days', 'r')$$, '22023', NULL, 'a silence of more than 366 days');
SELECT throws_ok($$SELECT thrillmon.create_silence('x', now(), now() + interval '1 hour', ' ')$$, '22004', NULL, 'a silence needs a reason');
SELECT thrillmon.create_silence('quiet%', now() - interval '1 hour', now() + interval '1 hour', 'known noisy') AS silence_id \gset
SELECT pg_temp.history('quiet1', 295, 8) \g /dev/null
CREATE TEMP TABLE before_q AS SELECT count(*) AS n FROM thrillmon.deliveries;
DELETE FROM thrillmon.detector_progress;
CREATE TEMP TABLE q AS SELECT * FROM thrillmon.detect_anomalies() WHERE metric_name = 'quiet1';
SELECT ok((SELECT count(*) > 0 AND bool_and((metadata->>'silence_id')::bigint = :silence_id) FROM q),
	'a silenced metric''s anomalies are recorded, marked with the silence');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'quiet1'), 0, '... but raise no alert');
SELECT is((SELECT count(*) FROM thrillmon.deliveries), (SELECT n FROM before_q), '... and deliver nothing');
SELECT is((SELECT silenced_anomalies FROM thrillmon.silences WHERE id = :silence_id), (SELECT count(*) FROM q), 'the silence counts them');
SELECT is((SELECT state FROM thrillmon.silences WHERE id = :silence_id), 'active', 'silences: active');
SELECT ok(thrillmon.expire_silence(:silence_id), 'expire_silence()');
SELECT is((SELECT state FROM thrillmon.silences WHERE id = :silence_id), 'expired', 'silences: expired');
SELECT ok(NOT thrillmon.expire_silence(:silence_id), 'expiring it again: false');
SELECT throws_ok($$SELECT thrillmon.expire_silence(-1)$$, '42704', 'thrillmon: no silence or maintenance window -1', 'no such silence');

-- A maintenance window: the points inside are neither scored nor learned.
SELECT thrillmon.create_maintenance_window('deploy\_%', now() - interval '30 minutes', now() + interval '1 hour', 'release 1.2') AS mw \gset
SELECT pg_temp.history('deploy_x', 290, 50) \g /dev/null
DELETE FROM thrillmon.detector_progress;
SELECT is((SELECT count(*)::int FROM thrillmon.detect_anomalies() WHERE metric_name = 'deploy_x'), 0,
	'a spike inside a maintenance window is not scored');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('deploy_x', now() - interval '6 hours', now())), 270,
	'backtest() replays only the points outside the window (300 - 30)');
SELECT is((SELECT kind FROM thrillmon.silences WHERE id = :mw), 'maintenance', 'silences: kind maintenance');

-- Bounds: 1000 silences active or pending.
INSERT INTO thrillmon.silence_rules (metric_pattern, starts_at, ends_at, reason)
SELECT 'b' || g, now(), now() + interval '1 day', 'bound' FROM generate_series(1, 999) g; -- (with the window above: 1000)
SELECT throws_ok($$SELECT thrillmon.create_silence('one_more', now(), now() + interval '1 hour', 'r')$$, '54000',
	'thrillmon: at most 1000 silences and maintenance windows can be active or pending', 'the 1001st silence is refused');
-- The outbox holds 100,000 pending deliveries at most: past it an event is dropped, said on the
-- alert and by health_check().
INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload)
SELECT 'dbonly', 'new', 'bulk' || g, '{}' FROM generate_series(1, 100000) g;
SELECT pg_temp.history('db_full', 295, 8) \g /dev/null
DELETE FROM thrillmon.detector_progress;
SELECT count(*) FROM thrillmon.detect_anomalies() \g /dev/null
SELECT is((SELECT metadata->'deliveries_dropped' FROM thrillmon.system_alerts WHERE metric_name = 'db_full'), '["new"]'::jsonb,
	'a full outbox: the event is not queued, and the alert says so');
SELECT ok((SELECT h->'reasons' @> '["deliveries dropped: the outbox was full (100000 pending) when alerts were raised"]' FROM thrillmon.health_check() h),
	'health_check() says deliveries were dropped');

SELECT * FROM finish();
ROLLBACK;
