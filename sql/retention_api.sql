-- Retention functions: signatures, defaults and argument errors.
-- (CONTEXT lines name internal helpers; they are not part of the contract.)
\set SHOW_CONTEXT never
SELECT thrillmon.cleanup_old_metrics();
SELECT thrillmon.cleanup_old_anomalies();
SELECT thrillmon.cleanup_old_alerts();
SELECT thrillmon.cleanup_old_incidents();

SELECT thrillmon.cleanup_old_metrics(0);
SELECT thrillmon.cleanup_old_metrics(-1);
SELECT thrillmon.cleanup_old_metrics(NULL);
SELECT thrillmon.cleanup_old_metrics(36501);
SELECT thrillmon.cleanup_old_anomalies(0);
SELECT thrillmon.cleanup_old_alerts(-5);
SELECT thrillmon.cleanup_old_incidents(NULL);

-- Each successful call above is one job run; the failed ones left nothing behind.
SELECT job, target, status, rows_affected, error FROM thrillmon.job_runs ORDER BY run_id;

-- The full cleanup reports every target.
SELECT r->>'status' AS status, r->'removed' AS removed,
	(SELECT jsonb_object_agg(k, v->>'status') FROM jsonb_each(r->'targets') AS t(k, v)) AS targets
FROM thrillmon.run_data_retention_cleanup() AS r;

UPDATE thrillmon.retention_policies SET enabled = false WHERE target = 'alerts';
SELECT r->'targets'->'alerts' AS alerts FROM thrillmon.run_data_retention_cleanup() AS r;
UPDATE thrillmon.retention_policies SET enabled = true WHERE target = 'alerts';

-- Policies refuse impossible values (terse: the failing row's DETAIL holds a timestamp).
\set VERBOSITY terse
UPDATE thrillmon.retention_policies SET retention_days = 0 WHERE target = 'metrics';
UPDATE thrillmon.retention_policies SET archive_after_days = 3 WHERE target = 'alerts';
INSERT INTO thrillmon.retention_policies (target, retention_days) VALUES ('everything', 1);
\set VERBOSITY default

SELECT target, rows_estimated, retention_days, policy_enabled FROM thrillmon.retention_stats ORDER BY target;
