#!/usr/bin/env bash
# Detection quality per NAB category, and how it generalizes: leave one category out. The SQL
# detector (bench/nab/sql_detector.sh, backtest() with the '*' configuration) runs once per
# sensitivity of SENSITIVITIES (default "3 3.5 4 4.5 5 5.5 6", plus the shipped default); then,
# for each of the five categories, the sensitivity that scores best (standard profile) on the
# other four is chosen and the held-out category is scored with it. nab_score.py re-optimises
# its threshold on each scored set, as NAB does. Run with `make nab-loco` (scripts/nab.sh makes
# the cluster) or inside a cluster with PG* pointing at it. A category without label windows
# (artificialNoAnomaly) is not scored alone, but its false positives count in the others'
# tuning. EVAL_DIR overrides where the benchmark lives.
set -euo pipefail
cd "$(dirname "$0")/.."
eval_dir=${EVAL_DIR:-../shared/eval}
data=$eval_dir/nab-dev
[ -f "$eval_dir/nab_score.py" ] || { echo "nab_loco.sh: no $eval_dir/nab_score.py (set EVAL_DIR)"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=thrillmon_nab
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION thrillmon"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $db -c "$1"; }
default=$(q "SELECT sensitivity FROM thrillmon.anomaly_detection_config WHERE metric_name = '*'")
sens=$(printf '%s\n' ${SENSITIVITIES:-3 3.5 4 4.5 5 5.5 6} "$default" | sort -gu)
cats=$(cd "$data" && for d in */; do echo "${d%/}"; done)

# subset NAME CATEGORY...: a data directory holding only those categories.
subset() {
	local name=$1
	shift
	mkdir -p "$work/data/$name"
	# (copies of symlinks to the files: the scorer does not follow a symlinked directory)
	for c in "$@"; do cp -rs "$(cd "$data" && pwd)/$c" "$work/data/$name/"; done
}
# score SENSITIVITY SUBSET: "standard low_fp low_fn" of that run on that subset.
score() {
	python3 "$eval_dir/nab_score.py" --results "$work/res/$1" --data "$work/data/$2" \
		--windows "$data/windows.json" --profiles "$data/profiles.json" --digits 1 2>/dev/null | tail -1 |
		sed 's/standard=\([^ ]*\) low_fp=\([^ ]*\) low_fn=\(.*\)/\1 \2 \3/'
}

for s in $sens; do
	q "UPDATE thrillmon.anomaly_detection_config SET sensitivity = $s WHERE metric_name = '*'" >/dev/null
	PGDATABASE=$db python3 "$eval_dir/nab_score.py" --detector "bash $PWD/bench/nab/sql_detector.sh" --jobs 2 \
		--save-results "$work/res/$s" >/dev/null 2>&1
done
q "UPDATE thrillmon.anomaly_detection_config SET sensitivity = $default WHERE metric_name = '*'" >/dev/null
subset all $cats
for c in $cats; do
	subset "only_$c" "$c"
	# shellcheck disable=SC2046
	subset "without_$c" $(echo "$cats" | grep -vx "$c")
done

echo "# thrillmon $(q "SELECT extversion FROM pg_extension WHERE extname = 'thrillmon'"), default sensitivity $default, tried: $(echo $sens)"
read -r a b c <<<"$(score "$default" all)"
echo "all 41 files at the default: standard $a, low_fp $b, low_fn $c"
printf '%-24s %14s %12s %22s %22s\n' category default_std tuned_on_4 held_out_std/fp/fn in_sample_best_std
sum_d=0 sum_h=0 k=0
for c in $cats; do
	best= best_v=-1e9
	[ -n "$(score "$default" "only_$c" | tr -d ' ')" ] || { printf '%-24s %14s\n' "$c" "no windows"; continue; }
	for s in $sens; do
		read -r v _ _ <<<"$(score "$s" "without_$c")"
		if awk -v v="$v" -v b="$best_v" 'BEGIN { exit !(v > b) }'; then best=$s best_v=$v; fi
	done
	read -r d _ _ <<<"$(score "$default" "only_$c")"
	read -r h hf hn <<<"$(score "$best" "only_$c")"
	ib=-1e9
	for s in $sens; do
		read -r v _ _ <<<"$(score "$s" "only_$c")"
		ib=$(awk -v v="$v" -v b="$ib" 'BEGIN { print (v > b) ? v : b }')
	done
	printf '%-24s %14s %12s %22s %22s\n' "$c" "$d" "$best" "$h/$hf/$hn" "$ib"
	sum_d=$(awk -v a="$sum_d" -v b="$d" 'BEGIN { print a + b }')
	sum_h=$(awk -v a="$sum_h" -v b="$h" 'BEGIN { print a + b }')
	k=$((k + 1))
done
echo "mean over the $k scored categories: at the default $(awk -v s="$sum_d" -v k="$k" 'BEGIN { printf "%.1f", s / k }'), left out (tuned on the other four) $(awk -v s="$sum_h" -v k="$k" 'BEGIN { printf "%.1f", s / k }')"
