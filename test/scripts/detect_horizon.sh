#!/usr/bin/env bash
# How far a detection pass may score (thrillmon._detect_horizon()) while other transactions are
# open: one that has written points holds the horizon at its start (up to ten minutes), so its
# points are scored once it commits; one that has not (it holds a lock every client queues behind,
# or only reads the points) holds it back by at most 10 s, so that detection is not blind while
# such a transaction is the very trouble. Speaks TAP. Needs PG* variables pointing at a cluster
# with thrillmon installed.
set -uo pipefail
db=thrillmon_horizon
holders=()
cleanup() {
	for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
	psql -X -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()" >/dev/null 2>&1
}
trap cleanup EXIT
source "$(dirname "$0")/lib/tap.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
# hold NAME SQL...: a session named NAME runs BEGIN, the statements, then sleeps HOLD_S seconds
# (30) and commits, in the background; returns once it is asleep.
hold() {
	local name=$1
	shift
	local args=(-c "BEGIN")
	for s in "$@"; do args+=(-c "$s"); done
	PGOPTIONS= PGAPPNAME=$name psql -X -q -At -d $db "${args[@]}" -c "SELECT pg_sleep(${HOLD_S:-30})" -c "COMMIT" >/dev/null 2>&1 &
	holders+=($!)
	for _ in $(seq 100); do
		[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name' AND query LIKE '%pg_sleep%'")" = 1 ] && return
		sleep 0.1
	done
}
release() { q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$1'" >/dev/null; }
start_of() { echo "(SELECT xact_start FROM pg_stat_activity WHERE application_name = '$1')"; }

echo "1..7"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION thrillmon"
q -c "SELECT thrillmon.maintain_partitions(1)" >/dev/null
q -c "CREATE TABLE busy (id int)"

# 1. A transaction holding an exclusive lock on an application table (a lock storm's cause), and
#    one that has read the points: neither has written any.
hold storm "LOCK TABLE busy IN ACCESS EXCLUSIVE MODE"
hold reader "SELECT count(*) FROM thrillmon.metric_time_series"
is "$(q -c "SELECT thrillmon._detect_horizon() <= $(start_of storm) + interval '1 second'")" "t" \
	"at first, an open transaction that has written no points holds the horizon at its start"
sleep 11
is "$(q -c "SELECT thrillmon._detect_horizon() > $(start_of storm) AND thrillmon._detect_horizon() > $(start_of reader)
	AND thrillmon._detect_horizon() >= clock_timestamp() - interval '11 seconds'")" "t" \
	"after 10 s it holds the horizon no longer: at most 10 s behind the clock (lock holder and reader alike)"
release storm
release reader

# 2. A transaction that has written a point and stays open for 14 s, then commits: the horizon
#    waits for it, and its point (stamped with its start) is scored by the pass after it commits.
q -c "SELECT count(*) >= 0 FROM thrillmon.detect_anomalies()" >/dev/null
HOLD_S=14 hold writer "SELECT thrillmon.record_metric('late_commit', 1)"
writer_start=$(q -c "SELECT $(start_of writer)")
sleep 11
is "$(q -c "SELECT thrillmon._detect_horizon() < '$writer_start'")" "t" \
	"an open transaction that has written points holds the horizon just before its start after 10 s too"
q -c "SELECT count(*) >= 0 FROM thrillmon.detect_anomalies()" >/dev/null
is "$(q -c "SELECT horizon < '$writer_start' FROM thrillmon.detector_progress")" "t" \
	"a pass meanwhile stops short of it"
wait "${holders[-1]}"
is "$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'late_commit' AND \"timestamp\" = '$writer_start'")" "1" \
	"it committed its point, stamped with its start"
is "$(q -At <<'SQL'
SELECT count(*) >= 0 FROM thrillmon.detect_anomalies();
SELECT points FROM thrillmon._detect_pass_stats();
SQL
)" "t
1" "the next pass scores that point"
is "$(q -c "SELECT thrillmon._detect_horizon() >= clock_timestamp() - interval '1 second'")" "t" \
	"with nothing open, the horizon is the clock"
