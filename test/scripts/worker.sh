#!/usr/bin/env bash
# The background worker against a real cluster of its own (it needs shared_preload_libraries and
# restarts): waiting for CREATE EXTENSION, scheduled collection on wall-clock slots, job history,
# SIGHUP, SIGTERM, a crash restart, DROP/CREATE EXTENSION, SQL collectors (failing ones and
# privileges), thrillmon.enabled / thrillmon.scheduler, health_check(), pg_cron, and that the
# postmaster never goes down. Speaks TAP. Ignores the PG* cluster of pg_virtualenv: the worker
# needs preload settings and restarts, so this script makes, runs and removes its own cluster.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND application_name = 'thrillmon' AND datname = 'tm'"
last_run() { sql "SELECT coalesce(max(run_id), 0) FROM thrillmon.job_runs WHERE job = 'collect'"; }

echo "1..97"
started=$(now_ms)

# ---------------------------------------------------------------------------------------------
# The cluster. Database tm is made in single-user mode before the worker is preloaded, so that
# its first start finds it (a missing database would cost a 10 s restart).
# ---------------------------------------------------------------------------------------------
cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon,pg_cron'" "thrillmon.collect_interval = 1" \
	"cron.database_name = 'tm'" "cron.host = '$work'"
cluster_start

# ---------------------------------------------------------------------------------------------
# 1. Before CREATE EXTENSION: alive, and saying once that it waits.
# ---------------------------------------------------------------------------------------------
wait_for 10 "SELECT EXISTS ($worker_pid_sql)"
ok $? "the worker runs before CREATE EXTENSION (backend_type 'thrillmon collector', application_name 'thrillmon')"
wait_log 10 "thrillmon worker: waiting for CREATE EXTENSION thrillmon" 1
ok $? "it logs that it waits for CREATE EXTENSION thrillmon"
# Each SIGHUP wakes it for a tick (its idle sleep is 10 s): three more ticks, still one line.
state_change=$(sql "SELECT state_change FROM pg_stat_activity WHERE pid = ($worker_pid_sql)")
for _ in 1 2 3; do sql "SELECT pg_reload_conf()" >/dev/null; sleep 0.5; done
is "$(sql "SELECT state_change > '$state_change' FROM pg_stat_activity WHERE pid = ($worker_pid_sql)")" "t" \
	"the worker ticked again meanwhile (woken by SIGHUP)"
is "$(log_count "thrillmon worker: waiting for CREATE EXTENSION thrillmon")" "1" "it says it waits once, not once per tick"

# ---------------------------------------------------------------------------------------------
# 2. CREATE EXTENSION: in the same transaction (invisible to the worker until commit) check the
# waiting state and health, and register the SQL collectors, so they exist from the first run.
# ---------------------------------------------------------------------------------------------
psql -X -q -At -v ON_ERROR_STOP=1 > "$work/create.txt" 2>&1 <<'SQL'
BEGIN;
CREATE EXTENSION thrillmon;
SELECT 'state=' || state || '/' || (pid IS NOT NULL) FROM thrillmon.worker_status();
SELECT 'health=' || (h->>'status') || '/' || (h->'reasons'->>0) FROM thrillmon.health_check() h;
SELECT thrillmon.register_collector('good', 'SELECT 42', 'custom', '1 second');
SELECT thrillmon.register_collector('div_zero', 'SELECT 1/(count(*)-count(*)) FROM pg_class');
SELECT thrillmon.register_collector('slow', 'SELECT 1 FROM pg_sleep(3)');
UPDATE thrillmon.metric_collectors SET statement_timeout = '500 ms' WHERE name = 'slow';
-- The wrong shape is refused at registration; a superuser's direct INSERT is not re-checked.
INSERT INTO thrillmon.metric_collectors (name, query) VALUES ('bad_shape', $$SELECT 'a'::text, 'b'::text$$);
COMMIT;
SQL
ok $? "CREATE EXTENSION thrillmon and four SQL collectors, in one transaction"
is "$(sed -n 's/^state=//p' "$work/create.txt")" "waiting for extension/true" \
	"worker_status() before the commit: alive, waiting for extension"
is "$(sed -n 's/^health=//p' "$work/create.txt")" "failing/collection stale: no successful collection yet" \
	"health_check() before any collection: failing, stale"
like "$(sql_error "SELECT thrillmon.register_collector('shape2', \$\$SELECT 'a'::text, 'b'::text\$\$)")" \
	"^42804: thrillmon: a collector query must return one numeric column" "register_collector() refuses a query of the wrong shape"

# The worker notices the extension at its next tick (at most its 10 s idle sleep).
wait_for 15 "SELECT count(*) >= 5 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'"
ok $? "collect runs appear in job_runs after CREATE EXTENSION"
sleep 0.3
is "$(log_count "thrillmon worker: serving this database")" "1" "it logs once that it serves the database"
is "$(sql "SELECT count(*) || '/' || string_agg(DISTINCT status, ',') || '/' || string_agg(DISTINCT target, ',') FROM thrillmon.job_runs
	WHERE job = 'maintenance' AND date_trunc('hour', started_at) = (SELECT date_trunc('hour', min(started_at)) FROM thrillmon.job_runs)")" \
	"1/succeeded/partitions" "one partition maintenance run at start"
is "$(sql "SELECT jsonb_array_length(details->'created') >= 9 FROM thrillmon.job_runs WHERE job = 'maintenance' ORDER BY run_id LIMIT 1")" \
	"t" "it created the daily partitions (yesterday to 7 days ahead)"
is "$(sql "SELECT count(*) || '/' || string_agg(status || ':' || target, ',') FROM thrillmon.job_runs WHERE job = 'retention'")" \
	"1/succeeded:all" "one full retention run at start (a fresh install runs it at once)"
is "$(sql "SELECT string_agg(DISTINCT status || ':' || target || ':' || run_by, ',') FROM thrillmon.job_runs WHERE job = 'collect'")" \
	"succeeded:scheduled:postgres" "every collect run is 'scheduled' and succeeded"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'
	AND (finished_at IS NULL OR rows_affected IS NULL OR details->>'at' IS NULL)")" "0" "succeeded runs have finished_at, rows_affected and their slot"

builtins="active_incidents,cache_hit_rate,database_connections,database_size_bytes,dead_tuple_ratio,deadlocks,lock_waits,longest_transaction_seconds,rollback_rate,transactions_per_second,unresolved_alerts,wal_bytes_per_second"
is "$(sql "SELECT string_agg(metric_name, ',' ORDER BY metric_name) FROM (SELECT metric_name FROM thrillmon.metric_time_series
	WHERE metadata IS NULL GROUP BY metric_name HAVING count(DISTINCT \"timestamp\") >= 3) m")" "$builtins" \
	"every built-in metric is recorded, repeatedly"
is "$(sql "SELECT (SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'database_connections')
	- (SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'transactions_per_second')")" "1" \
	"interval rates (transactions_per_second) appear from the second collection on"
is "$(sql "SELECT min(\"timestamp\") FILTER (WHERE metric_name = 'cache_hit_rate') > min(\"timestamp\") FILTER (WHERE metric_name = 'database_connections')
	FROM thrillmon.metric_time_series")" "t" "cache_hit_rate is not recorded at the first collection"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" <> date_trunc('second', \"timestamp\")")" "0" \
	"every point is stamped with a whole second (the slot)"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs j WHERE job = 'collect' AND NOT EXISTS (SELECT 1 FROM thrillmon.metric_time_series m
	WHERE m.metric_name = 'database_connections' AND m.\"timestamp\" = (j.details->>'at')::timestamptz)")" "0" \
	"each collect run's points carry its slot"
is "$(sql "SELECT min(gap) || '/' || bool_and(gap = date_trunc('second', gap)) FROM (SELECT \"timestamp\" - lag(\"timestamp\") OVER (ORDER BY \"timestamp\") gap
	FROM thrillmon.metric_time_series WHERE metric_name = 'database_connections') g")" "00:00:01/true" \
	"slots are 1 s apart (collect_interval = 1)"
is "$(sql "SELECT (w.pid = ($worker_pid_sql)) || '/' || (w.state IN ('idle', 'running')) || '/' || w.database || '/' || (w.jobs_run >= 5)
	|| '/' || w.jobs_failed || '/' || (w.last_tick_at > now() - interval '3 s') || '/' || (w.started_at < now()) FROM thrillmon.worker_status() w")" \
	"true/true/tm/true/0/true/true" "worker_status(): its pid, idle or running, database, jobs counted, recent tick"

# A retention run that failed or was cut short (here: marked so) is not a day's run: the worker
# tries again once 15 minutes have passed since it started, and not before.
sql "UPDATE thrillmon.job_runs SET status = 'failed', error = 'interrupted: server or worker restarted',
	started_at = now() - interval '1 minute', finished_at = now() - interval '1 minute' WHERE job = 'retention'" >/dev/null
sleep 3
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'retention'")" "1" \
	"after an interrupted retention run 1 minute ago: no retry yet (15 minutes' backoff)"
sql "UPDATE thrillmon.job_runs SET started_at = now() - interval '16 minutes', finished_at = now() - interval '16 minutes'
	WHERE job = 'retention'" >/dev/null
wait_for 10 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'retention' AND status = 'succeeded')"
ok $? "16 minutes after it: the worker runs the day's retention again, and it succeeds"

# ---------------------------------------------------------------------------------------------
# 6. SQL collectors: each failing one records its own error; 'good' and the job go on.
# ---------------------------------------------------------------------------------------------
wait_for 5 "SELECT count(*) = 3 FROM thrillmon.metric_collectors WHERE last_error IS NOT NULL"
ok $? "the three failing collectors ran"
is "$(sql "SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'div_zero'")" "division by zero" \
	"a collector failing at run time records its error"
is "$(sql "SELECT last_error || '/' || (last_duration_ms BETWEEN 400 AND 2900) FROM thrillmon.metric_collectors WHERE name = 'slow'")" \
	"thrillmon: collector query timed out after 500 ms/true" "a collector past its statement_timeout is cut off at it and says so"
like "$(sql "SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'bad_shape'")" \
	"^thrillmon: a collector query must return one numeric column.*it returns \(text, text\)$" \
	"a collector of the wrong shape (direct superuser INSERT) records a shape error"
is "$(sql "SELECT (last_error IS NULL) || '/' || (last_success_at IS NOT NULL) FROM thrillmon.metric_collectors WHERE name = 'good'")" \
	"true/true" "the good collector has no error"
is "$(sql "SELECT (SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded')
	- (SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'good' AND metric_value = 42 AND metadata->>'collector' = 'good')")" \
	"0" "the good collector recorded 42 at every collect run (interval 1 s)"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name IN ('div_zero', 'slow', 'bad_shape')")" "0" \
	"the failing collectors recorded nothing"
is "$(sql "SELECT string_agg(DISTINCT status, ',') || '/' || (SELECT details->>'collectors_failed' FROM thrillmon.job_runs WHERE job = 'collect' ORDER BY run_id LIMIT 1)
	FROM thrillmon.job_runs WHERE job = 'collect'")" "succeeded/3" "collect runs stay 'succeeded' (the first one counted 3 failed collectors)"
like "$(sql "SELECT h->>'status' || ' ' || (h->'reasons')::text FROM thrillmon.health_check() h")" \
	'^degraded .*collector div_zero failing: division by zero' "health_check() while collecting with failing collectors: degraded, naming them"

# ---------------------------------------------------------------------------------------------
# 7. Privileges: a collector runs with its owner's rights.
# ---------------------------------------------------------------------------------------------
sql "CREATE ROLE tm_admin LOGIN; GRANT thrillmon_admin TO tm_admin"
like "$(PGUSER=tm_admin sql_error "SELECT thrillmon.register_collector('authid', 'SELECT count(*) FROM pg_authid')")" \
	"^42501: permission denied for table pg_authid" "an admin (not superuser) cannot register a collector reading pg_authid"
is "$(sql "SELECT count(*) FROM thrillmon.metric_collectors WHERE name = 'authid'")" "0" "nothing was registered"
PGUSER=tm_admin sql "SELECT thrillmon.register_collector('admin_c', 'SELECT 7', 'custom', '1 second')" >/dev/null
wait_for 5 "SELECT EXISTS (SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name = 'admin_c' AND metric_value = 7)"
ok $? "the admin's own collector runs"
sql "UPDATE thrillmon.metric_collectors SET query = 'SELECT count(*) FROM pg_authid' WHERE name = 'admin_c'"
is "$(sql "SELECT owner_role FROM thrillmon.metric_collectors WHERE name = 'admin_c'")" "tm_admin" \
	"a superuser's UPDATE of the query keeps the owner"
wait_for 5 "SELECT last_error IS NOT NULL FROM thrillmon.metric_collectors WHERE name = 'admin_c'"
is "$(sql "SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'admin_c'")" "permission denied for table pg_authid" \
	"run by the worker, it reads pg_authid as its owner: permission denied"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'admin_c' AND metric_value <> 7")" "0" \
	"no value read from pg_authid was recorded"

# ---------------------------------------------------------------------------------------------
# 2b. SIGHUP: a new interval applies live, on its own grid.
# ---------------------------------------------------------------------------------------------
sql "ALTER SYSTEM SET thrillmon.collect_interval = 3" && sql "SELECT pg_reload_conf()" >/dev/null
sleep 1.5 # the worker reloads at once (SIGHUP sets its latch); a run already under way may finish
mark=$(last_run)
wait_for 14 "SELECT count(*) >= 3 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status = 'succeeded'"
ok $? "collection goes on after the reload"
is "$(sql "SELECT string_agg(DISTINCT (EXTRACT(EPOCH FROM (details->>'at')::timestamptz)::bigint % 3)::text, ',') FROM thrillmon.job_runs
	WHERE job = 'collect' AND run_id > $mark")" "0" "with collect_interval = 3 the slots are multiples of 3 s since the epoch"
is "$(sql "SELECT string_agg(DISTINCT gap::text, ',') FROM (SELECT (details->>'at')::timestamptz - lag((details->>'at')::timestamptz) OVER (ORDER BY run_id) gap
	FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark) g WHERE gap IS NOT NULL")" "00:00:03" "consecutive slots are 3 s apart"
is "$(sql "SELECT bool_and(gap BETWEEN 2 AND 4) FROM (SELECT EXTRACT(EPOCH FROM started_at - lag(started_at) OVER (ORDER BY run_id)) gap
	FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark) g WHERE gap IS NOT NULL")" "t" "and the runs start about 3 s apart"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series m JOIN thrillmon.job_runs j ON m.\"timestamp\" = (j.details->>'at')::timestamptz
	WHERE j.run_id > $mark AND EXTRACT(EPOCH FROM m.\"timestamp\")::bigint % 3 <> 0")" "0" "their points are stamped on the 3 s grid"
sql "ALTER SYSTEM SET thrillmon.collect_interval = 1" && sql "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
mark=$(last_run)
wait_for 5 "SELECT count(*) >= 2 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark"
is "$(sql "SELECT max((details->>'at')::timestamptz) - min((details->>'at')::timestamptz) FROM (SELECT details FROM thrillmon.job_runs
	WHERE job = 'collect' AND run_id > $mark ORDER BY run_id LIMIT 2) x")" "00:00:01" "back to 1 s after the next reload"

# ---------------------------------------------------------------------------------------------
# 3. SIGTERM: the postmaster starts the worker again (bgw_restart_time 10 s); meanwhile
# health_check() says it is not running.
# ---------------------------------------------------------------------------------------------
old_pid=$(sql "SELECT pid FROM thrillmon.worker_status()")
is "$(sql "SELECT pg_terminate_backend($old_pid)")" "t" "SIGTERM to the worker"
wait_for 5 "SELECT pid IS NULL FROM thrillmon.worker_status()"
ok $? "worker_status().pid is NULL once it has exited"
terminated_at=$(now_ms)
is "$(sql "SELECT h->>'status' || '/' || (h->'reasons'->>0) || '/' || (h->'worker'->>'state') FROM thrillmon.health_check() h")" \
	"failing/worker not running (not running)/not running" "health_check() while the worker is down: failing, worker not running"
wait_for 20 "SELECT EXISTS ($worker_pid_sql AND pid <> $old_pid)"
ok $? "a new worker starts within 20 s"
echo "# restarted after $(( ($(now_ms) - terminated_at) / 1000 )) s"
new_pid=$(sql "$worker_pid_sql")
is "$(sql "SELECT pid FROM thrillmon.worker_status()")" "$new_pid" "worker_status() shows the new pid"
mark=$(last_run)
wait_for 5 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status = 'succeeded')"
ok $? "collection resumes"
is "$(log_count "background worker \"thrillmon collector\" \(PID $old_pid\) exited with exit code 1")" "1" \
	"the postmaster saw the terminated worker exit with code 1 (restartable)"
like "$(sql "SELECT h->>'status' FROM thrillmon.health_check() h")" "^(ok|degraded)$" "health_check() is no longer failing"

# ---------------------------------------------------------------------------------------------
# 4. Crash: pg_ctl restart -m immediate with a run left 'running'.
# ---------------------------------------------------------------------------------------------
# A run left 'running' by hand, and a real one: a collector sleeping 3 s holds the worker inside
# a collect run when the server goes down.
crashed=$(sql "INSERT INTO thrillmon.job_runs (job, target, status) VALUES ('collect', 'crash-test', 'running') RETURNING run_id")
sql "SELECT thrillmon.register_collector('sleepy', 'SELECT 1 FROM pg_sleep(3)', 'custom', '1 second')" >/dev/null
wait_for 12 "SELECT wait_event = 'PgSleep' AND now() - query_start < interval '1 s' FROM pg_stat_activity WHERE pid = ($worker_pid_sql)"
ok $? "the worker is inside a collect run (in the sleeping collector)"
running=$(sql "SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM thrillmon.job_runs WHERE status = 'running'")
pg_ctl -m immediate -w -t 60 restart >/dev/null
ok $? "pg_ctl restart -m immediate"
is "$(sql "SELECT count(*) || '/' || count(*) FILTER (WHERE run_id = $crashed) || '/' || count(*) FILTER (WHERE target = 'scheduled')
	FROM thrillmon.job_runs WHERE run_id IN ($running)")" "2/1/1" \
	"two runs were 'running' at the crash: the inserted one and the worker's"
sql "SELECT thrillmon.unregister_collector('sleepy')" >/dev/null
pm_pid=$(head -1 "$data/postmaster.pid")
pm_start=$(sql "SELECT pg_postmaster_start_time()")
wait_for 15 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > ${running##*,} AND status = 'succeeded')"
ok $? "collection resumes after the crash restart"
is "$(sql "SELECT string_agg(DISTINCT status || '/' || error || '/' || (finished_at IS NOT NULL), ',') FROM thrillmon.job_runs WHERE run_id IN ($running)")" \
	"failed/interrupted: server or worker restarted/true" "both runs left 'running' are marked failed, interrupted"
last_before=${running##*,}
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE status = 'running' AND run_id <= $last_before")" "0" \
	"no run from before the restart is still 'running'"
is "$(sql "SELECT job || '/' || status FROM thrillmon.job_runs WHERE run_id > $last_before ORDER BY run_id LIMIT 1")" "maintenance/succeeded" \
	"partition maintenance runs first at start"

# ---------------------------------------------------------------------------------------------
# 8/9. thrillmon.enabled and thrillmon.scheduler stop and resume the schedule; health_check()
# does not call a deliberately stopped worker missing.
# ---------------------------------------------------------------------------------------------
episode=0
for setting in "enabled = off" "scheduler = 'off'"; do
	name=${setting%% *}
	episode=$((episode + 1))
	sql "ALTER SYSTEM SET thrillmon.$setting" && sql "SELECT pg_reload_conf()" >/dev/null
	wait_for 5 "SELECT state = 'disabled' FROM thrillmon.worker_status()"
	ok $? "thrillmon.$setting: worker_status().state = 'disabled'"
	wait_log 2 "thrillmon worker: internal scheduling is off" $episode
	is "$(log_count "thrillmon worker: internal scheduling is off")" "$episode" \
		"thrillmon.$setting: the worker logs that its schedule is off (once each time it is turned off)"
	mark=$(last_run)
	sleep 3
	is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark")" "0" \
		"thrillmon.$setting: no collect run for 3 s"
	is "$(sql "SELECT h->>'status' || '/' || (NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(h->'reasons') r WHERE r NOT LIKE 'collector %'))
		|| '/' || (h->'worker'->>'pid' IS NOT NULL) FROM thrillmon.health_check() h")" "degraded/true/true" \
		"thrillmon.$setting: health_check() is degraded by the collectors only, not failing"
	sql "ALTER SYSTEM RESET thrillmon.$name" && sql "SELECT pg_reload_conf()" >/dev/null
	wait_for 5 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $mark AND status = 'succeeded')"
	ok $? "thrillmon.$name back to its default: collection resumes"
done
is "$(sql "SELECT state FROM thrillmon.worker_status()" | sed 's/running/idle/')" "idle" "worker_status().state is idle or running again"

# ---------------------------------------------------------------------------------------------
# 5. DROP EXTENSION, CREATE EXTENSION: back to waiting, then serving the new extension.
# ---------------------------------------------------------------------------------------------
waiting_before=$(log_count "thrillmon worker: waiting for CREATE EXTENSION thrillmon")
sql "DROP EXTENSION thrillmon"
ok $? "DROP EXTENSION thrillmon while the worker collects"
wait_log 10 "thrillmon worker: waiting for CREATE EXTENSION thrillmon" $((waiting_before + 1))
ok $? "the worker goes back to waiting for CREATE EXTENSION"
wait_for 5 "SELECT EXISTS ($worker_pid_sql)"
ok $? "the worker is still alive without the extension"
psql -X -q -At -v ON_ERROR_STOP=1 > "$work/recreate.txt" 2>&1 <<'SQL'
BEGIN;
CREATE EXTENSION thrillmon;
SELECT 'state=' || state FROM thrillmon.worker_status();
COMMIT;
SQL
ok $? "CREATE EXTENSION thrillmon again"
is "$(sed -n 's/^state=//p' "$work/recreate.txt")" "waiting for extension" "worker_status() in the creating transaction: waiting"
wait_for 15 "SELECT count(*) >= 2 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'"
ok $? "collection resumes into the new extension's job_runs"
is "$(sql "SELECT string_agg(DISTINCT job, ',' ORDER BY job) FROM thrillmon.job_runs WHERE status = 'succeeded'")" \
	"collect,maintenance,retention" "maintenance and retention ran again for the new extension (a fresh install)"
is "$(sql "SELECT count(*) > 0 FROM thrillmon.metric_time_series WHERE metric_name = 'database_connections'")" "t" \
	"built-in metrics are recorded again"

# ---------------------------------------------------------------------------------------------
# 10. pg_cron.
# ---------------------------------------------------------------------------------------------
sql "CREATE DATABASE other" && PGDATABASE=other sql "CREATE EXTENSION thrillmon"
is "$(PGDATABASE=other sql_error "SELECT * FROM thrillmon.schedule_with_pg_cron()")" \
	'55000: thrillmon: pg_cron is not installed in database "other"' "schedule_with_pg_cron() without pg_cron: 55000"
is "$(PGDATABASE=other sql_error "SELECT thrillmon.unschedule_pg_cron()")" \
	'55000: thrillmon: pg_cron is not installed in database "other"' "unschedule_pg_cron() without pg_cron: 55000"

sql "CREATE EXTENSION pg_cron" && sql "SELECT cron.schedule('mine', '0 0 1 1 *', 'SELECT 1')" >/dev/null
ok $? "CREATE EXTENSION pg_cron; a job of our own"
before_cron=$(last_run)
is "$(sql "SELECT string_agg(job || '=' || jobname, ',' ORDER BY job) FROM thrillmon.schedule_with_pg_cron()")" \
	"collect=thrillmon-collect,detect=thrillmon-detect,maintenance=thrillmon-maintenance,retention=thrillmon-retention" "schedule_with_pg_cron() returns 4 jobs"
scheduled_at=$(now_ms)
is "$(sql "SELECT count(*) FROM thrillmon.schedule_with_pg_cron()")" "4" "calling it again returns the same 4"
is "$(sql "SELECT string_agg(jobname || ' ' || schedule || ' ' || command, '; ' ORDER BY jobname) FROM cron.job")" \
	"mine 0 0 1 1 * SELECT 1; thrillmon-collect * * * * * SELECT thrillmon.collect_metrics(true); thrillmon-detect */5 * * * * SELECT pg_catalog.count(*) FROM thrillmon.detect_anomalies(); thrillmon-maintenance 15 * * * * SELECT thrillmon.maintain_partitions(); thrillmon-retention 0 3 * * * SELECT thrillmon.run_data_retention_cleanup()" \
	"cron.job holds exactly the 4 thrillmon jobs (once) and ours"
sleep 1.5 # a run the worker had already decided on may still start
mark=$(last_run)
is "$(sql "SELECT state FROM thrillmon.worker_status()" | sed 's/running/idle/')" "idle" "the worker keeps running (only collect, detect, maintenance and retention went to pg_cron)"
echo "# waiting for pg_cron's next minute (up to 70 s)"
wait_for 70 "SELECT EXISTS (SELECT 1 FROM cron.job_run_details WHERE command = 'SELECT thrillmon.collect_metrics(true)' AND status = 'succeeded')"
ok $? "pg_cron ran 'SELECT thrillmon.collect_metrics(true)' successfully"
echo "# pg_cron ran it $(( ($(now_ms) - scheduled_at) / 1000 )) s after scheduling"
sql "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details ORDER BY runid" | sed 's/^/# cron: /'
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND target = 'scheduled' AND run_id > $mark")" "0" \
	"meanwhile the worker ran no collect of its own"
is "$(sql "SELECT count(*) > 0 FROM thrillmon.job_runs WHERE job = 'collect' AND target = 'due' AND status = 'succeeded' AND run_id > $before_cron")" "t" \
	"pg_cron's run is in job_runs (target 'due')"
like "$(sql "SELECT h->>'status' FROM thrillmon.health_check() h")" "^(ok|degraded)$" "health_check() with pg_cron collecting: not failing"
is "$(sql "SELECT thrillmon.unschedule_pg_cron()")" "4" "unschedule_pg_cron() returns 4"
is "$(sql "SELECT string_agg(jobname, ',') FROM cron.job")" "mine" "it removed exactly its jobs; ours stays"
is "$(sql "SELECT count(*) FROM thrillmon.pg_cron_jobs")" "0" "thrillmon.pg_cron_jobs is empty"
mark=$(last_run)
wait_for 5 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND target = 'scheduled' AND run_id > $mark AND status = 'succeeded')"
ok $? "the worker collects by itself again"

# ---------------------------------------------------------------------------------------------
# 11. The postmaster never went down.
# ---------------------------------------------------------------------------------------------
is "$(head -1 "$data/postmaster.pid")/$(sql "SELECT pg_postmaster_start_time()")" "$pm_pid/$pm_start" \
	"the postmaster is the one started at the last intentional restart"
is "$(log_count "terminated by signal|was terminated by exception|PANIC")" "0" "no process was terminated by a signal, no PANIC, in the whole log"
is "$(log_count "all server processes terminated; reinitializing")" "0" "no crash-and-restart cycle"

echo "# $(( ($(now_ms) - started) / 1000 )) s"
exit $((fails > 0))
