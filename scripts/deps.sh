#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian 12's own packages.
# Idempotent: does nothing when everything is there. Works as root or as a user with sudo.
set -euo pipefail

packages=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl postgresql-common libgtest-dev g++ make clang-14 llvm-14
	libcurl4-openssl-dev # alert delivery: the delivery worker and test_channel() speak HTTP with libcurl
	libclang-rt-14-dev # libFuzzer and the sanitizer runtimes for clang
	clang-format-14    # make lint: the C++ style
	postgresql-15-partman # bench only: the pg_partman baseline
	libbenchmark-dev      # bench only: Google Benchmark for the core's detectors
	python3               # the NAB scorer (../shared/eval/nab_score.py, standard library only)
	perl
	# make deb and the package tests (test/package/): pg_buildext, dpkg-buildpackage, pgxnclient
	postgresql-server-dev-all debhelper dpkg-dev build-essential fakeroot pgxnclient
	# test/scripts/exporter.sh: the real exporter, promtool for the alerting rules, curl to scrape
	prometheus-postgres-exporter prometheus curl
	# test/scripts/alertmanager.sh: the real Alertmanager and amtool receive thrillmon's alerts
	prometheus-alertmanager
	# test/scripts/report_browser.sh: the report in a real browser, with a font to draw its text
	chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "thrillmon: need root or sudo to install: ${missing[*]}" >&2
	exit 1
fi
echo "thrillmon: installing ${missing[*]}" >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
