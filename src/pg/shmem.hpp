// The worker's live state in shared memory, read by thrillmon.worker_status().
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/spin.h"
}

namespace thrillmon::pg {

struct WorkerShared {
	slock_t mutex;         // guards every field below; held only to copy a few words
	int pid;               // 0 when no worker is running
	char state[32];        // "starting", "idle", "running", "waiting for extension", ...
	char current_job[32];  // "" when idle
	char last_job[32];
	char last_error[512];
	TimestampTz started_at;
	TimestampTz last_tick_at;
	TimestampTz last_job_at;
	TimestampTz last_error_at;
	int64 jobs_run;
	int64 jobs_failed;
};

// Chains the shmem hooks; call from _PG_init when preloading.
void
InstallShmemHooks();

// NULL when the library was not preloaded (no shared memory was reserved for it).
WorkerShared *
GetWorkerShared();

// Helpers that take the spinlock; strings are truncated to fit.
void
SharedSetState(const char *state, const char *current_job);
void
SharedJobFinished(const char *job, bool failed, const char *error);
void
SharedTick();

} // namespace thrillmon::pg
