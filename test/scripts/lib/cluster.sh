# Sourced by the test scripts that need a cluster of their own (preload settings, restarts,
# crashes): a private temp directory, the cluster in it (run as the postgres OS user when we are
# root), a pg_ctl wrapper, a port, psql/poll/log helpers, the TAP helpers of tap.sh and a cleanup trap.
# Defines: PG_BINDIR work data log port as_pg pg_ctl sql sql_error now_ms wait_for log_count
# wait_log ok is like n fails cleanup cluster_init cluster_conf cluster_start; exports PGHOST PGPORT PGUSER PGDATABASE PGCONNECT_TIMEOUT
# PGOPTIONS. cluster_init [DB] makes the cluster (with database DB, made in single-user mode so a
# worker preloaded later finds it at once); the caller appends its settings to $data/postgresql.conf
# and starts it with pg_ctl.
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)

work=$(mktemp -d)
data=$work/data
log=$work/server.log
# Postgres refuses to run as root: then the cluster belongs to the postgres OS user.
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$work"
	as_pg() { (cd "$work" && runuser -u postgres -- "$@"); }
else
	as_pg() { (cd "$work" && "$@"); }
fi
pg_ctl() { as_pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" "$@"; }

source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
# Scripts may set cleanup_hook to a function run first (to stop background jobs of their own).
cleanup_hook=
cleanup() {
	[ -n "$cleanup_hook" ] && "$cleanup_hook"
	if [ "$fails" -gt 0 ] && [ -f "$log" ]; then
		echo "# server log (thrillmon and errors, last 40 lines):"
		grep -E "thrillmon|ERROR|FATAL|PANIC|terminated" "$log" | tail -40 | sed 's/^/#   /'
	fi
	[ -f "$data/postmaster.pid" ] && pg_ctl -m immediate -w stop >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The socket lives in our private directory and TCP is off, so no other cluster can clash with
# this port; pg_cron reaches the server through the same socket (cron.host).
port=$((5600 + $$ % 300))
unset PGSERVICE PGPASSWORD PGSSLMODE
export PGHOST=$work PGPORT=$port PGUSER=postgres PGDATABASE=tm PGCONNECT_TIMEOUT=5
# Every statement of ours is bounded too (a DROP EXTENSION stuck behind a lock must not hang CI).
export PGOPTIONS="-c statement_timeout=30s -c lock_timeout=20s"

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$@"; }
# The error of a statement expected to fail, with its SQLSTATE ("ERROR:  42501: ...").
sql_error() { psql -X -q -At -v VERBOSITY=verbose -c "$@" 2>&1 >/dev/null | sed -n 's/^[^:]*ERROR: *//p' | head -1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for SECONDS QUERY: polls (every 0.25 s) until QUERY returns true; fails after SECONDS.
wait_for() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(sql "$2" 2>/dev/null)" != t ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.25
	done
	return 0
}
log_count() { grep -c -E -- "$1" "$log"; }
# wait_log SECONDS PATTERN COUNT: until the server log has at least COUNT lines matching.
wait_log() {
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(log_count "$2")" -lt "$3" ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.25
	done
	return 0
}

# cluster_init [DB]: initdb, and database DB (default tm) made in single-user mode before the
# worker is preloaded, so that its first start finds it (a missing database costs a 10 s restart).
cluster_init() {
	as_pg "$PG_BINDIR/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$work/initdb.txt" 2>&1 \
		|| { sed 's/^/# /' "$work/initdb.txt"; echo "Bail out! initdb failed"; exit 1; }
	echo "CREATE DATABASE ${1:-tm}" | as_pg "$PG_BINDIR/postgres" --single -D "$data" postgres >/dev/null 2>&1
}
# cluster_conf [SETTING ...]: what every cluster of ours has in postgresql.conf (no TCP, the
# socket in our private directory, the worker serving tm, no fsync, the pid in log lines), then
# each SETTING as a line of its own.
cluster_conf() {
	cat >> "$data/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$work'
thrillmon.database = 'tm'
fsync = off
log_line_prefix = '%m [%p] '
EOF
	printf '%s\n' "$@" >> "$data/postgresql.conf"
}
# cluster_start: pg_ctl start, or bail out with the log's tail.
cluster_start() {
	pg_ctl -w -t 30 start >/dev/null || { tail -20 "$log" | sed 's/^/# /'; echo "Bail out! the cluster did not start"; exit 1; }
}
