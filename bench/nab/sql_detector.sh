#!/usr/bin/env bash
# One NAB data file through the SQL path, as nab_score.py's detector command: the CSV on stdin is
# stored in thrillmon.metric_time_series under a metric name of its own, thrillmon.backtest()
# scores it with the metric's default configuration (the '*' row), one score per row is printed,
# and the rows are removed again. PG* must point at a database with thrillmon installed.
set -euo pipefail
name="nab_$$_${RANDOM}"
{
	echo "SET TimeZone = 'UTC';"
	echo "CREATE TEMP TABLE nab (ts timestamp, v float8);"
	echo "COPY nab FROM STDIN WITH (FORMAT csv, HEADER true);"
	# Some files end their lines with CR LF, and the last line may lack its newline: COPY wants
	# one line ending throughout, and its end marker at the start of a line.
	tr -d '\r' | sed -e '$a\'
	echo '\.'
	echo "INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, \"timestamp\")"
	echo "  SELECT '$name', 'custom', v, ts AT TIME ZONE 'UTC' FROM nab;"
	echo "SELECT score FROM thrillmon.backtest('$name', '-infinity', 'infinity') ORDER BY \"timestamp\";"
	echo "DELETE FROM thrillmon.metric_time_series WHERE metric_name = '$name';"
} | psql -X -q -At -v ON_ERROR_STOP=1
