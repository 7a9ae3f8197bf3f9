-- Privileges on what 0.3.0 adds (detection, alerts, incidents), for PUBLIC, thrillmon_reader,
-- thrillmon_writer, thrillmon_admin and a superuser: readers backtest and read the incident policy
-- and the detection progress; admins run detection, handle alerts and incidents and change the
-- incident policy; the internal functions (leading underscore) are for nobody but the owner.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(112);

\ir fixtures/clean_slate.sql
CREATE ROLE tap_nobody_03 NOLOGIN;
CREATE ROLE tap_super_03 NOLOGIN SUPERUSER;

-- Catalogue: EXECUTE on every function 0.3.0 adds -----------------------------------------------------
-- Columns: PUBLIC, reader, writer, admin (a member of reader and writer), a superuser.
CREATE TEMP TABLE fn (f regprocedure, public boolean, reader boolean, writer boolean, admin boolean);
INSERT INTO fn VALUES
	('thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision)', false, true, false, true),
	('thrillmon.detect_anomalies()', false, false, false, true),
	('thrillmon.acknowledge_alert(uuid)', false, false, false, true),
	('thrillmon.resolve_alert(uuid)', false, false, false, true),
	('thrillmon.create_incident(text, text, uuid[], text)', false, false, false, true),
	('thrillmon.link_alerts(uuid, uuid[])', false, false, false, true),
	('thrillmon.update_incident_status(uuid, text)', false, false, false, true),
	('thrillmon._config_guard()', false, false, false, false),
	('thrillmon._detect_horizon()', false, false, false, false),
	('thrillmon._detect_scan(timestamptz, timestamptz, bigint, bigint)', false, false, false, false),
	('thrillmon._backtest(text, timestamptz, timestamptz, text[], double precision)', false, false, false, false),
	('thrillmon._severity_rank(text)', false, false, false, false),
	('thrillmon._notify_alert(thrillmon.system_alerts, text, text)', false, false, false, false),
	('thrillmon._check_alert_ids(uuid[])', false, false, false, false),
	('thrillmon._auto_incidents(uuid[])', false, false, false, false),
	('thrillmon._config_for(text)', false, true, false, true), -- (0.8.0: report() runs as its caller)
	('thrillmon._detect_run()', false, false, false, false);

SELECT is(ARRAY[has_function_privilege('public', f, 'EXECUTE'), has_function_privilege('thrillmon_reader', f, 'EXECUTE'),
		has_function_privilege('thrillmon_writer', f, 'EXECUTE'), has_function_privilege('thrillmon_admin', f, 'EXECUTE'),
		has_function_privilege('tap_super_03', f, 'EXECUTE')],
	ARRAY[public, reader, writer, admin, true],
	'EXECUTE on ' || f::text || ' (PUBLIC, reader, writer, admin, superuser)')
FROM fn ORDER BY f::text;
SELECT is((SELECT count(*)::int FROM fn), 17, 'the matrix lists the 17 functions 0.3.0 adds');
-- Catalogue: the two tables 0.3.0 adds ---------------------------------------------------------------
CREATE TEMP TABLE tp (t regclass, priv text, public boolean, reader boolean, writer boolean, admin boolean);
INSERT INTO tp VALUES
	('thrillmon.incident_policy', 'SELECT', false, true, false, true),
	('thrillmon.incident_policy', 'UPDATE', false, false, false, true),
	('thrillmon.incident_policy', 'INSERT', false, false, false, false),
	('thrillmon.incident_policy', 'DELETE', false, false, false, false),
	('thrillmon.incident_policy', 'TRUNCATE', false, false, false, false),
	('thrillmon.detector_progress', 'SELECT', false, true, false, true),
	('thrillmon.detector_progress', 'UPDATE', false, false, false, false),
	('thrillmon.detector_progress', 'INSERT', false, false, false, false),
	('thrillmon.detector_progress', 'DELETE', false, false, false, false),
	('thrillmon.detector_progress', 'TRUNCATE', false, false, false, false);
SELECT is(ARRAY[has_table_privilege('public', t, priv), has_table_privilege('thrillmon_reader', t, priv),
		has_table_privilege('thrillmon_writer', t, priv), has_table_privilege('thrillmon_admin', t, priv),
		has_table_privilege('tap_super_03', t, priv)],
	ARRAY[public, reader, writer, admin, true],
	priv || ' on ' || t::text || ' (PUBLIC, reader, writer, admin, superuser)')
FROM tp ORDER BY t::text, priv;

-- Behaviour: the calls under each role -----------------------------------------------------------------
-- Fixtures: a metric to backtest, an alert to acknowledge, resolve and link, an incident.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'g3', 100 + (g % 7) * 0.1, now() - make_interval(mins => 100 - g) FROM generate_series(1, 99) g;
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at) VALUES
	('00000000-0000-0000-0000-0000000003a1', 'anomaly', 'high', 'm', now() - interval '1 hour');
INSERT INTO thrillmon.incidents (id, title, severity) VALUES ('00000000-0000-0000-0000-0000000003c1', 'g3 incident', 'low');

CREATE TEMP TABLE calls (what text, call text);
INSERT INTO calls VALUES
	('backtest', $$SELECT count(*) FROM thrillmon.backtest('g3', '-infinity', 'infinity')$$),
	('detect_anomalies', 'SELECT count(*) FROM thrillmon.detect_anomalies()'),
	('acknowledge_alert', $$SELECT thrillmon.acknowledge_alert('00000000-0000-0000-0000-0000000003a1')$$),
	('resolve_alert', $$SELECT thrillmon.resolve_alert('00000000-0000-0000-0000-0000000003a1')$$),
	('create_incident', $$SELECT thrillmon.create_incident('by a role', 'low', ARRAY['00000000-0000-0000-0000-0000000003a1']::uuid[])$$),
	('link_alerts', $$SELECT thrillmon.link_alerts('00000000-0000-0000-0000-0000000003c1', ARRAY['00000000-0000-0000-0000-0000000003a1']::uuid[])$$),
	('update_incident_status', $$SELECT thrillmon.update_incident_status('00000000-0000-0000-0000-0000000003c1', 'investigating')$$),
	('_detect_run', 'SELECT count(*) FROM thrillmon._detect_run()'),
	('_detect_scan', 'SELECT count(*) FROM thrillmon._detect_scan(NULL, now(), 0, 1)'),
	('_backtest', $$SELECT count(*) FROM thrillmon._backtest('g3', '-infinity', 'infinity', NULL, NULL)$$),
	('_detect_horizon', 'SELECT thrillmon._detect_horizon()'),
	('_auto_incidents', 'SELECT thrillmon._auto_incidents(NULL)'),
	('SELECT incident_policy', 'SELECT * FROM thrillmon.incident_policy'),
	('SELECT detector_progress', 'SELECT * FROM thrillmon.detector_progress'),
	('UPDATE incident_policy', 'UPDATE thrillmon.incident_policy SET correlation_min_metrics = 5'),
	('UPDATE detector_progress', 'UPDATE thrillmon.detector_progress SET pass = pass'),
	('DELETE detector_progress', 'DELETE FROM thrillmon.detector_progress'),
	('INSERT incident_policy', 'INSERT INTO thrillmon.incident_policy DEFAULT VALUES');
GRANT SELECT ON calls TO PUBLIC;
-- The SQLSTATE a call ends with ('ok' when it succeeds): an allowed call may still fail for a reason
-- of its own, which is not the matter here.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.outcome(text) TO PUBLIC;

-- thrillmon_reader
SET LOCAL ROLE thrillmon_reader;
SELECT lives_ok(call, 'reader: ' || what) FROM calls
WHERE what IN ('backtest', 'SELECT incident_policy', 'SELECT detector_progress') ORDER BY what;
SELECT throws_ok(call, '42501', NULL, 'reader: ' || what || ' refused') FROM calls
WHERE what NOT IN ('backtest', 'SELECT incident_policy', 'SELECT detector_progress') ORDER BY what;
RESET ROLE;

-- thrillmon_writer
SET LOCAL ROLE thrillmon_writer;
SELECT throws_ok(call, '42501', NULL, 'writer: ' || what || ' refused') FROM calls ORDER BY what;
RESET ROLE;

-- thrillmon_admin
SET LOCAL ROLE thrillmon_admin;
SELECT isnt(pg_temp.outcome(call), '42501', 'admin: ' || what || ' allowed') FROM calls
WHERE what NOT LIKE '\_%' AND what NOT IN ('UPDATE detector_progress', 'DELETE detector_progress', 'INSERT incident_policy')
ORDER BY what;
SELECT throws_ok(call, '42501', NULL, 'admin: ' || what || ' refused') FROM calls
WHERE what LIKE '\_%' OR what IN ('UPDATE detector_progress', 'DELETE detector_progress', 'INSERT incident_policy')
ORDER BY what;
SELECT lives_ok(call, 'admin: ' || what || ' succeeds') FROM calls
WHERE what IN ('backtest', 'detect_anomalies', 'create_incident', 'link_alerts', 'update_incident_status', 'UPDATE incident_policy')
ORDER BY what;
RESET ROLE;
SELECT is((SELECT correlation_min_metrics FROM thrillmon.incident_policy), 5, 'the admin''s policy change is stored');
SELECT is((SELECT status FROM thrillmon.incidents WHERE id = '00000000-0000-0000-0000-0000000003c1'), 'investigating',
	'the admin''s status change is stored');
SELECT ok((SELECT count(*) >= 1 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'succeeded'),
	'the admin''s detect_anomalies() run is recorded');

-- No thrillmon membership
SET LOCAL ROLE tap_nobody_03;
SELECT throws_ok(call, '42501', NULL, 'no membership: ' || what || ' refused') FROM calls ORDER BY what;
RESET ROLE;

-- A superuser (the owner) may call the internal functions.
SELECT lives_ok(call, 'superuser: ' || what) FROM calls
WHERE what IN ('_detect_horizon', '_backtest', '_auto_incidents') ORDER BY what;

SELECT * FROM finish();
ROLLBACK;
