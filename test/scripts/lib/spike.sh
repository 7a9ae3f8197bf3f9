# Sourced by the delivery tests (after cluster.sh): spike METRIC records 800 points a minute apart
# ending now (past a new metric's 530, whose lone anomaly would raise no alert), around 100, the
# last one +40, then runs a cold detection pass (the tests' metrics all
# lie in the past of any earlier horizon), and prints the metric's latest alert id.
spike() {
	sql "SELECT count(thrillmon.record_metric('$1', CASE WHEN g = 800 THEN 140 ELSE 100 + ((g * 37) % 11 - 5) * 0.2 END,
		'performance', NULL, clock_timestamp() - make_interval(mins => 800 - g))) FROM generate_series(1, 800) g" >/dev/null
	sql "DELETE FROM thrillmon.detector_progress" >/dev/null
	sql "SELECT count(*) FROM thrillmon.detect_anomalies()" >/dev/null
	sql "SELECT id FROM thrillmon.system_alerts WHERE metric_name = '$1' ORDER BY created_at DESC LIMIT 1"
}
