-- Detection: the configuration's error messages, detect_anomalies() and backtest() on a fixed
-- series, and the error for each bad argument of the alert and incident functions.
-- (Scores are left out: they belong to the detector's tuning, which the pgTAP and unit tests
-- check by behaviour.)
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

-- Defaults.
SELECT metric_name, enabled, sensitivity, lookback_window_minutes, detection_algorithms, min_data_points,
	alert_threshold_score, auto_create_alert, cooldown_minutes
FROM thrillmon.anomaly_detection_config;
SELECT open_on_critical, correlation_window_minutes, correlation_min_metrics FROM thrillmon.incident_policy;

-- Bad configuration: one clear error each, nothing written.
INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('m', '{ensemble,zscore}');
INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('m', '{}');
INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms) VALUES ('m', '{mad,NULL}');
INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('m', 0);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('m', -1);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, sensitivity) VALUES ('m', 'NaN');
INSERT INTO thrillmon.anomaly_detection_config (metric_name, lookback_window_minutes, min_data_points) VALUES ('m', 10, 30);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, min_data_points) VALUES ('m', 1);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, alert_threshold_score) VALUES ('m', 1.5);
INSERT INTO thrillmon.anomaly_detection_config (metric_name, cooldown_minutes) VALUES ('m', -5);
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 0 WHERE metric_name = '*';
SELECT count(*) AS config_rows FROM thrillmon.anomaly_detection_config;
-- A good row.
INSERT INTO thrillmon.anomaly_detection_config (metric_name, detection_algorithms, sensitivity, cooldown_minutes)
VALUES ('latency', '{mad,cusum}', 5, 15);
SELECT metric_name, detection_algorithms, sensitivity, cooldown_minutes FROM thrillmon.anomaly_detection_config ORDER BY 1;

-- A quiet series with one spike: detect_anomalies() finds the spike, once.
SELECT thrillmon.maintain_partitions(1) IS NOT NULL AS partitions;
SELECT count(thrillmon.record_metric('latency', CASE WHEN g = 200 THEN 250 ELSE 100 + (g % 7) - 3 END, 'performance',
	ts => date_trunc('minute', now()) - (240 - g) * interval '1 minute')) AS recorded
FROM generate_series(1, 239) g;
SELECT metric_name, metric_category, anomaly_type, severity, anomaly_value, detection_algorithm, alert_created
FROM thrillmon.detect_anomalies();
SELECT count(*) AS second_pass FROM thrillmon.detect_anomalies();
SELECT alert_type, severity, metric_name, fingerprint, resolved_at IS NULL AS open FROM thrillmon.system_alerts;
SELECT job, target, status, rows_affected FROM thrillmon.job_runs WHERE job = 'detect' ORDER BY run_id;

-- backtest(): one row per point, the same spike, nothing written.
SELECT count(*) AS points, count(*) FILTER (WHERE is_anomaly) AS anomalies,
	min(value) FILTER (WHERE is_anomaly) AS spike
FROM thrillmon.backtest('latency', '-infinity', 'infinity');
SELECT count(*) AS anomaly_rows FROM thrillmon.anomaly_detections;
SELECT * FROM thrillmon.backtest('latency', '2026-01-02', '2026-01-01');
SELECT * FROM thrillmon.backtest(NULL, now(), now());
SELECT * FROM thrillmon.backtest('latency', '-infinity', 'infinity', '{mad,bogus}');
SELECT * FROM thrillmon.backtest('latency', '-infinity', 'infinity', '{}');
SELECT * FROM thrillmon.backtest('latency', '-infinity', 'infinity', NULL, 0);
SELECT count(*) AS no_such_metric FROM thrillmon.backtest('nothing here', '-infinity', 'infinity');

-- Alerts and incidents by hand: the errors.
SELECT thrillmon.acknowledge_alert('00000000-0000-0000-0000-000000000000');
SELECT thrillmon.resolve_alert(NULL);
SELECT thrillmon.create_incident('  ', 'high');
SELECT thrillmon.create_incident('Outage', 'severe');
SELECT thrillmon.create_incident('Outage', 'high', ARRAY['00000000-0000-0000-0000-000000000000']::uuid[]);
SELECT count(*) AS incidents FROM thrillmon.incidents WHERE metadata->>'source' = 'manual';
SELECT (thrillmon.create_incident('Outage', 'high', ARRAY(SELECT id FROM thrillmon.system_alerts))).status;
SELECT thrillmon.update_incident_status((SELECT id FROM thrillmon.incidents WHERE title = 'Outage'), 'fixed');
SELECT (thrillmon.update_incident_status((SELECT id FROM thrillmon.incidents WHERE title = 'Outage'), 'resolved')).status;
SELECT thrillmon.update_incident_status((SELECT id FROM thrillmon.incidents WHERE title = 'Outage'), 'open');
SELECT thrillmon.update_incident_status('00000000-0000-0000-0000-000000000000', 'closed');
SELECT thrillmon.link_alerts('00000000-0000-0000-0000-000000000000', '{}');
