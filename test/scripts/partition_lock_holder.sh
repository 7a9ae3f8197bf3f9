#!/usr/bin/env bash
# What a session holding the lock VACUUM takes on one partition (as an autovacuum does) must not
# block, and the detection pass's own reading of new points (its BRIN scan and summary):
# - while another session holds that lock on today's partition, detection passes do not wait
#   for it (they skip summarising; lock_timeout is the judge), nor does a retention cleanup
#   dropping an expired day (its partition DDL locks the parent table only);
# - once the lock is gone, a pass leaves no page range unsummarised, and both the spike held
#   back meanwhile and a new one are found;
# - with a partition attached by hand (not one of thrillmon's daily names), a pass reads through
#   SQL and finds the same.
# Speaks TAP. Needs PG* variables pointing at a cluster with thrillmon installed (the worker need
# not serve this database).
set -uo pipefail
db=thrillmon_lock_holder
work=$(mktemp -d)
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/lib/tap.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
# A pass in a new session (its detectors rebuilt), then new points with a spike on metric m$1
# and a second pass (from the detectors it cached: the steady path), then the SQL in $2.
passes() {
	{ echo "SELECT count(*) FROM thrillmon.detect_anomalies() WHERE anomaly_value = 150;"
	  sed "s/:spike/$1/" "$work/pass.sql"; echo "${2:-}"; } | psql -X -q -At -d $db 2>&1
}

echo "1..8"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION thrillmon"
q -c "SELECT thrillmon.maintain_partitions(1)" >/dev/null
today=$(q -c "SELECT 'metric_time_series_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
# An expired day (40 days ago) for the cleanup to drop while the holder is there.
q -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\") VALUES ('old', 1, now() - interval '40 days')"
q -c "SELECT thrillmon.maintain_partitions(1)" >/dev/null
# 200 metrics x 200 points of noise (past a new metric's 128 learning points), one a second up to
# a minute ago.
q -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, \"timestamp\")
      SELECT 'm' || m, 100 + random() + random() + random(), now() - interval '1 minute' - g * interval '1 second'
      FROM generate_series(1, 200) m, generate_series(1, 200) g"
# New points: 5 per metric, 20 ms apart from now on (after the last pass's horizon), a spike of
# +50 on metric m<:spike> at the third; then wait until the clock has passed them, and a pass.
cat > "$work/pass.sql" <<'SQL'
INSERT INTO thrillmon.metric_time_series (metric_name, metric_value, "timestamp")
SELECT 'm' || m, CASE WHEN m = :spike AND k = 3 THEN 150 ELSE 100 + random() + random() + random() END,
       clock_timestamp() + k * interval '20 ms'
FROM generate_series(1, 200) m, generate_series(1, 5) k;
DO $$ BEGIN PERFORM pg_sleep(0.2); END $$;
SELECT count(*) FROM thrillmon.detect_anomalies() WHERE anomaly_value = 150;
SQL

# The holder: SHARE UPDATE EXCLUSIVE on today's partition, held for 20 s.
psql -X -q -At -d $db -c "BEGIN" -c "LOCK TABLE thrillmon.$today IN SHARE UPDATE EXCLUSIVE MODE" -c "SELECT pg_sleep(20)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
held="SELECT count(*) FROM pg_locks WHERE relation = 'thrillmon.$today'::regclass AND mode = 'ShareUpdateExclusiveLock' AND granted"
for _ in $(seq 50); do
	[ "$(q -c "$held")" = 1 ] && break
	sleep 0.1
done
# (Its open transaction also holds back the horizon: points stamped after its start are scored
# once it has ended, by the next pass.)
out=$( { echo "SET lock_timeout = '2s';"; echo "SELECT count(*) FROM thrillmon.detect_anomalies();"
         sed "s/:spike/7/" "$work/pass.sql"; } | psql -X -q -At -d $db 2>&1)
is "$(echo "$out" | grep -c ERROR)" "0" "passes while another session holds today's partition's VACUUM lock: no wait (lock_timeout 2 s), no error"
is "$(echo "$out" | tail -n 1)" "0" "... the new spike not scored yet (the holder's open transaction holds back the horizon)"
# Retention's partition DDL locks the parent only, not every partition: the holder (like an
# autovacuum of one partition) does not make it fail.
is "$(q -c "SET lock_timeout = '2s'; SELECT thrillmon.cleanup_old_metrics(30)" 2>&1)" "1" \
	"cleanup_old_metrics() drops an expired day while another partition is held (lock_timeout 2 s)"
is "$(q -c "$held")" "1" "... and the lock was still held after all that"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
holder=
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null
for _ in $(seq 50); do
	[ "$(q -c "$held")" = 0 ] && break
	sleep 0.1
done

# Without the holder: the first pass finds the held-back spike, the second its own; a pass
# summarises what it read, so nothing is left to summarise after it.
out=$(passes 8 "SELECT brin_summarize_new_values('thrillmon.${today}_time_brin_idx');")
is "$(echo "$out" | sed -n 1p),$(echo "$out" | sed -n 2p)" "1,1" "without the holder: the held-back spike found, then a new one (steady path)"
is "$(echo "$out" | sed -n 3p)" "0" "... and no page range of today's partition is left unsummarised"

# A partition attached by hand, named otherwise: a pass reads through SQL, and finds the same.
q -c "CREATE TABLE thrillmon.by_hand PARTITION OF thrillmon.metric_time_series FOR VALUES FROM ('2001-01-01') TO ('2001-01-02')"
out=$(passes 9)
is "$(echo "$out" | sed -n 1p),$(echo "$out" | sed -n 2p)" "0,1" "with a partition attached by hand: a pass (through SQL) finds the spike"
is "$(q -c "SELECT string_agg(metric_name, ',' ORDER BY metric_name) FROM thrillmon.anomaly_detections WHERE anomaly_value = 150")" "m7,m8,m9" \
	"each spike recorded once"

[ -n "${KEEP:-}" ] || psql -X -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
[ "$fails" -eq 0 ]
