// observe(): high-frequency observations aggregated in shared memory, and their flush.
//
// The hot path takes no lock shared by all backends: a backend-local cache maps the name to its
// slot and the slot's generation (the shared index, under an LWLock, is consulted once per name
// and backend), and the update holds only that slot's spinlock for one StatsAdd, after checking
// the generation: a slot given back and handed out again has another, so a stale cache entry is
// noticed before it adds to someone else's metric. The flush moves each slot's statistics out
// under the same spinlock and inserts one row per metric; if the flushing (sub)transaction
// aborts, what it took is merged back, so an observation is flushed exactly once. What is still
// in shared memory when the postmaster stops, or when any backend dies without cleaning up
// (kill -9, the OOM killer: the postmaster then resets shared memory), is lost.
//
// Slots are one pool for the cluster: a database other than the worker's may hold at most
// thrillmon.max_observed_metrics_per_database of them, observe() is refused in a database
// nothing flushes, and slots are given back when idle (core/observe_policy.hpp).
#include <cmath>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/locks.hpp"
#include "core/observe_policy.hpp"
#include "core/sketch.hpp"
#include "core/validation.hpp"
#include "pg/boundary.hpp"
#include "pg/args.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

using thrillmon::pg::ObservedSlot;
using thrillmon::pg::RunCore;
using thrillmon::pg::TextArg;

namespace {

// Backend-local name -> slot cache (dynahash in TopMemoryContext; plain pointer, no constructor).
struct LocalEntry {
	char name[thrillmon::pg::kObservedNameBytes];
	int slot;
	uint32 generation;
};
HTAB *local_cache = nullptr;

// A flush not yet committed: the statistics it took, to give back if its (sub)transaction aborts.
struct PendingFlush {
	SubTransactionId subid; // the subtransaction whose fate the rows share
	int n;
	int *slots;
	uint32 *generations;
	thrillmon::ObservationStats *stats;
	PendingFlush *next;
};
PendingFlush *pending = nullptr; // this transaction's flushes, in TopTransactionContext
bool callbacks_registered = false;

void
GiveBack(const PendingFlush *flush)
{
	for (int i = 0; i < flush->n; i++) {
		ObservedSlot *slot = thrillmon::pg::GetObservedSlot(flush->slots[i]);
		SpinLockAcquire(&slot->mutex);
		// A slot the flush took from is not empty, so not given back meanwhile; the check is
		// for the day that changes.
		if (slot->generation == flush->generations[i])
			thrillmon::StatsMerge(&slot->live, flush->stats[i]);
		SpinLockRelease(&slot->mutex);
	}
}

void
OnXact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
		for (PendingFlush *f = pending; f != nullptr; f = f->next)
			GiveBack(f);
		pending = nullptr;
	} else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE) {
		pending = nullptr; // the rows are durable; the memory goes with the transaction
	}
}

void
OnSubXact(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent_subid, void *arg)
{
	PendingFlush **link = &pending;
	while (*link != nullptr) {
		PendingFlush *f = *link;
		if (f->subid == my_subid && event == SUBXACT_EVENT_ABORT_SUB) {
			GiveBack(f); // its rows were rolled back with the subtransaction
			*link = f->next;
			continue;
		}
		if (f->subid == my_subid && event == SUBXACT_EVENT_COMMIT_SUB)
			f->subid = parent_subid; // now it lives or dies with the parent
		link = &f->next;
	}
}

// Whether this backend's database is the worker's (thrillmon.database): asked once.
int worker_database_cached = -1; // -1: not yet known
bool
InWorkerDatabase()
{
	if (worker_database_cached < 0) {
		const char *mine = get_database_name(MyDatabaseId);
		worker_database_cached = (mine != nullptr && thrillmon::pg::worker_database != nullptr &&
		                          strcmp(mine, thrillmon::pg::worker_database) == 0)
		                             ? 1
		                             : 0;
	}
	return worker_database_cached == 1;
}

// Whether something flushes this database's observations: the worker's database always; another
// one when pg_cron runs its collection or collect_metrics() succeeded there in the last two days
// (thrillmon._observations_flushed()). A yes is trusted for ten minutes; a no is asked again.
TimestampTz flushed_until = 0;
void
RequireFlushedDatabase(const char *name)
{
	if (InWorkerDatabase())
		return;
	const TimestampTz now = GetCurrentTimestamp();
	if (now < flushed_until)
		return;
	bool flushed = true; // a schema before 0.7.0 (ALTER EXTENSION UPDATE not run yet) has no check
	if (thrillmon::pg::SpiInt64(
	        "SELECT (pg_catalog.to_regprocedure('thrillmon._observations_flushed()') IS NOT NULL)::int4::int8") != 0)
		flushed = thrillmon::pg::SpiInt64("SELECT thrillmon._observations_flushed()::int4::int8") != 0;
	if (!flushed)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		         errmsg("thrillmon: cannot observe \"%s\": nothing flushes observations in database \"%s\"", name,
		                get_database_name(MyDatabaseId)),
		         errdetail("The worker serves database \"%s\"; here no pg_cron job collects and collect_metrics() has "
		                   "not succeeded in the last two days, so observations would stay in shared memory for good.",
		                   thrillmon::pg::worker_database),
		         errhint("Observe in database \"%s\", or schedule collection here with "
		                 "thrillmon.schedule_with_pg_cron() (collect_metrics() flushes observations).",
		                 thrillmon::pg::worker_database)));
	flushed_until = now + 10 * 60 * USECS_PER_SEC;
}

// A slot and the generation a backend saw it with.
struct SlotRef {
	ObservedSlot *slot;
	uint32 generation;
};

// The slot for a name in this database, handing one out if new. Raises when shared memory is
// missing, full, or this database holds its quota, or nothing flushes this database.
SlotRef
SlotFor(const char *name, const char *category)
{
	thrillmon::pg::ObservedShared *shared = thrillmon::pg::GetObservedShared();
	if (shared == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("thrillmon: observe() needs thrillmon in shared_preload_libraries")));
	if (local_cache == nullptr) {
		HASHCTL info;
		memset(&info, 0, sizeof info);
		info.keysize = thrillmon::pg::kObservedNameBytes;
		info.entrysize = sizeof(LocalEntry);
		info.hcxt = TopMemoryContext;
		local_cache = hash_create("thrillmon observed names", 64, &info, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	bool found;
	LocalEntry *local = static_cast<LocalEntry *>(hash_search(local_cache, name, HASH_FIND, &found));
	if (found)
		return SlotRef {thrillmon::pg::GetObservedSlot(local->slot), local->generation};

	HTAB *index = thrillmon::pg::GetObservedIndex();
	thrillmon::pg::ObservedKey key;
	memset(&key, 0, sizeof key);
	key.dbid = MyDatabaseId;
	strlcpy(key.name, name, sizeof key.name);
	int slot_index = -1;
	uint32 generation = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	auto *entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_FIND, &found));
	if (found) {
		slot_index = entry->slot;
		generation = thrillmon::pg::GetObservedSlot(slot_index)->generation; // changes only under the exclusive lock
	}
	LWLockRelease(shared->lock);
	if (slot_index < 0) {
		// A new slot: only where something will flush it (SPI, so before taking the lock).
		RequireFlushedDatabase(name);
		const bool worker_db = InWorkerDatabase();
		const int quota = thrillmon::pg::max_observed_metrics_per_database;
		HTAB *databases = thrillmon::pg::GetObservedDatabases();
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_FIND, &found));
		auto *db = static_cast<thrillmon::pg::ObservedDatabaseEntry *>(
		    hash_search(databases, &MyDatabaseId, HASH_FIND, nullptr));
		const int held = db != nullptr ? db->slots : 0;
		if (found) {
			slot_index = entry->slot;
			generation = thrillmon::pg::GetObservedSlot(slot_index)->generation;
		} else if (shared->free_head < 0 && shared->used >= shared->capacity) {
			const int capacity = shared->capacity;
			LWLockRelease(shared->lock);
			ereport(
			    ERROR,
			    (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			     errmsg("thrillmon: cannot observe \"%s\": all %d observed-metric slots are in use", name, capacity),
			     errdetail("This database holds %d of them.", held),
			     errhint("Raise thrillmon.max_observed_metrics (needs a restart), or use fewer distinct names; a name "
			             "not observed for a whole collection interval gives its slot back.")));
		} else if (!thrillmon::ObservedQuotaAllows(worker_db, held, quota)) {
			LWLockRelease(shared->lock);
			ereport(ERROR,
			        (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			         errmsg("thrillmon: cannot observe \"%s\": this database holds %d observed-metric slots, "
			                "thrillmon.max_observed_metrics_per_database",
			                name, held),
			         errhint("Raise thrillmon.max_observed_metrics_per_database, or use fewer distinct names; a name "
			                 "not observed for a whole collection interval gives its slot back.")));
		} else {
			if (db == nullptr) {
				db = static_cast<thrillmon::pg::ObservedDatabaseEntry *>(
				    hash_search(databases, &MyDatabaseId, HASH_ENTER_NULL, &found));
				if (db == nullptr) {
					LWLockRelease(shared->lock);
					ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
					                errmsg("thrillmon: observed-metric database index is full")));
				}
				db->slots = 0;
			}
			entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_ENTER_NULL, &found));
			if (entry == nullptr) {
				LWLockRelease(shared->lock);
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("thrillmon: observed-metric index is full")));
			}
			const bool reuse = shared->free_head >= 0;
			slot_index = reuse ? shared->free_head : shared->used;
			ObservedSlot *slot = thrillmon::pg::GetObservedSlot(slot_index);
			if (reuse) {
				shared->free_head = slot->next_free;
			} else {
				SpinLockInit(&slot->mutex);
				slot->generation = 0;
			}
			SpinLockAcquire(&slot->mutex);
			slot->dbid = MyDatabaseId;
			strlcpy(slot->name, name, sizeof slot->name);
			strlcpy(slot->category, category, sizeof slot->category);
			thrillmon::StatsReset(&slot->live);
			slot->idle_flushes = 0;
			slot->last_flushed_at = GetCurrentTimestamp();
			slot->next_free = -1;
			generation = slot->generation;
			SpinLockRelease(&slot->mutex);
			entry->slot = slot_index;
			db->slots++;
			// Publish after the slot is initialised; readers of `used` take the lock or only
			// read slots below a value they read under it.
			if (!reuse)
				shared->used = slot_index + 1;
		}
		LWLockRelease(shared->lock);
	}
	local = static_cast<LocalEntry *>(hash_search(local_cache, name, HASH_ENTER, &found));
	local->slot = slot_index;
	local->generation = generation;
	return SlotRef {thrillmon::pg::GetObservedSlot(slot_index), generation};
}

// Adds one value to a slot if it is still the one the backend cached; false if it was given back.
bool
AddIfCurrent(const SlotRef &ref, double value)
{
	SpinLockAcquire(&ref.slot->mutex);
	const bool current = ref.slot->generation == ref.generation;
	if (current)
		thrillmon::StatsAdd(&ref.slot->live, value);
	SpinLockRelease(&ref.slot->mutex);
	return current;
}

// Gives back the slots listed (under the exclusive lock): those of this database that are idle,
// and those of any database nothing has flushed for two days. Each is checked again under its
// mutex, since an observation may have come since the flush looked. Returns the observations
// dropped with orphaned slots.
uint64
GiveBackSlots(const int *candidates, int n, TimestampTz now)
{
	thrillmon::pg::ObservedShared *shared = thrillmon::pg::GetObservedShared();
	HTAB *index = thrillmon::pg::GetObservedIndex();
	HTAB *databases = thrillmon::pg::GetObservedDatabases();
	uint64 dropped = 0;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int k = 0; k < n; k++) {
		ObservedSlot *slot = thrillmon::pg::GetObservedSlot(candidates[k]);
		thrillmon::pg::ObservedKey key;
		memset(&key, 0, sizeof key);
		SpinLockAcquire(&slot->mutex);
		const bool mine = slot->dbid == MyDatabaseId;
		const bool go =
		    OidIsValid(slot->dbid) && (mine ? thrillmon::ObservedSlotIdle(slot->idle_flushes, slot->live.count)
		                                    : thrillmon::ObservedSlotOrphaned(slot->last_flushed_at, now));
		if (go) {
			key.dbid = slot->dbid;
			strlcpy(key.name, slot->name, sizeof key.name);
			dropped += slot->live.count;
			thrillmon::StatsReset(&slot->live);
			slot->dbid = InvalidOid;
			slot->generation++;
		}
		SpinLockRelease(&slot->mutex);
		if (!go)
			continue;
		hash_search(index, &key, HASH_REMOVE, nullptr);
		auto *db =
		    static_cast<thrillmon::pg::ObservedDatabaseEntry *>(hash_search(databases, &key.dbid, HASH_FIND, nullptr));
		if (db != nullptr && --db->slots <= 0)
			hash_search(databases, &key.dbid, HASH_REMOVE, nullptr);
		slot->next_free = shared->free_head;
		shared->free_head = candidates[k];
	}
	LWLockRelease(shared->lock);
	return dropped;
}

// The last name this backend observed and its slot: a loop over one metric (one per request in
// a connection pool's backend, mostly the same few names) skips validation and the hash lookup.
// Plain storage; a slot pointer stays valid for the life of the shared memory segment.
char last_name[thrillmon::pg::kObservedNameBytes];
size_t last_name_len = 0;
SlotRef last_ref {nullptr, 0};

} // namespace

// observe(metric_name, value, metric_category): one observation, no table write.
THRILLMON_FUNCTION(thrillmon_observe)
{
	const std::optional<std::string_view> name = TextArg(fcinfo, 0);
	const std::optional<double> value = PG_ARGISNULL(1) ? std::nullopt : std::optional<double>(PG_GETARG_FLOAT8(1));
	const std::optional<std::string_view> category = TextArg(fcinfo, 2);

	// Fast path: the same name (already validated when its slot was made) and the same category
	// as last time; only the value needs checking.
	ObservedSlot *const last = last_ref.slot;
	if (last != nullptr && name && category && value && std::isfinite(*value) && name->size() == last_name_len &&
	    memcmp(name->data(), last_name, last_name_len) == 0 && category->size() < sizeof last->category &&
	    strncmp(last->category, category->data(), category->size()) == 0 && last->category[category->size()] == '\0' &&
	    AddIfCurrent(last_ref, *value))
		PG_RETURN_VOID();

	RunCore([&] { return thrillmon::ValidatePoint(name, value, category); });

	// Validated: at most 128 characters, so the name fits the fixed buffers.
	char name_buf[thrillmon::pg::kObservedNameBytes];
	char category_buf[16];
	const size_t name_len = Min(name->size(), sizeof name_buf - 1);
	memcpy(name_buf, name->data(), name_len);
	name_buf[name_len] = '\0';
	const size_t category_len = Min(category->size(), sizeof category_buf - 1);
	memcpy(category_buf, category->data(), category_len);
	category_buf[category_len] = '\0';

	// Twice at most: a cached slot found given back is forgotten, and the name looked up again.
	for (int attempt = 0; attempt < 2; attempt++) {
		const SlotRef ref = SlotFor(name_buf, category_buf);
		if (AddIfCurrent(ref, *value)) {
			memcpy(last_name, name_buf, name_len + 1);
			last_name_len = name_len;
			last_ref = ref;
			PG_RETURN_VOID();
		}
		hash_search(local_cache, name_buf, HASH_REMOVE, nullptr);
		last_ref = SlotRef {nullptr, 0};
	}
	ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
	                errmsg("thrillmon: cannot observe \"%s\": its slot was given back twice in a row", name_buf),
	                errhint("Try again.")));
	PG_RETURN_VOID();
}

// _flush_observations(at): one metric_time_series row per observed metric with observations
// since the last flush, stamped `at`; returns how many rows.
THRILLMON_FUNCTION(thrillmon_flush_observations)
{
	const TimestampTz at = PG_ARGISNULL(0) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(0);
	thrillmon::pg::ObservedShared *shared = thrillmon::pg::GetObservedShared();
	if (shared == nullptr)
		PG_RETURN_INT32(0); // not preloaded: nothing can have been observed
	if (!callbacks_registered) {
		RegisterXactCallback(OnXact, nullptr);
		RegisterSubXactCallback(OnSubXact, nullptr);
		callbacks_registered = true;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	// One flush at a time (the worker's and a manual collect_metrics()): each would otherwise
	// see the other's rows but not its pending statistics.
	thrillmon::pg::SpiJobLock(thrillmon::locks::kFlushObserved);

	LWLockAcquire(shared->lock, LW_SHARED);
	const int used = shared->used;
	LWLockRelease(shared->lock);

	// Take each slot's statistics; the memory lives until the transaction ends (callbacks).
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingFlush *flush = static_cast<PendingFlush *>(palloc0(sizeof(PendingFlush)));
	flush->slots = static_cast<int *>(palloc(sizeof(int) * (used > 0 ? used : 1)));
	flush->generations = static_cast<uint32 *>(palloc(sizeof(uint32) * (used > 0 ? used : 1)));
	flush->stats = static_cast<thrillmon::ObservationStats *>(
	    MemoryContextAllocHuge(TopTransactionContext, sizeof(thrillmon::ObservationStats) * (used > 0 ? used : 1)));
	MemoryContextSwitchTo(old);
	flush->subid = GetCurrentSubTransactionId();
	// Slots to give back: this database's idle ones, and any database's nothing has flushed for
	// two days (a dropped database's, one no longer collected).
	int *candidates = static_cast<int *>(palloc(sizeof(int) * (used > 0 ? used : 1)));
	int n_candidates = 0;
	const TimestampTz now = GetCurrentTimestamp();
	for (int i = 0; i < used; i++) {
		ObservedSlot *slot = thrillmon::pg::GetObservedSlot(i);
		SpinLockAcquire(&slot->mutex);
		if (slot->dbid == MyDatabaseId) {
			const bool had = slot->live.count > 0;
			if (had) {
				memcpy(&flush->stats[flush->n], &slot->live, sizeof(thrillmon::ObservationStats));
				thrillmon::StatsReset(&slot->live);
				flush->generations[flush->n] = slot->generation;
				flush->slots[flush->n++] = i;
			}
			slot->idle_flushes = thrillmon::ObservedIdleAfterFlush(slot->idle_flushes, had);
			slot->last_flushed_at = now;
			if (thrillmon::ObservedSlotIdle(slot->idle_flushes, slot->live.count))
				candidates[n_candidates++] = i;
		} else if (OidIsValid(slot->dbid) && thrillmon::ObservedSlotOrphaned(slot->last_flushed_at, now)) {
			candidates[n_candidates++] = i;
		}
		SpinLockRelease(&slot->mutex);
	}
	flush->next = pending;
	pending = flush; // from here on an abort gives them back
	if (n_candidates > 0) {
		const uint64 dropped = GiveBackSlots(candidates, n_candidates, now);
		if (dropped > 0)
			ereport(WARNING,
			        (errmsg("thrillmon: dropped %llu observations of a database nothing had flushed for two days",
			                static_cast<unsigned long long>(dropped))));
	}

	Oid types[11] = {TEXTOID,   TEXTOID,   FLOAT8OID, TIMESTAMPTZOID, INT8OID,  FLOAT8OID,
	                 FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,      FLOAT8OID};
	for (int k = 0; k < flush->n; k++) {
		const thrillmon::ObservationStats &s = flush->stats[k];
		ObservedSlot *slot = thrillmon::pg::GetObservedSlot(flush->slots[k]);
		// The core's quantile arithmetic is noexcept and allocation-free: no boundary needed.
		const double sum = thrillmon::StatsSumAsDouble(s);
		Datum values[11] = {CStringGetTextDatum(slot->name),
		                    CStringGetTextDatum(slot->category),
		                    Float8GetDatum(thrillmon::StatsMean(s)),
		                    TimestampTzGetDatum(at),
		                    Int64GetDatum(static_cast<int64>(s.count)),
		                    Float8GetDatum(std::isnan(sum) ? 0.0 : sum),
		                    Float8GetDatum(s.min),
		                    Float8GetDatum(s.max),
		                    Float8GetDatum(thrillmon::StatsQuantile(s, 0.50)),
		                    Float8GetDatum(thrillmon::StatsQuantile(s, 0.95)),
		                    Float8GetDatum(thrillmon::StatsQuantile(s, 0.99))};
		// A sum beyond the double range is reported as JSON null (the mean is still exact).
		const char nulls[11] = {' ', ' ', ' ', ' ', ' ', std::isnan(sum) ? 'n' : ' ', ' ', ' ', ' ', ' ', ' '};
		thrillmon::pg::SpiRun("INSERT INTO thrillmon.metric_time_series "
		                      "(metric_name, metric_category, metric_value, \"timestamp\", metadata) "
		                      "VALUES ($1, $2, $3, $4, pg_catalog.jsonb_build_object('source', 'observe', 'count', $5, "
		                      "'sum', $6, 'min', $7, 'max', $8, 'p50', $9, 'p95', $10, 'p99', $11))",
		                      SPI_OK_INSERT, 11, types, values, nulls);
	}
	SPI_finish();
	PG_RETURN_INT32(flush->n);
}
