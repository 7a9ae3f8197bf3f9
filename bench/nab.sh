#!/usr/bin/env bash
# Detection quality on the Numenta Anomaly Benchmark's development subset, scored through the SQL
# path: each data file goes into metric_time_series and through thrillmon.backtest() with the
# default configuration (bench/nab/sql_detector.sh), and ../shared/eval/nab_score.py scores the
# result with NAB's rules. Run with `make nab` (scripts/nab.sh makes the cluster) or inside a
# cluster with PG* pointing at it. EVAL_DIR overrides where the benchmark lives.
set -euo pipefail
cd "$(dirname "$0")/.."
eval_dir=${EVAL_DIR:-../shared/eval}
[ -x "$eval_dir/nab_score.py" ] || [ -f "$eval_dir/nab_score.py" ] || { echo "nab.sh: no $eval_dir/nab_score.py (set EVAL_DIR)"; exit 2; }
db=thrillmon_nab
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION thrillmon"
PGDATABASE=$db python3 "$eval_dir/nab_score.py" --detector "bash $PWD/bench/nab/sql_detector.sh" --jobs 2 --digits 1 2>/dev/null | tail -2
