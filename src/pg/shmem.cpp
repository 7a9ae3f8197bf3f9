// Shared memory for the worker's state. PG 15 wants space requested from shmem_request_hook;
// request and initialisation of the one struct sit next to each other here.
#include <cstring>

#include "core/sketch.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
}

namespace thrillmon::pg {

namespace {

// Plain pointers (no static constructors in the glue): set by the hooks below.
WorkerShared *worker_shared = nullptr;
ObservedShared *observed_shared = nullptr;
ObservedSlot *observed_slots = nullptr;
HTAB *observed_index = nullptr;
HTAB *observed_databases = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
#if PG_VERSION_NUM >= 150000
shmem_request_hook_type prev_shmem_request_hook = nullptr;
#endif

void
ShmemRequest()
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
	// observe(): a header, the slots, and the name index.
	RequestAddinShmemSpace(MAXALIGN(sizeof(ObservedShared)) + mul_size(max_observed_metrics, sizeof(ObservedSlot)));
	RequestAddinShmemSpace(hash_estimate_size(max_observed_metrics, sizeof(ObservedIndexEntry)));
	RequestAddinShmemSpace(hash_estimate_size(max_observed_metrics, sizeof(ObservedDatabaseEntry)));
	RequestNamedLWLockTranche("thrillmon observed", 1);
}

void
ShmemStartup()
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found = false;
	worker_shared = static_cast<WorkerShared *>(ShmemInitStruct("thrillmon worker", sizeof(WorkerShared), &found));
	if (!found) {
		std::memset(worker_shared, 0, sizeof(WorkerShared));
		SpinLockInit(&worker_shared->mutex);
		std::strcpy(worker_shared->state, "not started");
	}

	observed_shared = static_cast<ObservedShared *>(ShmemInitStruct(
	    "thrillmon observed", MAXALIGN(sizeof(ObservedShared)) + mul_size(max_observed_metrics, sizeof(ObservedSlot)),
	    &found));
	observed_slots =
	    reinterpret_cast<ObservedSlot *>(reinterpret_cast<char *>(observed_shared) + MAXALIGN(sizeof(ObservedShared)));
	if (!found) {
		observed_shared->lock = &(GetNamedLWLockTranche("thrillmon observed"))->lock;
		observed_shared->capacity = max_observed_metrics;
		observed_shared->used = 0;
		observed_shared->free_head = -1;
	}
	HASHCTL info;
	memset(&info, 0, sizeof info);
	info.keysize = sizeof(ObservedKey);
	info.entrysize = sizeof(ObservedIndexEntry);
	observed_index = ShmemInitHash("thrillmon observed index", max_observed_metrics, max_observed_metrics, &info,
	                               HASH_ELEM | HASH_BLOBS);
	// At most one database per slot in use.
	memset(&info, 0, sizeof info);
	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(ObservedDatabaseEntry);
	observed_databases = ShmemInitHash("thrillmon observed databases", max_observed_metrics, max_observed_metrics,
	                                   &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
CopyField(char *dst, size_t size, const char *src)
{
	size_t n = src ? std::strlen(src) : 0;
	if (n >= size)
		n = size - 1;
	if (n > 0)
		std::memcpy(dst, src, n);
	dst[n] = '\0';
}

} // namespace

void
InstallShmemHooks()
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ShmemRequest;
#else
	ShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ShmemStartup;
}

WorkerShared *
GetWorkerShared()
{
	return worker_shared;
}

ObservedShared *
GetObservedShared()
{
	return observed_shared;
}

ObservedSlot *
GetObservedSlot(int index)
{
	return &observed_slots[index];
}

HTAB *
GetObservedIndex()
{
	return observed_index;
}

HTAB *
GetObservedDatabases()
{
	return observed_databases;
}

void
SharedSetState(const char *state, const char *current_job)
{
	if (!worker_shared)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	CopyField(worker_shared->state, sizeof worker_shared->state, state);
	CopyField(worker_shared->current_job, sizeof worker_shared->current_job, current_job);
	if (std::strcmp(state, "starting") == 0) {
		worker_shared->pid = MyProcPid;
		worker_shared->started_at = GetCurrentTimestamp();
	} else if (std::strcmp(state, "stopped") == 0) {
		worker_shared->pid = 0;
	}
	SpinLockRelease(&worker_shared->mutex);
}

void
SharedJobFinished(const char *job, bool failed, const char *error)
{
	if (!worker_shared)
		return;
	const TimestampTz now = GetCurrentTimestamp();
	SpinLockAcquire(&worker_shared->mutex);
	CopyField(worker_shared->last_job, sizeof worker_shared->last_job, job);
	worker_shared->last_job_at = now;
	worker_shared->jobs_run++;
	if (failed) {
		worker_shared->jobs_failed++;
		CopyField(worker_shared->last_error, sizeof worker_shared->last_error, error);
		worker_shared->last_error_at = now;
	}
	SpinLockRelease(&worker_shared->mutex);
}

void
SharedTick()
{
	if (!worker_shared)
		return;
	const TimestampTz now = GetCurrentTimestamp();
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->last_tick_at = now;
	SpinLockRelease(&worker_shared->mutex);
}

void
SharedSetDefiant(Oid db, const char *collector)
{
	if (!worker_shared)
		return;
	const TimestampTz now = GetCurrentTimestamp();
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->defiant_db = db;
	CopyField(worker_shared->defiant_collector, sizeof worker_shared->defiant_collector, collector);
	worker_shared->defiant_at = now;
	SpinLockRelease(&worker_shared->mutex);
}

bool
SharedTakeDefiant(Oid db, char *out, size_t size, TimestampTz *at)
{
	if (!worker_shared)
		return false;
	bool found = false;
	SpinLockAcquire(&worker_shared->mutex);
	if (OidIsValid(worker_shared->defiant_db) && worker_shared->defiant_db == db) {
		CopyField(out, size, worker_shared->defiant_collector);
		*at = worker_shared->defiant_at;
		worker_shared->defiant_db = InvalidOid;
		found = true;
	}
	SpinLockRelease(&worker_shared->mutex);
	return found;
}

} // namespace thrillmon::pg
