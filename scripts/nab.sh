#!/usr/bin/env bash
# make nab: detection quality on NAB's development subset, scored through SQL, in a throw-away
# cluster. EVAL_DIR points at the benchmark (default ../shared/eval beside the project).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
prepare
# (make nab-loco passes bench/nab_loco.sh: per category and leave one category out.)
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -o "thrillmon.enabled=off" bash "${1:-bench/nab.sh}"
