-- search_path hijacking: with a schema "evil" of look-alike functions, aggregates and operators
-- listed before pg_catalog in the caller's search_path (listing pg_catalog explicitly after it is
-- what lets evil's objects win), every public thrillmon function, called by a superuser and by a
-- member of thrillmon_admin, must still resolve only the genuine objects and behave correctly.
-- Every look-alike logs its call to evil.calls (transactional) and advances evil.hits (a sequence,
-- so a call made inside a subtransaction that is rolled back still shows), then returns the
-- genuine result, so a hijack would be visible without breaking the function under test.
BEGIN;
SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(101);

\ir fixtures/clean_slate.sql
DELETE FROM thrillmon.metric_collectors;
DELETE FROM thrillmon.counter_snapshots;
DELETE FROM thrillmon.pg_cron_jobs;
-- observe() takes slots only in a database something flushes: this one collects (rolled back).
SELECT thrillmon._job_record('collect', 'all', now(), 'succeeded', 0, '{}', NULL) IS NULL AS recorded \gset

------------------------------------------------------------------------------------------------
-- Catalogue: SECURITY DEFINER functions pin their search_path
------------------------------------------------------------------------------------------------

SELECT ok((SELECT count(*) FROM pg_proc WHERE pronamespace = 'thrillmon'::regnamespace AND prosecdef) >= 7,
	'precondition: thrillmon has SECURITY DEFINER functions');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'thrillmon'::regnamespace AND p.prosecdef
	  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
	ORDER BY 1), '{}'::text[], 'every SECURITY DEFINER function in thrillmon sets search_path');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'thrillmon'::regnamespace AND p.prosecdef
	  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')
	ORDER BY 1), '{}'::text[], 'and that search_path is exactly pg_catalog, then pg_temp last');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	WHERE p.pronamespace = 'thrillmon'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
	  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')
	ORDER BY 1), '{}'::text[], 'every SQL and PL/pgSQL function in thrillmon (internal ones too) pins search_path');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	WHERE p.pronamespace = 'thrillmon'::regnamespace AND l.lanname = 'c' AND p.prosecdef ORDER BY 1), '{}'::text[],
	'no C function is SECURITY DEFINER');

------------------------------------------------------------------------------------------------
-- The lures
------------------------------------------------------------------------------------------------

CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.calls (what text NOT NULL);
CREATE SEQUENCE evil.hits;
GRANT SELECT, INSERT ON evil.calls TO PUBLIC;
GRANT ALL ON SEQUENCE evil.hits TO PUBLIC;
CREATE FUNCTION evil.hit(what text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	PERFORM pg_catalog.nextval('evil.hits'::pg_catalog.regclass);
	INSERT INTO evil.calls (what) VALUES (what);
END
$$;

-- Operators: (name, left, right, result).
DO $do$
DECLARE
	o record;
	i integer := 0;
BEGIN
	FOR o IN SELECT * FROM (VALUES
		('=', 'text', 'text', 'boolean'), ('<>', 'text', 'text', 'boolean'), ('~', 'text', 'text', 'boolean'),
		('!~', 'text', 'text', 'boolean'), ('~*', 'text', 'text', 'boolean'), ('||', 'text', 'text', 'text'),
		('=', 'name', 'name', 'boolean'), ('=', 'integer', 'integer', 'boolean'), ('<', 'integer', 'integer', 'boolean'),
		('>', 'integer', 'integer', 'boolean'), ('=', 'bigint', 'bigint', 'boolean'), ('+', 'bigint', 'bigint', 'bigint'),
		('+', 'integer', 'integer', 'integer'), ('>=', 'bigint', 'bigint', 'boolean'),
		('=', 'timestamptz', 'timestamptz', 'boolean'), ('<', 'timestamptz', 'timestamptz', 'boolean'),
		('>', 'timestamptz', 'timestamptz', 'boolean'), ('<=', 'timestamptz', 'timestamptz', 'boolean'),
		('>=', 'timestamptz', 'timestamptz', 'boolean'), ('-', 'timestamptz', 'timestamptz', 'interval'),
		('-', 'timestamptz', 'interval', 'timestamptz'), ('+', 'timestamptz', 'interval', 'timestamptz'),
		('>', 'interval', 'interval', 'boolean'), ('<', 'interval', 'interval', 'boolean'),
		('>=', 'interval', 'interval', 'boolean'), ('<=', 'interval', 'interval', 'boolean'),
		('=', 'uuid', 'uuid', 'boolean'), ('=', 'boolean', 'boolean', 'boolean'),
		('||', 'jsonb', 'jsonb', 'jsonb'), ('->>', 'jsonb', 'text', 'text'), ('->', 'jsonb', 'text', 'jsonb'),
		('-', 'jsonb', 'text', 'jsonb'), ('?', 'jsonb', 'text', 'boolean'), ('||', 'text[]', 'text', 'text[]'),
		('<@', 'text[]', 'text[]', 'boolean'), ('*', 'numeric', 'numeric', 'numeric'), ('/', 'numeric', 'numeric', 'numeric'),
		('*', 'double precision', 'double precision', 'double precision'), ('<>', 'double precision', 'double precision', 'boolean')
	) AS v(op, l, r, res) LOOP
		i := i + 1;
		EXECUTE format($f$CREATE FUNCTION evil.op_%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog AS
			$b$BEGIN PERFORM evil.hit(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$ $f$,
			i, o.l, o.r, o.res, format('operator %s (%s, %s)', o.op, o.l, o.r), o.op);
		EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)', o.op, o.l, o.r, i);
	END LOOP;
END
$do$;

-- Functions that thrillmon's SQL uses (or might), each logging and returning the real result.
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('now()'); RETURN pg_catalog.now(); END$$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END$$;
CREATE FUNCTION evil.current_database() RETURNS name LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('current_database()'); RETURN pg_catalog.current_database(); END$$;
CREATE FUNCTION evil.format(fmt text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('format(text)'); RETURN pg_catalog.format(fmt); END$$;
CREATE FUNCTION evil.format(fmt text, a text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('format(text, text)'); RETURN pg_catalog.format(fmt, a); END$$;
CREATE FUNCTION evil.format(fmt text, a text, b text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('format(text, text, text)'); RETURN pg_catalog.format(fmt, a, b); END$$;
CREATE FUNCTION evil.jsonb_build_object(k text, v anyelement) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('jsonb_build_object(text, anyelement)'); RETURN pg_catalog.jsonb_build_object(k, v); END$$;
CREATE FUNCTION evil.jsonb_build_object(k1 text, v1 text, k2 text, v2 text) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('jsonb_build_object(text x 4)'); RETURN pg_catalog.jsonb_build_object(k1, v1, k2, v2); END$$;
CREATE FUNCTION evil.jsonb_build_array(a text, b text, c bigint) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('jsonb_build_array'); RETURN pg_catalog.jsonb_build_array(a, b, c); END$$;
CREATE FUNCTION evil.to_jsonb(v anyelement) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('to_jsonb'); RETURN pg_catalog.to_jsonb(v); END$$;
CREATE FUNCTION evil.jsonb_array_length(j jsonb) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('jsonb_array_length'); RETURN pg_catalog.jsonb_array_length(j); END$$;
CREATE FUNCTION evil.jsonb_typeof(j jsonb) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('jsonb_typeof'); RETURN pg_catalog.jsonb_typeof(j); END$$;
CREATE FUNCTION evil.btrim(t text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('btrim'); RETURN pg_catalog.btrim(t); END$$;
CREATE FUNCTION evil.char_length(t text) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('char_length'); RETURN pg_catalog.char_length(t); END$$;
CREATE FUNCTION evil.cardinality(a anyarray) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('cardinality'); RETURN pg_catalog.cardinality(a); END$$;
CREATE FUNCTION evil.array_to_string(a anyarray, s text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('array_to_string'); RETURN pg_catalog.array_to_string(a, s); END$$;
CREATE FUNCTION evil.round(n numeric, d integer) RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('round'); RETURN pg_catalog.round(n, d); END$$;
CREATE FUNCTION evil.isfinite(t timestamptz) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('isfinite'); RETURN pg_catalog.isfinite(t); END$$;
CREATE FUNCTION evil.pg_try_advisory_xact_lock(a integer, b integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('pg_try_advisory_xact_lock'); RETURN pg_catalog.pg_try_advisory_xact_lock(a, b); END$$;
CREATE FUNCTION evil.pg_advisory_xact_lock(a integer, b integer) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('pg_advisory_xact_lock'); PERFORM pg_catalog.pg_advisory_xact_lock(a, b); END$$;
CREATE FUNCTION evil.current_setting(n text, m boolean) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('current_setting'); RETURN pg_catalog.current_setting(n, m); END$$;
CREATE FUNCTION evil.floor(x double precision) RETURNS double precision LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('floor'); RETURN pg_catalog.floor(x); END$$;
CREATE FUNCTION evil.date_trunc(f text, t interval) RETURNS interval LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('date_trunc'); RETURN pg_catalog.date_trunc(f, t); END$$;
CREATE FUNCTION evil.pg_total_relation_size(r regclass) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('pg_total_relation_size'); RETURN pg_catalog.pg_total_relation_size(r); END$$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('gen_random_uuid'); RETURN pg_catalog.gen_random_uuid(); END$$;
CREATE FUNCTION evil.nextval(s regclass) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('nextval'); RETURN pg_catalog.nextval(s); END$$;
-- Aggregates.
CREATE FUNCTION evil.count_star_sf(s bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('count(*)'); RETURN s OPERATOR(pg_catalog.+) 1; END$$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_star_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.count_any_sf(s bigint, v anyelement) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('count(x)'); RETURN s OPERATOR(pg_catalog.+) 1; END$$;
CREATE AGGREGATE evil.count(anyelement) (SFUNC = evil.count_any_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.max_ts_sf(s timestamptz, v timestamptz) RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('max(timestamptz)'); RETURN pg_catalog.greatest(s, v); END$$;
CREATE AGGREGATE evil.max(timestamptz) (SFUNC = evil.max_ts_sf, STYPE = timestamptz);
CREATE AGGREGATE evil.min(timestamptz) (SFUNC = evil.max_ts_sf, STYPE = timestamptz);
CREATE FUNCTION evil.sum_sf(s numeric, v bigint) RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog AS
	$$BEGIN PERFORM evil.hit('sum(bigint)'); RETURN pg_catalog.coalesce(s, 0) OPERATOR(pg_catalog.+) v; END$$;
CREATE AGGREGATE evil.sum(bigint) (SFUNC = evil.sum_sf, STYPE = numeric);

-- Runs a statement, returning 'ok' or its SQLSTATE and message. No SET clause (that would shield
-- the call from the caller's search_path) and only schema-qualified operators.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
CREATE TEMP TABLE out (who text, k text, v text);
GRANT ALL ON pg_temp.out TO PUBLIC;

-- The lures work: with pg_catalog listed after evil, unqualified names resolve to evil's.
SET LOCAL search_path = evil, public, pg_catalog;
INSERT INTO pg_temp.out VALUES ('lure', 'now', now()::text), ('lure', 'eq', ('a'::text = 'a'::text)::text);
RESET search_path;
SELECT ok((SELECT count(*) FROM evil.calls WHERE what IN ('now()', 'operator = (text, text)')) = 2,
	'precondition: under search_path = evil, public, pg_catalog, now() and text = text are evil''s');
DELETE FROM evil.calls;
ALTER SEQUENCE evil.hits RESTART;
DELETE FROM pg_temp.out;

-- Data for the retention functions to act on: old, finished alert, incident and anomaly.
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, resolved_at)
VALUES ('sp_old', 'low', 'old', now() - interval '400 days', now() - interval '399 days');
INSERT INTO thrillmon.incidents (title, severity, status, detected_at, resolved_at)
VALUES ('sp old', 'low', 'resolved', now() - interval '400 days', now() - interval '399 days');
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score, confidence_score,
	detection_algorithm, time_window_start, time_window_end, detected_at)
VALUES ('sp', 'spike', 'low', 1, 1, 0.5, 'z_score', now() - interval '401 days', now() - interval '400 days', now() - interval '400 days');

------------------------------------------------------------------------------------------------
-- Every public function under the hostile search_path, first as superuser, then as an admin
------------------------------------------------------------------------------------------------

CREATE ROLE tap_sp_admin NOLOGIN;
GRANT thrillmon_admin TO tap_sp_admin;

-- The same script twice, kept in one place; rows of pg_temp.out are tagged with current_user
-- (a keyword, not a function looked up in search_path). The caller's own statements qualify their
-- operators, so that only calls made inside thrillmon could reach evil's.
\set calls 'SET LOCAL search_path = evil, public, pg_catalog; INSERT INTO pg_temp.out VALUES (current_user, ''record_metric'', pg_temp.try($$SELECT thrillmon.record_metric(''sp_a_'' OPERATOR(pg_catalog.||) current_user, 1)$$)), (current_user, ''record_metric 5 args'', pg_temp.try($$SELECT thrillmon.record_metric(''sp_b_'' OPERATOR(pg_catalog.||) current_user, 2, ''system'', ''{"k": 1}'', ''2000-01-01 12:00+00'')$$)), (current_user, ''record_metric refused'', pg_temp.try($$SELECT thrillmon.record_metric('''', 1)$$)), (current_user, ''observe'', pg_temp.try($$SELECT thrillmon.observe(''sp_obs_'' OPERATOR(pg_catalog.||) current_user, 5)$$)), (current_user, ''observe refused'', pg_temp.try($$SELECT thrillmon.observe(''sp'', ''NaN'')$$)), (current_user, ''maintain_partitions'', pg_temp.try($$SELECT thrillmon.maintain_partitions()$$)), (current_user, ''maintain_partitions(1)'', pg_temp.try($$SELECT thrillmon.maintain_partitions(1)$$)), (current_user, ''maintain_partitions refused'', pg_temp.try($$SELECT thrillmon.maintain_partitions(-1)$$)), (current_user, ''register_collector'', pg_temp.try($$SELECT thrillmon.register_collector(''sp_coll_'' OPERATOR(pg_catalog.||) current_user, ''SELECT count(*) FROM thrillmon.metric_collectors WHERE name = name'', ''monitoring'', ''1 second'')$$)), (current_user, ''register_collector refused'', pg_temp.try($$SELECT thrillmon.register_collector(''sp'', ''SELECT 1'', ''custom'', ''0'')$$)), (current_user, ''collect_metrics'', pg_temp.try($$SELECT thrillmon.collect_metrics()$$)), (current_user, ''collect_metrics(true)'', pg_temp.try($$SELECT thrillmon.collect_metrics(true)$$)), (current_user, ''unregister_collector'', pg_temp.try($$SELECT thrillmon.unregister_collector(''sp_nope'')$$)), (current_user, ''cleanup_old_metrics'', pg_temp.try($$SELECT thrillmon.cleanup_old_metrics(30)$$)), (current_user, ''cleanup_old_anomalies'', pg_temp.try($$SELECT thrillmon.cleanup_old_anomalies(30)$$)), (current_user, ''cleanup_old_alerts'', pg_temp.try($$SELECT thrillmon.cleanup_old_alerts(90)$$)), (current_user, ''cleanup_old_incidents'', pg_temp.try($$SELECT thrillmon.cleanup_old_incidents(90)$$)), (current_user, ''cleanup refused'', pg_temp.try($$SELECT thrillmon.cleanup_old_alerts(0)$$)), (current_user, ''run_data_retention_cleanup'', pg_temp.try($$SELECT thrillmon.run_data_retention_cleanup()$$)), (current_user, ''health_check'', pg_temp.try($$SELECT thrillmon.health_check()$$)), (current_user, ''worker_status'', pg_temp.try($$SELECT * FROM thrillmon.worker_status()$$)), (current_user, ''retention_stats'', pg_temp.try($$SELECT * FROM thrillmon.retention_stats$$)), (current_user, ''system_health'', pg_temp.try($$SELECT * FROM thrillmon.system_health$$)), (current_user, ''schedule_with_pg_cron'', pg_temp.try($$SELECT * FROM thrillmon.schedule_with_pg_cron()$$)), (current_user, ''unschedule_pg_cron'', pg_temp.try($$SELECT thrillmon.unschedule_pg_cron()$$)); INSERT INTO pg_temp.out SELECT current_user, ''health_check value'', thrillmon.health_check() OPERATOR(pg_catalog.->>) ''status''; INSERT INTO pg_temp.out SELECT current_user, ''run_data_retention_cleanup value'', thrillmon.run_data_retention_cleanup() OPERATOR(pg_catalog.->>) ''status''; INSERT INTO pg_temp.out SELECT current_user, ''unregister value'', thrillmon.unregister_collector(''sp_coll_'' OPERATOR(pg_catalog.||) current_user)::text; RESET search_path;'

-- As superuser.
:calls

SELECT is((SELECT count(*)::int FROM evil.calls), 0, 'superuser: no evil function or operator was called (evil.calls is empty)');
SELECT is((SELECT is_called FROM evil.hits), false, 'superuser: not even inside a rolled-back subtransaction (evil.hits untouched)');
SELECT is(v, 'ok', 'superuser: ' || k || ' succeeded') FROM pg_temp.out
WHERE who = 'postgres' AND k NOT LIKE '%refused' AND k NOT LIKE '%pg_cron' AND k NOT LIKE '% value' ORDER BY k;
SELECT results_eq($$SELECT k, split_part(v, ' ', 1) FROM pg_temp.out WHERE who = 'postgres' AND (k LIKE '%refused' OR k LIKE '%pg_cron') ORDER BY k$$,
	$$VALUES ('cleanup refused', '22023'), ('maintain_partitions refused', '22023'), ('observe refused', '22023'),
		('record_metric refused', '22023'), ('register_collector refused', '22023'), ('schedule_with_pg_cron', '55000'),
		('unschedule_pg_cron', '55000')$$,
	'superuser: refused calls fail with their usual SQLSTATE');
SELECT ok((SELECT bool_and(split_part(v, ' ', 2) = 'thrillmon:') FROM pg_temp.out WHERE who = 'postgres' AND (k LIKE '%refused' OR k LIKE '%pg_cron')),
	'superuser: with thrillmon''s messages');
SELECT results_eq($$SELECT metric_category, metric_value, metadata FROM thrillmon.metric_time_series WHERE metric_name IN ('sp_a_postgres', 'sp_b_postgres') ORDER BY metric_name$$,
	$$VALUES ('custom'::text, 1::float8, NULL::jsonb)$$, 'superuser: the recent metric stored, the one of 2000 removed by cleanup_old_metrics(30)');
SELECT is((SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'sp_obs_postgres'), 5::float8, 'superuser: the observation flushed');
SELECT ok((SELECT metric_value >= 1 FROM thrillmon.metric_time_series WHERE metric_name = 'sp_coll_postgres' LIMIT 1), 'superuser: the collector collected');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'database_connections'), 2, 'superuser: built-in metrics collected twice');
SELECT is((SELECT rows_affected FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'metrics' ORDER BY run_id LIMIT 1), 1::bigint,
	'superuser: cleanup_old_metrics(30) removed the point of 2000 (moved into its own partition first)');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'sp_old'), 0, 'superuser: cleanup_old_alerts removed the old alert');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents WHERE title = 'sp old'), 0, 'superuser: cleanup_old_incidents removed the old incident');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections WHERE metric_name = 'sp'), 0, 'superuser: cleanup_old_anomalies removed the old anomaly');
SELECT is((SELECT (details->>'archived')::int FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'anomalies'), 1, 'superuser: archiving it first');
SELECT ok((SELECT v IN ('ok', 'degraded', 'failing') FROM pg_temp.out WHERE who = 'postgres' AND k = 'health_check value'), 'superuser: health_check() status');
SELECT is((SELECT v FROM pg_temp.out WHERE who = 'postgres' AND k = 'run_data_retention_cleanup value'), 'succeeded', 'superuser: run_data_retention_cleanup() succeeded');
SELECT is((SELECT v FROM pg_temp.out WHERE who = 'postgres' AND k = 'unregister value'), 'true', 'superuser: unregister_collector() found the collector');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE status <> 'succeeded'), 0, 'superuser: every recorded job succeeded');

-- As a member of thrillmon_admin.
DELETE FROM thrillmon.metric_time_series;
DELETE FROM thrillmon.job_runs;
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, created_at, resolved_at)
VALUES ('sp_old', 'low', 'old', now() - interval '400 days', now() - interval '399 days');
INSERT INTO thrillmon.incidents (title, severity, status, detected_at, resolved_at)
VALUES ('sp old', 'low', 'resolved', now() - interval '400 days', now() - interval '399 days');
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score, confidence_score,
	detection_algorithm, time_window_start, time_window_end, detected_at)
VALUES ('sp2', 'spike', 'low', 1, 1, 0.5, 'z_score', now() - interval '401 days', now() - interval '400 days', now() - interval '400 days');

SET LOCAL ROLE tap_sp_admin;
:calls
RESET ROLE;

SELECT is((SELECT count(*)::int FROM evil.calls), 0, 'admin: no evil function or operator was called (evil.calls is empty)');
SELECT is((SELECT is_called FROM evil.hits), false, 'admin: not even inside a rolled-back subtransaction (evil.hits untouched)');
SELECT is(v, 'ok', 'admin: ' || k || ' succeeded') FROM pg_temp.out
WHERE who = 'tap_sp_admin' AND k NOT LIKE '%refused' AND k NOT LIKE '%pg_cron' AND k NOT LIKE '% value' ORDER BY k;
SELECT results_eq($$SELECT k, split_part(v, ' ', 1) FROM pg_temp.out WHERE who = 'tap_sp_admin' AND (k LIKE '%refused' OR k LIKE '%pg_cron') ORDER BY k$$,
	$$VALUES ('cleanup refused', '22023'), ('maintain_partitions refused', '22023'), ('observe refused', '22023'),
		('record_metric refused', '22023'), ('register_collector refused', '22023'), ('schedule_with_pg_cron', '55000'),
		('unschedule_pg_cron', '55000')$$,
	'admin: refused calls fail with their usual SQLSTATE');
SELECT ok((SELECT bool_and(split_part(v, ' ', 2) = 'thrillmon:') FROM pg_temp.out WHERE who = 'tap_sp_admin' AND (k LIKE '%refused' OR k LIKE '%pg_cron')),
	'admin: with thrillmon''s messages');
SELECT results_eq($$SELECT metric_category, metric_value, metadata FROM thrillmon.metric_time_series WHERE metric_name IN ('sp_a_tap_sp_admin', 'sp_b_tap_sp_admin') ORDER BY metric_name$$,
	$$VALUES ('custom'::text, 1::float8, NULL::jsonb)$$, 'admin: the recent metric stored, the one of 2000 removed by cleanup_old_metrics(30)');
SELECT is((SELECT metric_value FROM thrillmon.metric_time_series WHERE metric_name = 'sp_obs_tap_sp_admin'), 5::float8, 'admin: the observation flushed');
SELECT ok((SELECT metric_value >= 1 FROM thrillmon.metric_time_series WHERE metric_name = 'sp_coll_tap_sp_admin' LIMIT 1), 'admin: the collector collected');
SELECT is((SELECT owner_role::text FROM thrillmon.metric_collectors WHERE name = 'sp_coll_tap_sp_admin'), NULL, 'admin: its collector was unregistered at the end');
SELECT is((SELECT count(*)::int FROM thrillmon.metric_time_series WHERE metric_name = 'database_connections'), 2, 'admin: built-in metrics collected twice');
SELECT is((SELECT rows_affected FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'metrics' ORDER BY run_id LIMIT 1), 1::bigint,
	'admin: cleanup_old_metrics(30) removed the point of 2000');
SELECT is((SELECT count(*)::int FROM thrillmon.system_alerts WHERE alert_type = 'sp_old'), 0, 'admin: cleanup_old_alerts removed the old alert');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents WHERE title = 'sp old'), 0, 'admin: cleanup_old_incidents removed the old incident');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections WHERE metric_name = 'sp2'), 0, 'admin: cleanup_old_anomalies removed the old anomaly');
SELECT is((SELECT (details->>'archived')::int FROM thrillmon.job_runs WHERE job = 'retention' AND target = 'anomalies'), 1, 'admin: archiving it first');
SELECT ok((SELECT v IN ('ok', 'degraded', 'failing') FROM pg_temp.out WHERE who = 'tap_sp_admin' AND k = 'health_check value'), 'admin: health_check() status');
SELECT is((SELECT v FROM pg_temp.out WHERE who = 'tap_sp_admin' AND k = 'run_data_retention_cleanup value'), 'succeeded', 'admin: run_data_retention_cleanup() succeeded');
SELECT is((SELECT v FROM pg_temp.out WHERE who = 'tap_sp_admin' AND k = 'unregister value'), 'true', 'admin: unregister_collector() found the collector');
SELECT is((SELECT count(*)::int FROM thrillmon.job_runs WHERE status <> 'succeeded'), 0, 'admin: every recorded job succeeded');
SELECT is((SELECT array_agg(DISTINCT run_by::text) FROM thrillmon.job_runs), ARRAY['postgres'], 'admin: runs recorded with the session user');

------------------------------------------------------------------------------------------------
-- 0.3.0: detection, backtest, alerts and incidents under the hostile search_path
------------------------------------------------------------------------------------------------

DELETE FROM pg_temp.out;
DELETE FROM thrillmon.detector_progress;
-- A metric with a spike (deterministic wiggle around 100), an alert and an incident to work on.
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'sp3', CASE WHEN g = 150 THEN 130 ELSE 100 + ((g * 37) % 11 - 5) * 0.2 END, now() - make_interval(mins => 200 - g)
FROM generate_series(1, 199) g;
INSERT INTO thrillmon.system_alerts (id, alert_type, severity, message, created_at)
VALUES ('00000000-0000-0000-0000-0000000003b1', 'sp3', 'low', 'm', now() - interval '1 hour');
INSERT INTO thrillmon.incidents (id, title, severity) VALUES ('00000000-0000-0000-0000-0000000003c1', 'sp3 incident', 'low');

\set calls3 'SET LOCAL search_path = evil, public, pg_catalog; INSERT INTO pg_temp.out VALUES (current_user, ''detect_anomalies'', pg_temp.try($$SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()$$)), (current_user, ''backtest'', pg_temp.try($$SELECT pg_catalog.count(*) FROM thrillmon.backtest(''sp3'', ''-infinity'', ''infinity'', ARRAY[''mad'', ''ensemble''], 4.5)$$)), (current_user, ''backtest refused'', pg_temp.try($$SELECT pg_catalog.count(*) FROM thrillmon.backtest(''sp3'', ''infinity'', ''-infinity'')$$)), (current_user, ''create_incident'', pg_temp.try($$SELECT thrillmon.create_incident(''  sp3 by hand '', ''high'', ARRAY[''00000000-0000-0000-0000-0000000003b1'']::uuid[])$$)), (current_user, ''create_incident refused'', pg_temp.try($$SELECT thrillmon.create_incident(''t'', ''urgent'')$$)), (current_user, ''link_alerts'', pg_temp.try($$SELECT thrillmon.link_alerts(''00000000-0000-0000-0000-0000000003c1'', ARRAY[''00000000-0000-0000-0000-0000000003b1'']::uuid[])$$)), (current_user, ''update_incident_status'', pg_temp.try($$SELECT thrillmon.update_incident_status(''00000000-0000-0000-0000-0000000003c1'', ''investigating'')$$)), (current_user, ''acknowledge_alert'', pg_temp.try($$SELECT thrillmon.acknowledge_alert(''00000000-0000-0000-0000-0000000003b1'')$$)), (current_user, ''resolve_alert'', pg_temp.try($$SELECT thrillmon.resolve_alert(''00000000-0000-0000-0000-0000000003b1'')$$)); RESET search_path;'

-- As superuser.
:calls3
SELECT is((SELECT count(*)::int FROM evil.calls), 0, 'superuser, 0.3.0 functions: no evil function or operator was called');
SELECT is((SELECT is_called FROM evil.hits), false, 'superuser, 0.3.0 functions: not even inside a rolled-back subtransaction');
SELECT is(v, 'ok', 'superuser: ' || k || ' succeeded') FROM pg_temp.out WHERE who = 'postgres' AND k NOT LIKE '%refused' ORDER BY k;
SELECT results_eq($$SELECT k, split_part(v, ' ', 1) FROM pg_temp.out WHERE who = 'postgres' AND k LIKE '%refused' ORDER BY k$$,
	$$VALUES ('backtest refused', '22023'), ('create_incident refused', '22023')$$, 'superuser: refused 0.3.0 calls fail with 22023');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_detections WHERE metric_name = 'sp3' AND anomaly_value = 130), 1,
	'superuser: detect_anomalies() found the spike');

-- As a member of thrillmon_admin.
SET LOCAL ROLE tap_sp_admin;
:calls3
RESET ROLE;
SELECT is((SELECT count(*)::int FROM evil.calls), 0, 'admin, 0.3.0 functions: no evil function or operator was called');
SELECT is((SELECT is_called FROM evil.hits), false, 'admin, 0.3.0 functions: not even inside a rolled-back subtransaction');
SELECT is(v, 'ok', 'admin: ' || k || ' succeeded') FROM pg_temp.out WHERE who = 'tap_sp_admin' AND k NOT LIKE '%refused' ORDER BY k;
SELECT results_eq($$SELECT k, split_part(v, ' ', 1) FROM pg_temp.out WHERE who = 'tap_sp_admin' AND k LIKE '%refused' ORDER BY k$$,
	$$VALUES ('backtest refused', '22023'), ('create_incident refused', '22023')$$, 'admin: refused 0.3.0 calls fail with 22023');
SELECT is((SELECT count(*)::int FROM thrillmon.incidents WHERE title = 'sp3 by hand'), 2, 'both incidents opened by hand (title trimmed)');
SELECT is((SELECT status FROM thrillmon.incidents WHERE id = '00000000-0000-0000-0000-0000000003c1'), 'investigating', 'the status change is stored');

SELECT * FROM finish();
ROLLBACK;
