# Sourced by the Citus tests: a loopback Citus cluster of a coordinator and two workers, each its
# own data directory and port on 127.0.0.1, started as the postgres OS user when we are root.
# Builds Citus first (../shared/vendor/citus/build.sh, or CITUS_VENDOR) when it is not installed.
# Defines: PG_BINDIR work cport wport1 wport2 node_dir node_log as_pg citus_ensure citus_start
# citus_stop_node citus_start_node at (psql on a node: at PORT SQL) cat_error (its error), the TAP
# helpers of tap.sh and a cleanup trap; exports PGHOST PGUSER PGDATABASE PGCONNECT_TIMEOUT PGOPTIONS.
PG_BINDIR=$(${PG_CONFIG:-pg_config} --bindir)
here_citus=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CITUS_VENDOR=${CITUS_VENDOR:-$here_citus/../../../../shared/vendor/citus}

work=$(mktemp -d)
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$work"
	as_pg() { (cd "$work" && runuser -u postgres -- "$@"); }
else
	as_pg() { (cd "$work" && "$@"); }
fi
source "$here_citus/tap.sh"

# Three ports side by side, away from the single-node tests' 5600-5899.
cport=$((6000 + ($$ % 300) * 3))
wport1=$((cport + 1))
wport2=$((cport + 2))
node_dir() { echo "$work/n$1"; }
node_log() { echo "$work/n$1.log"; }

unset PGSERVICE PGPASSWORD PGSSLMODE
export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=tm PGCONNECT_TIMEOUT=5
export PGOPTIONS="-c statement_timeout=60s -c lock_timeout=30s"
at() { local p=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -p "$p" -c "$@"; }
at_error() { local p=$1; shift; psql -X -q -At -v VERBOSITY=verbose -p "$p" -c "$@" 2>&1 >/dev/null | sed -n 's/^[^:]*ERROR: *//p' | head -1; }

cleanup_hook=
cleanup() {
	[ -n "$cleanup_hook" ] && "$cleanup_hook"
	for p in $cport $wport1 $wport2; do
		if [ "$fails" -gt 0 ] && [ -f "$(node_log $p)" ]; then
			echo "# node $p log (its errors and warnings, most frequent first):"
			grep -E "ERROR|FATAL|PANIC|WARNING|terminated" "$(node_log $p)" | sort | uniq -c | sort -rn | head -20 | sed 's/^/#   /'
		fi
		[ -f "$(node_dir $p)/postmaster.pid" ] && as_pg "$PG_BINDIR/pg_ctl" -D "$(node_dir $p)" -m immediate -w stop >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# citus_ensure: Citus 13.2 installed in this server, built from the vendored source if it is not.
citus_ensure() {
	local sharedir
	sharedir=$("${PG_CONFIG:-pg_config}" --sharedir)
	if grep -q "default_version = '13.2-1'" "$sharedir/extension/citus.control" 2>/dev/null; then return 0; fi
	if [ ! -f "$CITUS_VENDOR/build.sh" ]; then
		echo "Bail out! Citus is not installed and its source is not at $CITUS_VENDOR (set CITUS_VENDOR)"
		exit 1
	fi
	PG_CONFIG=${PG_CONFIG:-pg_config} bash "$CITUS_VENDOR/build.sh" >"$work/citus-build.txt" 2>&1 \
		|| { tail -20 "$work/citus-build.txt" | sed 's/^/# /'; echo "Bail out! Citus did not build"; exit 1; }
}

citus_start_node() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$(node_dir "$1")" -l "$(node_log "$1")" -w -t 60 start >/dev/null \
		|| { tail -20 "$(node_log "$1")" | sed 's/^/# /'; echo "Bail out! node $1 did not start"; exit 1; }
}
# citus_stop_node PORT [MODE]: fast by default; immediate to play a node that dies.
citus_stop_node() { as_pg "$PG_BINDIR/pg_ctl" -D "$(node_dir "$1")" -m "${2:-fast}" -w stop >/dev/null; }

# citus_start [SETTING ...]: make and start the three nodes (each with database tm and Citus in
# it), register the coordinator and the workers. Each SETTING goes into every node's
# postgresql.conf. thrillmon is preloaded on every node, the natural configuration.
citus_start() {
	local p
	for p in $cport $wport1 $wport2; do
		as_pg "$PG_BINDIR/initdb" -D "$(node_dir $p)" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$work/initdb-$p.txt" 2>&1 \
			|| { sed 's/^/# /' "$work/initdb-$p.txt"; echo "Bail out! initdb failed"; exit 1; }
		echo "CREATE DATABASE tm" | as_pg "$PG_BINDIR/postgres" --single -D "$(node_dir $p)" postgres >/dev/null 2>&1
		cat >>"$(node_dir $p)/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = '$work'
shared_preload_libraries = 'citus,thrillmon'
thrillmon.database = 'tm'
fsync = off
max_locks_per_transaction = 256
log_line_prefix = '%m [%p] '
citus.log_remote_commands = off
EOF
		printf '%s\n' "$@" >>"$(node_dir $p)/postgresql.conf"
		citus_start_node $p
		at $p "CREATE EXTENSION citus" || { echo "Bail out! CREATE EXTENSION citus failed on $p"; exit 1; }
	done
	at $cport "SELECT citus_set_coordinator_host('127.0.0.1', $cport)" >/dev/null
	at $cport "SELECT citus_add_node('127.0.0.1', $wport1)" >/dev/null
	at $cport "SELECT citus_add_node('127.0.0.1', $wport2)" >/dev/null
}
