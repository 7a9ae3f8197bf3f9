#!/usr/bin/env bash
# Faults against a cluster of its own (preloaded worker, collect_interval 1 s): pg_ctl stop -m
# immediate in the middle of a collection, of a retention run and of a partition maintenance run;
# a retention cleanup meeting a lock on metric_time_series (and how long an insert waits
# meanwhile); the worker killed with SIGTERM repeatedly; a short soak with pgbench ingest and
# observe(). Speaks TAP. SOAK_S (default 60) is the soak's length: SOAK_S=600 is the full 10-minute
# soak; TERMS (default 3) the number of SIGTERMs (each costs the worker's 10 s restart time).
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"
SOAK_S=${SOAK_S:-60}
TERMS=${TERMS:-3}

bg_pids=()
stop_bg() { local p; for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done; }
cleanup_hook=stop_bg

worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND datname = 'tm'"
max_run() { sql "SELECT coalesce(max(run_id), 0) FROM thrillmon.job_runs"; }
# Private memory (RssAnon): VmRSS also counts the shared buffers a backend has touched, which
# grows for a long time without any leak (a 10-minute soak: VmRSS 27 -> 34 MB; a long-running
# worker measured separately: RssAnon 7816 kB before and after 45 passes).
rss_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# within_kb A B: B is at most A + 10% + 2 MB (no growth beyond that).
within_kb() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -le $(($1 + $1 / 10 + 2048)) ]; }
# The built-in metrics (soak_ingest may legitimately repeat a timestamp: two pgbench clients).
builtin_where="metadata IS NULL AND metric_name IN ('active_incidents', 'cache_hit_rate', 'database_connections', 'database_size_bytes',
	'dead_tuple_ratio', 'deadlocks', 'lock_waits', 'longest_transaction_seconds', 'rollback_rate', 'transactions_per_second',
	'unresolved_alerts', 'wal_bytes_per_second')"
dups_sql="SELECT count(*) FROM (SELECT metric_name, \"timestamp\" FROM thrillmon.metric_time_series
	WHERE $builtin_where GROUP BY 1, 2 HAVING count(*) > 1) d"
# Partitions of metric_time_series lacking their <name>_name_time_idx index (listed, or empty).
noidx_sql="SELECT coalesce(string_agg(c.relname, ','), '') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass
	AND NOT EXISTS (SELECT 1 FROM pg_class x WHERE x.relname = c.relname || '_name_time_idx' AND x.relkind = 'i')"
# check_dups LABEL: the duplicate check, listing the duplicates and the runs of their slots if any.
check_dups() {
	local got; got=$(sql "$dups_sql")
	is "$got" "0" "$1: no built-in metric point is duplicated for a (metric_name, timestamp)"
	[ "$got" = 0 ] && return
	sql "SELECT metric_name || ' ' || \"timestamp\" || ' x' || count(*) FROM thrillmon.metric_time_series WHERE $builtin_where
		GROUP BY metric_name, \"timestamp\" HAVING count(*) > 1 ORDER BY 1 LIMIT 5" | sed 's/^/#   dup: /'
	sql "SELECT run_id || ' ' || job || ' ' || target || ' ' || status || ' ' || run_by || ' started ' || started_at || ' at ' || coalesce(details->>'at', '')
		FROM thrillmon.job_runs WHERE job = 'collect' AND (details->>'at')::timestamptz IN (SELECT \"timestamp\" FROM thrillmon.metric_time_series
		WHERE $builtin_where GROUP BY metric_name, \"timestamp\" HAVING count(*) > 1) ORDER BY run_id LIMIT 10" | sed 's/^/#   run: /'
}
obs_sql() { echo "SELECT coalesce(sum((metadata->>'count')::bigint), 0) FROM thrillmon.metric_time_series WHERE metric_name = '$1'"; }
obs_count() { sql "$(obs_sql "$1")"; }
# wait_sleeping SECONDS APPNAME: until the session of that application_name sleeps in pg_sleep.
wait_sleeping() { wait_for "$1" "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '$2' AND wait_event = 'PgSleep')"; }
# restart_immediate: pg_ctl stop -m immediate, then start.
restart_immediate() { pg_ctl -m immediate -w -t 30 stop >/dev/null && pg_ctl -w -t 30 start >/dev/null; }

echo "1..61"
started=$(now_ms)

cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 1"
cluster_start
sql "CREATE EXTENSION thrillmon"
wait_for 20 "SELECT count(*) >= 2 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'"
ok $? "the worker collects"

# after_restart LABEL MARK: the checks every crash must pass; MARK = max(run_id) before the stop.
after_restart() {
	wait_for 15 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $2 AND status = 'succeeded')"
	ok $? "$1: the cluster recovers and the worker collects again"
	is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE run_id <= $2 AND status = 'running'")" "0" \
		"$1: no run from before the stop is left 'running'"
	check_dups "$1"
	is "$(sql "$noidx_sql")" "" "$1: every partition has its _name_time_idx index"
	is "$(obs_count obs_a)" "$obs_n" "$1: the $obs_n observations flushed before the first stop are all there (once)"
}

# ---------------------------------------------------------------------------------------------
# 1. stop -m immediate in the middle of a collection (a SQL collector sleeping 3 s).
# ---------------------------------------------------------------------------------------------
obs_n=50
sql "SELECT thrillmon.observe('obs_a', g) FROM generate_series(1, $obs_n) g" >/dev/null
sql "SELECT thrillmon.collect_metrics()" >/dev/null
ok $? "observed $obs_n values and ran collect_metrics()"
wait_for 5 "SELECT ($(obs_sql obs_a)) = $obs_n"
ok $? "the $obs_n observations are flushed (committed)"
sql "SELECT thrillmon.register_collector('sleepy', 'SELECT 1 FROM pg_sleep(3)', 'custom', '1 second')" >/dev/null
sql "UPDATE thrillmon.metric_collectors SET statement_timeout = '10 s' WHERE name = 'sleepy'"
wait_for 12 "SELECT wait_event = 'PgSleep' AND now() - query_start < interval '1 s' FROM pg_stat_activity WHERE pid = ($worker_pid_sql)"
ok $? "the worker is inside a collect run (in the sleeping collector)"
running=$(sql "SELECT string_agg(run_id::text, ',') FROM thrillmon.job_runs WHERE status = 'running' AND job = 'collect'")
mark=$(max_run)
restart_immediate
ok $? "stop -m immediate during the collection, start"
after_restart "crash in a collection" "$mark"
is "$(sql "SELECT string_agg(DISTINCT status || '/' || (error LIKE 'interrupted%'), ',') FROM thrillmon.job_runs WHERE run_id IN (${running:-0})")" \
	"failed/true" "the interrupted collect run ($running) is 'failed', 'interrupted...'"
wait_for 15 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status = 'succeeded' AND details->>'collectors_failed' = '0')"
ok $? "a later collect run (sleepy included) succeeds"
# Without sleepy from here to the SIGTERMs: back-to-back 3 s collect transactions hold
# metric_time_series almost all the time, and the partition DDL's NOWAIT retries may not get in.
sql "SELECT thrillmon.unregister_collector('sleepy')" >/dev/null

# ---------------------------------------------------------------------------------------------
# 2. stop -m immediate in the middle of a retention run: a session runs the cleanup (it drops a
# wholly expired partition) and sleeps in the same transaction.
# ---------------------------------------------------------------------------------------------
# Partitions are made only for days the metrics policy keeps: the points arrive while it keeps
# 100 days, then it is cut back to 30 and they have expired.
seed_expired() {
	sql "SELECT thrillmon.record_metric('expired', g, 'custom', NULL, date_trunc('day', now()) - interval '40 days' + g * interval '1 minute')
		FROM generate_series(1, 100) g" >/dev/null &&
	sql "UPDATE thrillmon.retention_policies SET retention_days = 100 WHERE target = 'metrics'" >/dev/null &&
	sql "SELECT thrillmon.maintain_partitions()" >/dev/null &&
	sql "UPDATE thrillmon.retention_policies SET retention_days = 30 WHERE target = 'metrics'" >/dev/null
}
seed_expired
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series_default WHERE metric_name = 'expired'")/$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'expired'")" \
	"0/100" "100 expired points (40 days old) in their own daily partition"
PGAPPNAME=retention_crash psql -X -q -At -c "BEGIN" -c "SELECT thrillmon.run_data_retention_cleanup()->>'status'" \
	-c "SELECT pg_sleep(60)" -c "COMMIT" >"$work/ret_crash.txt" 2>&1 &
bg=$!; bg_pids+=("$bg")
wait_sleeping 20 retention_crash
ok $? "a session ran run_data_retention_cleanup() and sleeps in its transaction"
is "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'retention_crash'
	AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.relation = 'thrillmon.metric_time_series'::regclass")" "1" \
	"it holds ACCESS EXCLUSIVE on metric_time_series (it dropped the expired partition, uncommitted)"
mark=$(max_run)
restart_immediate
ok $? "stop -m immediate in the middle of the retention run, start"
wait "$bg" 2>/dev/null
after_restart "crash in a retention run" "$mark"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'expired'")" "100" \
	"the uncommitted cleanup is rolled back: the expired partition and its 100 rows are there"
res=$(sql "SELECT thrillmon.run_data_retention_cleanup()->>'status'")
is "$res" "succeeded" "the next retention run succeeds"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'expired'")" "0" "and removes the expired rows"

# ---------------------------------------------------------------------------------------------
# 3. stop -m immediate in the middle of partition maintenance: rows for a day 20 days ahead wait
# in the default partition; a session runs maintain_partitions(30) (creates the day, moves them)
# and sleeps in the same transaction.
# ---------------------------------------------------------------------------------------------
sql "SELECT thrillmon.record_metric('future', g, 'custom', NULL, date_trunc('day', now()) + interval '20 days' + g * interval '1 minute')
	FROM generate_series(1, 50) g" >/dev/null
future_part="metric_time_series_p$(sql "SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '20 days', 'YYYYMMDD')")"
PGAPPNAME=maint_crash psql -X -q -At -c "BEGIN" -c "SELECT thrillmon.maintain_partitions(30)" \
	-c "SELECT pg_sleep(60)" -c "COMMIT" >"$work/maint_crash.txt" 2>&1 &
bg=$!; bg_pids+=("$bg")
wait_sleeping 20 maint_crash
ok $? "a session ran maintain_partitions() and sleeps in its transaction"
like "$(head -1 "$work/maint_crash.txt")" "$future_part" "it created $future_part (uncommitted)"
mark=$(max_run)
restart_immediate
ok $? "stop -m immediate in the middle of partition maintenance, start"
wait "$bg" 2>/dev/null
after_restart "crash in partition maintenance" "$mark"
wait_for 10 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'maintenance' AND run_id > $mark AND status <> 'running')"
is "$(sql "SELECT status || ' ' || coalesce(error, '') FROM thrillmon.job_runs WHERE job = 'maintenance' AND run_id > $mark ORDER BY run_id LIMIT 1")" "succeeded " \
	"the worker's maintenance at start succeeds"
sql "SELECT thrillmon.maintain_partitions(30)" >/dev/null
is "$(sql "SELECT count(*) FROM thrillmon.$future_part")/$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'future'")" "50/50" \
	"the 50 future rows are in $future_part, once"
is "$(sql "$noidx_sql")" "" "after maintenance too, every partition has its _name_time_idx index"

# ---------------------------------------------------------------------------------------------
# 4. A lock on metric_time_series during a cleanup with expired data; an insert meanwhile.
# ---------------------------------------------------------------------------------------------
seed_expired
PGAPPNAME=lock_holder psql -X -q -At -c "BEGIN" -c "LOCK TABLE thrillmon.metric_time_series IN ACCESS SHARE MODE" \
	-c "SELECT pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!; bg_pids+=("$holder")
wait_sleeping 10 lock_holder
ok $? "a session holds ACCESS SHARE on metric_time_series (and sleeps)"
(
	t0=$(now_ms)
	PGAPPNAME=cleaner sql "SELECT thrillmon.run_data_retention_cleanup()" >"$work/cleanup.txt" 2>&1
	echo $(($(now_ms) - t0)) >"$work/cleanup_ms.txt"
) &
cleaner=$!; bg_pids+=("$cleaner")
# Metrics are cleaned last: give the other targets a moment, then insert while it waits.
wait_for 10 "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'cleaner' AND state = 'active' AND now() - query_start > interval '1 s')"
t0=$(now_ms)
sql "SELECT thrillmon.record_metric('during_lock', 1)" >/dev/null
insert_rc=$?
insert_ms=$(($(now_ms) - t0))
echo "# record_metric() during the cleanup's lock wait took $insert_ms ms"
ok $insert_rc "record_metric() during the cleanup's lock wait works"
wait "$cleaner"
cleanup_ms=$(cat "$work/cleanup_ms.txt")
echo "# the cleanup returned after $cleanup_ms ms"
# The partition-DDL lock queues for at most 50 ms a try (_lock_metrics_parent), so an insert waits
# about that long, never the cleanup's whole lock_timeout (5 s), which is what this catches: the
# bound is the behaviour, 20 times the wait, not a measure of speed.
ok "$([ "$insert_ms" -lt 1000 ]; echo $?)" "an insert during the cleanup's lock wait waits less than 1 s ($insert_ms ms)"
ok "$([ "$cleanup_ms" -lt 8000 ]; echo $?)" "the cleanup returns within its lock_timeout (5 s) plus 3 s ($cleanup_ms ms)"
res=$(cat "$work/cleanup.txt")
jq_sql() { sql "SELECT $1 FROM (SELECT \$j\$$res\$j\$::jsonb j) x"; }
is "$(jq_sql "j->>'status' || '/' || (j->'targets'->'metrics'->>'status')")" "failed/failed" \
	"overall status and the metrics target: failed"
like "$(jq_sql "j->'targets'->'metrics'->>'error'")" "lock.timeout" "the metrics error mentions the lock timeout"
like "$(sql "SELECT status || ' ' || error FROM thrillmon.job_runs WHERE run_id = (\$j\$$res\$j\$::jsonb->>'run_id')::bigint")" \
	"^failed .*lock.timeout" "job_runs records the failed run with the lock timeout"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock_holder'" >/dev/null
wait "$holder" 2>/dev/null
res=$(sql "SELECT thrillmon.run_data_retention_cleanup()->>'status'")
is "$res/$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'expired'")" "succeeded/0" \
	"after the lock holder ends the next cleanup succeeds and removes the expired rows"

# ---------------------------------------------------------------------------------------------
# 5. SIGTERM to the worker $TERMS times while it runs a job (sleepy keeps it busy).
# ---------------------------------------------------------------------------------------------
sql "SELECT thrillmon.register_collector('sleepy', 'SELECT 1 FROM pg_sleep(3)', 'custom', '1 second')" >/dev/null
sql "UPDATE thrillmon.metric_collectors SET statement_timeout = '10 s' WHERE name = 'sleepy'"
wait_for 10 "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = ($worker_pid_sql)"
first_pid=$(sql "$worker_pid_sql")
first_rss=$(rss_kb "$first_pid")
dead_pids=()
term_rc=0
for _ in $(seq "$TERMS"); do
	pid=$(sql "$worker_pid_sql")
	wait_for 10 "SELECT state = 'running' FROM thrillmon.worker_status()" || term_rc=1
	sql "SELECT pg_terminate_backend($pid)" >/dev/null
	dead_pids+=("$pid")
	wait_for 20 "SELECT EXISTS ($worker_pid_sql AND pid <> $pid)" || term_rc=1
done
ok $term_rc "SIGTERM $TERMS times during a running job; each time a new worker came back within 20 s"
sql "SELECT thrillmon.unregister_collector('sleepy')" >/dev/null
mark=$(max_run)
wait_for 10 "SELECT count(*) >= 5 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status = 'succeeded'"
ok $? "collection goes on"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE status = 'running' AND started_at < now() - interval '5 s'")" "0" \
	"no job_runs row is left 'running' (beyond the current one)"
is "$(sql "SELECT count(*) FROM pg_locks l WHERE locktype = 'advisory' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid)")" "0" \
	"pg_locks shows no advisory lock held by a dead pid (killed: ${dead_pids[*]})"
check_dups "after the SIGTERMs"
last_pid=$(sql "$worker_pid_sql")
last_rss=$(rss_kb "$last_pid")
echo "# worker private RSS: first (pid $first_pid) $first_rss kB, after $TERMS restarts (pid $last_pid) $last_rss kB"
ok "$(within_kb "$first_rss" "$last_rss"; echo $?)" "the restarted worker's private RSS is within 10% + 2 MB of the first's"

# ---------------------------------------------------------------------------------------------
# 6. Soak: SOAK_S s of pgbench ingest (record_metric + observe) at collect_interval 1 s.
# ---------------------------------------------------------------------------------------------
cat >"$work/soak.sql" <<'SQL'
SELECT thrillmon.record_metric('soak_ingest', random() * 100, 'performance');
SELECT thrillmon.observe('soak_obs', random() * 100, 'performance');
SQL
wpid=$(sql "$worker_pid_sql")
log_off=$(stat -c %s "$log")
# Detection joins the soak at the same 1 s interval (a pass per second over the ingest).
sql "ALTER SYSTEM SET thrillmon.detect_interval = 1" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
mark=$(max_run)
soak_t0=$(now_ms)
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -R 100 -T "$SOAK_S" -f "$work/soak.sql" >"$work/pgbench.txt" 2>&1 &
bench=$!; bg_pids+=("$bench")
sleep 10
rss10=$(rss_kb "$wpid")
wait "$bench"
bench_rc=$?
rss_end=$(rss_kb "$wpid")
echo "# soak of ${SOAK_S} s took $(( ($(now_ms) - soak_t0) / 1000 )) s; worker private RSS at 10 s $rss10 kB, at the end $rss_end kB"
ok $bench_rc "pgbench ran $SOAK_S s without errors"
txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.txt")
echo "# pgbench transactions (one record_metric() and one observe() each): $txns"
is "$(sql "SELECT $wpid = ($worker_pid_sql)")" "t" "the same worker ran all along"
ok "$(within_kb "$rss10" "$rss_end"; echo $?)" "worker private RSS flat during the soak (within 10% + 2 MB of the 10th second's)"
check_dups "after the soak"
sql "SELECT thrillmon.collect_metrics()" >/dev/null
is "$(obs_count soak_obs)" "$txns" "observe() counts flushed == calls made"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'soak_ingest'")" "$txns" "every record_metric() row is there"
is "$(sql "SELECT string_agg(DISTINCT status, ',') FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status <> 'running'")" \
	"succeeded" "every collect run in the window succeeded"
is "$(sql "SELECT count(*) >= $SOAK_S * 8 / 10 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark")" "t" \
	"about one collect run per second"
is "$(sql "SELECT coalesce(string_agg(DISTINCT status, ','), 'none') FROM thrillmon.job_runs WHERE job = 'detect' AND run_id > $mark AND status <> 'running'")" \
	"succeeded" "every detection pass in the window succeeded"
is "$(sql "SELECT count(*) >= $SOAK_S * 5 / 10 FROM thrillmon.job_runs WHERE job = 'detect' AND run_id > $mark")" "t" \
	"detection ran about every second too"
is "$(tail -c +"$log_off" "$log" | grep -E "\[$wpid\]|thrillmon worker" | grep -cE "ERROR|FATAL|PANIC")" "0" \
	"no ERROR/FATAL/PANIC from the worker in the log during the soak"
check_dups "after a collect_metrics() by hand"

echo "# $(( ($(now_ms) - started) / 1000 )) s"
exit $((fails > 0))
