#!/usr/bin/env bash
# The main job, end to end: a throw-away cluster with thrillmon and pg_cron preloaded, six weeks
# of ThrillWiki-like metrics, anomalies, alerts and incidents, then the retention cleanup, with
# retention_stats before and after. Installs what it needs; leaves nothing running.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/deps.sh
build_and_install
pg_virtualenv "${VIRTUALENV_OPTS[@]}" bash scripts/demo_in_cluster.sh
