-- run_data_retention_cleanup(): every enabled policy with its retention_policies values, one job,
-- per-target results; disabled targets left alone; a failing target isolated from the others.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC'; -- the fixtures' 'N days' are then exactly N x 24 h
SELECT plan(46);

-- Clean slate.
\ir fixtures/clean_slate.sql

-- One anomaly per metric and point (0.3.0): the fixture is added twice, so each call stamps its
-- anomalies a little later (clock_timestamp(), milliseconds apart: the ages are whole days).
CREATE FUNCTION pg_temp.add_anomaly(name text, age interval, alert uuid) RETURNS void LANGUAGE sql AS $$
	INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created, alert_id)
	VALUES (name, 'spike', 'high', 5, 3, 0.9, 'ensemble', clock_timestamp() - age, clock_timestamp() - age, now() - age,
		alert IS NOT NULL, alert)
$$;
CREATE FUNCTION pg_temp.add_fixture() RETURNS void LANGUAGE plpgsql AS $$
DECLARE unresolved uuid := gen_random_uuid();
BEGIN
	-- metrics: 3 rows older than 10 days, 2 newer.
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp") VALUES
		('m', 1, now()), ('m', 2, now() - interval '5 days'),
		('m', 3, now() - interval '12 days'), ('m', 4, now() - interval '12 days'), ('m', 5, now() - interval '40 days');
	-- anomalies: one resolved 8 days old (archived), one unresolved 31 days old (deleted), one 5 days old (kept).
	INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at)
	VALUES (unresolved, 'open_alert', 'high', 'm', now() - interval '200 days');
	PERFORM pg_temp.add_anomaly('an_resolved8', interval '8 days', NULL);
	PERFORM pg_temp.add_anomaly('an_unresolved31', interval '31 days', unresolved);
	PERFORM pg_temp.add_anomaly('an_new5', interval '5 days', NULL);
	-- alerts: one resolved 91 days ago (deleted), one 89 days ago (kept).
	INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, resolved_at) VALUES
		('alert91', 'low', 'm', now() - interval '100 days', now() - interval '91 days'),
		('alert89', 'low', 'm', now() - interval '100 days', now() - interval '89 days');
	-- incidents: one resolved 91 days ago (deleted), one open (kept).
	INSERT INTO thrillmon.incidents (title, severity, status, detected_at, resolved_at) VALUES
		('inc91', 'low', 'resolved', now() - interval '100 days', now() - interval '91 days'),
		('inc_open', 'low', 'open', now() - interval '100 days', NULL);
	-- job history: succeeded/skipped 31 days (deleted), failed 31 days (kept 90), failed 91 days (deleted), succeeded 29 days (kept).
	INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status) VALUES
		('collect', 'ok31', now() - interval '31 days', now() - interval '31 days', 'succeeded'),
		('detect', 'skip31', now() - interval '31 days', now() - interval '31 days', 'skipped'),
		('collect', 'fail31', now() - interval '31 days', now() - interval '31 days', 'failed'),
		('collect', 'fail91', now() - interval '91 days', now() - interval '91 days', 'failed'),
		('collect', 'ok29', now() - interval '29 days', now() - interval '29 days', 'succeeded');
	-- deliveries (0.8.0): delivered 31 days ago (deleted), 29 (kept); dead 31 days ago (kept 90), 91
	-- (deleted); pending for 40 days (never removed by retention: it goes dead first).
	INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('hook', 'webhook', 'http://127.0.0.1:9/')
	ON CONFLICT DO NOTHING;
	INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload, status, created_at, finished_at)
	SELECT 'hook', 'new', gen_random_uuid()::text, '{}', st, now() - age - interval '1 hour', CASE WHEN st <> 'pending' THEN now() - age END
	FROM (VALUES ('delivered', interval '31 days'), ('delivered', interval '29 days'), ('dead', interval '31 days'),
		('dead', interval '91 days'), ('pending', interval '40 days')) v(st, age);
END
$$;
SET LOCAL thrillmon.notify_allowed_hosts = '127.0.0.1';

SELECT pg_temp.add_fixture();
-- Partitions are made only for days the metrics policy keeps: as if the policy had kept 100 days
-- while the fixture's rows arrived, and was then cut to 10.
UPDATE thrillmon.retention_policies SET retention_days = 100 WHERE target = 'metrics';
SELECT is((thrillmon.maintain_partitions(1)->>'rows_moved')::int, 5, 'fixture: metric rows in daily partitions');
UPDATE thrillmon.retention_policies SET retention_days = 10 WHERE target = 'metrics';

-- A full run with every policy enabled -----------------------------------------------------------------

CREATE TEMP TABLE runs (step text PRIMARY KEY, r jsonb);
INSERT INTO runs SELECT 'all', thrillmon.run_data_retention_cleanup();

SELECT is((SELECT r->>'status' FROM runs WHERE step = 'all'), 'succeeded', 'status succeeded');
SELECT is((SELECT r->'removed' FROM runs WHERE step = 'all'), '12'::jsonb, 'removed = 12 in all');
SELECT is((SELECT jsonb_object_agg(k, v->'removed') FROM runs, jsonb_each(r->'targets') e(k, v) WHERE step = 'all'),
	'{"metrics": 3, "anomalies": 2, "alerts": 1, "incidents": 1, "job_history": 3, "deliveries": 2}'::jsonb,
	'per-target counts (metrics with the policy''s 10 days)');
SELECT is((SELECT sum((v->>'removed')::bigint) FROM runs, jsonb_each(r->'targets') e(k, v) WHERE step = 'all'),
	(SELECT (r->>'removed')::numeric FROM runs WHERE step = 'all'), 'removed is the sum of the targets');
SELECT is((SELECT jsonb_object_agg(k, v->'status') FROM runs, jsonb_each(r->'targets') e(k, v) WHERE step = 'all'),
	'{"metrics": "succeeded", "anomalies": "succeeded", "alerts": "succeeded", "incidents": "succeeded", "job_history": "succeeded",
	  "deliveries": "succeeded"}'::jsonb,
	'every target succeeded');
SELECT is((SELECT jsonb_object_agg(k, v->'retention_days') FROM runs, jsonb_each(r->'targets') e(k, v) WHERE step = 'all'),
	'{"metrics": 10, "anomalies": 30, "alerts": 90, "incidents": 90, "job_history": 30, "deliveries": 30}'::jsonb,
	'each target reports the policy''s retention_days');
SELECT is((SELECT r->'targets'->'anomalies'->'archived' FROM runs WHERE step = 'all'), '1'::jsonb, 'anomalies: 1 archived');
SELECT is((SELECT r->'targets'->'anomalies'->'deleted' FROM runs WHERE step = 'all'), '1'::jsonb, 'anomalies: 1 deleted');
SELECT ok((SELECT bool_and(jsonb_typeof(v->'duration_ms') = 'number') FROM runs, jsonb_each(r->'targets') e(k, v) WHERE step = 'all')
	AND (SELECT jsonb_typeof(r->'duration_ms') = 'number' FROM runs WHERE step = 'all'), 'durations reported per target and overall');

-- The data.
SELECT bag_eq($$SELECT metric_value FROM thrillmon.metric_time_series$$, ARRAY[1, 2]::float8[],
	'metrics: rows older than 10 days gone, newer ones kept');
SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections', ARRAY['an_new5'], 'anomalies: only the new one is live');
SELECT set_eq('SELECT metric_name FROM thrillmon.anomaly_detections_archive', ARRAY['an_resolved8'], 'anomalies: the resolved one archived');
SELECT set_eq('SELECT alert_type FROM thrillmon.system_alerts', ARRAY['open_alert', 'alert89'], 'alerts: the 91-day one gone');
SELECT set_eq('SELECT title FROM thrillmon.incidents', ARRAY['inc_open'], 'incidents: the 91-day one gone');
SELECT set_eq($$SELECT target FROM thrillmon.job_runs WHERE job <> 'retention' AND job <> 'maintenance'$$, ARRAY['fail31', 'ok29'],
	'job history: old successes and skips gone, failures kept 90 days');
SELECT bag_eq($$SELECT status, date_part('day', now() - finished_at)::int FROM thrillmon.deliveries$$,
	$$VALUES ('delivered'::text, 29), ('dead', 31), ('pending', NULL)$$,
	'deliveries: delivered ones past 30 days gone, dead ones kept 90 days, pending ones kept');

-- One job_runs row for the whole run.
SELECT results_eq($$SELECT run_id, target, status, rows_affected, error FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$SELECT (r->>'run_id')::bigint, 'all'::text, 'succeeded'::text, 12::bigint, NULL::text FROM runs WHERE step = 'all'$$,
	'one job_runs row: retention / all / succeeded / 12, its run_id returned');
SELECT is((SELECT details FROM thrillmon.job_runs WHERE job = 'retention'), (SELECT r - 'run_id' FROM runs WHERE step = 'all'),
	'job details hold the result');

-- Idempotent.
INSERT INTO runs SELECT 'again', thrillmon.run_data_retention_cleanup();
SELECT is((SELECT r->'removed' FROM runs WHERE step = 'again'), '0'::jsonb, 'a second run removes nothing');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'all'), 2, 'and is recorded');

-- A disabled policy leaves its target alone -----------------------------------------------------------------

DELETE FROM thrillmon.job_runs WHERE job = 'retention';
SELECT pg_temp.add_fixture();
UPDATE thrillmon.retention_policies SET enabled = false WHERE target IN ('alerts', 'metrics');
INSERT INTO runs SELECT 'disabled', thrillmon.run_data_retention_cleanup();
SELECT is((SELECT r->'targets'->'alerts' FROM runs WHERE step = 'disabled'), '{"status": "disabled"}'::jsonb,
	'alerts reported as disabled');
SELECT is((SELECT r->'targets'->'metrics' FROM runs WHERE step = 'disabled'), '{"status": "disabled"}'::jsonb,
	'metrics reported as disabled');
SELECT is((SELECT r->>'status' FROM runs WHERE step = 'disabled'), 'succeeded', 'the run still succeeds');
SELECT is((SELECT r->'removed' FROM runs WHERE step = 'disabled'), '8'::jsonb, 'removed counts only the enabled targets (2+1+3+2)');
SELECT bag_eq('SELECT alert_type FROM thrillmon.system_alerts', ARRAY['open_alert', 'alert89', 'open_alert', 'alert91', 'alert89'],
	'disabled alerts: the 91-day alert is still there');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series), 7, 'disabled metrics: every metric row still there');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents WHERE title = 'inc91'), 0, 'enabled incidents still cleaned');
UPDATE thrillmon.retention_policies SET enabled = true WHERE target IN ('alerts', 'metrics');

-- A failing target is isolated -----------------------------------------------------------------------------

-- Make the incidents target fail (a trigger refusing the delete), and the anomalies target fail
-- after it has deleted from the live table (a trigger refusing the archive insert): each must be
-- rolled back whole, and the other targets must still run.
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'refused by test trigger on %', TG_TABLE_NAME USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER refuse_delete BEFORE DELETE ON thrillmon.incidents FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
CREATE TRIGGER refuse_archive AFTER INSERT ON thrillmon.anomaly_detections_archive FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
DELETE FROM thrillmon.job_runs WHERE job = 'retention';
SELECT pg_temp.add_fixture();
CREATE TEMP TABLE live_before AS SELECT * FROM thrillmon.anomaly_detections;

INSERT INTO runs SELECT 'failing', thrillmon.run_data_retention_cleanup();
SELECT is((SELECT r->>'status' FROM runs WHERE step = 'failing'), 'failed', 'overall status failed');
SELECT is((SELECT (r->'targets'->'incidents') - 'duration_ms' FROM runs WHERE step = 'failing'),
	'{"status": "failed", "error": "refused by test trigger on incidents", "sqlstate": "P0001", "retention_days": 90}'::jsonb,
	'incidents: failed, with the error and SQLSTATE');
SELECT is((SELECT r->'targets'->'anomalies'->>'status' FROM runs WHERE step = 'failing'), 'failed', 'anomalies: failed');
SELECT is((SELECT jsonb_object_agg(k, v->'removed') FROM runs, jsonb_each(r->'targets') e(k, v)
	WHERE step = 'failing' AND v->>'status' = 'succeeded'),
	'{"metrics": 6, "alerts": 2, "job_history": 3, "deliveries": 2}'::jsonb, 'the other targets ran and removed their rows');
SELECT is((SELECT r->'removed' FROM runs WHERE step = 'failing'), '13'::jsonb, 'removed counts the succeeded targets only');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents WHERE title = 'inc91'), 1, 'incidents: nothing deleted');
SELECT bag_eq('SELECT * FROM thrillmon.anomaly_detections', 'SELECT * FROM live_before',
	'anomalies: the live table is exactly as before (the partial delete rolled back)');
SELECT bag_eq('SELECT metric_name FROM thrillmon.anomaly_detections_archive', ARRAY['an_resolved8', 'an_resolved8'],
	'anomalies: nothing new in the archive');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'alert91'), 0, 'alerts: old ones removed');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE "timestamp" < now() - interval '240 hours'), 0,
	'metrics: old rows removed');
SELECT results_eq($$SELECT target, status, rows_affected FROM thrillmon.job_runs WHERE job = 'retention'$$,
	$$VALUES ('all'::text, 'failed'::text, 13::bigint)$$, 'one job_runs row, status failed, rows_affected 13');
SELECT is((SELECT error FROM thrillmon.job_runs WHERE job = 'retention'),
	'anomalies: refused by test trigger on anomaly_detections_archive; incidents: refused by test trigger on incidents',
	'job error names the failed targets and their errors');
DROP TRIGGER refuse_delete ON thrillmon.incidents;
DROP TRIGGER refuse_archive ON thrillmon.anomaly_detections_archive;

-- A missing policy row is reported, not fatal.
DELETE FROM thrillmon.retention_policies WHERE target = 'job_history';
INSERT INTO runs SELECT 'nopolicy', thrillmon.run_data_retention_cleanup();
SELECT is((SELECT r->'targets'->'job_history' FROM runs WHERE step = 'nopolicy'), '{"status": "no policy"}'::jsonb,
	'a target without a policy row is reported as such');
SELECT is((SELECT r->>'status' FROM runs WHERE step = 'nopolicy'), 'succeeded', 'and the run succeeds');
SELECT is((SELECT (r->'targets'->'incidents'->'removed') FROM runs WHERE step = 'nopolicy'), '1'::jsonb,
	'the incident refused before is removed now that the trigger is gone');

-- Concurrency: a second caller while this transaction holds the run lock returns at once, 'skipped'.
CREATE FUNCTION pg_temp.concurrent_call() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	schema_name name;
	conn text := format('host=%s port=%s dbname=%s user=%s',
		split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
		current_database(), session_user);
	r jsonb;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'dblink') THEN
		RETURN NEXT skip('dblink is not available', 3);
		RETURN;
	END IF;
	BEGIN
		CREATE EXTENSION IF NOT EXISTS dblink;
		SELECT n.nspname INTO schema_name FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
		EXECUTE format('SELECT %I.dblink_connect(''tap_concurrent'', %L)', schema_name, conn);
	EXCEPTION WHEN OTHERS THEN
		RETURN NEXT skip('cannot open a second session through dblink: ' || SQLERRM, 3);
		RETURN;
	END;
	EXECUTE format('SELECT %I.dblink_exec(''tap_concurrent'', ''BEGIN'')', schema_name);
	EXECUTE format($q$SELECT r::jsonb FROM %I.dblink('tap_concurrent', 'SET client_min_messages = warning; SELECT thrillmon.run_data_retention_cleanup()::text') AS t(r text)$q$,
		schema_name) INTO r;
	EXECUTE format('SELECT %I.dblink_exec(''tap_concurrent'', ''ROLLBACK'')', schema_name);
	EXECUTE format('SELECT %I.dblink_disconnect(''tap_concurrent'')', schema_name);
	RETURN NEXT is(r->>'status', 'skipped', 'a concurrent call returns status skipped');
	RETURN NEXT is(r->>'reason', format('another run_data_retention_cleanup() is in progress (pid %s)', pg_backend_pid()),
		'it says which backend holds the run');
	RETURN NEXT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE job = 'retention'), 2,
		'the skipped call wrote nothing here');
END
$$;
SELECT * FROM pg_temp.concurrent_call();

SELECT * FROM finish();
ROLLBACK;
