#!/usr/bin/env bash
# The worked example of docs/delivery.md, as written there: its alertmanager.yml and its SQL, run
# against the real Alertmanager (Debian's prometheus-alertmanager) and a local SMTP server
# (test/lib/smtp_sink.py) standing for the mail relay. The only changes are the test's own: the
# relay's address and password file, no STARTTLS (the sink has no certificate) and short group
# timings, each checked to apply (a changed example fails here rather than going untested). An
# anomaly becomes an e-mail to the on-call address, its resolution another. Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/spike.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/docs/delivery.md

if ! command -v prometheus-alertmanager >/dev/null; then
	echo "1..0 # SKIP prometheus-alertmanager is not installed (scripts/deps.sh installs it)"
	exit 0
fi

am_pid=
smtp_pid=
stop_all() {
	[ -n "$am_pid" ] && kill "$am_pid" 2>/dev/null
	[ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null
}
cleanup_hook=stop_all
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# example LANG N: the worked example's Nth code block in that language.
example() {
	awk -v lang="$1" -v want="$2" '/^## A worked example/ { on = 1; next } on && /^## / { exit }
		on && $0 == "```" lang { k++; inb = (k == want); next } inb && /^```/ { exit } inb { print }' "$doc"
}
# edit FILE FROM TO: replaces a literal line fragment that must occur once.
edit() {
	local n
	n=$(grep -cF -- "$2" "$1")
	[ "$n" -eq 1 ] || { echo "# '$2' occurs $n times in the example, not once" >&2; return 1; }
	python3 - "$1" "$2" "$3" <<'PY'
import sys
p, a, b = sys.argv[1:]
s = open(p).read()
open(p, "w").write(s.replace(a, b))
PY
}
mail_q() {
	python3 - "$work/mail.jsonl" "$1" <<'PY'
import json, os, sys
m = [json.loads(l) for l in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
print(eval(sys.argv[2]))
PY
}
wait_mail() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(mail_q "$2")" != True ]; do [ "$(now_ms)" -ge "$end" ] && return 1; sleep 0.25; done
}

echo "1..9"
python3 "$root/test/lib/smtp_sink.py" --port-file "$work/smtp.port" --log "$work/mail.jsonl" >"$work/smtp.out" 2>&1 &
smtp_pid=$!
for _ in $(seq 1 100); do [ -s "$work/smtp.port" ] && break; sleep 0.05; done
SMTP=$(cat "$work/smtp.port")
AM=$(free_port)
echo "s3cret" > "$work/smtp-password"

example yaml 1 > "$work/am.yml"
example sql 1 > "$work/setup.sql"
example sql 2 > "$work/example.sql"
indent=$(sed -n 's/^\( *\)smarthost: .*/\1/p' "$work/am.yml")
edit "$work/am.yml" "smarthost: mail.example.com:587" "smarthost: 127.0.0.1:$SMTP
${indent}require_tls: false" &&
	edit "$work/am.yml" "auth_password_file: /etc/prometheus/smtp-password" "auth_password_file: $work/smtp-password" &&
	edit "$work/am.yml" "group_wait: 30s" "group_wait: 1s" &&
	edit "$work/am.yml" "group_interval: 5m" "group_interval: 2s" &&
	edit "$work/setup.sql" "alertmanager.internal:9093'" "127.0.0.1:$AM'" &&
	edit "$work/example.sql" "http://alertmanager.internal:9093/" "http://127.0.0.1:$AM/"
ok $? "the worked example's alertmanager.yml and SQL, with the test's relay, password file, timings and address"

prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am-data" \
	--web.listen-address="127.0.0.1:$AM" --cluster.listen-address="" >"$work/am.log" 2>&1 &
am_pid=$!
ready=1
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$AM/-/ready" >/dev/null && { ready=0; break; }; sleep 0.1; done
ok $ready "Alertmanager runs the example's configuration" || sed 's/^/# /' "$work/am.log"

cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 86400" "thrillmon.detect_interval = 86400"
cluster_start
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "UPDATE thrillmon.incident_policy SET open_on_critical = false, correlation_min_metrics = 0" >/dev/null
# (Two sessions, as the example says: the superuser's, then the admin's.)
psql -X -At -v ON_ERROR_STOP=1 -f "$work/setup.sql" >"$work/setup.out" 2>&1 &&
	out=$(psql -X -At -v ON_ERROR_STOP=1 -f "$work/example.sql" 2>&1)
ok $? "the example's SQL runs as written" || sed 's/^/# /' "$work/setup.out"
like "$(echo "$out" | tail -1)" "^200\|$" "test_channel('alertmanager') answers 200, no error"

# The test alert and then a real anomaly, each an e-mail to the on-call address, sent as the
# example's user.
wait_mail 30 "any('ThrillmonTest' in x['subject'] for x in m)"
ok $? "test_channel()'s alert arrives as an e-mail: $(mail_q "[x['subject'] for x in m][:1]")"
id=$(spike db_connections)
wait_mail 30 "any(x['subject'].startswith('[FIRING:1] ThrillmonAnomaly') and 'db_connections' in x['subject'] for x in m)"
ok $? "the anomaly arrives as an e-mail: $(mail_q "[x['subject'] for x in m if 'ThrillmonAnomaly' in x['subject']][:1]")"
is "$(mail_q "[(x['to'], x['user']) for x in m if 'ThrillmonAnomaly' in x['subject']][0]")" \
	"(['<dba-oncall@example.com>'], 'thrillmon@example.com')" "sent to the on-call address, authenticated as the example's user"
like "$(mail_q "[x['text'] for x in m if 'ThrillmonAnomaly' in x['subject']][0]")" "message = critical spike on db_connections: 140" \
	"the e-mail carries the alert's message"

sql "SELECT thrillmon.resolve_alert('$id')" >/dev/null
wait_mail 30 "any(x['subject'].startswith('[RESOLVED] ThrillmonAnomaly') and 'db_connections' in x['subject'] for x in m)"
ok $? "its resolution arrives as an e-mail (send_resolved)"
[ "$fails" -eq 0 ]
