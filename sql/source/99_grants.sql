-- Privileges, all in one place (DESIGN §7). Functions are executable by PUBLIC by default;
-- thrillmon's are granted explicitly instead, to the three roles 10_schema.sql creates:
--   thrillmon_reader: every table and view, and the functions a dashboard or probe calls;
--   thrillmon_writer: recording; it can neither read back, update nor delete;
--   thrillmon_admin:  also a reader and a writer; runs jobs and cleanups, edits configuration.
-- SECURITY DEFINER functions (maintenance, cleanup, detection, alerts and incidents, health) pin
-- search_path; a function called by one of them needs no grant of its own.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA thrillmon FROM PUBLIC;
GRANT USAGE ON SCHEMA thrillmon TO thrillmon_reader, thrillmon_writer, thrillmon_admin;

-- Readers. (retention_stats calls the three internal functions as its reader.)
GRANT SELECT ON ALL TABLES IN SCHEMA thrillmon TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon._retention_cutoff(integer, text), thrillmon._metric_retention_stats(),
	thrillmon._last_cleanup(text), thrillmon._metrics_distributed() TO thrillmon_reader;
-- (postgres_exporter's queries, run as a member of thrillmon_reader, read metric names and latest
-- points through these two, which take the path that works when the table is distributed.)
GRANT EXECUTE ON FUNCTION thrillmon._metric_names(timestamptz, timestamptz, integer),
	thrillmon._latest_points(timestamptz, timestamptz, integer) TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.worker_status(), thrillmon.health_check() TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.backtest(text, timestamptz, timestamptz, text[], double precision) TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon._detect_pass_stats(), thrillmon._detect_pass_silent() TO thrillmon_reader;
-- (dashboard() runs as its caller, so its helpers are granted too.)
GRANT EXECUTE ON FUNCTION thrillmon.dashboard(timestamptz, integer), thrillmon._dashboard_cell(text, integer),
	thrillmon._dashboard_number(double precision), thrillmon._dashboard_age(timestamptz, timestamptz) TO thrillmon_reader;
-- (report() too: its charts replay backtest() with the metric's configuration.)
GRANT EXECUTE ON FUNCTION thrillmon.report(timestamptz, timestamptz, text[]), thrillmon._html(text),
	thrillmon._report_time(timestamptz),
	thrillmon._report_chart(text, timestamptz, timestamptz, integer), thrillmon._config_for(text) TO thrillmon_reader;

-- Writers. A CHECK's functions run with the inserting user's privileges, so whoever may INSERT
-- into metric_time_series needs EXECUTE on _metric_point_valid(): a role given INSERT by hand
-- needs that grant too.
GRANT INSERT ON thrillmon.metric_time_series TO thrillmon_writer;
GRANT EXECUTE ON FUNCTION thrillmon.record_metric(text, double precision, text, jsonb, timestamptz) TO thrillmon_writer;
GRANT EXECUTE ON FUNCTION thrillmon.observe(text, double precision, text), thrillmon._observations_flushed() TO thrillmon_writer;
GRANT EXECUTE ON FUNCTION thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb) TO thrillmon_writer;

-- Admins: partitions and retention.
GRANT EXECUTE ON FUNCTION thrillmon.maintain_partitions(integer), thrillmon.cleanup_old_metrics(integer),
	thrillmon.cleanup_old_anomalies(integer), thrillmon.cleanup_old_alerts(integer),
	thrillmon.cleanup_old_incidents(integer), thrillmon.run_data_retention_cleanup() TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.retention_policies, thrillmon.anomaly_detection_config TO thrillmon_admin;
-- ... scale-out (Citus: the table's placement is an admin's decision, like its retention) ...
GRANT EXECUTE ON FUNCTION thrillmon.distribute(integer), thrillmon.undistribute(boolean) TO thrillmon_admin;
GRANT UPDATE ON thrillmon.system_alerts, thrillmon.incidents TO thrillmon_admin;
-- ... collection and scheduling (the checks register_collector() runs as its caller, too) ...
GRANT EXECUTE ON FUNCTION thrillmon.collect_metrics(boolean), thrillmon.register_collector(text, text, text, interval),
	thrillmon.unregister_collector(text), thrillmon._probe_collector_query(text),
	thrillmon.schedule_with_pg_cron(), thrillmon.unschedule_pg_cron(), thrillmon._require_pg_cron() TO thrillmon_admin;
GRANT EXECUTE ON FUNCTION thrillmon._check_collector(text, text, interval) TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.metric_collectors TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.pg_cron_jobs TO thrillmon_admin;
-- ... detection, alerts and incidents (the configuration trigger's check runs as the writer).
GRANT EXECUTE ON FUNCTION thrillmon.detect_anomalies(), thrillmon.acknowledge_alert(uuid), thrillmon.resolve_alert(uuid),
	thrillmon.create_incident(text, text, uuid[], text), thrillmon.link_alerts(uuid, uuid[]),
	thrillmon.update_incident_status(uuid, text) TO thrillmon_admin;
GRANT EXECUTE ON FUNCTION thrillmon._check_detection_config(text[], double precision, integer, integer,
	double precision, integer) TO thrillmon_admin;
GRANT UPDATE ON thrillmon.incident_policy TO thrillmon_admin;
-- ... feedback: a label changes what alerts, so labelling and tuning are admins' (readers see the
-- labels, and can replay backtest() themselves).
GRANT EXECUTE ON FUNCTION thrillmon.label_anomaly(uuid, text, text), thrillmon.tune_detection(text, boolean) TO thrillmon_admin;
GRANT DELETE ON thrillmon.anomaly_labels TO thrillmon_admin;
-- ... delivery: channels are admins' alone (a URL or an Authorization header is a secret; readers
-- see channel_status instead), as are silences, maintenance windows and test_channel(). No role
-- is granted _http_post() or _url_problem(): only thrillmon's SECURITY DEFINER functions call them.
REVOKE ALL ON thrillmon.notification_channels FROM thrillmon_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON thrillmon.notification_channels TO thrillmon_admin;
GRANT EXECUTE ON FUNCTION thrillmon.test_channel(text), thrillmon.create_silence(text, timestamptz, timestamptz, text),
	thrillmon.create_maintenance_window(text, timestamptz, timestamptz, text), thrillmon.expire_silence(bigint) TO thrillmon_admin;
