-- The SQL contract: what CREATE EXTENSION thrillmon installs, by name and signature.
SELECT extname, extversion, extrelocatable, nspname AS schema
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'thrillmon';

-- Every public (non-underscore) function with its arguments and result.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result,
	p.prosecdef AS security_definer
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'thrillmon' AND p.proname !~ '^_'
ORDER BY 1, 2;

-- Tables and views.
SELECT c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'thrillmon' AND c.relkind IN ('r', 'p', 'v')
ORDER BY 1;

-- Columns of the origin-compatible metric table.
SELECT attname, format_type(atttypid, atttypmod), attnotnull
FROM pg_attribute WHERE attrelid = 'thrillmon.metric_time_series'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

SELECT partstrat, pg_get_partkeydef('thrillmon.metric_time_series'::regclass) FROM pg_partitioned_table
WHERE partrelid = 'thrillmon.metric_time_series'::regclass;

-- No daily partition is created by the install script (see DESIGN.md §2).
SELECT inhrelid::regclass AS only_partition_after_install FROM pg_inherits WHERE inhparent = 'thrillmon.metric_time_series'::regclass;

SELECT target, retention_days, archive_after_days, archive_retention_days, failed_retention_days, enabled
FROM thrillmon.retention_policies ORDER BY target;

SELECT metric_name, enabled, sensitivity, lookback_window_minutes, detection_algorithms, min_data_points,
	alert_threshold_score, auto_create_alert, cooldown_minutes
FROM thrillmon.anomaly_detection_config;

-- Roles, and which tables pg_dump keeps the rows of.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'thrillmon\_%' ORDER BY 1;
SELECT unnest(extconfig)::regclass::text AS dumped FROM pg_extension WHERE extname = 'thrillmon' ORDER BY 1;

-- The settings, with their built-in defaults.
SELECT name, boot_val, unit, context FROM pg_settings WHERE name LIKE 'thrillmon.%' ORDER BY 1;
