-- thrillmon 0.7.0 -> 0.8.0: what an installed 0.7.0 needs to equal a fresh 0.8.0 install (which
-- is built from sql/source/ and never runs this file). Frozen once 0.8.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.8.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- The terminal dashboard (sql/source/85_dashboard.sql).
------------------------------------------------------------------------------------------------
-- The terminal dashboard: one set-returning function whose rows fit 120 columns in psql, so that
-- `SELECT * FROM thrillmon.dashboard() \watch 5` is a live console. Every column has a fixed
-- maximum width (section 8, name 28, value 10, last_hour 24, trend 7, note 26: 119 columns with
-- psql's separators), and every row is computed at p_at, so a past moment reads the same twice
-- (the pg_regress suite relies on it). Each section is bounded: p_metrics metrics, 10 alerts, 10
-- incidents, then a "(N more)" row.

-- Text for a cell: control characters (a newline in a message) become spaces, and anything
-- longer than the column ends in an ellipsis.
CREATE FUNCTION thrillmon._dashboard_cell(p_text text, p_width integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT CASE WHEN pg_catalog.char_length(s.t) > p_width THEN pg_catalog.left(s.t, p_width - 1) || '…' ELSE s.t END
	FROM (SELECT pg_catalog.regexp_replace(COALESCE(p_text, ''), '[[:cntrl:]]+', ' ', 'g') AS t) s
$fn$;
COMMENT ON FUNCTION thrillmon._dashboard_cell(text, integer) IS 'Internal: a dashboard cell, one line, at most p_width characters';

-- A value in at most 10 characters, for the dashboard and the report's charts: three decimals
-- at most, or scientific notation beyond [0.001, 1e6). One expression: a report formats
-- hundreds per chart.
CREATE FUNCTION thrillmon._dashboard_number(p_value double precision)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT CASE
		WHEN p_value IS NULL THEN ''
		WHEN p_value = 0 THEN '0'
		WHEN pg_catalog.abs(p_value) >= 1e6 OR pg_catalog.abs(p_value) < 1e-3 THEN pg_catalog.btrim(pg_catalog.to_char(p_value, '9.99EEEE'))
		ELSE pg_catalog.rtrim(pg_catalog.to_char(p_value, 'FM9999990.999'), '.')
	END
$fn$;
COMMENT ON FUNCTION thrillmon._dashboard_number(double precision) IS 'Internal: a value in at most 10 characters (the dashboard, the report)';

-- How long before p_at: 45s, 12m, 3h, 2d (NULL for no time).
CREATE FUNCTION thrillmon._dashboard_age(p_from timestamptz, p_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT CASE
		WHEN s.secs IS NULL THEN NULL
		WHEN s.secs < 60 THEN pg_catalog.floor(s.secs)::bigint || 's'
		WHEN s.secs < 3600 THEN pg_catalog.floor(s.secs / 60)::bigint || 'm'
		WHEN s.secs < 86400 THEN pg_catalog.floor(s.secs / 3600)::bigint || 'h'
		ELSE pg_catalog.floor(s.secs / 86400)::bigint || 'd'
	END
	FROM (SELECT GREATEST(0, EXTRACT(EPOCH FROM (p_at - p_from))) AS secs) s
$fn$;
COMMENT ON FUNCTION thrillmon._dashboard_age(timestamptz, timestamptz) IS 'Internal: an age for the dashboard (45s, 12m, 3h, 2d)';

CREATE FUNCTION thrillmon.dashboard(p_at timestamptz DEFAULT pg_catalog.now(), p_metrics integer DEFAULT 30)
RETURNS TABLE (section text, name text, value text, last_hour text, trend text, note text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF p_at IS NULL THEN
		RAISE EXCEPTION 'thrillmon: dashboard() needs a moment to show, not NULL' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_metrics IS NULL OR p_metrics < 1 OR p_metrics > 1000 THEN
		RAISE EXCEPTION 'thrillmon: dashboard() shows between 1 and 1000 metrics, not %', COALESCE(p_metrics::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH pts AS (
		-- The last hour's points. Averages in numeric: float8 arithmetic raises an error on
		-- overflow, and a metric may legally hold 1e300.
		SELECT t.metric_name, t."timestamp" AS ts, t.metric_value::numeric AS v
		FROM thrillmon.metric_time_series t
		WHERE t."timestamp" > p_at - interval '1 hour' AND t."timestamp" <= p_at
	), per_metric AS (
		SELECT p.metric_name, pg_catalog.count(*) AS n, pg_catalog.avg(p.v) AS mean,
			(pg_catalog.array_agg(p.v ORDER BY p.ts DESC))[1] AS last_v,
			pg_catalog.avg(p.v) FILTER (WHERE p.ts <= p_at - interval '30 minutes') AS first_half,
			pg_catalog.avg(p.v) FILTER (WHERE p.ts > p_at - interval '30 minutes') AS second_half
		FROM pts p GROUP BY p.metric_name
	), shown AS (
		SELECT m.*, pg_catalog.row_number() OVER (ORDER BY m.metric_name) AS rn FROM per_metric m
	), buckets AS (
		-- 24 columns of 2.5 minutes; each shows its point farthest from the hour's mean, so a
		-- spike or a dip is never averaged away.
		SELECT p.metric_name,
			LEAST(24, GREATEST(1, pg_catalog.ceil(EXTRACT(EPOCH FROM (p.ts - (p_at - interval '1 hour'))) / 150)))::integer AS b,
			(pg_catalog.array_agg(p.v ORDER BY pg_catalog.abs(p.v - s.mean) DESC, p.ts DESC))[1] AS v
		FROM pts p JOIN shown s ON s.metric_name = p.metric_name AND s.rn <= p_metrics
		GROUP BY 1, 2
	), spread AS (
		SELECT b.metric_name, pg_catalog.min(b.v) AS lo, pg_catalog.max(b.v) AS hi FROM buckets b GROUP BY 1
	), grid AS (
		-- One empty column between two points repeats the one before it (a metric sampled every
		-- 5 minutes fills every other column); a longer gap stays blank: no data is visible.
		SELECT c.metric_name, c.g, c.lo, c.hi,
			COALESCE(c.v, CASE WHEN c.next_v IS NOT NULL THEN c.prev_v END) AS v
		FROM (SELECT r.metric_name, g.g, r.lo, r.hi, b.v,
				pg_catalog.lag(b.v) OVER w AS prev_v, pg_catalog.lead(b.v) OVER w AS next_v
			FROM spread r CROSS JOIN pg_catalog.generate_series(1, 24) g(g)
			LEFT JOIN buckets b ON b.metric_name = r.metric_name AND b.b = g.g
			WINDOW w AS (PARTITION BY r.metric_name ORDER BY g.g)) c
	), spark AS (
		SELECT x.metric_name, pg_catalog.string_agg(CASE
				WHEN x.v IS NULL THEN ' '
				WHEN x.hi = x.lo THEN '▄'
				ELSE pg_catalog.substr('▁▂▃▄▅▆▇█', 1 + LEAST(7, pg_catalog.floor((x.v - x.lo) / (x.hi - x.lo) * 8))::integer, 1)
			END, '' ORDER BY x.g) AS line
		FROM grid x
		GROUP BY x.metric_name
	), rows AS (
		SELECT 1 AS part, s.rn AS ord, 'metric'::text AS section, thrillmon._dashboard_cell(s.metric_name, 28) AS name,
			thrillmon._dashboard_number(s.last_v::double precision) AS value, k.line AS last_hour,
			CASE
				WHEN s.first_half IS NULL OR s.second_half IS NULL THEN ''
				WHEN s.first_half = 0 THEN CASE WHEN s.second_half > 0 THEN '↑' WHEN s.second_half < 0 THEN '↓' ELSE '→' END
				ELSE (SELECT CASE WHEN pg_catalog.abs(c.pct) < 1 THEN '→'
						ELSE CASE WHEN c.pct > 0 THEN '↑ ' ELSE '↓ ' END
							|| CASE WHEN pg_catalog.abs(c.pct) >= 1000 THEN '>999%' ELSE pg_catalog.round(pg_catalog.abs(c.pct))::text || '%' END
					END
					FROM (SELECT (s.second_half - s.first_half) / pg_catalog.abs(s.first_half) * 100 AS pct) c)
			END AS trend,
			COALESCE((SELECT thrillmon._dashboard_cell(a.severity || ' ' || a.anomaly_type || ' '
					|| thrillmon._dashboard_age(a.detected_at, p_at) || ' ago', 26)
				FROM thrillmon.anomaly_detections a
				WHERE a.metric_name = s.metric_name AND a.detected_at <= p_at AND a.detected_at > p_at - interval '1 day'
				ORDER BY a.detected_at DESC LIMIT 1), '') AS note
		FROM shown s LEFT JOIN spark k ON k.metric_name = s.metric_name
		WHERE s.rn <= p_metrics
		UNION ALL
		SELECT 1, p_metrics + 1, 'metric', '(' || (pg_catalog.count(*) - p_metrics) || ' more)', '', '', '', ''
		FROM shown HAVING pg_catalog.count(*) > p_metrics
		UNION ALL
		SELECT 1, 1, 'metric', '(no points in the last hour)', '', '', '', ''
		WHERE NOT EXISTS (SELECT 1 FROM shown)
		UNION ALL
		-- Alerts open at p_at, the most severe and newest first.
		SELECT 2, a.rn, 'alert', thrillmon._dashboard_cell(COALESCE(a.metric_name, a.alert_type), 28), a.severity, '', '',
			thrillmon._dashboard_cell(thrillmon._dashboard_age(a.created_at, p_at) || ' ' || a.message, 26)
		FROM (SELECT al.*, pg_catalog.row_number() OVER (ORDER BY pg_catalog.array_position(ARRAY['low', 'medium', 'high', 'critical']::text[], al.severity) DESC, al.created_at DESC, al.id) AS rn
			FROM thrillmon.system_alerts al
			WHERE al.created_at <= p_at AND (al.resolved_at IS NULL OR al.resolved_at > p_at)) a
		WHERE a.rn <= 10
		UNION ALL
		SELECT 2, 11, 'alert', '(' || (pg_catalog.count(*) - 10) || ' more)', '', '', '', ''
		FROM thrillmon.system_alerts al
		WHERE al.created_at <= p_at AND (al.resolved_at IS NULL OR al.resolved_at > p_at) HAVING pg_catalog.count(*) > 10
		UNION ALL
		-- Incidents not yet resolved or closed.
		SELECT 3, i.rn, 'incident', thrillmon._dashboard_cell(i.incident_number || ' ' || i.title, 28), i.severity, '', '',
			thrillmon._dashboard_cell(i.status || ' ' || thrillmon._dashboard_age(i.detected_at, p_at), 26)
		FROM (SELECT inc.*, pg_catalog.row_number() OVER (ORDER BY pg_catalog.array_position(ARRAY['low', 'medium', 'high', 'critical']::text[], inc.severity) DESC, inc.detected_at DESC, inc.id) AS rn
			FROM thrillmon.incidents inc
			WHERE inc.status IN ('open', 'investigating') AND inc.detected_at <= p_at) i
		WHERE i.rn <= 10
		UNION ALL
		SELECT 3, 11, 'incident', '(' || (pg_catalog.count(*) - 10) || ' more)', '', '', '', ''
		FROM thrillmon.incidents inc
		WHERE inc.status IN ('open', 'investigating') AND inc.detected_at <= p_at HAVING pg_catalog.count(*) > 10
		UNION ALL
		-- Each job: its last run's status, its last 24 runs (· succeeded, × failed, - skipped,
		-- ▸ running; the newest on the right), when it last succeeded, its failures in 24 hours.
		SELECT 4, pg_catalog.array_position(ARRAY['collect', 'detect', 'retention', 'maintenance']::text[], j.job), 'job', j.job, j.status,
			(SELECT pg_catalog.string_agg(CASE h.status WHEN 'succeeded' THEN '·' WHEN 'failed' THEN '×' WHEN 'skipped' THEN '-' ELSE '▸' END,
					'' ORDER BY h.started_at)
				FROM (SELECT r.status, r.started_at FROM thrillmon.job_runs r WHERE r.job = j.job AND r.started_at <= p_at
					ORDER BY r.started_at DESC LIMIT 24) h),
			'',
			thrillmon._dashboard_cell(COALESCE('ok ' || thrillmon._dashboard_age(
					(SELECT pg_catalog.max(r.finished_at) FROM thrillmon.job_runs r
					 WHERE r.job = j.job AND r.status = 'succeeded' AND r.started_at <= p_at), p_at) || ' ago', 'never ok')
				|| ', ' || (SELECT pg_catalog.count(*) FROM thrillmon.job_runs r
					WHERE r.job = j.job AND r.status = 'failed' AND r.started_at <= p_at AND r.started_at > p_at - interval '1 day')
				|| ' failed/24h', 26)
		FROM (SELECT DISTINCT ON (r.job) r.job, r.status FROM thrillmon.job_runs r WHERE r.started_at <= p_at
			ORDER BY r.job, r.started_at DESC) j
	)
	SELECT r.section, r.name, r.value, r.last_hour, r.trend, r.note FROM rows r ORDER BY r.part, r.ord;
END
$fn$;
COMMENT ON FUNCTION thrillmon.dashboard(timestamptz, integer) IS
	'A console in 120 columns: per metric with points in the last hour its last value, a sparkline, its trend and its last anomaly; open alerts and incidents; job health. SELECT * FROM thrillmon.dashboard() \watch 5';

------------------------------------------------------------------------------------------------
-- The HTML report (sql/source/86_report.sql).
------------------------------------------------------------------------------------------------
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
				FROM thrillmon.incidents i WHERE i.status IN ('open', 'investigating') HAVING pg_catalog.count(*) > 0) s)
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
			FROM pg_catalog.unnest(ARRAY['collect', 'detect', 'retention', 'maintenance']::text[]) WITH ORDINALITY v(job, ord)) j
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

------------------------------------------------------------------------------------------------
-- Grants (sql/source/99_grants.sql): dashboard() and report() run as their caller, so their
-- helpers are granted to readers too, and _config_for(), whose configuration readers may read.
------------------------------------------------------------------------------------------------
REVOKE ALL ON FUNCTION thrillmon.dashboard(timestamptz, integer), thrillmon._dashboard_cell(text, integer),
	thrillmon._dashboard_number(double precision), thrillmon._dashboard_age(timestamptz, timestamptz),
	thrillmon.report(timestamptz, timestamptz, text[]), thrillmon._html(text), thrillmon._report_time(timestamptz),
	thrillmon._report_chart(text, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon.dashboard(timestamptz, integer), thrillmon._dashboard_cell(text, integer),
	thrillmon._dashboard_number(double precision), thrillmon._dashboard_age(timestamptz, timestamptz) TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.report(timestamptz, timestamptz, text[]), thrillmon._html(text),
	thrillmon._report_time(timestamptz),
	thrillmon._report_chart(text, timestamptz, timestamptz, integer), thrillmon._config_for(text) TO thrillmon_reader;

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Alert delivery (issue 14): channels, the outbox, silences and maintenance windows.
------------------------------------------------------------------------------------------------


-- Where alerts go. Managed by admins only: readers and writers cannot read a URL or a header (an
-- Authorization value, a Slack webhook's secret path); channel_status shows them the rest. Checked
-- when written (_check_channel): a URL thrillmon.notify_allowed_hosts allows, at most
-- 32 channels.
CREATE TABLE thrillmon.notification_channels (
	name text PRIMARY KEY CONSTRAINT channel_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	kind text NOT NULL CONSTRAINT channel_kind_known CHECK (kind IN ('alertmanager', 'webhook', 'slack')),
	url text NOT NULL CONSTRAINT channel_url_length CHECK (pg_catalog.char_length(url) BETWEEN 1 AND 2048),
	headers jsonb NOT NULL DEFAULT '{}' CONSTRAINT channel_headers_object CHECK (pg_catalog.jsonb_typeof(headers) = 'object'),
	min_severity text NOT NULL DEFAULT 'low' CONSTRAINT channel_severity_known CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
	metric_pattern text NOT NULL DEFAULT '%'
		CONSTRAINT channel_pattern_length CHECK (pg_catalog.char_length(metric_pattern) BETWEEN 1 AND 128),
	timeout_ms integer NOT NULL DEFAULT 5000 CONSTRAINT channel_timeout_range CHECK (timeout_ms BETWEEN 100 AND 60000),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.notification_channels IS
	'Where alerts are delivered (alertmanager, webhook, slack); admins only. Alerts at or above min_severity whose metric is LIKE metric_pattern';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.notification_channels', '');

-- The outbox: one row per alert event and channel, written in the transaction that raised,
-- escalated or resolved the alert (so a rolled-back pass delivers nothing and a committed alert
-- is always delivered), sent by the delivery worker. The idempotency key (alert id and event) is
-- what a receiver de-duplicates re-sends by: delivery is at least once.
CREATE SEQUENCE thrillmon.deliveries_id_seq;
CREATE TABLE thrillmon.deliveries (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.deliveries_id_seq'::pg_catalog.regclass),
	channel text NOT NULL REFERENCES thrillmon.notification_channels (name) ON DELETE CASCADE ON UPDATE CASCADE,
	alert_id uuid,
	event text NOT NULL CONSTRAINT delivery_event_known CHECK (event IN ('new', 'escalated', 'resolved', 'test')),
	idempotency_key text NOT NULL,
	payload jsonb NOT NULL,
	status text NOT NULL DEFAULT 'pending' CONSTRAINT delivery_status_known CHECK (status IN ('pending', 'delivered', 'dead')),
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at timestamptz,
	last_http_status integer,
	last_error text,
	CONSTRAINT delivery_key_unique UNIQUE (channel, idempotency_key)
);
ALTER SEQUENCE thrillmon.deliveries_id_seq OWNED BY thrillmon.deliveries.id;
COMMENT ON TABLE thrillmon.deliveries IS
	'The outbox: one row per alert event (new, escalated, resolved) and channel; pending until delivered, dead after thrillmon.delivery_max_age';
CREATE INDEX deliveries_pending_idx ON thrillmon.deliveries (channel, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_age_idx ON thrillmon.deliveries (created_at) WHERE status = 'pending';
CREATE INDEX deliveries_alert_idx ON thrillmon.deliveries (alert_id, channel, id);
CREATE INDEX deliveries_finished_idx ON thrillmon.deliveries (finished_at) WHERE status <> 'pending';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.deliveries_id_seq', '');

-- Every HTTP request the delivery worker made: an outbox row's attempts, Alertmanager re-sends
-- (delivery_id NULL) and test_channel() calls. Only the first 256
-- characters of an answer are kept.
CREATE SEQUENCE thrillmon.delivery_attempts_id_seq;
CREATE TABLE thrillmon.delivery_attempts (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.delivery_attempts_id_seq'::pg_catalog.regclass),
	delivery_id bigint REFERENCES thrillmon.deliveries (id) ON DELETE CASCADE,
	channel text NOT NULL,
	purpose text NOT NULL CONSTRAINT attempt_purpose_known CHECK (purpose IN ('delivery', 'resend', 'test')),
	attempted_at timestamptz NOT NULL,
	http_status integer,
	error text,
	latency_ms double precision NOT NULL,
	response_excerpt text CONSTRAINT attempt_excerpt_length CHECK (pg_catalog.char_length(response_excerpt) <= 256)
);
ALTER SEQUENCE thrillmon.delivery_attempts_id_seq OWNED BY thrillmon.delivery_attempts.id;
COMMENT ON TABLE thrillmon.delivery_attempts IS 'Every request the delivery worker made: time, HTTP status, error, latency, a short excerpt of the answer';
CREATE INDEX delivery_attempts_delivery_idx ON thrillmon.delivery_attempts (delivery_id);
CREATE INDEX delivery_attempts_time_idx ON thrillmon.delivery_attempts (attempted_at);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.delivery_attempts', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.delivery_attempts_id_seq', '');

-- A channel's running state, kept by the delivery worker (failures in a row raise
-- ThrillmonDeliveryFailing; last_resend_at paces Alertmanager re-sends).
CREATE TABLE thrillmon.channel_state (
	channel text PRIMARY KEY REFERENCES thrillmon.notification_channels (name) ON DELETE CASCADE ON UPDATE CASCADE,
	consecutive_failures integer NOT NULL DEFAULT 0,
	last_success_at timestamptz,
	last_failure_at timestamptz,
	last_error text,
	last_resend_at timestamptz
);
COMMENT ON TABLE thrillmon.channel_state IS 'Internal: each channel''s delivery state (failures in a row, last success, last re-send)';

-- Silences and maintenance windows (create_silence(), create_maintenance_window(); the silences
-- view). While one covers a metric its anomalies are recorded, marked with it, but raise no
-- alert; a maintenance window also keeps the metric's points inside it from being scored or
-- learned. At most 1000 not yet ended.
CREATE SEQUENCE thrillmon.silence_rules_id_seq;
CREATE TABLE thrillmon.silence_rules (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.silence_rules_id_seq'::pg_catalog.regclass),
	metric_pattern text NOT NULL
		CONSTRAINT silence_pattern_length CHECK (pg_catalog.char_length(metric_pattern) BETWEEN 1 AND 128),
	starts_at timestamptz NOT NULL,
	ends_at timestamptz NOT NULL,
	reason text NOT NULL CONSTRAINT silence_reason_length CHECK (pg_catalog.char_length(reason) BETWEEN 1 AND 1000),
	maintenance boolean NOT NULL DEFAULT false,
	created_by name NOT NULL DEFAULT SESSION_USER, -- (the login that made it: the functions run as their owner)
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expired_at timestamptz,
	silenced_anomalies bigint NOT NULL DEFAULT 0,
	CONSTRAINT silence_ends_after_start CHECK (ends_at > starts_at),
	CONSTRAINT silence_at_most_a_year CHECK (ends_at - starts_at <= interval '366 days')
);
ALTER SEQUENCE thrillmon.silence_rules_id_seq OWNED BY thrillmon.silence_rules.id;
COMMENT ON TABLE thrillmon.silence_rules IS 'Silences and maintenance windows (see the silences view, create_silence(), create_maintenance_window())';
CREATE INDEX silence_rules_ends_idx ON thrillmon.silence_rules (ends_at) WHERE expired_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('thrillmon.silence_rules', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.silence_rules_id_seq', '');

------------------------------------------------------------------------------------------------
-- Retention (10_schema.sql, 40_retention.sql): deliveries are a target of their own, kept like job
-- history (dead ones longer).
------------------------------------------------------------------------------------------------
ALTER TABLE thrillmon.retention_policies DROP CONSTRAINT target_known, DROP CONSTRAINT failed_only_for_job_history;
ALTER TABLE thrillmon.retention_policies ADD CONSTRAINT target_known CHECK (target IN ('metrics', 'anomalies', 'alerts', 'incidents', 'job_history', 'deliveries'));
ALTER TABLE thrillmon.retention_policies ADD CONSTRAINT failed_only_for_job_history CHECK (target IN ('job_history', 'deliveries') OR failed_retention_days IS NULL);
INSERT INTO thrillmon.retention_policies (target, retention_days, archive_after_days, archive_retention_days, failed_retention_days)
VALUES ('deliveries', 30, NULL, NULL, 90);

CREATE FUNCTION thrillmon._cleanup_deliveries_run(days integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	failed_cutoff timestamptz := thrillmon._retention_cutoff(coalesce(failed_days, days), 'failed_retention_days');
	n_ok bigint;
	n_dead bigint;
	n_attempts bigint;
	n_silences bigint;
BEGIN
	-- Like job history: dead deliveries (alerts nobody was told of) are kept longer. Pending ones
	-- are never removed here (they go dead after thrillmon.delivery_max_age first). A delivery's
	-- attempts go with it; re-sends and tests, and silences that ended, by their own time.
	DELETE FROM thrillmon.deliveries WHERE status = 'delivered' AND finished_at < cutoff;
	GET DIAGNOSTICS n_ok = ROW_COUNT;
	DELETE FROM thrillmon.deliveries WHERE status = 'dead' AND finished_at < failed_cutoff;
	GET DIAGNOSTICS n_dead = ROW_COUNT;
	DELETE FROM thrillmon.delivery_attempts WHERE delivery_id IS NULL AND attempted_at < cutoff;
	GET DIAGNOSTICS n_attempts = ROW_COUNT;
	DELETE FROM thrillmon.silence_rules WHERE LEAST(ends_at, coalesce(expired_at, ends_at)) < cutoff;
	GET DIAGNOSTICS n_silences = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n_ok + n_dead, 'cutoff', cutoff, 'failed_cutoff', failed_cutoff,
		'attempts_removed', n_attempts, 'silences_removed', n_silences);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_deliveries_run(integer, integer) IS 'Internal: delivery retention (the outbox, re-sends and tests, ended silences)';

-- One retention target with explicit settings: the body shared by the single-target functions
-- and the full cleanup.
CREATE OR REPLACE FUNCTION thrillmon._cleanup_target(target text, days integer, archive_after integer,
	archive_retention integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	RETURN CASE target
		WHEN 'metrics' THEN thrillmon._cleanup_metrics_run(days)
		WHEN 'anomalies' THEN thrillmon._cleanup_anomalies_run(days, coalesce(archive_after, 7), coalesce(archive_retention, 90))
		WHEN 'alerts' THEN thrillmon._cleanup_alerts_run(days)
		WHEN 'incidents' THEN thrillmon._cleanup_incidents_run(days)
		WHEN 'job_history' THEN thrillmon._cleanup_job_history_run(days, failed_days)
		WHEN 'deliveries' THEN thrillmon._cleanup_deliveries_run(days, failed_days)
	END;
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_target(text, integer, integer, integer, integer) IS 'Internal: one retention target';

-- Every enabled policy, each target in its own subtransaction; the body the worker runs too.
CREATE OR REPLACE FUNCTION thrillmon._retention_all()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- Metrics go last: dropping a partition locks the parent table against inserts until
	-- commit, so the less the transaction does after it, the shorter ingest waits.
	order_of_targets text[] := ARRAY['anomalies', 'alerts', 'incidents', 'job_history', 'deliveries', 'metrics'];
	started timestamptz := pg_catalog.clock_timestamp();
	target_name text;
	p thrillmon.retention_policies;
	t0 timestamptz;
	r jsonb;
	targets jsonb := '{}';
	total bigint := 0;
	failures text[] := '{}';
	holder integer;
BEGIN
	-- One full cleanup at a time. The lock (a row lock of job_locks) is transaction-scoped, so it
	-- cannot outlive a caller that errors out; a second caller returns at once, saying so, instead
	-- of queueing. The holder is the backend whose transaction locked the row (its xmax).
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = 'retention_cleanup' FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		SELECT k.pid INTO holder FROM pg_catalog.pg_locks k
		WHERE k.locktype = 'transactionid' AND k.mode = 'ExclusiveLock' AND k.granted
		  AND k.transactionid = (SELECT l.xmax FROM thrillmon.job_locks l WHERE l.name = 'retention_cleanup')
		LIMIT 1;
		RETURN pg_catalog.jsonb_build_object('status', 'skipped', 'removed', 0,
			'reason', pg_catalog.format('another run_data_retention_cleanup() is in progress (pid %s)', coalesce(holder::text, 'unknown')));
	END IF;

	FOREACH target_name IN ARRAY order_of_targets LOOP
		SELECT * INTO p FROM thrillmon.retention_policies rp WHERE rp.target = target_name;
		IF NOT FOUND THEN
			targets := targets || pg_catalog.jsonb_build_object(target_name, pg_catalog.jsonb_build_object('status', 'no policy'));
			CONTINUE;
		ELSIF NOT p.enabled THEN
			targets := targets || pg_catalog.jsonb_build_object(target_name, pg_catalog.jsonb_build_object('status', 'disabled'));
			CONTINUE;
		END IF;
		t0 := pg_catalog.clock_timestamp();
		-- Each target in its own subtransaction: one that fails (say, a lock it cannot get in
		-- time) is rolled back and reported, and the others still run.
		BEGIN
			r := thrillmon._cleanup_target(target_name, p.retention_days, p.archive_after_days,
				p.archive_retention_days, p.failed_retention_days);
			r := r || pg_catalog.jsonb_build_object('status', 'succeeded', 'retention_days', p.retention_days);
			total := total + (r->>'removed')::bigint;
		EXCEPTION WHEN OTHERS THEN
			r := pg_catalog.jsonb_build_object('status', 'failed', 'error', SQLERRM, 'sqlstate', SQLSTATE,
				'retention_days', p.retention_days);
			failures := failures || pg_catalog.format('%s: %s', target_name, SQLERRM);
		END;
		r := r || pg_catalog.jsonb_build_object('duration_ms',
			pg_catalog.round((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - t0) * 1000)::numeric, 3));
		targets := targets || pg_catalog.jsonb_build_object(target_name, r);
	END LOOP;

	RETURN pg_catalog.jsonb_build_object(
		'status', CASE WHEN pg_catalog.cardinality(failures) = 0 THEN 'succeeded' ELSE 'failed' END,
		'removed', total,
		'duration_ms', pg_catalog.round((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - started) * 1000)::numeric, 3),
		'targets', targets,
		'error', NULLIF(pg_catalog.array_to_string(failures, '; '), ''));
END
$fn$;
COMMENT ON FUNCTION thrillmon._retention_all() IS 'Internal: the body of the full retention cleanup';

-- On a Citus coordinator, what collection last heard from each worker node (35_scale_out.sql):
-- two collections in a row without an answer raise the node's node_down alert. State, not user
-- data (not dumped); one row per node of pg_dist_node, so bounded by the cluster.
CREATE TABLE thrillmon.node_state (
	node text PRIMARY KEY,
	consecutive_failures integer NOT NULL DEFAULT 0,
	last_success_at timestamptz,
	last_failure_at timestamptz,
	last_error text
);
COMMENT ON TABLE thrillmon.node_state IS
	'Per Citus worker node (host:port): consecutive collections without an answer, the last success and failure, the last error';

-- Scale-out on Citus (DESIGN §8, docs/scale-out.md): metric_time_series distributed by
-- metric_name, with its partitions, and everything else local on the coordinator. Citus is
-- optional: nothing here names a Citus object outside EXECUTE, so the functions exist (and say
-- what is missing) on a server without it.

-- Whether metric_time_series is distributed here. False without Citus and on a node whose Citus
-- metadata does not list it.
CREATE FUNCTION thrillmon._metrics_distributed()
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	d boolean;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
	                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''thrillmon.metric_time_series''::pg_catalog.regclass)' INTO d;
	RETURN d;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metrics_distributed() IS 'Internal: true when Citus lists metric_time_series as distributed on this node';

-- Whether any point of a metric is in (lo, hi]. A function of its own, in PL/pgSQL so that it is
-- never inlined: a statement over a local table (an alert) that also reads a distributed one is
-- a join Citus refuses in a modification; this way each probe is a query of its own, routed to
-- the one shard that holds the metric (on one node, the same index probe as before).
CREATE FUNCTION thrillmon._has_points(metric text, lo timestamptz, hi timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	RETURN EXISTS (SELECT 1 FROM thrillmon.metric_time_series m
	               WHERE m.metric_name OPERATOR(pg_catalog.=) metric AND m."timestamp" > lo AND m."timestamp" <= hi);
END
$fn$;
COMMENT ON FUNCTION thrillmon._has_points(text, timestamptz, timestamptz) IS 'Internal: whether a metric has a point in (lo, hi]';

-- The checks distribute() and undistribute() share: Citus is there and this is its coordinator.
CREATE FUNCTION thrillmon._require_citus_coordinator(caller text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	coordinator boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
		RAISE EXCEPTION 'thrillmon: %() needs the citus extension in this database', caller USING ERRCODE = '0A000',
			HINT = 'Install Citus, add citus to shared_preload_libraries, CREATE EXTENSION citus and add the worker nodes first (docs/scale-out.md).';
	END IF;
	EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
	IF NOT coordinator THEN
		RAISE EXCEPTION 'thrillmon: %() runs on the Citus coordinator only', caller USING ERRCODE = '0A000',
			HINT = 'Connect to the coordinator (citus_set_coordinator_host()) and call it there.';
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._require_citus_coordinator(text) IS 'Internal: errors unless Citus is installed and this is its coordinator';

-- Going distributed moves the points onto the worker nodes' shards, partition by partition
-- (Citus copies the rows out), then empties the coordinator's own copies: Citus leaves them on
-- disk under the shell tables, where they would feed the planner statistics retention reads and
-- take space for nothing. The partition-DDL lock is held throughout, so maintenance and
-- retention (which take it too) wait rather than create or drop a partition half-way.
CREATE FUNCTION thrillmon.distribute(shard_count integer DEFAULT 32,
	OUT relation regclass, OUT shards integer, OUT partitions integer, OUT nodes text[], OUT already_distributed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '30s'
AS $fn$
BEGIN
	PERFORM thrillmon._require_citus_coordinator('distribute');
	IF shard_count IS NULL OR shard_count < 1 OR shard_count > 64000 THEN
		RAISE EXCEPTION 'thrillmon: shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	already_distributed := thrillmon._metrics_distributed();
	IF NOT already_distributed THEN
		PERFORM thrillmon._lock_metrics_parent();
		-- colocate_with none: thrillmon's table has no partner to join with, and a shard count of
		-- its own must not be forced by (or force) another distributed table's.
		EXECUTE 'SELECT pg_catalog.create_distributed_table(''thrillmon.metric_time_series'', ''metric_name'',
		             shard_count => $1, colocate_with => ''none'')' USING shard_count;
		EXECUTE 'SELECT pg_catalog.truncate_local_data_after_distributing_table(''thrillmon.metric_time_series'')';
	END IF;
	relation := 'thrillmon.metric_time_series'::regclass;
	EXECUTE 'SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
	         WHERE s.logicalrelid OPERATOR(pg_catalog.=) ''thrillmon.metric_time_series''::pg_catalog.regclass' INTO shards;
	SELECT pg_catalog.count(*)::integer INTO partitions FROM pg_catalog.pg_inherits i
	WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass;
	EXECUTE 'SELECT pg_catalog.array_agg(n.nodename || '':'' || n.nodeport ORDER BY n.nodeid) FROM pg_catalog.pg_dist_node n
	         WHERE n.isactive AND n.noderole OPERATOR(pg_catalog.=) ''primary'' AND n.shouldhaveshards AND n.groupid > 0' INTO nodes;
END
$fn$;
COMMENT ON FUNCTION thrillmon.distribute(integer) IS
	'Distributes metric_time_series (its partitions and default partition) by metric_name over the Citus worker nodes, shard_count shards (default 32); the other tables stay local on the coordinator. Runs on the coordinator; calling it again changes nothing';

-- The way back. Citus' undistribute_table() recreates a table, which it refuses for an
-- extension's (and new OIDs would lose the extension membership and the grants); instead the
-- table's Citus metadata is removed as Citus' own drop trigger removes it (from the workers'
-- metadata, the shards themselves, pg_dist_partition and pg_dist_object), Citus' truncate
-- trigger goes, and the points, read back through Citus first, are written into the local
-- tables again. The workers' copies of the daily partitions go with their metadata; their copies
-- of the extension's own tables stay as the extension's (empty) tables there.
CREATE FUNCTION thrillmon.undistribute(keep_data boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '30s'
AS $fn$
DECLARE
	r record;
	n bigint := 0;
BEGIN
	PERFORM thrillmon._require_citus_coordinator('undistribute');
	IF NOT thrillmon._metrics_distributed() THEN
		RETURN 0;
	END IF;
	PERFORM thrillmon._lock_metrics_parent();
	IF keep_data THEN
		DROP TABLE IF EXISTS pg_temp.thrillmon_undistribute;
		CREATE TEMP TABLE thrillmon_undistribute ON COMMIT DROP AS SELECT * FROM thrillmon.metric_time_series;
		GET DIAGNOSTICS n = ROW_COUNT;
	END IF;
	-- Partitions first (their shards only in the metadata: dropping the parent's shards drops
	-- theirs), then the parent.
	FOR r IN
		SELECT c.oid::regclass AS rel, c.relname::text AS name, c.oid <> 'thrillmon.metric_time_series'::regclass AS is_partition
		FROM pg_catalog.pg_class c
		WHERE c.oid = 'thrillmon.metric_time_series'::regclass
		   OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass)
		ORDER BY 3 DESC, 2
	LOOP
		EXECUTE 'SELECT pg_catalog.master_remove_distributed_table_metadata_from_workers($1, $2, $3)'
			USING r.rel, 'thrillmon', r.name;
		EXECUTE 'SELECT pg_catalog.citus_drop_all_shards($1, $2, $3, $4)' USING r.rel, 'thrillmon', r.name, r.is_partition;
		EXECUTE 'SELECT pg_catalog.master_remove_partition_metadata($1, $2, $3)' USING r.rel, 'thrillmon', r.name;
		EXECUTE 'SELECT pg_catalog.citus_unmark_object_distributed(''pg_catalog.pg_class''::pg_catalog.regclass, $1, 0, false)'
			USING r.rel::oid;
	END LOOP;
	-- Citus names its truncate trigger after the trigger's OID, so it is found by its function.
	FOR r IN
		SELECT t.tgname, t.tgrelid::regclass AS rel
		FROM pg_catalog.pg_trigger t
		WHERE t.tgfoid = 'pg_catalog.citus_truncate_trigger()'::regprocedure
		  AND (t.tgrelid = 'thrillmon.metric_time_series'::regclass
		       OR t.tgrelid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass))
	LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
	END LOOP;
	TRUNCATE thrillmon.metric_time_series;
	IF keep_data THEN
		INSERT INTO thrillmon.metric_time_series SELECT * FROM pg_temp.thrillmon_undistribute;
		DROP TABLE pg_temp.thrillmon_undistribute;
	END IF;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon.undistribute(boolean) IS
	'Makes metric_time_series a local table of the coordinator again: removes its shards from every node and its Citus metadata, and (keep_data, the default) brings its points back first; returns the points kept. Runs on the coordinator; a no-op when it is not distributed';

-- DROP EXTENSION thrillmon while the table is distributed: Citus' drop trigger cannot drop an
-- extension's distributed partitioned table (it errors on the workers), so the extension takes
-- the table back first, without its points (they go with the extension). Event triggers see no
-- object list at ddl_command_start, so the statement is read: one DROP EXTENSION naming
-- thrillmon. Anything it cannot read surely (a multi-statement string) is refused with the way
-- out, rather than guessed at: a wrong guess would discard the points.
CREATE FUNCTION thrillmon._on_drop_extension()
RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	q text := pg_catalog.btrim(pg_catalog.current_query(), E' \t\r\n;');
	names text;
BEGIN
	IF NOT thrillmon._metrics_distributed() THEN
		RETURN;
	END IF;
	IF q !~* '^drop\s+extension\s' OR pg_catalog.strpos(q, ';') > 0 THEN
		IF q ~* '\mthrillmon\M' THEN
			RAISE EXCEPTION 'thrillmon: metric_time_series is distributed; run SELECT thrillmon.undistribute() before dropping the extension'
				USING ERRCODE = '55000';
		END IF;
		RETURN;
	END IF;
	names := pg_catalog.regexp_replace(q, '^drop\s+extension\s+(if\s+exists\s+)?(.*?)(\s+(cascade|restrict))?$', '\2', 'i');
	IF EXISTS (SELECT 1 FROM pg_catalog.regexp_split_to_table(names, '\s*,\s*') AS n(name)
	           WHERE pg_catalog.lower(pg_catalog.btrim(n.name, '"')) = 'thrillmon') THEN
		PERFORM thrillmon.undistribute(keep_data => false);
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._on_drop_extension() IS 'Internal: before DROP EXTENSION thrillmon, takes metric_time_series back from Citus';
CREATE EVENT TRIGGER thrillmon_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION thrillmon._on_drop_extension();

-- The distinct metric names with a point in [p_from, p_to], in name order, at most p_max. One
-- node finds them by a skip scan of the (metric_name, timestamp) indexes (a recursive CTE: the
-- names without reading every point); Citus plans no recursive CTE over a distributed table
-- without a filter on metric_name, so there each shard finds its own distinct names (in
-- parallel) and the coordinator merges them. report() and the postgres_exporter queries use it.
CREATE FUNCTION thrillmon._metric_names(p_from timestamptz, p_to timestamptz, p_max integer)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF thrillmon._metrics_distributed() THEN
		RETURN QUERY SELECT DISTINCT t.metric_name FROM thrillmon.metric_time_series t
			WHERE t."timestamp" >= p_from AND t."timestamp" <= p_to ORDER BY 1 LIMIT p_max;
		RETURN;
	END IF;
	RETURN QUERY
	WITH RECURSIVE n(metric_name) AS (
		SELECT pg_catalog.min(t.metric_name) FROM thrillmon.metric_time_series t
		WHERE t."timestamp" >= p_from AND t."timestamp" <= p_to
		UNION ALL
		SELECT (SELECT pg_catalog.min(t.metric_name) FROM thrillmon.metric_time_series t
			WHERE t.metric_name > n.metric_name AND t."timestamp" >= p_from AND t."timestamp" <= p_to)
		FROM n WHERE n.metric_name IS NOT NULL)
	SELECT n.metric_name FROM n WHERE n.metric_name IS NOT NULL LIMIT p_max;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metric_names(timestamptz, timestamptz, integer) IS
	'Internal: the distinct metric names with points in [p_from, p_to], in name order, at most p_max';

-- The latest point of each of the first p_max metric names (in name order) with points in
-- [p_from, p_to]. One node: an index probe a name. Distributed: a correlated LATERAL probe per
-- name is not something Citus plans, but DISTINCT ON the distribution column is pushed down
-- to the shards whole.
CREATE FUNCTION thrillmon._latest_points(p_from timestamptz, p_to timestamptz, p_max integer)
RETURNS TABLE (metric_name text, metric_category text, metric_value double precision, "timestamp" timestamptz, metadata jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	names text[] := ARRAY(SELECT thrillmon._metric_names(p_from, p_to, p_max));
BEGIN
	IF thrillmon._metrics_distributed() THEN
		RETURN QUERY SELECT DISTINCT ON (t.metric_name) t.metric_name, t.metric_category, t.metric_value, t."timestamp", t.metadata
			FROM thrillmon.metric_time_series t
			WHERE t.metric_name = ANY (names) AND t."timestamp" >= p_from AND t."timestamp" <= p_to
			ORDER BY t.metric_name, t."timestamp" DESC;
		RETURN;
	END IF;
	RETURN QUERY SELECT n.name, l.metric_category, l.metric_value, l."timestamp", l.metadata
		FROM pg_catalog.unnest(names) n(name)
		CROSS JOIN LATERAL (
			SELECT t.metric_category, t.metric_value, t."timestamp", t.metadata FROM thrillmon.metric_time_series t
			WHERE t.metric_name = n.name AND t."timestamp" >= p_from AND t."timestamp" <= p_to
			ORDER BY t."timestamp" DESC LIMIT 1) l
		ORDER BY n.name;
END
$fn$;
COMMENT ON FUNCTION thrillmon._latest_points(timestamptz, timestamptz, integer) IS
	'Internal: the latest point in [p_from, p_to] of each of the first p_max metric names with points there';

-- One system point, in a subtransaction of its own: its metric's shard may be on the node that
-- is down (its points are lost with it; the others go on). Returns 1 if stored, else 0.
CREATE FUNCTION thrillmon._store_point(p_name text, p_value double precision, p_at timestamptz, p_metadata jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp", metadata)
	VALUES (p_name, 'system', p_value, p_at, p_metadata);
	RETURN 1;
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'thrillmon: metric % not stored: %', p_name, SQLERRM;
	RETURN 0;
END
$fn$;
COMMENT ON FUNCTION thrillmon._store_point(text, double precision, timestamptz, jsonb) IS
	'Internal: stores one system point, or warns and returns 0 when its shard cannot take it';

-- The cluster watched as a cluster: on a Citus coordinator with worker nodes, each collection
-- asks every active worker node, in one round (Citus' run_command_on_workers, in parallel, a node
-- that does not answer reported as a failure rather than an error), for its client connections,
-- its database's size (its shards are in it) and its replicas' lag, recorded as METRIC@host:port;
-- and, when every node answered, cluster_database_size_bytes (the coordinator and the workers).
-- A node that fails two collections in a row raises an alert of its own (node_down, critical,
-- one per node), resolved by its next answer; health_check() reports it failing meanwhile.
-- Collection goes on for the other nodes. Returns the points recorded.
CREATE FUNCTION thrillmon._collect_nodes(p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	r record;
	v record;
	this_node text;
	parts text[];
	n integer := 0;
	total numeric := pg_catalog.pg_database_size(pg_catalog.current_database());
	everyone boolean := true;
	failures integer;
	al thrillmon.system_alerts;
	is_coordinator boolean;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL
	   OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
		RETURN 0;
	END IF;
	EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO is_coordinator;
	IF NOT is_coordinator THEN
		RETURN 0;
	END IF;
	-- A node that is down refuses the connection at once; one that hangs would hold collection
	-- for Citus' default 30 s, so each connection gets 5 s (this transaction only).
	PERFORM pg_catalog.set_config('citus.node_connection_timeout', '5000', true);
	FOR r IN EXECUTE $q$
		SELECT w.nodename || ':' || w.nodeport AS node, w.success, w.result
		FROM pg_catalog.run_command_on_workers($c$SELECT pg_catalog.concat_ws(',',
			(SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a
			 WHERE a.datname = pg_catalog.current_database() AND a.backend_type = 'client backend'),
			pg_catalog.pg_database_size(pg_catalog.current_database()),
			(SELECT pg_catalog.max(EXTRACT(EPOCH FROM coalesce(s.replay_lag, interval '0'))) FROM pg_catalog.pg_stat_replication s))$c$) w
		ORDER BY 1 $q$
	LOOP
		this_node := r.node;
		IF r.success THEN
			parts := pg_catalog.string_to_array(r.result, ',');
			FOR v IN SELECT x.name || '@' || this_node AS name, x.value
				FROM (VALUES ('database_connections', parts[1]::double precision), ('database_size_bytes', parts[2]::double precision),
				             ('replication_lag_seconds', parts[3]::double precision)) x(name, value)
				WHERE x.value IS NOT NULL
			LOOP
				n := n + thrillmon._store_point(v.name, v.value, p_at, pg_catalog.jsonb_build_object('node', this_node));
			END LOOP;
			total := total + parts[2]::numeric;
			INSERT INTO thrillmon.node_state AS s (node, consecutive_failures, last_success_at) VALUES (this_node, 0, p_at)
			ON CONFLICT (node) DO UPDATE SET consecutive_failures = 0, last_success_at = p_at;
			FOR al IN UPDATE thrillmon.system_alerts s SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
					metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
				WHERE s.fingerprint = 'node_down:' || this_node AND s.resolved_at IS NULL
				RETURNING s.*
			LOOP
				PERFORM thrillmon._notify_alert(al, 'resolved');
			END LOOP;
		ELSE
			everyone := false;
			INSERT INTO thrillmon.node_state AS s (node, consecutive_failures, last_failure_at, last_error)
			VALUES (this_node, 1, p_at, pg_catalog.left(r.result, 1000))
			ON CONFLICT (node) DO UPDATE SET consecutive_failures = s.consecutive_failures + 1, last_failure_at = p_at,
				last_error = pg_catalog.left(r.result, 1000)
			RETURNING s.consecutive_failures INTO failures;
			IF failures >= 2 AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s
			                                 WHERE s.fingerprint = 'node_down:' || this_node AND s.resolved_at IS NULL) THEN
				INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, fingerprint)
				VALUES ('node_down', 'critical',
					pg_catalog.left(pg_catalog.format('Citus worker node %s does not answer (%s collections in a row): %s',
						this_node, failures, r.result), 2000),
					pg_catalog.jsonb_build_object('node', this_node, 'error', pg_catalog.left(r.result, 1000), 'category', 'system'),
					'node_down:' || this_node)
				RETURNING * INTO al;
				PERFORM thrillmon._notify_alert(al, 'new');
			END IF;
		END IF;
	END LOOP;
	-- Nodes removed from the cluster are no longer watched.
	EXECUTE 'DELETE FROM thrillmon.node_state s WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node d
	         WHERE d.nodename || '':'' || d.nodeport = s.node AND d.isactive AND d.groupid > 0)';
	IF everyone AND this_node IS NOT NULL THEN
		n := n + thrillmon._store_point('cluster_database_size_bytes', total::double precision, p_at, NULL);
	END IF;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect_nodes(timestamptz) IS
	'Internal: on a Citus coordinator, records each worker node''s health (METRIC@host:port) and raises node_down for a node that misses two collections';

REVOKE ALL ON FUNCTION thrillmon._metrics_distributed(), thrillmon._has_points(text, timestamptz, timestamptz),
	thrillmon._require_citus_coordinator(text), thrillmon.distribute(integer), thrillmon.undistribute(boolean),
	thrillmon._on_drop_extension(), thrillmon._store_point(text, double precision, timestamptz, jsonb),
	thrillmon._collect_nodes(timestamptz), thrillmon._metric_names(timestamptz, timestamptz, integer),
	thrillmon._latest_points(timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT SELECT ON thrillmon.node_state TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon._metric_names(timestamptz, timestamptz, integer),
	thrillmon._latest_points(timestamptz, timestamptz, integer) TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon._metrics_distributed() TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon.distribute(integer), thrillmon.undistribute(boolean) TO thrillmon_admin;

-- Distributed (issue 16): rows counted and sizes summed over the shards.
CREATE OR REPLACE FUNCTION thrillmon._metric_retention_stats(
	OUT row_count bigint, OUT total_bytes bigint, OUT oldest timestamptz, OUT newest timestamptz,
	OUT rows_past_retention bigint, OUT partitions integer)
-- SECURITY DEFINER: it reads the daily partitions directly (ONLY, one at a time), which readers
-- have no grant on (they read through the parent); it returns only aggregates.
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	days integer;
	cutoff timestamptz;
	part record;
	n bigint;
	n_past bigint;
	lo timestamptz;
	hi timestamptz;
	-- Distributed (Citus), the coordinator's partitions are empty shells: their statistics and
	-- sizes say nothing. Rows are counted (Citus runs the count on every shard) and sizes summed
	-- over the shards.
	distributed boolean := thrillmon._metrics_distributed();
	bytes bigint;
BEGIN
	SELECT p.retention_days INTO days FROM thrillmon.retention_policies p WHERE p.target = 'metrics';
	cutoff := thrillmon._retention_cutoff(coalesce(days, 30), 'retention_days');
	row_count := 0;
	total_bytes := 0;
	rows_past_retention := 0;
	partitions := 0;
	FOR part IN
		SELECT c.oid::regclass AS rel, c.relname, c.reltuples,
			CASE WHEN c.relname ~ '^metric_time_series_p[0-9]{8}$'
				THEN pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 21), 'YYYYMMDD')::date END AS day
		FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'thrillmon.metric_time_series'::regclass
		ORDER BY c.relname
	LOOP
		partitions := partitions + 1;
		IF distributed THEN
			EXECUTE 'SELECT pg_catalog.citus_total_relation_size($1)' INTO bytes USING part.rel;
		ELSE
			bytes := pg_catalog.pg_total_relation_size(part.rel);
		END IF;
		total_bytes := total_bytes + bytes;
		IF part.reltuples >= 0 AND part.relname <> 'metric_time_series_default' AND NOT distributed THEN
			n := part.reltuples::bigint;
		ELSE
			EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s', part.rel) INTO n;
		END IF;
		row_count := row_count + n;
		-- What a cleanup would remove now: the daily partitions whose day has ended by the
		-- cut-off, whole, and the default partition's rows older than it. The partition holding
		-- the cut-off is kept whole, so its older rows are not past retention yet.
		IF part.relname = 'metric_time_series_default' THEN
			EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s WHERE "timestamp" < $1', part.rel) INTO n_past USING cutoff;
			rows_past_retention := rows_past_retention + n_past;
		ELSIF part.day IS NOT NULL AND (part.day::timestamp AT TIME ZONE 'UTC') + interval '1 day' <= cutoff THEN
			rows_past_retention := rows_past_retention + n;
		END IF;
		IF n > 0 OR part.day IS NULL THEN
			EXECUTE pg_catalog.format('SELECT min("timestamp"), max("timestamp") FROM ONLY %s', part.rel) INTO lo, hi;
			-- Partitions come in day order, so only the first non-empty one can hold the oldest
			-- point; the newest is re-read per non-empty partition but each read is one partition.
			oldest := CASE WHEN oldest IS NULL THEN lo ELSE least(oldest, lo) END;
			newest := CASE WHEN newest IS NULL THEN hi ELSE greatest(newest, hi) END;
		END IF;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._metric_retention_stats() IS 'Internal: metric figures for retention_stats';


CREATE OR REPLACE VIEW thrillmon.retention_stats AS
WITH policy AS (
	SELECT p.target, p.retention_days, p.archive_after_days, p.archive_retention_days, p.failed_retention_days, p.enabled,
		thrillmon._retention_cutoff(p.retention_days, 'retention_days') AS cutoff
	FROM thrillmon.retention_policies p
),
m AS (SELECT * FROM thrillmon._metric_retention_stats()),
figures AS (
	SELECT 'metrics'::text AS target, 'thrillmon.metric_time_series'::text AS table_name, m.row_count AS row_count,
		NOT thrillmon._metrics_distributed() AS rows_estimated, m.total_bytes, m.oldest, m.newest, m.rows_past_retention
	FROM m
	UNION ALL
	SELECT 'anomalies', 'thrillmon.anomaly_detections', (SELECT count(*) FROM thrillmon.anomaly_detections), false,
		pg_catalog.pg_total_relation_size('thrillmon.anomaly_detections'),
		(SELECT min(detected_at) FROM thrillmon.anomaly_detections), (SELECT max(detected_at) FROM thrillmon.anomaly_detections),
		(SELECT count(*) FROM thrillmon.anomaly_detections a, policy p
		 WHERE p.target = 'anomalies' AND (a.detected_at < p.cutoff OR (a.detected_at < thrillmon._retention_cutoff(coalesce(p.archive_after_days, 7), 'archive_after_days')
			AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.id = a.alert_id AND s.resolved_at IS NULL))))
	UNION ALL
	SELECT 'anomalies_archive', 'thrillmon.anomaly_detections_archive', (SELECT count(*) FROM thrillmon.anomaly_detections_archive), false,
		pg_catalog.pg_total_relation_size('thrillmon.anomaly_detections_archive'),
		(SELECT min(detected_at) FROM thrillmon.anomaly_detections_archive), (SELECT max(detected_at) FROM thrillmon.anomaly_detections_archive),
		(SELECT count(*) FROM thrillmon.anomaly_detections_archive a, policy p
		 WHERE p.target = 'anomalies' AND a.detected_at < thrillmon._retention_cutoff(coalesce(p.archive_retention_days, 90), 'archive_retention_days'))
	UNION ALL
	SELECT 'alerts', 'thrillmon.system_alerts', (SELECT count(*) FROM thrillmon.system_alerts), false,
		pg_catalog.pg_total_relation_size('thrillmon.system_alerts'),
		(SELECT min(created_at) FROM thrillmon.system_alerts), (SELECT max(created_at) FROM thrillmon.system_alerts),
		(SELECT count(*) FROM thrillmon.system_alerts a, policy p
		 WHERE p.target = 'alerts' AND a.resolved_at < p.cutoff AND NOT EXISTS (
			SELECT 1 FROM thrillmon.incident_alerts ia JOIN thrillmon.incidents i ON i.id = ia.incident_id
			WHERE ia.alert_id = a.id AND i.status IN ('open', 'investigating')))
	UNION ALL
	SELECT 'incidents', 'thrillmon.incidents', (SELECT count(*) FROM thrillmon.incidents), false,
		pg_catalog.pg_total_relation_size('thrillmon.incidents'),
		(SELECT min(detected_at) FROM thrillmon.incidents), (SELECT max(detected_at) FROM thrillmon.incidents),
		(SELECT count(*) FROM thrillmon.incidents i, policy p
		 WHERE p.target = 'incidents' AND i.status IN ('resolved', 'closed') AND greatest(i.resolved_at, i.closed_at) < p.cutoff)
	UNION ALL
	SELECT 'job_history', 'thrillmon.job_runs', (SELECT count(*) FROM thrillmon.job_runs), false,
		pg_catalog.pg_total_relation_size('thrillmon.job_runs'),
		(SELECT min(started_at) FROM thrillmon.job_runs), (SELECT max(started_at) FROM thrillmon.job_runs),
		(SELECT count(*) FROM thrillmon.job_runs j, policy p
		 WHERE p.target = 'job_history' AND ((j.status IN ('succeeded', 'skipped') AND j.started_at < p.cutoff)
			OR (j.status = 'failed' AND j.started_at < thrillmon._retention_cutoff(coalesce(p.failed_retention_days, p.retention_days), 'failed_retention_days'))))
	UNION ALL
	SELECT 'deliveries', 'thrillmon.deliveries', (SELECT count(*) FROM thrillmon.deliveries), false,
		pg_catalog.pg_total_relation_size('thrillmon.deliveries') + pg_catalog.pg_total_relation_size('thrillmon.delivery_attempts'),
		(SELECT min(created_at) FROM thrillmon.deliveries), (SELECT max(created_at) FROM thrillmon.deliveries),
		(SELECT count(*) FROM thrillmon.deliveries d, policy p
		 WHERE p.target = 'deliveries' AND ((d.status = 'delivered' AND d.finished_at < p.cutoff)
			OR (d.status = 'dead' AND d.finished_at < thrillmon._retention_cutoff(coalesce(p.failed_retention_days, p.retention_days), 'failed_retention_days'))))
)
SELECT f.target, f.table_name, f.row_count AS rows, f.rows_estimated, f.total_bytes AS bytes,
	pg_catalog.pg_size_pretty(f.total_bytes) AS size, f.oldest, f.newest,
	CASE WHEN f.target = 'anomalies_archive' THEN p.archive_retention_days ELSE p.retention_days END AS retention_days,
	p.enabled AS policy_enabled,
	CASE WHEN f.target = 'anomalies_archive'
		THEN thrillmon._retention_cutoff(p.archive_retention_days, 'archive_retention_days') ELSE p.cutoff END AS cutoff,
	f.rows_past_retention, lc.last_cleanup_at, lc.last_cleanup_status, lc.last_cleanup_removed
FROM figures f
LEFT JOIN policy p ON p.target = (CASE WHEN f.target = 'anomalies_archive' THEN 'anomalies' ELSE f.target END)
LEFT JOIN LATERAL thrillmon._last_cleanup(CASE WHEN f.target = 'anomalies_archive' THEN 'anomalies' ELSE f.target END) lc ON true
ORDER BY f.target;
COMMENT ON VIEW thrillmon.retention_stats IS
	'Per retention target: rows, bytes, oldest/newest record, rows past retention now (what a cleanup would remove now), last cleanup and what it removed. For metrics, rows are estimates (rows_estimated = true) from each partition''s pg_class.reltuples, counted exactly only for never-analysed partitions and the default partition (and for all when the table is distributed with Citus: rows_estimated = false); rows past retention are the rows of the daily partitions whose whole day is older than the cut-off plus the default partition''s older rows (the partition holding the cut-off is dropped only once its day has expired). Other targets are counted exactly (their retention keeps them small). For anomalies_archive, last_cleanup_removed is the anomalies run''s.';

------------------------------------------------------------------------------------------------
-- Every alert event writes its deliveries (60_alerts_incidents.sql, 65_delivery.sql).
------------------------------------------------------------------------------------------------
DROP FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text);
-- NOTIFY thrillmon_alerts: delivered when (and only if) the transaction commits. NOTIFY refuses a
-- payload of 8000 bytes or more, and an error here would fail the transaction that resolves or
-- raises the alert: every later detection pass too, if the alert waits to be resolved. The large
-- fields are the alert's own (an admin may edit its metadata, metric name and message), so past
-- 7,900 bytes value and baseline are kept only as short numbers, the texts are cut to 200
-- characters and the payload says "truncated": true.
CREATE FUNCTION thrillmon._notify_listeners(p_alert thrillmon.system_alerts, p_event text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	payload text := pg_catalog.jsonb_build_object(
		'event', p_event,
		'alert_id', p_alert.id,
		'alert_type', p_alert.alert_type,
		'metric', p_alert.metric_name,
		'severity', p_alert.severity,
		'value', p_alert.metadata->'value',
		'baseline', p_alert.metadata->'baseline',
		'message', pg_catalog.left(p_alert.message, 1000),
		'created_at', p_alert.created_at,
		'resolved_at', p_alert.resolved_at)::text;
BEGIN
	IF pg_catalog.octet_length(payload) > 7900 THEN
		payload := pg_catalog.jsonb_build_object(
			'event', p_event,
			'alert_id', p_alert.id,
			'alert_type', pg_catalog.left(p_alert.alert_type, 200),
			'metric', pg_catalog.left(p_alert.metric_name, 200),
			'severity', p_alert.severity,
			'value', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'value') = 'number'
				AND pg_catalog.length((p_alert.metadata->'value')::text) <= 40 THEN p_alert.metadata->'value' END,
			'baseline', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'baseline') = 'number'
				AND pg_catalog.length((p_alert.metadata->'baseline')::text) <= 40 THEN p_alert.metadata->'baseline' END,
			'message', pg_catalog.left(p_alert.message, 200),
			'created_at', p_alert.created_at,
			'resolved_at', p_alert.resolved_at,
			'truncated', true)::text;
	END IF;
	PERFORM pg_catalog.pg_notify('thrillmon_alerts', payload);
END
$fn$;
COMMENT ON FUNCTION thrillmon._notify_listeners(thrillmon.system_alerts, text) IS
	'Internal: NOTIFY thrillmon_alerts of an alert event, with a JSON payload';

-- An alert event (new, escalated, resolved) outside the detection pass: NOTIFY, and the event's
-- deliveries to the outbox (65_delivery.sql), in the same transaction. (The pass notifies each
-- event as it happens and writes the deliveries of all of them at once.)
CREATE FUNCTION thrillmon._notify_alert(p_alert thrillmon.system_alerts, p_event text, p_previous_severity text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	PERFORM thrillmon._notify_listeners(p_alert, p_event);
	PERFORM thrillmon._enqueue_deliveries(ARRAY[p_alert], ARRAY[p_event], ARRAY[p_previous_severity]);
END
$fn$;
COMMENT ON FUNCTION thrillmon._notify_alert(thrillmon.system_alerts, text, text) IS
	'Internal: an alert event (new, escalated, resolved): NOTIFY thrillmon_alerts with a JSON payload, and its deliveries to the outbox';

-- Alert delivery: channels (checked as they are written), the outbox the alert paths fill in
-- their own transaction (_enqueue_deliveries, called by _notify_alert), what the delivery worker
-- (src/pg/delivery.cpp) claims and records, Alertmanager's format and re-sends, test_channel(),
-- and silences and maintenance windows.

-- A URL's problem as a channel's target: NULL when it is an http(s) URL whose host
-- thrillmon.notify_allowed_hosts allows, else why not. (C: the setting is superuser-only, and the
-- check is the one the worker repeats before every request.)
CREATE FUNCTION thrillmon._url_problem(url text)
RETURNS text
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'thrillmon_url_problem';
COMMENT ON FUNCTION thrillmon._url_problem(text) IS 'Internal: why a URL cannot be a channel''s (NULL: it can)';

-- One POST now, from this backend, with the worker's rules (allow-list, no redirects, timeout,
-- bounded answer). Only test_channel() calls it: no role is granted it.
CREATE FUNCTION thrillmon._http_post(url text, header_lines text, body text, timeout_ms integer,
	OUT http_status integer, OUT latency_ms double precision, OUT error text, OUT response text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_http_post';
COMMENT ON FUNCTION thrillmon._http_post(text, text, text, integer) IS 'Internal: one HTTP POST under the delivery rules (test_channel())';

-- The seconds of a delivery setting; without the library loaded, the default. (current_setting()
-- shows a value in its unit, '1d' or '5min', which reads as an interval: it is called on every
-- claim and attempt, where a scan of pg_settings would cost more than the rest.)
CREATE FUNCTION thrillmon._delivery_setting(p_name text, p_default integer)
RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT coalesce(EXTRACT(EPOCH FROM pg_catalog.current_setting(p_name, true)::interval)::integer, p_default)
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_setting(text, integer) IS 'Internal: a delivery setting in seconds';

-- Checks a channel as it is written: the bound on channels, a URL that may be reached, headers
-- that are plain strings and cannot smuggle a second header or replace the ones thrillmon sets.
CREATE FUNCTION thrillmon._check_channel()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	problem text;
	h record;
BEGIN
	IF TG_OP = 'INSERT' AND (SELECT pg_catalog.count(*) FROM thrillmon.notification_channels) >= 32 THEN
		RAISE EXCEPTION 'thrillmon: at most 32 notification channels'
			USING ERRCODE = '54000', HINT = 'Delete or reuse a channel; one channel can carry every alert.';
	END IF;
	problem := thrillmon._url_problem(NEW.url);
	IF problem LIKE '%thrillmon.notify_allowed_hosts%' THEN
		RAISE EXCEPTION 'thrillmon: channel "%" cannot use this URL: %', NEW.name, problem USING ERRCODE = '42501',
			HINT = 'A superuser lists the hosts channels may reach in thrillmon.notify_allowed_hosts (ALTER SYSTEM, then reload).';
	ELSIF problem IS NOT NULL THEN
		RAISE EXCEPTION 'thrillmon: channel "%" cannot use this URL: %', NEW.name, problem USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.octet_length(NEW.headers::text) > 8192 THEN
		RAISE EXCEPTION 'thrillmon: channel "%" headers take more than 8192 bytes', NEW.name USING ERRCODE = '54000';
	END IF;
	FOR h IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(NEW.headers) e LOOP
		IF pg_catalog.jsonb_typeof(h.value) <> 'string' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" header "%" must be a string', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF h.key !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{1,128}$' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" has an invalid header name "%"', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF (h.value #>> '{}') ~ '[[:cntrl:]]' THEN
			RAISE EXCEPTION 'thrillmon: channel "%" header "%" contains a control character', NEW.name, h.key USING ERRCODE = '22023';
		ELSIF pg_catalog.lower(h.key) IN ('host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'idempotency-key', 'expect') THEN
			RAISE EXCEPTION 'thrillmon: channel "%" cannot set header "%": thrillmon sets it', NEW.name, h.key USING ERRCODE = '22023';
		END IF;
	END LOOP;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION thrillmon._check_channel() IS 'Internal: checks a notification channel as it is written';
CREATE TRIGGER check_channel BEFORE INSERT OR UPDATE ON thrillmon.notification_channels
	FOR EACH ROW EXECUTE FUNCTION thrillmon._check_channel();

-- What readers may know of the channels: everything but the URL and headers.
CREATE VIEW thrillmon.channel_status AS
SELECT c.name, c.kind, c.enabled, c.min_severity, c.metric_pattern, c.timeout_ms,
	(SELECT pg_catalog.count(*) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'pending') AS pending,
	(SELECT pg_catalog.min(d.created_at) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'pending') AS oldest_pending_at,
	(SELECT pg_catalog.count(*) FROM thrillmon.deliveries d WHERE d.channel = c.name AND d.status = 'dead'
	   AND d.finished_at > pg_catalog.now() - interval '1 day') AS dead_last_day,
	coalesce(s.consecutive_failures, 0) AS consecutive_failures,
	s.last_success_at, s.last_failure_at, s.last_error, s.last_resend_at
FROM thrillmon.notification_channels c
LEFT JOIN thrillmon.channel_state s ON s.channel = c.name
ORDER BY c.name;
COMMENT ON VIEW thrillmon.channel_status IS
	'Each notification channel without its URL or headers: deliveries pending and dead in the last day, failures in a row, last success and error';

-- The webhook payload: what NOTIFY thrillmon_alerts carries, plus the idempotency key, the
-- alertname, category, deviation and database (the other kinds are made from it at send time).
-- The idempotency key is stable across re-sends and distinct per event (each escalation has its
-- own, by the severity reached). Alertmanager's alertname is the alert type in camel case:
-- anomaly -> ThrillmonAnomaly, delivery_failing -> ThrillmonDeliveryFailing.
CREATE FUNCTION thrillmon._alert_payload(p_alert thrillmon.system_alerts, p_event text, p_previous_severity text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'event', p_event,
		'idempotency_key', p_alert.id::text || ':' || p_event || CASE WHEN p_event = 'escalated' THEN ':' || p_alert.severity ELSE '' END,
		'alert_id', p_alert.id,
		'alertname', 'Thrillmon' || pg_catalog.replace(pg_catalog.initcap(pg_catalog.regexp_replace(p_alert.alert_type, '[^A-Za-z0-9]+', ' ', 'g')), ' ', ''),
		'alert_type', pg_catalog.left(p_alert.alert_type, 128),
		'metric', pg_catalog.left(p_alert.metric_name, 200),
		'category', coalesce(p_alert.metadata->>'category',
			(SELECT d.metric_category FROM thrillmon.anomaly_detections d WHERE d.id = p_alert.anomaly_id),
			CASE WHEN p_alert.metric_name IS NULL THEN 'monitoring' ELSE 'custom' END),
		'severity', p_alert.severity,
		'previous_severity', p_previous_severity,
		'channel', p_alert.metadata->>'channel',
		'value', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'value') = 'number' THEN p_alert.metadata->'value' END,
		'baseline', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'baseline') = 'number' THEN p_alert.metadata->'baseline' END,
		'deviation', CASE WHEN pg_catalog.jsonb_typeof(p_alert.metadata->'deviation') = 'number' THEN p_alert.metadata->'deviation' END,
		'message', pg_catalog.left(p_alert.message, 2000),
		'database', pg_catalog.current_database(),
		'created_at', p_alert.created_at,
		'resolved_at', p_alert.resolved_at))
$fn$;
COMMENT ON FUNCTION thrillmon._alert_payload(thrillmon.system_alerts, text, text) IS 'Internal: an alert event as a webhook''s JSON';

-- The outbox write: one delivery per enabled channel each alert event is for, in the caller's
-- transaction. The events come as arrays so that a detection pass writes all of its own with one
-- statement, made and planned once per pass, rather than once per alert. A resolution goes only
-- where the alert was announced (an alert the channel never heard of is not resolved to it), so a
-- batch must not hold a resolution after another event of the same alert (the pass writes its
-- resolutions in a batch of their own); ThrillmonDeliveryFailing never goes to the channel it is
-- about. Past 100000 pending deliveries (receivers down for long, many
-- alerts) an event is not queued: the alert says so (metadata deliveries_dropped) and
-- health_check() fails.
-- (jit off: the planner, which knows no channel count, prices the resolution check once per
-- event and guessed channel, past jit_above_cost, and compiling would cost more than the insert.)
CREATE FUNCTION thrillmon._enqueue_deliveries(p_alerts thrillmon.system_alerts[], p_events text[], p_previous_severities text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
	total integer := coalesce(pg_catalog.cardinality(p_alerts), 0);
	channels integer;
	one_by_one boolean;
	i integer := 1;
	j integer;
	n integer;
	written integer := 0;
BEGIN
	SELECT pg_catalog.count(*) INTO channels FROM thrillmon.notification_channels c WHERE c.enabled;
	IF total = 0 OR channels = 0 THEN
		RETURN 0;
	END IF;
	-- The pending rows lie between the oldest pending id and the sequence's last: when that span,
	-- with all this batch could add, stays below the bound, so does their number, and nothing is
	-- counted (counting on every pass would cost it time in proportion to the outbox). Near the
	-- bound the events go one at a time, each after a count.
	one_by_one := (SELECT q.last_value FROM thrillmon.deliveries_id_seq q) - coalesce((
	        SELECT pg_catalog.min(f.id) FROM thrillmon.notification_channels c
	        CROSS JOIN LATERAL (SELECT x.id FROM thrillmon.deliveries x WHERE x.channel = c.name AND x.status = 'pending'
	                            ORDER BY x.id LIMIT 1) f), 2^62) + total::bigint * channels >= 100000 - 1;
	WHILE i <= total LOOP
		j := CASE WHEN one_by_one THEN i ELSE total END;
		IF one_by_one AND (SELECT pg_catalog.count(*) FROM (SELECT 1 FROM thrillmon.deliveries d WHERE d.status = 'pending'
		                   LIMIT 100000) x) >= 100000 THEN
			UPDATE thrillmon.system_alerts s SET metadata = coalesce(s.metadata, '{}')
				|| pg_catalog.jsonb_build_object('deliveries_dropped', coalesce(s.metadata->'deliveries_dropped', '[]') || pg_catalog.to_jsonb(p_events[i]))
			WHERE s.id = (p_alerts[i]).id;
			RAISE WARNING 'thrillmon: % deliveries are pending (the most the outbox holds); the % event of alert % is not delivered',
				100000, p_events[i], (p_alerts[i]).id;
		ELSE
			-- Each event's payload, which holds its key, is made once, whatever the number of channels
			-- (materialized: joined first, it would be made once per channel). The alerts are read by
			-- unnest(): subscripting an array of rows walks it from its start on each access.
			WITH e AS MATERIALIZED (
				SELECT o.alert, o.ord, p_events[i - 1 + o.ord] AS event,
					thrillmon._alert_payload(o.alert, p_events[i - 1 + o.ord], p_previous_severities[i - 1 + o.ord]) AS payload,
					thrillmon._severity_rank((o.alert).severity) AS rank
				FROM (SELECT a AS alert, pg_catalog.row_number() OVER () AS ord FROM pg_catalog.unnest(p_alerts[i:j]) a) o
			)
			INSERT INTO thrillmon.deliveries (channel, alert_id, event, idempotency_key, payload)
			SELECT c.name, (e.alert).id, e.event, e.payload->>'idempotency_key', e.payload
			FROM e
			-- (Ranks once per event, above, and once per channel, here: not once per pair.)
			JOIN (SELECT c.name, c.metric_pattern, thrillmon._severity_rank(c.min_severity) AS min_rank
			      FROM thrillmon.notification_channels c WHERE c.enabled) c
			  ON e.rank >= c.min_rank
			 AND ((e.alert).metric_name IS NULL OR (e.alert).metric_name LIKE c.metric_pattern)
			 AND (e.event <> 'resolved' OR EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = (e.alert).id AND d.channel = c.name))
			 AND NOT ((e.alert).alert_type = 'delivery_failing' AND c.name = (e.alert).metadata->>'channel')
			ORDER BY e.ord, c.name
			ON CONFLICT ON CONSTRAINT delivery_key_unique DO NOTHING;
			GET DIAGNOSTICS n = ROW_COUNT;
			written := written + n;
		END IF;
		i := j + 1;
	END LOOP;
	RETURN written;
END
$fn$;
COMMENT ON FUNCTION thrillmon._enqueue_deliveries(thrillmon.system_alerts[], text[], text[]) IS
	'Internal: writes alert events'' deliveries to the outbox (in the caller''s transaction)';

-- What a channel of that kind is sent for a delivery, made at send time (Alertmanager's endsAt
-- is relative to the moment of sending).
CREATE FUNCTION thrillmon._delivery_body(p_payload jsonb, p_kind text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- An open alert stays open on Alertmanager's side for four re-send intervals past each send.
	hold interval := pg_catalog.make_interval(secs => 4 * thrillmon._delivery_setting('thrillmon.alertmanager_resend_interval', 60));
	firing jsonb;
BEGIN
	IF p_kind = 'webhook' THEN
		RETURN p_payload::text;
	ELSIF p_kind = 'slack' THEN
		RETURN pg_catalog.jsonb_build_object('text', pg_catalog.format('[thrillmon %s] %s%s%s',
			p_payload->>'database',
			CASE p_payload->>'event' WHEN 'resolved' THEN 'RESOLVED: ' WHEN 'escalated' THEN 'ESCALATED to ' || (p_payload->>'severity') || ': '
				WHEN 'test' THEN 'TEST: ' ELSE pg_catalog.upper(p_payload->>'severity') || ': ' END,
			p_payload->>'message',
			CASE WHEN p_payload ? 'alert_id' THEN ' (alert ' || (p_payload->>'alert_id') || ')' ELSE '' END))::text;
	END IF;
	-- Alertmanager: an array of alerts, label values and annotations strings.
	firing := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'labels', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'alertname', p_payload->>'alertname',
			'metric', p_payload->>'metric',
			'channel', p_payload->>'channel',
			'category', p_payload->>'category',
			'severity', p_payload->>'severity',
			'database', p_payload->>'database')),
		'annotations', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'summary', pg_catalog.left(p_payload->>'message', 200),
			'message', p_payload->>'message',
			'value', p_payload->>'value',
			'baseline', p_payload->>'baseline',
			'deviation', p_payload->>'deviation',
			'alert_id', p_payload->>'alert_id')),
		'startsAt', p_payload->'created_at',
		'endsAt', CASE WHEN p_payload->>'event' = 'resolved' THEN coalesce(p_payload->'resolved_at', pg_catalog.to_jsonb(pg_catalog.now()))
			ELSE pg_catalog.to_jsonb(pg_catalog.now() + hold) END));
	IF p_payload->>'event' = 'escalated' AND p_payload ? 'previous_severity' THEN
		-- The severity is a label, so part of the alert's identity there: the alert at its old
		-- severity ends now, or it would stay firing beside the new one until it expired.
		RETURN pg_catalog.jsonb_build_array(
			pg_catalog.jsonb_set(pg_catalog.jsonb_set(firing, '{labels,severity}', p_payload->'previous_severity'),
				'{endsAt}', pg_catalog.to_jsonb(pg_catalog.now())),
			firing)::text;
	END IF;
	RETURN pg_catalog.jsonb_build_array(firing)::text;
END
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_body(jsonb, text) IS 'Internal: the request body a channel of that kind is sent for a delivery';

-- The request headers for a channel, one "Name: value" per line (the worker splits them).
CREATE FUNCTION thrillmon._header_lines(p_headers jsonb, p_key text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.concat_ws(E'\n', 'Content-Type: application/json',
		CASE WHEN p_key IS NOT NULL THEN 'Idempotency-Key: ' || p_key END,
		(SELECT pg_catalog.string_agg(e.key || ': ' || e.value, E'\n' ORDER BY e.key) FROM pg_catalog.jsonb_each_text(p_headers) e))
$fn$;
COMMENT ON FUNCTION thrillmon._header_lines(jsonb, text) IS 'Internal: a request''s header lines';

-- The delivery worker's claim: marks what has waited longer than thrillmon.delivery_max_age dead,
-- then returns, for each enabled channel, its oldest deliveries due, up to
-- 4 in flight per channel (those in flight, p_in_flight, count
-- and are skipped), never one whose alert has an earlier delivery to that channel still pending
-- (so an alert's events go one at a time, in order: a resolved never overtakes its new; a dead one
-- no longer holds the rest back).
CREATE FUNCTION thrillmon._deliveries_due(p_in_flight bigint[])
RETURNS TABLE (delivery_id bigint, channel text, kind text, url text, header_lines text, timeout_ms integer, body text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	max_age interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.delivery_max_age', 86400));
BEGIN
	UPDATE thrillmon.deliveries d SET status = 'dead', finished_at = pg_catalog.now(),
		last_error = pg_catalog.left(coalesce(d.last_error, 'not attempted'), 900) || ' (given up after thrillmon.delivery_max_age)'
	WHERE d.status = 'pending' AND d.created_at < pg_catalog.now() - max_age;
	-- A failing channel that was deleted or disabled no longer has a failure to report.
	-- (Through the index of open fingerprints: the open alerts, not the whole table, every claim.)
	PERFORM thrillmon._resolve_delivery_failing(a.metadata->>'channel')
	FROM thrillmon.system_alerts a
	WHERE a.resolved_at IS NULL AND a.fingerprint IS NOT NULL AND a.fingerprint LIKE 'delivery:%'
	  AND a.alert_type = 'delivery_failing'
	  AND NOT EXISTS (SELECT 1 FROM thrillmon.notification_channels c WHERE c.name = a.metadata->>'channel' AND c.enabled);
	-- Per channel, its pending deliveries in order (deliveries_pending_idx), the first ones due; the
	-- bodies are made for the chosen rows only.
	RETURN QUERY
	SELECT d.id, c.name, c.kind, c.url, thrillmon._header_lines(c.headers, d.idempotency_key), c.timeout_ms,
		thrillmon._delivery_body(d.payload, c.kind)
	FROM thrillmon.notification_channels c
	CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n FROM thrillmon.deliveries f
	                    WHERE f.id = ANY (coalesce(p_in_flight, '{}')) AND f.channel = c.name) busy
	CROSS JOIN LATERAL (
		SELECT x.id, x.idempotency_key, x.payload FROM thrillmon.deliveries x
		WHERE x.channel = c.name AND x.status = 'pending' AND x.next_attempt_at <= pg_catalog.now()
		  AND NOT (x.id = ANY (coalesce(p_in_flight, '{}')))
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.deliveries e
		                  WHERE e.alert_id = x.alert_id AND e.channel = x.channel AND e.id < x.id AND e.status = 'pending')
		ORDER BY x.id LIMIT GREATEST(4 - busy.n, 0)) d
	WHERE c.enabled
	ORDER BY c.name, d.id;
END
$fn$;
COMMENT ON FUNCTION thrillmon._deliveries_due(bigint[]) IS 'Internal: the delivery worker''s next requests per channel';

-- Alertmanager forgets an alert it is not told about again before its endsAt: every
-- thrillmon.alertmanager_resend_interval each Alertmanager channel with nothing in flight is sent
-- every alert still open that it was told of and has nothing pending for (an alert whose new or
-- resolved is waiting goes in order through the outbox instead).
CREATE FUNCTION thrillmon._resends_due(p_busy text[])
RETURNS TABLE (channel text, url text, header_lines text, timeout_ms integer, body text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	every interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.alertmanager_resend_interval', 60));
	c thrillmon.notification_channels;
	alerts jsonb;
BEGIN
	FOR c IN SELECT ch.* FROM thrillmon.notification_channels ch
		LEFT JOIN thrillmon.channel_state s ON s.channel = ch.name
		WHERE ch.enabled AND ch.kind = 'alertmanager' AND NOT (ch.name = ANY (coalesce(p_busy, '{}')))
		  AND (s.last_resend_at IS NULL OR s.last_resend_at <= pg_catalog.now() - every)
		ORDER BY ch.name
	LOOP
		-- (ON CONSTRAINT: the output column "channel" would make a column list ambiguous.)
		INSERT INTO thrillmon.channel_state AS s (channel, last_resend_at) VALUES (c.name, pg_catalog.now())
		ON CONFLICT ON CONSTRAINT channel_state_pkey DO UPDATE SET last_resend_at = EXCLUDED.last_resend_at;
		SELECT pg_catalog.jsonb_agg(b.elem) INTO alerts
		FROM thrillmon.system_alerts a
		CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(thrillmon._delivery_body(thrillmon._alert_payload(a, 'new'), 'alertmanager')::jsonb) b(elem)
		WHERE a.resolved_at IS NULL
		  AND EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = a.id AND d.channel = c.name AND d.status = 'delivered')
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.alert_id = a.id AND d.channel = c.name AND d.status = 'pending');
		IF alerts IS NOT NULL THEN
			channel := c.name;
			url := c.url;
			header_lines := thrillmon._header_lines(c.headers, NULL);
			timeout_ms := c.timeout_ms;
			body := alerts::text;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._resends_due(text[]) IS 'Internal: Alertmanager re-sends of the alerts still open';

CREATE FUNCTION thrillmon._resolve_delivery_failing(p_channel text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	al thrillmon.system_alerts;
BEGIN
	FOR al IN UPDATE thrillmon.system_alerts s SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		WHERE s.fingerprint = 'delivery:' || p_channel AND s.resolved_at IS NULL
		RETURNING s.*
	LOOP
		PERFORM thrillmon._notify_alert(al, 'resolved');
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._resolve_delivery_failing(text) IS 'Internal: resolves a channel''s ThrillmonDeliveryFailing alert';

-- Records one finished request. A delivery's failure is retried after an exponential backoff
-- with jitter (0.5 to 1 times 2^(attempts-1) seconds, at most thrillmon.delivery_retry_max), and
-- goes dead once its next try would be past thrillmon.delivery_max_age. Three failures in a row
-- on a channel raise ThrillmonDeliveryFailing (sent through the other channels); its next success
-- resolves it.
CREATE FUNCTION thrillmon._delivery_attempted(p_delivery_id bigint, p_channel text, p_purpose text, p_at timestamptz,
	p_http_status integer, p_error text, p_latency_ms double precision, p_excerpt text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	ok boolean := p_error IS NULL AND p_http_status BETWEEN 200 AND 299;
	why text := coalesce(p_error, 'HTTP ' || p_http_status::text);
	max_age interval := pg_catalog.make_interval(secs => thrillmon._delivery_setting('thrillmon.delivery_max_age', 86400));
	retry_max integer := thrillmon._delivery_setting('thrillmon.delivery_retry_max', 300);
	failures integer;
	al thrillmon.system_alerts;
BEGIN
	INSERT INTO thrillmon.delivery_attempts (delivery_id, channel, purpose, attempted_at, http_status, error, latency_ms, response_excerpt)
	SELECT p_delivery_id, p_channel, p_purpose, p_at, NULLIF(p_http_status, 0), pg_catalog.left(p_error, 1000),
		pg_catalog.round(p_latency_ms::numeric, 3)::double precision,
		pg_catalog.left(p_excerpt, 256)
	WHERE p_delivery_id IS NULL OR EXISTS (SELECT 1 FROM thrillmon.deliveries d WHERE d.id = p_delivery_id);
	IF p_delivery_id IS NOT NULL THEN
		UPDATE thrillmon.deliveries d
		SET attempts = d.attempts + 1, last_http_status = NULLIF(p_http_status, 0),
			last_error = CASE WHEN ok THEN NULL ELSE pg_catalog.left(why, 1000) END,
			status = CASE WHEN ok THEN 'delivered' WHEN n.next_at > d.created_at + max_age THEN 'dead' ELSE 'pending' END,
			finished_at = CASE WHEN ok OR n.next_at > d.created_at + max_age THEN pg_catalog.now() END,
			next_attempt_at = CASE WHEN ok THEN d.next_attempt_at ELSE n.next_at END
		FROM (SELECT pg_catalog.now() + pg_catalog.make_interval(secs =>
				LEAST(retry_max::double precision, pg_catalog.power(2, LEAST(dd.attempts, 30))) * (0.5 + 0.5 * pg_catalog.random())) AS next_at
		      FROM thrillmon.deliveries dd WHERE dd.id = p_delivery_id) n
		WHERE d.id = p_delivery_id AND d.status = 'pending';
	END IF;
	IF p_purpose = 'test' OR NOT EXISTS (SELECT 1 FROM thrillmon.notification_channels c WHERE c.name = p_channel) THEN
		RETURN;
	END IF;
	INSERT INTO thrillmon.channel_state AS s (channel, consecutive_failures, last_success_at, last_failure_at, last_error)
	VALUES (p_channel, CASE WHEN ok THEN 0 ELSE 1 END, CASE WHEN ok THEN p_at END, CASE WHEN NOT ok THEN p_at END,
		CASE WHEN NOT ok THEN pg_catalog.left(why, 1000) END)
	ON CONFLICT (channel) DO UPDATE SET
		consecutive_failures = CASE WHEN ok THEN 0 ELSE s.consecutive_failures + 1 END,
		last_success_at = CASE WHEN ok THEN p_at ELSE s.last_success_at END,
		last_failure_at = CASE WHEN ok THEN s.last_failure_at ELSE p_at END,
		last_error = CASE WHEN ok THEN s.last_error ELSE pg_catalog.left(why, 1000) END
	RETURNING s.consecutive_failures INTO failures;
	IF ok THEN
		PERFORM thrillmon._resolve_delivery_failing(p_channel);
	ELSIF failures >= 3 AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s
	                                    WHERE s.fingerprint = 'delivery:' || p_channel AND s.resolved_at IS NULL) THEN
		INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, fingerprint)
		VALUES ('delivery_failing', 'high',
			pg_catalog.left(pg_catalog.format('thrillmon cannot deliver alerts to channel "%s": %s failures in a row, the last: %s',
				p_channel, failures, why), 2000),
			pg_catalog.jsonb_build_object('channel', p_channel, 'error', pg_catalog.left(why, 1000), 'category', 'monitoring'),
			'delivery:' || p_channel)
		RETURNING * INTO al;
		PERFORM thrillmon._notify_alert(al, 'new');
	END IF;
END
$fn$;
COMMENT ON FUNCTION thrillmon._delivery_attempted(bigint, text, text, timestamptz, integer, text, double precision, text) IS
	'Internal: records a request the delivery worker made, schedules a retry or gives up';

CREATE FUNCTION thrillmon.test_channel(channel_name text)
RETURNS TABLE (http_status integer, latency_ms double precision, error text, response text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	c thrillmon.notification_channels;
	payload jsonb;
	r record;
	at timestamptz := pg_catalog.clock_timestamp();
BEGIN
	SELECT * INTO c FROM thrillmon.notification_channels ch WHERE ch.name = channel_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no notification channel "%"', channel_name USING ERRCODE = '42704';
	END IF;
	payload := pg_catalog.jsonb_build_object('event', 'test', 'idempotency_key', 'test:' || pg_catalog.gen_random_uuid(),
		'alertname', 'ThrillmonTest', 'alert_type', 'test', 'category', 'monitoring', 'severity', 'low',
		'message', pg_catalog.format('Test message from thrillmon in database %s to channel "%s"', pg_catalog.current_database(), c.name),
		'database', pg_catalog.current_database(), 'created_at', pg_catalog.now());
	SELECT * INTO r FROM thrillmon._http_post(c.url, thrillmon._header_lines(c.headers, payload->>'idempotency_key'),
		thrillmon._delivery_body(payload, c.kind), c.timeout_ms);
	PERFORM thrillmon._delivery_attempted(NULL, c.name, 'test', at, r.http_status, r.error, r.latency_ms, r.response);
	http_status := r.http_status;
	latency_ms := r.latency_ms;
	error := r.error;
	response := r.response;
	RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION thrillmon.test_channel(text) IS
	'Sends a test message to the channel now, from this session, and returns what the receiver answered (recorded in delivery_attempts)';

------------------------------------------------------------------------------------------------
-- Silences and maintenance windows
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._create_silence(p_pattern text, p_starts timestamptz, p_ends timestamptz, p_reason text, p_maintenance boolean)
RETURNS thrillmon.silence_rules
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	s thrillmon.silence_rules;
BEGIN
	IF p_pattern IS NULL OR p_starts IS NULL OR p_ends IS NULL OR p_reason IS NULL OR pg_catalog.btrim(p_reason) = '' THEN
		RAISE EXCEPTION 'thrillmon: a % needs a metric pattern, a start, an end and a reason',
			CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END USING ERRCODE = '22004';
	ELSIF p_ends <= p_starts THEN
		RAISE EXCEPTION 'thrillmon: a % must end after it starts (% is not after %)',
			CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END, p_ends, p_starts USING ERRCODE = '22023';
	ELSIF p_ends <= pg_catalog.now() THEN
		RAISE EXCEPTION 'thrillmon: a % that ended at % would cover nothing', CASE WHEN p_maintenance THEN 'maintenance window' ELSE 'silence' END,
			p_ends USING ERRCODE = '22023';
	ELSIF p_ends - p_starts > interval '366 days' THEN
		RAISE EXCEPTION 'thrillmon: a silence or maintenance window lasts at most 366 days' USING ERRCODE = '22023';
	END IF;
	-- One at a time, so two callers cannot both take the last place.
	LOCK TABLE thrillmon.silence_rules IN SHARE ROW EXCLUSIVE MODE;
	IF (SELECT pg_catalog.count(*) FROM thrillmon.silence_rules r WHERE r.expired_at IS NULL AND r.ends_at > pg_catalog.now())
	   >= 1000 THEN
		RAISE EXCEPTION 'thrillmon: at most 1000 silences and maintenance windows can be active or pending'
			USING ERRCODE = '54000', HINT = 'Expire some (thrillmon.expire_silence(id)), or cover more metrics with one pattern.';
	END IF;
	INSERT INTO thrillmon.silence_rules (metric_pattern, starts_at, ends_at, reason, maintenance)
	VALUES (p_pattern, p_starts, p_ends, p_reason, p_maintenance)
	RETURNING * INTO s;
	RETURN s;
END
$fn$;
COMMENT ON FUNCTION thrillmon._create_silence(text, timestamptz, timestamptz, text, boolean) IS 'Internal: the body of create_silence() and create_maintenance_window()';

CREATE FUNCTION thrillmon.create_silence(metric_pattern text, starts_at timestamptz, ends_at timestamptz, reason text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT (thrillmon._create_silence($1, $2, $3, $4, false)).id
$fn$;
COMMENT ON FUNCTION thrillmon.create_silence(text, timestamptz, timestamptz, text) IS
	'Silences metrics LIKE metric_pattern from starts_at to ends_at: their anomalies are recorded (marked with the silence) but raise no alert and deliver nothing; returns its id';

CREATE FUNCTION thrillmon.create_maintenance_window(metric_pattern text, starts_at timestamptz, ends_at timestamptz, reason text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT (thrillmon._create_silence($1, $2, $3, $4, true)).id
$fn$;
COMMENT ON FUNCTION thrillmon.create_maintenance_window(text, timestamptz, timestamptz, text) IS
	'A silence whose metrics'' points inside it are also neither scored nor learned by the detectors (a deploy or migration does not teach them a new normal); returns its id';

-- Ends a silence now: it covers nothing from now on (expired_at cuts it short). A maintenance
-- window keeps what it covered until then, so a detector rebuilt from history later still skips
-- those points.
CREATE FUNCTION thrillmon.expire_silence(silence_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM thrillmon.silence_rules r WHERE r.id = silence_id) THEN
		RAISE EXCEPTION 'thrillmon: no silence or maintenance window %', silence_id USING ERRCODE = '42704';
	END IF;
	UPDATE thrillmon.silence_rules r SET expired_at = pg_catalog.now()
	WHERE r.id = silence_id AND r.expired_at IS NULL AND r.ends_at > pg_catalog.now();
	RETURN FOUND;
END
$fn$;
COMMENT ON FUNCTION thrillmon.expire_silence(bigint) IS 'Ends a silence or maintenance window now; false when it had already ended';

CREATE VIEW thrillmon.silences AS
SELECT r.id, CASE WHEN r.maintenance THEN 'maintenance' ELSE 'silence' END AS kind, r.metric_pattern, r.starts_at, r.ends_at,
	CASE WHEN r.expired_at IS NOT NULL THEN 'expired'
		WHEN r.ends_at <= pg_catalog.now() THEN 'ended'
		WHEN r.starts_at > pg_catalog.now() THEN 'pending'
		ELSE 'active' END AS state,
	r.reason, r.created_by, r.created_at, r.expired_at, r.silenced_anomalies
FROM thrillmon.silence_rules r
ORDER BY r.starts_at DESC, r.id DESC;
COMMENT ON VIEW thrillmon.silences IS
	'Silences and maintenance windows: state pending, active, ended or expired (ended early by expire_silence()), and how many anomalies each silenced';

-- The silence covering a metric's anomaly, if any (a maintenance window first): one in force
-- now (an anomaly found while it is on, whenever its point was), or one that covered the point
-- (a pass that runs late, after the silence ended).
CREATE FUNCTION thrillmon._silence_for(p_metric text, p_at timestamptz)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT r.id FROM thrillmon.silence_rules r
	WHERE ((r.starts_at <= p_at AND r.ends_at > p_at AND (r.expired_at IS NULL OR r.expired_at > p_at))
	    OR (r.starts_at <= pg_catalog.now() AND r.ends_at > pg_catalog.now() AND r.expired_at IS NULL))
	  AND p_metric LIKE r.metric_pattern
	ORDER BY r.maintenance DESC, r.id
	LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._silence_for(text, timestamptz) IS 'Internal: the silence covering a metric''s point, or NULL';

------------------------------------------------------------------------------------------------
-- Detection (70_detection.sql): silences, and escalations as events of their own.
------------------------------------------------------------------------------------------------
-- One pass: score what arrived since the last pass's horizon (the engine reads it through each
-- partition's BRIN and keeps the detectors between passes), write the anomalies, raise, escalate
-- and resolve alerts, open incidents, and move the horizon, all in one transaction.
-- The regular metrics (a steady cadence of points) that this backend's last pass found silent:
-- no point for five of their intervals, two minutes at least (src/core/detect_pass.hpp, Cadence).
CREATE FUNCTION thrillmon._detect_pass_silent()
RETURNS TABLE (metric_name text, last_point timestamptz, interval_seconds double precision)
AS 'MODULE_PATHNAME', 'thrillmon_detect_pass_silent'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_pass_silent() IS
	'Internal: the regular metrics this backend''s last detection pass found silent (no point for five intervals), each at most every ten minutes';

-- _detect_scan() says which anomalies are uncorroborated (a new metric's, before its calibration is
-- trusted, with no other metric anomalous in the pass): a new column, so the function is made
-- again (_detect_run(), below, reads it).
DROP FUNCTION thrillmon._detect_scan(timestamptz, timestamptz, bigint, bigint);
CREATE FUNCTION thrillmon._detect_scan(p_prev timestamptz, p_upto timestamptz, p_prev_pass bigint, p_pass bigint)
RETURNS TABLE (metric_name text, metric_category text, ts timestamptz, value double precision, score double precision,
	deviation double precision, baseline double precision, anomaly_type text, severity text, algorithm text,
	uncorroborated boolean)
AS 'MODULE_PATHNAME', 'thrillmon_detect_scan'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION thrillmon._detect_scan(timestamptz, timestamptz, bigint, bigint) IS
	'Internal: scores every enabled metric''s points in (prev, upto] and returns the anomalies; writes nothing';
REVOKE ALL ON FUNCTION thrillmon._detect_scan(timestamptz, timestamptz, bigint, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION thrillmon._detect_run()
RETURNS SETOF thrillmon.anomaly_detections
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	prog thrillmon.detector_progress;
	upto timestamptz;
	pass bigint;
	a record;
	cfg thrillmon.anomaly_detection_config;
	det thrillmon.anomaly_detections;
	last_alert thrillmon.system_alerts;
	al thrillmon.system_alerts;
	new_alerts uuid[] := '{}';
	fp text;
	silence bigint;
	-- The pass's alert events, their deliveries written at once (see _enqueue_deliveries).
	ev_alerts thrillmon.system_alerts[] := '{}';
	ev_events text[] := '{}';
	ev_previous text[] := '{}';
	would_alert boolean;
	label uuid;
	quiet record;
	quiet_category text;
BEGIN
	-- One pass at a time (the worker, pg_cron, a person): the second waits, then scores only
	-- what arrived after the first one's horizon.
	PERFORM 1 FROM thrillmon.job_locks l WHERE l.name = 'detect_pass' FOR UPDATE;
	SELECT * INTO prog FROM thrillmon.detector_progress;
	upto := thrillmon._detect_horizon();
	IF prog.horizon IS NOT NULL AND upto < prog.horizon THEN
		upto := prog.horizon;
	END IF;
	pass := pg_catalog.nextval('thrillmon.detector_pass_seq'::pg_catalog.regclass);

	FOR a IN SELECT * FROM thrillmon._detect_scan(prog.horizon, upto, coalesce(prog.pass, 0), pass) s ORDER BY s.ts, s.metric_name LOOP
		cfg := thrillmon._config_for(a.metric_name);
		INSERT INTO thrillmon.anomaly_detections AS d (metric_name, metric_category, anomaly_type, severity, baseline_value,
			anomaly_value, deviation_score, confidence_score, detection_algorithm, time_window_start, time_window_end, metadata)
		VALUES (a.metric_name, CASE WHEN a.metric_category IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')
				THEN a.metric_category ELSE 'custom' END,
			a.anomaly_type, a.severity, a.baseline, a.value, a.deviation, a.score, a.algorithm, a.ts, a.ts,
			pg_catalog.jsonb_build_object('pass', pass, 'sensitivity', cfg.sensitivity))
		ON CONFLICT (metric_name, time_window_end) DO NOTHING
		RETURNING d.* INTO det;
		IF NOT FOUND THEN
			CONTINUE;
		END IF;
		-- A silence (or maintenance window) covering the point: the anomaly is recorded, marked
		-- with it, and keeps an open alert from resolving, but raises or escalates nothing.
		silence := thrillmon._silence_for(a.metric_name, a.ts);
		IF silence IS NOT NULL THEN
			UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || pg_catalog.jsonb_build_object('silence_id', silence)
			WHERE d.id = det.id RETURNING d.* INTO det;
			UPDATE thrillmon.silence_rules r SET silenced_anomalies = r.silenced_anomalies + 1 WHERE r.id = silence;
			UPDATE thrillmon.system_alerts s SET metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
			WHERE s.fingerprint = 'anomaly:' || a.metric_name AND s.resolved_at IS NULL;
			RETURN NEXT det;
			CONTINUE;
		END IF;
		-- (thrillmon's own alert and incident counts are never alerted on: an alert moves them.)
		would_alert := cfg.auto_create_alert AND a.score >= cfg.alert_threshold_score AND a.metric_name NOT IN ('unresolved_alerts', 'active_incidents');
		-- A new metric's anomaly (its detector's calibration not yet trusted) raises an alert only
		-- with another metric anomalous in the same pass (_detect_scan() says when it has none). A
		-- lock storm shows on the locks, the transactions and their rate at once; a new database's
		-- first checkpoints (a burst of full-page writes) on the WAL rate alone. Recorded either
		-- way, and marked.
		IF would_alert AND a.uncorroborated THEN
			UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || '{"uncorroborated": true}'
			WHERE d.id = det.id RETURNING d.* INTO det;
			would_alert := false;
		END IF;
		-- A shape a person labelled a false positive on this metric (same type and direction, at
		-- most a quarter further out) is recorded, marked with the label, and raises nothing.
		IF would_alert THEN
			label := thrillmon._false_positive_for(a.metric_name, a.anomaly_type, a.deviation);
			IF label IS NOT NULL THEN
				UPDATE thrillmon.anomaly_detections d SET metadata = d.metadata || pg_catalog.jsonb_build_object('suppressed_by_label', label)
				WHERE d.id = det.id RETURNING d.* INTO det;
				would_alert := false;
			END IF;
		END IF;
		IF would_alert THEN
			fp := 'anomaly:' || a.metric_name;
			-- (The open one first: two passes in one transaction stamp their alerts with one now().)
			SELECT s.* INTO last_alert FROM thrillmon.system_alerts s WHERE s.fingerprint = fp
			ORDER BY s.resolved_at IS NULL DESC, s.created_at DESC LIMIT 1;
			IF last_alert.id IS NOT NULL
			   AND (last_alert.resolved_at IS NULL
			        OR last_alert.resolved_at > pg_catalog.now() - pg_catalog.make_interval(mins => cfg.cooldown_minutes)) THEN
				-- Same episode: the anomaly joins the alert, which escalates if this one is worse.
				UPDATE thrillmon.anomaly_detections d SET alert_id = last_alert.id WHERE d.id = det.id RETURNING d.* INTO det;
				IF last_alert.resolved_at IS NULL THEN
					-- (An escalation is an event of its own: NOTIFY and the outbox hear of it.)
					UPDATE thrillmon.system_alerts s
					SET severity = CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity) THEN a.severity ELSE s.severity END,
						metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
							|| CASE WHEN thrillmon._severity_rank(a.severity) > thrillmon._severity_rank(s.severity)
							   THEN pg_catalog.jsonb_build_object('escalated_at', pg_catalog.now(), 'value', a.value, 'baseline', a.baseline)
							   ELSE '{}' END
					WHERE s.id = last_alert.id
					RETURNING s.* INTO al;
					IF thrillmon._severity_rank(al.severity) > thrillmon._severity_rank(last_alert.severity) THEN
						PERFORM thrillmon._notify_listeners(al, 'escalated');
						ev_alerts := ev_alerts || al;
						ev_events := ev_events || 'escalated'::text;
						ev_previous := ev_previous || last_alert.severity;
					END IF;
				END IF;
			ELSE
				INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, anomaly_id, fingerprint)
				VALUES ('anomaly', a.severity,
					-- (A flatline has no deviation to speak of: the engine's is nominal.)
					pg_catalog.left(CASE WHEN a.anomaly_type = 'flatline'
						THEN pg_catalog.format('%s flatline on %s: stuck at %s, where it used to vary around %s',
							a.severity, a.metric_name, a.value, pg_catalog.round(a.baseline::numeric, 4))
						ELSE pg_catalog.format('%s %s on %s: %s against a baseline of %s (%s robust sd, %s)',
							a.severity, pg_catalog.replace(a.anomaly_type, '_', ' '), a.metric_name, a.value,
							pg_catalog.round(a.baseline::numeric, 4), pg_catalog.round(a.deviation::numeric, 1), a.algorithm) END, 2000),
					pg_catalog.jsonb_build_object('value', a.value, 'baseline', a.baseline, 'deviation', a.deviation,
						'score', a.score, 'anomaly_type', a.anomaly_type, 'algorithm', a.algorithm, 'point_time', a.ts,
						'last_anomaly_at', a.ts, 'cooldown_minutes', cfg.cooldown_minutes),
					a.metric_name, det.id, fp)
				RETURNING * INTO al;
				UPDATE thrillmon.anomaly_detections d SET alert_created = true, alert_id = al.id WHERE d.id = det.id RETURNING d.* INTO det;
				PERFORM thrillmon._notify_listeners(al, 'new');
				ev_alerts := ev_alerts || al;
				ev_events := ev_events || 'new'::text;
				ev_previous := ev_previous || NULL::text;
				new_alerts := new_alerts || al.id;
			END IF;
		ELSE
			-- Below the alert threshold: no alert, but the metric is not normal yet either.
			UPDATE thrillmon.system_alerts s SET metadata = s.metadata || pg_catalog.jsonb_build_object('last_anomaly_at', a.ts)
			WHERE s.fingerprint = 'anomaly:' || a.metric_name AND s.resolved_at IS NULL;
		END IF;
		RETURN NEXT det;
	END LOOP;

	-- A metric that stops arriving: one no_data alert per silence, never silence itself. Not
	-- while one is open, nor again for the same last point (a person resolved it); not for a
	-- metric whose detection or alerts are off, nor under a silence or maintenance window (the
	-- engine reports it again every ten minutes while it lasts).
	FOR quiet IN SELECT * FROM thrillmon._detect_pass_silent() s ORDER BY s.metric_name LOOP
		cfg := thrillmon._config_for(quiet.metric_name);
		CONTINUE WHEN NOT cfg.enabled OR NOT cfg.auto_create_alert OR thrillmon._silence_for(quiet.metric_name, upto) IS NOT NULL;
		fp := 'no_data:' || quiet.metric_name;
		CONTINUE WHEN EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.fingerprint = fp
			AND (s.resolved_at IS NULL OR (s.metadata->>'last_point')::timestamptz = quiet.last_point));
		-- (Read first, in a statement of its own: Citus plans no read of a distributed table
		-- inside an INSERT into a local one.)
		SELECT m.metric_category INTO quiet_category FROM thrillmon.metric_time_series m
		WHERE m.metric_name = quiet.metric_name AND m."timestamp" = quiet.last_point LIMIT 1;
		INSERT INTO thrillmon.system_alerts (alert_type, severity, message, metadata, metric_name, fingerprint)
		VALUES ('no_data', 'high',
			pg_catalog.left(pg_catalog.format('no data from %s since %s (it came every %s s)', quiet.metric_name, quiet.last_point,
				pg_catalog.round(quiet.interval_seconds::numeric, 1)), 2000),
			pg_catalog.jsonb_build_object('last_point', quiet.last_point, 'interval_seconds', quiet.interval_seconds,
				'silent_seconds', EXTRACT(EPOCH FROM upto - quiet.last_point),
				'category', quiet_category),
			quiet.metric_name, fp)
		RETURNING * INTO al;
		PERFORM thrillmon._notify_listeners(al, 'new');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'new'::text;
		ev_previous := ev_previous || NULL::text;
		new_alerts := new_alerts || al.id;
	END LOOP;
	-- (Only with something to deliver: most passes have nothing, and a call costs as much as
	-- the statements of a quiet pass.)
	IF pg_catalog.cardinality(ev_alerts) > 0 THEN
		PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);
	END IF;
	ev_alerts := '{}';
	ev_events := '{}';
	ev_previous := '{}';

	-- Auto-resolve: an alert raised by detection whose metric has been normal for its cooldown
	-- (its last anomaly, kept on the alert, is older than that, and points have kept coming
	-- since). The alert keeps the cooldown it was raised with. One statement; only alerts past
	-- their cooldown cost an index probe.
	FOR al IN WITH resolved AS (
		UPDATE thrillmon.system_alerts s
		SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		FROM (
			SELECT o.id
			FROM thrillmon.system_alerts o
			-- (An alert made by hand or imported may lack these: its creation and the metric's
			-- configured cooldown stand in.)
			CROSS JOIN LATERAL (SELECT coalesce((o.metadata->>'last_anomaly_at')::timestamptz, (o.metadata->>'point_time')::timestamptz, o.created_at)
			                           + pg_catalog.make_interval(mins => coalesce((o.metadata->>'cooldown_minutes')::integer,
			                                                                      (thrillmon._config_for(o.metric_name)).cooldown_minutes)) AS quiet_from) q
			WHERE o.resolved_at IS NULL AND o.alert_type = 'anomaly' AND o.metric_name IS NOT NULL
			  AND q.quiet_from <= upto
			  -- (A probe of its own per alert: see _has_points().)
			  AND thrillmon._has_points(o.metric_name, q.quiet_from, upto)
		) due
		WHERE s.id = due.id
		RETURNING s.*
	) SELECT * FROM resolved
	LOOP
		PERFORM thrillmon._notify_listeners(al, 'resolved');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'resolved'::text;
		ev_previous := ev_previous || NULL::text;
	END LOOP;
	-- A no_data alert resolves when its metric's points come again.
	FOR al IN UPDATE thrillmon.system_alerts s
		SET resolved_at = GREATEST(pg_catalog.now(), s.created_at),
			metadata = coalesce(s.metadata, '{}') || '{"resolved_by": "auto"}'
		WHERE s.resolved_at IS NULL AND s.alert_type = 'no_data' AND s.metric_name IS NOT NULL
		  AND thrillmon._has_points(s.metric_name, (s.metadata->>'last_point')::timestamptz, upto)
		RETURNING s.*
	LOOP
		PERFORM thrillmon._notify_listeners(al, 'resolved');
		ev_alerts := ev_alerts || al;
		ev_events := ev_events || 'resolved'::text;
		ev_previous := ev_previous || NULL::text;
	END LOOP;
	-- (A batch of their own, after the others: a resolution goes only where the alert was announced.)
	IF pg_catalog.cardinality(ev_alerts) > 0 THEN
		PERFORM thrillmon._enqueue_deliveries(ev_alerts, ev_events, ev_previous);
	END IF;

	IF pg_catalog.cardinality(new_alerts) > 0 THEN
		PERFORM thrillmon._auto_incidents(new_alerts);
	END IF;

	INSERT INTO thrillmon.detector_progress (id, pass, horizon, updated_at) VALUES (true, pass, upto, pg_catalog.now())
	ON CONFLICT (id) DO UPDATE SET pass = EXCLUDED.pass, horizon = EXCLUDED.horizon, updated_at = EXCLUDED.updated_at;
END
$fn$;
COMMENT ON FUNCTION thrillmon._detect_run() IS 'Internal: one detection pass (anomalies, alerts, auto-resolve, incidents, progress)';

------------------------------------------------------------------------------------------------
-- Health (80_health.sql): delivery failing, dead or dropped.
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION thrillmon.health_check()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	w record;
	reasons text[] := '{}';
	failing boolean := false;
	worker_enabled boolean := coalesce(pg_catalog.current_setting('thrillmon.enabled', true), 'on') = 'on';
	scheduler text := coalesce(pg_catalog.current_setting('thrillmon.scheduler', true), 'internal');
	interval_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.collect_interval'), 60);
	by_cron boolean := EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'collect');
	last_collect timestamptz;
	last_retention timestamptz;
	-- The first instant after the last day maintenance makes a partition for.
	reach timestamptz := (pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC')
		+ pg_catalog.make_interval(days => 1 + coalesce(pg_catalog.current_setting('thrillmon.partition_premake_days', true)::integer, 7)))
		AT TIME ZONE 'UTC';
	ahead bigint;
	detect_s integer := coalesce((SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'thrillmon.detect_interval'), 300);
	horizon timestamptz;
	d jsonb;
	j record;
	c record;
BEGIN
	SELECT * INTO w FROM thrillmon.worker_status();
	IF by_cron THEN
		interval_s := 60; -- pg_cron runs collection every minute
	END IF;
	IF worker_enabled AND scheduler = 'internal' AND w.pid IS NULL THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker not running (%s)', w.state);
	ELSIF worker_enabled AND scheduler = 'internal' AND w.database IS DISTINCT FROM pg_catalog.current_database() THEN
		failing := true;
		reasons := reasons || pg_catalog.format('worker serves database "%s", not this one (set thrillmon.database)', w.database);
	END IF;
	SELECT max(finished_at) INTO last_collect FROM thrillmon.job_runs WHERE job = 'collect' AND status = 'succeeded';
	-- Collection is expected unless scheduling was turned off: by the worker, or by pg_cron when
	-- thrillmon.scheduler = pg_cron (if no pg_cron job collects then, that is stale too).
	IF (worker_enabled AND scheduler <> 'off') OR by_cron THEN
		IF last_collect IS NULL THEN
			failing := true;
			reasons := reasons || 'collection stale: no successful collection yet'::text;
		ELSIF pg_catalog.now() - last_collect > pg_catalog.make_interval(secs => 3 * interval_s) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('collection stale: last successful collection %s ago (more than 3 intervals of %s s)',
				pg_catalog.date_trunc('second', pg_catalog.now() - last_collect), interval_s);
		END IF;
	END IF;
	-- Retention is expected daily when the worker or pg_cron runs it: a day and an hour without a
	-- successful full cleanup (and job history older than that, so not a fresh install) is overdue,
	-- whatever the reason (its lock held, a run failing or cut short).
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'retention') THEN
		SELECT max(r.started_at) INTO last_retention FROM thrillmon.job_runs r
		WHERE r.job = 'retention' AND r.target = 'all' AND r.status = 'succeeded';
		IF (last_retention IS NULL OR last_retention < pg_catalog.now() - interval '25 hours')
		   AND EXISTS (SELECT 1 FROM thrillmon.job_runs r WHERE r.started_at < pg_catalog.now() - interval '25 hours') THEN
			reasons := reasons || CASE WHEN last_retention IS NULL THEN 'retention overdue: no successful run_data_retention_cleanup() yet'
				ELSE pg_catalog.format('retention overdue: last successful run_data_retention_cleanup() %s ago',
					pg_catalog.date_trunc('second', pg_catalog.now() - last_retention)) END;
		END IF;
	END IF;
	-- Points dated past the last day partitions are made for (a direct INSERT's; record_metric()
	-- refuses them) wait in the default partition, where the latest values ignore them.
	-- (Distributed, the count reads every shard: a worker node that is down must not take the
	-- whole check with it, which then says why below.)
	BEGIN
		SELECT pg_catalog.count(*) INTO ahead FROM ONLY thrillmon.metric_time_series_default d WHERE d."timestamp" >= reach;
	EXCEPTION WHEN OTHERS THEN
		ahead := 0;
		reasons := reasons || pg_catalog.format('cannot read the default partition: %s', SQLERRM);
	END;
	IF ahead > 0 THEN
		reasons := reasons || pg_catalog.format('%s points dated %s or later (past thrillmon.partition_premake_days) wait in the default partition',
			ahead, (reach AT TIME ZONE 'UTC')::date);
	END IF;
	-- Detection: stalled (the horizon has not moved for three intervals and ten minutes, the most
	-- an open transaction may hold it back, while something is to run it), or its last pass left
	-- metrics unscored or failed to score some.
	IF (worker_enabled AND scheduler = 'internal') OR EXISTS (SELECT 1 FROM thrillmon.pg_cron_jobs WHERE job = 'detect') THEN
		SELECT p.horizon INTO horizon FROM thrillmon.detector_progress p;
		IF horizon < pg_catalog.now() - pg_catalog.make_interval(secs => 3 * detect_s + 600) THEN
			failing := true;
			reasons := reasons || pg_catalog.format('detection stalled: points are scored up to %s, %s ago',
				horizon, pg_catalog.date_trunc('second', pg_catalog.now() - horizon));
		END IF;
	END IF;
	SELECT r.details INTO d FROM thrillmon.job_runs r
	WHERE r.job = 'detect' AND r.status = 'succeeded' ORDER BY r.started_at DESC LIMIT 1;
	IF coalesce((d->>'skipped_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection left %s metrics unscored in its last pass (more than thrillmon.max_metrics_per_pass = %s had new points)',
			d->>'skipped_metrics', pg_catalog.current_setting('thrillmon.max_metrics_per_pass', true));
	END IF;
	IF coalesce((d->>'failed_metrics')::bigint, 0) > 0 THEN
		reasons := reasons || pg_catalog.format('detection could not score %s metrics in its last pass (out of memory)',
			d->>'failed_metrics');
	END IF;
	FOR j IN SELECT DISTINCT ON (r.job) r.job, r.status, r.error, r.finished_at FROM thrillmon.job_runs r
		WHERE r.status <> 'running' ORDER BY r.job, r.started_at DESC
	LOOP
		IF j.status = 'failed' THEN
			reasons := reasons || pg_catalog.format('job %s failing: %s', j.job, coalesce(j.error, 'see job_runs'));
		END IF;
	END LOOP;
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc WHERE mc.enabled AND mc.last_error IS NOT NULL ORDER BY mc.name LOOP
		reasons := reasons || pg_catalog.format('collector %s failing: %s', c.name, c.last_error);
	END LOOP;
	FOR c IN SELECT mc.name, mc.last_error FROM thrillmon.metric_collectors mc
		WHERE NOT mc.enabled AND mc.last_error LIKE 'disabled by thrillmon:%' ORDER BY mc.name
	LOOP
		reasons := reasons || pg_catalog.format('collector %s %s', c.name, c.last_error);
	END LOOP;
	-- A Citus worker node that did not answer the last collection: the cluster is not whole.
	FOR c IN SELECT ns.node, ns.consecutive_failures, ns.last_failure_at, ns.last_error FROM thrillmon.node_state ns
		WHERE ns.consecutive_failures > 0 ORDER BY ns.node
	LOOP
		failing := true;
		reasons := reasons || pg_catalog.format('Citus worker node %s not answering since %s: %s', c.node,
			c.last_failure_at, coalesce(c.last_error, '?'));
	END LOOP;
	-- Delivery (65_delivery.sql): with a channel enabled, its worker must run; a delivery given up
	-- (dead) or an event dropped from a full outbox in the last day means someone was not told:
	-- failing. A channel failing now, or deliveries waiting for long, is degraded.
	IF EXISTS (SELECT 1 FROM thrillmon.notification_channels ch WHERE ch.enabled) THEN
		IF w.database IS NOT DISTINCT FROM pg_catalog.current_database() AND NOT EXISTS (
			SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'thrillmon delivery') THEN
			failing := true;
			reasons := reasons || 'delivery worker not running: alerts wait in the outbox'::text;
		END IF;
		FOR c IN SELECT cs.channel, cs.consecutive_failures, cs.last_error FROM thrillmon.channel_state cs
			JOIN thrillmon.notification_channels ch ON ch.name = cs.channel AND ch.enabled
			WHERE cs.consecutive_failures > 0 ORDER BY cs.channel
		LOOP
			reasons := reasons || pg_catalog.format('channel %s failing: %s attempts in a row, the last: %s',
				c.channel, c.consecutive_failures, c.last_error);
		END LOOP;
	END IF;
	FOR c IN SELECT d.channel, pg_catalog.count(*) AS n FROM thrillmon.deliveries d
		WHERE d.status = 'dead' AND d.finished_at > pg_catalog.now() - interval '1 day' GROUP BY d.channel ORDER BY d.channel
	LOOP
		failing := true;
		reasons := reasons || pg_catalog.format('deliveries dead: %s to channel %s given up in the last day (see thrillmon.deliveries)', c.n, c.channel);
	END LOOP;
	IF EXISTS (SELECT 1 FROM thrillmon.system_alerts a WHERE a.metadata ? 'deliveries_dropped' AND a.created_at > pg_catalog.now() - interval '1 day') THEN
		failing := true;
		reasons := reasons || 'deliveries dropped: the outbox was full (100000 pending) when alerts were raised'::text;
	END IF;
	SELECT pg_catalog.count(*) INTO ahead FROM thrillmon.deliveries d
	WHERE d.status = 'pending' AND d.created_at < pg_catalog.now() - interval '10 minutes';
	IF ahead > 0 THEN
		reasons := reasons || pg_catalog.format('%s deliveries pending for more than 10 minutes', ahead);
	END IF;
	RETURN pg_catalog.jsonb_build_object(
		'status', CASE WHEN failing THEN 'failing' WHEN pg_catalog.cardinality(reasons) > 0 THEN 'degraded' ELSE 'ok' END,
		'reasons', pg_catalog.to_jsonb(reasons),
		'checked_at', pg_catalog.now(),
		'last_collection_at', last_collect,
		'worker', pg_catalog.to_jsonb(w));
END
$fn$;
COMMENT ON FUNCTION thrillmon.health_check() IS
	'One call for an external probe: {"status": "ok" | "degraded" | "failing", "reasons": [...]}; failing when the worker is not running or collection is stale (more than 3 intervals), degraded when a job or collector is failing';

------------------------------------------------------------------------------------------------
-- Grants (99_grants.sql): the new functions are nobody's until granted; readers read the new
-- tables, except channels.
------------------------------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA thrillmon FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA thrillmon TO thrillmon_reader;
-- ... delivery: channels are admins' alone (a URL or an Authorization header is a secret; readers
-- see channel_status instead), as are silences, maintenance windows and test_channel(). No role
-- is granted _http_post() or _url_problem(): only thrillmon's SECURITY DEFINER functions call them.
REVOKE ALL ON thrillmon.notification_channels FROM thrillmon_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON thrillmon.notification_channels TO thrillmon_admin;
GRANT EXECUTE ON FUNCTION thrillmon.test_channel(text), thrillmon.create_silence(text, timestamptz, timestamptz, text),
	thrillmon.create_maintenance_window(text, timestamptz, timestamptz, text), thrillmon.expire_silence(bigint) TO thrillmon_admin;

------------------------------------------------------------------------------------------------
-- A new anomaly type, flatline (issue 13: a metric that stops changing), in the anomalies' and
-- the archive's CHECK (sql/source/10_schema.sql; the list is the core's kAnomalyTypes).
------------------------------------------------------------------------------------------------
ALTER TABLE thrillmon.anomaly_detections DROP CONSTRAINT anomaly_type_known,
	ADD CONSTRAINT anomaly_type_known CHECK (anomaly_type IN ('spike', 'drop', 'level_shift', 'trend_change', 'outlier', 'flatline'));
ALTER TABLE thrillmon.anomaly_detections_archive DROP CONSTRAINT anomaly_type_known,
	ADD CONSTRAINT anomaly_type_known CHECK (anomaly_type IN ('spike', 'drop', 'level_shift', 'trend_change', 'outlier', 'flatline'));

------------------------------------------------------------------------------------------------
-- Feedback (issue 13): labels on anomalies (sql/source/10_schema.sql), label_anomaly(),
-- tune_detection() and the pass's false-positive rule (sql/source/70_detection.sql).
------------------------------------------------------------------------------------------------
-- A person's verdict on an anomaly (label_anomaly(), 70_detection.sql). The anomaly's shape is
-- copied in and there is no foreign key: the anomaly moves to the archive and is purged, and the
-- label must outlive it, since a false positive keeps its shape from alerting again and
-- tune_detection() replays the labels against the stored history. Bounded (label_anomaly()
-- raises at 100000); admins delete labels they no longer want.
CREATE TABLE thrillmon.anomaly_labels (
	anomaly_id uuid PRIMARY KEY,
	metric_name text NOT NULL
		CONSTRAINT label_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND 128),
	point_time timestamptz NOT NULL,
	anomaly_type text NOT NULL CONSTRAINT label_anomaly_type_known CHECK (anomaly_type IN ('spike', 'drop', 'level_shift', 'trend_change', 'outlier', 'flatline')),
	deviation double precision NOT NULL
		CONSTRAINT label_deviation_finite CHECK (deviation <> 'NaN'::float8 AND deviation <> 'Infinity'::float8 AND deviation <> '-Infinity'::float8),
	label text NOT NULL CONSTRAINT label_known CHECK (label IN ('false_positive', 'true_positive')),
	note text CONSTRAINT label_note_length CHECK (pg_catalog.char_length(note) <= 2000),
	labelled_by text NOT NULL DEFAULT CURRENT_USER,
	labelled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.anomaly_labels IS
	'People''s verdicts on anomalies (label_anomaly()): a false positive keeps its shape from alerting again on its metric; tune_detection() replays them';
CREATE INDEX anomaly_labels_metric_idx ON thrillmon.anomaly_labels (metric_name, label);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_labels', '');

------------------------------------------------------------------------------------------------
-- Feedback: a person's verdict on an anomaly, and the sensitivity the verdicts call for.
------------------------------------------------------------------------------------------------

-- The false-positive label whose shape covers this anomaly, if any: the same metric, anomaly type
-- and direction, and a deviation at most 1.25 times the labelled one (a clearly larger deviation
-- is news, and alerts). The pass asks only for an anomaly about to alert.
CREATE FUNCTION thrillmon._false_positive_for(p_metric text, p_type text, p_deviation double precision)
RETURNS uuid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT l.anomaly_id FROM thrillmon.anomaly_labels l
	WHERE l.metric_name = p_metric AND l.label = 'false_positive' AND l.anomaly_type = p_type
	  AND pg_catalog.sign(l.deviation) = pg_catalog.sign(p_deviation)
	  AND pg_catalog.abs(p_deviation) <= 1.25 * pg_catalog.abs(l.deviation)
	ORDER BY pg_catalog.abs(l.deviation) DESC, l.anomaly_id LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._false_positive_for(text, text, double precision) IS
	'Internal: the false-positive label covering an anomaly of this metric, type and deviation (same direction, at most 1.25 times as far out), or NULL';

CREATE FUNCTION thrillmon.label_anomaly(anomaly_id uuid, label text, note text DEFAULT NULL)
RETURNS thrillmon.anomaly_labels
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	an record;
	result thrillmon.anomaly_labels;
BEGIN
	IF $1 IS NULL OR $2 IS NULL THEN
		RAISE EXCEPTION 'thrillmon: label_anomaly needs an anomaly_id and a label' USING ERRCODE = '22004';
	END IF;
	IF $2 NOT IN ('false_positive', 'true_positive') THEN
		RAISE EXCEPTION 'thrillmon: unknown anomaly label "%"', $2 USING ERRCODE = '22023',
			HINT = 'A label is one of: false_positive, true_positive.';
	END IF;
	IF pg_catalog.char_length($3) > 2000 THEN
		RAISE EXCEPTION 'thrillmon: a label''s note is at most 2000 characters (got %)', pg_catalog.char_length($3)
			USING ERRCODE = '22001';
	END IF;
	SELECT d.metric_name, d.time_window_end, d.anomaly_type, d.deviation_score INTO an
	FROM (SELECT x.metric_name, x.time_window_end, x.anomaly_type, x.deviation_score FROM thrillmon.anomaly_detections x WHERE x.id = $1
	      UNION ALL
	      SELECT x.metric_name, x.time_window_end, x.anomaly_type, x.deviation_score FROM thrillmon.anomaly_detections_archive x WHERE x.id = $1) d
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'thrillmon: no anomaly with id %', $1 USING ERRCODE = 'P0002';
	END IF;
	-- Labellers queue behind each other here (readers and the pass do not), so the bound is exact.
	LOCK TABLE thrillmon.anomaly_labels IN SHARE ROW EXCLUSIVE MODE;
	IF NOT EXISTS (SELECT 1 FROM thrillmon.anomaly_labels l WHERE l.anomaly_id = $1)
	   AND (SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels) >= 100000 THEN
		RAISE EXCEPTION 'thrillmon: too many anomaly labels (at most 100000)' USING ERRCODE = '54000',
			HINT = 'Delete labels no longer wanted from thrillmon.anomaly_labels.';
	END IF;
	INSERT INTO thrillmon.anomaly_labels AS l (anomaly_id, metric_name, point_time, anomaly_type, deviation, label, note, labelled_by)
	VALUES ($1, an.metric_name, an.time_window_end, an.anomaly_type, an.deviation_score, $2, $3, SESSION_USER)
	ON CONFLICT ON CONSTRAINT anomaly_labels_pkey DO UPDATE
	SET label = EXCLUDED.label, note = EXCLUDED.note, labelled_by = EXCLUDED.labelled_by, labelled_at = pg_catalog.now()
	RETURNING l.* INTO result;
	RETURN result;
END
$fn$;
COMMENT ON FUNCTION thrillmon.label_anomaly(uuid, text, text) IS
	'Stores a person''s verdict on an anomaly (''false_positive'' or ''true_positive''; a second call replaces the first). A false positive keeps anomalies of its shape on its metric from alerting; tune_detection() replays the labels';

-- Replays the labelled stretch of the metric's history through backtest() at each sensitivity of
-- a grid (2 to 12 by 0.25, and the current one) and suggests the one that best separates the
-- labels: the most true positives caught less false positives caught, and of the sensitivities
-- doing that, the one closest to the current (the smallest change). A label counts as caught when
-- the replay reports an anomaly within the metric's cooldown of its point (the same alert). The
-- replay runs from a day before the first label (backtest() warms the detector on the lookback
-- window before that) to the last stored point, so the counts of anomalies include what came
-- after the labels.
CREATE FUNCTION thrillmon.tune_detection(metric_name text, apply boolean DEFAULT false)
RETURNS TABLE (current_sensitivity double precision, suggested_sensitivity double precision,
	true_positives integer, false_positives integer,
	true_positives_caught_before integer, false_positives_caught_before integer,
	true_positives_caught_after integer, false_positives_caught_after integer,
	anomalies_before bigint, anomalies_after bigint, points bigint, applied boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
	cfg thrillmon.anomaly_detection_config;
	first_point timestamptz;
	last_point timestamptz;
	first_label timestamptz;
	replay_from timestamptz;
	episode interval;
	grid double precision[];
	s double precision;
	r record;
	sens double precision[] := '{}';
	tp_caught integer[] := '{}';
	fp_caught integer[] := '{}';
	found_anomalies bigint[] := '{}';
	replayed bigint;
	best_objective integer;
	i_best integer;
	i_current integer;
BEGIN
	IF $1 IS NULL OR $2 IS NULL THEN
		RAISE EXCEPTION 'thrillmon: tune_detection needs a metric_name (and apply true or false)' USING ERRCODE = '22004';
	END IF;
	cfg := thrillmon._config_for($1);
	SELECT pg_catalog.min(m."timestamp"), pg_catalog.max(m."timestamp") INTO first_point, last_point
	FROM thrillmon.metric_time_series m WHERE m.metric_name = $1;
	IF first_point IS NULL THEN
		RAISE EXCEPTION 'thrillmon: metric "%" has no stored points to replay', $1 USING ERRCODE = 'P0002';
	END IF;
	SELECT pg_catalog.min(l.point_time) INTO first_label FROM thrillmon.anomaly_labels l
	WHERE l.metric_name = $1 AND l.point_time BETWEEN first_point AND last_point;
	IF first_label IS NULL THEN
		RAISE EXCEPTION 'thrillmon: metric "%" has no labelled anomaly within its stored points', $1 USING ERRCODE = '22023',
			HINT = 'Label its anomalies first: thrillmon.label_anomaly(anomaly_id, ''false_positive'' | ''true_positive'').';
	END IF;
	replay_from := GREATEST(first_point, first_label - interval '1 day');
	episode := pg_catalog.make_interval(mins => GREATEST(cfg.cooldown_minutes, 1));
	SELECT pg_catalog.array_agg(DISTINCT g.v ORDER BY g.v) INTO grid
	FROM (SELECT x / 4.0::float8 AS v FROM pg_catalog.generate_series(8, 48) x UNION ALL SELECT cfg.sensitivity) g;

	-- (The results go into arrays, not a temporary table a caller could have made first.)
	FOREACH s IN ARRAY grid LOOP
		WITH b AS MATERIALIZED (
			SELECT x."timestamp" AS ts, x.is_anomaly FROM thrillmon._backtest($1, replay_from, last_point, NULL, s) x
		)
		SELECT
			(SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels l
			 WHERE l.metric_name = $1 AND l.label = 'true_positive' AND l.point_time BETWEEN replay_from AND last_point
			   AND EXISTS (SELECT 1 FROM b WHERE b.is_anomaly AND b.ts BETWEEN l.point_time - episode AND l.point_time + episode)) AS tp,
			(SELECT pg_catalog.count(*) FROM thrillmon.anomaly_labels l
			 WHERE l.metric_name = $1 AND l.label = 'false_positive' AND l.point_time BETWEEN replay_from AND last_point
			   AND EXISTS (SELECT 1 FROM b WHERE b.is_anomaly AND b.ts BETWEEN l.point_time - episode AND l.point_time + episode)) AS fp,
			(SELECT pg_catalog.count(*) FROM b WHERE b.is_anomaly) AS anomalies,
			(SELECT pg_catalog.count(*) FROM b) AS n
		INTO r;
		sens := sens || s;
		tp_caught := tp_caught || r.tp::integer;
		fp_caught := fp_caught || r.fp::integer;
		found_anomalies := found_anomalies || r.anomalies;
		replayed := r.n;
	END LOOP;
	SELECT pg_catalog.max(t.tp - t.fp) INTO best_objective FROM ROWS FROM (pg_catalog.unnest(tp_caught), pg_catalog.unnest(fp_caught)) t(tp, fp);
	i_current := pg_catalog.array_position(sens, cfg.sensitivity);
	-- The smallest change that separates best (of two as close, the quieter).
	SELECT t.i INTO i_best FROM ROWS FROM (pg_catalog.unnest(sens), pg_catalog.unnest(tp_caught), pg_catalog.unnest(fp_caught)) WITH ORDINALITY t(v, tp, fp, i)
	WHERE t.tp - t.fp = best_objective
	ORDER BY pg_catalog.abs(t.v - cfg.sensitivity), t.v DESC LIMIT 1;

	applied := false;
	IF $2 AND sens[i_best] IS DISTINCT FROM cfg.sensitivity THEN
		INSERT INTO thrillmon.anomaly_detection_config AS c (metric_name, enabled, sensitivity, lookback_window_minutes,
			detection_algorithms, min_data_points, alert_threshold_score, auto_create_alert, cooldown_minutes)
		VALUES ($1, cfg.enabled, sens[i_best], cfg.lookback_window_minutes, cfg.detection_algorithms,
			cfg.min_data_points, cfg.alert_threshold_score, cfg.auto_create_alert, cfg.cooldown_minutes)
		ON CONFLICT ON CONSTRAINT anomaly_detection_config_pkey DO UPDATE SET sensitivity = EXCLUDED.sensitivity;
		applied := true;
	END IF;
	current_sensitivity := cfg.sensitivity;
	suggested_sensitivity := sens[i_best];
	SELECT pg_catalog.count(*) FILTER (WHERE l.label = 'true_positive'), pg_catalog.count(*) FILTER (WHERE l.label = 'false_positive')
	INTO true_positives, false_positives
	FROM thrillmon.anomaly_labels l WHERE l.metric_name = $1 AND l.point_time >= replay_from AND l.point_time <= last_point;
	true_positives_caught_before := tp_caught[i_current];
	false_positives_caught_before := fp_caught[i_current];
	true_positives_caught_after := tp_caught[i_best];
	false_positives_caught_after := fp_caught[i_best];
	anomalies_before := found_anomalies[i_current];
	anomalies_after := found_anomalies[i_best];
	points := replayed;
	RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION thrillmon.tune_detection(text, boolean) IS
	'Replays the metric''s labelled history through backtest() at sensitivities 2 to 12 and returns the one that best separates its true from its false positives, with the counts before and after; apply => true writes it into the metric''s configuration row';

GRANT SELECT ON thrillmon.anomaly_labels TO thrillmon_reader;
REVOKE ALL ON FUNCTION thrillmon._false_positive_for(text, text, double precision), thrillmon.label_anomaly(uuid, text, text),
	thrillmon.tune_detection(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon.label_anomaly(uuid, text, text), thrillmon.tune_detection(text, boolean) TO thrillmon_admin;
GRANT DELETE ON thrillmon.anomaly_labels TO thrillmon_admin;
-- The no_data alert (issue 13): what the pass found silent, readable as _detect_pass_stats() is.
REVOKE ALL ON FUNCTION thrillmon._detect_pass_silent() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._detect_pass_silent() TO thrillmon_reader;

-- Collection on a Citus coordinator (issue 16): the worker nodes first (_collect_nodes), built-in
-- points one subtransaction each when the table is distributed, and cluster_database_size_bytes.
CREATE OR REPLACE VIEW thrillmon.metric_catalogue AS
SELECT b.metric_name, b.metric_category, b.unit, b.source, b.description
FROM (VALUES
	('database_connections', 'system', 'connections', 'builtin', 'Client backends connected to this database'),
	('cache_hit_rate', 'performance', 'percent', 'builtin', 'Buffer cache hits over the last interval (not since server start), in percent of block reads'),
	('active_incidents', 'monitoring', 'incidents', 'builtin', 'Incidents open or under investigation'),
	('unresolved_alerts', 'monitoring', 'alerts', 'builtin', 'Alerts not yet resolved'),
	('transactions_per_second', 'performance', 'per second', 'builtin', 'Commits plus rollbacks per second over the last interval'),
	('rollback_rate', 'performance', 'percent', 'builtin', 'Rollbacks in percent of transactions over the last interval'),
	('deadlocks', 'performance', 'deadlocks', 'builtin', 'Deadlocks detected during the last interval'),
	('longest_transaction_seconds', 'performance', 'seconds', 'builtin', 'Age of the oldest open transaction of a client backend'),
	('lock_waits', 'performance', 'backends', 'builtin', 'Backends waiting for a heavyweight lock'),
	('database_size_bytes', 'system', 'bytes', 'builtin', 'Size of this database on disk'),
	('wal_bytes_per_second', 'system', 'bytes per second', 'builtin', 'WAL generated per second over the last interval (whole cluster)'),
	('dead_tuple_ratio', 'system', 'percent', 'builtin', 'Dead tuples in percent of all tuples of user tables'),
	('replication_lag_seconds', 'system', 'seconds', 'builtin', 'Largest replay lag of a connected replica (only recorded when replicas are connected)'),
	('cluster_database_size_bytes', 'system', 'bytes', 'builtin', 'On a Citus coordinator: this database''s size on every node together (only recorded when every worker node answered); each worker node''s own figures are database_connections, database_size_bytes and replication_lag_seconds followed by @host:port'),
	('api_response_time', 'performance', 'milliseconds', 'application', 'Mean API response time (origin: Django middleware)'),
	('error_rate', 'performance', 'percent', 'application', 'Percentage of requests that errored (origin: Django)'),
	('celery_queue_size', 'system', 'tasks', 'application', 'Queued background tasks (origin: Celery)'),
	('api_error_count', 'performance', 'errors', 'application', 'Recent API errors (origin: Supabase edge function)'),
	('rate_limit_violations', 'security', 'blocks', 'application', 'Rate limit blocks (origin: Supabase edge function)'),
	('pending_submissions', 'workflow', 'submissions', 'application', 'Submissions awaiting moderation'),
	('submission_approval_rate', 'workflow', 'percent', 'application', 'Percentage of approved submissions'),
	('avg_moderation_time', 'workflow', 'minutes', 'application', 'Average time to moderate a submission')
) AS b(metric_name, metric_category, unit, source, description)
UNION ALL
SELECT c.name, c.metric_category, NULL, 'collector', 'SQL collector (' || c.collect_interval::text || ', owner ' || c.owner_role || ')'
FROM thrillmon.metric_collectors c;
COMMENT ON VIEW thrillmon.metric_catalogue IS 'Metrics thrillmon knows by name: built in, from the application, and SQL collectors (a multi-row collector names its metrics itself)';

CREATE OR REPLACE FUNCTION thrillmon._collect_builtin(p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	db record;
	d record;
	dt record;
	dh record;
	dr record;
	n integer;
	points jsonb := '[]';
	-- Counters are stamped with the clock, not the slot, so rates divide by real elapsed time.
	read_at timestamptz := pg_catalog.clock_timestamp();
BEGIN
	SELECT xact_commit, xact_rollback, blks_hit, blks_read, deadlocks INTO db
	FROM pg_catalog.pg_stat_database WHERE datname = pg_catalog.current_database();

	points := points || pg_catalog.jsonb_build_array(
		pg_catalog.jsonb_build_array('database_connections', 'system',
			(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = pg_catalog.current_database() AND backend_type = 'client backend')),
		pg_catalog.jsonb_build_array('active_incidents', 'monitoring',
			(SELECT count(*) FROM thrillmon.incidents WHERE status IN ('open', 'investigating'))),
		pg_catalog.jsonb_build_array('unresolved_alerts', 'monitoring',
			(SELECT count(*) FROM thrillmon.system_alerts WHERE resolved_at IS NULL)),
		pg_catalog.jsonb_build_array('longest_transaction_seconds', 'performance',
			-- (At least 0: the activity snapshot is taken after read_at, and a transaction that
			-- began in between had a negative age.)
			(SELECT GREATEST(coalesce(max(EXTRACT(EPOCH FROM read_at - xact_start)), 0), 0) FROM pg_catalog.pg_stat_activity
			 WHERE backend_type = 'client backend' AND xact_start IS NOT NULL AND pid <> pg_catalog.pg_backend_pid())),
		pg_catalog.jsonb_build_array('lock_waits', 'performance',
			(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock')),
		pg_catalog.jsonb_build_array('database_size_bytes', 'system', pg_catalog.pg_database_size(pg_catalog.current_database())),
		pg_catalog.jsonb_build_array('dead_tuple_ratio', 'system',
			(SELECT coalesce(sum(n_dead_tup) * 100.0 / NULLIF(sum(n_live_tup + n_dead_tup), 0), 0) FROM pg_catalog.pg_stat_user_tables)));

	-- Rates over the interval since the previous collection.
	SELECT * INTO dh FROM thrillmon._counter_delta('blks_hit', db.blks_hit, read_at);
	SELECT * INTO dr FROM thrillmon._counter_delta('blks_read', db.blks_read, read_at);
	IF dh.delta IS NOT NULL AND dr.delta IS NOT NULL AND dh.delta + dr.delta > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('cache_hit_rate', 'performance',
			pg_catalog.round(dh.delta * 100.0 / (dh.delta + dr.delta), 4)));
	END IF;
	SELECT * INTO dt FROM thrillmon._counter_delta('xact_total', db.xact_commit + db.xact_rollback, read_at);
	SELECT * INTO d FROM thrillmon._counter_delta('xact_rollback', db.xact_rollback, read_at);
	IF dt.delta IS NOT NULL AND dt.seconds > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('transactions_per_second', 'performance',
			pg_catalog.round((dt.delta / dt.seconds::numeric), 4)));
		IF d.delta IS NOT NULL AND dt.delta > 0 THEN
			points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('rollback_rate', 'performance',
				pg_catalog.round(d.delta * 100.0 / dt.delta, 4)));
		END IF;
	END IF;
	SELECT * INTO d FROM thrillmon._counter_delta('deadlocks', db.deadlocks, read_at);
	IF d.delta IS NOT NULL THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('deadlocks', 'performance', d.delta));
	END IF;
	SELECT * INTO d FROM thrillmon._counter_delta('wal_lsn', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0'), read_at);
	IF d.delta IS NOT NULL AND d.seconds > 0 THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('wal_bytes_per_second', 'system',
			pg_catalog.round(d.delta / d.seconds::numeric, 4)));
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_replication) THEN
		points := points || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('replication_lag_seconds', 'system',
			(SELECT coalesce(max(EXTRACT(EPOCH FROM coalesce(replay_lag, interval '0'))), 0) FROM pg_catalog.pg_stat_replication)));
	END IF;

	IF NOT thrillmon._metrics_distributed() THEN
		INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
		SELECT p->>0, p->>1, (p->>2)::double precision, p_at FROM pg_catalog.jsonb_array_elements(points) p;
		GET DIAGNOSTICS n = ROW_COUNT;
		RETURN n;
	END IF;
	-- Distributed, each point goes to its metric's shard, and a worker node that is down takes
	-- its shards' points with it: one point a subtransaction, so that the others (and the rest of
	-- the collection, which reports the node) are stored all the same.
	n := 0;
	FOR d IN SELECT p FROM pg_catalog.jsonb_array_elements(points) p LOOP
		BEGIN
			INSERT INTO thrillmon.metric_time_series (metric_name, metric_category, metric_value, "timestamp")
			VALUES (d.p->>0, d.p->>1, (d.p->>2)::double precision, p_at);
			n := n + 1;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'thrillmon: built-in metric % not stored: %', d.p->>0, SQLERRM;
		END;
	END LOOP;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect_builtin(timestamptz) IS 'Internal: records every built-in metric at p_at (the collection slot)';

CREATE OR REPLACE FUNCTION thrillmon._collect(p_at timestamptz, p_only_due boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	nodes integer := 0;
	nodes_error text;
	builtin integer;
	observed integer;
	collectors jsonb;
BEGIN
	-- The Citus worker nodes first (a no-op without Citus), in a subtransaction of its own:
	-- whatever goes wrong asking them must not cost this node's own points; it is reported in
	-- the job's details instead.
	BEGIN
		nodes := thrillmon._collect_nodes(p_at);
	EXCEPTION WHEN OTHERS THEN
		nodes_error := SQLERRM;
	END;
	builtin := thrillmon._collect_builtin(p_at);
	observed := thrillmon._flush_observations(p_at);
	collectors := thrillmon._run_collectors(p_at, p_only_due);
	RETURN pg_catalog.jsonb_build_object('builtin_points', builtin + nodes, 'observed_points', observed, 'at', p_at)
		|| CASE WHEN nodes_error IS NULL THEN '{}'::jsonb ELSE pg_catalog.jsonb_build_object('nodes_error', nodes_error) END
		|| collectors;
END
$fn$;
COMMENT ON FUNCTION thrillmon._collect(timestamptz, boolean) IS 'Internal: the collection job body';

-- The horizon waits for an open transaction that has written no points by at most 10 s (it
-- waited up to ten minutes for any: a lock storm's holder blinded detection). Same C function.
COMMENT ON FUNCTION thrillmon._detect_horizon() IS
	'Internal: the time up to which a detection pass may score (held back by open transactions: at most ten minutes by one that has written points, 10 s by any other)';
