#!/usr/bin/env bash
# Delivery end to end: a real cluster with the delivery worker, and local HTTP receivers
# (test/lib/receiver.py) that record what they get and can be told to fail, stall or reset.
# Order and content, idempotency keys, test_channel(), a receiver outage of minutes with nothing
# lost, an immediate stop in the middle of a send, a receiver that never answers (it costs its
# timeout and stalls no other channel), huge answers, resets, 500s, TLS failures and redirects,
# the allow-list at send time (and the address check behind a name), ThrillmonDeliveryFailing
# through a channel that still works, silences and maintenance windows. Speaks TAP.
#
# DELIVERY_OUTAGE_S sets the outage (default 120 s; `make delivery-soak` runs 600 s).
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/spike.sh"
outage_s=${DELIVERY_OUTAGE_S:-120}
receiver=$(cd "$(dirname "$0")/../lib" && pwd)/receiver.py

declare -A rpid
# recv_start NAME: a receiver of its own, its port in $work/NAME.port, its requests in $work/NAME.jsonl.
recv_start() {
	rm -f "$work/$1.port"
	python3 "$receiver" --port "${2:-0}" --port-file "$work/$1.port" --log "$work/$1.jsonl" >"$work/$1.out" 2>&1 &
	rpid[$1]=$!
	for _ in $(seq 1 100); do [ -s "$work/$1.port" ] && break; sleep 0.05; done
}
recv_stop() { kill "${rpid[$1]}" 2>/dev/null; wait "${rpid[$1]}" 2>/dev/null; }
port_of() { cat "$work/$1.port"; }
recv_mode() { curl -s -m 5 -X POST -d "$2" "http://127.0.0.1:$(port_of "$1")/_control" >/dev/null; }
# recv_q NAME PYTHON-EXPRESSION: evaluates the expression over r, the receiver's requests (a list).
recv_q() {
	python3 - "$work/$1.jsonl" "$2" <<'PY'
import json, sys, os
r = [json.loads(l) for l in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
for x in r:
    try:
        x["json"] = json.loads(x["body"])
    except Exception:
        x["json"] = None
print(eval(sys.argv[2]))
PY
}
# wait_recv SECONDS NAME EXPRESSION: until the expression is True.
wait_recv() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(recv_q "$2" "$3")" != True ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.2
	done
}
stop_receivers() { for k in "${!rpid[@]}"; do kill "${rpid[$k]}" 2>/dev/null; done; }
cleanup_hook=stop_receivers

status_of() { sql "SELECT string_agg(channel || ':' || event || ':' || status, ' ' ORDER BY channel, id) FROM thrillmon.deliveries WHERE alert_id = '$1'"; }

echo "1..44"
cluster_init tm
# The worker collects and detects only when told to (the test raises its own alerts); retries
# come back within 3 s; Alertmanager re-sends are not the subject here.
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 86400" "thrillmon.detect_interval = 86400" \
	"thrillmon.notify_allowed_hosts = '127.0.0.1'" "thrillmon.delivery_retry_max = 3"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*'" >/dev/null
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null
recv_start a
recv_start b
A=$(port_of a)
B=$(port_of b)
sql "INSERT INTO thrillmon.notification_channels (name, kind, url, headers, metric_pattern)
	VALUES ('a', 'webhook', 'http://127.0.0.1:$A/hook', '{\"Authorization\": \"Bearer s3cret\"}', 'dt\_%')" >/dev/null

# 1. test_channel(): now, from the session, what the receiver answered.
is "$(sql "SELECT http_status || ' ' || response || ' ' || (error IS NULL) FROM thrillmon.test_channel('a')")" "200 ok true" \
	"test_channel(): the receiver's status and answer"
is "$(recv_q a "[x['json']['event'] for x in r]")" "['test']" "... and the receiver got a test message"

# 2. An alert reaches the receiver once, with its content and idempotency key.
wait_for 15 "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'thrillmon delivery')"
t0=$(now_ms)
id1=$(spike dt_one)
wait_recv 15 a "any(x['json'] and x['json'].get('alert_id') == '$id1' for x in r)"
ok $? "a new alert reaches the receiver"
echo "# delivered $(($(now_ms) - t0)) ms after the pass began"
is "$(recv_q a "[(x['headers'].get('idempotency-key'), x['headers'].get('authorization'), x['json']['event'], x['json']['metric']) for x in r if x['json'].get('alert_id') == '$id1']")" \
	"[('$id1:new', 'Bearer s3cret', 'new', 'dt_one')]" "once, with its idempotency key, the channel's header, event and metric"
is "$(recv_q a "[x['json'][k] for x in r if x['json'].get('alert_id') == '$id1' for k in ('severity', 'alertname', 'category', 'database')]")" \
	"$(sql "SELECT format('[''%s'', ''ThrillmonAnomaly'', ''performance'', ''tm'']', severity) FROM thrillmon.system_alerts WHERE id = '$id1'")" \
	"severity, alertname, category and database as the alert has them"
is "$(status_of "$id1")" "a:new:delivered" "the delivery is marked delivered"
is "$(sql "SELECT attempts || ' ' || (SELECT count(*) FROM thrillmon.delivery_attempts t WHERE t.delivery_id = d.id AND t.http_status = 200) FROM thrillmon.deliveries d WHERE alert_id = '$id1'")" \
	"1 1" "one attempt, recorded with its status"

# 3. Resolved after new, in order.
sql "SELECT thrillmon.resolve_alert('$id1')" >/dev/null
wait_recv 10 a "[x['json']['event'] for x in r if x['json'].get('alert_id') == '$id1'] == ['new', 'resolved']"
ok $? "resolve_alert(): the receiver gets resolved, after new"
is "$(recv_q a "[x['headers']['idempotency-key'] for x in r if x['json'].get('event') == 'resolved']")" "['$id1:resolved']" \
	"with its own idempotency key"

# 4. Silences and maintenance windows: no alert, nothing delivered.
sql "SELECT thrillmon.create_silence('dt\_quiet%', now(), now() + interval '1 hour', 'known noise')" >/dev/null
sql "SELECT thrillmon.create_maintenance_window('dt\_deploy%', now() - interval '1 hour', now() + interval '1 hour', 'release')" >/dev/null
n_before=$(recv_q a "len(r)")
spike dt_quiet >/dev/null
spike dt_deploy >/dev/null
is "$(sql "SELECT (SELECT count(*) FROM thrillmon.anomaly_detections WHERE metric_name = 'dt_quiet' AND metadata ? 'silence_id') > 0,
	(SELECT count(*) FROM thrillmon.anomaly_detections WHERE metric_name = 'dt_deploy'),
	(SELECT count(*) FROM thrillmon.system_alerts WHERE metric_name IN ('dt_quiet', 'dt_deploy'))")" "t|0|0" \
	"silenced: anomalies recorded, marked; maintenance: the spike is not even scored; neither raises an alert"
sleep 2
is "$(recv_q a "len(r)")" "$n_before" "and nothing is delivered"

# 5. An outage of minutes: the receiver is gone (connection refused) while alerts are raised;
#    health_check() says so; when it is back every alert arrives, none lost.
recv_stop a
ids=()
for i in 1 2 3; do ids+=("$(spike "dt_out$i")"); done
wait_for 30 "SELECT consecutive_failures >= 3 FROM thrillmon.channel_status WHERE name = 'a'"
ok $? "the channel fails while the receiver is down"
like "$(sql "SELECT thrillmon.health_check()->>'reasons'")" "channel a failing: [0-9]+ attempts in a row" "health_check() names the failing channel"
echo "# outage of $outage_s s"
sleep "$outage_s"
is "$(sql "SELECT count(*) FROM thrillmon.deliveries WHERE status = 'pending' AND alert_id = ANY ('{${ids[0]},${ids[1]},${ids[2]}}')")" "3" \
	"after $outage_s s down, the three deliveries are still pending (retried, not given up)"
recv_start a "$A"
wait_recv 30 a "set(x['json'].get('alert_id') for x in r if x['json'].get('event') == 'new') >= {'${ids[0]}', '${ids[1]}', '${ids[2]}'}"
ok $? "the receiver back: all three alerts arrive"
is "$(sql "SELECT count(*) FROM thrillmon.deliveries WHERE status = 'delivered' AND alert_id = ANY ('{${ids[0]},${ids[1]},${ids[2]}}')")" "3" \
	"and are marked delivered"
like "$(sql "SELECT min(attempts) FROM thrillmon.deliveries WHERE alert_id = ANY ('{${ids[0]},${ids[1]},${ids[2]}}')")" "^([4-9]|[1-9][0-9]+)$" \
	"after several attempts each (exponential backoff up to thrillmon.delivery_retry_max)"
wait_for 10 "SELECT consecutive_failures = 0 FROM thrillmon.channel_status WHERE name = 'a'"
ok $? "the channel is healthy again"

# 6. ThrillmonDeliveryFailing reaches people through a channel that still works, and is resolved.
sql "INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('b', 'webhook', 'http://127.0.0.1:$B/b')" >/dev/null
recv_stop a
spike dt_fail >/dev/null
wait_recv 30 b "any(x['json'].get('alertname') == 'ThrillmonDeliveryFailing' and x['json']['event'] == 'new' for x in r)"
ok $? "receiver a down: ThrillmonDeliveryFailing reaches receiver b"
like "$(recv_q b "[x['json']['message'] for x in r if x['json'].get('alertname') == 'ThrillmonDeliveryFailing'][0]")" \
	'cannot deliver alerts to channel "a": 3 failures in a row' "it says which channel and why"
recv_start a "$A"
wait_recv 30 b "any(x['json'].get('alertname') == 'ThrillmonDeliveryFailing' and x['json']['event'] == 'resolved' for x in r)"
ok $? "a back: ThrillmonDeliveryFailing is resolved on b"
wait_recv 10 a "any(x['json'].get('metric') == 'dt_fail' for x in r)"
ok $? "and the alert that waited reaches a"
sql "DELETE FROM thrillmon.notification_channels WHERE name = 'b'" >/dev/null

# 7. An immediate stop in the middle of a send loses nothing: the receiver holds the request
#    unanswered, the cluster is stopped with -m immediate, then started; the delivery is sent again.
recv_mode a '{"mode": "stall"}'
id7=$(spike dt_crash)
wait_recv 15 a "any(x['json'].get('alert_id') == '$id7' for x in r)"
ok $? "the request is in flight (the receiver holds it)"
pg_ctl -m immediate -w stop >/dev/null
recv_stop a
recv_start a "$A"
cluster_start
wait_recv 30 a "sum(1 for x in r if x['json'].get('alert_id') == '$id7') >= 2"
ok $? "after an immediate stop and a start, the delivery is sent again"
is "$(status_of "$id7")" "a:new:delivered" "and marked delivered (at least once: the receiver saw the same key twice)"
is "$(recv_q a "len(set(x['headers']['idempotency-key'] for x in r if x['json'].get('alert_id') == '$id7'))")" "1" \
	"both sends carry the same idempotency key"

# 8. A receiver that never answers costs its timeout and stalls no other channel.
recv_start stall
recv_mode stall '{"mode": "stall"}'
sql "INSERT INTO thrillmon.notification_channels (name, kind, url, timeout_ms) VALUES ('stall', 'webhook', 'http://127.0.0.1:$(port_of stall)/', 1000)" >/dev/null
t0=$(now_ms)
id8=$(spike dt_stall)
wait_recv 10 a "any(x['json'].get('alert_id') == '$id8' for x in r)"
ok $? "the working channel is delivered while the other hangs"
wait_for 10 "SELECT EXISTS (SELECT 1 FROM thrillmon.delivery_attempts t JOIN thrillmon.deliveries d ON d.id = t.delivery_id WHERE d.channel = 'stall' AND d.alert_id = '$id8')"
like "$(sql "SELECT error || ' / ' || (latency_ms BETWEEN 900 AND 2000) FROM thrillmon.delivery_attempts t JOIN thrillmon.deliveries d ON d.id = t.delivery_id WHERE d.channel = 'stall' AND d.alert_id = '$id8' ORDER BY t.id LIMIT 1")" \
	"timed out after 1[0-9]{3} milliseconds.* / true" "the hanging one fails after its 1 s timeout"
like "$(sql "SELECT error FROM thrillmon.test_channel('stall')")" "timed out after" "test_channel() against it returns the timeout"
sql "DELETE FROM thrillmon.notification_channels WHERE name = 'stall'" >/dev/null

# 9. Hostile answers: each costs at most its timeout, is recorded, and nothing of it is kept
#    beyond a short excerpt.
sql "INSERT INTO thrillmon.notification_channels (name, kind, url, timeout_ms) VALUES ('h', 'webhook', 'http://127.0.0.1:$(port_of stall)/', 3000)" >/dev/null
recv_mode stall '{"mode": "huge"}'
is "$(sql "SELECT http_status || ' ' || (error IS NULL) || ' ' || length(response) || ' ' || (latency_ms < 3000) FROM thrillmon.test_channel('h')")" "200 true 256 true" \
	"a 50 MB answer: read to 64 kB then dropped, 256 characters kept"
recv_mode stall '{"mode": "reset"}'
like "$(sql "SELECT error FROM thrillmon.test_channel('h')")" "(reset|Empty reply|Recv failure)" "a connection reset is an error"
recv_mode stall '{"mode": "status", "status": 500}'
is "$(sql "SELECT http_status || ' ' || error FROM thrillmon.test_channel('h')")" "500 HTTP 500" "a 500 is a failure"
recv_mode stall "{\"mode\": \"redirect\", \"location\": \"http://127.0.0.1:$B/elsewhere\"}"
is "$(sql "SELECT http_status || ' ' || error FROM thrillmon.test_channel('h')")" "302 HTTP 302 (a redirect: not followed)" "a redirect is not followed"
is "$(recv_q b "sum(1 for x in r if x['path'] == '/elsewhere')")" "0" "... its target gets nothing"
sql "UPDATE thrillmon.notification_channels SET url = 'https://127.0.0.1:$(port_of stall)/' WHERE name = 'h'" >/dev/null
recv_mode stall '{"mode": "ok"}'
like "$(sql "SELECT error FROM thrillmon.test_channel('h')")" "(SSL|TLS|wrong version)" "TLS to a plain-HTTP server fails as a TLS error"
sql "DELETE FROM thrillmon.notification_channels WHERE name = 'h'" >/dev/null

# 10. The allow-list is checked again at send time: removing the host stops deliveries to it.
sql "ALTER SYSTEM SET thrillmon.notify_allowed_hosts = 'localhost'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
n_before=$(recv_q a "len(r)")
id10=$(spike dt_denied)
wait_for 10 "SELECT last_error LIKE '%not in thrillmon.notify_allowed_hosts%' FROM thrillmon.deliveries WHERE alert_id = '$id10'"
ok $? "a host no longer allowed: the delivery fails with the reason, no connection made"
is "$(recv_q a "len(r)")" "$n_before" "the receiver got nothing"
# A name allowed only through a network entry: the address it resolves to is checked at connect.
sql "ALTER SYSTEM SET thrillmon.notify_allowed_hosts = '127.0.0.0/8'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
sql "INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('byname', 'webhook', 'http://localhost:$B/n')" >/dev/null
is "$(sql "SELECT http_status FROM thrillmon.test_channel('byname')")" "200" "localhost, allowed as 127.0.0.0/8: delivered"
sql "ALTER SYSTEM SET thrillmon.notify_allowed_hosts = '10.0.0.0/8'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
n_before=$(recv_q b "len(r)")
is "$(sql "SELECT error FROM thrillmon.test_channel('byname')")" "the address the host resolves to is not in thrillmon.notify_allowed_hosts" \
	"the same name once 127.0.0.0/8 is gone: refused at connect (a name cannot lead outside the networks listed)"
is "$(recv_q b "len(r)")" "$n_before" "and nothing reached the receiver"
sql "ALTER SYSTEM SET thrillmon.notify_allowed_hosts = '127.0.0.1'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
wait_recv 15 a "any(x['json'].get('alert_id') == '$id10' for x in r)"
ok $? "allowed again: the delivery that waited is sent"

# 11. test_channel() is cancellable (a long timeout does not hold the session).
recv_mode stall '{"mode": "stall"}'
sql "INSERT INTO thrillmon.notification_channels (name, kind, url, timeout_ms) VALUES ('slow', 'webhook', 'http://127.0.0.1:$(port_of stall)/', 60000)" >/dev/null
t0=$(now_ms)
psql -X -q -At -c "SET statement_timeout = '1s'" -c "SELECT * FROM thrillmon.test_channel('slow')" >/dev/null 2>"$work/cancel.err"
elapsed=$(($(now_ms) - t0))
like "$(cat "$work/cancel.err")" "canceling statement due to statement timeout" "test_channel() honours statement_timeout"
ok $([ "$elapsed" -lt 5000 ] && echo 0 || echo 1) "... within seconds, not its 60 s timeout ($elapsed ms)"

is "$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'thrillmon delivery'")" "1" "the delivery worker is still running"
[ "$fails" -eq 0 ]
