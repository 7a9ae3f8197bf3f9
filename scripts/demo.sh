#!/usr/bin/env bash
# The main job, end to end: a throw-away cluster with thrillmon and pg_cron preloaded and the
# worker collecting every 2 s; a ThrillWiki-like schema watched by SQL collectors; six weeks of
# metrics, anomalies, alerts and incidents; the retention cleanup with retention_stats before
# and after; then the worker's live collection and health. Installs what it needs; leaves
# nothing running.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
prepare
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.database=postgres" -o "thrillmon.collect_interval=2" \
	bash scripts/demo_in_cluster.sh
