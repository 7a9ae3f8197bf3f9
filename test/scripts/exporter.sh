#!/usr/bin/env bash
# Prometheus exposure: Debian's real prometheus-postgres-exporter, started on loopback against a
# cluster of our own with prometheus/postgres_exporter.yaml, as a role that is only a member of
# thrillmon_reader, scraped with curl: the expected series and labels, values equal to what SQL
# says, the name cap, no failing query; a role without thrillmon_reader gets no thrillmon series.
# The alerting rules (prometheus/alerts.yaml) pass promtool's check and its unit tests, and name
# only series the exporter really exposes. Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/scripts/lib/cluster.sh
exporter_pid=
cleanup_hook=stop_exporter
stop_exporter() { [ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null; wait "$exporter_pid" 2>/dev/null; exporter_pid=; }
EXPORTER=$(command -v prometheus-postgres-exporter || echo /usr/bin/prometheus-postgres-exporter)
[ -x "$EXPORTER" ] || { echo "Bail out! prometheus-postgres-exporter is not installed (scripts/deps.sh installs it)"; exit 1; }
echo "1..27"

cluster_init
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.enabled = off"
cluster_start
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION thrillmon;
SELECT thrillmon.maintain_partitions(1);
CREATE ROLE exporter LOGIN IN ROLE thrillmon_reader;
CREATE ROLE stranger LOGIN;
SELECT thrillmon.record_metric('exp_a', 41, ts => now() - interval '2 minutes');
SELECT thrillmon.record_metric('exp_a', 42, ts => now() - interval '1 minute');
SELECT thrillmon.record_metric('exp_b', 7.5, 'performance');
SELECT thrillmon.record_metric('exp_future', 1, ts => now() + interval '1 hour');
SELECT thrillmon.observe('exp_latency', g, 'performance') FROM generate_series(1, 100) g;
SELECT thrillmon.collect_metrics();
INSERT INTO thrillmon.anomaly_detections (metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end)
SELECT 'exp_a', t, s, 42, 5, 0.9, 'z_score', now() - g * interval '1 minute', now() - g * interval '1 minute'
FROM (VALUES (1, 'spike', 'high'), (2, 'spike', 'high'), (3, 'drop', 'low')) v(g, t, s);
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, resolved_at) VALUES
	('anomaly', 'critical', 'one', 'exp_a', NULL), ('anomaly', 'high', 'two', 'exp_b', NULL), ('anomaly', 'high', 'done', 'exp_b', now());
INSERT INTO thrillmon.incidents (title, severity) VALUES ('exporter test', 'high');
SQL
ok $? "a cluster with metrics, observations, anomalies, alerts, an incident and job runs"

eport=$((9500 + $$ % 400))
start_exporter() { # ROLE
	stop_exporter
	# A clean environment: the exporter's driver reads PG* variables, and panics on some that
	# pg_virtualenv sets (PGSYSCONFDIR); everything it needs is in the DSN.
	env -i PATH="$PATH" DATA_SOURCE_NAME="host=$work port=$port user=$1 dbname=tm sslmode=disable" "$EXPORTER" \
		--web.listen-address="127.0.0.1:$eport" --extend.query-path=prometheus/postgres_exporter.yaml \
		--disable-default-metrics --disable-settings-metrics --no-collector.database --no-collector.bgwriter \
		> "$work/exporter-$1.log" 2>&1 &
	exporter_pid=$!
	local end=$(($(now_ms) + 15000))
	until curl -sf "http://127.0.0.1:$eport/metrics" -o /dev/null; do
		[ "$(now_ms)" -ge "$end" ] && { grep -m3 -E 'panic|level=error|runtime error' "$work/exporter-$1.log" | sed 's/^/# exporter: /'; return 1; }
		sleep 0.2
	done
}
scrape() { curl -sf "http://127.0.0.1:$eport/metrics" > "$work/scrape.txt"; }
# value SERIES-WITH-LABELS: the sample of exactly that series (labels in the exporter's order).
# The exporter adds a label server="host:port" to every series; it is left out here.
value() { sed -E 's/,?server="[^"]*"//; s/\{,/{/; s/\{\}//' "$work/scrape.txt" | awk -v s="$1" '$1 == s { print $2 }'; }
num() { python3 -c "import sys; v=sys.argv[1]; print(repr(float(v)) if v else '')" "$1"; }

start_exporter exporter
ok $? "prometheus-postgres-exporter starts on loopback and serves /metrics"
scrape
ok $? "it is scraped with curl"

is "$(num "$(value 'thrillmon_metric_value{category="custom",metric="exp_a"}')")" "42.0" "the latest value of a metric, labelled by metric and category"
is "$(num "$(value 'thrillmon_metric_value{category="performance",metric="exp_b"}')")" "7.5" "another metric and category"
is "$(grep -c 'metric="exp_future"' "$work/scrape.txt")" "0" "a point dated in the future is not a latest value"
ts_sql=$(sql "SELECT EXTRACT(EPOCH FROM max(\"timestamp\")) FROM thrillmon.metric_time_series WHERE metric_name = 'exp_a'")
is "$(num "$(value 'thrillmon_metric_timestamp_seconds{category="custom",metric="exp_a"}')")" "$(num "$ts_sql")" "when that point was recorded, as SQL says"
is "$(num "$(value 'thrillmon_anomalies_total{metric="exp_a",severity="high",type="spike"}')")/$(num "$(value 'thrillmon_anomalies_total{metric="exp_a",severity="low",type="drop"}')")" \
	"2.0/1.0" "anomalies counted by metric, type and severity"
is "$(grep -c '^# TYPE thrillmon_anomalies_total counter' "$work/scrape.txt")" "1" "anomalies are a counter"
open_sql=$(sql "SELECT string_agg(s || '=' || (SELECT count(*) FROM thrillmon.system_alerts a WHERE a.severity = s AND a.resolved_at IS NULL), ' ' ORDER BY s) FROM unnest(ARRAY['critical','high','low','medium']) s")
open_exp=$(for s in critical high low medium; do printf '%s=%s ' "$s" "$(num "$(value "thrillmon_alerts_open{severity=\"$s\"}")" | sed 's/\.0$//')"; done | sed 's/ $//')
is "$open_exp" "$open_sql" "open alerts by severity, zeros included, equal SQL's counts"
is "$(num "$(value 'thrillmon_incidents_open{severity="high"}')")" "1.0" "open incidents by severity"
last_sql=$(sql "SELECT EXTRACT(EPOCH FROM max(finished_at)) FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'")
is "$(num "$(value 'thrillmon_job_last_success_timestamp_seconds{thrillmon_job="collect"}')")" "$(num "$last_sql")" \
	"a job's last success, labelled thrillmon_job (not job, which Prometheus sets), equals SQL's"
like "$(value 'thrillmon_job_failures_24h{thrillmon_job="collect"}')/$(value 'thrillmon_job_last_run_succeeded{thrillmon_job="collect"}')/$(value 'thrillmon_job_last_run_duration_seconds{thrillmon_job="collect"}')" \
	'^0/1/0\.[0-9e-]+$' "its failures in 24 hours, and its last run: succeeded, and how long it took"
is "$(grep -c 'thrillmon_job_last_success_timestamp_seconds{.*thrillmon_job="detect"' "$work/scrape.txt")/$(grep -c NaN "$work/scrape.txt")" "0/0" \
	"a job that never succeeded has no last-success series (absent, not NaN), and no series is NaN"
status=$(sql "SELECT thrillmon.health_check()->>'status'")
is "$(for s in ok degraded failing; do printf '%s' "$(value "thrillmon_health_status_value{status=\"$s\"}")"; done)" \
	"$(for s in ok degraded failing; do [ "$s" = "$status" ] && printf 1 || printf 0; done)" "health_check() ($status) as a status enum"
is "$(num "$(value 'thrillmon_observed_count{category="performance",metric="exp_latency"}')")/$(num "$(value 'thrillmon_observed_sum{category="performance",metric="exp_latency"}')")" \
	"100.0/5050.0" "observe() aggregates: count and sum of the flushed interval"
p95=$(value 'thrillmon_observed_p95{category="performance",metric="exp_latency"}')
like "$(python3 -c "print(abs(float('${p95:-nan}') - 95) <= 95 * 0.02)")" '^True$' "and its quantiles (p95 of 1..100 within the sketch's accuracy: $p95)"
is "$(value 'thrillmon_export_capped')" "0" "under the name cap nothing is left out"
is "$(value 'pg_exporter_last_scrape_error')" "0" "no query failed"
is "$(grep -E '^[a-z_]+' "$work/scrape.txt" | grep -vE '^(thrillmon_|pg_exporter_|pg_scrape_|pg_up|postgres_exporter_|go_|process_|promhttp_)' | head -3)" "" \
	"nothing but thrillmon's series and the exporter's own"

# The cap: 600 names, 500 exported, and the cap says so.
sql "SELECT thrillmon.record_metric('exp_n' || lpad(g::text, 3, '0'), g) FROM generate_series(1, 600) g" >/dev/null
scrape
is "$(grep -c '^thrillmon_metric_value{' "$work/scrape.txt")/$(value 'thrillmon_export_capped')" "500/1" "600 names: 500 exported (the label is capped), and thrillmon_export_capped is 1"

# The role: only a reader; without thrillmon_reader no query runs and no thrillmon series appears.
is "$(sql "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = 'exporter'")/$(sql "SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'exporter'")" \
	"f/thrillmon_reader" "the exporter's role has no attribute and no role but thrillmon_reader"
PGUSER=exporter psql -X -q -c "SELECT count(*) FROM thrillmon.detect_anomalies()" >/dev/null 2>&1
is "$?" "1" "as that role, running detection is refused"
start_exporter stranger && scrape
is "$(grep -c '^thrillmon_' "$work/scrape.txt")/$(value 'pg_exporter_last_scrape_error')" "0/1" \
	"a role without thrillmon_reader sees no thrillmon series (the queries fail, and the exporter says so)"
stop_exporter

# The alerting rules.
promtool check rules prometheus/alerts.yaml > "$work/promtool.txt" 2>&1
ok $? "promtool check rules prometheus/alerts.yaml"; grep -i -E 'error|fail' "$work/promtool.txt" | sed 's/^/# /'
(cd prometheus && promtool test rules alerts_test.yaml) > "$work/promtool-test.txt" 2>&1
ok $? "promtool test rules: ThrillmonNotCollecting, ThrillmonUnreachable and ThrillmonFailing fire when they should and not before"
[ "$fails" -gt 0 ] && sed 's/^/# /' "$work/promtool-test.txt" | head -30
# Every series the rules use is one the exporter exposes (a renamed column would silence an alert).
used=$(grep -E '^ *expr:' prometheus/alerts.yaml | grep -oP 'thrillmon_[a-z_0-9]+(?![a-z_0-9=])' | sort -u)
start_exporter exporter && scrape
missing=$(for m in $used; do grep -q "^$m[{ ]" "$work/scrape.txt" || echo "$m"; done)
is "$missing" "" "the rules name only series the exporter exposes"
stop_exporter
exit $((fails > 0))
