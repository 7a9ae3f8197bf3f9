-- The HTML report: thrillmon.report() returns one self-contained HTML document (inline CSS and
-- SVG, no script, no external asset) for a time range: the health verdict, one chart per metric
-- (its series as the minimum and maximum of each of 300 pixel columns, so a spike is never
-- averaged away; the detector's band from backtest(); each anomaly marked by severity with a
-- shape as well as a colour), the alerts and incidents of the range as a timeline and tables,
-- the jobs, the collectors and the Data Retention panel. `psql -Atc "SELECT thrillmon.report()"
-- > report.html` is the whole usage (docs/report.md).

-- Text for HTML: the five characters that could end a text node or an attribute, escaped.
CREATE FUNCTION thrillmon._html(p_text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
		COALESCE(p_text, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$fn$;
COMMENT ON FUNCTION thrillmon._html(text) IS 'Internal: text escaped for HTML text and attributes';

-- A time for the report, in the session's time zone.
CREATE FUNCTION thrillmon._report_time(p_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT COALESCE(pg_catalog.to_char(p_ts, 'YYYY-MM-DD HH24:MI:SS'), '')
$fn$;
COMMENT ON FUNCTION thrillmon._report_time(timestamptz) IS 'Internal: a time as the report shows it';

-- One metric's chart: an SVG of 900 x 170, its series in 300 columns of [min, max], the band,
-- the anomalies (at most 500, the latest), a hover title per column. Column arithmetic is in
-- float8 (fast) on halved values, and the vertical scale in numeric: float8 raises on overflow,
-- and a metric may hold 1e300 and -1e300 at once.
CREATE FUNCTION thrillmon._report_chart(p_metric text, p_from timestamptz, p_to timestamptz, p_id integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	c_w constant integer := 900;
	c_h constant integer := 170;
	c_left constant integer := 72;
	c_right constant integer := 12;
	c_top constant integer := 8;
	c_bottom constant integer := 22;
	c_cols constant integer := 300;
	v_pw double precision := c_w - c_left - c_right;
	v_ph double precision := c_h - c_top - c_bottom;
	v_t0 double precision := pg_catalog.date_part('epoch', p_from);
	v_span double precision := GREATEST(pg_catalog.date_part('epoch', p_to) - pg_catalog.date_part('epoch', p_from), 1);
	v_points bigint;
	v_dlo double precision;
	v_dhi double precision;
	v_blo double precision;
	v_bhi double precision;
	v_lo numeric;
	v_hi numeric;
	v_k double precision;
	v_sens double precision;
	v_last double precision;
	v_cat text;
	v_c integer[];
	v_clo double precision[];
	v_chi double precision[];
	v_cn bigint[];
	v_bc integer[];
	v_cblo double precision[];
	v_cbhi double precision[];
	v_series text;
	v_dots text;
	v_hover text;
	v_band text;
	v_marks text;
	v_nmarks bigint;
BEGIN
	-- The series: per column its lowest and highest point, halved (so that differences of
	-- values as far apart as -1e300 and 1e300 stay finite).
	SELECT pg_catalog.array_agg(a.c ORDER BY a.c), pg_catalog.array_agg(a.lo ORDER BY a.c), pg_catalog.array_agg(a.hi ORDER BY a.c),
		pg_catalog.array_agg(a.n ORDER BY a.c), pg_catalog.sum(a.n), pg_catalog.min(a.lo), pg_catalog.max(a.hi)
	INTO v_c, v_clo, v_chi, v_cn, v_points, v_dlo, v_dhi
	FROM (SELECT LEAST(c_cols - 1, pg_catalog.floor((pg_catalog.date_part('epoch', t."timestamp") - v_t0) / v_span * c_cols))::integer AS c,
			pg_catalog.min(t.metric_value) / 2 AS lo, pg_catalog.max(t.metric_value) / 2 AS hi, pg_catalog.count(*) AS n
		FROM thrillmon.metric_time_series t
		WHERE t.metric_name = p_metric AND t."timestamp" >= p_from AND t."timestamp" <= p_to
		GROUP BY 1) a;
	IF v_points IS NULL THEN
		RETURN '<figure class="chart" id="metric-' || p_id || '"><figcaption><span class="name">' || thrillmon._html(p_metric)
			|| '</span> <span class="meta">no points in this range</span></figcaption></figure>';
	END IF;
	SELECT t.metric_value, t.metric_category INTO v_last, v_cat
	FROM thrillmon.metric_time_series t
	WHERE t.metric_name = p_metric AND t."timestamp" >= p_from AND t."timestamp" <= p_to
	ORDER BY t."timestamp" DESC LIMIT 1;

	-- The detector's band: baseline ± sensitivity × the point's spread (|value - baseline| over its
	-- deviation in robust standard deviations), per column, from the same replay backtest() gives.
	-- Halved too, the spread capped at 1e290 and the sensitivity at 1e6: nothing overflows.
	v_sens := LEAST((thrillmon._config_for(p_metric)).sensitivity, 1e6);
	SELECT pg_catalog.array_agg(b.c ORDER BY b.c), pg_catalog.array_agg(b.lo ORDER BY b.c), pg_catalog.array_agg(b.hi ORDER BY b.c),
		pg_catalog.min(b.lo), pg_catalog.max(b.hi)
	INTO v_bc, v_cblo, v_cbhi, v_blo, v_bhi
	FROM (SELECT LEAST(c_cols - 1, pg_catalog.floor((pg_catalog.date_part('epoch', bt."timestamp") - v_t0) / v_span * c_cols))::integer AS c,
			pg_catalog.min(bt.baseline / 2 - v_sens * LEAST(pg_catalog.abs(bt.value / 2 - bt.baseline / 2) / pg_catalog.abs(bt.deviation), 1e290)) AS lo,
			pg_catalog.max(bt.baseline / 2 + v_sens * LEAST(pg_catalog.abs(bt.value / 2 - bt.baseline / 2) / pg_catalog.abs(bt.deviation), 1e290)) AS hi
		FROM thrillmon.backtest(p_metric, p_from, p_to) bt
		WHERE bt.baseline IS NOT NULL AND bt.deviation IS NOT NULL AND pg_catalog.abs(bt.deviation) > 1e-9
		GROUP BY 1) b;

	-- The vertical range (in numeric, un-halved): the data's, widened to the band but never more
	-- than half the data's range beyond it (a wild band while the detector warms up would flatten
	-- the series).
	v_lo := 2 * v_dlo::numeric;
	v_hi := 2 * v_dhi::numeric;
	IF v_blo IS NOT NULL THEN
		v_lo := LEAST(v_lo, GREATEST(2 * v_blo::numeric, v_lo - (v_hi - v_lo) / 2));
		v_hi := GREATEST(v_hi, LEAST(2 * v_bhi::numeric, v_hi + (v_hi - v_lo) / 2));
	END IF;
	IF v_hi = v_lo THEN
		v_lo := v_lo - GREATEST(pg_catalog.abs(v_lo) / 10, 1);
		v_hi := v_hi + GREATEST(pg_catalog.abs(v_hi) / 10, 1);
	END IF;
	-- y(v) = top + (hi - v) * k with v halved: k = ph / (hi - lo) * 2, all in float8 from here on.
	v_k := (v_ph::numeric / ((v_hi - v_lo) / 2))::double precision;

	-- The series path (a new M after a gap), a dot for a point with no neighbour, hover columns.
	SELECT pg_catalog.string_agg(CASE WHEN z.c = z.prev + 1 THEN 'L' ELSE 'M' END || z.x || ',' || z.yhi || 'L' || z.x || ',' || z.ylo, '' ORDER BY z.c),
		COALESCE(pg_catalog.string_agg('<circle class="dot" cx="' || z.x || '" cy="' || z.yhi || '" r="2"/>', '' ORDER BY z.c)
			FILTER (WHERE z.c <> z.prev + 1 AND z.c + 1 <> z.next), ''),
		pg_catalog.string_agg('<rect x="' || z.x0 || '" y="' || c_top || '" width="' || pg_catalog.round((v_pw / c_cols)::numeric, 2)
			|| '" height="' || v_ph || '"><title>' || pg_catalog.to_char(pg_catalog.to_timestamp(v_t0 + z.c * v_span / c_cols), 'YYYY-MM-DD HH24:MI')
			|| ': ' || CASE WHEN z.lo = z.hi THEN thrillmon._dashboard_number(2 * z.lo)
				ELSE thrillmon._dashboard_number(2 * z.lo) || ' to ' || thrillmon._dashboard_number(2 * z.hi) END
			|| ' (' || z.n || CASE WHEN z.n = 1 THEN ' point' ELSE ' points' END || ')</title></rect>', '' ORDER BY z.c)
	INTO v_series, v_dots, v_hover
	FROM (SELECT x.c, x.lo, x.hi, x.n,
			COALESCE(pg_catalog.lag(x.c) OVER (ORDER BY x.c), -2) AS prev, COALESCE(pg_catalog.lead(x.c) OVER (ORDER BY x.c), -2) AS next,
			pg_catalog.round((c_left + (x.c + 0.5) * v_pw / c_cols)::numeric, 1) AS x,
			pg_catalog.round((c_left + x.c * v_pw / c_cols)::numeric, 1) AS x0,
			pg_catalog.round((c_top + (v_hi / 2 - x.hi::numeric)::double precision * v_k)::numeric, 1) AS yhi,
			pg_catalog.round((c_top + (v_hi / 2 - x.lo::numeric)::double precision * v_k)::numeric, 1) AS ylo
		FROM ROWS FROM (pg_catalog.unnest(v_c), pg_catalog.unnest(v_clo), pg_catalog.unnest(v_chi), pg_catalog.unnest(v_cn)) x(c, lo, hi, n)) z;
	-- The band: along its top left to right, back along its bottom (clamped to the plot).
	SELECT 'M' || pg_catalog.string_agg(z.x || ',' || z.yhi, 'L' ORDER BY z.c) || 'L'
		|| pg_catalog.string_agg(z.x || ',' || z.ylo, 'L' ORDER BY z.c DESC) || 'Z'
	INTO v_band
	FROM (SELECT x.c, pg_catalog.round((c_left + (x.c + 0.5) * v_pw / c_cols)::numeric, 1) AS x,
			pg_catalog.round((c_top + LEAST(v_ph, GREATEST(0, (v_hi / 2 - x.bhi::numeric)::double precision * v_k)))::numeric, 1) AS yhi,
			pg_catalog.round((c_top + LEAST(v_ph, GREATEST(0, (v_hi / 2 - x.blo::numeric)::double precision * v_k)))::numeric, 1) AS ylo
		FROM ROWS FROM (pg_catalog.unnest(v_bc), pg_catalog.unnest(v_cblo), pg_catalog.unnest(v_cbhi)) x(c, blo, bhi)) z;
	-- Anomalies: a shape per severity (circle, square, triangle, diamond) as well as a colour.
	SELECT pg_catalog.count(*), pg_catalog.string_agg('<use class="mark ' || a.severity || '" href="#m-' || a.severity || '" x="'
			|| pg_catalog.round((c_left + (pg_catalog.date_part('epoch', a.ts) - v_t0) / v_span * v_pw - 6)::numeric, 1) || '" y="'
			|| pg_catalog.round((c_top + LEAST(v_ph, GREATEST(0, (v_hi - a.value::numeric)::double precision * v_k / 2)) - 6)::numeric, 1)
			|| '" width="12" height="12"><title>' || a.severity || ' ' || a.anomaly_type || ' at ' || thrillmon._report_time(a.ts)
			|| ': ' || thrillmon._dashboard_number(a.value)
			|| COALESCE(' (baseline ' || thrillmon._dashboard_number(a.baseline_value) || ')', '')
			|| ', ' || pg_catalog.round(a.deviation_score::numeric, 1) || ' deviations</title></use>', '' ORDER BY a.ts)
	INTO v_nmarks, v_marks
	FROM (SELECT d.time_window_end AS ts, d.anomaly_value AS value, d.severity, d.anomaly_type, d.baseline_value, d.deviation_score
		FROM thrillmon.anomaly_detections d WHERE d.metric_name = p_metric AND d.time_window_end BETWEEN p_from AND p_to
		UNION ALL
		SELECT d.time_window_end, d.anomaly_value, d.severity, d.anomaly_type, d.baseline_value, d.deviation_score
		FROM thrillmon.anomaly_detections_archive d WHERE d.metric_name = p_metric AND d.time_window_end BETWEEN p_from AND p_to
		ORDER BY 1 DESC LIMIT 500) a;

	RETURN '<figure class="chart" id="metric-' || p_id || '"><figcaption><span class="name">' || thrillmon._html(p_metric)
		|| '</span> <span class="meta">' || thrillmon._html(COALESCE(v_cat, '')) || ' · ' || v_points
		|| CASE WHEN v_points = 1 THEN ' point' ELSE ' points' END
		|| ' · last ' || thrillmon._dashboard_number(v_last) || ' · range ' || thrillmon._dashboard_number(2 * v_dlo)
		|| ' to ' || thrillmon._dashboard_number(2 * v_dhi) || ' · ' || v_nmarks
		|| CASE WHEN v_nmarks = 1 THEN ' anomaly' ELSE ' anomalies' END || '</span></figcaption>'
		|| '<svg viewBox="0 0 ' || c_w || ' ' || c_h || '" role="img" aria-labelledby="metric-' || p_id || '-title">'
		|| '<title id="metric-' || p_id || '-title">' || thrillmon._html(p_metric) || ' from ' || thrillmon._report_time(p_from)
		|| ' to ' || thrillmon._report_time(p_to) || ', ' || v_nmarks || CASE WHEN v_nmarks = 1 THEN ' anomaly' ELSE ' anomalies' END
		|| '</title>'
		|| '<rect class="plot" x="' || c_left || '" y="' || c_top || '" width="' || v_pw || '" height="' || v_ph || '"/>'
		|| COALESCE('<path class="band" d="' || v_band || '"/>', '')
		|| '<path class="series" d="' || v_series || '"/>' || v_dots
		|| '<text class="axis" x="' || (c_left - 4) || '" y="' || (c_top + 9) || '" text-anchor="end">'
		|| thrillmon._dashboard_number(v_hi::double precision) || '</text>'
		|| '<text class="axis" x="' || (c_left - 4) || '" y="' || (c_top + v_ph) || '" text-anchor="end">'
		|| thrillmon._dashboard_number(v_lo::double precision) || '</text>'
		|| '<text class="axis" x="' || c_left || '" y="' || (c_h - 6) || '">' || thrillmon._report_time(p_from) || '</text>'
		|| '<text class="axis" x="' || (c_w - c_right) || '" y="' || (c_h - 6) || '" text-anchor="end">' || thrillmon._report_time(p_to) || '</text>'
		|| '<g class="hover">' || v_hover || '</g>' || COALESCE(v_marks, '') || '</svg></figure>';
END
$fn$;
COMMENT ON FUNCTION thrillmon._report_chart(text, timestamptz, timestamptz, integer) IS
	'Internal: one metric''s SVG chart for report()';

CREATE FUNCTION thrillmon.report("from" timestamptz DEFAULT pg_catalog.now() - interval '24 hours',
	"to" timestamptz DEFAULT pg_catalog.now(), metrics text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	v_from timestamptz := $1;
	v_to timestamptz := $2;
	v_names text[] := $3;
	v_left_out bigint := 0;
	v_health jsonb := thrillmon.health_check();
	v_charts text := '';
	v_span numeric;
	v_html text;
	v_i integer := 0;
	m text;
BEGIN
	IF v_from IS NULL OR v_to IS NULL THEN
		RAISE EXCEPTION 'thrillmon: report() needs a range: from and to must not be NULL' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_from >= v_to THEN
		RAISE EXCEPTION 'thrillmon: report() range is empty: from (%) is not before to (%)', v_from, v_to
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF pg_catalog.cardinality(v_names) > 1000 THEN
		RAISE EXCEPTION 'thrillmon: report() draws at most 1000 metrics, not %', pg_catalog.cardinality(v_names)
			USING ERRCODE = 'program_limit_exceeded', HINT = 'Ask for fewer metrics, or several reports.';
	END IF;
	v_span := EXTRACT(EPOCH FROM (v_to - v_from));
	IF v_names IS NULL THEN
		-- Every metric with points in the range, by name, at most 200.
		v_names := ARRAY(SELECT thrillmon._metric_names(v_from, v_to, 201));
		IF pg_catalog.cardinality(v_names) > 200 THEN
			v_names := v_names[1:200];
			v_left_out := 1;
		END IF;
	ELSE
		SELECT pg_catalog.array_agg(DISTINCT x) INTO v_names FROM pg_catalog.unnest(v_names) x WHERE x IS NOT NULL;
	END IF;
	FOREACH m IN ARRAY COALESCE(v_names, '{}') LOOP
		v_i := v_i + 1;
		v_charts := v_charts || thrillmon._report_chart(m, v_from, v_to, v_i);
	END LOOP;

	v_html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
		|| '<title>thrillmon report ' || thrillmon._report_time(v_from) || ' to ' || thrillmon._report_time(v_to) || '</title><style>'
		|| 'body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1b;background:#fff;margin:0 auto;max-width:960px;padding:16px}'
		|| 'h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}'
		|| '.verdict{font-weight:600;padding:6px 10px;border-left:6px solid}.ok{border-color:#2e7d32}.degraded{border-color:#b26a00}'
		|| '.failing{border-color:#b00020}figure{margin:14px 0}figcaption .name{font-weight:600}figcaption .meta{color:#555}'
		|| 'svg{width:100%;height:auto;display:block}.plot{fill:#fafafa;stroke:#ddd}.band{fill:#1565c0;fill-opacity:.12;stroke:none}'
		|| '.series{fill:none;stroke:#1565c0;stroke-width:1.2;stroke-linejoin:round}.dot{fill:#1565c0}.axis{font-size:11px;fill:#555}.hover rect{fill:transparent}'
		|| '.hover rect:hover{fill:#000;fill-opacity:.06}.mark{stroke:#fff;stroke-width:1}.low{fill:#607d8b}.medium{fill:#b26a00}'
		|| '.high{fill:#d84315}.critical{fill:#b00020}table{border-collapse:collapse;width:100%;font-size:13px}'
		|| 'th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #e5e5e5;vertical-align:top}th{background:#f3f3f3}'
		|| 'td.num{text-align:right}.legend svg{display:inline;width:12px;height:12px;vertical-align:-1px}'
		|| '@media print{body{max-width:none}.hover{display:none}figure{break-inside:avoid}}</style></head><body>'
		-- Marker shapes, once: referenced by every chart.
		|| '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
		|| '<symbol id="m-low" viewBox="-6 -6 12 12"><circle r="3.5"/></symbol>'
		|| '<symbol id="m-medium" viewBox="-6 -6 12 12"><rect x="-3.5" y="-3.5" width="7" height="7"/></symbol>'
		|| '<symbol id="m-high" viewBox="-6 -6 12 12"><path d="M0,-5L5,4L-5,4Z"/></symbol>'
		|| '<symbol id="m-critical" viewBox="-6 -6 12 12"><path d="M0,-6L6,0L0,6L-6,0Z"/></symbol></defs></svg>'
		|| '<header><h1>thrillmon report</h1><p>' || thrillmon._html(pg_catalog.current_database()) || ' · '
		|| thrillmon._report_time(v_from) || ' to ' || thrillmon._report_time(v_to) || ' (' || pg_catalog.current_setting('TimeZone')
		|| ')</p><p class="verdict ' || (v_health->>'status') || '">Health: ' || (v_health->>'status') || '</p>';
	-- What needs attention first: health_check()'s reasons, the critical and high alerts still
	-- open, the incidents not over.
	v_html := v_html || COALESCE('<ul class="attention">' || (
		SELECT pg_catalog.string_agg('<li>' || thrillmon._html(r) || '</li>', '')
		FROM (SELECT pg_catalog.jsonb_array_elements_text(v_health->'reasons') AS r
			UNION ALL SELECT pg_catalog.count(*) || ' ' || a.severity || ' alert' || CASE WHEN pg_catalog.count(*) > 1 THEN 's' ELSE '' END || ' open'
				FROM thrillmon.system_alerts a WHERE a.resolved_at IS NULL AND a.severity IN ('critical', 'high') GROUP BY a.severity
			UNION ALL SELECT pg_catalog.count(*) || ' incident' || CASE WHEN pg_catalog.count(*) > 1 THEN 's' ELSE '' END || ' not resolved'
				FROM thrillmon.incidents i WHERE i.status IN (@list:incident_status_unfinished@) HAVING pg_catalog.count(*) > 0) s)
		|| '</ul>', '<p>Nothing needs attention.</p>') || '</header>';

	v_html := v_html || '<section id="metrics"><h2>Metrics</h2><p class="legend">Each chart: the series (the lowest and highest '
		|| 'point of each pixel column), the detector''s band (shaded), anomalies by severity: '
		|| '<svg viewBox="0 0 12 12"><use class="low" href="#m-low" width="12" height="12"/></svg> low, '
		|| '<svg viewBox="0 0 12 12"><use class="medium" href="#m-medium" width="12" height="12"/></svg> medium, '
		|| '<svg viewBox="0 0 12 12"><use class="high" href="#m-high" width="12" height="12"/></svg> high, '
		|| '<svg viewBox="0 0 12 12"><use class="critical" href="#m-critical" width="12" height="12"/></svg> critical.</p>'
		|| CASE WHEN v_i = 0 THEN '<p>No metric has points in this range.</p>' ELSE v_charts END
		|| CASE WHEN v_left_out > 0 THEN '<p>Only the first 200 metrics by name are drawn; pass metrics =&gt; ARRAY[…] for others.</p>' ELSE '' END
		|| '</section>';

	-- Alerts of the range: a timeline (one bar per alert, at most 200) and a table.
	v_html := v_html || '<section id="alerts"><h2>Alerts and incidents</h2>' || COALESCE((
		SELECT '<svg class="timeline" viewBox="0 0 900 ' || (pg_catalog.count(*) * 14 + 24) || '" role="img" aria-label="Timeline of '
			|| pg_catalog.count(*) || ' alerts">'
			|| pg_catalog.string_agg('<rect class="' || a.severity || '" x="' || pg_catalog.round(92 + EXTRACT(EPOCH FROM (GREATEST(a.created_at, v_from) - v_from)) / v_span * 796, 1)
				|| '" y="' || (a.rn * 14 - 4) || '" width="' || GREATEST(2, pg_catalog.round(EXTRACT(EPOCH FROM (LEAST(COALESCE(a.resolved_at, v_to), v_to)
					- GREATEST(a.created_at, v_from))) / v_span * 796, 1)) || '" height="10"><title>' || a.severity || ': '
				|| thrillmon._html(a.message) || '</title></rect><text class="axis" x="88" y="' || (a.rn * 14 + 5) || '" text-anchor="end">'
				|| thrillmon._html(thrillmon._dashboard_cell(COALESCE(a.metric_name, a.alert_type), 11)) || '</text>', '' ORDER BY a.rn)
			|| '<text class="axis" x="92" y="' || (pg_catalog.count(*) * 14 + 20) || '">' || thrillmon._report_time(v_from) || '</text>'
			|| '<text class="axis" x="888" y="' || (pg_catalog.count(*) * 14 + 20) || '" text-anchor="end">' || thrillmon._report_time(v_to) || '</text></svg>'
			|| '<table><caption>Alerts</caption><thead><tr><th scope="col">created</th><th scope="col">resolved</th><th scope="col">open for</th><th scope="col">severity</th>'
			|| '<th scope="col">metric</th><th scope="col">message</th></tr></thead><tbody>'
			|| pg_catalog.string_agg('<tr><td>' || thrillmon._report_time(a.created_at) || '</td><td>'
				|| COALESCE(thrillmon._report_time(a.resolved_at), 'open') || '</td><td>'
				|| thrillmon._dashboard_age(a.created_at, LEAST(COALESCE(a.resolved_at, v_to), v_to)) || '</td><td>' || a.severity || '</td><td>'
				|| thrillmon._html(COALESCE(a.metric_name, a.alert_type)) || '</td><td>' || thrillmon._html(a.message) || '</td></tr>', '' ORDER BY a.rn)
			|| '</tbody></table>'
		FROM (SELECT al.*, pg_catalog.row_number() OVER (ORDER BY al.created_at, al.id) AS rn
			FROM thrillmon.system_alerts al WHERE al.created_at <= v_to AND (al.resolved_at IS NULL OR al.resolved_at >= v_from)
			ORDER BY al.created_at, al.id LIMIT 200) a
		HAVING pg_catalog.count(*) > 0), '<p>No alert in this range.</p>');
	v_html := v_html || COALESCE((
		SELECT '<table><caption>Incidents</caption><thead><tr><th scope="col">incident</th><th scope="col">title</th><th scope="col">severity</th>'
			|| '<th scope="col">status</th><th scope="col">detected</th><th scope="col">duration</th><th scope="col">alerts</th></tr></thead><tbody>'
			|| pg_catalog.string_agg('<tr><td>' || thrillmon._html(x.incident_number) || '</td><td>' || thrillmon._html(x.title) || '</td><td>'
				|| x.severity || '</td><td>' || x.status || '</td><td>' || thrillmon._report_time(x.detected_at) || '</td><td>'
				|| thrillmon._dashboard_age(x.detected_at, COALESCE(x.resolved_at, x.closed_at, v_to)) || '</td><td class="num">'
				|| x.linked || '</td></tr>', '' ORDER BY x.detected_at, x.id) || '</tbody></table>'
		FROM (SELECT inc.*, (SELECT pg_catalog.count(*) FROM thrillmon.incident_alerts ia WHERE ia.incident_id = inc.id) AS linked
			FROM thrillmon.incidents inc
			WHERE inc.detected_at <= v_to AND COALESCE(inc.resolved_at, inc.closed_at, v_to) >= v_from
			ORDER BY inc.detected_at, inc.id LIMIT 200) x
		HAVING pg_catalog.count(*) > 0), '<p>No incident in this range.</p>') || '</section>';

	-- Jobs, collectors, retention.
	v_html := v_html || '<section id="jobs"><h2>Jobs</h2><table><thead><tr><th scope="col">job</th><th scope="col">runs in range</th>'
		|| '<th scope="col">failed</th><th scope="col">last run</th><th scope="col">status</th><th scope="col">duration</th>'
		|| '<th scope="col">last error</th></tr></thead><tbody>' || COALESCE((
		SELECT pg_catalog.string_agg('<tr><td>' || j.job || '</td><td class="num">' || j.runs || '</td><td class="num">' || j.failed
			|| '</td><td>' || COALESCE(thrillmon._report_time(l.started_at), 'never') || '</td><td>' || COALESCE(l.status, '')
			|| '</td><td class="num">' || COALESCE(pg_catalog.round(l.duration_ms::numeric, 1) || ' ms', '') || '</td><td>'
			|| thrillmon._html(e.error) || '</td></tr>', '' ORDER BY j.ord)
		FROM (SELECT v.job, v.ord,
				(SELECT pg_catalog.count(*) FROM thrillmon.job_runs r WHERE r.job = v.job AND r.started_at BETWEEN v_from AND v_to) AS runs,
				(SELECT pg_catalog.count(*) FROM thrillmon.job_runs r WHERE r.job = v.job AND r.status = 'failed'
					AND r.started_at BETWEEN v_from AND v_to) AS failed
			FROM pg_catalog.unnest(ARRAY[@list:job@]::text[]) WITH ORDINALITY v(job, ord)) j
		LEFT JOIN LATERAL (SELECT r.started_at, r.status, r.duration_ms FROM thrillmon.job_runs r
			WHERE r.job = j.job AND r.started_at <= v_to ORDER BY r.started_at DESC LIMIT 1) l ON true
		LEFT JOIN LATERAL (SELECT r.error FROM thrillmon.job_runs r
			WHERE r.job = j.job AND r.status = 'failed' AND r.started_at BETWEEN v_from AND v_to ORDER BY r.started_at DESC LIMIT 1) e ON true), '')
		|| '</tbody></table></section>';
	v_html := v_html || '<section id="collectors"><h2>Collectors</h2>' || COALESCE((
		SELECT '<table><thead><tr><th scope="col">collector</th><th scope="col">enabled</th><th scope="col">interval</th>'
			|| '<th scope="col">last run</th><th scope="col">last success</th><th scope="col">duration</th><th scope="col">last error</th></tr></thead><tbody>'
			|| pg_catalog.string_agg('<tr><td>' || thrillmon._html(c.name) || '</td><td>' || CASE WHEN c.enabled THEN 'yes' ELSE 'no' END
				|| '</td><td>' || c.collect_interval || '</td><td>' || COALESCE(thrillmon._report_time(c.last_run_at), 'never') || '</td><td>'
				|| COALESCE(thrillmon._report_time(c.last_success_at), 'never') || '</td><td class="num">'
				|| COALESCE(pg_catalog.round(c.last_duration_ms::numeric, 1) || ' ms', '') || '</td><td>' || thrillmon._html(c.last_error)
				|| '</td></tr>', '' ORDER BY c.name) || '</tbody></table>'
		FROM (SELECT * FROM thrillmon.metric_collectors ORDER BY name LIMIT 500) c HAVING pg_catalog.count(*) > 0),
		'<p>No SQL collector is registered; the built-in metrics are collected by the worker.</p>') || '</section>';
	v_html := v_html || '<section id="retention"><h2>Data retention</h2><table><thead><tr><th scope="col">target</th><th scope="col">rows</th>'
		|| '<th scope="col">size</th><th scope="col">oldest</th><th scope="col">kept for</th><th scope="col">past retention</th>'
		|| '<th scope="col">last cleanup</th><th scope="col">removed</th></tr></thead><tbody>' || COALESCE((
		SELECT pg_catalog.string_agg('<tr><td>' || s.target || '</td><td class="num">' || s.rows || CASE WHEN s.rows_estimated THEN ' (estimate)' ELSE '' END
			|| '</td><td class="num">' || s.size || '</td><td>' || COALESCE(thrillmon._report_time(s.oldest), '') || '</td><td>'
			|| COALESCE(s.retention_days || ' days', '') || CASE WHEN s.policy_enabled IS FALSE THEN ' (policy off)' ELSE '' END
			|| '</td><td class="num">' || COALESCE(s.rows_past_retention::text, '') || '</td><td>'
			|| COALESCE(thrillmon._report_time(s.last_cleanup_at) || ' ' || COALESCE(s.last_cleanup_status, ''), 'never') || '</td><td class="num">'
			|| COALESCE(s.last_cleanup_removed::text, '') || '</td></tr>', '' ORDER BY s.target)
		FROM thrillmon.retention_stats s), '') || '</tbody></table></section>';
	RETURN v_html || '<footer><p>thrillmon ' || COALESCE((SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'thrillmon'), '')
		|| ' · generated ' || thrillmon._report_time(pg_catalog.now()) || '</p></footer></body></html>';
END
$fn$;
COMMENT ON FUNCTION thrillmon.report(timestamptz, timestamptz, text[]) IS
	'One self-contained HTML document (inline CSS and SVG, no script) for a range: health verdict, a chart per metric with its band and anomalies, alerts and incidents, jobs, collectors, retention. psql -Atc "SELECT thrillmon.report()" > report.html';
