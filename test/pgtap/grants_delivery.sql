-- Privileges on what delivery adds (0.8.0), for PUBLIC, thrillmon_reader, thrillmon_writer and
-- thrillmon_admin: channels (whose URLs and headers are secrets) are admins' alone, readers see
-- channel_status, the outbox, attempts and silences; silences, maintenance windows and
-- test_channel() are admins'; nobody is granted the internal functions that send or claim.
BEGIN;
SET client_min_messages = warning;
SELECT plan(40);

\ir fixtures/clean_slate.sql

CREATE TEMP TABLE fn (f regprocedure, public boolean, reader boolean, writer boolean, admin boolean);
INSERT INTO fn VALUES
	('thrillmon.test_channel(text)', false, false, false, true),
	('thrillmon.create_silence(text, timestamptz, timestamptz, text)', false, false, false, true),
	('thrillmon.create_maintenance_window(text, timestamptz, timestamptz, text)', false, false, false, true),
	('thrillmon.expire_silence(bigint)', false, false, false, true),
	('thrillmon._http_post(text, text, text, integer)', false, false, false, false),
	('thrillmon._url_problem(text)', false, false, false, false),
	('thrillmon._deliveries_due(bigint[])', false, false, false, false),
	('thrillmon._resends_due(text[])', false, false, false, false),
	('thrillmon._delivery_attempted(bigint, text, text, timestamptz, integer, text, double precision, text)', false, false, false, false),
	('thrillmon._enqueue_deliveries(thrillmon.system_alerts[], text[], text[])', false, false, false, false),
	('thrillmon._notify_listeners(thrillmon.system_alerts, text)', false, false, false, false),
	('thrillmon._create_silence(text, timestamptz, timestamptz, text, boolean)', false, false, false, false);
SELECT is(ARRAY[has_function_privilege('public', f, 'EXECUTE'), has_function_privilege('thrillmon_reader', f, 'EXECUTE'),
		has_function_privilege('thrillmon_writer', f, 'EXECUTE'), has_function_privilege('thrillmon_admin', f, 'EXECUTE')],
	ARRAY[public, reader, writer, admin],
	'EXECUTE on ' || f::text || ' (PUBLIC, reader, writer, admin)')
FROM fn ORDER BY f::text;

CREATE TEMP TABLE rel (r regclass, reader boolean, writer boolean, admin boolean, admin_writes boolean);
INSERT INTO rel VALUES
	('thrillmon.notification_channels', false, false, true, true),
	('thrillmon.channel_status', true, false, true, false),
	('thrillmon.deliveries', true, false, true, false),
	('thrillmon.delivery_attempts', true, false, true, false),
	('thrillmon.channel_state', true, false, true, false),
	('thrillmon.silence_rules', true, false, true, false),
	('thrillmon.silences', true, false, true, false);
SELECT is(ARRAY[has_table_privilege('thrillmon_reader', r, 'SELECT'), has_table_privilege('thrillmon_writer', r, 'SELECT'),
		has_table_privilege('thrillmon_admin', r, 'SELECT'), has_table_privilege('thrillmon_admin', r, 'INSERT')],
	ARRAY[reader, writer, admin, admin_writes],
	'SELECT for reader, writer, admin; INSERT for admin on ' || r::text)
FROM rel ORDER BY r::text;
SELECT is_empty($$SELECT r FROM rel WHERE has_table_privilege('public', r, 'SELECT')
	OR has_table_privilege('thrillmon_writer', r, 'INSERT') OR has_table_privilege('thrillmon_reader', r, 'INSERT')
	OR has_table_privilege('thrillmon_reader', r, 'UPDATE') OR has_table_privilege('thrillmon_admin', 'thrillmon.deliveries', 'UPDATE')$$,
	'nobody else may read them, and no role writes the outbox or its attempts directly');
-- No column of the channels for readers either.
SELECT ok(NOT has_column_privilege('thrillmon_reader', 'thrillmon.notification_channels', 'url', 'SELECT')
	AND NOT has_column_privilege('thrillmon_reader', 'thrillmon.notification_channels', 'headers', 'SELECT'),
	'readers can read neither URL nor headers');

-- As each role.
SET LOCAL thrillmon.notify_allowed_hosts = '127.0.0.1';
GRANT SELECT ON fn TO PUBLIC;
SET LOCAL ROLE thrillmon_admin;
SELECT lives_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url, headers)
	VALUES ('g', 'webhook', 'http://127.0.0.1:9/', '{"Authorization": "Bearer t0ken"}')$$, 'admin: creates a channel');
SELECT is((SELECT headers->>'Authorization' FROM thrillmon.notification_channels WHERE name = 'g'), 'Bearer t0ken', 'admin: reads its headers');
SELECT lives_ok($$UPDATE thrillmon.notification_channels SET enabled = false WHERE name = 'g'$$, 'admin: disables it');
SELECT lives_ok($$SELECT thrillmon.create_silence('g%', now(), now() + interval '1 hour', 'test')$$, 'admin: creates a silence');
SELECT lives_ok($$SELECT thrillmon.create_maintenance_window('g%', now(), now() + interval '1 hour', 'test')$$, 'admin: creates a maintenance window');
SELECT is((SELECT created_by FROM thrillmon.silences ORDER BY id LIMIT 1), session_user, 'silences: who made it (the login)');
RESET ROLE;
SET LOCAL ROLE thrillmon_reader;
SELECT throws_ok($$SELECT url FROM thrillmon.notification_channels$$, '42501', NULL, 'reader: cannot read channels');
SELECT is((SELECT kind FROM thrillmon.channel_status WHERE name = 'g'), 'webhook', 'reader: channel_status');
SELECT ok(NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'thrillmon' AND table_name = 'channel_status'
	AND column_name IN ('url', 'headers')), 'channel_status has neither url nor headers');
SELECT is((SELECT count(*)::int FROM thrillmon.silences), 2, 'reader: silences');
SELECT throws_ok($$SELECT * FROM thrillmon.test_channel('g')$$, '42501', NULL, 'reader: cannot call test_channel()');
SELECT throws_ok($$SELECT thrillmon.create_silence('x', now(), now() + interval '1 hour', 'r')$$, '42501', NULL, 'reader: cannot silence');
SELECT throws_ok($$SELECT * FROM thrillmon._http_post('http://127.0.0.1:9/', NULL, '', 100)$$, '42501', NULL,
	'reader: cannot send requests itself');
RESET ROLE;
SET LOCAL ROLE thrillmon_writer;
SELECT throws_ok($$SELECT * FROM thrillmon.deliveries$$, '42501', NULL, 'writer: cannot read the outbox');
SELECT throws_ok($$INSERT INTO thrillmon.notification_channels (name, kind, url) VALUES ('w', 'webhook', 'http://127.0.0.1:9/')$$,
	'42501', NULL, 'writer: cannot create a channel');
SELECT throws_ok($$SELECT thrillmon.expire_silence(1)$$, '42501', NULL, 'writer: cannot expire a silence');
RESET ROLE;
SET LOCAL ROLE thrillmon_admin;
SELECT throws_ok($$SELECT * FROM thrillmon._http_post('http://127.0.0.1:9/', NULL, '', 100)$$, '42501', NULL,
	'admin: _http_post() only through test_channel()');
SELECT throws_ok($$SELECT * FROM thrillmon._deliveries_due('{}')$$, '42501', NULL, 'admin: cannot claim deliveries');
SELECT throws_ok($$INSERT INTO thrillmon.deliveries (channel, event, idempotency_key, payload) VALUES ('g', 'new', 'x', '{}')$$,
	'42501', NULL, 'admin: cannot write the outbox by hand');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
