#!/usr/bin/env bash
# thrillmon.report() in a real browser: Debian's Chromium, headless, loads each report from a
# file (no network) and dumps the DOM it built; the test counts charts, anomaly markers and table
# rows against SQL, checks that nothing a metric name or message holds became markup, that the
# browser logged no console error, and writes a screenshot under the test's output folder
# ($REPORT_OUT, default results/report/; `make report-screenshot` writes docs/report.png from this
# same path). Cases: a day of two metrics with a spike, a shift and their anomalies, alerts and
# an incident; a name with <script>, quotes and Unicode whose values are +-1e300; one point; no
# metric at all; a range with no data. Runs against the PG* server. Speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/scripts/lib/tap.sh
out=${REPORT_OUT:-results/report}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)
[ -x "$CHROMIUM" ] || { echo "Bail out! chromium is not installed (scripts/deps.sh installs it)"; exit 1; }
db=thrillmon_report
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
echo "1..27"

# browse NAME: loads $work/NAME.html in Chromium; $work/NAME.dom is the DOM it built, NAME.log
# what it logged (console messages appear there as "CONSOLE" lines).
browse() {
	# As root Chromium needs --no-sandbox; /dev/shm may be small in a container; a private
	# profile keeps runs apart.
	"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir="$work/profile-$1" \
		--enable-logging=stderr --v=0 --dump-dom "file://$work/$1.html" > "$work/$1.dom" 2> "$work/$1.log"
}
console_errors() { grep -c -E 'CONSOLE|Uncaught' "$work/$1.log"; }
# The console check can fail: a page that logs an error is seen.
echo '<html><body><script>console.error("seen"); notDefined();</script></body></html>' > "$work/control.html"
count() { grep -o -- "$2" "$work/$1.dom" | wc -l; }

browse control
is "$(console_errors control)" "2" "the console check sees a page's console.error and uncaught error (a control)"

# 2-12: a day of data.
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION thrillmon;
SELECT thrillmon.maintain_partitions(1);
SELECT count(thrillmon.record_metric('api_response_time', 120 + 10 * sin(g / 30.0) + CASE WHEN g = 1300 THEN 900 ELSE 0 END,
	'performance', ts => now() - (1440 - g) * interval '1 minute')::text) FROM generate_series(1, 1440) g;
SELECT count(thrillmon.record_metric('error_rate', CASE WHEN g > 1200 THEN 5 ELSE 1 END + (g % 7) / 10.0,
	ts => now() - (1440 - g) * interval '1 minute')::text) FROM generate_series(1, 1440) g;
SELECT count(*) FROM thrillmon.detect_anomalies();
SQL
ok $? "a day of two metrics, detected"
q "SELECT thrillmon.report()" > "$work/day.html"
ok $? "report() renders it"
size=$(wc -c < "$work/day.html")
like "$size" '^[0-9]{5,6}$' "a self-contained document of $size bytes"
is "$(grep -c -E '(src|href)="(https?:)?//' "$work/day.html")" "0" "no external asset: nothing loaded from a network"
browse day
ok $? "Chromium loads it"
is "$(console_errors day)" "0" "no console error"
is "$(count day '<figure class="chart"')" "2" "one chart per metric"
marks=$(q "SELECT count(*) FROM thrillmon.anomaly_detections WHERE time_window_end > now() - interval '24 hours'")
is "$(count day '<use class="mark ')" "$marks" "each anomaly of the range is marked ($marks)"
is "$(count day '<path class="band"')" "2" "each chart has the detector's band"
alerts=$(q "SELECT count(*) FROM thrillmon.system_alerts")
rows() { python3 -c "import sys; d=open(sys.argv[1]).read(); i=d.index('<caption>'+sys.argv[2]+'</caption>'); print(d[i:d.index('</table>', i)].count('<tr>'))" "$work/$1.dom" "$2"; }
is "$(rows day Alerts)" "$((alerts + 1))" \
	"the alerts table has a row per alert ($alerts) under its header"
is "$(count day '<table>')/$(count day 'id="retention"')/$(count day 'id="jobs"')/$(count day 'id="collectors"')" "4/1/1/1" \
	"tables of alerts, incidents, jobs and retention; the collectors section"
"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir="$work/profile-shot" --hide-scrollbars \
	--window-size=1000,1900 --screenshot="$out/report.png" "file://$work/day.html" >/dev/null 2>&1
[ -s "$out/report.png" ] && cp "$work/day.html" "$out/report.html"
ok $? "a screenshot: $out/report.png"

# 13-18: hostile names and extreme values.
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SELECT count(thrillmon.record_metric('<script>alert(1)</script> "q" ''s'' ünï 名前', CASE WHEN g % 2 = 0 THEN 1e300 ELSE -1e300 END,
	ts => now() - g * interval '1 hour')::text) FROM generate_series(1, 5) g;
INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metric_name)
VALUES ('anomaly', 'high', '<img src=x onerror=alert(2)> & </table>', '<script>alert(1)</script> "q" ''s'' ünï 名前');
SQL
q "SELECT thrillmon.report()" > "$work/hostile.html"
ok $? "report() renders values of +-1e300 (no overflow error)"
browse hostile
is "$(count hostile '<script')/$(count hostile '<img')/$(console_errors hostile)" "0/0/0" \
	"a name with <script> and a message with <img onerror> stay text: no script or image element, no console error"
like "$(grep -c '&lt;script&gt;alert(1)&lt;/script&gt; "q" '"'"'s'"'"' ünï 名前' "$work/hostile.dom")" '^[1-9]' "the name reads as written, Unicode included"
is "$(count hostile '<figure class="chart"')" "3" "its chart is there too"
is "$(count hostile '<table>')" "4" "the message's </table> ended no table"
like "$(grep -o '1.00e+300' "$work/hostile.dom" | head -1)" '1.00e\+300' "the extremes are labelled"

# 19-21: one point; an explicit list with an unknown name.
q "SELECT thrillmon.record_metric('one_point', 3, ts => now() - interval '1 hour')" >/dev/null
q "SELECT thrillmon.report(metrics => ARRAY['one_point', 'no_such_metric'])" > "$work/one.html"
browse one
is "$(count one '<circle class="dot"')/$(console_errors one)" "1/0" "one point is drawn as a dot"
is "$(count one '<figure class="chart"')/$(count one 'no points in this range')" "2/1" "an unknown name gets a chart that says it has no points"

# 22-24: no data in the range; a database with no metric at all.
q "SELECT thrillmon.report('2001-01-01', '2001-01-02')" > "$work/empty.html"
browse empty
is "$(count empty '<figure')/$(count empty 'No metric has points in this range')/$(console_errors empty)" "0/1/0" "a range with no data says so"
psql -X -q -c "DROP DATABASE IF EXISTS ${db}_none" -c "CREATE DATABASE ${db}_none" >/dev/null 2>&1
psql -X -q -At -d ${db}_none -c "CREATE EXTENSION thrillmon" -c "SELECT thrillmon.report()" > "$work/none.html"
ok $? "a fresh install renders a report"
browse none
is "$(count none '<figure')/$(count none 'No alert in this range')/$(console_errors none)" "0/1/0" "with no metric, no alert, and no console error"

# 25-27: bad arguments.
is "$(psql -X -q -At -d "$db" -c "SELECT thrillmon.report(now(), now() - interval '1 day')" 2>&1 | grep -o 'range is empty')" "range is empty" \
	"a range that ends before it starts is refused"
is "$(psql -X -q -At -d "$db" -c "SELECT thrillmon.report(NULL)" 2>&1 | grep -o 'needs a range')" "needs a range" "a NULL bound is refused"
is "$(psql -X -q -At -d "$db" -c "SELECT thrillmon.report(metrics => array_fill('x'::text, ARRAY[1001]))" 2>&1 | grep -o 'at most 1000 metrics')" \
	"at most 1000 metrics" "more than 1000 metrics are refused"
psql -X -q -c "DROP DATABASE $db" -c "DROP DATABASE ${db}_none" >/dev/null
exit $((fails > 0))
