#!/usr/bin/env bash
# A collector's timeout cannot be escaped, nor can a collector leave anything behind in the worker:
# a collector that catches its cancel and returns is recorded as timed out; one that catches it and
# goes on (PL/pgSQL EXCEPTION WHEN query_canceled in a loop) has its session ended a second later
# and is disabled by the next collection, while the other collectors go on; a session advisory
# lock a collector takes is not left with the worker; a sub-millisecond statement_timeout (which
# armed no timer) is refused. Its own cluster (the worker is ended and restarted). Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

echo "1..14"
cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon'" "thrillmon.collect_interval = 1" "thrillmon.detect_interval = 3600"
cluster_start
worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND datname = 'tm'"

# The collectors belong to an admin who is not a superuser, with functions of its own.
psql -X -q -v ON_ERROR_STOP=1 > "$work/setup.txt" 2>&1 <<'SQL'
CREATE EXTENSION thrillmon;
CREATE ROLE app_admin LOGIN IN ROLE thrillmon_admin;
CREATE SCHEMA app AUTHORIZATION app_admin;
SET ROLE app_admin;
-- Catches its cancel, then returns a value as if nothing had happened.
CREATE FUNCTION app.catch_then_return() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		BEGIN
			PERFORM pg_catalog.pg_sleep(0.05);
		EXCEPTION WHEN query_canceled THEN
			RETURN 1;
		END;
	END LOOP;
END
$$;
-- Catches every cancel and never ends.
CREATE FUNCTION app.forever() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		BEGIN
			PERFORM pg_catalog.pg_sleep(0.05);
		EXCEPTION WHEN query_canceled THEN
			NULL;
		END;
	END LOOP;
END
$$;
SELECT thrillmon.register_collector('good', 'SELECT 7', 'custom', '1 second');
SELECT thrillmon.register_collector('catcher', 'SELECT app.catch_then_return()', 'custom', '1 second');
SELECT thrillmon.register_collector('locker', 'SELECT count(*) FROM (SELECT pg_catalog.pg_advisory_lock(4242)) x', 'custom', '1 second');
UPDATE thrillmon.metric_collectors SET statement_timeout = '200 ms' WHERE name = 'catcher';
RESET ROLE;
SQL
ok $? "an admin (not a superuser) registers its collectors" || sed 's/^/# /' "$work/setup.txt"
wait_for 20 "SELECT count(*) >= 3 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'"
ok $? "the worker collects"
is "$(sql "SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'catcher'")" "thrillmon: collector query timed out after 200 ms" \
	"a collector that catches its cancel and returns a value is timed out all the same"
is "$(sql "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'catcher'")" "0" "... and records nothing"
is "$(sql "SELECT count(*) > 0 FROM thrillmon.metric_time_series WHERE metric_name = 'locker'")" "t" \
	"precondition: the locking collector ran (and took pg_advisory_lock(4242))"
is "$(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = ($worker_pid_sql)")" "0" \
	"the worker holds no advisory lock a collector took"
is "$(sql_error "UPDATE thrillmon.metric_collectors SET statement_timeout = '0.4 ms' WHERE name = 'good'")" \
	'23514: new row for relation "metric_collectors" violates check constraint "statement_timeout_range"' \
	"a sub-millisecond statement_timeout is refused (it armed no timer)"

# The defiant one.
old_pid=$(sql "$worker_pid_sql")
mark=$(sql "SELECT max(run_id) FROM thrillmon.job_runs")
psql -X -q -v ON_ERROR_STOP=1 -c "SET ROLE app_admin" -c "SELECT thrillmon.register_collector('defiant', 'SELECT app.forever()', 'custom', '1 second')" \
	-c "UPDATE thrillmon.metric_collectors SET statement_timeout = '200 ms' WHERE name = 'defiant'" >/dev/null
wait_log 20 'collector "defiant" went on after its statement_timeout cancelled it' 1
ok $? "the collector that went on after its cancel had its session ended (the log says so)"
wait_for 30 "SELECT NOT enabled FROM thrillmon.metric_collectors WHERE name = 'defiant'"
ok $? "the next collection (the restarted worker's) disabled it"
is "$(sql "SELECT last_error FROM thrillmon.metric_collectors WHERE name = 'defiant'")" \
	"disabled by thrillmon: it went on after its statement_timeout cancelled it, so its session was ended; fix it, then set enabled = true" \
	"... and says why in last_error"
new_pid=$(sql "$worker_pid_sql")
is "$( [ -n "$new_pid" ] && [ "$new_pid" != "$old_pid" ] && echo restarted)" "restarted" "the worker was restarted by the postmaster (new pid)"
wait_for 20 "SELECT count(*) >= 3 FROM thrillmon.job_runs WHERE run_id > $mark AND job = 'collect' AND status = 'succeeded'
	AND started_at > (SELECT max(started_at) FROM thrillmon.job_runs WHERE run_id > $mark AND status = 'failed')"
ok $? "collection goes on after it"
is "$(sql "SELECT error FROM thrillmon.job_runs WHERE run_id > $mark AND status = 'failed' ORDER BY run_id LIMIT 1")" \
	"interrupted: server or worker restarted" "the collection that was cut short is recorded as interrupted"
like "$(sql "SELECT thrillmon.health_check()->>'reasons'")" "collector defiant disabled by thrillmon: it went on" \
	"health_check() names the disabled collector"
exit $((fails > 0))
