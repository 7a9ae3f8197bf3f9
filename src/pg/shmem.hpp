// The worker's live state in shared memory, read by thrillmon.worker_status().
#pragma once

#include "core/sketch.hpp"

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
}

namespace thrillmon::pg {

struct WorkerShared {
	slock_t mutex;        // guards every field below; held only to copy a few words
	int pid;              // 0 when no worker is running
	char state[32];       // "starting", "idle", "running", "waiting for extension", ...
	char current_job[32]; // "" when idle
	char last_job[32];
	char last_error[512];
	TimestampTz started_at;
	TimestampTz last_tick_at;
	TimestampTz last_job_at;
	TimestampTz last_error_at;
	int64 jobs_run;
	int64 jobs_failed;
	// A SQL collector that went on after its timeout's cancel, whose session was therefore
	// terminated (collectors.cpp): the next collection in its database disables it.
	Oid defiant_db; // InvalidOid: none
	char defiant_collector[520];
	TimestampTz defiant_at;
};

// One observed metric (observe()): its statistics since the last flush. A slot is handed out per
// (database, name) and given back when its database's flushes find it empty twice in a row, or
// when nothing has flushed it for two days (a database dropped, or no longer collected): the
// core's ObservedSlotIdle/ObservedSlotOrphaned (core/observe_policy.hpp).
constexpr int kObservedNameBytes = 520; // 128 characters of up to 4 bytes, and the terminator
struct ObservedSlot {
	slock_t mutex; // guards every field below; held for one StatsAdd/copy, never across a Postgres call
	// InvalidOid: free. Changed (with name, category, generation) only under ObservedShared::lock
	// held exclusive *and* this mutex, so a reader holding either sees a consistent slot.
	Oid dbid;
	// Bumped whenever the slot is given back: a backend caches (slot, generation) for a name, and
	// finds its cache stale when they differ, under the mutex, before it adds anything.
	uint32 generation;
	int idle_flushes;            // its database's flushes in a row that found it empty
	TimestampTz last_flushed_at; // its database's last flush (or when it was handed out)
	int next_free;               // free list link (-1: end), under ObservedShared::lock
	char name[kObservedNameBytes];
	char category[16];
	thrillmon::ObservationStats live;
};

struct ObservedShared {
	LWLock *lock; // guards the indexes, the free list and `used` (shared to look up, exclusive to change)
	int capacity;
	int used;      // slots [0, used) have been initialised; read under lock, or as a lower bound without it
	int free_head; // a slot below `used` given back (-1: none)
};

// NULL when not preloaded.
ObservedShared *GetObservedShared();
ObservedSlot *GetObservedSlot(int index);
// The shared name -> slot index table (dynahash in shared memory); guarded by ObservedShared::lock.
struct ObservedKey {
	Oid dbid;
	char name[kObservedNameBytes]; // zero-padded: the key is compared as bytes
};
struct ObservedIndexEntry {
	ObservedKey key;
	int slot;
};
HTAB *GetObservedIndex();
// Slots held per database (for thrillmon.max_observed_metrics_per_database); same lock.
struct ObservedDatabaseEntry {
	Oid dbid;
	int slots;
};
HTAB *GetObservedDatabases();

// Chains the shmem hooks; call from _PG_init when preloading.
void InstallShmemHooks();

// NULL when the library was not preloaded (no shared memory was reserved for it).
WorkerShared *GetWorkerShared();

// Helpers that take the spinlock; strings are truncated to fit.
void SharedSetState(const char *state, const char *current_job);
void SharedJobFinished(const char *job, bool failed, const char *error);
void SharedTick();
// Records the defiant collector (called at process exit, not in a signal handler).
void SharedSetDefiant(Oid db, const char *collector);
// Takes (and clears) this database's defiant collector into out (size bytes); false if none.
bool SharedTakeDefiant(Oid db, char *out, size_t size, TimestampTz *at);

} // namespace thrillmon::pg
