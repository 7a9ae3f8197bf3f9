-- cleanup_old_alerts(): only alerts resolved before the cut-off, never one linked to an open or
-- investigating incident. cleanup_old_incidents(): only resolved/closed incidents, aged from when
-- they ended; their alert links go with them.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(40);

\ir fixtures/clean_slate.sql

CREATE FUNCTION pg_temp.alert(name text) RETURNS uuid LANGUAGE sql STABLE AS
$$SELECT id FROM thrillmon.system_alerts WHERE alert_type = name$$;
CREATE FUNCTION pg_temp.incident(name text) RETURNS uuid LANGUAGE sql STABLE AS
$$SELECT id FROM thrillmon.incidents WHERE title = name$$;

-- Incidents ---------------------------------------------------------------------------------------------
INSERT INTO thrillmon.incidents (title, severity, status, detected_at, resolved_at, closed_at) VALUES
	-- linked to alerts below
	('inc_open', 'high', 'open', now() - interval '200 days', NULL, NULL),
	('inc_investigating', 'high', 'investigating', now() - interval '200 days', NULL, NULL),
	('inc_resolved_recent', 'high', 'resolved', now() - interval '200 days', now() - interval '10 days', NULL),
	('inc_closed_recent', 'high', 'closed', now() - interval '200 days', now() - interval '20 days', now() - interval '10 days'),
	-- incident retention
	('inc_res89', 'low', 'resolved', now() - interval '120 days', now() - interval '89 days', NULL),
	('inc_res91', 'low', 'resolved', now() - interval '120 days', now() - interval '91 days', NULL),
	('inc_res90exact', 'low', 'resolved', now() - interval '120 days', now() - interval '90 days', NULL),
	('inc_closed89', 'low', 'closed', now() - interval '120 days', now() - interval '95 days', now() - interval '89 days'),
	('inc_closed91', 'low', 'closed', now() - interval '120 days', now() - interval '95 days', now() - interval '91 days'),
	('inc_closedonly91', 'low', 'closed', now() - interval '120 days', NULL, now() - interval '91 days'),
	('inc_open200', 'critical', 'open', now() - interval '200 days', NULL, NULL),
	('inc_inv200', 'critical', 'investigating', now() - interval '200 days', NULL, NULL),
	('inc_reopened', 'critical', 'open', now() - interval '200 days', now() - interval '150 days', NULL);

-- Alerts ------------------------------------------------------------------------------------------------
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, acknowledged_at, resolved_at) VALUES
	('res89', 'low', 'm', now() - interval '100 days', NULL, now() - interval '89 days'),
	('res91', 'low', 'm', now() - interval '100 days', NULL, now() - interval '91 days'),
	('res90exact', 'low', 'm', now() - interval '100 days', NULL, now() - interval '90 days'),
	('unres200', 'high', 'm', now() - interval '200 days', NULL, NULL),
	('acked200', 'high', 'm', now() - interval '200 days', now() - interval '199 days', NULL),
	('res100_open', 'high', 'm', now() - interval '150 days', NULL, now() - interval '100 days'),
	('res100_investigating', 'high', 'm', now() - interval '150 days', NULL, now() - interval '100 days'),
	('res100_resolved_inc', 'high', 'm', now() - interval '150 days', NULL, now() - interval '100 days'),
	('res100_closed_inc', 'high', 'm', now() - interval '150 days', NULL, now() - interval '100 days'),
	('res100_open_and_resolved_inc', 'high', 'm', now() - interval '150 days', NULL, now() - interval '100 days'),
	('link_res91', 'medium', 'm', now() - interval '5 days', NULL, NULL),
	('link_closed91', 'medium', 'm', now() - interval '5 days', NULL, NULL);

INSERT INTO thrillmon.incident_alerts (incident_id, alert_id) VALUES
	(pg_temp.incident('inc_open'), pg_temp.alert('res100_open')),
	(pg_temp.incident('inc_investigating'), pg_temp.alert('res100_investigating')),
	(pg_temp.incident('inc_resolved_recent'), pg_temp.alert('res100_resolved_inc')),
	(pg_temp.incident('inc_closed_recent'), pg_temp.alert('res100_closed_inc')),
	(pg_temp.incident('inc_open'), pg_temp.alert('res100_open_and_resolved_inc')),
	(pg_temp.incident('inc_resolved_recent'), pg_temp.alert('res100_open_and_resolved_inc')),
	(pg_temp.incident('inc_res91'), pg_temp.alert('link_res91')),
	(pg_temp.incident('inc_closed91'), pg_temp.alert('link_closed91')),
	(pg_temp.incident('inc_res89'), pg_temp.alert('link_res91'));

-- An anomaly pointing at an alert that will be deleted.
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created, alert_id)
VALUES ('m', 'spike', 'high', 5, 3, 0.9, 'ensemble', now() - interval '150 days', now() - interval '150 days',
	now() - interval '150 days', true, pg_temp.alert('res91'));

-- cleanup_old_alerts: refused arguments --------------------------------------------------------------------

SELECT throws_ok('SELECT thrillmon.cleanup_old_alerts(0)', '22023', 'thrillmon: retention_days must be at least 1, got 0',
	'alerts: retention_days 0 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_alerts(-1)', '22023', 'thrillmon: retention_days must be at least 1, got -1',
	'alerts: retention_days -1 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_alerts(NULL)', '22004', 'thrillmon: retention_days must not be NULL',
	'alerts: retention_days NULL refused');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts), 12, 'refused calls removed no alert');

-- cleanup_old_alerts(90) ------------------------------------------------------------------------------------

SELECT is(thrillmon.cleanup_old_alerts(90), 3::bigint, 'cleanup_old_alerts(90) removes 3 alerts');
SELECT set_eq('SELECT alert_type FROM thrillmon.system_alerts',
	ARRAY['res89', 'res90exact', 'unres200', 'acked200', 'res100_open', 'res100_investigating',
		'res100_open_and_resolved_inc', 'link_res91', 'link_closed91'],
	'kept: resolved within 90 days, unresolved, linked to an open or investigating incident');
SELECT ok(pg_temp.alert('res91') IS NULL, 'alert resolved 91 days ago deleted');
SELECT ok(pg_temp.alert('res100_resolved_inc') IS NULL, 'old alert linked only to a resolved incident deleted');
SELECT ok(pg_temp.alert('res100_closed_inc') IS NULL, 'old alert linked only to a closed incident deleted');
SELECT ok(pg_temp.alert('unres200') IS NOT NULL, 'unresolved 200-day-old alert kept');
SELECT ok(pg_temp.alert('res100_open') IS NOT NULL, 'old resolved alert linked to an open incident kept');
SELECT ok(pg_temp.alert('res100_investigating') IS NOT NULL, 'old resolved alert linked to an investigating incident kept');
SELECT ok(pg_temp.alert('res100_open_and_resolved_inc') IS NOT NULL, 'old resolved alert linked to an open and a resolved incident kept');
SELECT is((SELECT count(*)::int FROM thrillmon.incident_alerts WHERE incident_id IN
	(pg_temp.incident('inc_resolved_recent'), pg_temp.incident('inc_closed_recent'))), 1,
	'links of deleted alerts are gone (one link of the kept alert remains)');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents), 13, 'alert cleanup deletes no incident');
SELECT results_eq($$SELECT alert_id, alert_created FROM thrillmon.anomaly_detections$$,
	$$VALUES (NULL::uuid, true)$$, 'the anomaly of a deleted alert stays, its alert_id cleared');
SELECT results_eq($$SELECT target, status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('alerts'::text, 'succeeded'::text, 3::bigint)$$, 'job_runs: alerts / succeeded / 3');
SELECT is(thrillmon.cleanup_old_alerts(90), 0::bigint, 'a second call removes nothing');

-- Once its incident is resolved, a protected alert becomes removable.
UPDATE thrillmon.incidents SET status = 'resolved', resolved_at = now() WHERE title = 'inc_investigating';
SELECT is(thrillmon.cleanup_old_alerts(90), 1::bigint, 'alert freed when its investigating incident is resolved');
SELECT ok(pg_temp.alert('res100_investigating') IS NULL, 'and it is the one deleted');

-- Default: 90 days.
UPDATE thrillmon.system_alerts SET resolved_at = now() - interval '90 days' - interval '1 second' WHERE alert_type = 'res90exact';
SELECT is(thrillmon.cleanup_old_alerts(), 1::bigint, 'no argument: 90 days');
SELECT ok(pg_temp.alert('res89') IS NOT NULL AND pg_temp.alert('res90exact') IS NULL, 'the 89-day one stays, the 90-day-1s one goes');

-- cleanup_old_incidents: refused arguments -----------------------------------------------------------------

SELECT throws_ok('SELECT thrillmon.cleanup_old_incidents(0)', '22023', 'thrillmon: retention_days must be at least 1, got 0',
	'incidents: retention_days 0 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_incidents(-90)', '22023', 'thrillmon: retention_days must be at least 1, got -90',
	'incidents: retention_days -90 refused');
SELECT throws_ok('SELECT thrillmon.cleanup_old_incidents(NULL)', '22004', 'thrillmon: retention_days must not be NULL',
	'incidents: retention_days NULL refused');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents), 13, 'refused calls removed no incident');

-- cleanup_old_incidents(90) ---------------------------------------------------------------------------------

DELETE FROM thrillmon.job_runs;
SELECT is(thrillmon.cleanup_old_incidents(90), 3::bigint, 'cleanup_old_incidents(90) removes 3 incidents');
SELECT set_eq('SELECT title FROM thrillmon.incidents',
	ARRAY['inc_open', 'inc_investigating', 'inc_resolved_recent', 'inc_closed_recent', 'inc_res89', 'inc_res90exact',
		'inc_closed89', 'inc_open200', 'inc_inv200', 'inc_reopened'],
	'kept: open/investigating whatever their age, ended within 90 days');
SELECT ok(pg_temp.incident('inc_res91') IS NULL, 'resolved 91 days ago: deleted');
SELECT ok(pg_temp.incident('inc_closed91') IS NULL, 'closed 91 days ago: deleted');
SELECT ok(pg_temp.incident('inc_closedonly91') IS NULL, 'closed 91 days ago without resolved_at: deleted');
SELECT ok(pg_temp.incident('inc_closed89') IS NOT NULL, 'resolved 95 but closed 89 days ago: kept (aged from the later end)');
SELECT ok(pg_temp.incident('inc_open200') IS NOT NULL AND pg_temp.incident('inc_inv200') IS NOT NULL,
	'open and investigating incidents detected 200 days ago: kept');
SELECT ok(pg_temp.incident('inc_reopened') IS NOT NULL, 'an open incident with an old resolved_at (reopened): kept');
SELECT is_empty($$SELECT 1 FROM thrillmon.incident_alerts ia LEFT JOIN thrillmon.incidents i ON i.id = ia.incident_id
	WHERE i.id IS NULL$$, 'no alert link points to a deleted incident');
SELECT is((SELECT count(*)::int FROM thrillmon.incident_alerts WHERE alert_id IN
	(pg_temp.alert('link_res91'), pg_temp.alert('link_closed91'))), 1, 'links of deleted incidents are gone, others remain');
SELECT ok(pg_temp.alert('link_res91') IS NOT NULL AND pg_temp.alert('link_closed91') IS NOT NULL,
	'the alerts of deleted incidents themselves are kept');
SELECT results_eq($$SELECT target, status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('incidents'::text, 'succeeded'::text, 3::bigint)$$, 'job_runs: incidents / succeeded / 3');
SELECT is(thrillmon.cleanup_old_incidents(90), 0::bigint, 'a second call removes nothing');

-- Default: 90 days.
UPDATE thrillmon.incidents SET resolved_at = now() - interval '90 days' - interval '1 second' WHERE title = 'inc_res90exact';
SELECT is(thrillmon.cleanup_old_incidents(), 1::bigint, 'no argument: 90 days');

SELECT * FROM finish();
ROLLBACK;
