-- pg_cron scheduling without pg_cron in this database: a clear error, nothing recorded. (The real
-- pg_cron runs are tested elsewhere, in a database that has the extension.)
BEGIN;
SET client_min_messages = warning;
SELECT plan(6);

DELETE FROM thrillmon.pg_cron_jobs;

SELECT ok(NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'), 'precondition: pg_cron is not installed in this database');
SELECT throws_ok('SELECT * FROM thrillmon.schedule_with_pg_cron()', '55000',
	format('thrillmon: pg_cron is not installed in database "%s"', current_database()), 'schedule_with_pg_cron() without pg_cron');
SELECT throws_ok('SELECT thrillmon.unschedule_pg_cron()', '55000',
	format('thrillmon: pg_cron is not installed in database "%s"', current_database()), 'unschedule_pg_cron() without pg_cron');

CREATE FUNCTION pg_temp.hint_of(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
	EXECUTE call;
	RETURN NULL;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RETURN h;
END
$$;
SELECT is(pg_temp.hint_of('SELECT * FROM thrillmon.schedule_with_pg_cron()'),
	'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, then CREATE EXTENSION pg_cron.',
	'the error hints at how to install pg_cron');
SELECT is(pg_temp.hint_of('SELECT thrillmon.unschedule_pg_cron()'),
	'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, then CREATE EXTENSION pg_cron.',
	'... for unschedule_pg_cron() too');
SELECT is_empty('SELECT * FROM thrillmon.pg_cron_jobs', 'nothing recorded in pg_cron_jobs');

SELECT * FROM finish();
ROLLBACK;
