#!/usr/bin/env bash
# The worker's own cost: CPU per collection pass and per day at the default 60 s interval, bytes
# written per day by collection (table + WAL), and the CPU of an idle worker between passes; plus,
# side by side, one pass as the origin ran it (a client connecting each interval, as cron or a
# Celery task does) against one pass inside the worker. Run with `make bench` (or directly, inside
# a cluster where PG* points at a database the worker serves; scripts/bench.sh sets that up).
set -euo pipefail
MEASURE_S=${MEASURE_S:-30}   # busy phase at a 1 s interval
IDLE_S=${IDLE_S:-60}         # idle phase at the default 60 s interval
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
hz=1000000000

q -c "CREATE EXTENSION IF NOT EXISTS thrillmon" >/dev/null
q -c "ALTER SYSTEM SET thrillmon.collect_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 100); do
	[ "$(q -c "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded'")" -ge 3 ] && break
	sleep 0.3
done
pid=$(q -c "SELECT pid FROM thrillmon.worker_status()")
[ -n "$pid" ] || { echo "the worker is not running" >&2; exit 1; }
# CPU time in nanoseconds (schedstat's first field): exact, unlike /proc/PID/stat's 10 ms ticks.
cpu_ticks() { awk '{ print $1 }' "/proc/$pid/schedstat"; }
# Private memory: VmRSS also counts the shared buffers the worker has touched.
rss_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status"; }

size_sql="SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relnamespace = 'thrillmon'::regnamespace AND c.relkind IN ('r', 'i', 't')"
t0_runs=$(q -c "SELECT coalesce(max(run_id), 0) FROM thrillmon.job_runs")
c0=$(cpu_ticks); w0=$(q -c "SELECT pg_current_wal_lsn()"); s0=$(q -c "$size_sql"); rss0=$(rss_kb)
sleep "$MEASURE_S"
c1=$(cpu_ticks); w1=$(q -c "SELECT pg_current_wal_lsn()"); s1=$(q -c "$size_sql"); rss1=$(rss_kb)
passes=$(q -c "SELECT count(*) FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $t0_runs AND status = 'succeeded'")
points=$(q -c "SELECT coalesce(sum(rows_affected), 0) FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $t0_runs")
worker_ms=$(q -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::numeric, 2) FROM thrillmon.job_runs WHERE job = 'collect' AND run_id > $t0_runs")
wal=$(q -c "SELECT pg_wal_lsn_diff('$w1', '$w0')")

# The origin's way, same work: a new connection per pass running the same collection.
ext_start=$(date +%s%N)
for _ in $(seq 1 20); do q -c "SELECT thrillmon._collect(now(), false)" >/dev/null; done
ext_ms_exact=$(python3 -c "print(round(($(date +%s%N) - $ext_start) / 20 / 1e6, 2))")

# Idle: default interval; the window includes whatever passes fall in it.
q -c "ALTER SYSTEM RESET thrillmon.collect_interval" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2
i0=$(cpu_ticks)
sleep "$IDLE_S"
i1=$(cpu_ticks)

python3 - "$hz" "$c0" "$c1" "$passes" "$points" "$wal" "$s0" "$s1" "$worker_ms" "$ext_ms_exact" "$i0" "$i1" "$IDLE_S" "$rss0" "$rss1" "$MEASURE_S" <<'PY'
import sys
hz, c0, c1, passes, points, wal, s0, s1, worker_ms, ext_ms, i0, i1, idle_s, rss0, rss1, measure_s = sys.argv[1:]
hz = 10**9; passes = max(int(passes), 1)  # cpu values are nanoseconds
cpu_pass_ms = (int(c1) - int(c0)) * 1000 / hz / passes
per_day = 86400 // 60
print(f"busy phase: {measure_s} s at a 1 s interval, {passes} passes, {int(points) / passes:.1f} points per pass")
print(f"worker CPU per collection pass:          {cpu_pass_ms:8.2f} ms   (mean over the passes)")
print(f"worker CPU per day at 60 s:              {cpu_pass_ms * per_day / 1000:8.2f} s    ({per_day} passes)")
print(f"WAL written per pass / per day at 60 s:  {int(wal) / passes / 1024:8.1f} kB / {int(wal) / passes * per_day / 2**20:.1f} MB")
print(f"table+index growth per pass / per day:   {(int(s1) - int(s0)) / passes / 1024:8.1f} kB / {(int(s1) - int(s0)) / passes * per_day / 2**20:.1f} MB")
print(f"idle worker (60 s interval, {idle_s} s):      {(int(i1) - int(i0)) / hz / int(idle_s) * 100:8.3f} % of a core")
print(f"worker private RSS (RssAnon):            {int(rss0) / 1024:8.1f} MB -> {int(rss1) / 1024:.1f} MB over the busy phase")
print(f"one pass, wall time, median:  worker {float(worker_ms):.2f} ms   vs   new connection + same collection (cron/Celery style) {float(ext_ms):.2f} ms")
print(f"ratio (external / worker): {float(ext_ms) / float(worker_ms):.1f}x")
PY
