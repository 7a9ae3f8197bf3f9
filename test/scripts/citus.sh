#!/usr/bin/env bash
# thrillmon on a real three-node Citus cluster (a coordinator and two workers on 127.0.0.1, each
# its own data directory and port, thrillmon preloaded everywhere), against a single-node
# database given the same history: distribute() and its errors, the worker idling on the worker
# nodes, the same anomalies, alerts, incidents, backtests and retention counts as one node (the
# steady pass too, which reads the shards through SQL), retention_stats exact, a worker node
# stopped dead mid-run and back, and the way back (undistribute(), DROP EXTENSION) leaving no
# shard, metadata row or table on any node. Builds Citus from ../shared/vendor/citus if it is
# missing. Speaks TAP.
set -uo pipefail
. "$(dirname "$0")/lib/citus.sh"

echo "1..52"
citus_ensure
# The coordinator's worker stays off while both databases get the same calls by hand (its own
# passes would make the two histories differ); the worker nodes' workers are on, as a user's
# would be, and must idle by themselves.
citus_start "thrillmon.enabled = off" "thrillmon.collect_interval = 2" "thrillmon.detect_interval = 2"
for p in $wport1 $wport2; do
	at $p "ALTER SYSTEM SET thrillmon.enabled = on" && at $p "SELECT pg_reload_conf()" >/dev/null
done
# The single-node database, on the coordinator's server: thrillmon without Citus.
at $cport "CREATE DATABASE single" >/dev/null 2>&1
one() { PGDATABASE=single at $cport "$@"; }
one_error() { PGDATABASE=single at_error $cport "$@"; }

at $cport "CREATE EXTENSION thrillmon"
one "CREATE EXTENSION thrillmon"
ok $? "CREATE EXTENSION thrillmon on the coordinator and in the single-node database"
is "$(at $wport1 "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" \
	"$(at $cport "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'")" "the extension propagated to the worker nodes"

# 1. The worker nodes' workers see they are Citus workers and idle, saying so once.
for i in $(seq 1 60); do
	[ "$(at $wport1 "SELECT state FROM thrillmon.worker_status()")" = "citus worker node" ] \
		&& [ "$(at $wport2 "SELECT state FROM thrillmon.worker_status()")" = "citus worker node" ] && break
	sleep 0.5
done
is "$(at $wport1 "SELECT state FROM thrillmon.worker_status()")/$(at $wport2 "SELECT state FROM thrillmon.worker_status()")" \
	"citus worker node/citus worker node" "the worker on each worker node idles as a Citus worker node"
is "$(grep -c "this is a Citus worker node" "$(node_log $wport1)")" "1" "and says so once in its log"
sleep 3 # (a few collect intervals: an idle worker collects nothing and makes no partition)
is "$(at $wport1 "SELECT count(*) FROM thrillmon.metric_time_series")/$(at $wport1 "SELECT count(*) FROM thrillmon.job_runs")/$(at $wport1 "SELECT count(*) FROM pg_class WHERE relname LIKE 'metric_time_series_p%'")" \
	"0/0/0" "a worker node's thrillmon runs no job, records nothing and creates no partition"

# 2. distribute(): its errors, then one call.
like "$(one_error "SELECT thrillmon.distribute()")" "0A000: thrillmon: distribute\(\) needs the citus extension" \
	"distribute() without Citus is a clear error (0A000)"
like "$(at_error $wport1 "SELECT thrillmon.distribute()")" "0A000: thrillmon: distribute\(\) runs on the Citus coordinator only" \
	"distribute() on a worker node is a clear error"
like "$(at_error $cport "SELECT thrillmon.distribute(0)")" "22023: thrillmon: shard_count must be between 1 and 64000" \
	"distribute() checks its shard count"
at $cport "SELECT thrillmon.maintain_partitions(2)" >/dev/null
one "SELECT thrillmon.maintain_partitions(2)" >/dev/null
# (A point recorded before distributing: it must move to the shards and leave the coordinator.)
base=$(at $cport "SELECT date_trunc('minute', now())")
pre="SELECT thrillmon.record_metric('load.pre', 1, 'performance', ts => '$base'::timestamptz - interval '3 hours')"
at $cport "$pre" >/dev/null && one "$pre" >/dev/null
is "$(at $cport "SELECT shards || '/' || array_length(nodes, 1) || '/' || already_distributed FROM thrillmon.distribute(shard_count => 4)")" \
	"4/2/false" "distribute(4) spreads metric_time_series over 4 shards on the 2 worker nodes"
is "$(at $cport "SELECT already_distributed FROM thrillmon.distribute(shard_count => 4)")" "t" "a second call changes nothing"
is "$(at $cport "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'thrillmon.%'")/$(at $cport "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'thrillmon.%' AND logicalrelid::text NOT LIKE 'thrillmon.metric_time_series%'")" \
	"$(($(at $cport "SELECT count(*) FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass") + 1))/0" \
	"the table and every partition are distributed; the small tables stay local"
is "$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")" "1" "the point recorded before is still there (on a shard)"
local_bytes="SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass"
is "$(at $cport "$local_bytes")" "0" "and no longer on the coordinator's disk (its partitions are empty shells)"

# 3. The same history into both: five metrics a minute for two days, a spike, a level shift, one
# that stops, a few points 40 days old (the default partition), then the cold pass.
history="SELECT count(thrillmon.record_metric(m.name,
	100 + 5 * sin(g / 37.0) + ((g * 7919 + m.k * 104729) % 13 - 6) * 0.3
	  + CASE WHEN m.name = 'load.a' AND g = 2000 THEN 300 WHEN m.name = 'load.b' AND g >= 2500 THEN 30 ELSE 0 END,
	'performance', ts => '$base'::timestamptz - interval '10 minutes' - (2880 - g) * interval '1 minute'))
	FROM (VALUES ('load.a', 1), ('load.b', 2), ('load.c', 3), ('load.d', 4), ('load.stop', 5)) m(name, k), generate_series(1, 2880) g
	WHERE m.name <> 'load.stop' OR g < 2800;
	SELECT count(thrillmon.record_metric('load.old', g, 'performance', ts => '$base'::timestamptz - interval '40 days' + g * interval '1 minute'))
	FROM generate_series(1, 30) g"
at $cport "$history" >/dev/null && one "$history" >/dev/null
ok $? "the same history recorded into both"
is "$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")" "$(one "SELECT count(*) FROM thrillmon.metric_time_series")" \
	"both hold the same points"
for db in cluster single; do
	if [ $db = cluster ]; then at $cport "SELECT thrillmon.maintain_partitions(2)"; else one "SELECT thrillmon.maintain_partitions(2)"; fi
done >/dev/null
is "$(at $cport "$local_bytes")" "0" "maintenance moved rows out of the default partition without leaving them on the coordinator"
# The observable answers, in a fixed order and without ids or wall-clock times.
answers="SELECT 'anomaly', metric_name, anomaly_type, severity, anomaly_value::text, round(deviation_score::numeric, 6)::text, time_window_end::text
	FROM thrillmon.anomaly_detections
	UNION ALL SELECT 'alert', coalesce(metric_name, ''), alert_type, severity, fingerprint, (resolved_at IS NOT NULL)::text, coalesce(metadata->>'last_anomaly_at', metadata->>'category')
	FROM thrillmon.system_alerts
	UNION ALL SELECT 'incident', title, status, severity, '', '', '' FROM thrillmon.incidents
	ORDER BY 1, 2, 3, 4, 5, 6, 7"
run_both() { at $cport "$1" >/dev/null; local rc=$?; one "$1" >/dev/null; return $((rc + $?)); }
run_both "SELECT thrillmon.detect_anomalies()"
ok $? "detect_anomalies() runs on the cluster (the auto-resolve probes go to the shards)"
a_cluster=$(at $cport "$answers")
a_single=$(one "$answers")
is "$a_cluster" "$a_single" "the cold pass: the same anomalies, alerts and incidents as one node"
like "$a_cluster" "anomaly\|load\.a\|spike" "(it found the planted spike)"
like "$a_cluster" "alert\|load\.stop\|no_data" "(and the metric that stopped, as no_data)"

# 4. The steady pass: points since the last pass, one a spike. One node reads them straight from
# the partitions' BRIN; the cluster must read its shards through SQL, never its empty shells.
# (Stamped after both cold passes' horizons, the same in both, and in the past when scored.)
t0=$(at $cport "SELECT date_trunc('second', clock_timestamp()) + interval '1 second'")
fresh="SELECT count(thrillmon.record_metric(m, CASE WHEN m = 'load.c' AND g = 8 THEN 900 ELSE 100 + (g % 3) END, 'performance',
	ts => '$t0'::timestamptz + g * interval '1 second'))
	FROM unnest(ARRAY['load.a', 'load.b', 'load.c', 'load.d']) m, generate_series(1, 10) g"
run_both "$fresh"
while [ "$(at $cport "SELECT clock_timestamp() > '$t0'::timestamptz + interval '11 seconds'")" != t ]; do sleep 0.5; done
run_both "SELECT thrillmon.detect_anomalies()"
ok $? "a steady pass runs on both"
a_cluster=$(at $cport "$answers")
is "$a_cluster" "$(one "$answers")" "the steady pass: the same anomalies, alerts and incidents as one node"
like "$a_cluster" "anomaly\|load\.c\|spike\|[a-z]+\|900\|" "(it found the spike that arrived after the cold pass)"
bt="SELECT md5(string_agg(concat_ws(',', \"timestamp\", value, round(score::numeric, 9), is_anomaly, anomaly_type, severity, algorithm), ';' ORDER BY \"timestamp\"))
	FROM thrillmon.backtest('load.b', '$base'::timestamptz - interval '3 days', '$base'::timestamptz)"
is "$(at $cport "$bt")" "$(one "$bt")" "backtest() gives the same scores on the cluster as on one node"

# 4b. What people read, through Citus: the same as one node.
same() { is "$(at $cport "$1")" "$(one "$1")" "$2"; }
same "SELECT string_agg(concat_ws('|', name, value, observed_at), ';' ORDER BY name) FROM thrillmon.system_health WHERE section = 'metric'" \
	"system_health: the same latest point of every metric"
same "SELECT string_agg(concat_ws('|', name, value, last_hour, trend), ';') FROM thrillmon.dashboard('$base'::timestamptz, 20) WHERE section = 'metric'" \
	"dashboard(): the same metric rows"
charts="SELECT string_agg(m[1], ',') FROM regexp_matches(thrillmon.report('$base'::timestamptz - interval '3 days', '$base'::timestamptz),
	'<span class=\"name\">([^<]*)</span>', 'g') m"
is "$(at $cport "$charts")" "$(one "$charts")" "report() draws the same metrics (its names from the shards: no recursive CTE over them)"
# postgres_exporter's per-metric queries, as a member of thrillmon_reader (as the exporter runs).
exporter_query() { awk -v k="$1:" '$0 == k {f = 1; next} f && /^  query: \|/ {q = 1; next} q && /^  metrics:/ {exit} q {print}' \
	"$here_citus/../../../prometheus/postgres_exporter.yaml"; }
reader="CREATE ROLE citus_exporter LOGIN IN ROLE thrillmon_reader"
at $cport "$reader" >/dev/null 2>&1
exported() { local db=$1; shift; for k in thrillmon_metric thrillmon_export thrillmon_observed; do
	PGUSER=citus_exporter PGDATABASE=$db psql -X -q -At -v ON_ERROR_STOP=1 -p $cport -c "$(exporter_query $k)" 2>&1 | sort; done; }
e_cluster=$(exported tm)
is "$e_cluster" "$(exported single)" "the postgres_exporter queries give the same series on the cluster as on one node"
like "$e_cluster" "^load\.a\|performance\|" "(and they give series)"
label="SELECT (thrillmon.label_anomaly((SELECT id FROM thrillmon.anomaly_detections WHERE metric_name = 'load.a' ORDER BY time_window_end LIMIT 1), 'true_positive')).label;
	SELECT concat_ws('/', suggested_sensitivity, true_positives, anomalies_before, anomalies_after, points) FROM thrillmon.tune_detection('load.a')"
l_cluster=$(at $cport "$label" 2>&1)
is "$l_cluster" "$(one "$label" 2>&1)" "label_anomaly() and tune_detection() give the same answer as one node"
like "$(echo $l_cluster)" "^true_positive [0-9.]+/1/[0-9]+/[0-9]+/[0-9]+$" "(a label stored, and a suggestion made from it: $(echo $l_cluster))"

# 5. retention_stats and retention: exact counts over the shards.
is "$(at $cport "SELECT rows || '/' || rows_estimated || '/' || (bytes > 0) FROM thrillmon.retention_stats WHERE target = 'metrics'")" \
	"$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")/false/true" \
	"retention_stats counts the cluster's metric rows exactly (and says they are not estimates)"
before=$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")
# (The job's details in a statement of its own: the call's statement cannot see its own run.)
details="SELECT (details->>'rows_in_dropped_partitions') || '/' || (details->>'rows_deleted') || '/' || jsonb_array_length(details->'partitions_dropped')
	FROM thrillmon.job_runs WHERE job = 'retention' ORDER BY started_at DESC LIMIT 1"
r_cluster="$(at $cport "SELECT thrillmon.cleanup_old_metrics(1)")/$(at $cport "$details")"
r_single="$(one "SELECT thrillmon.cleanup_old_metrics(1)")/$(one "$details")"
is "$r_cluster" "$r_single" "cleanup_old_metrics(1) reports the same counts as one node"
is "${r_cluster%%/*}" "$((before - $(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")))" \
	"and what it reports is what it removed"
is "$(at $cport "SELECT count(*) FROM pg_dist_shard s WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.logicalrelid)")" "0" \
	"no shard is left of the dropped partitions"

# 6. The cluster watched as a cluster: the coordinator's worker now collects every 2 s and asks
# every worker node too. Then a worker node dies (immediate stop) and comes back.
at $cport "ALTER SYSTEM SET thrillmon.enabled = on" >/dev/null && at $cport "SELECT pg_reload_conf()" >/dev/null
wait_sql() { local i; for i in $(seq 1 $(($1 * 4))); do [ "$(at $cport "$2")" = t ] && return 0; sleep 0.25; done; return 1; }
wait_sql 30 "SELECT count(*) = 2 FROM thrillmon.node_state WHERE last_success_at IS NOT NULL"
ok $? "collection on the coordinator asks both worker nodes"
is "$(at $cport "SELECT string_agg(DISTINCT metric_name, ' ' ORDER BY metric_name) FROM thrillmon.metric_time_series WHERE metric_name LIKE '%@127.0.0.1:$wport1'")" \
	"database_connections@127.0.0.1:$wport1 database_size_bytes@127.0.0.1:$wport1" "each worker node's connections and database size are recorded, labelled by node"
wait_sql 10 "SELECT EXISTS (SELECT 1 FROM thrillmon.metric_time_series WHERE metric_name = 'cluster_database_size_bytes')"
is "$(at $cport "SELECT metric_value > pg_database_size(current_database()) FROM thrillmon.metric_time_series WHERE metric_name = 'cluster_database_size_bytes' ORDER BY \"timestamp\" DESC LIMIT 1")" \
	"t" "cluster_database_size_bytes counts the shards on the worker nodes too"
# What the collection stores while a node is down: the point of every metric whose shard lives on
# a node that answers (which metrics those are depends on their names' hashes, so the test asks
# Citus where each one lives). Created while every node is up: Citus propagates the function.
at $cport "CREATE FUNCTION public.collected_on_live(before_from timestamptz, before_to timestamptz, since timestamptz, live_port integer)
RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE m text; expected integer := 0; stored integer := 0; names text[] := '{}';
BEGIN
	FOR m IN SELECT metric_name FROM thrillmon.metric_catalogue WHERE source = 'builtin'
	         UNION SELECT x || '@127.0.0.1:' || live_port FROM unnest(ARRAY['database_connections', 'database_size_bytes']) x LOOP
		CONTINUE WHEN (SELECT p.nodeport FROM pg_dist_shard_placement p
		               WHERE p.shardid = get_shard_id_for_distribution_column('thrillmon.metric_time_series', m)) <> live_port;
		CONTINUE WHEN NOT thrillmon._has_points(m, before_from, before_to);
		expected := expected + 1;
		names := names || m;
		IF thrillmon._has_points(m, since, clock_timestamp()) THEN stored := stored + 1; END IF;
	END LOOP;
	RETURN stored || '/' || expected || '/' || array_to_string(names, ' ');
END \$f\$" >/dev/null
stopped_at=$(at $cport "SELECT clock_timestamp()")
citus_stop_node $wport2 immediate
wait_sql 30 "SELECT EXISTS (SELECT 1 FROM thrillmon.system_alerts WHERE fingerprint = 'node_down:127.0.0.1:$wport2' AND resolved_at IS NULL)"
ok $? "a worker node that stops answering raises a node_down alert"
is "$(at $cport "SELECT severity || '/' || alert_type || '/' || (message ~ '2 collections in a row') FROM thrillmon.system_alerts WHERE fingerprint = 'node_down:127.0.0.1:$wport2'")" \
	"critical/node_down/true" "critical, at the second collection it missed (within two collection intervals)"
echo "# node_down $(at $cport "SELECT round(EXTRACT(EPOCH FROM created_at - '$stopped_at'::timestamptz)::numeric, 1) FROM thrillmon.system_alerts WHERE fingerprint = 'node_down:127.0.0.1:$wport2'") s after the immediate stop (collect interval 2 s)"
like "$(at $cport "SELECT thrillmon.health_check()::text")" "\"failing\".*Citus worker node 127\.0\.0\.1:$wport2 not answering" "health_check() is failing and names the node"
mark=$(at $cport "SELECT clock_timestamp()")
wait_sql 15 "SELECT last_success_at > '$mark' FROM thrillmon.node_state WHERE node = '127.0.0.1:$wport1'"
ok $? "collection goes on asking the other node"
live="SELECT x FROM public.collected_on_live('$stopped_at'::timestamptz - interval '10 seconds', '$stopped_at', '$mark', $wport1) x"
wait_sql 15 "SELECT split_part(x, '/', 1) = split_part(x, '/', 2) AND split_part(x, '/', 2)::int > 0 FROM ($live) l"
ok $? "and stores every point whose shard is on a node that answers (stored/expected/names: $(at $cport "$live"))"
like "$(at_error $cport "SELECT thrillmon.detect_anomalies()")" "127\.0\.0\.1:$wport2" \
	"a detection pass cannot read the dead node's shards: it fails, naming the node (never an empty read)"
wait_sql 30 "SELECT EXISTS (SELECT 1 FROM thrillmon.job_runs WHERE job = 'detect' AND status = 'failed' AND error ~ '127\.0\.0\.1:$wport2')"
ok $? "and the worker records its failed detection run, naming the node"
citus_start_node $wport2
wait_sql 30 "SELECT resolved_at IS NOT NULL FROM thrillmon.system_alerts WHERE fingerprint = 'node_down:127.0.0.1:$wport2'"
ok $? "when the node is back, its next answer resolves the node_down alert"
wait_sql 30 "SELECT status = 'succeeded' FROM thrillmon.job_runs WHERE job = 'detect' ORDER BY started_at DESC LIMIT 1"
ok $? "and detection succeeds again"
at $cport "ALTER SYSTEM SET thrillmon.enabled = off" >/dev/null && at $cport "SELECT pg_reload_conf()" >/dev/null
wait_sql 30 "SELECT state = 'disabled' FROM thrillmon.worker_status()"

# 7. The way back: undistribute() keeps the points, then DROP EXTENSION (here while distributed
# again) leaves nothing on any node.
kept=$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")
is "$(at $cport "SELECT thrillmon.undistribute()")/$(at $cport "SELECT count(*) FROM thrillmon.metric_time_series")/$(at $cport "SELECT thrillmon._metrics_distributed()")" \
	"$kept/$kept/f" "undistribute() brings every point back into the coordinator's local tables"
dist_rows() { at "$1" "SELECT (SELECT count(*) FROM pg_dist_partition) + (SELECT count(*) FROM pg_dist_shard) + (SELECT count(*) FROM pg_dist_placement)"; }
is "$(dist_rows $cport)/$(dist_rows $wport1)/$(dist_rows $wport2)" "0/0/0" "and removes every shard and metadata row, on every node"
is "$(at $cport "SELECT thrillmon.record_metric('load.after', 1)" >/dev/null; at $cport "SELECT count(*) FROM thrillmon.metric_time_series WHERE metric_name = 'load.after'")" "1" \
	"the local table takes new points"
at $cport "SELECT thrillmon.distribute(4)" >/dev/null
at $cport "DROP EXTENSION thrillmon"
ok $? "DROP EXTENSION thrillmon while distributed succeeds"
leftover() { at "$1" "SELECT (SELECT count(*) FROM pg_dist_partition) + (SELECT count(*) FROM pg_dist_shard) + (SELECT count(*) FROM pg_dist_placement)
	+ (SELECT count(*) FROM pg_dist_object o WHERE o.classid = 'pg_class'::regclass AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = o.objid))
	+ (SELECT count(*) FROM pg_class WHERE relname LIKE 'metric_time_series%') + (SELECT count(*) FROM pg_namespace WHERE nspname = 'thrillmon')"; }
is "$(leftover $cport)/$(leftover $wport1)/$(leftover $wport2)" "0/0/0" \
	"and leaves no shard, metadata row, table or schema on any node"

[ "$fails" -eq 0 ]
