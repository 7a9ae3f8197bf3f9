// observe(): high-frequency observations aggregated in shared memory, and their flush.
//
// The hot path takes no lock shared by all backends: a backend-local cache maps the name to its
// slot (the shared index, under an LWLock, is consulted once per name and backend), and the
// update holds only that slot's spinlock for one StatsAdd. The flush moves each slot's
// statistics out under the same spinlock and inserts one row per metric; if the flushing
// (sub)transaction aborts, what it took is merged back, so an observation is flushed exactly
// once. What is still in shared memory when the postmaster stops is lost (at most one interval).
#include <cmath>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/locks.hpp"
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
};
HTAB *local_cache = nullptr;

// A flush not yet committed: the statistics it took, to give back if its (sub)transaction aborts.
struct PendingFlush {
	SubTransactionId subid; // the subtransaction whose fate the rows share
	int n;
	int *slots;
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

// The slot for a name, creating it if new. Raises when shared memory is missing or full.
ObservedSlot *
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
		return thrillmon::pg::GetObservedSlot(local->slot);

	HTAB *index = thrillmon::pg::GetObservedIndex();
	thrillmon::pg::ObservedKey key;
	memset(&key, 0, sizeof key);
	key.dbid = MyDatabaseId;
	strlcpy(key.name, name, sizeof key.name);
	int slot_index = -1;
	LWLockAcquire(shared->lock, LW_SHARED);
	auto *entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_FIND, &found));
	if (found)
		slot_index = entry->slot;
	LWLockRelease(shared->lock);
	if (slot_index < 0) {
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_FIND, &found));
		if (found) {
			slot_index = entry->slot;
		} else if (shared->used >= shared->capacity) {
			const int capacity = shared->capacity;
			LWLockRelease(shared->lock);
			ereport(
			    ERROR,
			    (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			     errmsg("thrillmon: cannot observe \"%s\": all %d observed-metric slots are in use", name, capacity),
			     errhint("Raise thrillmon.max_observed_metrics (needs a restart), or use fewer distinct names.")));
		} else {
			slot_index = shared->used;
			ObservedSlot *slot = thrillmon::pg::GetObservedSlot(slot_index);
			SpinLockInit(&slot->mutex);
			slot->dbid = MyDatabaseId;
			strlcpy(slot->name, name, sizeof slot->name);
			strlcpy(slot->category, category, sizeof slot->category);
			thrillmon::StatsReset(&slot->live);
			entry = static_cast<thrillmon::pg::ObservedIndexEntry *>(hash_search(index, &key, HASH_ENTER_NULL, &found));
			if (entry == nullptr) {
				LWLockRelease(shared->lock);
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("thrillmon: observed-metric index is full")));
			}
			entry->slot = slot_index;
			// Publish after the slot is initialised; readers of `used` take the lock or only
			// read slots below a value they read under it.
			shared->used = slot_index + 1;
		}
		LWLockRelease(shared->lock);
	}
	local = static_cast<LocalEntry *>(hash_search(local_cache, name, HASH_ENTER, &found));
	local->slot = slot_index;
	return thrillmon::pg::GetObservedSlot(slot_index);
}

// The last name this backend observed and its slot: a loop over one metric (one per request in
// a connection pool's backend, mostly the same few names) skips validation and the hash lookup.
// Plain storage; a slot pointer stays valid for the life of the shared memory segment.
char last_name[thrillmon::pg::kObservedNameBytes];
size_t last_name_len = 0;
ObservedSlot *last_slot = nullptr;

} // namespace

// observe(metric_name, value, metric_category): one observation, no table write.
THRILLMON_FUNCTION(thrillmon_observe)
{
	const std::optional<std::string_view> name = TextArg(fcinfo, 0);
	const std::optional<double> value = PG_ARGISNULL(1) ? std::nullopt : std::optional<double>(PG_GETARG_FLOAT8(1));
	const std::optional<std::string_view> category = TextArg(fcinfo, 2);

	// Fast path: the same name (already validated when its slot was made) and the same category
	// as last time; only the value needs checking.
	if (last_slot != nullptr && name && category && value && std::isfinite(*value) && name->size() == last_name_len &&
	    memcmp(name->data(), last_name, last_name_len) == 0 && category->size() < sizeof last_slot->category &&
	    strncmp(last_slot->category, category->data(), category->size()) == 0 &&
	    last_slot->category[category->size()] == '\0') {
		SpinLockAcquire(&last_slot->mutex);
		thrillmon::StatsAdd(&last_slot->live, *value);
		SpinLockRelease(&last_slot->mutex);
		PG_RETURN_VOID();
	}

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

	ObservedSlot *slot = SlotFor(name_buf, category_buf);
	memcpy(last_name, name_buf, name_len + 1);
	last_name_len = name_len;
	last_slot = slot;
	SpinLockAcquire(&slot->mutex);
	thrillmon::StatsAdd(&slot->live, *value);
	SpinLockRelease(&slot->mutex);
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
	flush->stats = static_cast<thrillmon::ObservationStats *>(
	    MemoryContextAllocHuge(TopTransactionContext, sizeof(thrillmon::ObservationStats) * (used > 0 ? used : 1)));
	MemoryContextSwitchTo(old);
	flush->subid = GetCurrentSubTransactionId();
	for (int i = 0; i < used; i++) {
		ObservedSlot *slot = thrillmon::pg::GetObservedSlot(i);
		if (slot->dbid != MyDatabaseId) // set once, before the slot was published
			continue;
		SpinLockAcquire(&slot->mutex);
		if (slot->live.count > 0) {
			memcpy(&flush->stats[flush->n], &slot->live, sizeof(thrillmon::ObservationStats));
			thrillmon::StatsReset(&slot->live);
			flush->slots[flush->n++] = i;
		}
		SpinLockRelease(&slot->mutex);
	}
	flush->next = pending;
	pending = flush; // from here on an abort gives them back

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
