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
		FROM (SELECT al.*, pg_catalog.row_number() OVER (ORDER BY pg_catalog.array_position(ARRAY[@list:severity@]::text[], al.severity) DESC, al.created_at DESC, al.id) AS rn
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
		FROM (SELECT inc.*, pg_catalog.row_number() OVER (ORDER BY pg_catalog.array_position(ARRAY[@list:severity@]::text[], inc.severity) DESC, inc.detected_at DESC, inc.id) AS rn
			FROM thrillmon.incidents inc
			WHERE inc.status IN (@list:incident_status_unfinished@) AND inc.detected_at <= p_at) i
		WHERE i.rn <= 10
		UNION ALL
		SELECT 3, 11, 'incident', '(' || (pg_catalog.count(*) - 10) || ' more)', '', '', '', ''
		FROM thrillmon.incidents inc
		WHERE inc.status IN (@list:incident_status_unfinished@) AND inc.detected_at <= p_at HAVING pg_catalog.count(*) > 10
		UNION ALL
		-- Each job: its last run's status, its last 24 runs (· succeeded, × failed, - skipped,
		-- ▸ running; the newest on the right), when it last succeeded, its failures in 24 hours.
		SELECT 4, pg_catalog.array_position(ARRAY[@list:job@]::text[], j.job), 'job', j.job, j.status,
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
