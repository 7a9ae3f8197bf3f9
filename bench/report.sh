#!/usr/bin/env bash
# report() cost: time and size of the HTML report for N metrics of one-minute data over 24 hours
# and over 30 days, side by side with its baseline, a plain read of the same points (COPY of the
# range to nowhere: what any tool drawing these charts must at least do), and their ratio. Runs
# inside pg_virtualenv (make bench, or bash bench/report.sh in one). SIZES="10 100" by default;
# SIZES="10 100 1000" for the issue's full set (43 million rows at 1,000 metrics x 30 days).
set -euo pipefail
SIZES=${SIZES:-10 100}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
q -c "CREATE EXTENSION IF NOT EXISTS thrillmon" -c "SELECT thrillmon.maintain_partitions(1)" >/dev/null
printf '%-8s %-6s %12s %12s %10s %10s %8s\n' metrics range points report_ms read_ms ratio MB
for n in $SIZES; do
	q -c "TRUNCATE thrillmon.metric_time_series, thrillmon.anomaly_detections CASCADE" >/dev/null
	# 30 days of one-minute points per metric, a daily rhythm, noise, and a spike a day.
	q -c "INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, \"timestamp\")
		SELECT 'bench_' || lpad(m::text, 4, '0'), 'performance',
			100 + 20 * sin(g * 2 * pi() / 1440) + random() * 5 + CASE WHEN g % 1440 = m % 1440 THEN 400 ELSE 0 END,
			date_trunc('minute', now()) - g * interval '1 minute'
		FROM generate_series(1, $n) m, generate_series(0, 30 * 1440 - 1) g" >/dev/null
	q -c "ANALYZE thrillmon.metric_time_series" >/dev/null
	for range in '24 hours' '30 days'; do
		points=$(q -c "SELECT count(*) FROM thrillmon.metric_time_series WHERE \"timestamp\" >= now() - interval '$range'")
		t0=$(ms); q -c "COPY (SELECT * FROM thrillmon.metric_time_series WHERE \"timestamp\" >= now() - interval '$range' AND \"timestamp\" <= now()) TO '/dev/null'"; t1=$(ms)
		bytes=$(q -c "SELECT octet_length(thrillmon.report(now() - interval '$range', now()))"); t2=$(ms)
		read_ms=$((t1 - t0)); report_ms=$((t2 - t1))
		printf '%-8s %-6s %12s %12s %10s %10s %8s\n' "$n" "${range/ /}" "$points" "$report_ms" "$read_ms" \
			"$(awk -v a="$report_ms" -v b="$read_ms" 'BEGIN { printf "%.1fx", a / (b > 0 ? b : 1) }')" \
			"$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')"
	done
done
