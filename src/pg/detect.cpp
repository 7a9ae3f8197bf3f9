// Anomaly detection glue: the detection pass's scan (_detect_scan), backtest (_backtest) and the
// pass's horizon (_detect_horizon). Alerts, incidents and NOTIFY are SQL (detect_anomalies()).
//
// State: each backend keeps a cache of detectors (one per metric) valid for exactly one pass id.
// The pass id and horizon live in thrillmon.detector_progress; a pass whose cache was made by
// the previous pass (the worker's steady state) reads only the points that arrived since. Any
// other backend, or the worker after a restart or an aborted pass, finds the pass id changed
// and rebuilds each metric from lookback_window_minutes of history before scoring. So a point
// is scored exactly once (the horizon moves in the same transaction as the anomalies are
// written) and state is never trusted beyond the pass it was made for.
//
// Boundary (boundary.hpp): the cache and the pass's scratch space are global C++ objects, never
// on a frame that SPI could longjmp over; every C++ step that may allocate runs in Compute().
#include "core/detect.hpp"
#include "core/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <malloc.h>
#include <memory>
#include <optional>
#include <pthread.h>
#include <csignal>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/tidbitmap.h"
#include "parser/parse_relation.h"
#include "partitioning/partdesc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "storage/lmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PGDLLEXPORT Datum thrillmon_detect_scan(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum thrillmon_backtest(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum thrillmon_detect_horizon(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(thrillmon_detect_scan);
PG_FUNCTION_INFO_V1(thrillmon_backtest);
PG_FUNCTION_INFO_V1(thrillmon_detect_horizon);
}

namespace detect = thrillmon::detect;
using thrillmon::pg::Compute;
using thrillmon::pg::PlainError;
using thrillmon::pg::RaiseIfSet;

namespace {

constexpr double kPgEpochSeconds = 946684800.0; // 2000-01-01 in Unix seconds
constexpr int kFetchBatch = 10000;
// How many detectors ahead of the one being scored the pass prefetches (Detector::Prefetch): far
// enough for the loads to arrive while a few points are scored (measured: 1 < 2 < 4 ~ 8).
constexpr std::size_t kPrefetchAhead = 4;

struct Config {
	bool enabled;
	double sensitivity;
	std::int64_t lookback_minutes;
	std::uint32_t algorithms;
	std::uint32_t min_points;
	bool operator==(const Config &o) const {
		return sensitivity == o.sensitivity && lookback_minutes == o.lookback_minutes && algorithms == o.algorithms
			&& min_points == o.min_points;
	}
};

struct RawPoint {
	TimestampTz ts; // as stored: results carry it back exactly
	double t;
	double v;
	std::int32_t offset; // seconds east of UTC in the session's time zone at t
};

struct Work {
	std::string name;
	std::string category;
	Config cfg;
	bool needs_history = false;
	std::vector<RawPoint> history;
	std::vector<RawPoint> fresh;
};

struct Found {
	std::size_t work;
	RawPoint point;
	detect::Score score;
};

struct CacheEntry {
	Config cfg;
	detect::Detector det;
};

// Backend-local detector cache: valid for one (database, pass id).
struct Cache {
	Oid db = InvalidOid;
	std::int64_t pass = -1;
	std::unordered_map<std::string, std::unique_ptr<CacheEntry>> entries;
};

// One pass's scratch space (cleared, not freed, between passes).
struct Scratch {
	std::unordered_map<std::string, Config> configs;
	Config defaults {};
	std::deque<Work> work; // deque: Work addresses stay put, the index holds views into names
	std::unordered_map<std::string_view, std::size_t> index;
	std::vector<Found> found;
	void Clear() {
		configs.clear();
		index.clear();
		work.clear();
		work.shrink_to_fit();
		found.clear();
		found.shrink_to_fit();
	}
};

Cache *cache = nullptr;
Scratch *scratch = nullptr;

// ---- reading (Postgres side: may ereport, owns no C++ object) ---------------------------------

double
EpochSeconds(TimestampTz ts)
{
	return static_cast<double>(ts) / 1e6 + kPgEpochSeconds;
}

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

std::uint32_t
AlgorithmMask(ArrayType *arr, PlainError *err)
{
	Datum *elems;
	bool *nulls;
	int n;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	std::uint32_t mask = 0;
	if (n == 0) {
		snprintf(err->message, sizeof err->message, "detection_algorithms must name at least one algorithm");
		memcpy(err->sqlstate, "22023", 6);
		err->set = true;
	}
	for (int i = 0; i < n && !err->set; i++) {
		if (nulls[i]) {
			snprintf(err->message, sizeof err->message, "detection_algorithms must not contain NULL");
			memcpy(err->sqlstate, "22004", 6);
			err->set = true;
			break;
		}
		text *t = DatumGetTextPP(elems[i]);
		std::string_view name(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		detect::Algorithm a;
		if (!detect::ParseAlgorithm(name, &a)) {
			snprintf(err->message, sizeof err->message,
			         "unknown detection algorithm \"%.*s\"", static_cast<int>(Min(name.size(), 200)), name.data());
			snprintf(err->hint, sizeof err->hint,
			         "Known algorithms: z_score, mad, moving_average, rate_of_change, ewma, cusum, seasonal, predictive, ensemble.");
			memcpy(err->sqlstate, "22023", 6);
			err->set = true;
			break;
		}
		mask |= detect::AlgorithmBit(a);
	}
	return mask;
}

// Reads anomaly_detection_config into scratch->configs (and the '*' defaults).
void
ReadConfigs()
{
	thrillmon::pg::SpiRun("SELECT metric_name, enabled, sensitivity, lookback_window_minutes, detection_algorithms, "
	                      "min_data_points FROM thrillmon.anomaly_detection_config",
	                      SPI_OK_SELECT);
	PlainError err {};
	for (uint64 i = 0; i < SPI_processed; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		text *name = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
		Config c;
		c.enabled = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		c.sensitivity = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		c.lookback_minutes = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		c.algorithms = AlgorithmMask(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)), &err);
		c.min_points = static_cast<std::uint32_t>(DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull)));
		RaiseIfSet(&err);
		std::string_view key(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
		Compute(&err, [&] {
			if (key == "*")
				scratch->defaults = c;
			else
				scratch->configs.emplace(std::string(key), c);
		});
		RaiseIfSet(&err);
	}
}

struct Row {
	const char *name;
	int name_len;
	const char *category;
	int category_len;
	RawPoint p;
};

// A stored row as a point for the scan's sink; false for a value or time that is not finite
// (record_metric() refuses them; a row written around it is skipped). A NULL category reads as
// 'custom'. The row points into name's and category's memory.
bool
FillRow(Row *r, TimestampTz ts, double v, text *name, text *category)
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
	r->p = RawPoint {ts, EpochSeconds(ts), v, LocalOffset(ts)};
	return true;
}

// Runs query (which returns "timestamp", metric_value, metric_name and, if with_category,
// metric_category: fixed-width columns first, so their offsets are cached) through a cursor and
// hands each batch of rows to sink (called inside Compute()).
template <typename Sink>
void
ScanPoints(const char *query, bool with_category, int nargs, Oid *types, Datum *values, Sink &&sink)
{
	Portal portal = SPI_cursor_open_with_args(nullptr, query, nargs, types, values, nullptr, true, 0);
	Row *rows = static_cast<Row *>(palloc(sizeof(Row) * kFetchBatch));
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
		PlainError err {};
		Compute(&err, [&] { sink(rows, used); });
		SPI_freetuptable(SPI_tuptable);
		RaiseIfSet(&err);
	}
	SPI_cursor_close(portal);
	pfree(rows);
}

// The partitions of metric_time_series that can hold rows in (lo, hi]: daily ones by the UTC day
// in their name (the core's ParsePartitionName, days since 1970; a day of margin either side),
// the default one always. -1 when the table has a partition named otherwise (attached by hand):
// the caller then reads through SQL, which prunes by the real bounds.
int
PartitionsOverlapping(TimestampTz lo, TimestampTz hi, Oid **out)
{
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
	PlainError err {};
	for (int i = 0; i < nparts; i++) {
		const char *name = get_rel_name(oids[i]);
		if (name == nullptr)
			return -1;
		if (strcmp(name, "metric_time_series_default") == 0) {
			scan[nscan++] = oids[i];
			continue;
		}
		std::optional<std::int64_t> day;
		Compute(&err, [&] { day = thrillmon::ParsePartitionName(name); });
		RaiseIfSet(&err);
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
// (lo, hi] with their category go to sink(row) inside Compute(). False, before reading
// anything, when a partition is not one of ours or has no such BRIN: the caller then reads
// through SQL.
template <typename Sink>
bool
ScanFreshDirect(TimestampTz lo, TimestampTz hi, Sink &&sink)
{
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
			if (idx->rd_rel->relam == BRIN_AM_OID && idx->rd_index->indnatts == 1
			    && idx->rd_index->indkey.values[0] == a_ts && idx->rd_indpred == NIL && idx->rd_indexprs == NIL
			    && RelationGetForm(idx)->relkind == RELKIND_INDEX) {
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
		if (ConditionalLockRelation(rels[p], ShareUpdateExclusiveLock)
		    && ConditionalLockRelation(idxs[p], ShareUpdateExclusiveLock))
			(void)DirectFunctionCall1(brin_summarize_new_values, ObjectIdGetDatum(RelationGetRelid(idxs[p])));
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
		(void)index_getbitmap(iscan, tbm);
		index_endscan(iscan);
		TableScanDesc hscan = table_beginscan_bm(rel, snapshot, 0, nullptr);
		TupleTableSlot *slot = table_slot_create(rel, nullptr);
		TBMIterator *it = tbm_begin_iterate(tbm);
		TBMIterateResult *res;
		Row row;
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
				Compute(&err, [&] { sink(&row, 1); });
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
}

// A cold start reads every metric's lookback window (24 h x 1000 metrics is 1.44 M rows). Going
// through the executor and SPI costs more than the scan itself, so the partitions that can hold
// the window are scanned directly (table_beginscan under the active snapshot, as a sequential
// scan would), and each row goes straight to its metric. The partitions are found by their names
// (thrillmon's daily partitions and the default one): if the table has any partition named
// otherwise (attached by hand), this returns false and the caller reads through SQL instead.
// add(name, ts, value, offset) runs inside Compute() for each row in the window.
template <typename Add>
bool
ScanWindowDirect(TimestampTz lo, TimestampTz hi, Add &&add)
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
		(void)natts;
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
			text *tn = DatumGetTextPP(values[a_name - 1]); // short, never toasted
			const std::int32_t offset = LocalOffset(ts);
			std::string_view name(VARDATA_ANY(tn), VARSIZE_ANY_EXHDR(tn));
			Compute(&err, [&] { add(name, ts, v, offset); });
			if (err.set)
				break;
		}
		table_endscan(sd);
		table_close(rel, NoLock);
		RaiseIfSet(&err);
	}
	return true;
}

void
EnsureGlobals(PlainError *err)
{
	Compute(err, [&] {
		if (cache == nullptr)
			cache = new Cache();
		if (scratch == nullptr)
			scratch = new Scratch();
		scratch->Clear();
	});
}

// A cold pass's points can be tens of MB: give them back rather than keep them for the next pass.
void
ReleaseScratch()
{
	PlainError err {};
	bool large = false;
	Compute(&err, [&] {
		std::size_t points = 0;
		for (const Work &wk : scratch->work)
			points += wk.history.capacity() + wk.fresh.capacity();
		large = points > 100000;
		scratch->Clear();
	});
	RaiseIfSet(&err);
	// glibc keeps freed memory in the process; after a cold pass (tens of MB of points) hand it
	// back, so the worker's memory is its detectors, not the high-water mark of its last rebuild.
	if (large)
		malloc_trim(0);
}

const Config &
ConfigFor(std::string_view name)
{
	auto it = scratch->configs.find(std::string(name));
	return it == scratch->configs.end() ? scratch->defaults : it->second;
}

detect::Settings
SettingsOf(const Config &c)
{
	detect::Settings s;
	s.algorithms = c.algorithms;
	s.sensitivity = c.sensitivity;
	s.min_data_points = c.min_points;
	return s;
}

detect::Point
ToPoint(const RawPoint &r)
{
	return detect::MakePoint(r.t, r.v, r.offset);
}

void
SortByTime(std::vector<RawPoint> &v)
{
	auto by_time = [](const RawPoint &a, const RawPoint &b) { return a.t < b.t; };
	if (!std::is_sorted(v.begin(), v.end(), by_time))
		std::stable_sort(v.begin(), v.end(), by_time);
}

// How many threads score a pass: thrillmon.detect_threads, but at most one per kMinPerThread
// detectors (a thread costs tens of microseconds to start; a few metrics are not worth it).
constexpr std::size_t kMinPerThread = 64;
int
ScoringThreads(std::size_t detectors)
{
	const std::size_t by_work = std::max<std::size_t>(1, detectors / kMinPerThread);
	return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(Max(1, thrillmon::pg::detect_threads)), by_work));
}

// Runs f(lo, hi, slice) over [0, n) cut into `slices` contiguous slices, slice 0 in this thread
// and each other one in a thread of its own (called inside Compute(); rethrows the first error
// of any slice after all have finished).
//
// The backend is not thread-safe, so the extra threads run pure C++ only: no Postgres function,
// no palloc, no ereport; they touch only their slice's detectors and points. They start with
// every signal blocked (a new thread inherits the creator's mask, restored here right after), so
// that Postgres' signal handlers, which set flags and latches for this process, only ever run in
// the backend's own thread. Their exceptions are caught in the thread (one escaping a thread
// would terminate the process) and handed back here.
template <typename F>
void
RunSlices(std::size_t n, int slices, F &&f)
{
	auto lo = [&](int i) { return n * static_cast<std::size_t>(i) / static_cast<std::size_t>(slices); };
	if (slices <= 1) {
		f(0, n, 0);
		return;
	}
	std::vector<std::exception_ptr> errors(static_cast<std::size_t>(slices));
	std::vector<std::thread> threads;
	threads.reserve(static_cast<std::size_t>(slices - 1));
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	try {
		for (int i = 1; i < slices; i++)
			threads.emplace_back([&, i] {
				try {
					f(lo(i), lo(i + 1), i);
				} catch (...) {
					errors[static_cast<std::size_t>(i)] = std::current_exception();
				}
			});
	} catch (...) {
		// A thread could not be started (out of threads or memory): the slices without one
		// run here below, so the pass still completes.
	}
	pthread_sigmask(SIG_SETMASK, &old, nullptr);
	const int started = static_cast<int>(threads.size()) + 1;
	for (int i = 0; i < slices; i++) {
		if (i > 0 && i < started)
			continue; // its own thread runs it
		try {
			f(lo(i), lo(i + 1), i);
		} catch (...) {
			errors[static_cast<std::size_t>(i)] = std::current_exception();
		}
	}
	for (std::thread &t : threads)
		t.join();
	for (const std::exception_ptr &e : errors)
		if (e)
			std::rethrow_exception(e);
}

TimestampTz
MinusMinutes(TimestampTz t, std::int64_t minutes)
{
	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	int64 delta = minutes * INT64CONST(60) * USECS_PER_SEC;
	return t < MIN_TIMESTAMP + delta ? MIN_TIMESTAMP : t - delta;
}

} // namespace

// _detect_horizon(): the time up to which this pass may score. A point becomes visible when its
// transaction commits, which can be after its timestamp; a transaction still open here may yet
// commit points stamped after its start. So the horizon is the start of the oldest open
// transaction in this database (other than ours), but held back by at most ten minutes (a
// forgotten idle-in-transaction session must not stop detection; a point committed more than
// ten minutes after its timestamp is then left to backtest()).
extern "C" Datum
thrillmon_detect_horizon(PG_FUNCTION_ARGS)
{
	const TimestampTz now = GetCurrentTimestamp();
	TimestampTz horizon = now;
	const int n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++) {
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		if (local == nullptr)
			continue;
		PgBackendStatus *be = &local->backendStatus;
		if (be->st_procpid == MyProcPid || be->st_databaseid != MyDatabaseId || be->st_xact_start_timestamp == 0)
			continue;
		if (be->st_backendType != B_BACKEND && be->st_backendType != B_BG_WORKER)
			continue;
		horizon = Min(horizon, be->st_xact_start_timestamp);
	}
	const TimestampTz floor = now - INT64CONST(600) * USECS_PER_SEC;
	PG_RETURN_TIMESTAMPTZ(Max(horizon, floor));
}

// _detect_scan(prev timestamptz, upto timestamptz, prev_pass bigint, pass bigint): scores every
// enabled metric's points in (prev, upto] (with prev NULL: each metric's lookback window) and
// returns the anomalies, writing nothing.
extern "C" Datum
thrillmon_detect_scan(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: _detect_scan needs upto and pass ids")));
	const bool have_prev = !PG_ARGISNULL(0);
	const TimestampTz prev = have_prev ? PG_GETARG_TIMESTAMPTZ(0) : DT_NOBEGIN;
	const TimestampTz upto = PG_GETARG_TIMESTAMPTZ(1);
	const int64 prev_pass = PG_GETARG_INT64(2);
	const int64 pass = PG_GETARG_INT64(3);

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	PlainError err {};
	EnsureGlobals(&err);
	RaiseIfSet(&err);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	ReadConfigs();

	// The cache serves this pass only if the previous pass in this database made it here.
	Compute(&err, [&] {
		if (cache->db != MyDatabaseId || cache->pass != prev_pass)
			cache->entries.clear();
		cache->db = MyDatabaseId;
		cache->pass = -1; // until this pass's scan has finished
	});
	RaiseIfSet(&err);

	std::int64_t max_lookback = scratch->defaults.lookback_minutes;
	for (const auto &kv : scratch->configs)
		max_lookback = Max(max_lookback, kv.second.lookback_minutes);

	// New points. Without a previous pass, each metric's lookback window is new.
	{
		Oid types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum values[2] = {TimestampTzGetDatum(have_prev ? prev : MinusMinutes(upto, max_lookback)),
		                   TimestampTzGetDatum(upto)};
		const double upto_s = EpochSeconds(upto);
		// Through SQL (the time range prunes partitions and uses the BRIN): a steady pass reads a
		// few points per metric. (array_agg() per metric was tried: a memory context per group
		// made it slower here.)
		auto sink = [&](const Row *rows, int n) {
			           for (int i = 0; i < n; i++) {
				           std::string_view name(rows[i].name, rows[i].name_len);
				           auto it = scratch->index.find(name);
				           std::size_t w;
				           if (it == scratch->index.end()) {
					           const Config &cfg = ConfigFor(name);
					           scratch->work.emplace_back();
					           Work &nw = scratch->work.back();
					           nw.name.assign(name);
					           nw.cfg = cfg;
					           w = scratch->work.size() - 1;
					           scratch->index.emplace(std::string_view(nw.name), w);
				           } else {
					           w = it->second;
				           }
				           Work &wk = scratch->work[w];
				           if (!wk.cfg.enabled)
					           continue;
				           if (!have_prev && rows[i].p.t <= upto_s - 60.0 * wk.cfg.lookback_minutes)
					           continue;
				           wk.category.assign(rows[i].category, rows[i].category_len);
				           wk.fresh.push_back(rows[i].p);
			           }
		           };
		// A steady pass (a short range) reads the partitions' BRIN directly; a cold start's new
		// range is the whole lookback window, which SQL reads as well as anything.
		if (!have_prev || !ScanFreshDirect(prev, upto, sink))
			ScanPoints("SELECT \"timestamp\", metric_value, metric_name, metric_category FROM thrillmon.metric_time_series "
			           "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2",
			           true, 2, types, values, sink);
	}

	// Which metrics need their history: not cached (or cached under another configuration).
	int need = 0;
	std::int64_t need_lookback = 0;
	ArrayType *names = nullptr;
	{
		Compute(&err, [&] {
			for (Work &wk : scratch->work) {
				if (!wk.cfg.enabled || wk.fresh.empty() || !have_prev)
					continue;
				auto it = cache->entries.find(wk.name);
				if (it != cache->entries.end() && it->second->cfg == wk.cfg)
					continue;
				wk.needs_history = true;
				need++;
				need_lookback = std::max(need_lookback, wk.cfg.lookback_minutes);
			}
		});
		RaiseIfSet(&err);
	}
	if (need > 0) {
		// A few metrics: by name (index scans); many (a cold start): one range scan.
		const bool by_name = need <= 64;
		if (by_name) {
			Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * need));
			int k = 0;
			for (const Work &wk : scratch->work)
				if (wk.needs_history)
					elems[k++] = PointerGetDatum(cstring_to_text_with_len(wk.name.data(), static_cast<int>(wk.name.size())));
			names = construct_array(elems, k, TEXTOID, -1, false, TYPALIGN_INT);
		}
		Oid types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID};
		Datum values[3] = {TimestampTzGetDatum(MinusMinutes(prev, need_lookback)), TimestampTzGetDatum(prev),
		                   by_name ? PointerGetDatum(names) : (Datum) 0};
		const double prev_s = EpochSeconds(prev);
		auto add = [&](std::string_view name, TimestampTz ts, double v, std::int32_t offset) {
			auto it = scratch->index.find(name);
			if (it == scratch->index.end())
				return;
			Work &wk = scratch->work[it->second];
			const double t = EpochSeconds(ts);
			if (wk.needs_history && t > prev_s - 60.0 * wk.cfg.lookback_minutes && std::isfinite(v))
				wk.history.push_back(RawPoint {ts, t, v, offset});
		};
		// A cold start (many metrics) scans the partitions directly; a few metrics, or a table
		// with partitions of its own naming, go through SQL.
		if (by_name || !ScanWindowDirect(MinusMinutes(prev, need_lookback), prev, add))
			ScanPoints(by_name ? "SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
			                     "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2 AND metric_name = ANY ($3)"
			                   : "SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
			                     "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2",
			           false, by_name ? 3 : 2, types, values, [&](const Row *rows, int n) {
				           for (int i = 0; i < n; i++)
					           add(std::string_view(rows[i].name, rows[i].name_len), rows[i].p.ts, rows[i].p.v,
					               rows[i].p.offset);
			           });
	}

	// Score (pure C++).
	const double upto_s = EpochSeconds(upto);
	Compute(&err, [&] {
		// First find (or rebuild) each metric's detector, then score: the scoring loop can then
		// prefetch the next detector's state while it scores this one (see Detector::Prefetch).
		struct Todo {
			std::size_t work;
			detect::Detector *det;
			bool rebuild;
		};
		std::vector<Todo> todo;
		todo.reserve(scratch->work.size());
		for (std::size_t w = 0; w < scratch->work.size(); w++) {
			Work &wk = scratch->work[w];
			if (!wk.cfg.enabled) {
				cache->entries.erase(wk.name);
				continue;
			}
			if (wk.fresh.empty())
				continue;
			auto it = cache->entries.find(wk.name);
			const bool rebuild = it == cache->entries.end() || !(it->second->cfg == wk.cfg);
			if (rebuild) {
				// Rebuilt below (in parallel); until this pass ends the cache is marked invalid
				// (cache->pass = -1), so an error half-way leaves nothing half-built trusted.
				auto entry = std::unique_ptr<CacheEntry>(new CacheEntry {wk.cfg, detect::Detector(SettingsOf(wk.cfg))});
				it = cache->entries.insert_or_assign(wk.name, std::move(entry)).first;
			}
			todo.push_back(Todo {w, &it->second->det, rebuild});
		}
		// Each detector is touched by one thread only, and a slice of work reads only its own
		// metrics' points: the slices share nothing but their read-only inputs.
		std::vector<std::vector<Found>> found(static_cast<std::size_t>(ScoringThreads(todo.size())));
		RunSlices(todo.size(), static_cast<int>(found.size()), [&](std::size_t lo, std::size_t hi, int slice) {
			std::vector<Found> &out = found[static_cast<std::size_t>(slice)];
			for (std::size_t k = lo; k < hi; k++) {
				Work &wk = scratch->work[todo[k].work];
				if (todo[k].rebuild) {
					SortByTime(wk.history);
					todo[k].det->Rebuild(wk.history.size(), [&](std::size_t i) { return ToPoint(wk.history[i]); });
				}
				SortByTime(wk.fresh);
			}
			for (std::size_t k = lo; k < hi; k++) {
				if (k + kPrefetchAhead < hi)
					todo[k + kPrefetchAhead].det->Prefetch(ToPoint(scratch->work[todo[k + kPrefetchAhead].work].fresh.front()));
				for (const RawPoint &r : scratch->work[todo[k].work].fresh) {
					detect::Score sc = todo[k].det->Update(ToPoint(r));
					if (sc.anomaly)
						out.push_back(Found {todo[k].work, r, sc});
				}
			}
		});
		for (const std::vector<Found> &part : found)
			scratch->found.insert(scratch->found.end(), part.begin(), part.end());
		// Forget metrics that have gone quiet for longer than their lookback: a rebuild would
		// find no history for them either, and the cache stays bounded by the active metrics.
		for (auto it = cache->entries.begin(); it != cache->entries.end();) {
			if (it->second->det.last_time() < upto_s - 60.0 * it->second->cfg.lookback_minutes)
				it = cache->entries.erase(it);
			else
				++it;
		}
		cache->pass = pass;
	});
	RaiseIfSet(&err);
	SPI_finish();

	for (const Found &f : scratch->found) {
		const Work &wk = scratch->work[f.work];
		Datum values[10];
		bool nulls[10] = {};
		values[0] = PointerGetDatum(cstring_to_text_with_len(wk.name.data(), static_cast<int>(wk.name.size())));
		values[1] = PointerGetDatum(cstring_to_text_with_len(wk.category.data(), static_cast<int>(wk.category.size())));
		values[2] = TimestampTzGetDatum(f.point.ts);
		values[3] = Float8GetDatum(f.point.v);
		values[4] = Float8GetDatum(f.score.score);
		values[5] = Float8GetDatum(f.score.deviation);
		values[6] = Float8GetDatum(f.score.baseline);
		values[7] = CStringGetTextDatum(detect::AnomalyTypeName(f.score.type));
		values[8] = CStringGetTextDatum(detect::SeverityName(f.score.severity));
		values[9] = CStringGetTextDatum(detect::AlgorithmName(f.score.algorithm));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ReleaseScratch();
	return (Datum) 0;
}

// _backtest(metric, from, upto, algorithms, sensitivity): replays the metric's stored points in
// [from, upto] through a fresh detector warmed on the lookback window before `from`, and returns
// one row per point. Writes nothing.
extern "C" Datum
thrillmon_backtest(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: backtest needs metric_name, from and to")));
	text *metric = PG_GETARG_TEXT_PP(0);
	const TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	const TimestampTz upto = PG_GETARG_TIMESTAMPTZ(2);
	if (from > upto)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("thrillmon: backtest range is empty: from is after to")));

	PlainError err {};
	std::uint32_t mask = 0;
	if (!PG_ARGISNULL(3)) {
		mask = AlgorithmMask(PG_GETARG_ARRAYTYPE_P(3), &err);
		if (!err.set && ARR_NDIM(PG_GETARG_ARRAYTYPE_P(3)) == 0) {
			snprintf(err.message, sizeof err.message, "algorithms must name at least one algorithm");
			memcpy(err.sqlstate, "22023", 6);
			err.set = true;
		}
		RaiseIfSet(&err);
	}
	double sensitivity = 0;
	if (!PG_ARGISNULL(4)) {
		sensitivity = PG_GETARG_FLOAT8(4);
		if (!(sensitivity > 0) || !(sensitivity <= 100))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("thrillmon: sensitivity must be greater than 0 and at most 100 (robust standard deviations)")));
	}

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	EnsureGlobals(&err);
	RaiseIfSet(&err);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	ReadConfigs();
	std::string_view metric_name(VARDATA_ANY(metric), VARSIZE_ANY_EXHDR(metric));
	Config cfg {};
	Compute(&err, [&] {
		cfg = ConfigFor(metric_name);
		if (mask != 0)
			cfg.algorithms = mask;
		if (sensitivity > 0)
			cfg.sensitivity = sensitivity;
		scratch->work.emplace_back();
		scratch->work.back().cfg = cfg;
	});
	RaiseIfSet(&err);

	Oid types[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[3] = {PointerGetDatum(metric), TimestampTzGetDatum(MinusMinutes(from, cfg.lookback_minutes)),
	                   TimestampTzGetDatum(upto)};
	ScanPoints("SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
	           "WHERE metric_name = $1 AND \"timestamp\" > $2 AND \"timestamp\" <= $3",
	           false, 3, types, values, [&](const Row *rows, int n) {
		           for (int i = 0; i < n; i++)
			           scratch->work.back().fresh.push_back(rows[i].p);
	           });

	Compute(&err, [&] {
		Work &wk = scratch->work.back();
		SortByTime(wk.fresh);
		detect::Detector det(SettingsOf(cfg));
		// Warm-up before `from` exactly as a live rebuild does it, then score.
		std::size_t first = 0;
		while (first < wk.fresh.size() && wk.fresh[first].ts < from)
			first++;
		det.Rebuild(first, [&](std::size_t i) { return ToPoint(wk.fresh[i]); });
		for (std::size_t i = first; i < wk.fresh.size(); i++)
			scratch->found.push_back(Found {0, wk.fresh[i], det.Update(ToPoint(wk.fresh[i]))});
	});
	RaiseIfSet(&err);
	SPI_finish();

	for (const Found &f : scratch->found) {
		Datum out[9];
		bool nulls[9] = {};
		out[0] = TimestampTzGetDatum(f.point.ts);
		out[1] = Float8GetDatum(f.point.v);
		out[2] = Float8GetDatum(f.score.score);
		out[3] = BoolGetDatum(f.score.anomaly);
		if (f.score.warming_up) {
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = nulls[8] = true;
		} else {
			out[4] = CStringGetTextDatum(f.score.anomaly ? detect::AnomalyTypeName(f.score.type) : "none");
			out[5] = CStringGetTextDatum(detect::SeverityName(f.score.severity));
			out[6] = CStringGetTextDatum(detect::AlgorithmName(f.score.algorithm));
			out[7] = Float8GetDatum(f.score.deviation);
			out[8] = Float8GetDatum(f.score.baseline);
		}
		if (!f.score.anomaly)
			nulls[4] = nulls[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	ReleaseScratch();
	return (Datum) 0;
}
