#!/usr/bin/env bash
# Delivery cost, side by side with baselines, in a cluster of its own (the delivery worker must
# serve the database):
#  1. deliveries per second from the outbox to local receivers (test/lib/receiver.py), against a
#     plain client posting the same bodies one after another over one kept-alive connection (what
#     a hand-written relay would do), for 1 and 4 channels;
#  2. the detection pass's added cost per alert: the same pass (ALERTS metrics, each with a
#     spike) with no channel and with 4 channels (each alert then writes 4 outbox rows).
# N (deliveries, default 2000) and ALERTS (default 200). Prints one line per measure and ratios.
set -uo pipefail
. "$(dirname "$0")/../test/scripts/lib/cluster.sh"
N=${N:-2000}
ALERTS=${ALERTS:-200}
receiver=$(cd "$(dirname "$0")/../test/lib" && pwd)/receiver.py
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
cleanup_hook=stop_all
recv_start() {
	python3 "$receiver" --port-file "$work/$1.port" >/dev/null 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do [ -s "$work/$1.port" ] && break; sleep 0.05; done
}

cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 86400" "thrillmon.detect_interval = 86400" \
	"thrillmon.notify_allowed_hosts = '127.0.0.1'"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null
for i in 1 2 3 4; do recv_start "r$i"; done

# The bodies a delivery carries: a real alert's payload.
sql "INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name, metadata, fingerprint)
	VALUES ('anomaly', 'high', 'high spike on bench: 140 against a baseline of 100 (8.7 robust sd, mad)', 'bench',
	'{\"value\": 140, \"baseline\": 100, \"deviation\": 8.7}', 'anomaly:bench')" >/dev/null
payload=$(sql "SELECT thrillmon._alert_payload(a, 'new')::text FROM thrillmon.system_alerts a WHERE metric_name = 'bench'")

# deliver CHANNELS: N deliveries spread over that many channels, from the outbox; prints seconds.
deliver() {
	local c=$1
	sql "DELETE FROM thrillmon.notification_channels" >/dev/null
	for i in $(seq 1 "$c"); do
		sql "INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('r$i', 'webhook', 'http://127.0.0.1:$(cat "$work/r$i.port")/')" >/dev/null
	done
	sql "SELECT pg_sleep(1.5)" >/dev/null # the worker's next claim sees the channels
	local t0; t0=$(now_ms)
	sql "INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload)
		SELECT 'r' || (1 + g % $c), 'new', 'bench' || g, (SELECT thrillmon._alert_payload(a, 'new') FROM thrillmon.system_alerts a
		WHERE metric_name = 'bench') FROM generate_series(1, $N) g" >/dev/null
	wait_for 600 "SELECT NOT EXISTS (SELECT 1 FROM thrillmon.deliveries WHERE status = 'pending')" || echo "# not all delivered" >&2
	local t1; t1=$(now_ms)
	awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.3f", ms / 1000 }'
}
# baseline CHANNELS: the same N bodies posted by one sequential client per channel (keep-alive), the channels in turn.
baseline() {
	python3 - "$1" "$N" "$payload" "$work" <<'PY'
import http.client, sys, time
c, n, body, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
conns = [http.client.HTTPConnection("127.0.0.1", int(open(f"{work}/r{i}.port").read())) for i in range(1, c + 1)]
t0 = time.time()
for g in range(n):
    h = conns[g % c]
    h.request("POST", "/", body, {"Content-Type": "application/json", "Idempotency-Key": f"b{g}"})
    h.getresponse().read()
print(f"{time.time() - t0:.3f}")
PY
}

echo "# thrillmon $(sql "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'"), $(nproc) cores, N=$N deliveries, ALERTS=$ALERTS"
printf '%-34s %10s %12s %12s %8s\n' measure thrillmon_s baseline_s per_second ratio
for c in 1 4; do
	t=$(deliver "$c")
	b=$(baseline "$c")
	printf '%-34s %10s %12s %12s %8s\n' "deliveries to $c channel(s)" "$t" "$b" \
		"$(awk -v n="$N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')" "$(awk -v t="$t" -v b="$b" 'BEGIN { printf "%.2fx", b / t }')"
done

# The pass's added cost per alert. ALERTS metrics of 120 points with a spike at the end; each run
# scores them afresh (a cold pass, no alert open).
sql "SELECT count(thrillmon.record_metric('dm_' || m, CASE WHEN g = 120 THEN 140 ELSE 100 + ((g * 37 + m) % 11 - 5) * 0.2 END,
	'performance', NULL, now() - make_interval(mins => 120 - g))) FROM generate_series(1, $ALERTS) m, generate_series(1, 120) g" >/dev/null
# timed_ms STATEMENT [rollback]: the statement's time in milliseconds, measured in its session
# (no connection set-up in it); with rollback, its work is undone.
timed_ms() {
	psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
BEGIN;
SELECT clock_timestamp() AS t0 \\gset
$1 \\g /dev/null
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
$([ "${2:-}" = rollback ] && echo ROLLBACK || echo COMMIT);
SQL
}
pass() {
	# (The worker sending the last pass's deliveries would compete with this one for the 2 cores.)
	wait_for 120 "SELECT NOT EXISTS (SELECT 1 FROM thrillmon.deliveries WHERE status = 'pending')" >/dev/null
	sql "DELETE FROM thrillmon.anomaly_detections; DELETE FROM thrillmon.system_alerts WHERE metric_name LIKE 'dm\_%';
		DELETE FROM thrillmon.deliveries; DELETE FROM thrillmon.detector_progress" >/dev/null
	local t; t=$(timed_ms "SELECT count(*) FROM thrillmon.detect_anomalies()")
	echo "$t $(sql "SELECT count(*) FROM thrillmon.system_alerts WHERE metric_name LIKE 'dm\_%'") $(sql "SELECT count(*) FROM thrillmon.deliveries")"
}
# The fastest of 3 passes each way, alternating (the machine's drift falls on both).
t_off=999999 t_on=999999
for _ in 1 2 3; do
	sql "UPDATE thrillmon.notification_channels SET enabled = false" >/dev/null
	read -r t a_off d_off <<<"$(pass)"
	t_off=$(( t < t_off ? t : t_off ))
	sql "UPDATE thrillmon.notification_channels SET enabled = true" >/dev/null
	read -r t a_on d_on <<<"$(pass)"
	t_on=$(( t < t_on ? t : t_on ))
done
printf '%-34s %10s %12s %12s %8s\n' "pass, $a_off alerts, no channel" "$(awk -v t="$t_off" 'BEGIN { printf "%.3f", t / 1000 }')" "-" "-" "-"
printf '%-34s %10s %12s %12s %8s\n' "pass, $a_on alerts, 4 channels" "$(awk -v t="$t_on" 'BEGIN { printf "%.3f", t / 1000 }')" \
	"$(awk -v t="$t_off" 'BEGIN { printf "%.3f", t / 1000 }')" "-" "$(awk -v a="$t_on" -v b="$t_off" 'BEGIN { printf "%.2fx", a / b }')"
# The floor: the same outbox rows written by one plain INSERT (what the pass cannot avoid).
floor() {
	timed_ms "INSERT INTO thrillmon.deliveries (channel, alert_id, event, idempotency_key, payload)
		SELECT c.name, a.id, 'new', a.id || ':floor', '$payload'::jsonb
		FROM thrillmon.system_alerts a, thrillmon.notification_channels c WHERE a.metric_name LIKE 'dm\\_%'" rollback
}
f1=$(floor); f2=$(floor); f3=$(floor)
t_floor=$(( f1 < f2 ? f1 : f2 )); t_floor=$(( t_floor < f3 ? t_floor : f3 ))
printf '%-34s %10s %12s %12s %8s\n' "plain INSERT of those $d_on rows" "$(awk -v t="$t_floor" 'BEGIN { printf "%.3f", t / 1000 }')" "-" "-" "-"
echo "# outbox rows written by the pass: $d_on; added cost per alert: $(awk -v a="$t_on" -v b="$t_off" -v n="$a_on" 'BEGIN { printf "%.3f ms", (a - b) / (n > 0 ? n : 1) }')" \
	"(a plain INSERT of its rows: $(awk -v f="$t_floor" -v n="$a_on" 'BEGIN { printf "%.3f ms", f / (n > 0 ? n : 1) }'))"
[ "$a_on" -gt 0 ] && [ "$d_on" -eq $((a_on * 4)) ]
