-- Health: the worker's live state from shared memory, health_check() for an external probe
-- ("monitoring the monitors"), and system_health, one view of everything a DBA looks at first.

CREATE FUNCTION thrillmon.worker_status(OUT pid integer, OUT state text, OUT database text,
	OUT started_at timestamptz, OUT last_tick_at timestamptz, OUT current_job text,
	OUT last_job text, OUT last_job_at timestamptz, OUT last_error text, OUT last_error_at timestamptz,
	OUT jobs_run bigint, OUT jobs_failed bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_worker_status';
COMMENT ON FUNCTION thrillmon.worker_status() IS
	'Live state of the background worker from shared memory: pid (NULL when not running), state, last tick, current and last job, last error, counts';

CREATE FUNCTION thrillmon.health_check()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	w record;
	reasons text[] := '{}';
	failing boolean := false;
	worker_enabled boolean := coalesce(pg_catalog.current_setting('thrillmon.enabled', true), 'on') = 'on';
	scheduler text := coalesce(pg_catalog.current_setting('thrillmon.scheduler', true), 'internal');
	interval_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.collect_interval'), 60);
	by_cron boolean := EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'collect');
	last_collect timestamptz;
	last_retention timestamptz;
	-- The first instant after the last day maintenance makes a partition for.
	reach timestamptz := (pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC')
		+ pg_catalog.make_interval(days => 1 + coalesce(pg_catalog.current_setting('thrillmon.partition_premake_days', true)::integer, 7)))
		AT TIME ZONE 'UTC';
	ahead bigint;
	detect_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.detect_interval'), 300);
	horizon timestamptz;
	d jsonb;
	j record;
	c record;
BEGIN
	SELECT * INTO w FROM thrillmon.worker_status();
	IF by_cron THEN
		interval_s := 60; -- pg_cron runs collection every minute
	END IF;
	IF worker_enabled AND scheduler = 'internal' AND w.pid IS NULL THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker not running (%s)', w.state);
	ELSIF worker_enabled AND scheduler = 'internal' AND w.database IS DISTINCT FROM pg_catalog.current_database() THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker serves database "%s", not this one (set thrillmon.database)', w.database);
	END IF;
	SELECT max(finished_at) INTO last_collect FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded';
	-- Collection is expected unless scheduling was turned off: by the worker, or by pg_cron when
	-- thrillmon.scheduler = pg_cron (if no pg_cron job collects then, that is stale too).
	IF (worker_enabled AND scheduler <> 'off') OR by_cron THEN
		IF last_collect IS NULL THEN
			failing := true;
			reasons := reasons || 'collection stale: no successful collection yet'::text;
		ELSIF pg_catalog.now() - last_collect > pg_catalog.make_interval(secs => 3 * interval_s) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('collection stale: last successful collection %s ago (more than 3 intervals of %s s)',
				pg_catalog.date_trunc('second', pg_catalog.now() - last_collect), interval_s);
		END IF;
	END IF;
	-- Retention is expected daily when the worker or pg_cron runs it: a day and an hour without a
	-- successful full cleanup (and job history older than that, so not a fresh install) is overdue,
	-- whatever the reason (its lock held, a run failing or cut short).
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'retention') THEN
		SELECT max(r.started_at) INTO last_retention FROM thrillmon.job_runs r
		WHERE r.job = 'retention' AND r.target = 'all' AND r.status = 'succeeded';
		IF (last_retention IS NULL OR last_retention < pg_catalog.now() - interval '25 hours')
		   AND EXISTS (SELECT 1 FROM thrillmon.job_runs r WHERE r.started_at < pg_catalog.now() - interval '25 hours') THEN
			reasons := reasons || CASE WHEN last_retention IS NULL THEN 'retention overdue: no successful run_data_retention_cleanup() yet'
				ELSE pg_catalog.format('retention overdue: last successful run_data_retention_cleanup() %s ago',
					pg_catalog.date_trunc('second', pg_catalog.now() - last_retention)) END;
		END IF;
	END IF;
	-- Points dated past the last day partitions are made for (a direct INSERT's; record_metric()
	-- refuses them) wait in the default partition, where the latest values ignore them.
	-- (Distributed, the count reads every shard: a worker node that is down must not take the
	-- whole check with it, which then says why below.)
	BEGIN
		SELECT pg_catalog.count(*) INTO ahead FROM ONLY thrillmon.metric_time_series_default d WHERE d."timestamp" >= reach;
	EXCEPTION WHEN OTHERS THEN
		ahead := 0;
		reasons := reasons || pg_catalog.format('cannot read the default partition: %s', SQLERRM);
	END;
	IF ahead > 0 THEN
		reasons := reasons || pg_catalog.format('%s points dated %s or later (past thrillmon.partition_premake_days) wait in the default partition',
			ahead, (reach AT TIME ZONE 'UTC')::date);
	END IF;
	-- Detection: stalled (the horizon has not moved for three intervals and ten minutes, the most
	-- an open transaction may hold it back, while something is to run it), or its last pass left
	-- metrics unscored or failed to score some.
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'detect') THEN
		SELECT p.horizon INTO horizon FROM thrillmon.detector_progress p;
		IF horizon < pg_catalog.now() - pg_catalog.make_interval(secs => 3 * detect_s + 600) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('detection stalled: points are scored up to %s, %s ago',
				horizon, pg_catalog.date_trunc('second', pg_catalog.now() - horizon));
		END IF;
	END IF;
	SELECT r.details INTO d FROM thrillmon.job_runs r
	WHERE r.job = 'detect' AND r.status = 'succeeded' ORDER BY r.started_at DESC LIMIT 1;
	IF coalesce((d->>'skipped_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection left %s metrics unscored in its last pass (more than thrillmon.max_metrics_per_pass = %s had new points)',
			d->>'skipped_metrics', pg_catalog.current_setting('thrillmon.max_metrics_per_pass', true));
	END IF;
	IF coalesce((d->>'failed_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection could not score %s metrics in its last pass (out of memory)',
			d->>'failed_metrics');
	END IF;
	FOR j IN SELECT DISTINCT ON (r.job) r.job, r.status, r.error, r.finished_at FROM thrillmon.job_runs r
		WHERE r.status <> 'running' ORDER BY r.job, r.started_at DESC
	LOOP
		IF j.status = 'failed' THEN
			reasons := reasons || pg_catalog.format('job %s failing: %s', j.job, coalesce(j.error, 'see job_runs'));
		END IF;
	END LOOP;
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc WHERE mc.enabled AND mc.last_error IS NOT NULL ORDER BY mc.name LOOP
		reasons := reasons || pg_catalog.format('collector %s failing: %s', c.name, c.last_error);
	END LOOP;
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc
		WHERE NOT mc.enabled AND mc.last_error LIKE 'disabled by thrillmon:%' ORDER BY mc.name
	LOOP
		reasons := reasons || pg_catalog.format('collector %s %s', c.name, c.last_error);
	END LOOP;
	-- A Citus worker node that did not answer the last collection: the cluster is not whole.
	FOR c IN SELECT ns.node, ns.consecutive_failures, ns.last_failure_at, ns.last_error FROM thrillmon.node_state ns
		WHERE ns.consecutive_failures > 0 ORDER BY ns.node
	LOOP
		failing := true;
		reasons := reasons || pg_catalog.format('Citus worker node %s not answering since %s: %s', c.node,
			c.last_failure_at, coalesce(c.last_error, '?'));
	END LOOP;
	-- Delivery (65_delivery.sql): with a channel enabled, its worker must run; a delivery given up
	-- (dead) or an event dropped from a full outbox in the last day means someone was not told:
	-- failing. A channel failing now, or deliveries waiting for long, is degraded.
	IF EXISTS (SELECT 1 FROM thrillmon.notification_channels ch WHERE ch.enabled) THEN
		IF w.database IS NOT DISTINCT FROM pg_catalog.current_database() AND NOT EXISTS (
			SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'thrillmon delivery') THEN
			failing := true;
			reasons := reasons || 'delivery worker not running: alerts wait in the outbox'::text;
		END IF;
		FOR c IN SELECT cs.channel, cs.consecutive_failures, cs.last_error FROM thrillmon.channel_state cs
			JOIN thrillmon.notification_channels ch ON ch.name = cs.channel AND ch.enabled
			WHERE cs.consecutive_failures > 0 ORDER BY cs.channel
		LOOP
			reasons := reasons || pg_catalog.format('channel %s failing: %s attempts in a row, the last: %s',
				c.channel, c.consecutive_failures, c.last_error);
		END LOOP;
	END IF;
	FOR c IN SELECT d.channel, pg_catalog.count(*) AS n FROM thrillmon.deliveries d
		WHERE d.status = 'dead' AND d.finished_at > pg_catalog.now() - interval '1 day' GROUP BY d.channel ORDER BY d.channel
	LOOP
		failing := true;
		reasons := reasons || pg_catalog.format('deliveries dead: %s to channel %s given up in the last day (see thrillmon.deliveries)', c.n, c.channel);
	END LOOP;
	IF EXISTS (SELECT 1 FROM thrillmon.system_alerts a WHERE a.metadata ? 'deliveries_dropped' AND a.created_at > pg_catalog.now() - interval '1 day') THEN
		failing := true;
		reasons := reasons || 'deliveries dropped: the outbox was full (@limit:max_pending_deliveries@ pending) when alerts were raised'::text;
	END IF;
	SELECT pg_catalog.count(*) INTO ahead FROM thrillmon.deliveries d
	WHERE d.status = 'pending' AND d.created_at < pg_catalog.now() - interval '10 minutes';
	IF ahead > 0 THEN
		reasons := reasons || pg_catalog.format('%s deliveries pending for more than 10 minutes', ahead);
	END IF;
	RETURN pg_catalog.jsonb_build_object(
		'status', CASE WHEN failing THEN 'failing' WHEN pg_catalog.cardinality(reasons) > 0 THEN 'degraded' ELSE 'ok' END,
		'reasons', pg_catalog.to_jsonb(reasons),
		'checked_at', pg_catalog.now(),
		'last_collection_at', last_collect,
		'worker', pg_catalog.to_jsonb(w));
END
$fn$;
COMMENT ON FUNCTION thrillmon.health_check() IS
	'One call for an external probe: {"status": "ok" | "degraded" | "failing", "reasons": [...]}; failing when the worker is not running or collection is stale (more than 3 intervals), degraded when a job or collector is failing';

CREATE VIEW thrillmon.system_health AS
SELECT 'metric'::text AS section, m.metric_name AS name, NULL::text AS status, m.metric_value AS value,
	m."timestamp" AS observed_at, pg_catalog.jsonb_build_object('category', m.metric_category) AS detail
FROM (SELECT DISTINCT ON (t.metric_name) t.metric_name, t.metric_category, t.metric_value, t."timestamp"
	FROM thrillmon.metric_time_series t
	WHERE t."timestamp" > pg_catalog.now() - interval '1 day' AND t."timestamp" <= pg_catalog.now()
	ORDER BY t.metric_name, t."timestamp" DESC) m
UNION ALL
SELECT 'incident', i.incident_number || ': ' || i.title, i.status, NULL, i.detected_at,
	pg_catalog.jsonb_build_object('severity', i.severity, 'acknowledged_at', i.acknowledged_at)
FROM thrillmon.incidents i WHERE i.status IN (@list:incident_status_unfinished@)
UNION ALL
SELECT 'alert', a.alert_type, a.severity, NULL, a.created_at,
	pg_catalog.jsonb_build_object('message', a.message, 'metric_name', a.metric_name, 'acknowledged_at', a.acknowledged_at)
FROM thrillmon.system_alerts a WHERE a.resolved_at IS NULL
UNION ALL
SELECT 'worker', 'thrillmon collector', w.state, NULL, w.last_tick_at, pg_catalog.to_jsonb(w)
FROM thrillmon.worker_status() w
UNION ALL
SELECT 'job', j.job, j.status, j.rows_affected, j.finished_at,
	pg_catalog.jsonb_build_object('run_id', j.run_id, 'target', j.target, 'duration_ms', j.duration_ms, 'error', j.error)
FROM (SELECT DISTINCT ON (r.job) r.* FROM thrillmon.job_runs r ORDER BY r.job, r.started_at DESC) j
UNION ALL
SELECT 'collector', c.name, 'failing', NULL, c.last_run_at, pg_catalog.jsonb_build_object('error', c.last_error)
FROM thrillmon.metric_collectors c WHERE c.enabled AND c.last_error IS NOT NULL
UNION ALL
SELECT 'health', 'health_check', h->>'status', NULL, pg_catalog.now(), h
FROM thrillmon.health_check() h;
COMMENT ON VIEW thrillmon.system_health IS
	'One view of health: latest value of every metric seen in the last day, open incidents, unresolved alerts, worker state, last run of each job, failing collectors, and health_check()';
