// Partition maintenance of metric_time_series: daily partitions made ahead of time and for days
// that have rows waiting in the default partition, and the ANALYZE that lets retention count a
// finished day from its statistics. The arithmetic (which days, which names, which bounds) is the
// core's (src/core/partitions.cpp); this file lists what exists and runs the DDL. What metric
// retention shares with it is in partitions.hpp.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/locks.hpp"
#include "core/partitions.hpp"
#include "core/validation.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/partitions.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace_d.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace thrillmon::pg {

namespace {

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

} // namespace

void
FillPartition(PlainPartition *out, int64_t day)
{
	out->day = day;
	out->valid = false;
	if (auto p = thrillmon::PartitionForDay(day))
		out->valid = CopyInto(out->name, sizeof out->name, p->name) &&
		             CopyInto(out->lower, sizeof out->lower, p->lower) &&
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
	RunCore([&] {
		for (int i = 0; i < n; i++) {
			if (auto d = thrillmon::ParsePartitionName(names[i])) {
				days[i] = *d;
				ok[i] = true;
			}
		}
	});
	int m = 0;
	for (int i = 0; i < n; i++)
		if (ok[i])
			days[m++] = days[i];
	*days_out = days;
	return m;
}

Oid
MetricsTableOid()
{
	const Oid nsp = get_namespace_oid("thrillmon", true);
	return OidIsValid(nsp) ? get_relname_relid("metric_time_series", nsp) : InvalidOid;
}

bool
MetricsDistributed()
{
	const Oid dist = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(dist))
		return false;
	const Oid parent = MetricsTableOid();
	if (!OidIsValid(parent))
		return false;
	// Citus' own table, read as a catalog is (its first column is logicalrelid); it holds one row
	// per distributed table, so a heap scan is all it takes.
	Relation rel = table_open(dist, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(parent));
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
	const bool found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

int
ReadPartitionStatistics(const char *only, PlainStatistics **out)
{
	MemoryContext caller = CurrentMemoryContext;
	// Distributed, the shells' statistics describe nothing: report none, and every caller falls
	// back to counting through SQL, which Citus runs on the shards.
	if (MetricsDistributed()) {
		*out = static_cast<PlainStatistics *>(MemoryContextAllocZero(caller, sizeof(PlainStatistics)));
		return 0;
	}
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
PartitionNamesArray(const PlainPartition *parts, int n, MemoryContext ctx)
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

} // namespace thrillmon::pg

using thrillmon::pg::PlainPartition;
using thrillmon::pg::PlainStatistics;
using thrillmon::pg::RunCore;

namespace {

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
	const int n = thrillmon::pg::ReadPartitionStatistics(nullptr, &stats);
	// The days' partitions, named by the core inside the compute phase (names are std::strings).
	PlainPartition *parts = static_cast<PlainPartition *>(palloc0(sizeof(PlainPartition) * kMaxAnalyzePerRun));
	int n_parts = 0;
	RunCore([&] {
		std::vector<thrillmon::DailyPartitionStatistics> daily;
		for (int i = 0; i < n; i++)
			if (auto day = thrillmon::ParsePartitionName(stats[i].name))
				daily.push_back({*day, stats[i].s});
		for (const int64_t day : thrillmon::DaysToAnalyze(std::move(daily), now, kMaxAnalyzePerRun)) {
			if (static_cast<std::size_t>(n_parts) >= kMaxAnalyzePerRun)
				break;
			thrillmon::pg::FillPartition(&parts[n_parts], day);
			if (parts[n_parts].valid)
				n_parts++;
		}
	});
	StringInfoData sql;
	initStringInfo(&sql);
	for (int i = 0; i < n_parts; i++) {
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ANALYZE (SKIP_LOCKED) thrillmon.%s", quote_identifier(parts[i].name));
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
	}
}

} // namespace

void
thrillmon::pg::LockParentAndPartitions(const char *const *names, int n)
{
	StringInfoData sql;
	initStringInfo(&sql);
	// A schema before 0.7.0 (ALTER EXTENSION UPDATE not run yet) has only the parent's function:
	// then the partitions are locked after it, waiting (under the caller's lock_timeout).
	const bool combined =
	    thrillmon::pg::SpiInt64("SELECT (pg_catalog.to_regprocedure('thrillmon._lock_metrics_parent(regclass[])') IS "
	                            "NOT NULL)::int4::int8") != 0;
	if (combined) {
		appendStringInfoString(&sql, "SELECT thrillmon._lock_metrics_parent(ARRAY[");
		for (int i = 0; i < n; i++)
			appendStringInfo(&sql, "%s%s::pg_catalog.regclass", i > 0 ? ", " : "",
			                 quote_literal_cstr(psprintf("thrillmon.%s", quote_identifier(names[i]))));
		appendStringInfoString(&sql, "]::pg_catalog.regclass[])");
		thrillmon::pg::SpiRun(sql.data, SPI_OK_SELECT);
	} else {
		thrillmon::pg::SpiRun("SELECT thrillmon._lock_metrics_parent()", SPI_OK_SELECT);
		if (n > 0) {
			appendStringInfoString(&sql, "LOCK TABLE ONLY ");
			for (int i = 0; i < n; i++)
				appendStringInfo(&sql, "%sthrillmon.%s", i > 0 ? ", " : "", quote_identifier(names[i]));
			appendStringInfoString(&sql, " IN ACCESS EXCLUSIVE MODE");
			thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		}
	}
	pfree(sql.data);
}

// _maintain_partitions(premake_days int): create missing daily partitions from yesterday to
// premake_days ahead, and one for each day within reach that has rows waiting in the default
// partition (moving those rows in), at most kMaxPartitionsPerRun. Returns (created text[],
// rows_moved bigint, days_waiting bigint: days left for the next run, rows_ahead bigint: rows
// dated after the last day within reach, rows_expired bigint: rows older than the first).
THRILLMON_FUNCTION(thrillmon_maintain_partitions_internal)
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
	thrillmon::pg::SpiJobLock(thrillmon::locks::kMaintainPartitions);
	AnalyzeFinishedDays(now);
	int64_t *existing;
	const int n_existing = thrillmon::pg::ExistingPartitionDays(&existing);
	// The days with rows waiting in the default partition, and how many each: a first look,
	// without locking it (writers go on), to plan by.
	thrillmon::pg::SpiRun(
	    "SELECT pg_catalog.floor(EXTRACT(EPOCH FROM \"timestamp\") OPERATOR(pg_catalog./) 86400)::int8, "
	    "pg_catalog.count(*) FROM ONLY thrillmon.metric_time_series_default GROUP BY 1",
	    SPI_OK_SELECT);
	const int n_pending = static_cast<int>(SPI_processed);
	int64_t *pending = static_cast<int64_t *>(palloc(sizeof(int64_t) * (n_pending > 0 ? n_pending : 1)));
	int64_t *pending_rows = static_cast<int64_t *>(palloc(sizeof(int64_t) * (n_pending > 0 ? n_pending : 1)));
	for (int i = 0; i < n_pending; i++) {
		bool isnull;
		pending[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		pending_rows[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	// The oldest day worth a partition: the one holding the metrics policy's cut-off (enabled or
	// not: a policy that keeps everything should say how far back with its retention_days).
	const int64_t retention_days =
	    thrillmon::pg::SpiInt64("SELECT coalesce((SELECT p.retention_days FROM thrillmon.retention_policies p "
	                            "WHERE p.target OPERATOR(pg_catalog.=) 'metrics'), 30)::int8");

	// Compute: which days to make now (the core's plan: a window of days, a cap per run).
	// In the function's context, not SPI's: PartitionNamesArray() reads it after SPI_finish().
	PlainPartition *todo = static_cast<PlainPartition *>(
	    MemoryContextAllocZero(fn_ctx, sizeof(PlainPartition) * thrillmon::kMaxPartitionsPerRun));
	int n_todo = 0;
	int64_t days_waiting = 0;
	int64_t rows_ahead = 0;
	int64_t rows_expired = 0;
	RunCore([&] {
		const thrillmon::EpochMicros cutoff = thrillmon::RetentionCutoff(
		    now, static_cast<int>(std::clamp<int64_t>(retention_days, 1, thrillmon::kMaxRetentionDays)));
		const thrillmon::MaintenancePlan plan =
		    thrillmon::PlanMaintenance(now, premake, std::vector<int64_t>(existing, existing + n_existing),
		                               std::vector<int64_t>(pending, pending + n_pending), cutoff);
		for (const int64_t day : plan.create) {
			thrillmon::pg::FillPartition(&todo[n_todo], day);
			if (todo[n_todo].valid)
				n_todo++;
		}
		days_waiting = static_cast<int64_t>(plan.waiting);
		for (int i = 0; i < n_pending; i++) {
			if (pending[i] > plan.last_day)
				rows_ahead += pending_rows[i];
			else if (pending[i] < plan.first_day)
				rows_expired += pending_rows[i];
		}
	});

	// Write.
	int64_t rows_moved = 0;
	StringInfoData sql;
	initStringInfo(&sql);
	// Only with something to make: the lock that blocks every insert into the parent, then the
	// default partition's (in that order, the writers' own: a writer holds the parent's lock
	// while it inserts into the default partition, so taking the default's first deadlocked
	// with it until lock_timeout, stalling that writer 5 s and failing the run; see
	// _lock_metrics_parent() in sql/source/30_partitions.sql). With both held no
	// row can enter the default partition until we commit: a row for a day about to be created
	// would make Postgres refuse the CREATE or ATTACH. Then look again at the days we make, for
	// rows that arrived since the first look (through the BRIN index on "timestamp").
	int n_pending_now = 0;
	int64_t *pending_now = nullptr;
	if (n_todo > 0) {
		const char *default_partition = "metric_time_series_default";
		thrillmon::pg::LockParentAndPartitions(&default_partition, 1);
		int64_t lo = todo[0].day, hi = todo[0].day;
		for (int i = 1; i < n_todo; i++) {
			lo = std::min(lo, todo[i].day);
			hi = std::max(hi, todo[i].day);
		}
		Oid types[2] = {INT8OID, INT8OID};
		Datum values[2] = {Int64GetDatum(lo), Int64GetDatum(hi)};
		n_pending_now = thrillmon::pg::SpiInt64Column(
		    "SELECT pg_catalog.floor(EXTRACT(EPOCH FROM d.\"timestamp\") OPERATOR(pg_catalog./) 86400)::int8 "
		    "FROM ONLY thrillmon.metric_time_series_default d "
		    "WHERE d.\"timestamp\" OPERATOR(pg_catalog.>=) pg_catalog.to_timestamp(($1 OPERATOR(pg_catalog.*) "
		    "86400)::float8) "
		    "AND d.\"timestamp\" OPERATOR(pg_catalog.<) pg_catalog.to_timestamp((($2 OPERATOR(pg_catalog.+) 1) "
		    "OPERATOR(pg_catalog.*) 86400)::float8) GROUP BY 1",
		    &pending_now, 2, types, values);
	}
	const bool distributed = n_todo > 0 && thrillmon::pg::MetricsDistributed();
	for (int i = 0; i < n_todo; i++) {
		const PlainPartition *p = &todo[i];
		const char *name = quote_identifier(p->name);
		const char *lower = quote_literal_cstr(p->lower);
		const char *upper = quote_literal_cstr(p->upper);
		if (!Contains(pending_now, n_pending_now, p->day)) {
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
		// Distributed, Citus distributes the attached table by copying its rows to the shards and
		// leaves them on the coordinator's disk under the shell: removed here, as distribute()
		// removes the first ones.
		if (distributed) {
			resetStringInfo(&sql);
			appendStringInfo(&sql,
			                 "SELECT pg_catalog.truncate_local_data_after_distributing_table("
			                 "'thrillmon.%s'::pg_catalog.regclass)",
			                 name);
			thrillmon::pg::SpiRun(sql.data, SPI_OK_SELECT);
		}
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE thrillmon.%s DROP CONSTRAINT thrillmon_bounds", name);
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
		CreatePartitionIndex(&sql, p->name);
	}
	SPI_finish();

	Datum values[5] = {thrillmon::pg::PartitionNamesArray(todo, n_todo, fn_ctx), Int64GetDatum(rows_moved),
	                   Int64GetDatum(days_waiting), Int64GetDatum(rows_ahead), Int64GetDatum(rows_expired)};
	return thrillmon::pg::ReturnRecord(fcinfo, values, 5);
}
