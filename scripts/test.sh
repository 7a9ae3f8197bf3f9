#!/usr/bin/env bash
# Runs every test suite: C++ unit tests, then pg_regress, pgTAP and the scripted tests inside a
# throw-away cluster (pg_virtualenv: Postgres runs as the postgres OS user even when we are
# root). Prints one closing line "N passed, N failed" over all suites; exits non-zero on any failure.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
prepare || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "== Code checks: the C++ style and the glue's include order (make lint)"
bash test/lint.sh 2>&1 | tee "$log/lint.txt"
echo "== C++ core unit tests (GoogleTest)"
make -s unittest 2>&1 | tee "$log/unit.txt"
echo "== the same under AddressSanitizer + UndefinedBehaviorSanitizer"
make -s sanitize 2>&1 | tee "$log/sanitize.txt"
echo "== libFuzzer over the core's parsers, validators, calendar math and sketch"
if make -s fuzz > "$log/fuzz_full.txt" 2>&1; then echo "fuzz: ok" > "$log/fuzz.txt"; else echo "fuzz: FAILED" > "$log/fuzz.txt"; fi
grep -E "^Done|^stat::number_of_executed_units|ERROR|SUMMARY" "$log/fuzz_full.txt"; cat "$log/fuzz.txt"

echo "== SQL suites in a throw-away cluster"
# Postgres (as the postgres user) needs to read the tree only through psql/pg_regress run by
# us, so no chown is needed; results/ is written by this user.
pg_virtualenv "${VIRTUALENV_OPTS[@]}" bash scripts/test_in_cluster.sh "$log" 2>&1 | tee "$log/cluster.txt"

echo "== Packages: the Debian package and the PGXN zip, installed into this server and removed (make package-test)"
# After the cluster suites: these put thrillmon into the server's directories the way a user
# would and set this tree's own make install aside meanwhile (test/package/lib/installed.sh).
prove --ext .sh -e bash test/package/ 2>&1 | tee "$log/package.txt"
cat "$log/package.txt" >> "$log/tap.txt"

python3 - "$log" <<'PY'
import re, sys, pathlib
log = pathlib.Path(sys.argv[1])
passed = failed = 0
for name in ("unit.txt", "sanitize.txt"):
    unit = (log / name).read_text() if (log / name).exists() else ""
    m = re.search(r"\[==========\] (\d+) tests? from .* ran", unit)
    total = int(m.group(1)) if m else 0
    m = re.search(r"\[  FAILED  \] (\d+) tests?, listed below", unit)
    unit_failed = int(m.group(1)) if m else (0 if total and "[  PASSED  ]" in unit else 1)
    passed += total - unit_failed if total else 0
    failed += unit_failed
lint = (log / "lint.txt").read_text() if (log / "lint.txt").exists() else ""
m = re.search(r"^(\d+) passed, (\d+) failed$", lint, re.M)
if m:
    passed += int(m.group(1))
    failed += int(m.group(2))
else:
    failed += 1
fuzz = (log / "fuzz.txt").read_text() if (log / "fuzz.txt").exists() else ""
if "fuzz: ok" in fuzz:
    passed += 1
else:
    failed += 1
regress = (log / "regress.txt").read_text() if (log / "regress.txt").exists() else ""
ok = len(re.findall(r"\.\.\. ok", regress))
bad = len(re.findall(r"\.\.\. FAILED", regress))
passed += ok
failed += bad if (ok or bad) else 1
tap = (log / "tap.txt").read_text() if (log / "tap.txt").exists() else ""
runs = re.findall(r"Files=\d+, Tests=(\d+)", tap)
if len(runs) < 3:  # pg_prove, prove of test/scripts and prove of test/package all must have run
    failed += 1
for i, tests in enumerate(runs):
    tests = int(tests)
    passed += tests
sub_failed = sum(int(m) for m in re.findall(r"Failed (\d+)/\d+ subtests", tap))
passed -= sub_failed
failed += sub_failed
if tap.count("Result: PASS") < len(runs) and sub_failed == 0:
    failed += 1  # a file died without a subtest count (bad plan, crash)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
