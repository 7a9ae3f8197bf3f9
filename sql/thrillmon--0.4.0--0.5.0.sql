-- thrillmon 0.4.0 -> 0.5.0. Frozen once 0.5.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.5.0'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Insert cost: one C check on metric_time_series instead of seven expression checks
------------------------------------------------------------------------------------------------
-- Postgres rebuilds a table's CHECK constraints from their stored expression trees at the start
-- of every INSERT statement (read the node tree, fold constants, compile), before it looks at a
-- row. The seven checks of 0.1.0 cost about 50 us a statement that way, as much as the rest of a
-- single-row INSERT's CPU (issue 5, B1: record_metric() against a plain INSERT). One call of a C
-- function holding the same rules costs about 7 us. The rules are the core's, as record_metric()
-- applies them (src/core/validation.cpp, ValidateStoredPoint), with one exception kept from the
-- old checks: a name of spaces only is accepted, so that validating the stored rows below never
-- fails on rows 0.4.0 accepted. An invalid row raises the broken rule's message with SQLSTATE
-- 23514 (check_violation), as the seven constraints did.
CREATE FUNCTION thrillmon._metric_point_valid(metric_name text, metric_category text,
	metric_value double precision, "timestamp" timestamptz, metadata jsonb)
RETURNS boolean
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'thrillmon_metric_point_valid';
COMMENT ON FUNCTION thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb) IS
	'CHECK constraint metric_point_valid of metric_time_series: true, or an error naming the broken rule (SQLSTATE 23514)';
-- A CHECK's functions are run with the inserting user's privileges, so whoever may INSERT into
-- metric_time_series needs EXECUTE on it: thrillmon_writer (and so thrillmon_admin) gets it. No
-- thrillmon function is executable by PUBLIC; a role given INSERT by hand needs this grant too.
REVOKE ALL ON FUNCTION thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION thrillmon._metric_point_valid(text, text, double precision, timestamptz, jsonb) TO thrillmon_writer;

-- Every partition's checks are inherited ones, even a partition maintain_partitions() built
-- standalone and attached (ATTACH marks the merged copies inherited), so dropping them from the
-- parent drops them everywhere (test/scripts/upgrade.sh checks a backfilled partition). Adding the
-- new one validates every stored row: one scan of the table, under the ACCESS EXCLUSIVE lock
-- this ALTER takes.
ALTER TABLE thrillmon.metric_time_series
	DROP CONSTRAINT metric_name_length,
	DROP CONSTRAINT metric_name_printable,
	DROP CONSTRAINT metric_category_known,
	DROP CONSTRAINT metric_value_finite,
	DROP CONSTRAINT timestamp_finite,
	DROP CONSTRAINT metadata_is_object,
	DROP CONSTRAINT metadata_size,
	ADD CONSTRAINT metric_point_valid
		CHECK (thrillmon._metric_point_valid(metric_name, metric_category, metric_value, "timestamp", metadata));
