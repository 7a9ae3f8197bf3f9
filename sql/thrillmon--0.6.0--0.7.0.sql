-- thrillmon 0.6.0 -> 0.7.0: what an installed 0.6.0 needs to equal a fresh 0.7.0 install (which
-- is built from sql/source/ and never runs this file). Frozen once 0.7.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.7.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- pg_cron commands are run with the database's search_path, which its owner chooses: the detect
-- command's count(*) becomes pg_catalog.count(*). Jobs already scheduled get the new command.
------------------------------------------------------------------------------------------------
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
	-- pg_cron runs each command as the caller, with the database's search_path, which its owner
	-- chooses: every name in them is schema-qualified (count(*) included).
	FOR j IN SELECT * FROM (VALUES
		('collect', 'thrillmon-collect', '* * * * *', 'SELECT thrillmon.collect_metrics(true)'),
		('detect', 'thrillmon-detect', '*/5 * * * *', 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()'),
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
UPDATE thrillmon.pg_cron_jobs SET command = 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()'
WHERE job = 'detect' AND command = 'SELECT count(*) FROM thrillmon.detect_anomalies()';
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
	   AND pg_catalog.to_regprocedure('cron.alter_job(bigint,text,text,text,text,boolean)') IS NOT NULL THEN
		PERFORM cron.alter_job(j.jobid, command => 'SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies()')
		FROM cron.job j
		WHERE j.jobname = 'thrillmon-detect' AND j.command = 'SELECT count(*) FROM thrillmon.detect_anomalies()';
	END IF;
END
$$;
