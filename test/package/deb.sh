#!/usr/bin/env bash
# The Debian package, installed and used as a DBA would: build postgresql-15-thrillmon (make
# deb's script) for this tree and for the previous release (from its tag), install the previous
# release with apt-get, run a cluster with it preloaded and data in it, upgrade the package under
# the running cluster, restart, ALTER EXTENSION thrillmon UPDATE (data kept, the same objects as
# a fresh install), run the pg_regress suite against the installed files (debian/tests, from a
# copy of the sources with nothing built), then apt-get remove and show that nothing of thrillmon
# is left in the server's directories. Needs root or sudo (apt-get). Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source test/scripts/lib/cluster.sh
source test/package/lib/installed.sh
cleanup_hook=package_cleanup
package_cleanup() {
	[ -f "$data/postmaster.pid" ] && pg_ctl -m immediate -w stop >/dev/null 2>&1
	if dpkg-query -W -f='${db:Status-Status}' postgresql-15-thrillmon 2>/dev/null | grep -q '^installed'; then
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq postgresql-15-thrillmon >/dev/null 2>&1
	fi
	restore_installed
}
apt() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq "$@" > "$work/apt.txt" 2>&1; local rc=$?; [ $rc = 0 ] || sed 's/^/# /' "$work/apt.txt" | tail -15; return $rc; }
pkg_status() { dpkg-query -W -f='${db:Status-Status} ${Version}' postgresql-15-thrillmon 2>/dev/null; }

echo "1..22"
current=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" thrillmon.control)
previous=$(previous_release)
ref=$(previous_release_ref "$previous")
[ -n "$ref" ] || { echo "Bail out! no commit of release $previous in this clone's history (a shallow clone?)"; exit 1; }
debs=$work/debs

# 1-3: both packages build, as make deb builds them.
bash scripts/deb.sh --out "$debs" > "$work/deb-current.txt" 2>&1
ok $? "the package of this tree ($current) builds (dpkg-buildpackage -us -uc -b)"
bash scripts/deb.sh --ref "$ref" --out "$debs" > "$work/deb-previous.txt" 2>&1
ok $? "the package of the previous release ($previous, $ref) builds"
new_deb=$(ls "$debs"/postgresql-15-thrillmon_"$current"-*_*.deb 2>/dev/null | head -1)
old_deb=$(ls "$debs"/postgresql-15-thrillmon_"$previous"-*_*.deb 2>/dev/null | head -1)
[ -n "$new_deb" ] && [ -n "$old_deb" ] || { tail -20 "$work"/deb-*.txt | sed 's/^/# /'; echo "Bail out! no .deb to install"; exit 1; }
# What the package ships: the library, bitcode, the control file and every released script.
listing=$(dpkg -c "$new_deb" | awk '{print $6}' | sed 's|^\.||')
want=$( (echo "$PKGLIBDIR/thrillmon.so"; echo "$SHAREDIR/extension/thrillmon.control"; \
	echo /usr/share/doc/postgresql-15-thrillmon/prometheus/postgres_exporter.yaml; \
	for f in sql/thrillmon--*.sql; do echo "$SHAREDIR/extension/$(basename "$f")"; done) | sort -u)
missing=$(comm -23 <(echo "$want") <(echo "$listing" | sort -u))
is "$missing" "" "the package holds thrillmon.so, the control file, every install and upgrade script, and the exporter queries (uncompressed)"

stash_installed
is "$(server_files)" "" "before: no thrillmon file in the server's directories (this tree's make install set aside)"

# 5-9: the previous release, installed and used.
apt install "$old_deb"
ok $? "apt-get install ./$(basename "$old_deb")"
like "$(pkg_status)" "^installed $previous-" "postgresql-15-thrillmon $previous is installed"
cluster_init
cluster_conf "shared_preload_libraries = 'thrillmon'"
cluster_start
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION thrillmon;
SELECT thrillmon.maintain_partitions(1);
SELECT thrillmon.record_metric('pkg_kept', g, ts => now() - g * interval '1 minute') FROM generate_series(1, 200) g;
INSERT INTO thrillmon.incidents (title, severity) VALUES ('before the package upgrade', 'low');
SQL
ok $? "a cluster with thrillmon $previous preloaded takes data"
is "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" "$previous" "CREATE EXTENSION made $previous"
kept="SELECT count(*) || '/' || sum(metric_value) || '/' || (SELECT count(*) FROM thrillmon.incidents) FROM thrillmon.metric_time_series WHERE metric_name = 'pkg_kept'"
is "$(sql "$kept")" "200/20100/1" "its data is there"

# 10-13: the package upgraded under the running server, which goes on serving the old library
# until it restarts (dpkg replaces files by rename; a preloaded library stays mapped).
apt install "$new_deb"
ok $? "apt-get install ./$(basename "$new_deb") upgrades the package under the running cluster"
like "$(pkg_status)" "^installed $current-" "postgresql-15-thrillmon $current is installed"
is "$(sql "$kept")" "200/20100/1" "the running cluster still serves its data"
pg_ctl -w -t 30 restart >/dev/null
ok $? "the cluster restarts on the new library"

# 14-17: the schema follows with ALTER EXTENSION, and equals a fresh install.
sql "ALTER EXTENSION thrillmon UPDATE"
ok $? "ALTER EXTENSION thrillmon UPDATE after the package upgrade"
is "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" "$current" "the extension is at $current"
is "$(sql "$kept")" "200/20100/1" "the data is kept through the package and extension upgrades"
sql "CREATE DATABASE tm_fresh" && psql -X -q -d tm_fresh -c "CREATE EXTENSION thrillmon"
psql -X -q -At -d tm -c "$(cat test/scripts/catalog_fingerprint.sql)" > "$work/up.cat"
psql -X -q -At -d tm_fresh -c "$(cat test/scripts/catalog_fingerprint.sql)" > "$work/fresh.cat"
diff -u "$work/fresh.cat" "$work/up.cat" > "$work/catalog.diff"; same=$?
[ "$(wc -l < "$work/fresh.cat")" -gt 100 ] || same="empty fingerprint"
is "$same" "0" "every extension object is defined as in a fresh install of the package"
head -20 "$work/catalog.diff" | sed 's/^/# /'
pg_ctl -w stop >/dev/null

# 18-19: the pg_regress suite against the installed files: a copy of the sources with nothing
# built in it, run by the package's own autopkgtest script.
src=$work/src/thrillmon-$current
export_tree "$src"
is "$(find "$src" -name '*.so' -o -name '*.o' -o -name '*.bc' | wc -l)" "0" "the suite's copy of the sources holds nothing built"
(cd "$src" && sh debian/tests/installcheck) > "$work/installcheck.txt" 2>&1
rc=$?
passed=$(grep -cE '(^ok|\.\.\. ok)' "$work/installcheck.txt")
suite=$(sed -n 's/^REGRESS *= *//p' Makefile | wc -w)
[ $rc = 0 ] || tail -40 "$work/installcheck.txt" | sed 's/^/# /'
is "$rc/$passed" "0/$suite" "debian/tests/installcheck: the pg_regress suite passes against the installed package"

# 20-22: removed, nothing left behind.
apt remove postgresql-15-thrillmon
ok $? "apt-get remove postgresql-15-thrillmon"
is "$(server_files)" "" "after: no thrillmon file left in the server's directories"
left=$(echo "$listing" | grep -v '/$' | while read -r f; do [ -e "$f" ] && echo "$f"; done)
is "$left" "" "no file the package shipped is left anywhere"
exit $((fails > 0))
