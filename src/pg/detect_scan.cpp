// Reading metric points for detection: through SQL (a cursor), or, for the pass's two hot cases,
// straight from the partitions (a BRIN bitmap scan for a steady pass's few new points, a
// sequential scan for a cold pass's whole lookback window), without a planner, an executor or an
// SPI tuple table, which together cost as much as the scan itself. Plain C-style functions over
// palloc'd memory: every row goes to the caller's sink inside the compute phase.
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/detect_config.hpp"
#include "core/detect_pass.hpp"
#include "core/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/detect.hpp"
#include "pg/partitions.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "parser/parse_relation.h"
#include "partitioning/partdesc.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace thrillmon::pg {

namespace {

constexpr double kPgEpochSeconds = 946684800.0; // 2000-01-01 in Unix seconds
constexpr int kFetchBatch = 10000;

// The session time zone's offset at ts, cached per quarter hour (every DST rule changes on one).
std::int32_t
LocalOffset(TimestampTz ts)
{
	static int64 cached_block = PG_INT64_MIN;
	static std::int32_t cached_offset = 0;
	static const pg_tz *cached_zone = nullptr;
	int64 block = ts / (INT64CONST(900) * USECS_PER_SEC);
	if (block == cached_block && cached_zone == session_timezone)
		return cached_offset;
	struct pg_tm tm;
	fsec_t fsec;
	int tz = 0;
	if (timestamp2tm(ts, &tz, &tm, &fsec, nullptr, session_timezone) != 0)
		tz = 0;
	cached_block = block;
	cached_zone = session_timezone;
	cached_offset = -tz; // timestamp2tm reports seconds west of UTC
	return cached_offset;
}

// A stored row as a point for the scan's sink; false for a value or time that is not finite
// (record_metric() refuses them; a row written around it is skipped). A NULL category reads as
// 'custom'. The row points into name's and category's memory.
bool
FillRow(ScanRow *r, TimestampTz ts, double v, text *name, text *category)
{
	if (!std::isfinite(v) || TIMESTAMP_NOT_FINITE(ts))
		return false;
	r->name = VARDATA_ANY(name);
	r->name_len = static_cast<int>(VARSIZE_ANY_EXHDR(name));
	if (category == nullptr) {
		r->category = "custom";
		r->category_len = 6;
	} else {
		r->category = VARDATA_ANY(category);
		r->category_len = static_cast<int>(VARSIZE_ANY_EXHDR(category));
	}
	r->point = thrillmon::detect::PassPoint {ts, EpochSeconds(ts), v, LocalOffset(ts)};
	return true;
}

} // namespace

double
EpochSeconds(TimestampTz ts)
{
	return static_cast<double>(ts) / 1e6 + kPgEpochSeconds;
}

TimestampTz
MinusMinutes(TimestampTz t, std::int64_t minutes)
{
	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	int64 delta = minutes * INT64CONST(60) * USECS_PER_SEC;
	return t < MIN_TIMESTAMP + delta ? MIN_TIMESTAMP : t - delta;
}

void
ScanPoints(const char *query, bool with_category, int nargs, Oid *types, Datum *values, RowSink sink, AfterBatch after)
{
	Portal portal = SPI_cursor_open_with_args(nullptr, query, nargs, types, values, nullptr, true, 0);
	ScanRow *rows = static_cast<ScanRow *>(palloc(sizeof(ScanRow) * kFetchBatch));
	for (;;) {
		SPI_cursor_fetch(portal, true, kFetchBatch);
		const uint64 n = SPI_processed;
		if (n == 0)
			break;
		TupleDesc desc = SPI_tuptable->tupdesc;
		int used = 0;
		for (uint64 i = 0; i < n; i++) {
			HeapTuple tup = SPI_tuptable->vals[i];
			bool null_ts, null_v, null_name, null_cat = true;
			Datum dt = SPI_getbinval(tup, desc, 1, &null_ts);
			Datum dv = SPI_getbinval(tup, desc, 2, &null_v);
			Datum dn = SPI_getbinval(tup, desc, 3, &null_name);
			Datum dc = with_category ? SPI_getbinval(tup, desc, 4, &null_cat) : (Datum) 0;
			if (null_name || null_ts || null_v)
				continue;
			if (FillRow(&rows[used], DatumGetTimestampTz(dt), DatumGetFloat8(dv), DatumGetTextPP(dn),
			            null_cat ? nullptr : DatumGetTextPP(dc)))
				used++;
		}
		const PlainError err = TryCore([&] { sink.fn(sink.ctx, rows, used); });
		SPI_freetuptable(SPI_tuptable);
		RaiseIfSet(&err);
		if (after.fn != nullptr)
			after.fn(after.ctx);
	}
	SPI_cursor_close(portal);
	pfree(rows);
}

namespace {

// The partitions of metric_time_series that can hold rows in (lo, hi]: daily ones by the UTC day
// in their name (the core's ParsePartitionName, days since 1970; a day of margin either side),
// the default one always. -1 when the table has a partition named otherwise (attached by hand), or when it is distributed:
// the caller then reads through SQL, which prunes by the real bounds.
int
PartitionsOverlapping(TimestampTz lo, TimestampTz hi, Oid **out)
{
	// Distributed (Citus), the partitions here are empty shells and the points are on the
	// shards: a direct scan would find nothing and say nothing. SQL goes through Citus' planner.
	if (thrillmon::pg::MetricsDistributed())
		return -1;
	Oid nsp = get_namespace_oid("thrillmon", false);
	Oid parent_oid = get_relname_relid("metric_time_series", nsp);
	if (!OidIsValid(parent_oid))
		return -1;
	Relation parent = table_open(parent_oid, AccessShareLock);
	PartitionDesc pd = RelationGetPartitionDesc(parent, true);
	const int nparts = pd->nparts;
	Oid *oids = static_cast<Oid *>(palloc(sizeof(Oid) * (nparts > 0 ? nparts : 1)));
	memcpy(oids, pd->oids, sizeof(Oid) * nparts);
	table_close(parent, NoLock);
	constexpr int64 kUnixDaysAtPgEpoch = 10957; // 2000-01-01
	const int64 lo_day = TIMESTAMP_NOT_FINITE(lo) ? PG_INT64_MIN : lo / USECS_PER_DAY + kUnixDaysAtPgEpoch - 1;
	const int64 hi_day = TIMESTAMP_NOT_FINITE(hi) ? PG_INT64_MAX : hi / USECS_PER_DAY + kUnixDaysAtPgEpoch + 1;
	Oid *scan = static_cast<Oid *>(palloc(sizeof(Oid) * (nparts > 0 ? nparts : 1)));
	int nscan = 0;
	for (int i = 0; i < nparts; i++) {
		const char *name = get_rel_name(oids[i]);
		if (name == nullptr)
			return -1;
		if (strcmp(name, "metric_time_series_default") == 0) {
			scan[nscan++] = oids[i];
			continue;
		}
		std::optional<std::int64_t> day;
		RunCore([&] { day = thrillmon::ParsePartitionName(name); });
		if (!day)
			return -1;
		if (*day >= lo_day && *day <= hi_day)
			scan[nscan++] = oids[i];
	}
	*out = scan;
	return nscan;
}

// A steady pass reads the few points that arrived since the last one: through each partition's
// BRIN on "timestamp" (the ranges it summarises first, and any older range a late row landed
// in), as a bitmap heap scan would, but without planning a query, starting an executor
// and copying every row into an SPI tuple table (together as much as the scan itself). Rows in
// (lo, hi] with their category go to the sink one at a time, inside the compute phase (a row
// points into its buffer, which stays pinned only until the next row).
} // namespace

bool
ScanFreshDirect(TimestampTz lo, TimestampTz hi, RowSink sink)
{
#if PG_VERSION_NUM >= 170000
	// 17 reshaped the bitmap table-AM calls this uses (table_beginscan_bm,
	// table_scan_bitmap_next_block). Rather than an untested port, the caller reads the fresh
	// rows through SQL there, as it does for a partition without its BRIN index.
	(void) lo;
	(void) hi;
	(void) sink;
	return false;
#else
	Oid *parts;
	const int nparts = PartitionsOverlapping(lo, hi, &parts);
	if (nparts < 0)
		return false;
	Relation *rels = static_cast<Relation *>(palloc(sizeof(Relation) * (nparts > 0 ? nparts : 1)));
	Relation *idxs = static_cast<Relation *>(palloc(sizeof(Relation) * (nparts > 0 ? nparts : 1)));
	bool usable = true;
	for (int p = 0; p < nparts; p++) {
		rels[p] = table_open(parts[p], AccessShareLock);
		idxs[p] = nullptr;
		if (!usable)
			continue;
		const AttrNumber a_ts = attnameAttNum(rels[p], "timestamp", false);
		List *indexes = RelationGetIndexList(rels[p]);
		ListCell *lc;
		foreach (lc, indexes) {
			Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
			if (idx->rd_rel->relam == BRIN_AM_OID && idx->rd_index->indnatts == 1 &&
			    idx->rd_index->indkey.values[0] == a_ts && idx->rd_indpred == NIL && idx->rd_indexprs == NIL &&
			    RelationGetForm(idx)->relkind == RELKIND_INDEX) {
				idxs[p] = idx;
				break;
			}
			index_close(idx, AccessShareLock);
		}
		list_free(indexes);
		if (idxs[p] == nullptr)
			usable = false;
	}
	if (!usable) {
		for (int p = 0; p < nparts; p++) {
			if (idxs[p] != nullptr)
				index_close(idxs[p], AccessShareLock);
			table_close(rels[p], AccessShareLock);
		}
		return false;
	}
	// First summarise the page ranges filled since the last pass (else the scan reads, and
	// rechecks, every page since the last summary). But never wait for it: summarising takes the
	// lock VACUUM takes, and a pass must not queue behind an autovacuum of a big partition (up to
	// deadlock_timeout, and then cancel it). Skipped this once, those pages are simply read.
	for (int p = 0; p < nparts; p++) {
		if (ConditionalLockRelation(rels[p], ShareUpdateExclusiveLock) &&
		    ConditionalLockRelation(idxs[p], ShareUpdateExclusiveLock))
			(void) DirectFunctionCall1(brin_summarize_new_values, ObjectIdGetDatum(RelationGetRelid(idxs[p])));
	}
	Snapshot snapshot = GetActiveSnapshot();
	PlainError err {};
	for (int p = 0; p < nparts && !err.set; p++) {
		Relation rel = rels[p];
		const AttrNumber a_name = attnameAttNum(rel, "metric_name", false);
		const AttrNumber a_cat = attnameAttNum(rel, "metric_category", false);
		const AttrNumber a_value = attnameAttNum(rel, "metric_value", false);
		const AttrNumber a_ts = attnameAttNum(rel, "timestamp", false);
		const int natts = Max(Max(a_name, a_cat), Max(a_value, a_ts));
		// The keys the planner would give the index for "timestamp" > lo AND "timestamp" <= hi
		// (BRIN finds its operators by strategy and the right-hand type).
		ScanKeyData keys[2];
		int nkeys = 0;
		if (!TIMESTAMP_NOT_FINITE(lo))
			ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, BTGreaterStrategyNumber, TIMESTAMPTZOID, InvalidOid,
			                       F_TIMESTAMPTZ_GT, TimestampTzGetDatum(lo));
		ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, BTLessEqualStrategyNumber, TIMESTAMPTZOID, InvalidOid,
		                       F_TIMESTAMPTZ_LE, TimestampTzGetDatum(hi));
		TIDBitmap *tbm = tbm_create(work_mem * 1024L, nullptr);
		IndexScanDesc iscan = index_beginscan_bitmap(idxs[p], snapshot, nkeys);
		index_rescan(iscan, keys, nkeys, nullptr, 0);
		(void) index_getbitmap(iscan, tbm);
		index_endscan(iscan);
		TableScanDesc hscan = table_beginscan_bm(rel, snapshot, 0, nullptr);
		TupleTableSlot *slot = table_slot_create(rel, nullptr);
		TBMIterator *it = tbm_begin_iterate(tbm);
		TBMIterateResult *res;
		ScanRow row;
		while (!err.set && (res = tbm_iterate(it)) != nullptr) {
			CHECK_FOR_INTERRUPTS();
			if (!table_scan_bitmap_next_block(hscan, res))
				continue;
			while (table_scan_bitmap_next_tuple(hscan, res, slot)) {
				// BRIN pages are lossy: every row is checked against the range here.
				slot_getsomeattrs(slot, natts);
				if (slot->tts_isnull[a_ts - 1] || slot->tts_isnull[a_value - 1] || slot->tts_isnull[a_name - 1])
					continue;
				const TimestampTz ts = DatumGetTimestampTz(slot->tts_values[a_ts - 1]);
				if (!(ts > lo && ts <= hi))
					continue;
				if (!FillRow(&row, ts, DatumGetFloat8(slot->tts_values[a_value - 1]),
				             DatumGetTextPP(slot->tts_values[a_name - 1]),
				             slot->tts_isnull[a_cat - 1] ? nullptr : DatumGetTextPP(slot->tts_values[a_cat - 1])))
					continue;
				Compute(&err, [&] { sink.fn(sink.ctx, &row, 1); });
				if (err.set)
					break;
			}
		}
		tbm_end_iterate(it);
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(hscan);
		tbm_free(tbm);
	}
	for (int p = 0; p < nparts; p++) {
		index_close(idxs[p], NoLock);
		table_close(rels[p], NoLock);
	}
	RaiseIfSet(&err);
	return true;
#endif
}

// A cold start reads every metric's lookback window (24 h x 1000 metrics is 1.44 M rows). Going
// through the executor and SPI costs more than the scan itself, so the partitions that can hold
// the window are scanned directly (table_beginscan under the active snapshot, as a sequential
// scan would), and each row goes straight to its metric. The partitions are found by their names
// (thrillmon's daily partitions and the default one): if the table has any partition named
// otherwise (attached by hand), this returns false and the caller reads through SQL instead.
// Each row in the window goes to the sink (its category unread: nullptr), inside the compute
// phase.
bool
ScanWindowDirect(TimestampTz lo, TimestampTz hi, RowSink sink)
{
	Oid *scan;
	const int nscan = PartitionsOverlapping(lo, hi, &scan);
	if (nscan < 0)
		return false;
	PlainError err {};
	for (int p = 0; p < nscan; p++) {
		Relation rel = table_open(scan[p], AccessShareLock);
		const AttrNumber a_name = attnameAttNum(rel, "metric_name", false);
		const AttrNumber a_value = attnameAttNum(rel, "metric_value", false);
		const AttrNumber a_ts = attnameAttNum(rel, "timestamp", false);
		const int natts = Max(a_name, Max(a_value, a_ts));
		// heap_getnext rather than a slot: no buffer pin and release per tuple (a third of the
		// scan's cost through slots). The partitions are heap tables.
		TableScanDesc sd = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
		TupleDesc desc = RelationGetDescr(rel);
		Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * desc->natts));
		bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * desc->natts));
		uint64 rows = 0;
		HeapTuple tup;
		(void) natts;
		while ((tup = heap_getnext(sd, ForwardScanDirection)) != nullptr) {
			if ((++rows & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(tup, desc, values, nulls);
			if (nulls[a_ts - 1] || nulls[a_value - 1] || nulls[a_name - 1])
				continue;
			const TimestampTz ts = DatumGetTimestampTz(values[a_ts - 1]);
			if (!(ts > lo && ts <= hi))
				continue;
			const double v = DatumGetFloat8(values[a_value - 1]);
			if (!std::isfinite(v))
				continue;
			text *tn = DatumGetTextPP(values[a_name - 1]); // short, never toasted
			const ScanRow row {VARDATA_ANY(tn), static_cast<int>(VARSIZE_ANY_EXHDR(tn)), nullptr, 0,
			                   thrillmon::detect::PassPoint {ts, EpochSeconds(ts), v, LocalOffset(ts)}};
			Compute(&err, [&] { sink.fn(sink.ctx, &row, 1); });
			if (err.set)
				break;
		}
		table_endscan(sd);
		table_close(rel, NoLock);
		RaiseIfSet(&err);
	}
	return true;
}

} // namespace thrillmon::pg
