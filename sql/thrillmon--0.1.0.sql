-- thrillmon 0.1.0 install script: released, frozen. Later versions are this plus the upgrade scripts (see Makefile).
\echo Use "CREATE EXTENSION thrillmon" to load this file. \quit

-- The extension owns its schema (relocatable = false, no schema key in the control file), so
-- DROP EXTENSION removes it and everything in it, daily partitions included.
CREATE SCHEMA thrillmon;
COMMENT ON SCHEMA thrillmon IS 'thrillmon: metrics, anomaly detection, alerts, incidents and data retention';

-- Roles are cluster-wide and outlive the extension (a role cannot be an extension member), so
-- they are created only when absent, e.g. on the first database of a cluster to install thrillmon.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'thrillmon_reader') THEN
		CREATE ROLE thrillmon_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'thrillmon_writer') THEN
		CREATE ROLE thrillmon_writer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'thrillmon_admin') THEN
		CREATE ROLE thrillmon_admin NOLOGIN;
	END IF;
	-- An admin can do what readers and writers can.
	IF NOT pg_catalog.pg_has_role('thrillmon_admin', 'thrillmon_reader', 'MEMBER') THEN
		GRANT thrillmon_reader TO thrillmon_admin;
	END IF;
	IF NOT pg_catalog.pg_has_role('thrillmon_admin', 'thrillmon_writer', 'MEMBER') THEN
		GRANT thrillmon_writer TO thrillmon_admin;
	END IF;
END
$roles$;

------------------------------------------------------------------------------------------------
-- Metrics
------------------------------------------------------------------------------------------------

-- Column names follow the origin system's table so its queries port over. No unique key (a
-- metric may be sampled twice in one instant); any added later must include metric_name and
-- "timestamp", the Citus distribution and partition columns (DESIGN §8).
CREATE TABLE thrillmon.metric_time_series (
	metric_name text NOT NULL
		CONSTRAINT metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND 128)
		CONSTRAINT metric_name_printable CHECK (metric_name !~ '[[:cntrl:]]'),
	metric_category text NOT NULL DEFAULT 'custom'
		CONSTRAINT metric_category_known
		CHECK (metric_category IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')),
	metric_value double precision NOT NULL
		CONSTRAINT metric_value_finite
		CHECK (metric_value <> 'NaN'::float8 AND metric_value <> 'Infinity'::float8 AND metric_value <> '-Infinity'::float8),
	"timestamp" timestamptz NOT NULL DEFAULT pg_catalog.now()
		CONSTRAINT timestamp_finite CHECK (pg_catalog.isfinite("timestamp")),
	metadata jsonb
		CONSTRAINT metadata_is_object CHECK (metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) = 'object')
		-- Same limit as record_metric() (64 kB of jsonb, plus the 4-byte varlena header that
		-- pg_column_size counts), for writers inserting directly.
		CONSTRAINT metadata_size CHECK (pg_catalog.pg_column_size(metadata) <= 65540)
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE thrillmon.metric_time_series IS
	'Metric points, range-partitioned by UTC day (metric_time_series_pYYYYMMDD, made by maintain_partitions()); retention drops whole partitions';

-- The only partition the install script creates: daily ones are made after install by
-- maintain_partitions(), so that they are not extension members and retention may DROP them.
CREATE TABLE thrillmon.metric_time_series_default PARTITION OF thrillmon.metric_time_series DEFAULT;
COMMENT ON TABLE thrillmon.metric_time_series_default IS
	'Catches points outside the daily partitions; maintain_partitions() moves them into daily partitions it creates';

-- The dashboard's access path is one metric over a time range: (metric_name, "timestamp" DESC).
-- That index is made per partition (here for the default one, by maintain_partitions() for the
-- daily ones) rather than once on the parent: a partitioned index would be an extension member
-- that pg_dump does not dump, while the partitions' child indexes would be dumped, and on
-- restore each would collide with the one ATTACH PARTITION had already created.
CREATE INDEX metric_time_series_default_name_time_idx ON thrillmon.metric_time_series_default (metric_name, "timestamp" DESC);

------------------------------------------------------------------------------------------------
-- Detection configuration, detections, alerts, incidents
------------------------------------------------------------------------------------------------

CREATE TABLE thrillmon.anomaly_detection_config (
	metric_name text PRIMARY KEY
		CONSTRAINT config_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND 128),
	enabled boolean NOT NULL DEFAULT true,
	sensitivity double precision NOT NULL DEFAULT 3.0
		CONSTRAINT sensitivity_range CHECK (sensitivity > 0 AND sensitivity <= 100),
	lookback_window_minutes integer NOT NULL DEFAULT 1440
		CONSTRAINT lookback_range CHECK (lookback_window_minutes BETWEEN 1 AND 527040),
	detection_algorithms text[] NOT NULL DEFAULT '{ensemble}'
		CONSTRAINT algorithms_known CHECK (
			pg_catalog.cardinality(detection_algorithms) >= 1
			AND detection_algorithms <@ '{z_score,mad,moving_average,rate_of_change,ewma,cusum,seasonal,predictive,ensemble}'::text[]),
	min_data_points integer NOT NULL DEFAULT 30
		CONSTRAINT min_points_range CHECK (min_data_points BETWEEN 2 AND 1000000),
	alert_threshold_score double precision NOT NULL DEFAULT 0.8
		CONSTRAINT alert_threshold_range CHECK (alert_threshold_score >= 0 AND alert_threshold_score <= 1),
	auto_create_alert boolean NOT NULL DEFAULT true,
	cooldown_minutes integer NOT NULL DEFAULT 30
		CONSTRAINT cooldown_range CHECK (cooldown_minutes BETWEEN 0 AND 527040),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.anomaly_detection_config IS
	'Per-metric detection settings; a metric without a row uses the row for ''*''';
INSERT INTO thrillmon.anomaly_detection_config (metric_name) VALUES ('*');

CREATE TABLE thrillmon.system_alerts (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	alert_type text NOT NULL CONSTRAINT alert_type_length CHECK (pg_catalog.char_length(alert_type) BETWEEN 1 AND 128),
	severity text NOT NULL CONSTRAINT alert_severity_known CHECK (severity IN ('low', 'medium', 'high', 'critical')),
	message text NOT NULL,
	metadata jsonb CONSTRAINT alert_metadata_is_object CHECK (metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) = 'object'),
	metric_name text,
	anomaly_id uuid, -- the anomaly it came from; no foreign key, as anomalies move to the archive
	fingerprint text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	acknowledged_at timestamptz CONSTRAINT acknowledged_after_created CHECK (acknowledged_at >= created_at),
	resolved_at timestamptz CONSTRAINT resolved_after_created CHECK (resolved_at >= created_at)
);
COMMENT ON TABLE thrillmon.system_alerts IS 'Alerts; de-duplicated by fingerprint (one unresolved alert per fingerprint)';
CREATE UNIQUE INDEX system_alerts_open_fingerprint_idx ON thrillmon.system_alerts (fingerprint)
	WHERE resolved_at IS NULL AND fingerprint IS NOT NULL;
CREATE INDEX system_alerts_created_at_idx ON thrillmon.system_alerts (created_at);
CREATE INDEX system_alerts_resolved_at_idx ON thrillmon.system_alerts (resolved_at) WHERE resolved_at IS NOT NULL;

CREATE TABLE thrillmon.anomaly_detections (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	metric_name text NOT NULL
		CONSTRAINT anomaly_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND 128),
	metric_category text NOT NULL DEFAULT 'custom'
		CONSTRAINT anomaly_category_known
		CHECK (metric_category IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')),
	anomaly_type text NOT NULL
		CONSTRAINT anomaly_type_known CHECK (anomaly_type IN ('spike', 'drop', 'level_shift', 'trend_change', 'outlier')),
	severity text NOT NULL CONSTRAINT anomaly_severity_known CHECK (severity IN ('low', 'medium', 'high', 'critical')),
	baseline_value double precision
		CONSTRAINT baseline_finite CHECK (baseline_value <> 'NaN'::float8 AND baseline_value <> 'Infinity'::float8 AND baseline_value <> '-Infinity'::float8),
	anomaly_value double precision NOT NULL
		CONSTRAINT anomaly_value_finite CHECK (anomaly_value <> 'NaN'::float8 AND anomaly_value <> 'Infinity'::float8 AND anomaly_value <> '-Infinity'::float8),
	deviation_score double precision NOT NULL
		CONSTRAINT deviation_finite CHECK (deviation_score <> 'NaN'::float8 AND deviation_score <> 'Infinity'::float8 AND deviation_score <> '-Infinity'::float8),
	confidence_score double precision NOT NULL
		CONSTRAINT confidence_range CHECK (confidence_score >= 0 AND confidence_score <= 1),
	detection_algorithm text NOT NULL
		CONSTRAINT algorithm_known CHECK (detection_algorithm IN
			('z_score', 'mad', 'moving_average', 'rate_of_change', 'ewma', 'cusum', 'seasonal', 'predictive', 'ensemble')),
	time_window_start timestamptz NOT NULL,
	time_window_end timestamptz NOT NULL,
	detected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	alert_created boolean NOT NULL DEFAULT false,
	alert_id uuid REFERENCES thrillmon.system_alerts (id) ON DELETE SET NULL,
	metadata jsonb CONSTRAINT anomaly_metadata_is_object CHECK (metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) = 'object'),
	CONSTRAINT window_ordered CHECK (time_window_end >= time_window_start)
);
COMMENT ON TABLE thrillmon.anomaly_detections IS
	'Detected anomalies; resolved ones move to anomaly_detections_archive after the anomalies policy''s archive_after_days';
CREATE INDEX anomaly_detections_detected_at_idx ON thrillmon.anomaly_detections (detected_at);
CREATE INDEX anomaly_detections_metric_idx ON thrillmon.anomaly_detections (metric_name, detected_at DESC);
CREATE INDEX anomaly_detections_alert_idx ON thrillmon.anomaly_detections (alert_id) WHERE alert_id IS NOT NULL;

-- Same columns and checks; no foreign key (the alert may be deleted before its archived anomaly).
CREATE TABLE thrillmon.anomaly_detections_archive (
	LIKE thrillmon.anomaly_detections INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
	archived_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (id)
);
COMMENT ON TABLE thrillmon.anomaly_detections_archive IS
	'Resolved anomalies archived by cleanup_old_anomalies(); purged once older (by detected_at) than the anomalies policy''s archive_retention_days';
CREATE INDEX anomaly_detections_archive_detected_at_idx ON thrillmon.anomaly_detections_archive (detected_at);

CREATE SEQUENCE thrillmon.incident_number_seq;
CREATE TABLE thrillmon.incidents (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	incident_number text NOT NULL UNIQUE
		DEFAULT ('INC-' || pg_catalog.lpad(pg_catalog.nextval('thrillmon.incident_number_seq'::regclass)::text, 6, '0')),
	title text NOT NULL CONSTRAINT title_length CHECK (pg_catalog.char_length(pg_catalog.btrim(title)) BETWEEN 1 AND 500),
	description text,
	severity text NOT NULL CONSTRAINT incident_severity_known CHECK (severity IN ('low', 'medium', 'high', 'critical')),
	status text NOT NULL DEFAULT 'open'
		CONSTRAINT incident_status_known CHECK (status IN ('open', 'investigating', 'resolved', 'closed')),
	detected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	acknowledged_at timestamptz,
	resolved_at timestamptz,
	closed_at timestamptz,
	metadata jsonb CONSTRAINT incident_metadata_is_object CHECK (metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) = 'object'),
	-- A resolved or closed incident says when it ended.
	CONSTRAINT ended_has_time CHECK (status IN ('open', 'investigating') OR resolved_at IS NOT NULL OR closed_at IS NOT NULL)
);
COMMENT ON TABLE thrillmon.incidents IS 'Incidents (open -> investigating -> resolved -> closed)';
ALTER SEQUENCE thrillmon.incident_number_seq OWNED BY thrillmon.incidents.incident_number;
CREATE INDEX incidents_status_idx ON thrillmon.incidents (status);

CREATE TABLE thrillmon.incident_alerts (
	incident_id uuid NOT NULL REFERENCES thrillmon.incidents (id) ON DELETE CASCADE,
	alert_id uuid NOT NULL REFERENCES thrillmon.system_alerts (id) ON DELETE CASCADE,
	linked_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (incident_id, alert_id)
);
COMMENT ON TABLE thrillmon.incident_alerts IS 'Which alerts belong to which incident';
CREATE INDEX incident_alerts_alert_idx ON thrillmon.incident_alerts (alert_id);

------------------------------------------------------------------------------------------------
-- Collectors, retention policies, job history
------------------------------------------------------------------------------------------------

CREATE TABLE thrillmon.metric_collectors (
	name text PRIMARY KEY CONSTRAINT collector_name_length CHECK (pg_catalog.char_length(name) BETWEEN 1 AND 128),
	query text NOT NULL CONSTRAINT query_not_blank CHECK (pg_catalog.btrim(query) <> ''),
	metric_category text NOT NULL DEFAULT 'custom'
		CONSTRAINT collector_category_known
		CHECK (metric_category IN ('performance', 'system', 'security', 'workflow', 'monitoring', 'custom')),
	collect_interval interval NOT NULL DEFAULT '60 seconds'
		CONSTRAINT collect_interval_range CHECK (collect_interval >= '1 second' AND collect_interval <= '1 day'),
	enabled boolean NOT NULL DEFAULT true,
	owner_role name NOT NULL DEFAULT CURRENT_USER, -- the query runs with this role's privileges
	statement_timeout interval NOT NULL DEFAULT '5 seconds'
		CONSTRAINT statement_timeout_range CHECK (statement_timeout > '0' AND statement_timeout <= '1 hour'),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_run_at timestamptz,
	last_success_at timestamptz,
	last_error text,
	last_duration_ms double precision
);
COMMENT ON TABLE thrillmon.metric_collectors IS 'User-defined SQL collectors, run by the worker with their owner''s privileges';

CREATE TABLE thrillmon.retention_policies (
	target text PRIMARY KEY
		CONSTRAINT target_known CHECK (target IN ('metrics', 'anomalies', 'alerts', 'incidents', 'job_history')),
	retention_days integer NOT NULL CONSTRAINT retention_days_range CHECK (retention_days BETWEEN 1 AND 36500),
	archive_after_days integer CONSTRAINT archive_after_days_range CHECK (archive_after_days BETWEEN 1 AND 36500),
	archive_retention_days integer CONSTRAINT archive_retention_days_range CHECK (archive_retention_days BETWEEN 1 AND 36500),
	failed_retention_days integer CONSTRAINT failed_retention_days_range CHECK (failed_retention_days BETWEEN 1 AND 36500),
	enabled boolean NOT NULL DEFAULT true,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- Only anomalies have an archive, and only job history keeps failures apart.
	CONSTRAINT archive_only_for_anomalies CHECK (target = 'anomalies' OR (archive_after_days IS NULL AND archive_retention_days IS NULL)),
	CONSTRAINT failed_only_for_job_history CHECK (target = 'job_history' OR failed_retention_days IS NULL)
);
COMMENT ON TABLE thrillmon.retention_policies IS
	'Retention per target, used by run_data_retention_cleanup(); defaults are the origin system''s';
INSERT INTO thrillmon.retention_policies (target, retention_days, archive_after_days, archive_retention_days, failed_retention_days) VALUES
	('metrics', 30, NULL, NULL, NULL),
	('anomalies', 30, 7, 90, NULL),
	('alerts', 90, NULL, NULL, NULL),
	('incidents', 90, NULL, NULL, NULL),
	('job_history', 30, NULL, NULL, 90);

-- The two configuration tables above ship with rows and are also dumped by pg_dump (they are
-- user data once edited). On restore, CREATE EXTENSION inserts the shipped rows first and the
-- dump's COPY then brings the same keys: during a COPY (and only then: an ordinary INSERT of an
-- existing key still fails, and ON CONFLICT behaves as usual) this trigger lets the incoming row
-- replace the shipped one, so the dumped (edited) values win instead of the COPY failing.
CREATE FUNCTION thrillmon._upsert_config_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	key_column text := TG_ARGV[0];
	key_value text;
	exists_already boolean;
BEGIN
	IF pg_catalog.current_query() !~* '^\s*COPY\M' THEN
		RETURN NEW;
	END IF;
	EXECUTE pg_catalog.format('SELECT ($1).%I::text', key_column) INTO key_value USING NEW;
	EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE %I = $1)', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column)
		INTO exists_already USING key_value;
	IF NOT exists_already THEN
		RETURN NEW;
	END IF;
	EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE %I = $1', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column) USING key_value;
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION thrillmon._upsert_config_row() IS 'Internal: lets a restored dump (COPY) overwrite shipped configuration rows';
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.retention_policies
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('target');
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.anomaly_detection_config
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('metric_name');

CREATE SEQUENCE thrillmon.job_runs_run_id_seq;
CREATE TABLE thrillmon.job_runs (
	run_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.job_runs_run_id_seq'::regclass),
	job text NOT NULL CONSTRAINT job_known CHECK (job IN ('collect', 'detect', 'retention', 'maintenance')),
	target text, -- what within the job: a retention target ('all' for the full cleanup), a collector
	started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	finished_at timestamptz,
	duration_ms double precision GENERATED ALWAYS AS (EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000) STORED,
	status text NOT NULL DEFAULT 'running'
		CONSTRAINT job_status_known CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
	rows_affected bigint,
	details jsonb,
	error text,
	run_by name NOT NULL DEFAULT SESSION_USER,
	CONSTRAINT finished_unless_running CHECK (status = 'running' OR finished_at IS NOT NULL)
);
COMMENT ON TABLE thrillmon.job_runs IS 'History of every job run (collect, detect, retention, maintenance); kept per the job_history policy';
ALTER SEQUENCE thrillmon.job_runs_run_id_seq OWNED BY thrillmon.job_runs.run_id;
CREATE INDEX job_runs_job_started_idx ON thrillmon.job_runs (job, started_at DESC);

------------------------------------------------------------------------------------------------
-- Recording
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon.record_metric(metric_name text, metric_value double precision,
	metric_category text DEFAULT 'custom', metadata jsonb DEFAULT NULL, ts timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'thrillmon_record_metric';
COMMENT ON FUNCTION thrillmon.record_metric(text, double precision, text, jsonb, timestamptz) IS
	'Records one metric point after validating it (name, finite value, category, metadata object <= 64 kB, finite ts)';

------------------------------------------------------------------------------------------------
-- Job history
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._job_record(p_job text, p_target text, p_started timestamptz, p_status text,
	p_rows bigint, p_details jsonb, p_error text)
RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	INSERT INTO thrillmon.job_runs (job, target, started_at, finished_at, status, rows_affected, details, error)
	VALUES (p_job, p_target, p_started, pg_catalog.clock_timestamp(), p_status, p_rows, p_details, p_error)
	RETURNING run_id
$fn$;
COMMENT ON FUNCTION thrillmon._job_record(text, text, timestamptz, text, bigint, jsonb, text) IS
	'Internal: appends a finished run to job_runs';

------------------------------------------------------------------------------------------------
-- Partitions
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._retention_cutoff(days integer, argument_name text)
RETURNS timestamptz
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'thrillmon_retention_cutoff';
COMMENT ON FUNCTION thrillmon._retention_cutoff(integer, text) IS
	'Internal: validates retention days (1..36500) and returns now() minus that many 24-hour days';

-- Creating or dropping a partition needs an ACCESS EXCLUSIVE lock on metric_time_series. A plain
-- LOCK waiting behind a long query would make every insert queue behind it for as long as it
-- waits; NOWAIT never queues, so it is retried every 50 ms until lock_timeout (5 s) has passed,
-- and then the job fails, says why, and the next run tries again.
CREATE FUNCTION thrillmon._lock_metrics_parent()
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- The caller's lock_timeout (the cleanup and maintenance functions set 5 s), or 5 s if none.
	deadline timestamptz := pg_catalog.clock_timestamp()
		+ coalesce(NULLIF(pg_catalog.current_setting('lock_timeout')::interval, interval '0'), interval '5 s');
BEGIN
	LOOP
		BEGIN
			LOCK TABLE thrillmon.metric_time_series IN ACCESS EXCLUSIVE MODE NOWAIT;
			RETURN;
		EXCEPTION WHEN lock_not_available THEN
			IF pg_catalog.clock_timestamp() >= deadline THEN
				RAISE EXCEPTION 'thrillmon: could not lock thrillmon.metric_time_series within lock_timeout (%): another session holds a lock on it',
					pg_catalog.current_setting('lock_timeout') USING ERRCODE = '55P03',
					HINT = 'See pg_locks; the next run will try again.';
			END IF;
			PERFORM pg_catalog.pg_sleep(0.05);
		END;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION thrillmon._lock_metrics_parent() IS
	'Internal: takes the partition-DDL lock on metric_time_series without making inserts queue behind a wait';

CREATE FUNCTION thrillmon._maintain_partitions(premake_days integer, OUT created text[], OUT rows_moved bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_maintain_partitions_internal';
COMMENT ON FUNCTION thrillmon._maintain_partitions(integer) IS 'Internal: partition DDL of maintain_partitions()';

CREATE FUNCTION thrillmon._maintain_partitions_run(premake_days integer)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT pg_catalog.jsonb_build_object('created', pg_catalog.to_jsonb(m.created), 'rows_moved', m.rows_moved)
	FROM thrillmon._maintain_partitions(premake_days) m
$fn$;
COMMENT ON FUNCTION thrillmon._maintain_partitions_run(integer) IS 'Internal: the partition maintenance job body';

CREATE FUNCTION thrillmon.maintain_partitions(premake_days integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	result jsonb := thrillmon._maintain_partitions_run(premake_days);
BEGIN
	PERFORM thrillmon._job_record('maintenance', 'partitions', started, 'succeeded',
		pg_catalog.jsonb_array_length(result->'created')::bigint, result, NULL);
	RETURN result;
END
$fn$;
COMMENT ON FUNCTION thrillmon.maintain_partitions(integer) IS
	'Creates daily partitions from yesterday to premake_days (default thrillmon.partition_premake_days) ahead, and moves rows from the default partition into daily partitions it creates for them';

------------------------------------------------------------------------------------------------
-- Retention
------------------------------------------------------------------------------------------------

CREATE FUNCTION thrillmon._cleanup_metrics(cutoff timestamptz,
	OUT partitions_dropped text[], OUT rows_dropped bigint, OUT rows_deleted bigint)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'thrillmon_cleanup_metrics_internal';
COMMENT ON FUNCTION thrillmon._cleanup_metrics(timestamptz) IS
	'Internal: drops daily partitions wholly older than cutoff, deletes older rows in the straddling and default partitions';

CREATE FUNCTION thrillmon._cleanup_metrics_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	r record;
BEGIN
	SELECT * INTO r FROM thrillmon._cleanup_metrics(cutoff);
	RETURN pg_catalog.jsonb_build_object(
		'removed', r.rows_dropped + r.rows_deleted,
		'cutoff', cutoff,
		'partitions_dropped', pg_catalog.to_jsonb(r.partitions_dropped),
		'rows_in_dropped_partitions', r.rows_dropped,
		'rows_deleted', r.rows_deleted);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_metrics_run(integer) IS 'Internal: metric retention, returns what it did';

CREATE FUNCTION thrillmon._cleanup_anomalies_run(days integer, archive_after integer, archive_retention integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	archive_cutoff timestamptz := thrillmon._retention_cutoff(archive_after, 'archive_after_days');
	purge_cutoff timestamptz := thrillmon._retention_cutoff(archive_retention, 'archive_retention_days');
	n_archived bigint;
	n_deleted bigint;
	n_purged bigint;
BEGIN
	-- Archive resolved anomalies: no alert was raised, or their alert is resolved (or gone).
	WITH moved AS (
		DELETE FROM thrillmon.anomaly_detections a
		WHERE a.detected_at < archive_cutoff
		  AND NOT EXISTS (SELECT 1 FROM thrillmon.system_alerts s WHERE s.id = a.alert_id AND s.resolved_at IS NULL)
		RETURNING a.*
	)
	INSERT INTO thrillmon.anomaly_detections_archive
		(id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		 confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created,
		 alert_id, metadata)
	SELECT id, metric_name, metric_category, anomaly_type, severity, baseline_value, anomaly_value, deviation_score,
		confidence_score, detection_algorithm, time_window_start, time_window_end, detected_at, alert_created,
		alert_id, metadata
	FROM moved;
	GET DIAGNOSTICS n_archived = ROW_COUNT;

	-- What is left past retention is unresolved: delete it.
	DELETE FROM thrillmon.anomaly_detections WHERE detected_at < cutoff;
	GET DIAGNOSTICS n_deleted = ROW_COUNT;

	DELETE FROM thrillmon.anomaly_detections_archive WHERE detected_at < purge_cutoff;
	GET DIAGNOSTICS n_purged = ROW_COUNT;

	RETURN pg_catalog.jsonb_build_object('removed', n_archived + n_deleted, 'archived', n_archived,
		'deleted', n_deleted, 'archive_purged', n_purged, 'cutoff', cutoff, 'archive_cutoff', archive_cutoff,
		'archive_purge_cutoff', purge_cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_anomalies_run(integer, integer, integer) IS 'Internal: anomaly retention and archiving';

CREATE FUNCTION thrillmon._cleanup_alerts_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	n bigint;
BEGIN
	-- Only alerts resolved before the cut-off, and never one that an unfinished incident links.
	DELETE FROM thrillmon.system_alerts a
	WHERE a.resolved_at IS NOT NULL AND a.resolved_at < cutoff
	  AND NOT EXISTS (
		SELECT 1 FROM thrillmon.incident_alerts ia JOIN thrillmon.incidents i ON i.id = ia.incident_id
		WHERE ia.alert_id = a.id AND i.status IN ('open', 'investigating'));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n, 'cutoff', cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_alerts_run(integer) IS 'Internal: alert retention';

CREATE FUNCTION thrillmon._cleanup_incidents_run(days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	n bigint;
BEGIN
	-- Aged from when it ended: the later of resolved_at and closed_at.
	DELETE FROM thrillmon.incidents
	WHERE status IN ('resolved', 'closed') AND greatest(resolved_at, closed_at) < cutoff;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n, 'cutoff', cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_incidents_run(integer) IS 'Internal: incident retention';

CREATE FUNCTION thrillmon._cleanup_job_history_run(days integer, failed_days integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	cutoff timestamptz := thrillmon._retention_cutoff(days, 'retention_days');
	failed_cutoff timestamptz := thrillmon._retention_cutoff(coalesce(failed_days, days), 'failed_retention_days');
	n_ok bigint;
	n_failed bigint;
BEGIN
	-- Failures are kept longer than successes: they are what a DBA comes looking for.
	DELETE FROM thrillmon.job_runs WHERE status IN ('succeeded', 'skipped') AND started_at < cutoff;
	GET DIAGNOSTICS n_ok = ROW_COUNT;
	DELETE FROM thrillmon.job_runs WHERE status = 'failed' AND started_at < failed_cutoff;
	GET DIAGNOSTICS n_failed = ROW_COUNT;
	RETURN pg_catalog.jsonb_build_object('removed', n_ok + n_failed, 'cutoff', cutoff, 'failed_cutoff', failed_cutoff);
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_job_history_run(integer, integer) IS 'Internal: job history retention';

-- One retention target with explicit settings: the body shared by the single-target functions
-- and the full cleanup.
CREATE FUNCTION thrillmon._cleanup_target(target text, days integer, archive_after integer,
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
	END;
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_target(text, integer, integer, integer, integer) IS 'Internal: one retention target';

-- A single-target cleanup called by hand: retention_days from the caller, the target's other
-- settings (archive) from its policy; one job run recorded.
CREATE FUNCTION thrillmon._cleanup_one(target_name text, days integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	p thrillmon.retention_policies;
	r jsonb;
BEGIN
	SELECT * INTO p FROM thrillmon.retention_policies rp WHERE rp.target = target_name;
	r := thrillmon._cleanup_target(target_name, days, p.archive_after_days, p.archive_retention_days, p.failed_retention_days);
	PERFORM thrillmon._job_record('retention', target_name, started, 'succeeded', (r->>'removed')::bigint, r, NULL);
	RETURN (r->>'removed')::bigint;
END
$fn$;
COMMENT ON FUNCTION thrillmon._cleanup_one(text, integer) IS 'Internal: a single-target cleanup, recorded';

-- The public cleanup functions: the origin's names, signatures and defaults. Each is one run,
-- recorded in job_runs. SECURITY DEFINER because dropping a partition needs its owner.
CREATE FUNCTION thrillmon.cleanup_old_metrics(retention_days integer DEFAULT 30)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
AS $fn$ SELECT thrillmon._cleanup_one('metrics', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_metrics(integer) IS
	'Removes metric points older than retention_days x 24 h: drops whole daily partitions, deletes only in the one straddling the cut-off; returns rows removed';

CREATE FUNCTION thrillmon.cleanup_old_anomalies(retention_days integer DEFAULT 30)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('anomalies', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_anomalies(integer) IS
	'Archives resolved anomalies older than archive_after_days (7), deletes anomalies older than retention_days, purges the archive past archive_retention_days (90); returns rows removed from the live table (archived + deleted)';

CREATE FUNCTION thrillmon.cleanup_old_alerts(retention_days integer DEFAULT 90)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('alerts', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_alerts(integer) IS
	'Deletes alerts resolved more than retention_days ago, except those linked to an open or investigating incident; returns rows removed';

CREATE FUNCTION thrillmon.cleanup_old_incidents(retention_days integer DEFAULT 90)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT thrillmon._cleanup_one('incidents', $1) $fn$;
COMMENT ON FUNCTION thrillmon.cleanup_old_incidents(integer) IS
	'Deletes resolved or closed incidents that ended more than retention_days ago (with their alert links); returns rows removed';

-- Every enabled policy, each target in its own subtransaction; the body the worker runs too.
CREATE FUNCTION thrillmon._retention_all()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	-- Metrics go last: dropping a partition locks the parent table against inserts until
	-- commit, so the less the transaction does after it, the shorter ingest waits.
	order_of_targets text[] := ARRAY['anomalies', 'alerts', 'incidents', 'job_history', 'metrics'];
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
	-- One full cleanup at a time. The lock is transaction-scoped, so it cannot outlive a caller
	-- that errors out; a second caller returns at once, saying so, instead of queueing.
	IF NOT pg_catalog.pg_try_advisory_xact_lock(1950896716, 3) THEN
		SELECT l.pid INTO holder FROM pg_catalog.pg_locks l
		WHERE l.locktype = 'advisory' AND l.classid = 1950896716 AND l.objid = 3 AND l.objsubid = 2 AND l.granted
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

CREATE FUNCTION thrillmon.run_data_retention_cleanup()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $fn$
DECLARE
	started timestamptz := pg_catalog.clock_timestamp();
	result jsonb := thrillmon._retention_all();
	run_id bigint;
BEGIN
	IF result->>'status' = 'skipped' THEN
		RAISE NOTICE 'thrillmon: %', result->>'reason';
	END IF;
	run_id := thrillmon._job_record('retention', 'all', started, result->>'status', (result->>'removed')::bigint,
		result - 'error', result->>'error');
	RETURN (result - 'error') || pg_catalog.jsonb_build_object('run_id', run_id);
END
$fn$;
COMMENT ON FUNCTION thrillmon.run_data_retention_cleanup() IS
	'Runs every enabled retention policy in one job recorded in job_runs; returns per-target counts and durations. A concurrent second call returns at once with status "skipped"';

------------------------------------------------------------------------------------------------
-- Retention statistics (the origin's "Data Retention panel")
------------------------------------------------------------------------------------------------

-- Metric figures without scanning millions of rows: rows and rows past retention come from each
-- partition's planner statistics (pg_class.reltuples), except that partitions never analysed yet
-- are counted exactly, and so are the rows older than the cut-off inside the one partition that
-- straddles it and in the default partition. Oldest and newest read only the first and last
-- non-empty partitions.
CREATE FUNCTION thrillmon._metric_retention_stats(
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
		total_bytes := total_bytes + pg_catalog.pg_total_relation_size(part.rel);
		IF part.reltuples >= 0 AND part.relname <> 'metric_time_series_default' THEN
			n := part.reltuples::bigint;
		ELSE
			EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s', part.rel) INTO n;
		END IF;
		row_count := row_count + n;
		IF part.day IS NULL OR (part.day::timestamp AT TIME ZONE 'UTC') + interval '1 day' > cutoff THEN
			IF part.day IS NULL OR (part.day::timestamp AT TIME ZONE 'UTC') < cutoff THEN
				EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s WHERE "timestamp" < $1', part.rel) INTO n_past USING cutoff;
				rows_past_retention := rows_past_retention + n_past;
			END IF;
		ELSE
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

CREATE FUNCTION thrillmon._last_cleanup(target_name text,
	OUT last_cleanup_at timestamptz, OUT last_cleanup_status text, OUT last_cleanup_removed bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
	SELECT j.finished_at,
		coalesce(j.details->'targets'->target_name->>'status', j.status),
		CASE WHEN j.target = 'all' THEN (j.details->'targets'->target_name->>'removed')::bigint ELSE j.rows_affected END
	FROM thrillmon.job_runs j
	WHERE j.job = 'retention' AND j.status <> 'skipped'
	  AND (j.target = target_name OR (j.target = 'all' AND j.details->'targets' ? target_name))
	ORDER BY j.started_at DESC
	LIMIT 1
$fn$;
COMMENT ON FUNCTION thrillmon._last_cleanup(text) IS 'Internal: the last retention run that covered a target';

CREATE VIEW thrillmon.retention_stats AS
WITH policy AS (
	SELECT p.target, p.retention_days, p.archive_after_days, p.archive_retention_days, p.failed_retention_days, p.enabled,
		thrillmon._retention_cutoff(p.retention_days, 'retention_days') AS cutoff
	FROM thrillmon.retention_policies p
),
m AS (SELECT * FROM thrillmon._metric_retention_stats()),
figures AS (
	SELECT 'metrics'::text AS target, 'thrillmon.metric_time_series'::text AS table_name, m.row_count AS row_count,
		true AS rows_estimated, m.total_bytes, m.oldest, m.newest, m.rows_past_retention
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
	'Per retention target: rows, bytes, oldest/newest record, rows past retention now, last cleanup and what it removed. For metrics, rows and rows_past_retention are estimates (rows_estimated = true) from each partition''s pg_class.reltuples, with exact counts only for never-analysed partitions and for the straddling and default partitions; other targets are counted exactly (their retention keeps them small). For anomalies_archive, last_cleanup_removed is the anomalies run''s.';

------------------------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------------------------

-- Functions are executable by PUBLIC by default; thrillmon's are granted explicitly instead.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA thrillmon FROM PUBLIC;
GRANT USAGE ON SCHEMA thrillmon TO thrillmon_reader, thrillmon_writer, thrillmon_admin;

-- Readers see everything and change nothing.
GRANT SELECT ON ALL TABLES IN SCHEMA thrillmon TO thrillmon_reader;
GRANT EXECUTE ON FUNCTION thrillmon._retention_cutoff(integer, text), thrillmon._metric_retention_stats(),
	thrillmon._last_cleanup(text) TO thrillmon_reader;

-- Writers record metrics; they can neither delete nor read back.
GRANT INSERT ON thrillmon.metric_time_series TO thrillmon_writer;
GRANT EXECUTE ON FUNCTION thrillmon.record_metric(text, double precision, text, jsonb, timestamptz) TO thrillmon_writer;

-- Admins (also readers and writers) run maintenance and cleanup and change configuration.
GRANT EXECUTE ON FUNCTION thrillmon.maintain_partitions(integer), thrillmon.cleanup_old_metrics(integer),
	thrillmon.cleanup_old_anomalies(integer), thrillmon.cleanup_old_alerts(integer),
	thrillmon.cleanup_old_incidents(integer), thrillmon.run_data_retention_cleanup() TO thrillmon_admin;
GRANT INSERT, UPDATE, DELETE ON thrillmon.retention_policies, thrillmon.anomaly_detection_config TO thrillmon_admin;
GRANT UPDATE ON thrillmon.system_alerts, thrillmon.incidents TO thrillmon_admin;

------------------------------------------------------------------------------------------------
-- pg_dump: user data in extension tables
------------------------------------------------------------------------------------------------

-- Tables created by this script are extension members, which pg_dump skips unless registered.
-- The daily partitions are not members (see above), so pg_dump dumps them and their rows as it
-- would any table; the default partition is a member and is registered here.
SELECT pg_catalog.pg_extension_config_dump('thrillmon.metric_time_series_default', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detection_config', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.system_alerts', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detections', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detections_archive', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_alerts', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.metric_collectors', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.retention_policies', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_number_seq', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.job_runs_run_id_seq', '');
