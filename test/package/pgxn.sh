#!/usr/bin/env bash
# The PGXN distribution: make dist's zip holds the repository under thrillmon-<version>/ with
# valid metadata and nothing built; Debian's pgxnclient installs it from the local zip
# (`pgxn install ./thrillmon-<version>.zip`: unpack, make, make install, its prereqs checked
# against this server); a cluster preloads what it installed and uses it; `pgxn uninstall`
# leaves nothing behind. Needs root or sudo (the server's directories). Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/scripts/lib/cluster.sh
source test/package/lib/installed.sh
cleanup_hook=pgxn_cleanup
pgxn_cleanup() {
	[ -f "$data/postmaster.pid" ] && pg_ctl -m immediate -w stop >/dev/null 2>&1
	[ -n "${zip:-}" ] && [ -f "$stash/list" ] && "${SUDO[@]}" pgxn uninstall "$zip" >/dev/null 2>&1
	restore_installed
}
echo "1..12"
current=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" thrillmon.control)

zip=$(bash scripts/dist.sh --out "$work" 2>"$work/dist.txt")
ok $? "make dist builds the distribution"; sed 's/^/# /' "$work/dist.txt"
is "$(basename "$zip")" "thrillmon-$current.zip" "it is named thrillmon-<version>.zip"
names=$(python3 -c "import zipfile,sys; print('\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))" "$zip")
is "$(echo "$names" | grep -vc "^thrillmon-$current/")" "0" "every file is under one top directory thrillmon-$current/"
is "$(echo "$names" | grep -cE "^thrillmon-$current/(META.json|thrillmon.control|Makefile|README.md|LICENSE)$")" "5" \
	"it holds META.json, the control file, the Makefile, the README and the license"
is "$(echo "$names" | grep -cE '\.(so|o|bc)$|/sql/thrillmon--'"$current"'\.sql$')" "0" "it holds nothing built"
mkdir -p "$work/unzipped"
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$zip" "$work/unzipped"
out=$(python3 scripts/pgxn_meta.py "$work/unzipped/thrillmon-$current/META.json")
is "$?/$out" "0/" "its META.json is valid PGXN metadata"

stash_installed
"${SUDO[@]}" env PATH="$PATH" pgxn install "$zip" > "$work/install.txt" 2>&1
rc=$?
ok $rc "pgxn install ./thrillmon-$current.zip"
[ $rc = 0 ] || tail -20 "$work/install.txt" | sed 's/^/# /'
like "$(server_files | tr '\n' ' ')" "thrillmon\.so .*thrillmon--$current\.sql .*thrillmon\.control" \
	"it installed the library, the install script and the control file into the server"

cluster_init
cluster_conf "shared_preload_libraries = 'thrillmon'"
cluster_start
sql "CREATE EXTENSION thrillmon" && sql "SELECT thrillmon.record_metric('pgxn_ok', 1)" >/dev/null
ok $? "a cluster preloading the PGXN install creates the extension and records a metric"
is "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" "$current" "at version $current"
wait_for 20 "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type LIKE 'thrillmon%'"
ok $? "its background worker runs"
pg_ctl -w stop >/dev/null

"${SUDO[@]}" env PATH="$PATH" pgxn uninstall "$zip" > "$work/uninstall.txt" 2>&1
is "$?/$(server_files)" "0/" "pgxn uninstall leaves no thrillmon file in the server's directories"
exit $((fails > 0))
