#!/usr/bin/env bash
# search_path hijacking of what runs as a superuser without the caller choosing its SQL: the
# worker (connected as the bootstrap superuser to a database someone else may own) and the
# commands schedule_with_pg_cron() hands to pg_cron (run in that database by whoever scheduled
# them). The non-superuser owner of the worker's database sets a trap: look-alike operators and
# an aggregate, in a schema of its own, that make the owner superuser when a superuser calls
# them, and ALTER DATABASE ... SET search_path to put that schema first. Nothing thrillmon runs
# may resolve to the trap; the owner must stay what it was. This extends test/pgtap/search_path.sql
# (thrillmon's SQL functions called with a hostile search_path) to the processes thrillmon starts.
# Its own cluster (the worker must reconnect). Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/cluster.sh"

echo "1..12"
cluster_init tm
cluster_conf "shared_preload_libraries = 'thrillmon,pg_cron'" "thrillmon.collect_interval = 1" \
	"thrillmon.detect_interval = 2" "cron.database_name = 'tm'" "cron.host = '$work'"
cluster_start

worker_pid_sql="SELECT pid FROM pg_stat_activity WHERE backend_type = 'thrillmon collector' AND datname = 'tm'"
sql "CREATE ROLE owner LOGIN" >/dev/null
sql "ALTER DATABASE tm OWNER TO owner" >/dev/null
sql "CREATE EXTENSION thrillmon" >/dev/null
sql "CREATE EXTENSION pg_cron" >/dev/null
wait_for 20 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded')"
ok $? "precondition: the worker collects in tm"

# The trap, built by the owner alone. Each look-alike logs its call and tries to make the owner
# superuser (which succeeds only when a superuser runs it), then returns the genuine result, so a
# hijack shows without breaking what it hijacked.
psql -X -q -v ON_ERROR_STOP=1 -U owner > "$work/trap.txt" 2>&1 <<'SQL'
CREATE SCHEMA evil;
CREATE TABLE evil.calls (at timestamptz DEFAULT pg_catalog.clock_timestamp(), who name DEFAULT CURRENT_USER, what text);
GRANT INSERT ON evil.calls TO PUBLIC;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE FUNCTION evil.spring(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO evil.calls (what) VALUES (what);
	BEGIN
		EXECUTE 'ALTER ROLE owner SUPERUSER';
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
END
$$;
CREATE FUNCTION evil.name_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('name = name'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('text = text'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE FUNCTION evil.text_ne(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('text <> text'); RETURN $1 OPERATOR(pg_catalog.<>) $2; END $$;
CREATE FUNCTION evil.tstz_ge(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('timestamptz >= timestamptz'); RETURN $1 OPERATOR(pg_catalog.>=) $2; END $$;
CREATE FUNCTION evil.tstz_mi(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('timestamptz - interval'); RETURN $1 OPERATOR(pg_catalog.-) $2; END $$;
CREATE FUNCTION evil.count_sfunc(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('count(*)'); RETURN $1 OPERATOR(pg_catalog.+) 1; END $$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.name_eq);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_ne);
CREATE OPERATOR evil.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstz_ge);
CREATE OPERATOR evil.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = evil.tstz_mi);
-- (The final function runs even over no rows.)
CREATE FUNCTION evil.count_final(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.spring('count(*)'); RETURN $1; END $$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_sfunc, STYPE = bigint, INITCOND = '0', FINALFUNC = evil.count_final);
ALTER DATABASE tm SET search_path = evil, pg_catalog;
SQL
ok $? "the owner of tm (not a superuser) sets the trap and puts it first in tm's search_path"
sed 's/^/# /' "$work/trap.txt"
# From here on this script's own sessions resolve names in pg_catalog (a client's setting beats
# the database's); `as_tm` runs a statement the way any session of tm would, trap first.
tm_options=$PGOPTIONS
export PGOPTIONS="$PGOPTIONS -c search_path=pg_catalog"
as_tm() { PGOPTIONS="$tm_options" psql -X -q -At "$@"; }
# The trap works: a superuser session of tm that resolves names by that search_path springs it.
as_tm -c "SELECT count(*) FROM pg_class WHERE relname = 'pg_class'" >/dev/null
is "$(sql "SELECT pg_catalog.string_agg(DISTINCT what, ', ' ORDER BY what) FROM evil.calls")/$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'")" \
	"count(*), name = name/t" "precondition: the trap springs for a superuser that takes tm's search_path (= and count(*))"
sql "DELETE FROM evil.calls" >/dev/null
sql "ALTER ROLE owner NOSUPERUSER" >/dev/null

# The worker takes the database's settings when it connects: make it reconnect.
old_pid=$(sql "$worker_pid_sql")
mark=$(sql "SELECT coalesce(max(run_id), 0) FROM thrillmon.job_runs")
sql "SELECT pg_terminate_backend($old_pid)" >/dev/null
wait_for 30 "SELECT EXISTS ($worker_pid_sql AND pid <> $old_pid)"
ok $? "the worker reconnects to tm (new pid)"
wait_for 30 "SELECT count(*) >= 3 FROM thrillmon.job_runs WHERE run_id > $mark AND job = 'collect' AND status = 'succeeded'"
ok $? "after reconnecting it collects (three collections)"
wait_for 30 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE run_id > $mark AND job = 'detect' AND status = 'succeeded')"
ok $? "and detects"
is "$(as_tm -c "SHOW search_path")" "evil, pg_catalog" "precondition: sessions of tm still get the trap's search_path"
is "$(sql "SELECT coalesce(pg_catalog.string_agg(DISTINCT what, ', '), '') FROM evil.calls")" "" "the worker resolved nothing in the trap"
is "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'")" "f" "the owner of tm is still not a superuser"
is "$(sql "SELECT count(*) FROM thrillmon.job_runs WHERE run_id > $mark AND status = 'failed'")" "0" "and no job failed"

# pg_cron runs the commands schedule_with_pg_cron() registers in tm, as whoever scheduled them
# (here the superuser), with tm's search_path: each must resolve only pg_catalog's and thrillmon's.
sql "SELECT count(*) FROM thrillmon.schedule_with_pg_cron()" >/dev/null
sql "DELETE FROM evil.calls" >/dev/null
sql "SELECT command FROM cron.job WHERE jobname LIKE 'thrillmon-%' ORDER BY jobname" > "$work/commands.txt"
while read -r command; do
	as_tm -c "$command" >/dev/null 2>"$work/cron_err.txt" || sed 's/^/# /' "$work/cron_err.txt"
done < "$work/commands.txt"
is "$(wc -l < "$work/commands.txt")/$(sql "SELECT coalesce(pg_catalog.string_agg(DISTINCT what, ', '), '') FROM evil.calls")" "4/" \
	"the four pg_cron commands, run by a superuser with tm's search_path, resolved nothing in the trap"
is "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'")" "f" "the owner of tm is still not a superuser"
exit $((fails > 0))
