-- Privileges on what 0.8.0 adds (the terminal dashboard, the HTML report, feedback), for PUBLIC,
-- thrillmon_reader, thrillmon_writer and thrillmon_admin: readers and admins look; both run as
-- their caller, so their helpers are granted to readers too; a writer or a role with none of
-- the three cannot call them. Labels change what alerts: labelling and tuning are admins'.
BEGIN;
SET client_min_messages = warning;
SELECT plan(21);

CREATE ROLE tap_nobody_08 NOLOGIN;
CREATE TEMP TABLE fn (f regprocedure, public boolean, reader boolean, writer boolean, admin boolean);
INSERT INTO fn VALUES
	('thrillmon.dashboard(timestamptz, integer)', false, true, false, true),
	('thrillmon._dashboard_cell(text, integer)', false, true, false, true),
	('thrillmon._dashboard_number(double precision)', false, true, false, true),
	('thrillmon._dashboard_age(timestamptz, timestamptz)', false, true, false, true),
	('thrillmon.report(timestamptz, timestamptz, text[])', false, true, false, true),
	('thrillmon._html(text)', false, true, false, true),
	('thrillmon._report_time(timestamptz)', false, true, false, true),
	('thrillmon._report_chart(text, timestamptz, timestamptz, integer)', false, true, false, true),
	('thrillmon.label_anomaly(uuid, text, text)', false, false, false, true),
	('thrillmon.tune_detection(text, boolean)', false, false, false, true),
	('thrillmon._false_positive_for(text, text, double precision)', false, false, false, false),
	('thrillmon._detect_pass_silent()', false, true, false, true);
SELECT is(ARRAY[has_function_privilege('public', f, 'EXECUTE'), has_function_privilege('thrillmon_reader', f, 'EXECUTE'),
		has_function_privilege('thrillmon_writer', f, 'EXECUTE'), has_function_privilege('thrillmon_admin', f, 'EXECUTE')],
	ARRAY[public, reader, writer, admin],
	'EXECUTE on ' || f::text || ' (PUBLIC, reader, writer, admin)')
FROM fn ORDER BY f::text;
GRANT SELECT ON fn TO PUBLIC;

SELECT thrillmon.record_metric('grants_08', 1) \gset
SET LOCAL ROLE thrillmon_reader;
SELECT lives_ok('SELECT * FROM thrillmon.dashboard()', 'reader: dashboard()');
SELECT lives_ok('SELECT thrillmon.report()', 'reader: report(), a chart included (it replays backtest())');
RESET ROLE;
SET LOCAL ROLE thrillmon_writer;
SELECT throws_ok('SELECT * FROM thrillmon.dashboard()', '42501', NULL, 'writer: dashboard() refused (a writer cannot read back)');
SELECT throws_ok('SELECT thrillmon.report()', '42501', NULL, 'writer: report() refused');
RESET ROLE;
SET LOCAL ROLE tap_nobody_08;
SELECT throws_ok('SELECT * FROM thrillmon.dashboard()', '42501', NULL, 'a role with no thrillmon role: dashboard() refused');
RESET ROLE;

-- The labels table: readers read, admins also delete (labels are written by label_anomaly() only).
SELECT is(ARRAY[has_table_privilege('thrillmon_reader', 'thrillmon.anomaly_labels', 'SELECT'),
		has_table_privilege('thrillmon_reader', 'thrillmon.anomaly_labels', 'INSERT'),
		has_table_privilege('thrillmon_writer', 'thrillmon.anomaly_labels', 'SELECT'),
		has_table_privilege('thrillmon_admin', 'thrillmon.anomaly_labels', 'DELETE'),
		has_table_privilege('thrillmon_admin', 'thrillmon.anomaly_labels', 'INSERT')],
	ARRAY[true, false, false, true, false], 'anomaly_labels: readers SELECT, admins DELETE, nobody INSERTs directly');
INSERT INTO thrillmon.anomaly_detections (id, metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end)
VALUES ('00000000-0000-0000-0000-0000000000b8', 'grants_08', 'spike', 'high', 9, 9, 0.9, 'mad', now(), now());
SET LOCAL ROLE thrillmon_reader;
SELECT throws_ok($$SELECT thrillmon.label_anomaly('00000000-0000-0000-0000-0000000000b8', 'false_positive')$$, '42501', NULL,
	'reader: label_anomaly() refused');
RESET ROLE;
SET LOCAL ROLE thrillmon_admin;
SELECT is((thrillmon.label_anomaly('00000000-0000-0000-0000-0000000000b8', 'false_positive')).labelled_by, session_user::text,
	'admin: label_anomaly(), the label naming the session''s user');
SELECT lives_ok($$DELETE FROM thrillmon.anomaly_labels WHERE anomaly_id = '00000000-0000-0000-0000-0000000000b8'$$, 'admin: deletes a label');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
