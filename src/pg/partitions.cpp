// Partition maintenance and partition-level retention of metric_time_series.
//
// The arithmetic (which days, which names, which bounds, what to drop) is the core's; this file
// only lists what exists and runs the DDL. Results cross the boundary as PlainPartition arrays
// (fixed-size char buffers) so no C++ object is alive while SPI may ereport.
#include "core/partitions.hpp"
#include "core/validation.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PGDLLEXPORT Datum thrillmon_maintain_partitions_internal(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum thrillmon_cleanup_metrics_internal(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(thrillmon_maintain_partitions_internal);
PG_FUNCTION_INFO_V1(thrillmon_cleanup_metrics_internal);
}

using thrillmon::pg::Compute;
using thrillmon::pg::PlainError;
using thrillmon::pg::RaiseIfSet;

namespace {

struct PlainPartition {
	int64_t day;
	bool valid;
	char name[64];
	char lower[32];
	char upper[32];
};

// Copies into a fixed buffer; the core's names and literals are short and fixed-width, so a
// string that does not fit means a bug, and the partition is skipped rather than truncated.
bool
CopyInto(char *dst, std::size_t size, const std::string &src) noexcept
{
	if (src.size() >= size)
		return false;
	std::memcpy(dst, src.c_str(), src.size() + 1);
	return true;
}

void
Fill(PlainPartition *out, int64_t day)
{
	out->day = day;
	out->valid = false;
	if (auto p = thrillmon::PartitionForDay(day))
		out->valid = CopyInto(out->name, sizeof out->name, p->name) && CopyInto(out->lower, sizeof out->lower, p->lower) &&
		             CopyInto(out->upper, sizeof out->upper, p->upper);
}

// Days of the existing daily partitions (names parsed by the core; other partitions ignored).
int
ExistingPartitionDays(int64_t **days_out)
{
	char **names;
	const int n = thrillmon::pg::SpiTextColumn(
	    "SELECT c.relname::text FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
	    "WHERE i.inhparent = 'thrillmon.metric_time_series'::pg_catalog.regclass",
	    &names);
	int64_t *days = static_cast<int64_t *>(palloc(sizeof(int64_t) * (n > 0 ? n : 1)));
	bool *ok = static_cast<bool *>(palloc0(sizeof(bool) * (n > 0 ? n : 1)));
	PlainError err {};
	Compute(&err, [&] {
		for (int i = 0; i < n; i++) {
			if (auto d = thrillmon::ParsePartitionName(names[i])) {
				days[i] = *d;
				ok[i] = true;
			}
		}
	});
	RaiseIfSet(&err);
	int m = 0;
	for (int i = 0; i < n; i++)
		if (ok[i])
			days[m++] = days[i];
	*days_out = days;
	return m;
}

bool
Contains(const int64_t *days, int n, int64_t day)
{
	for (int i = 0; i < n; i++)
		if (days[i] == day)
			return true;
	return false;
}

// The per-partition indexes (see the install script for why they are not partitioned indexes):
// the dashboard's access path, and a BRIN on time for detection, which reads "every point since
// the last pass" (rows arrive in time order, so a block range index of a few pages per range
// finds them for almost nothing, and costs ingest next to nothing). Built after any rows were
// moved in: one pass instead of many inserts.
void
CreatePartitionIndex(StringInfo sql, const char *partition)
{
	char index_name[NAMEDATALEN];
	snprintf(index_name, sizeof index_name, "%s_name_time_idx", partition);
	resetStringInfo(sql);
	appendStringInfo(sql, "CREATE INDEX %s ON thrillmon.%s (metric_name, \"timestamp\" DESC)",
	                 quote_identifier(index_name), quote_identifier(partition));
	thrillmon::pg::SpiRun(sql->data, SPI_OK_UTILITY);
	snprintf(index_name, sizeof index_name, "%s_time_brin_idx", partition);
	resetStringInfo(sql);
	appendStringInfo(sql, "CREATE INDEX %s ON thrillmon.%s USING brin (\"timestamp\") WITH (pages_per_range = 8)",
	                 quote_identifier(index_name), quote_identifier(partition));
	thrillmon::pg::SpiRun(sql->data, SPI_OK_UTILITY);
}

// A partition's name and statistics (read from the catalogs, judged by the core). The core's
// PartitionStatistics is plain numbers, so it can live in palloc'd memory as it is.
struct PlainStatistics {
	char name[64];
	thrillmon::PartitionStatistics s;
};
static_assert(std::is_trivially_copyable<thrillmon::PartitionStatistics>::value
                  && std::is_trivially_destructible<thrillmon::PartitionStatistics>::value,
              "PlainStatistics is palloc'd and never destroyed");

// Reads the statistics of the partitions of metric_time_series (only the one named `only`, if
// given), into palloc'd memory of the caller's context. Catalog and cumulative statistics only:
// no row of the partitions is read.
//
// pg_stat_get_mod_since_analyze() sees what sessions have reported, which this session's own
// changes (its transaction's included) are not yet: pg_stat_get_xact_tuples_*() add those. The
// ANALYZE and VACUUM times tell whether VACUUM rewrote reltuples after the ANALYZE. The target
// is the largest per-column one (ANALYZE samples for the most demanding column), and
// default_statistics_target is this session's: the value ANALYZE ran with is not recorded.
int
ReadPartitionStatistics(const char *only, PlainStatistics **out)
{
	MemoryContext caller = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	// Statistics read earlier in this transaction are cached (stats_fetch_consistency): drop
	// them, the point is what holds now.
	thrillmon::pg::SpiRun("SELECT pg_catalog.pg_stat_clear_snapshot()", SPI_OK_SELECT);
	Oid types[1] = {TEXTOID};
	Datum values[1] = {only ? CStringGetTextDatum(only) : (Datum) 0};
	const char nulls[2] = {only ? ' ' : 'n', '\0'};
	thrillmon::pg::SpiRun(
	    "SELECT c.relname::text, c.reltuples::float8, c.relpages::int8, "
	    "pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::int8, "
	    "pg_catalog.pg_stat_get_mod_since_analyze(c.oid), "
	    "pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) + pg_catalog.pg_stat_get_xact_tuples_updated(c.oid) "
	    "  + pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid), "
	    "coalesce(greatest(pg_catalog.pg_stat_get_last_analyze_time(c.oid), "
	    "  pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)) "
	    "  >= coalesce(greatest(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), "
	    "  pg_catalog.pg_stat_get_last_autovacuum_time(c.oid)), '-infinity'), false), "
	    "coalesce((SELECT pg_catalog.max(CASE WHEN a.attstattarget < 0 "
	    "  THEN pg_catalog.current_setting('default_statistics_target')::int4 ELSE a.attstattarget END) "
	    "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), 0) "
	    "FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
	    "WHERE i.inhparent = 'thrillmon.metric_time_series'::pg_catalog.regclass AND ($1 IS NULL OR c.relname = $1)",
	    SPI_OK_SELECT, 1, types, values, nulls);
	const int n = static_cast<int>(SPI_processed);
	PlainStatistics *result =
	    static_cast<PlainStatistics *>(MemoryContextAllocZero(caller, sizeof(PlainStatistics) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; i++) {
		HeapTuple row = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		char *name = SPI_getvalue(row, desc, 1);
		strlcpy(result[i].name, name ? name : "", sizeof result[i].name);
		Datum d = SPI_getbinval(row, desc, 2, &isnull);
		result[i].s.reltuples = isnull ? -1 : DatumGetFloat8(d);
		d = SPI_getbinval(row, desc, 3, &isnull);
		result[i].s.relpages = isnull ? -1 : DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 4, &isnull);
		result[i].s.pages_now = isnull ? -1 : DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 5, &isnull);
		result[i].s.changes_since_analyze = isnull ? -1 : DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 6, &isnull);
		result[i].s.unreported_changes = isnull ? -1 : DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 7, &isnull);
		result[i].s.analyzed_last = !isnull && DatumGetBool(d);
		d = SPI_getbinval(row, desc, 8, &isnull);
		result[i].s.statistics_target = isnull ? 0 : DatumGetInt32(d);
	}
	SPI_finish();
	*out = result;
	return n;
}

Datum
TextArrayOf(PlainPartition *parts, int n, MemoryContext ctx)
{
	MemoryContext old = MemoryContextSwitchTo(ctx);
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(parts[i].name);
	ArrayType *arr = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
	MemoryContextSwitchTo(old);
	return PointerGetDatum(arr);
}

Datum
ReturnRecord(FunctionCallInfo fcinfo, Datum *values, int natts)
{
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "thrillmon: function returning record called in a context that cannot accept it");
	bool *nulls = static_cast<bool *>(palloc0(sizeof(bool) * natts));
	HeapTuple tuple = heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls);
	return HeapTupleGetDatum(tuple);
}

// Partitions ANALYZEd per maintenance run at most: after an upgrade or a backfill many days may
// be waiting, and each ANALYZE reads its whole partition; they are worked off hour by hour.
constexpr std::size_t kMaxAnalyzePerRun = 8;

// ANALYZEs the daily partitions whose day is over and whose row count the statistics do not hold
// exactly (see DaysToAnalyze), so that retention, days later, drops them without reading a row.
// Done while the day's pages are likely still cached, and before any lock that blocks inserts:
// ANALYZE itself only takes SHARE UPDATE EXCLUSIVE on the partition. SKIP_LOCKED: a partition
// that autovacuum (or anyone) is processing is left for the next run rather than waited for,
// which could make the maintenance job fail on lock_timeout.
void
AnalyzeFinishedDays(thrillmon::EpochMicros now)
{
	PlainStatistics *stats;
	const int n = ReadPartitionStatistics(nullptr, &stats);
	int64_t *days = static_cast<int64_t *>(palloc(sizeof(int64_t) * kMaxAnalyzePerRun));
	int n_days = 0;
	PlainError err {};
	Compute(&err, [&] {
		std::vector<thrillmon::DailyPartitionStatistics> parts;
		for (int i = 0; i < n; i++)
			if (auto day = thrillmon::ParsePartitionName(stats[i].name))
				parts.push_back({*day, stats[i].s});
		for (const int64_t day : thrillmon::DaysToAnalyze(std::move(parts), now, kMaxAnalyzePerRun))
			days[n_days++] = day;
	});
	RaiseIfSet(&err);
	StringInfoData sql;
	initStringInfo(&sql);
	for (int i = 0; i < n_days; i++) {
		PlainPartition p {};
		Fill(&p, days[i]);
		if (!p.valid)
			continue;
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ANALYZE (SKIP_LOCKED) thrillmon.%s", quote_identifier(p.name));
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
	}
}

} // namespace

// _maintain_partitions(premake_days int): create missing daily partitions from yesterday to
// premake_days ahead, and one for every day that has rows waiting in the default partition
// (moving those rows in). Returns (created text[], rows_moved bigint).
extern "C" Datum
thrillmon_maintain_partitions_internal(PG_FUNCTION_ARGS)
{
	const int premake = PG_ARGISNULL(0) ? thrillmon::pg::partition_premake_days : PG_GETARG_INT32(0);
	if (premake < 0 || premake > 365)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("thrillmon: premake_days must be between 0 and 365, got %d", premake)));
	const thrillmon::EpochMicros now = GetCurrentTransactionStartTimestamp() + thrillmon::kPostgresEpochOffsetMicros;
	MemoryContext fn_ctx = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	// Two maintainers at once would both try to create the same partition: serialise them, and
	// read what exists only once we hold the lock.
	thrillmon::pg::SpiAdvisoryXactLock(thrillmon::pg::kLockMaintainPartitions);
	AnalyzeFinishedDays(now);
	// Hold rows out of the default partition until we commit: a row for a day we are about to
	// create, arriving between our look and the CREATE/ATTACH, would make Postgres refuse it
	// ("updated partition constraint for default partition would be violated"). Inserts that
	// route to daily partitions are not blocked; those for the default one wait briefly.
	thrillmon::pg::SpiRun("LOCK TABLE ONLY thrillmon.metric_time_series_default IN SHARE ROW EXCLUSIVE MODE",
	                      SPI_OK_UTILITY);

	int64_t *existing;
	const int n_existing = ExistingPartitionDays(&existing);
	int64_t *pending;
	const int n_pending = thrillmon::pg::SpiInt64Column(
	    "SELECT DISTINCT pg_catalog.floor(EXTRACT(EPOCH FROM \"timestamp\") / 86400)::int8 "
	    "FROM ONLY thrillmon.metric_time_series_default ORDER BY 1",
	    &pending);

	// Compute: the wanted days, in order, without duplicates, minus those that exist.
	const int max_wanted = 367 + n_pending;
	// In the function's context, not SPI's: TextArrayOf() reads it after SPI_finish().
	PlainPartition *todo =
	    static_cast<PlainPartition *>(MemoryContextAllocZero(fn_ctx, sizeof(PlainPartition) * max_wanted));
	int n_todo = 0;
	PlainError err {};
	Compute(&err, [&] {
		std::vector<int64_t> wanted = thrillmon::PremakeDays(now, premake);
		wanted.insert(wanted.end(), pending, pending + n_pending);
		std::sort(wanted.begin(), wanted.end());
		wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
		for (const int64_t day : wanted) {
			if (Contains(existing, n_existing, day) || n_todo >= max_wanted)
				continue;
			Fill(&todo[n_todo], day);
			if (todo[n_todo].valid)
				n_todo++;
		}
	});
	RaiseIfSet(&err);

	// Write.
	int64_t rows_moved = 0;
	StringInfoData sql;
	initStringInfo(&sql);
	if (n_todo > 0)
		thrillmon::pg::SpiRun("SELECT thrillmon._lock_metrics_parent()", SPI_OK_SELECT);
	for (int i = 0; i < n_todo; i++) {
		const PlainPartition *p = &todo[i];
		const char *name = quote_identifier(p->name);
		const char *lower = quote_literal_cstr(p->lower);
		const char *upper = quote_literal_cstr(p->upper);
		if (!Contains(pending, n_pending, p->day)) {
			resetStringInfo(&sql);
			appendStringInfo(&sql,
			                 "CREATE TABLE thrillmon.%s PARTITION OF thrillmon.metric_time_series "
			                 "FOR VALUES FROM (%s) TO (%s)",
			                 name, lower, upper);
			thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
			CreatePartitionIndex(&sql, p->name);
			continue;
		}
		// Rows for this day sit in the default partition, and Postgres refuses to create a
		// partition whose range the default partition still holds rows of. So build the table
		// standalone, move the rows in, and attach it. The CHECK constraint matching the bounds
		// lets ATTACH skip scanning the new table; it is dropped once attached.
		resetStringInfo(&sql);
		appendStringInfo(&sql,
		                 "CREATE TABLE thrillmon.%s (LIKE thrillmon.metric_time_series INCLUDING DEFAULTS "
		                 "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)",
		                 name);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
		                 "WITH moved AS (DELETE FROM ONLY thrillmon.metric_time_series_default "
		                 "WHERE \"timestamp\" >= %s AND \"timestamp\" < %s RETURNING *) "
		                 "INSERT INTO thrillmon.%s SELECT * FROM moved",
		                 lower, upper, name);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_INSERT);
		rows_moved += static_cast<int64_t>(SPI_processed);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
		                 "ALTER TABLE thrillmon.%s ADD CONSTRAINT thrillmon_bounds "
		                 "CHECK (\"timestamp\" >= %s AND \"timestamp\" < %s)",
		                 name, lower, upper);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
		                 "ALTER TABLE thrillmon.metric_time_series ATTACH PARTITION thrillmon.%s "
		                 "FOR VALUES FROM (%s) TO (%s)",
		                 name, lower, upper);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE thrillmon.%s DROP CONSTRAINT thrillmon_bounds", name);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		CreatePartitionIndex(&sql, p->name);
	}
	SPI_finish();

	Datum values[2] = {TextArrayOf(todo, n_todo, fn_ctx), Int64GetDatum(rows_moved)};
	return ReturnRecord(fcinfo, values, 2);
}

// _cleanup_metrics(cutoff timestamptz): remove metric rows older than cutoff by whole days.
// The daily partitions whose day ended at or before it are dropped (cost per partition, not per
// row, and the disk space comes back at once); the one containing the cut-off is left whole until
// its own day has expired. Only the default partition, which maintenance keeps empty, has rows
// deleted. Returns (partitions_dropped text[], rows_dropped bigint, rows_deleted bigint).
extern "C" Datum
thrillmon_cleanup_metrics_internal(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: cutoff must not be NULL")));
	const TimestampTz cutoff_ts = PG_GETARG_TIMESTAMPTZ(0);
	if (TIMESTAMP_NOT_FINITE(cutoff_ts))
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("thrillmon: cutoff must be finite")));
	const thrillmon::EpochMicros cutoff = cutoff_ts + thrillmon::kPostgresEpochOffsetMicros;
	MemoryContext fn_ctx = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	// Serialise with any other metric retention (a second cleanup would find the partitions it
	// planned to drop already gone) and with partition maintenance.
	thrillmon::pg::SpiAdvisoryXactLock(thrillmon::pg::kLockMetricRetention);
	thrillmon::pg::SpiAdvisoryXactLock(thrillmon::pg::kLockMaintainPartitions);

	int64_t *existing;
	const int n_existing = ExistingPartitionDays(&existing);
	PlainPartition *drops =
	    static_cast<PlainPartition *>(MemoryContextAllocZero(fn_ctx, sizeof(PlainPartition) * (n_existing + 1)));
	int n_drops = 0;
	PlainError err {};
	Compute(&err, [&] {
		const thrillmon::MetricRetentionPlan plan =
		    thrillmon::PlanMetricRetention(std::vector<int64_t>(existing, existing + n_existing), cutoff);
		for (const int64_t day : plan.drop_days) {
			Fill(&drops[n_drops], day);
			if (drops[n_drops].valid)
				n_drops++;
		}
	});
	RaiseIfSet(&err);

	int64_t rows_dropped = 0;
	int64_t rows_deleted = 0;
	StringInfoData sql;
	initStringInfo(&sql);
	// Order matters for ingest: dropping a partition locks the parent table against inserts
	// until commit. So the default partition's delete (which locks only that partition) and the
	// counts come first, and the drops last, right before the commit.
	Oid types[1] = {TIMESTAMPTZOID};
	Datum args[1] = {TimestampTzGetDatum(cutoff_ts)};
	thrillmon::pg::SpiRun("DELETE FROM ONLY thrillmon.metric_time_series_default WHERE \"timestamp\" < $1",
	                      SPI_OK_DELETE, 1, types, args);
	rows_deleted += static_cast<int64_t>(SPI_processed);
	// Lock the partitions first, so each count is exactly what the DROP removes (a late backfill
	// into an expired day cannot slip in between); this does not lock the parent. One statement
	// for all of them, and one look at their statistics: per partition, a statement each was a
	// tenth of the cleanup's own time.
	if (n_drops > 0) {
		resetStringInfo(&sql);
		appendStringInfoString(&sql, "LOCK TABLE ONLY ");
		for (int i = 0; i < n_drops; i++)
			appendStringInfo(&sql, "%sthrillmon.%s", i > 0 ? ", " : "", quote_identifier(drops[i].name));
		appendStringInfoString(&sql, " IN ACCESS EXCLUSIVE MODE");
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
	}
	PlainStatistics *stats = nullptr;
	const int n_stats = n_drops > 0 ? ReadPartitionStatistics(nullptr, &stats) : 0;
	for (int i = 0; i < n_drops; i++) {
		// The count from statistics when they hold it exactly (maintenance ANALYZEs each day once
		// it is over), else by reading the partition.
		bool exact = false;
		int64_t rows = 0;
		for (int k = 0; k < n_stats; k++) {
			if (strcmp(stats[k].name, drops[i].name) != 0)
				continue;
			Compute(&err, [&] {
				if (auto r = thrillmon::ExactRowsFromStatistics(stats[k].s)) {
					exact = true;
					rows = *r;
				}
			});
			RaiseIfSet(&err);
			break;
		}
		if (!exact) {
			resetStringInfo(&sql);
			appendStringInfo(&sql, "SELECT count(*) FROM ONLY thrillmon.%s", quote_identifier(drops[i].name));
			rows = thrillmon::pg::SpiInt64(sql.data);
		}
		elog(DEBUG1, "thrillmon: %s holds " INT64_FORMAT " rows (%s)", drops[i].name, rows,
		     exact ? "from its statistics" : "counted");
		rows_dropped += rows;
	}
	if (n_drops > 0)
		thrillmon::pg::SpiRun("SELECT thrillmon._lock_metrics_parent()", SPI_OK_SELECT);
	// Dropping a partition writes little WAL of its own, but the first change of each catalog
	// page after a checkpoint logs the whole page: almost all of a cleanup's WAL is such images
	// (of pg_class, pg_attribute, pg_depend, pg_constraint, pg_statistic and their indexes).
	// They compress well; wal_compression, a superuser setting, is turned on for the drops only
	// (restored right after). A cleanup run by someone else goes without.
	const int guc_level = NewGUCNestLevel();
	if (n_drops > 0 && superuser()) {
		// lz4 where the server was built with it (Debian's is), pglz everywhere.
		if (set_config_option("wal_compression", "lz4", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, DEBUG1, false) <= 0)
			(void)set_config_option("wal_compression", "pglz", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, DEBUG1,
			                        false);
	}
	if (n_drops > 0) {
		resetStringInfo(&sql);
		appendStringInfoString(&sql, "DROP TABLE ");
		for (int i = 0; i < n_drops; i++)
			appendStringInfo(&sql, "%sthrillmon.%s", i > 0 ? ", " : "", quote_identifier(drops[i].name));
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
	}
	AtEOXact_GUC(true, guc_level);
	SPI_finish();

	Datum values[3] = {TextArrayOf(drops, n_drops, fn_ctx), Int64GetDatum(rows_dropped), Int64GetDatum(rows_deleted)};
	return ReturnRecord(fcinfo, values, 3);
}
