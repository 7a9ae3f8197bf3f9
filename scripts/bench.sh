#!/usr/bin/env bash
# make bench: every benchmark under bench/, each in its own throw-away cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
prepare
echo "== bench/worker_cost.sh (machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m))"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.database=postgres" bash bench/worker_cost.sh
echo "== bench/observe.sh (B2; fsync on, so that synchronous_commit costs what it costs on a real server)"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "fsync=on" bash bench/observe.sh
echo "== bench/retention.sh (B1, B3, B4, B5; pg_partman as the second baseline)"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "fsync=on" -o "max_wal_size=4GB" bash bench/retention.sh
echo "== bench/core/run.sh (the detectors in the core, Google Benchmark)"
bash bench/core/run.sh
echo "== bench/detect.sh (detection: steady state against a SQL z-score, cold start against a scan)"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.enabled=off" bash bench/detect.sh
echo "== bench/nab.sh (detection quality on NAB's development subset, through backtest())"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.enabled=off" bash bench/nab.sh
echo "== bench/report.sh (report(): time and size for 10 and 100 metrics over 24 hours and 30 days, against a plain read)"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.enabled=off" bash bench/report.sh
echo "== bench/citus.sh (thrillmon on a three-node Citus cluster against one node; its own servers)"
bash bench/citus.sh
