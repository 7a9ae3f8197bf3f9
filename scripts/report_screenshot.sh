#!/usr/bin/env bash
# make report-screenshot: runs test/scripts/report_browser.sh in a throw-away cluster and keeps
# the screenshot it takes as docs/report.png (the README's picture of a report).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
prepare
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
REPORT_OUT=$out pg_virtualenv "${VIRTUALENV_OPTS[@]}" bash test/scripts/report_browser.sh >/dev/null
cp "$out/report.png" docs/report.png
echo "docs/report.png ($(wc -c < docs/report.png) bytes)"
