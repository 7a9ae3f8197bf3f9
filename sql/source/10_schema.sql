\echo Use "CREATE EXTENSION thrillmon" to load this file. \quit
-- The schema: the extension's roles and every table, with its indexes, shipped rows and pg_dump
-- registration. Functions and views follow by area (20_recording.sql ... 90_scheduling.sql),
-- privileges last (99_grants.sql). Words and numbers written as placeholders, between two at
-- signs, come from the C++ core when the build writes the install script (src/tools/sqlgen.cpp):
-- the vocabularies of src/core/vocabulary.hpp, the job locks of src/core/locks.hpp and the limits
-- of src/core/detect_config.hpp and validation.hpp.

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

-- Tables created by this script are extension members, which pg_dump skips unless registered
-- with pg_extension_config_dump(): each table of user data is registered next to its definition.
-- Configuration tables that ship rows also restore over them (_upsert_config_row, below).

------------------------------------------------------------------------------------------------
-- Metrics
------------------------------------------------------------------------------------------------

-- The table's one CHECK constraint, in C: Postgres rebuilds a table's CHECK expressions from
-- their stored node trees for every INSERT statement, and the seven expression checks this
-- replaced cost about 50 us a statement, as much as the rest of a single-row insert. The rules
-- are record_metric()'s (the core's ValidateStoredPoint), except that a name of spaces only is
-- accepted (tables of before 0.5.0 hold such rows). A broken rule raises its own message with
-- SQLSTATE 23514 (check_violation) rather than returning false.
CREATE FUNCTION thrillmon._metric_point_valid(metric_name text, metric_category text,
	metric_value double precision, "timestamp" timestamptz, metadata jsonb)
RETURNS boolean
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'thrillmon_metric_point_valid';
COMMENT ON FUNCTION thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb) IS
	'CHECK constraint metric_point_valid of metric_time_series: true, or an error naming the broken rule (SQLSTATE 23514)';

-- Column names follow the origin system's table so its queries port over. No unique key (a
-- metric may be sampled twice in one instant); any added later must include metric_name and
-- "timestamp", the Citus distribution and partition columns (DESIGN §8).
CREATE TABLE thrillmon.metric_time_series (
	metric_name text NOT NULL,
	metric_category text NOT NULL DEFAULT 'custom',
	metric_value double precision NOT NULL,
	"timestamp" timestamptz NOT NULL DEFAULT pg_catalog.now(),
	metadata jsonb,
	CONSTRAINT metric_point_valid
		CHECK (thrillmon._metric_point_valid(metric_name, metric_category, metric_value, "timestamp", metadata))
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE thrillmon.metric_time_series IS
	'Metric points, range-partitioned by UTC day (metric_time_series_pYYYYMMDD, made by maintain_partitions()); retention drops whole partitions';

-- The only partition the install script creates: daily ones are made after install by
-- maintain_partitions(), so that they are not extension members and retention may DROP them.
-- The default partition is a member, so its rows are registered for pg_dump; the daily ones are
-- dumped as the ordinary tables they are.
CREATE TABLE thrillmon.metric_time_series_default PARTITION OF thrillmon.metric_time_series DEFAULT;
COMMENT ON TABLE thrillmon.metric_time_series_default IS
	'Catches points outside the daily partitions; maintain_partitions() moves them into daily partitions it creates';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.metric_time_series_default', '');

-- The dashboard's access path is one metric over a time range: (metric_name, "timestamp" DESC).
-- That index is made per partition (here for the default one, by maintain_partitions() for the
-- daily ones) rather than once on the parent: a partitioned index would be an extension member
-- that pg_dump does not dump, while the partitions' child indexes would be dumped, and on
-- restore each would collide with the one ATTACH PARTITION had already created.
CREATE INDEX metric_time_series_default_name_time_idx ON thrillmon.metric_time_series_default (metric_name, "timestamp" DESC);
-- Detection reads "every point since the last pass": a BRIN index on time per partition (rows
-- arrive in time order) finds them without a second B-tree on the ingest path.
CREATE INDEX metric_time_series_default_time_brin_idx ON thrillmon.metric_time_series_default
	USING brin ("timestamp") WITH (pages_per_range = 8);

------------------------------------------------------------------------------------------------
-- Shipped configuration rows
------------------------------------------------------------------------------------------------

-- The configuration tables ship with rows and are also dumped (they are user data once edited).
-- On restore, CREATE EXTENSION inserts the shipped rows first and the dump's COPY then brings the
-- same keys: during a COPY (and only then: an ordinary INSERT of an existing key still fails, and
-- ON CONFLICT behaves as usual) this trigger lets the incoming row replace the shipped one, so
-- the dumped (edited) values win instead of the COPY failing. Keys are compared in their text
-- form, which works for incident_policy's boolean key as for the text keys.
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
	EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE %I::text = $1)', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column)
		INTO exists_already USING key_value;
	IF NOT exists_already THEN
		RETURN NEW;
	END IF;
	EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE %I::text = $1', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_column) USING key_value;
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION thrillmon._upsert_config_row() IS 'Internal: lets a restored dump (COPY) overwrite shipped configuration rows';

------------------------------------------------------------------------------------------------
-- Detection configuration and progress
------------------------------------------------------------------------------------------------

-- Checked by these constraints as a last line of defence; the trigger (guard, 70_detection.sql)
-- gives the clear messages, from the core's validator.
CREATE TABLE thrillmon.anomaly_detection_config (
	metric_name text PRIMARY KEY
		CONSTRAINT config_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND @limit:metric_name_chars@),
	enabled boolean NOT NULL DEFAULT true,
	-- 4.5 robust standard deviations: at 3.0 (the origin's figure) white noise alone crosses the
	-- line about 27 times a week at one point a minute; at 4.5 the default ensemble stays under
	-- once a week (test/unit/detect_test.cpp, QuietOnNoise).
	sensitivity double precision NOT NULL DEFAULT @limit:sensitivity_default@
		CONSTRAINT sensitivity_range CHECK (sensitivity >= @limit:sensitivity_min@ AND sensitivity <= @limit:sensitivity_max@),
	lookback_window_minutes integer NOT NULL DEFAULT 1440
		CONSTRAINT lookback_range CHECK (lookback_window_minutes BETWEEN @limit:lookback_minutes_min@ AND @limit:lookback_minutes_max@),
	detection_algorithms text[] NOT NULL DEFAULT '{ensemble}'
		CONSTRAINT algorithms_known CHECK (
			pg_catalog.cardinality(detection_algorithms) >= 1
			AND detection_algorithms <@ @array:detection_algorithm@::text[]),
	min_data_points integer NOT NULL DEFAULT 30
		CONSTRAINT min_points_range CHECK (min_data_points BETWEEN @limit:min_data_points_min@ AND @limit:min_data_points_max@),
	alert_threshold_score double precision NOT NULL DEFAULT 0.8
		CONSTRAINT alert_threshold_range CHECK (alert_threshold_score >= 0 AND alert_threshold_score <= 1),
	auto_create_alert boolean NOT NULL DEFAULT true,
	cooldown_minutes integer NOT NULL DEFAULT 30
		CONSTRAINT cooldown_range CHECK (cooldown_minutes BETWEEN 0 AND @limit:cooldown_minutes_max@),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.anomaly_detection_config IS
	'Per-metric detection settings; a metric without a row uses the row for ''*''';
INSERT INTO thrillmon.anomaly_detection_config (metric_name) VALUES ('*');
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.anomaly_detection_config
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('metric_name');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detection_config', '');

-- How far detection has got: one row, written by each pass in the same transaction as its
-- anomalies, so a point is scored once (a pass that rolls back leaves it where it was). Dumped,
-- so a restored database carries on from where the dump left off.
CREATE TABLE thrillmon.detector_progress (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	pass bigint NOT NULL,
	horizon timestamptz NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.detector_progress IS
	'Detection progress: points up to horizon have been scored; pass numbers the passes (a detector cache is valid for one pass)';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.detector_progress', '');
-- Pass numbers come from a sequence, which a rolled-back pass cannot give back: a backend whose
-- cache was made by a pass that rolled back never finds its number committed by another pass.
CREATE SEQUENCE thrillmon.detector_pass_seq;
SELECT pg_catalog.pg_extension_config_dump('thrillmon.detector_pass_seq', '');

------------------------------------------------------------------------------------------------
-- Alerts, anomalies, incidents
------------------------------------------------------------------------------------------------

CREATE TABLE thrillmon.system_alerts (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	alert_type text NOT NULL CONSTRAINT alert_type_length CHECK (pg_catalog.char_length(alert_type) BETWEEN 1 AND 128),
	severity text NOT NULL CONSTRAINT alert_severity_known CHECK (severity IN (@list:severity@)),
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
CREATE INDEX system_alerts_open_metric_idx ON thrillmon.system_alerts (metric_name) WHERE resolved_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('thrillmon.system_alerts', '');

CREATE TABLE thrillmon.anomaly_detections (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	metric_name text NOT NULL
		CONSTRAINT anomaly_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND @limit:metric_name_chars@),
	metric_category text NOT NULL DEFAULT 'custom'
		CONSTRAINT anomaly_category_known CHECK (metric_category IN (@list:metric_category@)),
	anomaly_type text NOT NULL CONSTRAINT anomaly_type_known CHECK (anomaly_type IN (@list:anomaly_type@)),
	severity text NOT NULL CONSTRAINT anomaly_severity_known CHECK (severity IN (@list:severity@)),
	baseline_value double precision
		CONSTRAINT baseline_finite CHECK (baseline_value <> 'NaN'::float8 AND baseline_value <> 'Infinity'::float8 AND baseline_value <> '-Infinity'::float8),
	anomaly_value double precision NOT NULL
		CONSTRAINT anomaly_value_finite CHECK (anomaly_value <> 'NaN'::float8 AND anomaly_value <> 'Infinity'::float8 AND anomaly_value <> '-Infinity'::float8),
	deviation_score double precision NOT NULL
		CONSTRAINT deviation_finite CHECK (deviation_score <> 'NaN'::float8 AND deviation_score <> 'Infinity'::float8 AND deviation_score <> '-Infinity'::float8),
	confidence_score double precision NOT NULL
		CONSTRAINT confidence_range CHECK (confidence_score >= 0 AND confidence_score <= 1),
	detection_algorithm text NOT NULL CONSTRAINT algorithm_known CHECK (detection_algorithm IN (@list:detection_algorithm@)),
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
-- One anomaly per metric and point, whatever happens (a second line of defence behind the
-- detection horizon).
CREATE UNIQUE INDEX anomaly_detections_point_idx ON thrillmon.anomaly_detections (metric_name, time_window_end);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detections', '');

-- Same columns and checks; no foreign key (the alert may be deleted before its archived anomaly).
CREATE TABLE thrillmon.anomaly_detections_archive (
	LIKE thrillmon.anomaly_detections INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
	archived_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (id)
);
COMMENT ON TABLE thrillmon.anomaly_detections_archive IS
	'Resolved anomalies archived by cleanup_old_anomalies(); purged once older (by detected_at) than the anomalies policy''s archive_retention_days';
CREATE INDEX anomaly_detections_archive_detected_at_idx ON thrillmon.anomaly_detections_archive (detected_at);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_detections_archive', '');

-- A person's verdict on an anomaly (label_anomaly(), 70_detection.sql). The anomaly's shape is
-- copied in and there is no foreign key: the anomaly moves to the archive and is purged, and the
-- label must outlive it, since a false positive keeps its shape from alerting again and
-- tune_detection() replays the labels against the stored history. Bounded (label_anomaly()
-- raises at @limit:max_anomaly_labels@); admins delete labels they no longer want.
CREATE TABLE thrillmon.anomaly_labels (
	anomaly_id uuid PRIMARY KEY,
	metric_name text NOT NULL
		CONSTRAINT label_metric_name_length CHECK (pg_catalog.char_length(metric_name) BETWEEN 1 AND @limit:metric_name_chars@),
	point_time timestamptz NOT NULL,
	anomaly_type text NOT NULL CONSTRAINT label_anomaly_type_known CHECK (anomaly_type IN (@list:anomaly_type@)),
	deviation double precision NOT NULL
		CONSTRAINT label_deviation_finite CHECK (deviation <> 'NaN'::float8 AND deviation <> 'Infinity'::float8 AND deviation <> '-Infinity'::float8),
	label text NOT NULL CONSTRAINT label_known CHECK (label IN (@list:anomaly_label@)),
	note text CONSTRAINT label_note_length CHECK (pg_catalog.char_length(note) <= 2000),
	labelled_by text NOT NULL DEFAULT CURRENT_USER,
	labelled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.anomaly_labels IS
	'People''s verdicts on anomalies (label_anomaly()): a false positive keeps its shape from alerting again on its metric; tune_detection() replays them';
CREATE INDEX anomaly_labels_metric_idx ON thrillmon.anomaly_labels (metric_name, label);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.anomaly_labels', '');

CREATE SEQUENCE thrillmon.incident_number_seq;
CREATE TABLE thrillmon.incidents (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	incident_number text NOT NULL UNIQUE
		DEFAULT ('INC-' || pg_catalog.lpad(pg_catalog.nextval('thrillmon.incident_number_seq'::regclass)::text, 6, '0')),
	title text NOT NULL CONSTRAINT title_length CHECK (pg_catalog.char_length(pg_catalog.btrim(title)) BETWEEN 1 AND 500),
	description text,
	severity text NOT NULL CONSTRAINT incident_severity_known CHECK (severity IN (@list:severity@)),
	status text NOT NULL DEFAULT 'open' CONSTRAINT incident_status_known CHECK (status IN (@list:incident_status@)),
	detected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	acknowledged_at timestamptz,
	resolved_at timestamptz,
	closed_at timestamptz,
	metadata jsonb CONSTRAINT incident_metadata_is_object CHECK (metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) = 'object'),
	-- A resolved or closed incident says when it ended.
	CONSTRAINT ended_has_time CHECK (status IN (@list:incident_status_unfinished@) OR resolved_at IS NOT NULL OR closed_at IS NOT NULL)
);
COMMENT ON TABLE thrillmon.incidents IS 'Incidents (open -> investigating -> resolved -> closed)';
ALTER SEQUENCE thrillmon.incident_number_seq OWNED BY thrillmon.incidents.incident_number;
CREATE INDEX incidents_status_idx ON thrillmon.incidents (status);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_number_seq', '');

CREATE TABLE thrillmon.incident_alerts (
	incident_id uuid NOT NULL REFERENCES thrillmon.incidents (id) ON DELETE CASCADE,
	alert_id uuid NOT NULL REFERENCES thrillmon.system_alerts (id) ON DELETE CASCADE,
	linked_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (incident_id, alert_id)
);
COMMENT ON TABLE thrillmon.incident_alerts IS 'Which alerts belong to which incident';
CREATE INDEX incident_alerts_alert_idx ON thrillmon.incident_alerts (alert_id);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_alerts', '');

-- When detection opens incidents by itself (one row, like the other shipped configuration).
CREATE TABLE thrillmon.incident_policy (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	open_on_critical boolean NOT NULL DEFAULT true,
	correlation_window_minutes integer NOT NULL DEFAULT 10
		CONSTRAINT correlation_window_range CHECK (correlation_window_minutes BETWEEN 1 AND 1440),
	correlation_min_metrics integer NOT NULL DEFAULT 3
		CONSTRAINT correlation_min_metrics_range CHECK (correlation_min_metrics = 0 OR correlation_min_metrics BETWEEN 2 AND 1000)
);
COMMENT ON TABLE thrillmon.incident_policy IS
	'Automatic incidents: one for each critical alert (open_on_critical), and one when alerts on at least correlation_min_metrics metrics (0: never) start within correlation_window_minutes';
INSERT INTO thrillmon.incident_policy DEFAULT VALUES;
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.incident_policy
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('id');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.incident_policy', '');

------------------------------------------------------------------------------------------------
-- Collection
------------------------------------------------------------------------------------------------

CREATE TABLE thrillmon.metric_collectors (
	name text PRIMARY KEY CONSTRAINT collector_name_length CHECK (pg_catalog.char_length(name) BETWEEN 1 AND @limit:metric_name_chars@),
	query text NOT NULL CONSTRAINT query_not_blank CHECK (pg_catalog.btrim(query) <> ''),
	metric_category text NOT NULL DEFAULT 'custom'
		CONSTRAINT collector_category_known CHECK (metric_category IN (@list:metric_category@)),
	collect_interval interval NOT NULL DEFAULT '60 seconds'
		CONSTRAINT collect_interval_range CHECK (collect_interval >= '1 second' AND collect_interval <= '1 day'),
	enabled boolean NOT NULL DEFAULT true,
	owner_role name NOT NULL DEFAULT CURRENT_USER, -- the query runs with this role's privileges
	statement_timeout interval NOT NULL DEFAULT '5 seconds'
		-- At least a millisecond: the timer counts whole milliseconds, and 0 would arm none.
		CONSTRAINT statement_timeout_range CHECK (statement_timeout >= '1 millisecond' AND statement_timeout <= '1 hour'),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_run_at timestamptz,
	last_success_at timestamptz,
	last_error text,
	last_duration_ms double precision
);
COMMENT ON TABLE thrillmon.metric_collectors IS 'User-defined SQL collectors, run by the worker with their owner''s privileges';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.metric_collectors', '');

-- Cumulative server counters as last read, so rates cover the interval since the previous
-- collection rather than the time since server start. Not dumped: after a restore the first
-- collection simply has no rate yet.
CREATE TABLE thrillmon.counter_snapshots (
	name text PRIMARY KEY,
	value numeric NOT NULL,
	taken_at timestamptz NOT NULL
);
COMMENT ON TABLE thrillmon.counter_snapshots IS 'Internal: last value of each cumulative counter read by collection';

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

------------------------------------------------------------------------------------------------
-- Retention and job history
------------------------------------------------------------------------------------------------

CREATE TABLE thrillmon.retention_policies (
	target text PRIMARY KEY CONSTRAINT target_known CHECK (target IN (@list:retention_target@)),
	retention_days integer NOT NULL CONSTRAINT retention_days_range CHECK (retention_days BETWEEN 1 AND @limit:retention_days_max@),
	archive_after_days integer CONSTRAINT archive_after_days_range CHECK (archive_after_days BETWEEN 1 AND @limit:retention_days_max@),
	archive_retention_days integer CONSTRAINT archive_retention_days_range CHECK (archive_retention_days BETWEEN 1 AND @limit:retention_days_max@),
	failed_retention_days integer CONSTRAINT failed_retention_days_range CHECK (failed_retention_days BETWEEN 1 AND @limit:retention_days_max@),
	enabled boolean NOT NULL DEFAULT true,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- Only anomalies have an archive, and only job history and deliveries keep failures apart.
	CONSTRAINT archive_only_for_anomalies CHECK (target = 'anomalies' OR (archive_after_days IS NULL AND archive_retention_days IS NULL)),
	CONSTRAINT failed_only_for_job_history CHECK (target IN ('job_history', 'deliveries') OR failed_retention_days IS NULL)
);
COMMENT ON TABLE thrillmon.retention_policies IS
	'Retention per target, used by run_data_retention_cleanup(); defaults are the origin system''s';
INSERT INTO thrillmon.retention_policies (target, retention_days, archive_after_days, archive_retention_days, failed_retention_days) VALUES
	('metrics', 30, NULL, NULL, NULL),
	('anomalies', 30, 7, 90, NULL),
	('alerts', 90, NULL, NULL, NULL),
	('incidents', 90, NULL, NULL, NULL),
	('job_history', 30, NULL, NULL, 90),
	('deliveries', 30, NULL, NULL, 90);
CREATE TRIGGER upsert_on_insert BEFORE INSERT ON thrillmon.retention_policies
	FOR EACH ROW EXECUTE FUNCTION thrillmon._upsert_config_row('target');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.retention_policies', '');

-- Every job run, by the worker, pg_cron or a person; itself subject to retention (job_history).
CREATE SEQUENCE thrillmon.job_runs_run_id_seq;
CREATE TABLE thrillmon.job_runs (
	run_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.job_runs_run_id_seq'::regclass),
	job text NOT NULL CONSTRAINT job_known CHECK (job IN (@list:job@)),
	target text, -- what within the job: a retention target ('all' for the full cleanup), a collector
	started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	finished_at timestamptz,
	duration_ms double precision GENERATED ALWAYS AS (EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000) STORED,
	status text NOT NULL DEFAULT 'running' CONSTRAINT job_status_known CHECK (status IN (@list:job_status@)),
	rows_affected bigint,
	details jsonb,
	error text,
	run_by name NOT NULL DEFAULT SESSION_USER,
	CONSTRAINT finished_unless_running CHECK (status = 'running' OR finished_at IS NOT NULL)
);
COMMENT ON TABLE thrillmon.job_runs IS 'History of every job run (collect, detect, retention, maintenance); kept per the job_history policy';
ALTER SEQUENCE thrillmon.job_runs_run_id_seq OWNED BY thrillmon.job_runs.run_id;
CREATE INDEX job_runs_job_started_idx ON thrillmon.job_runs (job, started_at DESC);
SELECT pg_catalog.pg_extension_config_dump('thrillmon.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('thrillmon.job_runs_run_id_seq', '');

-- The locks that serialise thrillmon's jobs (src/core/locks.hpp): a job locks its row FOR UPDATE
-- for the length of its transaction. Locking a row needs UPDATE on the table, which no role is
-- granted, so only thrillmon's own functions (owned by a superuser) and the worker can take one:
-- an advisory lock, which any role that can connect may take, let anyone stop every job. Not
-- dumped: CREATE EXTENSION makes the rows.
CREATE TABLE thrillmon.job_locks (
	name text PRIMARY KEY,
	serialises text NOT NULL
);
COMMENT ON TABLE thrillmon.job_locks IS 'Internal: one row per lock that serialises a job, locked FOR UPDATE by it (no role may)';
INSERT INTO thrillmon.job_locks (name, serialises) VALUES
	@job_lock_rows@;

-- Jobs handed to pg_cron by schedule_with_pg_cron(); the internal scheduler skips these.
CREATE TABLE thrillmon.pg_cron_jobs (
	job text PRIMARY KEY CONSTRAINT cron_job_known CHECK (job IN (@list:job@)),
	jobname text NOT NULL UNIQUE,
	schedule text NOT NULL,
	command text NOT NULL,
	scheduled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE thrillmon.pg_cron_jobs IS 'Jobs scheduled in pg_cron by schedule_with_pg_cron(); the worker does not run these itself';
SELECT pg_catalog.pg_extension_config_dump('thrillmon.pg_cron_jobs', '');

------------------------------------------------------------------------------------------------
-- Delivery: channels, the outbox and its attempts; silences and maintenance windows
------------------------------------------------------------------------------------------------

-- Where alerts go. Managed by admins only: readers and writers cannot read a URL or a header (an
-- Authorization value, a Slack webhook's secret path); channel_status shows them the rest. Checked
-- when written (_check_channel): a URL thrillmon.notify_allowed_hosts allows, at most
-- @limit:max_channels@ channels.
CREATE TABLE thrillmon.notification_channels (
	name text PRIMARY KEY CONSTRAINT channel_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	kind text NOT NULL CONSTRAINT channel_kind_known CHECK (kind IN (@list:channel_kind@)),
	url text NOT NULL CONSTRAINT channel_url_length CHECK (pg_catalog.char_length(url) BETWEEN 1 AND @limit:max_url_chars@),
	headers jsonb NOT NULL DEFAULT '{}' CONSTRAINT channel_headers_object CHECK (pg_catalog.jsonb_typeof(headers) = 'object'),
	min_severity text NOT NULL DEFAULT 'low' CONSTRAINT channel_severity_known CHECK (min_severity IN (@list:severity@)),
	metric_pattern text NOT NULL DEFAULT '%'
		CONSTRAINT channel_pattern_length CHECK (pg_catalog.char_length(metric_pattern) BETWEEN 1 AND @limit:metric_name_chars@),
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
	event text NOT NULL CONSTRAINT delivery_event_known CHECK (event IN (@list:delivery_event@)),
	idempotency_key text NOT NULL,
	payload jsonb NOT NULL,
	status text NOT NULL DEFAULT 'pending' CONSTRAINT delivery_status_known CHECK (status IN (@list:delivery_status@)),
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
-- (delivery_id NULL) and test_channel() calls. Only the first @limit:response_excerpt_chars@
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
	response_excerpt text CONSTRAINT attempt_excerpt_length CHECK (pg_catalog.char_length(response_excerpt) <= @limit:response_excerpt_chars@)
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
-- learned. At most @limit:max_active_silences@ not yet ended.
CREATE SEQUENCE thrillmon.silence_rules_id_seq;
CREATE TABLE thrillmon.silence_rules (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('thrillmon.silence_rules_id_seq'::pg_catalog.regclass),
	metric_pattern text NOT NULL
		CONSTRAINT silence_pattern_length CHECK (pg_catalog.char_length(metric_pattern) BETWEEN 1 AND @limit:metric_name_chars@),
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
