#!/usr/bin/env bash
# The upgrade path: install every released version (its install script and the frozen upgrades
# after it), ALTER EXTENSION thrillmon UPDATE, and compare with a fresh install of the current
# version, which runs only the script built from sql/source/: two different paths that must
# meet. Same schema (pg_dump --schema-only, no differences), every extension object defined
# alike (catalog_fingerprint.sql), the same extension members, data and configuration kept. A
# last check makes sure the comparison would see a difference. Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
current=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" thrillmon.control)
# Every released version but the current one: the frozen install script and each upgrade's source.
released=$( (ls sql/thrillmon--*.sql | sed -n 's|sql/thrillmon--\([0-9.]*\)\.sql|\1|p'; \
	ls sql/thrillmon--*--*.sql | sed -n 's|sql/thrillmon--\([0-9.]*\)--[0-9.]*\.sql|\1|p') | sort -uV | grep -vx "$current")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source test/scripts/lib/tap.sh # (the working directory is the repository root, see above)
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

count=$(echo "$released" | wc -w)
echo "1..$((count * 8 + 1))"
for old in $released; do
	up=thrillmon_up_${old//./_}
	fresh=thrillmon_fresh
	for d in $up $fresh; do psql -X -q -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null 2>&1; done

	# The old version, used: partitions, metrics, an edited policy and config, an incident.
	psql -X -q -v ON_ERROR_STOP=1 -d $up >/dev/null <<SQL
CREATE EXTENSION thrillmon VERSION '$old';
SELECT thrillmon.maintain_partitions(1);
SELECT thrillmon.record_metric('kept', g, ts => now() - g * interval '1 minute') FROM generate_series(1, 50) g;
-- A day backfilled after its partition was due: maintain_partitions() builds that partition
-- standalone and attaches it (a different path for its constraints and indexes).
SELECT thrillmon.record_metric('backfilled', 1, ts => now() - interval '3 days');
SELECT thrillmon.maintain_partitions(1);
UPDATE thrillmon.retention_policies SET retention_days = 21 WHERE target = 'metrics';
UPDATE thrillmon.anomaly_detection_config SET sensitivity = 5 WHERE metric_name = '*';
INSERT INTO thrillmon.incidents (title, severity) VALUES ('before upgrade', 'low');
SQL
	q $up "ALTER EXTENSION thrillmon UPDATE" 
	is "$(q $up "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" "$current" "$old: ALTER EXTENSION UPDATE reaches $current"

	q $fresh "CREATE EXTENSION thrillmon" 
	q $fresh "SELECT thrillmon.maintain_partitions(1)" >/dev/null
	q $fresh "SELECT thrillmon.record_metric('backfilled', 1, ts => now() - interval '3 days')" >/dev/null
	q $fresh "SELECT thrillmon.maintain_partitions(1)" >/dev/null
	# (\restrict lines carry a random key per dump.)
	pg_dump --schema-only -d $up | grep -v -e '^--' -e '^\\restrict' -e '^\\unrestrict' | sed '/^$/d' > "$work/up.sql"
	pg_dump --schema-only -d $fresh | grep -v -e '^--' -e '^\\restrict' -e '^\\unrestrict' | sed '/^$/d' > "$work/fresh.sql"
	diff -u "$work/fresh.sql" "$work/up.sql" > "$work/schema.diff"
	is "$?" "0" "$old: pg_dump --schema-only of the upgraded database equals a fresh install"
	head -40 "$work/schema.diff" | sed 's/^/# /'

	# pg_dump shows extension members only as CREATE EXTENSION, so compare their definitions
	# from the catalogs: functions (body, settings, grants), columns, constraints, indexes,
	# views, triggers, table grants and comments.
	q $up "$(cat test/scripts/catalog_fingerprint.sql)" > "$work/up.cat"
	q $fresh "$(cat test/scripts/catalog_fingerprint.sql)" > "$work/fresh.cat"
	diff -u "$work/fresh.cat" "$work/up.cat" > "$work/catalog.diff"
	same=$?
	# An empty fingerprint (a failed query) must not pass as "equal".
	[ "$(wc -l < "$work/fresh.cat")" -gt 100 ] || same="empty fingerprint"
	is "$same" "0" "$old: every extension object is defined as in a fresh install"
	head -40 "$work/catalog.diff" | sed 's/^/# /'

	members="SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e' AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'thrillmon') ORDER BY 1"
	is "$(q $up "$members" | md5sum)" "$(q $fresh "$members" | md5sum)" "$old: the same objects belong to the extension"
	is "$(q $up "SELECT count(*) || '/' || sum(metric_value) FROM thrillmon.metric_time_series WHERE metric_name = 'kept'")" "50/1275" \
		"$old: metric rows kept"
	is "$(q $up "SELECT (SELECT retention_days FROM thrillmon.retention_policies WHERE target = 'metrics') || '/' || (SELECT sensitivity FROM thrillmon.anomaly_detection_config WHERE metric_name = '*') || '/' || (SELECT count(*) FROM thrillmon.incidents)")" \
		"21/5/1" "$old: configuration and incidents kept"
	is "$(q $up "SELECT thrillmon.collect_metrics()->>'builtin_points' IS NOT NULL")" "t" "$old: the upgraded extension runs the new version's functions"
	# Partitions' CHECK constraints are inherited, so neither dump above shows them: count them.
	checks="SELECT string_agg(DISTINCT con.conname || '/' || con.conislocal, ' ' ORDER BY con.conname || '/' || con.conislocal) || ' on ' || count(DISTINCT con.conrelid) || ' tables'
		FROM pg_inherits i JOIN pg_constraint con ON con.conrelid IN (i.inhrelid, i.inhparent) AND con.contype = 'c'
		WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass"
	is "$(q $up "$checks")" "$(q $fresh "$checks")" "$old: the parent and every partition, a backfilled one included, have the same CHECK constraints as a fresh install"
	[ "$old" = "$(echo "$released" | tail -1)" ] || { for d in $up $fresh; do psql -X -q -c "DROP DATABASE $d" >/dev/null; done; }
done

# The comparison can fail: put back the previous release's body of one function (what a delta
# that forgot it would leave) and the fingerprints must differ.
last=$(echo "$released" | tail -1)
up=thrillmon_up_${last//./_}
q $up "CREATE OR REPLACE FUNCTION thrillmon._severity_rank(p_severity text) RETURNS integer
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS \$fn\$
	SELECT CASE p_severity WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE 0 END
\$fn\$"
q $up "$(cat test/scripts/catalog_fingerprint.sql)" > "$work/up.cat"
diff -u "$work/fresh.cat" "$work/up.cat" > "$work/catalog.diff"
like "$(grep -c '^[-+]function thrillmon._severity_rank' "$work/catalog.diff")" "^2$" \
	"the comparison sees a function left as an older release defined it"
for d in $up thrillmon_fresh; do psql -X -q -c "DROP DATABASE $d" >/dev/null; done
exit $((fails > 0))
