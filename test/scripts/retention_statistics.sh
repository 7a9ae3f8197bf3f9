#!/usr/bin/env bash
# Metric retention without reading rows: maintain_partitions() ANALYZEs the daily partitions whose
# day is over, and cleanup_old_metrics() then takes the rows of each dropped partition from its
# statistics, or counts them when the statistics may not hold them exactly (never analysed,
# written or vacuumed after the ANALYZE, larger than ANALYZE reads in full). Every step commits,
# as the worker's jobs do, so this cannot be a pgTAP file (those roll back). Speaks TAP. Needs PG*
# variables pointing at a cluster where thrillmon is installable.
set -uo pipefail
db=thrillmon_retention_statistics
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each session forces its statistics out before it ends (sessions report them at most once a
# second, when idle), so the next session sees them.
psqlq() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@" -c "SELECT pg_catalog.pg_stat_force_next_flush()" | sed '$d'; }

source "$(dirname "$0")/lib/tap.sh"

echo "1..12"
# Days are UTC days: do not start within two minutes of midnight UTC, or "N days ago" could
# change under the test's feet.
left=$((86400 - $(date -u +%s) % 86400))
[ "$left" -lt 120 ] && sleep "$left"
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
psqlq -c "CREATE EXTENSION thrillmon" >/dev/null

# The partition of the UTC day N days ago; the daily partitions with their last ANALYZE.
p() { echo "metric_time_series_p$(date -u -d "$1 days ago" +%Y%m%d)"; }
parts="SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass AND c.relname <> 'metric_time_series_default'"
analysed="SELECT string_agg(relname::text, ' ' ORDER BY relname DESC) FROM ($parts) c
	WHERE pg_stat_get_last_analyze_time(('thrillmon.' || relname)::regclass) IS NOT NULL"
analyse_times="SELECT string_agg(relname || '=' || coalesce(extract(epoch FROM pg_stat_get_last_analyze_time(('thrillmon.' || relname)::regclass))::text, '-'), ' '
	ORDER BY relname) FROM ($parts) c"

# 40 days of 5 metrics, a point every 5 minutes (1,440 points a day). Partitions first (one point
# per day, moved in by maintenance), with autovacuum off on them: an autovacuum run at a random
# moment would make the counts below come from another path than the one each step sets up.
# (Partitions are made for the days the metrics policy keeps: it keeps 100 until the cleanup,
# which is told its 30 days.)
psqlq -f - <<'SQL' >/dev/null
UPDATE thrillmon.retention_policies SET retention_days = 100 WHERE target = 'metrics';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'seed', 'system', 0, now() - d * interval '1 day' FROM generate_series(0, 40) d;
-- At most 32 partitions a call: every one made before autovacuum is turned off on them.
DO $$ BEGIN WHILE (thrillmon.maintain_partitions()->>'days_waiting')::int > 0 LOOP END LOOP; END $$;
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass
	LOOP
		EXECUTE format('ALTER TABLE thrillmon.%I SET (autovacuum_enabled = off)', r.relname);
	END LOOP;
END
$$;
DELETE FROM thrillmon.metric_time_series WHERE metric_name = 'seed';
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'm' || m, 'system', random(), date_trunc('minute', now()) - s * interval '5 minutes'
FROM generate_series(1, 5) m, generate_series(0, 40 * 288 - 1) s;
SQL
ok $? "seeded 40 days of history into daily partitions"

# maintain_partitions() ANALYZEs days that are over, newest first, eight per run.
psqlq -c "SELECT thrillmon.maintain_partitions()" >/dev/null
is "$(psqlq -c "$analysed")" "$(for d in 1 2 3 4 5 6 7 8; do p $d; done | tr '\n' ' ' | sed 's/ $//')" \
	"a maintenance run ANALYZEs the eight newest days that are over, not today's or later ones"
for i in 1 2 3 4; do psqlq -c "SELECT thrillmon.maintain_partitions()" >/dev/null; done
is "$(psqlq -c "$analysed")" "$(for d in $(seq 1 40); do p "$d"; done | tr '\n' ' ' | sed 's/ $//')" \
	"four runs later every day that is over is analysed"
is "$(psqlq -c "SELECT count(*) FROM ($parts) c JOIN pg_class k ON k.relname = c.relname
	WHERE pg_stat_get_last_analyze_time(k.oid) IS NOT NULL
	  AND k.reltuples <> (SELECT count(*) FROM thrillmon.metric_time_series m WHERE m.tableoid = k.oid)")" "0" \
	"their reltuples is their exact row count"
before=$(psqlq -c "$analyse_times")
psqlq -c "SELECT thrillmon.maintain_partitions()" >/dev/null
is "$(psqlq -c "$analyse_times")" "$before" "a run with nothing to bring up to date ANALYZEs nothing"

# Expired days (30-day retention: 31 days ago and older) in each state the cleanup tells apart.
# Never analysed: a day backfilled 45 days ago, moved in by maintenance after its ANALYZE step.
# Its partition is new, so autovacuum is turned off on it in the transaction that makes it (else
# an auto-analyze could give it statistics before the cleanup, now and then).
psqlq -f - <<SQL >/dev/null
BEGIN;
INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
SELECT 'backfill', 'system', g, now() - interval '45 days' + g * interval '1 second' FROM generate_series(1, 100) g;
SELECT thrillmon.maintain_partitions();
ALTER TABLE thrillmon.$(p 45) SET (autovacuum_enabled = off);
COMMIT;
SQL
# Larger than ANALYZE reads in full at default_statistics_target = 1 (300 pages): 33 days ago,
# analysed (in full, at the default target) once the rows written are reported.
psqlq -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, \"timestamp\")
	SELECT 'big', 'system', g, now() - interval '33 days' + g * interval '1 millisecond' FROM generate_series(1, 50000) g" >/dev/null
psqlq -c "ANALYZE thrillmon.$(p 33)" >/dev/null
# Written after its ANALYZE: 31 days ago. Vacuumed after it: 32 days ago.
psqlq -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, \"timestamp\")
	VALUES ('late', 'system', 1, now() - interval '31 days')" >/dev/null
psqlq -c "VACUUM thrillmon.$(p 32)" >/dev/null
psqlq -c "SELECT relname, relpages FROM pg_class WHERE relname = '$(p 33)'" | sed 's/^/# /'

# What the cleanup should report, per partition: count(*) now.
psqlq -c "SELECT relname || ' ' || (SELECT count(*) FROM thrillmon.metric_time_series m WHERE m.tableoid = ('thrillmon.' || relname)::regclass)
	FROM ($parts) c WHERE relname < '$(p 30)' ORDER BY relname" > "$work/expected.txt"
expected_total=$(awk '{ s += $2 } END { print s }' "$work/expected.txt")

# The cleanup, with default_statistics_target = 1 in its session, and its DEBUG1 line per partition.
removed=$(psql -X -q -At -d "$db" -c "SET client_min_messages = debug1" -c "SET default_statistics_target = 1" \
	-c "SELECT thrillmon.cleanup_old_metrics(30)" 2> "$work/debug.txt")
ok $? "cleanup_old_metrics(30) ran"
sed -n 's/^DEBUG:  thrillmon: \(metric_time_series_p[0-9]*\) holds \([0-9]*\) rows (\(.*\))$/\1 \2 \3/p' "$work/debug.txt" \
	| sort > "$work/got.txt"
sed 's/^/# /' "$work/got.txt"
is "$removed" "$expected_total" "it returns the exact number of rows in the partitions it dropped ($expected_total)"
is "$(cut -d' ' -f1,2 "$work/got.txt")" "$(cat "$work/expected.txt")" \
	"every dropped partition's count, from statistics or not, equals its count(*)"
is "$(grep -c ' from its statistics$' "$work/got.txt")" "7" \
	"the seven expired days analysed after their last write are not read"
is "$(grep ' counted$' "$work/got.txt" | cut -d' ' -f1 | tr '\n' ' ')" "$(printf '%s ' "$(p 45)" "$(p 33)" "$(p 32)" "$(p 31)" | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"read: the never analysed day, the one larger than ANALYZE reads in full, the vacuumed one, the one written after"
is "$(psqlq -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" < date_trunc('day', (now() - interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")" \
	"0" "nothing older than the start of the cut-off's UTC day is left"

# Maintenance brings statistics up to date again: after a VACUUM (5 days ago) and a late write
# (6 days ago) it ANALYZEs those two days, and only them.
psqlq -c "VACUUM thrillmon.$(p 5)" >/dev/null
psqlq -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, \"timestamp\")
	VALUES ('late', 'system', 1, now() - interval '6 days')" >/dev/null
psqlq -c "$analyse_times" | tr ' ' '\n' > "$work/before.txt"
psqlq -c "SELECT thrillmon.maintain_partitions()" >/dev/null
psqlq -c "$analyse_times" | tr ' ' '\n' > "$work/after.txt"
is "$(diff "$work/before.txt" "$work/after.txt" | sed -n 's/^> \([^=]*\)=.*/\1/p' | tr '\n' ' ')" "$(p 6) $(p 5) " \
	"a later maintenance run ANALYZEs again exactly the vacuumed day and the day written after its ANALYZE"

psql -X -q -c "DROP DATABASE $db" >/dev/null
exit $((fails > 0))
