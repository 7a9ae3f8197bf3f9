-- Detection (0.3.0): anomaly_detection_config validation, detect_anomalies() (anomalies, the
-- horizon, one score per point), alerts (threshold, de-duplication, cooldown, escalation,
-- auto-resolve), acknowledge_alert() / resolve_alert(), incidents by hand and automatic ones,
-- backtest(), and that backtest() replays exactly what live detection found.
--
-- Written against behaviour any reasonable detector has (the core is being tuned): a clean spike of
-- 10+ robust standard deviations is found, at that point only, with severity high or critical;
-- noise, a constant series and a disabled metric give nothing. Never against exact scores.
--
-- Time: the transaction's now() stands still, but a pass scores up to the wall clock (its horizon).
-- History is stamped one minute apart ending a minute ago; points a later pass must score are
-- stamped just after the wall clock ("live" points) and the test sleeps past them. Each section
-- starts from pg_temp.reset(): no points, anomalies, alerts, incidents or detection progress, so
-- its first pass scores every metric's lookback window afresh. Calls that may fail are wrapped in
-- lives_ok() so that one failure does not abort the file.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(236);
-- (A metric of a few hundred points is new: its lone anomaly would raise no alert. What is tested
-- here is what alerts do; corroboration has its own section in detection.sql.)
SET thrillmon.corroborate_new_metrics = off;

-- Before the clean slate: what this database's install shipped.
SELECT is((SELECT sensitivity FROM thrillmon.anomaly_detection_config WHERE metric_name = '*'), 4.5::float8,
	'fresh install: the ''*'' row has sensitivity 4.5');
SELECT col_default_is('thrillmon', 'anomaly_detection_config', 'sensitivity', '4.5', 'the sensitivity column defaults to 4.5');
SELECT results_eq('SELECT open_on_critical, correlation_window_minutes, correlation_min_metrics FROM thrillmon.incident_policy',
	$$VALUES (true, 10, 3)$$, 'fresh install: one incident_policy row (critical alerts, 3 metrics within 10 minutes)');

\ir fixtures/clean_slate.sql

-- The API's shape.
SELECT is(pg_get_function_result(f::regprocedure), r, f || ' returns ' || r) FROM (VALUES
	('thrillmon.detect_anomalies()', 'SETOF thrillmon.anomaly_detections'),
	('thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision)',
		'TABLE("timestamp" timestamp with time zone, value double precision, score double precision, is_anomaly boolean, '
		'anomaly_type text, severity text, algorithm text, deviation double precision, baseline double precision)'),
	('thrillmon.acknowledge_alert(uuid)', 'thrillmon.system_alerts'),
	('thrillmon.resolve_alert(uuid)', 'thrillmon.system_alerts'),
	('thrillmon.create_incident(text, text, uuid[], text)', 'thrillmon.incidents'),
	('thrillmon.link_alerts(uuid, uuid[])', 'integer'),
	('thrillmon.update_incident_status(uuid, text)', 'thrillmon.incidents')) v(f, r);
SELECT is(pg_get_function_arguments('thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision)'::regprocedure),
	'metric_name text, "from" timestamp with time zone, "to" timestamp with time zone, algorithms text[] DEFAULT NULL::text[], sensitivity double precision DEFAULT NULL::double precision',
	'backtest(metric_name, from, to [, algorithms, sensitivity])');
SELECT is(pg_get_function_arguments('thrillmon.create_incident(text, text, uuid[], text)'::regprocedure),
	'title text, severity text, alert_ids uuid[] DEFAULT NULL::uuid[], description text DEFAULT NULL::text',
	'create_incident(title, severity [, alert_ids, description])');

------------------------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------------------------

CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM thrillmon.metric_time_series;
	DELETE FROM thrillmon.anomaly_detections;
	DELETE FROM thrillmon.incident_alerts;
	DELETE FROM thrillmon.incidents;
	DELETE FROM thrillmon.system_alerts;
	DELETE FROM thrillmon.detector_progress;
	DELETE FROM thrillmon.job_runs;
	DELETE FROM thrillmon.anomaly_detection_config WHERE metric_name <> '*';
END
$$;
-- N(0,1)-like noise: the sum of 3 uniforms, centred and scaled to sd 1 (bell-shaped, bounded by
-- +-3 sd: a series of it has nothing a detector at 4.5 sd should call an anomaly).
CREATE FUNCTION pg_temp.noise() RETURNS float8 LANGUAGE sql VOLATILE AS
	$$SELECT (sum(random()) - 1.5) * 2 FROM generate_series(1, 3)$$;
-- n values around 100, value 100 + by[k] exactly at position at[k].
CREATE FUNCTION pg_temp.vals(n integer, at integer[] DEFAULT '{}', by float8[] DEFAULT '{}') RETURNS float8[] LANGUAGE sql VOLATILE AS
	$$SELECT array_agg(100 + coalesce(by[array_position(at, g)], pg_temp.noise()) ORDER BY g) FROM generate_series(1, n) g$$;
-- History: the values one minute apart, the last one a minute before now().
CREATE FUNCTION pg_temp.history(metric text, v float8[]) RETURNS void LANGUAGE sql AS $$
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
	SELECT metric, x, now() - make_interval(mins => cardinality(v) - i::int + 1) FROM unnest(v) WITH ORDINALITY u(x, i)
$$;
-- Live points: stamped from just after the wall clock, step apart; unless told not to, sleeps until
-- the wall clock has passed the last of them (so that the next pass's horizon covers them).
CREATE FUNCTION pg_temp.live(metric text, v float8[], step interval DEFAULT '5 ms', wait boolean DEFAULT true,
	lead interval DEFAULT '20 ms')
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
	base timestamptz := clock_timestamp() + lead;
	last timestamptz := base + (cardinality(v) - 1) * step;
BEGIN
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
	SELECT metric, x, base + (i - 1) * step FROM unnest(v) WITH ORDINALITY u(x, i);
	IF wait THEN
		PERFORM pg_temp.wait_past(last);
	END IF;
	RETURN last;
END
$$;
CREATE FUNCTION pg_temp.wait_past(t timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(greatest(0, extract(epoch FROM t - clock_timestamp())::float8) + 0.02);
END
$$;
-- What each detect_anomalies() call returned, tagged by the call.
CREATE TEMP TABLE got AS SELECT ''::text AS tag, d.* FROM thrillmon.anomaly_detections d WITH NO DATA;
CREATE FUNCTION pg_temp.pass(tag text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	INSERT INTO pg_temp.got SELECT tag, d.* FROM thrillmon.detect_anomalies() d;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
CREATE FUNCTION pg_temp.spike_at(metric text, v float8) RETURNS timestamptz LANGUAGE sql STABLE AS
	$$SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = metric AND metric_value = v$$;
CREATE FUNCTION pg_temp.alert_of(metric text) RETURNS uuid LANGUAGE sql STABLE AS
	$$SELECT id FROM thrillmon.system_alerts WHERE metric_name = metric ORDER BY created_at DESC LIMIT 1$$;
CREATE TEMP TABLE seen (k text PRIMARY KEY, t timestamptz, n bigint, u uuid);

------------------------------------------------------------------------------------------------
-- anomaly_detection_config: clear messages for bad rows (22023, 22004 for a NULL element)
------------------------------------------------------------------------------------------------

SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('cfg', '{z_score,magic}')$$,
	'22023', 'thrillmon: unknown detection algorithm "magic"', 'config: an unknown algorithm is named');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('cfg', '{zeta,mad,alpha}')$$,
	'22023', 'thrillmon: unknown detection algorithm "alpha", "zeta"', 'config: every unknown algorithm is named, sorted');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('cfg', '{}')$$,
	'22023', 'thrillmon: detection_algorithms must name at least one algorithm', 'config: an empty algorithm array');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('cfg', '{mad,NULL}')$$,
	'22004', 'thrillmon: detection_algorithms must not contain NULL', 'config: a NULL algorithm');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 0)$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got 0', 'config: sensitivity 0');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', -1)$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got -1', 'config: negative sensitivity');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 'NaN')$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got NaN', 'config: sensitivity NaN');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 1e-300)$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got 1e-300', 'config: sensitivity 1e-300 (it flags every point)');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('cfg', 100.5)$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got 100.5', 'config: sensitivity above 100');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, lookback_window_minutes, min_data_points) VALUES ('cfg', 20, 30)$$,
	'22023', 'thrillmon: lookback_window_minutes (20) is shorter than min_data_points (30)', 'config: lookback shorter than min_data_points');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, lookback_window_minutes) VALUES ('cfg', 0)$$,
	'22023', 'thrillmon: lookback_window_minutes must be between 1 and 527040 (366 days), got 0', 'config: lookback 0');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, min_data_points) VALUES ('cfg', 1)$$,
	'22023', 'thrillmon: min_data_points must be between 2 and 1000000, got 1', 'config: min_data_points 1');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, min_data_points) VALUES ('cfg', 1000001)$$,
	'22023', 'thrillmon: min_data_points must be between 2 and 1000000, got 1000001', 'config: min_data_points above 1000000');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, alert_threshold_score) VALUES ('cfg', 1.5)$$,
	'22023', 'thrillmon: alert_threshold_score must be between 0 and 1, got 1.5', 'config: alert_threshold_score above 1');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, alert_threshold_score) VALUES ('cfg', -0.1)$$,
	'22023', 'thrillmon: alert_threshold_score must be between 0 and 1, got -0.1', 'config: negative alert_threshold_score');
SELECT throws_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, cooldown_minutes) VALUES ('cfg', -1)$$,
	'22023', 'thrillmon: cooldown_minutes must be between 0 and 527040, got -1', 'config: negative cooldown_minutes');
SELECT throws_ok($$UPDATE thrillmon.anomaly_detection_config SET sensitivity = 0 WHERE metric_name = '*'$$,
	'22023', 'thrillmon: sensitivity must be between 0.5 and 100, got 0', 'config: an UPDATE is checked too');
SELECT throws_ok($$UPDATE thrillmon.anomaly_detection_config SET detection_algorithms = '{ensemble,bogus}' WHERE metric_name = '*'$$,
	'22023', 'thrillmon: unknown detection algorithm "bogus"', 'config: ... an UPDATE of the algorithms');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detection_config), 1, 'config: no refused row was written');

SELECT lives_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity, lookback_window_minutes, detection_algorithms,
	min_data_points, alert_threshold_score, cooldown_minutes, updated_at)
	VALUES ('cfg_ok', 100, 30, '{z_score,mad,moving_average,rate_of_change,ewma,cusum,seasonal,predictive,ensemble}', 30, 1, 0,
		now() - interval '1 day')$$, 'config: a row at the limits is accepted (every algorithm, sensitivity 100, lookback = min_data_points)');
SELECT lives_ok($$INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity, min_data_points, alert_threshold_score)
	VALUES ('cfg_low', 0.5, 2, 0)$$, 'config: sensitivity 0.5, min_data_points 2, threshold 0 accepted');
SELECT is((SELECT updated_at FROM thrillmon.anomaly_detection_config WHERE metric_name = 'cfg_ok'), now() - interval '1 day',
	'config: INSERT keeps the updated_at given');
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 6 WHERE metric_name = 'cfg_ok';
SELECT is((SELECT updated_at FROM thrillmon.anomaly_detection_config WHERE metric_name = 'cfg_ok'), now(),
	'config: UPDATE moves updated_at to now()');
UPDATE thrillmon.anomaly_detection_config SET updated_at = '2000-01-01' WHERE metric_name = 'cfg_ok';
SELECT is((SELECT updated_at FROM thrillmon.anomaly_detection_config WHERE metric_name = 'cfg_ok'), now(),
	'config: ... even when the UPDATE sets it to something else');

------------------------------------------------------------------------------------------------
-- detect_anomalies(): a clean spike, found once
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
-- Cooldown long enough that no alert of this section is auto-resolved.
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
SELECT setseed(0.01);
SELECT pg_temp.history('det_spike', pg_temp.vals(300, '{150}', '{30}'));

SELECT lives_ok($$SELECT pg_temp.pass('a1')$$, 'detect: the first pass runs');
SELECT results_eq($$SELECT metric_name, metric_category, anomaly_type, anomaly_value, time_window_start, time_window_end FROM got WHERE tag = 'a1'$$,
	$$VALUES ('det_spike'::text, 'custom'::text, 'spike'::text, 130::float8, pg_temp.spike_at('det_spike', 130), pg_temp.spike_at('det_spike', 130))$$,
	'detect: exactly the spike (+30 on noise of sd 1) is returned, as a spike, at its point');
SELECT ok((SELECT severity IN ('high', 'critical') FROM got WHERE tag = 'a1' AND anomaly_value = 130), 'detect: its severity is high or critical');
SELECT ok((SELECT baseline_value BETWEEN 99 AND 101 FROM got WHERE tag = 'a1' AND anomaly_value = 130), 'detect: its baseline is near 100');
SELECT ok((SELECT anomaly_value - baseline_value BETWEEN 25 AND 35 FROM got WHERE tag = 'a1' AND anomaly_value = 130), 'detect: ... about 30 below the value');
SELECT ok((SELECT deviation_score >= 10 AND confidence_score >= 0.5 AND confidence_score <= 1 FROM got WHERE tag = 'a1' AND anomaly_value = 130),
	'detect: deviation_score >= 10 robust sd, confidence_score in [0.5, 1]');
SELECT ok((SELECT detection_algorithm IN ('z_score', 'mad', 'moving_average', 'rate_of_change', 'ewma', 'cusum', 'seasonal', 'predictive', 'ensemble')
	FROM got WHERE tag = 'a1' AND anomaly_value = 130), 'detect: detection_algorithm names an algorithm');
SELECT is((SELECT (metadata->>'pass')::bigint FROM got WHERE tag = 'a1' AND anomaly_value = 130), (SELECT pass FROM thrillmon.detector_progress),
	'detect: metadata records the pass');
SELECT set_eq('SELECT id FROM thrillmon.anomaly_detections', $$SELECT id FROM got WHERE tag = 'a1'$$,
	'detect: the returned row is the one anomaly_detections row written');
SELECT results_eq($$SELECT job, target, status, rows_affected, details FROM thrillmon.job_runs$$,
	$$VALUES ('detect'::text, 'all'::text, 'succeeded'::text, 1::bigint, '{"metrics": 1, "anomalies": 1, "failed_metrics": 0, "skipped_metrics": 0}'::jsonb)$$,
	'detect: one job_runs row: detect / all / succeeded / 1 anomaly of 1 metric, none skipped or failed');
SELECT results_eq('SELECT pass > 0, horizon >= now(), horizon <= clock_timestamp() FROM thrillmon.detector_progress',
	$$VALUES (true, true, true)$$, 'detect: detector_progress: a pass number, horizon between the transaction start and the wall clock');
INSERT INTO seen SELECT 'h1', horizon FROM thrillmon.detector_progress;

-- Alert for the anomaly.
SELECT results_eq($$SELECT alert_type, fingerprint, metric_name, anomaly_id, severity, resolved_at, acknowledged_at FROM thrillmon.system_alerts$$,
	$$SELECT 'anomaly'::text, 'anomaly:det_spike'::text, 'det_spike'::text, id, severity, NULL::timestamptz, NULL::timestamptz FROM got WHERE tag = 'a1'$$,
	'alert: one open system_alerts row for the anomaly (type anomaly, fingerprint anomaly:<metric>, its severity)');
SELECT results_eq('SELECT alert_created, alert_id FROM thrillmon.anomaly_detections',
	$$SELECT true, id FROM thrillmon.system_alerts$$, 'alert: the anomaly says alert_created and links the alert');
SELECT ok((SELECT metadata->>'value' = '130' AND (metadata->>'baseline')::float8 BETWEEN 99 AND 101 AND (metadata->>'score')::float8 >= 0.8
	AND (metadata->>'point_time')::timestamptz = pg_temp.spike_at('det_spike', 130) FROM thrillmon.system_alerts),
	'alert: metadata holds value, baseline, score and the point''s time');

-- A second pass right after: nothing new; a point stamped after its horizon waits for a later pass.
INSERT INTO seen SELECT 'future', pg_temp.live('det_spike', ARRAY[131::float8], wait => false, lead => '2 seconds');
SELECT lives_ok($$SELECT pg_temp.pass('a2')$$, 'detect: a second pass right after');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'a2'), 0, 'detect: ... returns nothing (no point is scored twice)');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections), 1, 'detect: ... and writes no anomaly');
SELECT results_eq($$SELECT pass > (SELECT (g.metadata->>'pass')::bigint FROM got g WHERE g.tag = 'a1' LIMIT 1), horizon > (SELECT t FROM seen WHERE k = 'h1'), horizon < (SELECT t FROM seen WHERE k = 'future')
	FROM thrillmon.detector_progress$$, $$VALUES (true, true, true)$$,
	'detect: pass 2, its horizon later than pass 1''s but before the point stamped in the future');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'), 2, 'detect: both passes recorded');
INSERT INTO seen SELECT 'h2', horizon FROM thrillmon.detector_progress;
SELECT pg_temp.wait_past((SELECT t FROM seen WHERE k = 'future'));
SELECT lives_ok($$SELECT pg_temp.pass('a3')$$, 'detect: a pass once the wall clock is past that point');
SELECT results_eq($$SELECT anomaly_type, time_window_end FROM got WHERE tag = 'a3'$$,
	$$SELECT 'spike'::text, t FROM seen WHERE k = 'future'$$, 'detect: ... scores it (a second spike, 150 points after the first)');
SELECT results_eq($$SELECT pass > (SELECT (g.metadata->>'pass')::bigint FROM got g WHERE g.tag = 'a1' LIMIT 1) + 1, horizon >= (SELECT t FROM seen WHERE k = 'future') FROM thrillmon.detector_progress$$,
	$$VALUES (true, true)$$, 'detect: pass 3, horizon past that point');
-- De-duplication: the alert is still open, so the second anomaly joins it.
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 1, 'alert: the second spike raises no second alert while the first is open');
SELECT results_eq($$SELECT alert_created, alert_id FROM thrillmon.anomaly_detections WHERE time_window_end = (SELECT t FROM seen WHERE k = 'future')$$,
	$$SELECT false, id FROM thrillmon.system_alerts$$, 'alert: ... it links the second anomaly to the open alert (alert_created false)');
SELECT lives_ok($$SELECT pg_temp.pass('a4')$$, 'detect: a fourth pass');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'a4'), 0, 'detect: ... nothing new again');

------------------------------------------------------------------------------------------------
-- detect_anomalies(): drops, and what gives nothing
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
SELECT setseed(0.02);
SELECT pg_temp.history('det_drop', pg_temp.vals(300, '{150}', '{-30}'));
SELECT pg_temp.history('det_noise', pg_temp.vals(300));
SELECT pg_temp.history('det_const', array_fill(42::float8, ARRAY[300]));
SELECT pg_temp.history('det_off', pg_temp.vals(300, '{150}', '{30}'));
INSERT INTO thrillmon.anomaly_detection_config (metric_name, enabled) VALUES ('det_off', false);
SELECT pg_temp.history('det_few', pg_temp.vals(20, '{15}', '{30}')); -- under min_data_points (30)
SELECT lives_ok($$SELECT pg_temp.pass('b1')$$, 'detect: a pass over a drop, noise, a constant, a disabled metric and a short one');
SELECT results_eq($$SELECT metric_name, anomaly_type, anomaly_value, time_window_end FROM got WHERE tag = 'b1'$$,
	$$VALUES ('det_drop'::text, 'drop'::text, 70::float8, pg_temp.spike_at('det_drop', 70))$$,
	'detect: only the drop is found, as a drop, at its point');
SELECT ok((SELECT severity IN ('high', 'critical') AND baseline_value BETWEEN 99 AND 101 AND deviation_score <= -10 FROM got WHERE tag = 'b1' AND anomaly_value = 70),
	'detect: ... high or critical, baseline near 100, negative deviation');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections WHERE metric_name IN ('det_noise', 'det_const', 'det_off', 'det_few')), 0,
	'detect: noise alone, a constant series, a disabled metric and one under min_data_points give no anomaly');
-- Turning the metric back on does not score the points already behind the horizon.
UPDATE thrillmon.anomaly_detection_config SET enabled = true WHERE metric_name = 'det_off';
SELECT lives_ok($$SELECT pg_temp.pass('b2')$$, 'detect: a pass after enabling the metric');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'b2'), 0, 'detect: ... finds nothing in points already behind the horizon');
-- A metric with its own sensitivity of 100: a +30 spike is far under it.
UPDATE thrillmon.anomaly_detection_config SET enabled = false WHERE metric_name = 'det_off';
SELECT setseed(0.03);
SELECT pg_temp.history('det_dull', pg_temp.vals(300));
INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('det_dull', 100);
DELETE FROM thrillmon.detector_progress;
SELECT pg_temp.live('det_dull', ARRAY[130::float8]);
SELECT lives_ok($$SELECT pg_temp.pass('b3')$$, 'detect: a fresh pass (progress cleared) with a metric at sensitivity 100');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'b3' AND metric_name = 'det_dull'), 0, 'detect: ... its spike of 30 sd is no anomaly');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'b3'), 0, 'detect: ... and the drop already recorded is not recorded again');

------------------------------------------------------------------------------------------------
-- Alerts: threshold, auto_create_alert, one per metric, de-duplication and cooldown, escalation
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0;
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
INSERT INTO thrillmon.anomaly_detection_config (metric_name, auto_create_alert) VALUES ('al_quiet', false);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, alert_threshold_score) VALUES ('al_thr1', 1);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, cooldown_minutes) VALUES ('al_cool', 30), ('al_cold', 30);
-- Earlier alerts: al_cool's resolved 2 minutes ago (within its cooldown), al_cold's 2 hours ago
-- (past it), al_open's still open at severity low.
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, metric_name, fingerprint, created_at, resolved_at, metadata) VALUES
	('00000000-0000-0000-0000-00000000c001', 'anomaly', 'high', 'earlier', 'al_cool', 'anomaly:al_cool', now() - interval '1 hour', now() - interval '2 minutes', '{}'),
	('00000000-0000-0000-0000-00000000c002', 'anomaly', 'high', 'earlier', 'al_cold', 'anomaly:al_cold', now() - interval '3 hours', now() - interval '2 hours', '{}'),
	('00000000-0000-0000-0000-00000000c003', 'anomaly', 'low', 'earlier', 'al_open', 'anomaly:al_open', now() - interval '1 hour', NULL,
		jsonb_build_object('point_time', now() - interval '1 hour'));
SELECT setseed(0.04);
SELECT pg_temp.history(m, pg_temp.vals(300, '{150}', '{30}'))
FROM unnest(ARRAY['al_a', 'al_b', 'al_quiet', 'al_thr1', 'al_open']) m;
-- With a cooldown of 30 minutes, the spike less than 30 minutes before the last point (no auto-resolve).
SELECT pg_temp.history(m, pg_temp.vals(300, '{290}', '{30}')) FROM unnest(ARRAY['al_cool', 'al_cold']) m;
SELECT lives_ok($$SELECT pg_temp.pass('c1')$$, 'alerts: a pass over seven metrics with one spike each');
SELECT set_eq($$SELECT metric_name FROM got WHERE tag = 'c1'$$, ARRAY['al_a', 'al_b', 'al_quiet', 'al_thr1', 'al_cool', 'al_cold', 'al_open'],
	'alerts: each spike is an anomaly');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE created_at = now() AND metric_name IN ('al_a', 'al_b')), 2,
	'alerts: two metrics, two alerts');
SELECT results_eq($$SELECT s.fingerprint, s.anomaly_id, d.alert_created, d.alert_id = s.id FROM thrillmon.system_alerts s
	JOIN thrillmon.anomaly_detections d ON d.metric_name = s.metric_name AND d.anomaly_value = 130
	WHERE s.metric_name IN ('al_a', 'al_b') ORDER BY s.metric_name$$,
	$$SELECT 'anomaly:' || metric_name, id, true, true FROM thrillmon.anomaly_detections WHERE metric_name IN ('al_a', 'al_b') AND anomaly_value = 130
	ORDER BY metric_name$$,
	'alerts: ... each with its own fingerprint, linked both ways to its anomaly');
SELECT results_eq($$SELECT count(s.id)::int, bool_and(NOT d.alert_created AND d.alert_id IS NULL) FROM thrillmon.anomaly_detections d
	LEFT JOIN thrillmon.system_alerts s ON s.metric_name = d.metric_name WHERE d.metric_name = 'al_quiet'$$,
	$$VALUES (0, true)$$, 'alerts: auto_create_alert = false: an anomaly, no alert');
SELECT results_eq($$SELECT count(s.id)::int, bool_and(NOT d.alert_created AND d.alert_id IS NULL) FROM thrillmon.anomaly_detections d
	LEFT JOIN thrillmon.system_alerts s ON s.metric_name = d.metric_name WHERE d.metric_name = 'al_thr1'$$,
	$$VALUES (0, true)$$, 'alerts: alert_threshold_score = 1: an anomaly, no alert (no score reaches 1)');
SELECT results_eq($$SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'al_cool'$$, $$VALUES (1)$$,
	'alerts: an alert resolved within the cooldown: no new alert');
SELECT results_eq($$SELECT alert_created, alert_id FROM thrillmon.anomaly_detections WHERE metric_name = 'al_cool' AND anomaly_value = 130$$,
	$$VALUES (false, '00000000-0000-0000-0000-00000000c001'::uuid)$$, 'alerts: ... the anomaly joins that alert');
SELECT is((SELECT resolved_at FROM thrillmon.system_alerts WHERE metric_name = 'al_cool'), now() - interval '2 minutes',
	'alerts: ... which stays resolved');
SELECT results_eq($$SELECT count(*)::int, count(*) FILTER (WHERE resolved_at IS NULL)::int FROM thrillmon.system_alerts WHERE metric_name = 'al_cold'$$,
	$$VALUES (2, 1)$$, 'alerts: an alert resolved longer ago than the cooldown: a new alert');
SELECT results_eq($$SELECT d.alert_created, d.alert_id FROM thrillmon.anomaly_detections d WHERE d.metric_name = 'al_cold' AND d.anomaly_value = 130$$,
	$$SELECT true, id FROM thrillmon.system_alerts WHERE metric_name = 'al_cold' AND resolved_at IS NULL$$, 'alerts: ... linked to the new one');
SELECT results_eq($$SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'al_open'$$, $$VALUES (1)$$,
	'alerts: an open alert on the metric: no new alert');
SELECT results_eq($$SELECT alert_created, alert_id FROM thrillmon.anomaly_detections WHERE metric_name = 'al_open' AND anomaly_value = 130$$,
	$$VALUES (false, '00000000-0000-0000-0000-00000000c003'::uuid)$$, 'alerts: ... the anomaly joins it');
SELECT results_eq($$SELECT s.severity, s.metadata ? 'escalated_at', (s.metadata->>'value')::float8 FROM thrillmon.system_alerts s WHERE s.metric_name = 'al_open'$$,
	$$SELECT severity, true, 130::float8 FROM thrillmon.anomaly_detections WHERE metric_name = 'al_open' AND anomaly_value = 130$$,
	'alerts: ... and escalates it from low to the anomaly''s severity');

-- Two spikes of one metric in one pass: one alert.
SELECT pg_temp.reset();
SELECT setseed(0.05);
SELECT pg_temp.history('al_twice', pg_temp.vals(500, '{200,400}', '{30,30}'));
SELECT lives_ok($$SELECT pg_temp.pass('c2')$$, 'alerts: a pass over a metric with two spikes 200 points apart');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'c2' AND anomaly_value = 130), 2, 'alerts: ... two anomalies');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 1, 'alerts: ... one alert');
SELECT results_eq($$SELECT count(DISTINCT alert_id)::int, count(*) FILTER (WHERE alert_id IS NULL)::int, count(*) FILTER (WHERE alert_created)::int
	FROM thrillmon.anomaly_detections$$,
	$$VALUES (1, 0, 1)$$, 'alerts: ... every anomaly links it, one created it');
SELECT is((SELECT alert_created FROM thrillmon.anomaly_detections ORDER BY time_window_end LIMIT 1), true, 'alerts: ... the first one');

------------------------------------------------------------------------------------------------
-- Auto-resolve once the metric has been normal for the cooldown
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 5 WHERE metric_name = '*';
SELECT setseed(0.06);
-- The spike 6 minutes before now(), then 5 normal points a minute apart: the last one is exactly the
-- cooldown after the spike, not past it.
SELECT pg_temp.history('ar', pg_temp.vals(300, '{295}', '{30}'));
SELECT lives_ok($$SELECT pg_temp.pass('r1')$$, 'auto-resolve: a pass finds the spike 6 minutes ago (cooldown 5 minutes)');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'r1' AND anomaly_value = 130), 1, 'auto-resolve: ... the spike');
SELECT results_eq($$SELECT count(*)::int, count(*) FILTER (WHERE resolved_at IS NULL)::int FROM thrillmon.system_alerts$$,
	$$VALUES (1, 1)$$, 'auto-resolve: the alert stays open while the cooldown has not elapsed since the anomaly');
SELECT pg_temp.live('ar', ARRAY[100::float8]); -- a normal point more than 5 minutes after the spike
SELECT lives_ok($$SELECT pg_temp.pass('r2')$$, 'auto-resolve: a pass with a normal point past the cooldown');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'r2'), 0, 'auto-resolve: ... no anomaly');
SELECT results_eq($$SELECT resolved_at IS NOT NULL, metadata->>'resolved_by' FROM thrillmon.system_alerts$$,
	$$VALUES (true, 'auto'::text)$$, 'auto-resolve: ... resolves the alert (resolved_by auto)');
-- The metric spikes again right away (3x larger, so no detector takes it for the same episode):
-- the alert was resolved within the cooldown, so the anomaly joins it and nothing is reopened.
SELECT pg_temp.live('ar', ARRAY[200::float8]);
SELECT lives_ok($$SELECT pg_temp.pass('r3')$$, 'auto-resolve: a pass with a spike of +100 right after');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'r3'), 1, 'auto-resolve: ... one anomaly');
SELECT results_eq($$SELECT count(*)::int, count(*) FILTER (WHERE resolved_at IS NULL)::int FROM thrillmon.system_alerts$$,
	$$VALUES (1, 0)$$, 'auto-resolve: ... no new alert within the cooldown of the resolution, none reopened');
SELECT results_eq($$SELECT alert_created, alert_id FROM got WHERE tag = 'r3'$$, $$SELECT false, id FROM thrillmon.system_alerts$$,
	'auto-resolve: ... the anomaly joins the resolved alert');

-- An alert of the other kind (not raised by detection) is left alone.
SELECT pg_temp.reset();
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, created_at)
VALUES ('manual', 'low', 'by hand', 'ar_manual', now() - interval '1 hour');
SELECT pg_temp.history('ar_manual', pg_temp.vals(100));
SELECT lives_ok($$SELECT pg_temp.pass('r4')$$, 'auto-resolve: a pass over a metric with a hand-made alert');
SELECT is((SELECT resolved_at FROM thrillmon.system_alerts), NULL, 'auto-resolve: ... leaves an alert not of type anomaly open');

------------------------------------------------------------------------------------------------
-- acknowledge_alert() / resolve_alert()
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at, acknowledged_at, resolved_at, metadata) VALUES
	('00000000-0000-0000-0000-0000000000a1', 'anomaly', 'high', 'fresh', now() - interval '1 hour', NULL, NULL, '{"k": 1}'),
	('00000000-0000-0000-0000-0000000000a2', 'anomaly', 'high', 'acked', now() - interval '1 hour', now() - interval '10 minutes', NULL, NULL),
	('00000000-0000-0000-0000-0000000000a3', 'anomaly', 'high', 'resolved', now() - interval '1 hour', NULL, now() - interval '5 minutes', '{"resolved_by": "someone"}');
CREATE TEMP TABLE ret AS SELECT ''::text AS tag, s.* FROM thrillmon.system_alerts s WITH NO DATA;

SELECT lives_ok($$INSERT INTO ret SELECT 'ack1', * FROM thrillmon.acknowledge_alert('00000000-0000-0000-0000-0000000000a1')$$,
	'acknowledge_alert(): an open alert');
SELECT results_eq($$SELECT id, acknowledged_at, resolved_at FROM ret WHERE tag = 'ack1'$$,
	$$VALUES ('00000000-0000-0000-0000-0000000000a1'::uuid, now(), NULL::timestamptz)$$, 'acknowledge_alert(): returns it, acknowledged now');
SELECT is((SELECT acknowledged_at FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a1'), now(),
	'acknowledge_alert(): stored');
SELECT lives_ok($$INSERT INTO ret SELECT 'ack2', * FROM thrillmon.acknowledge_alert('00000000-0000-0000-0000-0000000000a2')$$,
	'acknowledge_alert(): an alert acknowledged 10 minutes ago');
SELECT is((SELECT acknowledged_at FROM ret WHERE tag = 'ack2'), now() - interval '10 minutes', 'acknowledge_alert(): ... keeps the first time');
SELECT is((SELECT acknowledged_at FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a2'), now() - interval '10 minutes',
	'acknowledge_alert(): ... in the table too');
SELECT throws_ok($$SELECT thrillmon.acknowledge_alert('00000000-0000-0000-0000-0000000000ff')$$, 'P0002',
	'thrillmon: no alert with id 00000000-0000-0000-0000-0000000000ff', 'acknowledge_alert(): an unknown id');
SELECT throws_ok($$SELECT thrillmon.acknowledge_alert(NULL)$$, 'P0002', 'thrillmon: no alert with id NULL', 'acknowledge_alert(): NULL');

SELECT lives_ok($$INSERT INTO ret SELECT 'res1', * FROM thrillmon.resolve_alert('00000000-0000-0000-0000-0000000000a1')$$,
	'resolve_alert(): an open alert');
SELECT results_eq($$SELECT id, resolved_at, metadata FROM ret WHERE tag = 'res1'$$,
	$$VALUES ('00000000-0000-0000-0000-0000000000a1'::uuid, now(), jsonb_build_object('k', 1, 'resolved_by', session_user::text))$$,
	'resolve_alert(): returns it resolved now, by the session user (metadata kept)');
SELECT is((SELECT resolved_at FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a1'), now(), 'resolve_alert(): stored');
SELECT lives_ok($$INSERT INTO ret SELECT 'res2', * FROM thrillmon.resolve_alert('00000000-0000-0000-0000-0000000000a3')$$,
	'resolve_alert(): an alert resolved 5 minutes ago');
SELECT results_eq($$SELECT resolved_at, metadata FROM ret WHERE tag = 'res2'$$,
	$$VALUES (now() - interval '5 minutes', '{"resolved_by": "someone"}'::jsonb)$$, 'resolve_alert(): ... returns it unchanged');
SELECT results_eq($$SELECT resolved_at, metadata FROM thrillmon.system_alerts WHERE id = '00000000-0000-0000-0000-0000000000a3'$$,
	$$VALUES (now() - interval '5 minutes', '{"resolved_by": "someone"}'::jsonb)$$, 'resolve_alert(): ... and leaves it unchanged');
SELECT throws_ok($$SELECT thrillmon.resolve_alert('00000000-0000-0000-0000-0000000000ff')$$, 'P0002',
	'thrillmon: no alert with id 00000000-0000-0000-0000-0000000000ff', 'resolve_alert(): an unknown id');
SELECT throws_ok($$SELECT thrillmon.resolve_alert(NULL)$$, 'P0002', 'thrillmon: no alert with id NULL', 'resolve_alert(): NULL');

------------------------------------------------------------------------------------------------
-- Incidents by hand
------------------------------------------------------------------------------------------------

CREATE TEMP TABLE inc AS SELECT ''::text AS tag, i.* FROM thrillmon.incidents i WITH NO DATA;
CREATE FUNCTION pg_temp.incidents() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.incidents$$;
CREATE FUNCTION pg_temp.links() RETURNS integer LANGUAGE sql AS $$SELECT count(*)::int FROM thrillmon.incident_alerts$$;

SELECT lives_ok($$INSERT INTO inc SELECT 'i1', * FROM thrillmon.create_incident('  Disk full  ', 'high',
	ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000a1']::uuid[],
	'the disk is full')$$, 'create_incident(): with two alerts (one named twice) and a description');
SELECT results_eq($$SELECT title, severity, status, description, detected_at, acknowledged_at, resolved_at, closed_at,
		metadata->>'source', metadata->>'created_by' FROM inc WHERE tag = 'i1'$$,
	$$VALUES ('Disk full'::text, 'high'::text, 'open'::text, 'the disk is full'::text, now(), NULL::timestamptz, NULL::timestamptz,
		NULL::timestamptz, 'manual'::text, session_user::text COLLATE "default")$$,
	'create_incident(): returns it open, title trimmed, source manual');
SELECT matches((SELECT incident_number FROM inc WHERE tag = 'i1'), '^INC-[0-9]{6}$', 'create_incident(): incident_number like INC-000001');
SELECT set_eq($$SELECT alert_id FROM thrillmon.incident_alerts WHERE incident_id = (SELECT id FROM inc WHERE tag = 'i1')$$,
	ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2']::uuid[], 'create_incident(): links each alert once');
SELECT lives_ok($$INSERT INTO inc SELECT 'i2', * FROM thrillmon.create_incident('No alerts', 'low')$$, 'create_incident(): without alerts');
SELECT results_eq($$SELECT title, severity, description FROM inc WHERE tag = 'i2'$$, $$VALUES ('No alerts'::text, 'low'::text, NULL::text)$$,
	'create_incident(): ... no description');
SELECT ok((SELECT (SELECT incident_number FROM inc WHERE tag = 'i2') > (SELECT incident_number FROM inc WHERE tag = 'i1')),
	'create_incident(): incident numbers go up');

SELECT pg_temp.incidents() AS incidents_before, pg_temp.links() AS links_before \gset
SELECT throws_ok($$SELECT thrillmon.create_incident('t', 'urgent')$$, '22023', 'thrillmon: unknown severity "urgent"', 'create_incident(): unknown severity');
SELECT throws_ok($$SELECT thrillmon.create_incident('t', NULL)$$, '22023', 'thrillmon: unknown severity "NULL"', 'create_incident(): NULL severity');
SELECT throws_ok($$SELECT thrillmon.create_incident('', 'low')$$, '22023', 'thrillmon: an incident needs a title', 'create_incident(): empty title');
SELECT throws_ok($$SELECT thrillmon.create_incident('   ', 'low')$$, '22023', 'thrillmon: an incident needs a title', 'create_incident(): a title of spaces');
SELECT throws_ok($$SELECT thrillmon.create_incident(NULL, 'low')$$, '22023', 'thrillmon: an incident needs a title', 'create_incident(): NULL title');
SELECT throws_ok($$SELECT thrillmon.create_incident(repeat('x', 501), 'low')$$, '22001',
	'thrillmon: incident title is too long (501 characters, at most 500)', 'create_incident(): a title of 501 characters');
SELECT throws_ok($$SELECT thrillmon.create_incident('t', 'low', ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000ff']::uuid[])$$,
	'P0002', 'thrillmon: no alert with id 00000000-0000-0000-0000-0000000000ff', 'create_incident(): an unknown alert id');
SELECT throws_ok($$SELECT thrillmon.create_incident('t', 'low', ARRAY['00000000-0000-0000-0000-0000000000a1', NULL]::uuid[])$$,
	'22004', 'thrillmon: alert ids must not contain NULL', 'create_incident(): a NULL alert id');
SELECT results_eq('SELECT pg_temp.incidents(), pg_temp.links()', format('VALUES (%s, %s)', :incidents_before, :links_before),
	'create_incident(): refused calls wrote no incident and no link');
-- Whitespace is not only spaces (checked last: a title accepted here would be counted above).
SELECT throws_ok($$SELECT thrillmon.create_incident(E'\t\n ', 'low')$$, '22023', 'thrillmon: an incident needs a title',
	'create_incident(): a title of tabs and newlines');

-- Status.
SELECT lives_ok($$INSERT INTO inc SELECT 's1', * FROM thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), 'investigating')$$,
	'update_incident_status(): open -> investigating');
SELECT results_eq($$SELECT status, acknowledged_at, resolved_at, closed_at FROM inc WHERE tag = 's1'$$,
	$$VALUES ('investigating'::text, now(), NULL::timestamptz, NULL::timestamptz)$$, 'update_incident_status(): ... stamps acknowledged_at');
SELECT lives_ok($$INSERT INTO inc SELECT 's2', * FROM thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), 'investigating')$$,
	'update_incident_status(): investigating -> investigating');
SELECT results_eq($$SELECT status, acknowledged_at FROM inc WHERE tag = 's2'$$, $$VALUES ('investigating'::text, now())$$,
	'update_incident_status(): ... is a no-op');
SELECT lives_ok($$INSERT INTO inc SELECT 's3', * FROM thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), 'resolved')$$,
	'update_incident_status(): investigating -> resolved');
SELECT results_eq($$SELECT status, resolved_at, closed_at FROM thrillmon.incidents WHERE id = (SELECT id FROM inc WHERE tag = 'i1')$$,
	$$VALUES ('resolved'::text, now(), NULL::timestamptz)$$, 'update_incident_status(): ... stamps resolved_at');
SELECT throws_ok($$SELECT thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), 'investigating')$$, '22023',
	format('thrillmon: incident %s is resolved; it cannot go back to investigating', (SELECT incident_number FROM inc WHERE tag = 'i1')),
	'update_incident_status(): resolved -> investigating refused');
SELECT lives_ok($$INSERT INTO inc SELECT 's4', * FROM thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i2'), 'closed')$$,
	'update_incident_status(): open -> closed (skipping steps)');
SELECT results_eq($$SELECT status, acknowledged_at, resolved_at, closed_at FROM thrillmon.incidents WHERE id = (SELECT id FROM inc WHERE tag = 'i2')$$,
	$$VALUES ('closed'::text, now(), now(), now())$$, 'update_incident_status(): ... stamps every step it skipped');
SELECT throws_ok($$SELECT thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i2'), 'open')$$, '22023',
	format('thrillmon: incident %s is closed; it cannot go back to open', (SELECT incident_number FROM inc WHERE tag = 'i2')),
	'update_incident_status(): closed -> open refused');
SELECT throws_ok($$SELECT thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), 'done')$$, '22023',
	'thrillmon: unknown incident status "done"', 'update_incident_status(): unknown status');
SELECT throws_ok($$SELECT thrillmon.update_incident_status((SELECT id FROM inc WHERE tag = 'i1'), NULL)$$, '22023',
	'thrillmon: unknown incident status "NULL"', 'update_incident_status(): NULL status');
SELECT throws_ok($$SELECT thrillmon.update_incident_status('00000000-0000-0000-0000-0000000000ff', 'closed')$$, 'P0002',
	'thrillmon: no incident with id 00000000-0000-0000-0000-0000000000ff', 'update_incident_status(): unknown incident');
SELECT is((SELECT status FROM thrillmon.incidents WHERE id = (SELECT id FROM inc WHERE tag = 'i1')), 'resolved',
	'update_incident_status(): refused calls changed nothing');

-- link_alerts().
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message) VALUES ('00000000-0000-0000-0000-0000000000a4', 'x', 'low', 'm');
SELECT is(thrillmon.link_alerts((SELECT id FROM inc WHERE tag = 'i1'),
	ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-0000000000a4',
		'00000000-0000-0000-0000-0000000000a4']::uuid[]), 2, 'link_alerts(): returns how many links are new (one already linked, one named twice)');
SELECT set_eq($$SELECT alert_id FROM thrillmon.incident_alerts WHERE incident_id = (SELECT id FROM inc WHERE tag = 'i1')$$,
	ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000a3',
		'00000000-0000-0000-0000-0000000000a4']::uuid[], 'link_alerts(): the incident links four alerts');
SELECT is(thrillmon.link_alerts((SELECT id FROM inc WHERE tag = 'i1'), ARRAY['00000000-0000-0000-0000-0000000000a3']::uuid[]), 0,
	'link_alerts(): linking again adds nothing');
SELECT is(thrillmon.link_alerts((SELECT id FROM inc WHERE tag = 'i1'), NULL), 0, 'link_alerts(): NULL alert ids add nothing');
SELECT throws_ok($$SELECT thrillmon.link_alerts('00000000-0000-0000-0000-0000000000ff', ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[])$$,
	'P0002', 'thrillmon: no incident with id 00000000-0000-0000-0000-0000000000ff', 'link_alerts(): unknown incident');
SELECT throws_ok($$SELECT thrillmon.link_alerts((SELECT id FROM inc WHERE tag = 'i2'),
	ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000fe']::uuid[])$$,
	'P0002', 'thrillmon: no alert with id 00000000-0000-0000-0000-0000000000fe', 'link_alerts(): unknown alert');
SELECT is((SELECT count(*)::int FROM thrillmon.incident_alerts WHERE incident_id = (SELECT id FROM inc WHERE tag = 'i2')), 0,
	'link_alerts(): ... all or nothing');

------------------------------------------------------------------------------------------------
-- Automatic incidents
------------------------------------------------------------------------------------------------

-- A critical alert opens an incident.
SELECT pg_temp.reset();
UPDATE thrillmon.incident_policy SET open_on_critical = true, correlation_window_minutes = 10, correlation_min_metrics = 3;
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
SELECT setseed(0.07);
SELECT pg_temp.history('crit', pg_temp.vals(300, '{150}', '{100}'));
SELECT lives_ok($$SELECT pg_temp.pass('d1')$$, 'auto incidents: a pass over a spike of +100 sd');
SELECT is((SELECT severity FROM thrillmon.system_alerts WHERE metric_name = 'crit'), 'critical', 'auto incidents: ... a critical alert');
SELECT results_eq($$SELECT title, severity, status, metadata->>'source', metadata->>'reason', description FROM thrillmon.incidents$$,
	$$SELECT 'Critical anomaly on crit'::text, 'critical'::text, 'open'::text, 'auto'::text, 'critical alert'::text, message
	FROM thrillmon.system_alerts WHERE metric_name = 'crit'$$, 'auto incidents: ... opens one incident "Critical anomaly on crit"');
SELECT set_eq('SELECT alert_id FROM thrillmon.incident_alerts', $$SELECT id FROM thrillmon.system_alerts WHERE metric_name = 'crit'$$,
	'auto incidents: ... linking the alert');

-- Not with open_on_critical = false (and correlation off).
SELECT pg_temp.reset();
UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0;
SELECT setseed(0.08);
SELECT pg_temp.history(m, pg_temp.vals(300, '{150}', '{100}')) FROM unnest(ARRAY['cor_a', 'cor_b', 'cor_c']) m;
SELECT lives_ok($$SELECT pg_temp.pass('d2')$$, 'auto incidents: open_on_critical false, correlation_min_metrics 0: spikes on 3 metrics');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 3, 'auto incidents: ... three alerts');
SELECT is(pg_temp.incidents(), 0, 'auto incidents: ... no incident');

-- Correlation: alerts on 3 metrics within the window open one incident.
SELECT pg_temp.reset();
UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_window_minutes = 10, correlation_min_metrics = 3;
SELECT setseed(0.09);
SELECT pg_temp.history(m, pg_temp.vals(300, '{150}', '{30}')) FROM unnest(ARRAY['cor_a', 'cor_b', 'cor_c']) m;
SELECT lives_ok($$SELECT pg_temp.pass('d3')$$, 'auto incidents: correlation_min_metrics 3: spikes on 3 metrics in one pass');
SELECT results_eq($$SELECT title, description, metadata->>'source', metadata->>'reason', status FROM thrillmon.incidents$$,
	$$VALUES ('Anomalies on 3 metrics within 10 minutes'::text, 'cor_a, cor_b, cor_c'::text, 'auto'::text, 'correlated alerts'::text, 'open'::text)$$,
	'auto incidents: ... one incident "Anomalies on 3 metrics within 10 minutes"');
SELECT is((SELECT severity FROM thrillmon.incidents),
	(SELECT severity FROM thrillmon.system_alerts ORDER BY thrillmon._severity_rank(severity) DESC LIMIT 1),
	'auto incidents: ... with the worst alert''s severity');
SELECT set_eq('SELECT alert_id FROM thrillmon.incident_alerts', 'SELECT id FROM thrillmon.system_alerts', 'auto incidents: ... linking all three alerts');

-- Two metrics in one pass, the third in a later pass: the incident comes with the third.
SELECT pg_temp.reset();
SELECT setseed(0.1);
SELECT pg_temp.history('cor_a', pg_temp.vals(300, '{150}', '{30}'));
SELECT pg_temp.history('cor_b', pg_temp.vals(300, '{150}', '{30}'));
SELECT pg_temp.history('cor_c', pg_temp.vals(300));
SELECT lives_ok($$SELECT pg_temp.pass('d4')$$, 'auto incidents: spikes on 2 metrics');
SELECT is(pg_temp.incidents(), 0, 'auto incidents: ... two are not enough');
SELECT pg_temp.live('cor_c', ARRAY[130::float8]);
SELECT lives_ok($$SELECT pg_temp.pass('d5')$$, 'auto incidents: a later pass with a spike on a third metric');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'd5' AND metric_name = 'cor_c'), 1, 'auto incidents: ... found');
SELECT is((SELECT title FROM thrillmon.incidents), 'Anomalies on 3 metrics within 10 minutes', 'auto incidents: ... opens the incident');
SELECT set_eq('SELECT alert_id FROM thrillmon.incident_alerts', 'SELECT id FROM thrillmon.system_alerts',
	'auto incidents: ... linking the alerts of both passes');

------------------------------------------------------------------------------------------------
-- backtest()
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
SELECT setseed(0.12);
SELECT pg_temp.history('bt', pg_temp.vals(300, '{200}', '{30}'));
CREATE TEMP TABLE bt AS SELECT * FROM thrillmon.backtest('bt', now() - interval '1 day', now());
SELECT is((SELECT count(*)::int FROM bt), 300, 'backtest(): one row per stored point');
SELECT set_eq('SELECT "timestamp", value FROM bt', $$SELECT "timestamp", metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'bt'$$,
	'backtest(): ... each point''s time and value');
SELECT set_eq('SELECT "timestamp" FROM bt WHERE is_anomaly', $$SELECT pg_temp.spike_at('bt', 130)$$, 'backtest(): is_anomaly exactly on the spike');
SELECT results_eq($$SELECT anomaly_type, severity IN ('high', 'critical'), score >= 0.5, baseline BETWEEN 99 AND 101, deviation >= 10 FROM bt WHERE is_anomaly$$,
	$$VALUES ('spike'::text, true, true, true, true)$$, 'backtest(): ... a spike, high or critical, baseline near 100, 10+ sd');
SELECT ok((SELECT bool_and(anomaly_type IS NULL AND severity IS NULL AND score < 0.5) FROM bt WHERE NOT is_anomaly),
	'backtest(): other points: no type, no severity, score under 0.5');
SELECT ok((SELECT bool_and(score = 0 AND algorithm IS NULL AND baseline IS NULL) FROM (SELECT * FROM bt ORDER BY "timestamp" LIMIT 29) w),
	'backtest(): the first points (warm-up, min_data_points 30) have score 0 and no algorithm');
SELECT ok((SELECT bool_and(algorithm IS NOT NULL AND baseline IS NOT NULL AND deviation IS NOT NULL)
	FROM (SELECT * FROM bt ORDER BY "timestamp" OFFSET 30) w), 'backtest(): later points have algorithm, baseline and deviation');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections) + (SELECT count(*)::int FROM thrillmon.system_alerts)
	+ (SELECT count(*)::int FROM thrillmon.detector_progress) + (SELECT count(*)::int FROM thrillmon.job_runs), 0,
	'backtest(): writes nothing (no anomaly, alert, progress or job run)');
-- [from, to] inclusive, warmed on the lookback window before from.
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('bt', pg_temp.spike_at('bt', 130) - interval '10 minutes', pg_temp.spike_at('bt', 130) + interval '10 minutes')),
	21, 'backtest(): [from, to] includes both ends');
SELECT results_eq($$SELECT "timestamp", algorithm IS NOT NULL FROM thrillmon.backtest('bt', pg_temp.spike_at('bt', 130) - interval '10 minutes', 'infinity')
	WHERE is_anomaly OR "timestamp" = pg_temp.spike_at('bt', 130) - interval '10 minutes' ORDER BY 1$$,
	$$VALUES (pg_temp.spike_at('bt', 130) - interval '10 minutes', true), (pg_temp.spike_at('bt', 130), true)$$,
	'backtest(): warmed on the history before from: scoring from its first point, the spike found');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('bt', now() + interval '1 minute', 'infinity')), 0, 'backtest(): an empty range');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('nothing_here', '-infinity', 'infinity')), 0, 'backtest(): an unknown metric: no row');
-- Overrides.
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('bt', '-infinity', 'infinity', sensitivity => 100) WHERE is_anomaly), 0,
	'backtest(): sensitivity 100: no anomaly');
SELECT results_eq($$SELECT DISTINCT algorithm FROM thrillmon.backtest('bt', '-infinity', 'infinity', ARRAY['mad']) WHERE algorithm IS NOT NULL$$,
	$$VALUES ('mad'::text)$$, 'backtest(): ARRAY[''mad'']: every score comes from mad');
SELECT set_eq($$SELECT "timestamp" FROM thrillmon.backtest('bt', '-infinity', 'infinity', ARRAY['mad']) WHERE is_anomaly$$,
	$$SELECT pg_temp.spike_at('bt', 130)$$, 'backtest(): ... and it finds the spike');
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 100 WHERE metric_name = '*';
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('bt', '-infinity', 'infinity') WHERE is_anomaly), 0,
	'backtest(): follows the metric''s configuration (sensitivity 100 in ''*'')');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('bt', '-infinity', 'infinity', sensitivity => 4.5) WHERE is_anomaly), 1,
	'backtest(): ... unless overridden');
UPDATE thrillmon.anomaly_detection_config SET sensitivity = DEFAULT WHERE metric_name = '*';
-- Refused.
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', now(), now() - interval '1 second')$$, '22023', NULL, 'backtest(): from after to (22023)');
SELECT throws_like($$SELECT * FROM thrillmon.backtest('bt', now(), now() - interval '1 second')$$, 'thrillmon: backtest range is empty: from (%) is after to (%)',
	'backtest(): ... "backtest range is empty"');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest(NULL, now(), now())$$, '22004', 'thrillmon: backtest needs metric_name, from and to', 'backtest(): NULL metric');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', NULL, now())$$, '22004', 'thrillmon: backtest needs metric_name, from and to', 'backtest(): NULL from');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', now(), NULL)$$, '22004', 'thrillmon: backtest needs metric_name, from and to', 'backtest(): NULL to');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', ARRAY['mad', 'magic'])$$, '22023',
	'thrillmon: unknown detection algorithm "magic"', 'backtest(): unknown algorithm');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', '{}'::text[])$$, '22023', NULL, 'backtest(): no algorithm');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', ARRAY['mad', NULL])$$, '22004', NULL, 'backtest(): a NULL algorithm');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', NULL, 0)$$, '22023', NULL, 'backtest(): sensitivity 0');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', NULL, 1e-300)$$, '22023',
	'thrillmon: sensitivity must be between 0.5 and 100, got 1e-300', 'backtest(): sensitivity 1e-300');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', NULL, -1)$$, '22023', NULL, 'backtest(): negative sensitivity');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', NULL, 'NaN')$$, '22023', NULL, 'backtest(): sensitivity NaN');
SELECT throws_ok($$SELECT * FROM thrillmon.backtest('bt', '-infinity', 'infinity', NULL, 101)$$, '22023', NULL, 'backtest(): sensitivity above 100');

------------------------------------------------------------------------------------------------
-- backtest() replays exactly what live detection found, pass after pass
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0;
SELECT setseed(0.13);
-- Four batches of live points 5 ms apart (the whole history well inside the lookback window), a
-- pass after each: a spike (after the detector's 128 learning points), a drop 110 points later, a
-- level shift of +20 sd 170 points after that, and a spike of +40 on the new level.
SELECT pg_temp.live('eq', pg_temp.vals(150, '{140}', '{30}'));
SELECT lives_ok($$SELECT pg_temp.pass('e1')$$, 'live = backtest: pass after batch 1 (150 points, a spike)');
SELECT pg_temp.live('eq', pg_temp.vals(150, '{100}', '{-30}'));
SELECT lives_ok($$SELECT pg_temp.pass('e2')$$, 'live = backtest: pass after batch 2 (150 points, a drop)');
SELECT pg_temp.live('eq', array_cat(pg_temp.vals(120), (SELECT array_agg(x + 20) FROM unnest(pg_temp.vals(30)) x)));
SELECT lives_ok($$SELECT pg_temp.pass('e3')$$, 'live = backtest: pass after batch 3 (150 points, a level shift of +20 sd)');
SELECT pg_temp.live('eq', (SELECT array_agg(x + 20) FROM unnest(pg_temp.vals(150, '{130}', '{40}')) x));
SELECT lives_ok($$SELECT pg_temp.pass('e4')$$, 'live = backtest: pass after batch 4 (150 points, a spike on the new level)');
-- Which of the later changes are reported is the detector's business (the level shift and the
-- spike after it can fall in a refractory period or a recalibration); the spike and the drop are
-- clean and far apart.
SELECT ok((SELECT count(*) >= 2 AND count(DISTINCT metadata->>'pass') >= 2 FROM thrillmon.anomaly_detections),
	'live = backtest: live detection found anomalies in two passes or more (the spike, the drop)');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('eq', '-infinity', 'infinity')), 600, 'live = backtest: backtest() sees all 600 points');
SELECT results_eq(
	$$SELECT time_window_end, confidence_score, deviation_score, baseline_value, anomaly_type, severity, detection_algorithm
	FROM thrillmon.anomaly_detections WHERE metric_name = 'eq' ORDER BY time_window_end$$,
	$$SELECT "timestamp", score, deviation, baseline, anomaly_type, severity, algorithm
	FROM thrillmon.backtest('eq', '-infinity', 'infinity') WHERE is_anomaly ORDER BY "timestamp"$$,
	'live = backtest: the anomalies of four incremental passes are exactly backtest()''s (time, score, deviation, baseline, type, severity, algorithm)');
SELECT set_eq($$SELECT anomaly_value FROM thrillmon.anomaly_detections WHERE metric_name = 'eq'$$,
	$$SELECT value FROM thrillmon.backtest('eq', '-infinity', 'infinity') WHERE is_anomaly$$, 'live = backtest: ... and values');

------------------------------------------------------------------------------------------------
-- A pass over many metrics scores them in threads (thrillmon.detect_threads): the same results
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
SET LOCAL thrillmon.detect_threads = 4;
SELECT setseed(0.29);
-- n metrics, v points each 1 ms apart (a spike of +30 sd or more at point spike_at, none for 0),
-- then wait until the wall clock has passed them.
CREATE FUNCTION pg_temp.live_many(n integer, v integer, spike_at integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	base timestamptz := clock_timestamp() + interval '20 ms';
BEGIN
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
	SELECT 'th_' || m, CASE WHEN i = spike_at THEN 130 + m % 7 ELSE 100 + pg_temp.noise() END, base + (i - 1) * interval '1 ms'
	FROM generate_series(1, n) m, generate_series(1, v) i;
	PERFORM pg_temp.wait_past(base + (v - 1) * interval '1 ms');
END
$$;
-- 300 metrics: a thread takes 64 metrics or more, so the passes run in four threads.
SELECT pg_temp.live_many(300, 100, 0);
SELECT lives_ok($$SELECT pg_temp.pass('t1')$$, 'threads: a first pass over 300 metrics with detect_threads = 4 (new detectors)');
-- (What the backend's last pass did: threads counts the threads that took part. The helpers
-- take chunks of metrics as they come free, so one that the scheduler runs late may find none
-- left: more than one thread, and at most four.)
SELECT is((SELECT (metrics, rebuilt, threads BETWEEN 2 AND 4, cached)::text FROM thrillmon._detect_pass_stats()), '(300,300,t,0)',
	'threads: the first pass scored 300 metrics, all new, in two to four threads (and this backend, not the worker, kept none)');
SELECT pg_temp.live_many(300, 100, 60);
SELECT lives_ok($$SELECT pg_temp.pass('t2')$$, 'threads: a second pass (steady: scored in threads)');
SELECT is((SELECT (metrics, rebuilt, points, threads BETWEEN 2 AND 4)::text FROM thrillmon._detect_pass_stats()), '(300,300,30000,t)',
	'threads: the second pass rebuilt the 300 detectors from history and scored 100 new points of each, in two to four threads');
-- A backend that keeps its detectors (as the worker does) and starts with none learns every
-- metric's cadence from its lookback; that one read also gives the rebuild its history.
SET LOCAL thrillmon.session_detector_cache = on;
SELECT pg_temp.live_many(300, 100, 70);
SELECT lives_ok($$SELECT pg_temp.pass('t3')$$, 'threads: a third pass, in a backend that keeps its detectors and has none yet');
SELECT is((SELECT (metrics, rebuilt, points, cached)::text FROM thrillmon._detect_pass_stats()), '(300,300,30000,300)',
	'threads: ... rebuilt the 300 detectors from the lookback it read for their cadence, and kept them');
SET LOCAL thrillmon.session_detector_cache = off;
SELECT is((SELECT count(DISTINCT metric_name)::int FROM thrillmon.anomaly_detections WHERE metric_name LIKE 'th\_%'), 300,
	'threads: every metric''s spike found');
SELECT results_eq(
	$$SELECT metric_name, time_window_end, confidence_score, deviation_score, baseline_value, anomaly_type, severity, detection_algorithm
	FROM thrillmon.anomaly_detections WHERE metric_name LIKE 'th\_%' ORDER BY 1, 2$$,
	$$SELECT x.m, b."timestamp", b.score, b.deviation, b.baseline, b.anomaly_type, b.severity, b.algorithm
	FROM (SELECT DISTINCT metric_name AS m FROM thrillmon.metric_time_series WHERE metric_name LIKE 'th\_%') x
	CROSS JOIN LATERAL thrillmon.backtest(x.m, '-infinity', 'infinity') b WHERE b.is_anomaly ORDER BY 1, 2$$,
	'threads: the anomalies of threaded passes are exactly backtest()''s, metric by metric');

------------------------------------------------------------------------------------------------
-- A new metric's lone anomaly is recorded and raises no alert (thrillmon.corroborate_new_metrics)
------------------------------------------------------------------------------------------------

SELECT pg_temp.reset();
UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*';
SET thrillmon.corroborate_new_metrics = on;
SELECT setseed(0.31);
-- New: 300 points, under min_data_points + 500 (the detector's calibration is not trusted yet).
SELECT pg_temp.history('cr_alone', pg_temp.vals(300, '{290}', '{30}'));
SELECT lives_ok($$SELECT pg_temp.pass('cr1')$$, 'corroboration: a pass over a new metric with a spike');
SELECT is((SELECT count(*)::int FROM got WHERE tag = 'cr1' AND metric_name = 'cr_alone' AND anomaly_value = 130), 1,
	'corroboration: ... the spike is recorded');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 0, 'corroboration: ... and raises no alert alone');
SELECT is((SELECT metadata->>'uncorroborated' FROM thrillmon.anomaly_detections WHERE metric_name = 'cr_alone' AND anomaly_value = 130),
	'true', 'corroboration: ... marked uncorroborated');
-- Two new metrics anomalous in one pass (a storm shows on several at once): both alert.
SELECT pg_temp.reset();
SELECT pg_temp.history(m, pg_temp.vals(300, '{290}', '{30}')) FROM unnest(ARRAY['cr_a', 'cr_b']) m;
SELECT lives_ok($$SELECT pg_temp.pass('cr2')$$, 'corroboration: a pass over two new metrics, each with a spike');
SELECT set_eq($$SELECT metric_name FROM thrillmon.system_alerts WHERE alert_type = 'anomaly'$$, ARRAY['cr_a', 'cr_b'],
	'corroboration: ... each raises its alert');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections WHERE metadata ? 'uncorroborated'), 0,
	'corroboration: ... none is marked uncorroborated');
-- A low anomaly corroborates nothing: a move of 1.2 % on a metric at 1000 (12 of its standard
-- deviations, but reported low) in the same pass as a new metric's spike.
SELECT pg_temp.reset();
SELECT pg_temp.history('cr_d', pg_temp.vals(300, '{290}', '{30}'));
SELECT pg_temp.history('cr_small', (SELECT array_agg(v + 900 ORDER BY i) FROM unnest(pg_temp.vals(300, '{290}', '{12}')) WITH ORDINALITY u(v, i)));
SELECT lives_ok($$SELECT pg_temp.pass('cr6')$$, 'corroboration: a pass over a new metric with a spike and one with a move of a per cent');
SELECT is((SELECT string_agg(DISTINCT severity, ',') FROM got WHERE tag = 'cr6' AND metric_name = 'cr_small' AND anomaly_value = 1012), 'low',
	'corroboration: ... the small move is reported, low');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 0, 'corroboration: ... and corroborates nothing: no alert');
SELECT is((SELECT metadata->>'uncorroborated' FROM thrillmon.anomaly_detections WHERE metric_name = 'cr_d' AND anomaly_value = 130),
	'true', 'corroboration: ... the spike is marked uncorroborated');
-- thrillmon's own counts corroborate nothing (an alert moves them).
SELECT pg_temp.reset();
SELECT pg_temp.history(m, pg_temp.vals(300, '{290}', '{30}')) FROM unnest(ARRAY['cr_c', 'unresolved_alerts']) m;
SELECT lives_ok($$SELECT pg_temp.pass('cr3')$$, 'corroboration: a pass over a new metric and unresolved_alerts, each with a spike');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 0, 'corroboration: ... thrillmon''s own count does not corroborate');
-- A metric whose detector is calibrated (800 points) alerts alone.
SELECT pg_temp.reset();
SELECT pg_temp.history('cr_grown', pg_temp.vals(800, '{790}', '{30}'));
SELECT lives_ok($$SELECT pg_temp.pass('cr4')$$, 'corroboration: a pass over a calibrated metric with a spike');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'cr_grown'), 1, 'corroboration: ... it alerts alone');
-- Off: a new metric alerts alone.
SELECT pg_temp.reset();
SET thrillmon.corroborate_new_metrics = off;
SELECT pg_temp.history('cr_off', pg_temp.vals(300, '{290}', '{30}'));
SELECT lives_ok($$SELECT pg_temp.pass('cr5')$$, 'corroboration: off, a pass over a new metric with a spike');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE metric_name = 'cr_off'), 1, 'corroboration: ... off, it alerts alone');

SELECT * FROM finish();
ROLLBACK;
