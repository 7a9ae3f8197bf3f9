-- Privileges on what 0.8.0 adds (the terminal dashboard, the HTML report), for PUBLIC,
-- thrillmon_reader, thrillmon_writer and thrillmon_admin: readers and admins look; both run as
-- their caller, so their helpers are granted to readers too; a writer or a role with none of
-- the three cannot call them.
BEGIN;
SET client_min_messages = warning;
SELECT plan(13);

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
	('thrillmon._report_chart(text, timestamptz, timestamptz, integer)', false, true, false, true);
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

SELECT * FROM finish();
ROLLBACK;
