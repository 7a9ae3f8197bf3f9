#!/usr/bin/env bash
# NOTIFY thrillmon_alerts with a real listener: a session LISTENs while another records a spiky
# metric and runs detect_anomalies(); the listener gets exactly one "new" payload (valid JSON whose
# alert_id, metric, severity, value and baseline match the alert). A detection in a transaction
# that is rolled back sends nothing (NOTIFY is delivered on commit only); resolve_alert() sends one
# "resolved" payload, and resolving again sends nothing. Speaks TAP. Needs PG* variables pointing
# at a cluster with thrillmon installed (the worker need not serve this database).
set -uo pipefail
db=thrillmon_notify
work=$(mktemp -d)
listener=
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/lib/tap.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
# Runs SQL $2 with the psql variable p set to $1 (-c does not interpolate variables; stdin does).
qp() { printf '%s\n' "$2" | psql -X -q -At -v ON_ERROR_STOP=1 -d $db -v p="$1" -f -; }
# The payloads (one a line) the listener printed for event $1 (all events without an argument).
payloads() {
	sed -n 's/^Asynchronous notification "thrillmon_alerts" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' \
		"$work/listener.out" > "$work/payloads"
	if [ $# -eq 0 ]; then cat "$work/payloads"; return; fi
	while IFS= read -r p; do
		[ "$(qp "$p" "SELECT :'p'::jsonb->>'event'" 2>/dev/null)" = "$1" ] && printf '%s\n' "$p"
	done < "$work/payloads"
}
# A field of a JSON payload, as text.
field() { qp "$1" "SELECT :'p'::jsonb->>'$2'"; }

echo "1..16"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION thrillmon"
# No auto-resolve during the test (the spike is 150 minutes old), and no incident noise.
q -c "UPDATE thrillmon.anomaly_detection_config SET cooldown_minutes = 1440 WHERE metric_name = '*'"
q -c "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0"
# A spiky metric: 800 points one minute apart ending a minute ago (past a new metric's 530, whose
# lone anomaly would raise no alert), around 100 (a deterministic wiggle of sd ~0.6), +30 at point
# 650.
history() {
	echo "SELECT count(thrillmon.record_metric('$1', CASE WHEN g = 650 THEN 130 ELSE 100 + ((g * 37) % 11 - 5) * 0.2 END,
		'custom', NULL, now() - make_interval(mins => 801 - g))) FROM generate_series(1, 800) g"
}

# The listener: LISTEN, then sleep; psql prints the notifications once the sleep ends.
psql -X -q -At -d $db -v ON_ERROR_STOP=1 -c "SET application_name = 'thrillmon_notify_listener'" \
	-c "LISTEN thrillmon_alerts" -c "SELECT pg_sleep(8)" > "$work/listener.out" 2>&1 &
listener=$!
listening=1
for _ in $(seq 1 100); do
	if [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'thrillmon_notify_listener' AND query LIKE '%pg_sleep%' AND state = 'active'")" = "1" ]; then
		listening=0
		break
	fi
	sleep 0.05
done
ok $listening "the listener is listening (LISTEN committed, sleeping)"

# 1. A pass in a transaction that is rolled back: an alert is raised inside it, then undone (and
# the detection progress with it, so the next pass scores the lookback window afresh).
is "$(q -c "BEGIN" -c "$(history notify_rolled_back)" -c "SELECT count(*) FILTER (WHERE alert_created) FROM thrillmon.detect_anomalies()" -c "ROLLBACK" | tail -n 1)" "1" \
	"a detection in a transaction that is rolled back raised an alert inside it"
is "$(q -c "SELECT count(*) FROM thrillmon.system_alerts")" "0" "...gone after the rollback"

# 2. A committed detection pass.
q -c "$(history notify_spike)" >/dev/null
is "$(q -c "SELECT count(*) >= 1 AND count(*) FILTER (WHERE alert_created) = 1 FROM thrillmon.detect_anomalies()")" "t" \
	"detect_anomalies(): the spike found, one new alert"

# 3. resolve_alert(), twice.
alert_id=$(q -c "SELECT id FROM thrillmon.system_alerts WHERE metric_name = 'notify_spike'")
is "$(q -c "SELECT resolved_at IS NOT NULL FROM thrillmon.resolve_alert('$alert_id')")" "t" "resolve_alert() resolves it"
q -c "SELECT thrillmon.resolve_alert('$alert_id')" >/dev/null

wait "$listener"
ok $? "the listener ran to the end"
listener=

is "$(payloads | wc -l)" "2" "two notifications in all (one new, one resolved)"
new=$(payloads new)
is "$(printf '%s' "$new" | grep -c .)" "1" "exactly one 'new' payload"
is "$(qp "$new" "SELECT jsonb_typeof(:'p'::jsonb)" 2>&1)" "object" "the payload is a JSON object"
is "$(field "$new" alert_id)" "$alert_id" "alert_id is the alert's id in system_alerts"
is "$(field "$new" metric)|$(field "$new" severity)" \
	"$(q -c "SELECT metric_name || '|' || severity FROM thrillmon.system_alerts WHERE id = '$alert_id'")" "metric and severity are the alert's"
is "$(qp "$new" "SELECT (:'p'::jsonb->>'value')::float8 = 130 AND (:'p'::jsonb->>'baseline')::float8 BETWEEN 99 AND 101
	AND :'p'::jsonb->>'alert_type' = 'anomaly' AND :'p'::jsonb ? 'created_at' AND :'p'::jsonb->'resolved_at' = 'null'")" "t" \
	"value 130, baseline near 100, alert_type anomaly, created_at set, not resolved"
is "$(payloads | grep -c notify_rolled_back)" "0" "nothing from the rolled-back transaction"
resolved=$(payloads resolved)
is "$(printf '%s' "$resolved" | grep -c .)" "1" "exactly one 'resolved' payload (resolving again sends nothing)"
is "$(field "$resolved" alert_id)|$(qp "$resolved" "SELECT :'p'::jsonb->>'resolved_at' IS NOT NULL")" "$alert_id|t" \
	"...for the same alert, with resolved_at"
is "$(payloads | head -n 1 | grep -c '"event": "new"')" "1" "'new' came first"

psql -X -q -c "DROP DATABASE $db" >/dev/null
exit $((fails > 0))
