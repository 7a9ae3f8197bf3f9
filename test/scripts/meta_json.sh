#!/usr/bin/env bash
# META.json is valid PGXN metadata (scripts/pgxn_meta.py, the Meta Spec 1.0.0 that PGXN and
# pgxnclient read) and says what a PGXN user needs: PostgreSQL 15 required at run time, pg_cron
# recommended, where to report bugs, a release status. The validator is shown to reject what the
# spec forbids. Speaks TAP.
cd "$(dirname "$0")/../.."
source test/scripts/lib/tap.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "1..13"
out=$(python3 scripts/pgxn_meta.py META.json)
is "$?/$out" "0/" "META.json is valid against the PGXN Meta Spec"
field() { python3 -c "import json,sys; m=json.load(open('META.json')); print(eval(sys.argv[1]))" "$1" 2>/dev/null; }
like "$(field "m['prereqs']['runtime']['requires']['PostgreSQL']")" '^15\.' "runtime requires PostgreSQL 15"
is "$(field "'pg_cron' in m['prereqs']['runtime']['recommends']")" "True" "pg_cron is recommended, not required"
is "$(field "bool(m['resources'])")" "True" "resources say where to go"
like "$(field "m['release_status']")" '^(stable|testing|unstable)$' "a release status"
is "$(field "m['provides']['thrillmon']['file']")" "thrillmon.control" "provides names a file of the distribution"
[ -f "$(field "m['provides']['thrillmon']['docfile']")" ]
ok $? "provides' docfile exists"

# The validator can fail: each broken copy must be refused, with a message naming the key.
broken() { # NAME PYTHON-EXPRESSION-ON-m PATTERN
	python3 -c "import json,sys; m=json.load(open('META.json')); exec(sys.argv[1]); json.dump(m, open(sys.argv[2], 'w'))" "$2" "$work/META.json"
	out=$(python3 scripts/pgxn_meta.py "$work/META.json"); rc=$?
	like "$rc $out" "^1 .*$3" "the validator refuses $1"
}
broken "a missing provides" "del m['provides']" "missing required key 'provides'"
broken "an unknown license" "m['license'] = 'beerware'" "license"
broken "a version that is not semantic" "m['version'] = '0.7'" "semantic version"
broken "an unknown prereqs phase" "m['prereqs']['install'] = {'requires': {'x1': '0'}}" "unknown phase"
broken "a bad release status" "m['release_status'] = 'beta'" "release_status"
broken "an unprefixed custom key" "m['colour'] = 'blue'" "unknown key 'colour'"
exit $((fails > 0))
