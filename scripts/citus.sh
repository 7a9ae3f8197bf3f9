#!/usr/bin/env bash
# make citus-test and make bench-citus: thrillmon built and installed (scripts/lib.sh), then the
# Citus test (test/scripts/citus.sh, which make test runs too) or the Citus benchmark
# (bench/citus.sh). Each makes its own loopback cluster and builds Citus first when it is missing.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
prepare || exit 1
case "${1:-test}" in
test) prove -v --ext .sh -e bash test/scripts/citus.sh ;;
bench) bash bench/citus.sh ;;
*) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
