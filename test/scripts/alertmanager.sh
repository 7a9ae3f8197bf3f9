#!/usr/bin/env bash
# thrillmon through the real Alertmanager (Debian's prometheus-alertmanager, on loopback): an
# alert becomes an Alertmanager alert with thrillmon's labels and annotations, visible through its
# API and amtool, notified to a receiver behind it (test/lib/receiver.py), re-sent while open (it
# survives Alertmanager losing its state), resolved with endsAt; an Alertmanager silence stops its
# notifications while thrillmon keeps recording and delivering. Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/spike.sh"
receiver=$(cd "$(dirname "$0")/../lib" && pwd)/receiver.py

if ! command -v prometheus-alertmanager >/dev/null || ! command -v amtool >/dev/null; then
	echo "1..0 # SKIP prometheus-alertmanager and amtool are not installed (scripts/deps.sh installs them)"
	exit 0
fi

am_pid=
rcv_pid=
stop_all() {
	[ -n "$am_pid" ] && kill "$am_pid" 2>/dev/null
	[ -n "$rcv_pid" ] && kill "$rcv_pid" 2>/dev/null
}
cleanup_hook=stop_all
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The receiver Alertmanager notifies.
python3 "$receiver" --port-file "$work/rcv.port" --log "$work/rcv.jsonl" >"$work/rcv.out" 2>&1 &
rcv_pid=$!
for _ in $(seq 1 100); do [ -s "$work/rcv.port" ] && break; sleep 0.05; done
RCV=$(cat "$work/rcv.port")
AM=$(free_port)
AMURL=http://127.0.0.1:$AM
cat > "$work/am.yml" <<EOF
route:
  receiver: hook
  group_by: ['alertname', 'metric']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$RCV/am
        send_resolved: true
EOF
am_start() {
	rm -rf "$work/am-data"
	prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am-data" \
		--web.listen-address="127.0.0.1:$AM" --cluster.listen-address="" >"$work/am.log" 2>&1 &
	am_pid=$!
	for _ in $(seq 1 100); do curl -sf "$AMURL/-/ready" >/dev/null && return 0; sleep 0.1; done
	return 1
}
# am_alerts FILTER-EXPRESSION: Alertmanager's alerts (GET /api/v2/alerts), filtered in Python (a).
am_q() {
	curl -s "$AMURL/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true" | python3 -c "
import json, sys
a = json.load(sys.stdin)
print(eval(sys.argv[1]))" "$1"
}
wait_am() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(am_q "$2")" != True ]; do [ "$(now_ms)" -ge "$end" ] && return 1; sleep 0.25; done
}
rcv_q() {
	python3 - "$work/rcv.jsonl" "$1" <<'PY'
import json, sys, os
r = [json.loads(l) for l in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
n = [json.loads(x["body"]) for x in r if x["path"] == "/am"]
print(eval(sys.argv[2]))
PY
}
wait_rcv() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(rcv_q "$2")" != True ]; do [ "$(now_ms)" -ge "$end" ] && return 1; sleep 0.25; done
}

echo "1..17"
am_start
ok $? "Alertmanager $(prometheus-alertmanager --version 2>&1 | sed -n 's/^alertmanager, version \([^ ]*\).*/\1/p') is ready on 127.0.0.1:$AM"
cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 86400" "thrillmon.detect_interval = 86400" \
	"thrillmon.notify_allowed_hosts = '127.0.0.1'" "thrillmon.alertmanager_resend_interval = 5" "thrillmon.delivery_retry_max = 2"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*'" >/dev/null
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null
sql "INSERT INTO thrillmon.notification_channels (name, kind, url, metric_pattern) VALUES ('am', 'alertmanager', '$AMURL/api/v2/alerts', 'am\_%')" >/dev/null

is "$(sql "SELECT http_status FROM thrillmon.test_channel('am')")" "200" "test_channel(): Alertmanager accepts thrillmon's test alert"

# 1. An alert in Alertmanager with thrillmon's labels and annotations.
id=$(spike am_one)
wait_am 20 "any(x['labels'].get('metric') == 'am_one' for x in a)"
ok $? "the alert is in Alertmanager (GET /api/v2/alerts)"
sev=$(sql "SELECT severity FROM thrillmon.system_alerts WHERE id = '$id'")
is "$(am_q "[dict(sorted(x['labels'].items())) for x in a if x['labels'].get('metric') == 'am_one']")" \
	"[{'alertname': 'ThrillmonAnomaly', 'category': 'performance', 'database': 'tm', 'metric': 'am_one', 'severity': '$sev'}]" \
	"labels: alertname, metric, category, severity, database"
is "$(am_q "[sorted(x['annotations']) for x in a if x['labels'].get('metric') == 'am_one'][0]")" \
	"['alert_id', 'baseline', 'deviation', 'message', 'summary', 'value']" "annotations: message, value, baseline, deviation"
like "$(amtool --alertmanager.url="$AMURL" alert query alertname=ThrillmonAnomaly metric=am_one 2>&1)" "ThrillmonAnomaly" \
	"amtool alert query shows it"
wait_rcv 20 "any(m['status'] == 'firing' and any(al['labels'].get('metric') == 'am_one' for al in m['alerts']) for m in n)"
ok $? "Alertmanager notifies its receiver (firing)"

# 2. Re-sent while open: Alertmanager's endsAt moves on; a restarted Alertmanager (state lost)
#    has the alert back within a re-send interval.
ends1=$(am_q "[x['endsAt'] for x in a if x['labels'].get('metric') == 'am_one'][0]")
sleep 7
ends2=$(am_q "[x['endsAt'] for x in a if x['labels'].get('metric') == 'am_one'][0]")
ok $([ "$ends2" \> "$ends1" ] && echo 0 || echo 1) "re-sent while open: endsAt moved from $ends1 to $ends2"
like "$(sql "SELECT count(*) FROM thrillmon.delivery_attempts WHERE purpose = 'resend' AND channel = 'am' AND http_status = 200")" "^[1-9]" \
	"the re-sends are recorded as attempts"
kill "$am_pid"; wait "$am_pid" 2>/dev/null
am_start
wait_am 15 "any(x['labels'].get('metric') == 'am_one' for x in a)"
ok $? "Alertmanager restarted with empty storage: thrillmon's re-send brings the open alert back"

# 3. Resolved: endsAt at its resolution; the receiver is told.
sql "SELECT thrillmon.resolve_alert('$id')" >/dev/null
wait_am 15 "not any(x['labels'].get('metric') == 'am_one' and x['status']['state'] == 'active' and x['endsAt'] > '$(date -u +%Y-%m-%dT%H:%M:%S)' for x in a)"
ok $? "resolved: Alertmanager no longer holds it active"
wait_rcv 20 "any(m['status'] == 'resolved' and any(al['labels'].get('metric') == 'am_one' for al in m['alerts']) for m in n)"
ok $? "Alertmanager's receiver is told it is resolved"
sleep 6
is "$(am_q "sum(1 for x in a if x['labels'].get('metric') == 'am_one' and x['status']['state'] == 'active')")" "0" \
	"and no re-send brings it back"

# 4. An Alertmanager silence: no notification, while thrillmon records and delivers.
amtool --alertmanager.url="$AMURL" silence add metric=am_silenced --comment="maintenance" --author=test --duration=1h >/dev/null
is "$(amtool --alertmanager.url="$AMURL" silence query -q metric=am_silenced | wc -l)" "1" "amtool silence add"
n_before=$(rcv_q "len(n)")
id4=$(spike am_silenced)
wait_am 15 "any(x['labels'].get('metric') == 'am_silenced' and x['status']['state'] == 'suppressed' for x in a)"
ok $? "the alert reaches Alertmanager, suppressed by the silence"
sleep 4
is "$(rcv_q "sum(1 for m in n for al in m['alerts'] if al['labels'].get('metric') == 'am_silenced')")" "0" \
	"no notification for it"
is "$(sql "SELECT count(*) FROM thrillmon.deliveries WHERE alert_id = '$id4' AND status = 'delivered'")|$(sql "SELECT resolved_at IS NULL FROM thrillmon.system_alerts WHERE id = '$id4'")" \
	"1|t" "thrillmon recorded the alert and delivered it"
[ "$fails" -eq 0 ]
