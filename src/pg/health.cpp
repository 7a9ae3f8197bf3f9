// Health: worker_status(), the worker's live state read from shared memory. health_check() and
// system_health are SQL (80_health.sql) over it and the job history.
#include <cstring>

#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

// worker_status(): the worker's shared-memory state, with pid NULL unless it is alive.
THRILLMON_FUNCTION(thrillmon_worker_status)
{
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "thrillmon: return type must be a row type");
	Datum values[12];
	bool nulls[12];
	memset(nulls, true, sizeof nulls);

	thrillmon::pg::WorkerShared *shared = thrillmon::pg::GetWorkerShared();
	if (shared == nullptr) {
		values[1] = CStringGetTextDatum("not loaded (add thrillmon to shared_preload_libraries)");
		nulls[1] = false;
	} else {
		thrillmon::pg::WorkerShared copy;
		SpinLockAcquire(&shared->mutex);
		memcpy(&copy, shared, sizeof copy);
		SpinLockRelease(&shared->mutex);
		const bool alive = copy.pid != 0 && BackendPidGetProc(copy.pid) != nullptr;
		if (alive) {
			values[0] = Int32GetDatum(copy.pid);
			nulls[0] = false;
		}
		values[1] = CStringGetTextDatum(alive ? copy.state : "not running");
		nulls[1] = false;
		values[2] = CStringGetTextDatum(thrillmon::pg::worker_database);
		nulls[2] = false;
		const TimestampTz times[4] = {copy.started_at, copy.last_tick_at, copy.last_job_at, copy.last_error_at};
		const int time_cols[4] = {3, 4, 7, 9};
		for (int i = 0; i < 4; i++)
			if (times[i] != 0) {
				values[time_cols[i]] = TimestampTzGetDatum(times[i]);
				nulls[time_cols[i]] = false;
			}
		if (alive && copy.current_job[0] != '\0') {
			values[5] = CStringGetTextDatum(copy.current_job);
			nulls[5] = false;
		}
		if (copy.last_job[0] != '\0') {
			values[6] = CStringGetTextDatum(copy.last_job);
			nulls[6] = false;
		}
		if (copy.last_error[0] != '\0') {
			values[8] = CStringGetTextDatum(copy.last_error);
			nulls[8] = false;
		}
		values[10] = Int64GetDatum(copy.jobs_run);
		values[11] = Int64GetDatum(copy.jobs_failed);
		nulls[10] = nulls[11] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
