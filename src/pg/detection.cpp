// The detection pass's engine: _detect_horizon (how far a pass may score), _detect_scan (score
// every enabled metric's new points, return the anomalies, write nothing) and _detect_pass_stats
// (what this backend's last pass did). Alerts, incidents and NOTIFY are SQL (_detect_run(), in
// 70_detection.sql); which detectors a backend keeps, rebuilds and forgets is the core's
// (src/core/detect_pass.cpp).
//
// Boundary (boundary.hpp): the detector cache and the pass's scratch space are C++ objects reached
// through plain pointers, never on a frame that SPI could longjmp over; every C++ step runs in
// RunCore (or, per row, in Compute with one PlainError).
#include <cmath>
#include <cstring>
#include <deque>
#include <malloc.h>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/detect_pass.hpp"
#include "core/thread_pool.hpp"
#include "core/vocabulary.hpp"
#include "pg/boundary.hpp"
#include "pg/detect.hpp"
#include "pg/guc.hpp"
#include "pg/partitions.hpp"
#include "pg/spi.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg/compat.hpp"
}

namespace detect = thrillmon::detect;
using thrillmon::pg::Compute;
using thrillmon::pg::PlainError;
using thrillmon::pg::RaiseIfSet;
using thrillmon::pg::RunCore;
using thrillmon::pg::ScanRow;

namespace {

// One pass's scratch space (cleared, not freed, between passes).
struct Scratch {
	std::deque<detect::PassMetric> metrics; // a deque: addresses stay put, `index` views their names
	std::unordered_map<std::string_view, std::size_t> index;
	std::vector<detect::PassAnomaly> found;
	// Metrics past thrillmon.max_metrics_per_pass: their names' hashes (distinct ones counted, up
	// to kSkippedCounted, so that counting them is bounded too) and their points.
	std::unordered_set<std::size_t> skipped;
	std::size_t skipped_points = 0;

	void
	Clear()
	{
		index.clear();
		metrics.clear();
		metrics.shrink_to_fit();
		found.clear();
		found.shrink_to_fit();
		skipped.clear();
		skipped_points = 0;
	}
};
constexpr std::size_t kSkippedCounted = 100000;

// The backend's: made on first use, never freed (plain pointers: no static constructor).
detect::DetectorCache *cache = nullptr;
Scratch *scratch = nullptr;
detect::PassStats *last_pass = nullptr;
// The regular metrics the last pass found silent (for _detect_pass_silent()).
std::vector<detect::SilentMetric> *last_silent = nullptr;

void
EnsureGlobals()
{
	RunCore([&] {
		if (cache == nullptr)
			cache = new detect::DetectorCache();
		if (scratch == nullptr)
			scratch = new Scratch();
		scratch->Clear();
	});
}

// A cold pass's points can be tens of MB: give them back rather than keep them for the next pass.
// history_points: how many history points the pass read (counted before scoring, which moves
// each metric's history into its detector's rebuild and frees it there: by now the scratch holds
// none of them).
void
ReleaseScratch(std::size_t history_points)
{
	std::size_t points = history_points;
	RunCore([&] {
		for (const detect::PassMetric &m : scratch->metrics)
			points += m.history.capacity() + m.fresh.capacity();
		scratch->Clear();
	});
	// glibc keeps freed memory in the process; after a cold pass (tens of MB of points) hand it
	// back, so the worker's memory is its detectors, not the high-water mark of its last rebuild;
	// and in any other backend, which has just given its cache back too.
	if (points > 100000 || !(thrillmon::pg::IsThrillmonWorker() || thrillmon::pg::session_detector_cache))
		malloc_trim(0);
}

} // namespace

// _detect_horizon(): the time up to which this pass may score. A point becomes visible when its
// transaction commits, which can be after its timestamp; a transaction still open here may yet
// commit points stamped after its start. Two kinds of open transaction, held differently:
// * one that has written points (it holds ROW EXCLUSIVE or more on metric_time_series or one of
//   its partitions): the horizon waits for it, by at most ten minutes (a forgotten
//   idle-in-transaction session must not stop detection; a point committed more than ten minutes
//   after its timestamp is then left to backtest());
// * any other: it may still write a point stamped at its start (record_metric()'s default is
//   now()), so it holds the horizon too, but by at most kUnwrittenHoldSeconds. Holding it for
//   longer would blind detection exactly when it matters: the transaction that holds a lock
//   every client queues behind (a lock storm) is such a transaction, and so are those queued.
//   The collector writes its built-in metrics first, so its transaction is a writer within
//   milliseconds of its start.
constexpr int64 kUnwrittenHoldSeconds = 10;

THRILLMON_FUNCTION(thrillmon_detect_horizon)
{
	const TimestampTz now = GetCurrentTimestamp();
	// The backends (pids) whose transaction holds ROW EXCLUSIVE or stronger on the points table or
	// one of its partitions, in this database. (List and array are palloc'd: no C++ object is
	// alive across the calls here that can raise an ERROR.)
	List *tables = NIL;
	const Oid parent = thrillmon::pg::MetricsTableOid();
	if (OidIsValid(parent))
		tables = find_all_inheritors(parent, NoLock, nullptr);
	int nwriters = 0;
	int *writers = nullptr;
	if (tables != NIL) {
		const LOCKMASK writes = LOCKBIT_ON(RowExclusiveLock) | LOCKBIT_ON(ShareRowExclusiveLock) |
		                        LOCKBIT_ON(ExclusiveLock) | LOCKBIT_ON(AccessExclusiveLock);
		LockData *locks = GetLockStatusData();
		writers = static_cast<int *>(palloc(sizeof(int) * Max(locks->nelements, 1)));
		for (int i = 0; i < locks->nelements; i++) {
			const LockInstanceData *l = &locks->locks[i];
			if (l->locktag.locktag_type == LOCKTAG_RELATION && l->locktag.locktag_field1 == MyDatabaseId &&
			    (l->holdMask & writes) != 0 && l->pid != MyProcPid && l->pid != 0 &&
			    list_member_oid(tables, static_cast<Oid>(l->locktag.locktag_field2)))
				writers[nwriters++] = l->pid;
		}
	}
	const TimestampTz writer_floor = now - INT64CONST(600) * USECS_PER_SEC;
	const TimestampTz other_floor = now - kUnwrittenHoldSeconds * USECS_PER_SEC;
	TimestampTz horizon = now;
	const int n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++) {
#if PG_VERSION_NUM >= 160000
		// From 16 pgstat_fetch_stat_local_beentry() takes a backend id; by position is this one.
		LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);
#else
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
#endif
		if (local == nullptr)
			continue;
		PgBackendStatus *be = &local->backendStatus;
		if (be->st_procpid == MyProcPid || be->st_databaseid != MyDatabaseId || be->st_xact_start_timestamp == 0)
			continue;
		if (be->st_backendType != B_BACKEND && be->st_backendType != B_BG_WORKER)
			continue;
		bool writer = false;
		for (int k = 0; k < nwriters && !writer; k++)
			writer = writers[k] == be->st_procpid;
		// Just before its start: a point it stamps with now() is stamped with exactly its start,
		// and a pass scores up to and including its horizon.
		horizon = Min(horizon, Max(be->st_xact_start_timestamp - 1, writer ? writer_floor : other_floor));
	}
	PG_RETURN_TIMESTAMPTZ(horizon);
}

// _detect_scan(prev timestamptz, upto timestamptz, prev_pass bigint, pass bigint): scores every
// enabled metric's points in (prev, upto] (with prev NULL: each metric's lookback window) and
// returns the anomalies, writing nothing.
THRILLMON_FUNCTION(thrillmon_detect_scan)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: _detect_scan needs upto and pass ids")));
	const bool steady = !PG_ARGISNULL(0);
	const TimestampTz prev = steady ? PG_GETARG_TIMESTAMPTZ(0) : DT_NOBEGIN;
	const TimestampTz upto = PG_GETARG_TIMESTAMPTZ(1);
	const int64 prev_pass = PG_GETARG_INT64(2);
	const int64 pass = PG_GETARG_INT64(3);
	const double upto_s = thrillmon::pg::EpochSeconds(upto);

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	EnsureGlobals();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	const thrillmon::pg::SettingsTable &settings = thrillmon::pg::ReadSettings();
	std::int64_t max_lookback = 0;
	const std::size_t max_metrics = static_cast<std::size_t>(thrillmon::pg::max_metrics_per_pass);
	bool kept = false;
	RunCore([&] {
		thrillmon::HelperThreads::Get().Reserve(thrillmon::pg::detect_threads - 1);
		cache->set_capacity(static_cast<std::size_t>(thrillmon::pg::detector_cache_size));
		kept = cache->BeginPass(MyDatabaseId, prev_pass);
		max_lookback = settings.MaxLookbackMinutes();
		if (last_silent == nullptr)
			last_silent = new std::vector<detect::SilentMetric>();
		last_silent->clear();
	});
	const bool keep = thrillmon::pg::IsThrillmonWorker() || thrillmon::pg::session_detector_cache;

	// New points. Without a previous pass, each metric's lookback window is new.
	{
		Oid types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum values[2] = {TimestampTzGetDatum(steady ? prev : thrillmon::pg::MinusMinutes(upto, max_lookback)),
		                   TimestampTzGetDatum(upto)};
		auto fresh = [&](const ScanRow *rows, int n) {
			for (int i = 0; i < n; i++) {
				const std::string_view name(rows[i].name, rows[i].name_len);
				auto it = scratch->index.find(name);
				std::size_t m;
				if (it == scratch->index.end()) {
					// A pass holds at most max_metrics_per_pass metrics: past it a new name is
					// left unscored, unless the cache keeps its state (a metric in steady use),
					// so the memory a pass takes is bounded whatever names writers invent.
					if (scratch->metrics.size() >= max_metrics && !cache->Holds(std::string(name))) {
						if (scratch->skipped.size() < kSkippedCounted)
							scratch->skipped.insert(std::hash<std::string_view> {}(name));
						scratch->skipped_points++;
						continue;
					}
					scratch->metrics.emplace_back();
					detect::PassMetric &nm = scratch->metrics.back();
					nm.name.assign(name);
					nm.settings = settings.For(name);
					if (!settings.windows.empty())
						nm.excluded = detect::WindowsFor(settings.windows, name);
					m = scratch->metrics.size() - 1;
					scratch->index.emplace(std::string_view(nm.name), m);
				} else {
					m = it->second;
				}
				detect::PassMetric &pm = scratch->metrics[m];
				if (!pm.settings.enabled)
					continue;
				if (!steady && !detect::InLookback(rows[i].point.t, upto_s, pm.settings.lookback_minutes))
					continue;
				if (!pm.excluded.empty() && detect::InWindows(pm.excluded, rows[i].point.t))
					continue; // inside a maintenance window: neither scored nor learned
				pm.category.assign(rows[i].category, rows[i].category_len);
				pm.fresh.push_back(rows[i].point);
			}
		};
		// A steady pass (a short range) reads the partitions' BRIN directly; a cold start's new
		// range is the whole lookback window, which SQL reads as well as anything.
		if (!steady || !thrillmon::pg::ScanFreshDirect(prev, upto, thrillmon::pg::SinkOf(fresh)))
			thrillmon::pg::ScanPoints(
			    "SELECT \"timestamp\", metric_value, metric_name, metric_category "
			    "FROM thrillmon.metric_time_series WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2",
			    true, 2, types, values, thrillmon::pg::SinkOf(fresh));
	}

	// Which metrics need their history: a steady pass's metrics with new points whose detector is
	// not cached (or was built under another configuration).
	int need = 0;
	std::int64_t need_lookback = 0;
	RunCore([&] {
		for (detect::PassMetric &pm : scratch->metrics) {
			if (!steady || !pm.settings.enabled || pm.fresh.empty() || !cache->NeedsRebuild(pm.name, pm.settings))
				continue;
			pm.needs_history = true;
			need++;
			need_lookback = std::max(need_lookback, pm.settings.lookback_minutes);
		}
	});
	// A few metrics: their history by name (index scans); many (a cold start of the cache): one
	// range scan.
	const bool by_name = need <= 64;
	const TimestampTz history_lo = thrillmon::pg::MinusMinutes(prev, need_lookback);
	const double prev_s = thrillmon::pg::EpochSeconds(prev);
	auto history_row = [&](const ScanRow &row) {
		auto it = scratch->index.find(std::string_view(row.name, row.name_len));
		if (it == scratch->index.end())
			return;
		detect::PassMetric &pm = scratch->metrics[it->second];
		if (pm.needs_history && detect::InLookback(row.point.t, prev_s, pm.settings.lookback_minutes) &&
		    (pm.excluded.empty() || !detect::InWindows(pm.excluded, row.point.t)))
			pm.history.push_back(row.point);
	};

	// The worker, whose cache has just started over in a steady pass (a restart, or a pass run
	// elsewhere), learns every metric's cadence from its lookback: a metric that stopped arriving
	// has no new point to be seen by, and must not be forgotten for that. (Its new points are
	// noted after scoring, so the lookback is noted first.) Once per start of the cache; other
	// backends give their cache back after each pass, so only their cold passes (which read every
	// lookback anyway) see silent metrics. That read covers the history a rebuild of many metrics
	// needs (need_lookback <= max_lookback), so it collects that too: a worker's restart reads
	// the lookback window once, not twice.
	bool history_read = false;
	if (steady && keep && !kept) {
		const TimestampTz lo = thrillmon::pg::MinusMinutes(prev, max_lookback);
		const bool with_history = need > 0 && !by_name;
		auto learn = [&](const ScanRow *rows, int n) {
			for (int i = 0; i < n; i++) {
				const std::string_view name(rows[i].name, rows[i].name_len);
				const detect::MetricSettings &ms = settings.For(name);
				if (ms.enabled && detect::InLookback(rows[i].point.t, upto_s, ms.lookback_minutes))
					cache->NoteArrival(name, rows[i].point, ms.lookback_minutes);
				if (with_history) // (each metric's own lookback is within this one)
					history_row(rows[i]);
			}
		};
		if (!thrillmon::pg::ScanWindowDirect(lo, prev, thrillmon::pg::SinkOf(learn))) {
			Oid types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
			Datum values[2] = {TimestampTzGetDatum(lo), TimestampTzGetDatum(prev)};
			thrillmon::pg::ScanPoints(
			    "SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
			    "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2 ORDER BY \"timestamp\"",
			    false, 2, types, values, thrillmon::pg::SinkOf(learn));
		}
		history_read = with_history;
	}

	if (need > 0 && !history_read) {
		ArrayType *names = nullptr;
		if (by_name) {
			Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * need));
			int k = 0;
			for (const detect::PassMetric &pm : scratch->metrics)
				if (pm.needs_history)
					elems[k++] =
					    PointerGetDatum(cstring_to_text_with_len(pm.name.data(), static_cast<int>(pm.name.size())));
			names = construct_array(elems, k, TEXTOID, -1, false, TYPALIGN_INT);
		}
		Oid types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID};
		Datum values[3] = {TimestampTzGetDatum(history_lo), TimestampTzGetDatum(prev),
		                   by_name ? PointerGetDatum(names) : (Datum) 0};
		auto history = [&](const ScanRow *rows, int n) {
			for (int i = 0; i < n; i++)
				history_row(rows[i]);
		};
		// Many metrics scan the partitions directly; a few metrics, or a table with partitions of
		// its own naming, go through SQL.
		if (by_name || !thrillmon::pg::ScanWindowDirect(history_lo, prev, thrillmon::pg::SinkOf(history)))
			thrillmon::pg::ScanPoints(
			    by_name ? "SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
			              "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2 AND metric_name = ANY ($3)"
			            : "SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
			              "WHERE \"timestamp\" > $1 AND \"timestamp\" <= $2",
			    false, by_name ? 3 : 2, types, values, thrillmon::pg::SinkOf(history));
	}

	std::size_t history_points = 0;
	std::size_t anomalous_metrics = 0;
	// Score (pure C++, in thrillmon.detect_threads threads), then forget what has gone quiet. A
	// backend other than the worker is unlikely to run the next pass (only the pass after the one
	// that made a cache may use it): it gives its cache back rather than keep it for the session.
	RunCore([&] {
		// A metric rebuilt from its history learns its cadence from it too (a point it has
		// already noted is passed over).
		for (detect::PassMetric &pm : scratch->metrics)
			if (pm.settings.enabled && pm.needs_history) {
				detect::SortByTime(pm.history);
				cache->NoteArrivals(pm.name, pm.history.data(), pm.history.size(), pm.settings.lookback_minutes);
				history_points += pm.history.size(); // (only these read history)
			}
		detect::PassStats stats;
		scratch->found = detect::ScorePass(*cache, scratch->metrics, thrillmon::pg::detect_threads, &stats);
		// How many metrics, thrillmon's own counts aside, are anomalous in this pass beyond low
		// severity: a provisional anomaly (a new metric's) alerts only with another one
		// (70_detection.sql). A low one (a new extreme, a move of a per cent) raises no alert of
		// its own at the default threshold, and would corroborate whatever else happened to fall
		// in the same ten seconds.
		std::vector<bool> anomalous(scratch->metrics.size());
		for (const detect::PassAnomaly &f : scratch->found)
			if (!anomalous[f.metric] && f.score.severity != detect::Severity::kLow &&
			    !thrillmon::vocabulary::IndexOf(thrillmon::vocabulary::kSelfMetric, scratch->metrics[f.metric].name)) {
				anomalous[f.metric] = true;
				anomalous_metrics++;
			}
		// (ScorePass has put each metric's new points in time order.)
		for (const detect::PassMetric &pm : scratch->metrics)
			if (pm.settings.enabled)
				cache->NoteArrivals(pm.name, pm.fresh.data(), pm.fresh.size(), pm.settings.lookback_minutes);
		*last_silent = cache->FindSilent(upto_s);
		cache->EndPass(pass, upto_s);
		if (!keep)
			cache->Clear();
		stats.pass = pass;
		stats.cached = cache->size();
		stats.skipped = scratch->skipped.size();
		if (last_pass == nullptr)
			last_pass = new detect::PassStats();
		*last_pass = stats;
	});
	SPI_finish();

	// (The library may run before ALTER EXTENSION UPDATE has given the function its newer
	// columns: what the caller's descriptor has room for is filled, no more.)
	const int natts = rsinfo->setDesc->natts;
	for (const detect::PassAnomaly &f : scratch->found) {
		const detect::PassMetric &pm = scratch->metrics[f.metric];
		Datum values[11];
		bool nulls[11] = {};
		values[0] = PointerGetDatum(cstring_to_text_with_len(pm.name.data(), static_cast<int>(pm.name.size())));
		values[1] = PointerGetDatum(cstring_to_text_with_len(pm.category.data(), static_cast<int>(pm.category.size())));
		values[2] = TimestampTzGetDatum(f.point.stored);
		values[3] = Float8GetDatum(f.point.value);
		values[4] = Float8GetDatum(f.score.score);
		values[5] = Float8GetDatum(f.score.deviation);
		values[6] = Float8GetDatum(f.score.baseline);
		values[7] = CStringGetTextDatum(detect::AnomalyTypeName(f.score.type));
		values[8] = CStringGetTextDatum(detect::SeverityName(f.score.severity));
		values[9] = CStringGetTextDatum(detect::AlgorithmName(f.score.algorithm));
		if (natts > 10)
			values[10] =
			    BoolGetDatum(f.score.provisional && thrillmon::pg::corroborate_new_metrics && anomalous_metrics < 2);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ReleaseScratch(history_points);
	return (Datum) 0;
}

// _detect_pass_stats(): what this backend's last pass did (NULLs before its first one): the
// pass, metrics scored, detectors rebuilt, points scored, anomalies, metrics kept for the next
// pass, how many threads scored, metrics left unscored (past max_metrics_per_pass; at least this
// many) and metrics whose scoring failed (out of memory).
THRILLMON_FUNCTION(thrillmon_detect_pass_stats)
{
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "thrillmon: return type must be a row type");
	Datum values[9];
	bool nulls[9];
	memset(nulls, last_pass == nullptr, sizeof nulls);
	if (last_pass != nullptr) {
		values[0] = Int64GetDatum(last_pass->pass);
		values[1] = Int64GetDatum(static_cast<int64>(last_pass->metrics));
		values[2] = Int64GetDatum(static_cast<int64>(last_pass->rebuilt));
		values[3] = Int64GetDatum(static_cast<int64>(last_pass->points));
		values[4] = Int64GetDatum(static_cast<int64>(last_pass->anomalies));
		values[5] = Int64GetDatum(static_cast<int64>(last_pass->cached));
		values[6] = Int32GetDatum(last_pass->threads);
		values[7] = Int64GetDatum(static_cast<int64>(last_pass->skipped));
		values[8] = Int64GetDatum(static_cast<int64>(last_pass->failed));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

// _detect_pass_silent(): the regular metrics this backend's last pass found silent: no point for
// five of their intervals (two minutes at least). Each is reported at most every ten minutes
// while it lasts; the pass raises a no_data alert for it (70_detection.sql).
THRILLMON_FUNCTION(thrillmon_detect_pass_silent)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	if (last_silent == nullptr)
		return (Datum) 0;
	for (const detect::SilentMetric &m : *last_silent) {
		Datum values[3];
		bool nulls[3] = {};
		values[0] = PointerGetDatum(cstring_to_text_with_len(m.name.data(), static_cast<int>(m.name.size())));
		values[1] = TimestampTzGetDatum(m.last_stored);
		values[2] = Float8GetDatum(m.interval);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
