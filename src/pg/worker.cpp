// The background worker: serves thrillmon.database, runs collection on wall-clock slots,
// partition maintenance hourly and the retention cleanup daily, each job in transactions of its
// own, and never lets a failing job take it (or the postmaster) down.
//
// Everything here is C-style on purpose: PG_TRY/PG_CATCH is a sigsetjmp, and a longjmp must not
// skip a C++ destructor, so no function in this file owns a C++ object. The core's schedule
// functions used here take and return integers only.
#include "core/schedule.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void thrillmon_worker_main(Datum main_arg);
}

namespace {

bool in_worker = false; // set by thrillmon_worker_main

} // namespace

bool
thrillmon::pg::IsThrillmonWorker()
{
	return in_worker;
}

// One transaction, one SPI connection, one snapshot: the bracket every job runs in (the delivery
// worker's turns too).
void
thrillmon::pg::BeginTx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
thrillmon::pg::EndTx()
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, nullptr);
}

namespace {

using thrillmon::EpochMicros;

enum ExtensionState { kExtensionAbsent, kExtensionOutdated, kExtensionReady, kExtensionCitusWorker };

// What the worker has logged last, so a waiting worker says so once, not every tick.
enum Logged {
	kLoggedNothing,
	kLoggedStandby,
	kLoggedDisabled,
	kLoggedAbsent,
	kLoggedOutdated,
	kLoggedCitusWorker,
	kLoggedServing
};

struct WorkerState {
	bool ready;               // extension present and current, interrupted runs marked
	EpochMicros next_collect; // 0: recompute (start, settings reloaded)
	EpochMicros next_maintenance;
	int interval_s;          // the collect interval next_collect was computed for
	EpochMicros next_detect; // 0: recompute
	int detect_interval_s;   // the detect interval next_detect was computed for
	Logged logged;
	MemoryContext loop_ctx;
};

constexpr long kIdleSleepMs = 10000;
constexpr long kMaxSleepMs = 60000;
constexpr long kErrorBackoffMs = 5000;

EpochMicros
NowEpoch()
{
	return GetCurrentTimestamp() + thrillmon::kPostgresEpochOffsetMicros;
}

void
LogOnce(WorkerState *st, Logged what, const char *message)
{
	if (st->logged == what)
		return;
	st->logged = what;
	ereport(LOG, (errmsg("thrillmon worker: %s", message)));
}

using thrillmon::pg::BeginTx;
using thrillmon::pg::EndTx;

void
Exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	const int ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (ret != expected)
		elog(ERROR, "thrillmon: SPI returned %s for: %s", SPI_result_code_string(ret), sql);
}

bool
BoolResult(int row, int col)
{
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	return !isnull && DatumGetBool(d);
}

ExtensionState
CheckExtension()
{
	ExtensionState state = kExtensionAbsent;
	BeginTx("thrillmon: checking extension");
	// MVCC keeps an in-progress CREATE EXTENSION invisible until it commits.
	Exec("SELECT pg_catalog.to_regprocedure('thrillmon._worker_run_job(text,bigint,timestamptz)') IS NOT NULL "
	     "FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'thrillmon'",
	     0, nullptr, nullptr, nullptr, SPI_OK_SELECT);
	if (SPI_processed > 0)
		state = BoolResult(0, 1) ? kExtensionReady : kExtensionOutdated;
	// On a Citus worker node the extension is the coordinator's propagated copy: its tables hold
	// shards' shells, and the coordinator's worker runs every job for the cluster. Serving the
	// copy would make local partitions (which then block distributing) and store this node's
	// built-in metrics into the cluster's series a second time. Citus' metadata says which node
	// this is: group 0 is the coordinator (or a lone node), a worker node's group is above 0.
	if (state == kExtensionReady) {
		Exec("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL", 0, nullptr, nullptr,
		     nullptr, SPI_OK_SELECT);
		if (BoolResult(0, 1)) {
			Exec("SELECT groupid > 0 FROM pg_catalog.pg_dist_local_group", 0, nullptr, nullptr, nullptr, SPI_OK_SELECT);
			if (SPI_processed > 0 && BoolResult(0, 1))
				state = kExtensionCitusWorker;
		}
	}
	EndTx();
	return state;
}

struct Plan {
	bool cron_collect;
	bool cron_maintenance;
	bool cron_retention;
	bool retention_due;
	bool cron_detect;
	bool detect_available; // the installed version has detection (0.3.0 and later)
};

// Which jobs pg_cron has taken over, and whether today's retention run is due: the most recent
// thrillmon.retention_time (server time zone, so DST is Postgres' business) has passed with no
// retention run succeeding since. A server that was down at that time runs it at its next start;
// a run that failed or was cut short is tried again 15 minutes after it started.
Plan
QueryPlan()
{
	Plan plan {};
	BeginTx("thrillmon: planning");
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(thrillmon::pg::retention_time)};
	// Every operator is pg_catalog's by name, though the search_path is pinned too (see
	// thrillmon_worker_main): this runs as a superuser in a database someone else may own.
	// (OPERATOR() has one precedence for all operators: parenthesise.)
	Exec("WITH d AS (SELECT CASE WHEN pg_catalog.now() OPERATOR(pg_catalog.>=) t THEN t "
	     "                       ELSE t OPERATOR(pg_catalog.-) interval '1 day' END AS due "
	     "           FROM (SELECT (CURRENT_DATE OPERATOR(pg_catalog.+) $1::time)::timestamptz AS t) x), "
	     "     cron AS (SELECT c.job FROM thrillmon.pg_cron_jobs c), "
	     "     retention AS (SELECT j.status, j.started_at FROM thrillmon.job_runs j "
	     "                   WHERE j.job OPERATOR(pg_catalog.=) 'retention' AND j.target OPERATOR(pg_catalog.=) 'all') "
	     "SELECT EXISTS (SELECT 1 FROM cron WHERE job OPERATOR(pg_catalog.=) 'collect'), "
	     "       EXISTS (SELECT 1 FROM cron WHERE job OPERATOR(pg_catalog.=) 'maintenance'), "
	     "       EXISTS (SELECT 1 FROM cron WHERE job OPERATOR(pg_catalog.=) 'retention'), "
	     // Due: no run has succeeded since the due time, and none started in the last 15 minutes
	     // (a run that failed, was skipped or was cut short by a crash is retried after that).
	     "       NOT EXISTS (SELECT 1 FROM retention r, d WHERE r.status OPERATOR(pg_catalog.=) 'succeeded' "
	     "                   AND r.started_at OPERATOR(pg_catalog.>=) d.due) "
	     "       AND NOT EXISTS (SELECT 1 FROM retention r WHERE r.started_at OPERATOR(pg_catalog.>=) "
	     "                       (pg_catalog.now() OPERATOR(pg_catalog.-) interval '15 minutes')), "
	     "       EXISTS (SELECT 1 FROM cron WHERE job OPERATOR(pg_catalog.=) 'detect'), "
	     "       pg_catalog.to_regprocedure('thrillmon._detect_run()') IS NOT NULL",
	     1, types, values, nullptr, SPI_OK_SELECT);
	plan.cron_collect = BoolResult(0, 1);
	plan.cron_maintenance = BoolResult(0, 2);
	plan.cron_retention = BoolResult(0, 3);
	plan.retention_due = BoolResult(0, 4);
	plan.cron_detect = BoolResult(0, 5);
	plan.detect_available = BoolResult(0, 6);
	EndTx();
	return plan;
}

void
MarkInterruptedRuns()
{
	BeginTx("thrillmon: marking interrupted runs");
	Exec("SELECT thrillmon._mark_interrupted_runs()", 0, nullptr, nullptr, nullptr, SPI_OK_SELECT);
	EndTx();
}

// Runs one job: a committed 'running' row first (so a crash leaves evidence for the next start
// to mark), then the work in its own transaction; if that fails, the error is recorded in a
// third transaction (the work's transaction is gone with its error) and the worker goes on.
// Not inlined: its PG_TRY's setjmp must not share a frame with the caller's locals. Returns
// whether the job asks to run again at once (maintenance with days still waiting: a backlog is
// worked off in runs of a transaction each).
pg_noinline bool
RunJob(WorkerState *st, const char *job, const char *target, EpochMicros at)
{
	volatile int64 run_id = 0;
	volatile bool again = false;
	char activity[64];
	snprintf(activity, sizeof activity, "thrillmon: %s", job);
	thrillmon::pg::SharedSetState("running", job);

	BeginTx(activity);
	{
		Oid types[2] = {TEXTOID, TEXTOID};
		Datum values[2] = {CStringGetTextDatum(job), CStringGetTextDatum(target)};
		Exec("SELECT thrillmon._job_begin($1, $2)", 2, types, values, nullptr, SPI_OK_SELECT);
		bool isnull;
		run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	EndTx();

	PG_TRY();
	{
		BeginTx(activity);
		Oid types[3] = {TEXTOID, INT8OID, TIMESTAMPTZOID};
		Datum values[3] = {CStringGetTextDatum(job), Int64GetDatum(run_id),
		                   TimestampTzGetDatum(at - thrillmon::kPostgresEpochOffsetMicros)};
		Exec("SELECT coalesce((r OPERATOR(pg_catalog.->>) 'days_waiting')::int8, 0) OPERATOR(pg_catalog.>) 0 "
		     "FROM thrillmon._worker_run_job($1, $2, $3) r",
		     3, types, values, nullptr, SPI_OK_SELECT);
		again = BoolResult(0, 1);
		EndTx();
		thrillmon::pg::SharedJobFinished(job, false, nullptr);
	}
	PG_CATCH();
	{
		// Out of the error's memory context and transaction before anything else.
		MemoryContextSwitchTo(st->loop_ctx);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction(); // also releases SPI and the snapshot
		ereport(LOG, (errmsg("thrillmon worker: job %s failed: %s", job, edata->message)));
		thrillmon::pg::SharedJobFinished(job, true, edata->message);

		BeginTx("thrillmon: recording failure");
		Oid types[2] = {INT8OID, TEXTOID};
		Datum values[2] = {Int64GetDatum(run_id), CStringGetTextDatum(edata->message)};
		Exec("SELECT thrillmon._job_end($1, 'failed', NULL, NULL, $2)", 2, types, values, nullptr, SPI_OK_SELECT);
		EndTx();
	}
	PG_END_TRY();
	thrillmon::pg::SharedSetState("idle", "");
	return again;
}

// One pass: decide what is due, run it, and say how long to sleep. Not inlined into the main
// loop, whose PG_TRY would otherwise share its frame.
pg_noinline long
Tick(WorkerState *st)
{
	if (RecoveryInProgress()) {
		thrillmon::pg::SharedSetState("standby", "");
		LogOnce(st, kLoggedStandby, "server is a standby; no jobs run until promotion");
		st->ready = false;
		return kIdleSleepMs;
	}
	if (!thrillmon::pg::worker_enabled || thrillmon::pg::scheduler_mode != thrillmon::pg::kSchedulerInternal) {
		thrillmon::pg::SharedSetState("disabled", "");
		LogOnce(st, kLoggedDisabled, "internal scheduling is off (thrillmon.enabled or thrillmon.scheduler)");
		return kIdleSleepMs;
	}
	if (st->logged == kLoggedDisabled || st->logged == kLoggedStandby)
		LogOnce(st, kLoggedServing, "internal scheduling resumed");
	const ExtensionState ext = CheckExtension();
	if (ext == kExtensionCitusWorker) {
		thrillmon::pg::SharedSetState("citus worker node", "");
		LogOnce(st, kLoggedCitusWorker,
		        "this is a Citus worker node; no jobs run here (the coordinator's worker serves the cluster)");
		st->ready = false;
		return kIdleSleepMs;
	}
	if (ext != kExtensionReady) {
		thrillmon::pg::SharedSetState("waiting for extension", "");
		if (ext == kExtensionAbsent)
			LogOnce(st, kLoggedAbsent, "waiting for CREATE EXTENSION thrillmon");
		else
			LogOnce(st, kLoggedOutdated,
			        "installed thrillmon is older than the library; run ALTER EXTENSION thrillmon UPDATE");
		st->ready = false;
		return kIdleSleepMs;
	}
	if (!st->ready) {
		MarkInterruptedRuns();
		st->ready = true;
		st->next_maintenance = 0;
		st->next_collect = 0;
		st->next_detect = 0;
		LogOnce(st, kLoggedServing, "serving this database");
	}

	const Plan plan = QueryPlan();
	EpochMicros now = NowEpoch();
	const int interval = thrillmon::pg::collect_interval_s;
	if (st->next_collect == 0 || st->interval_s != interval) {
		st->next_collect = thrillmon::NextSlot(now, interval);
		st->interval_s = interval;
	}
	if (now >= st->next_maintenance) {
		const bool again = !plan.cron_maintenance && RunJob(st, "maintenance", "partitions", now);
		st->next_maintenance = again ? NowEpoch() : thrillmon::NextSlot(NowEpoch(), 3600);
	}
	now = NowEpoch();
	if (now >= st->next_collect) {
		// Stamp points with the slot, not the moment we got round to it, so they line up.
		if (!plan.cron_collect)
			RunJob(st, "collect", "scheduled", thrillmon::CurrentSlot(now, interval));
		st->next_collect = thrillmon::NextSlot(NowEpoch(), interval);
	}
	if (plan.retention_due && !plan.cron_retention)
		RunJob(st, "retention", "all", NowEpoch());
	// Detection after collection, so a pass sees the points just collected.
	const int detect_interval = thrillmon::pg::detect_interval_s;
	if (st->next_detect == 0 || st->detect_interval_s != detect_interval) {
		st->next_detect = thrillmon::NextSlot(NowEpoch(), detect_interval);
		st->detect_interval_s = detect_interval;
	}
	now = NowEpoch();
	if (now >= st->next_detect) {
		if (!plan.cron_detect && plan.detect_available)
			RunJob(st, "detect", "all", now);
		st->next_detect = thrillmon::NextSlot(NowEpoch(), detect_interval);
	}

	now = NowEpoch();
	EpochMicros next = st->next_collect < st->next_maintenance ? st->next_collect : st->next_maintenance;
	if (st->next_detect < next)
		next = st->next_detect;
	return thrillmon::MillisUntil(now, next, kMaxSleepMs);
}

void
WorkerExit(int code, Datum arg)
{
	thrillmon::pg::SharedSetState("stopped", "");
}

} // namespace

extern "C" void
thrillmon_worker_main(Datum main_arg)
{
	// SIGHUP: reload settings at the next tick; SIGTERM: die() ends us at the next
	// CHECK_FOR_INTERRUPTS (the postmaster restarts us after bgw_restart_time unless it is
	// shutting down).
	in_worker = true;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(thrillmon::pg::worker_database, nullptr, 0);
	// The worker is the bootstrap superuser in a database whose owner may be anyone, and the
	// database's (and role's) settings were applied when it connected: an owner's ALTER DATABASE
	// ... SET search_path would make every unqualified name the worker resolves the owner's (an
	// operator that runs ALTER ROLE ... SUPERUSER, say). So search_path is pinned to pg_catalog
	// and pg_temp at the highest priority a setting has; thrillmon's functions pin it again, and
	// a collector's query runs with its owner's privileges, its settings undone after it.
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("thrillmon");
	thrillmon::pg::SharedSetState("starting", "");
	before_shmem_exit(WorkerExit, (Datum) 0);

	WorkerState *st = static_cast<WorkerState *>(MemoryContextAllocZero(TopMemoryContext, sizeof(WorkerState)));
	st->loop_ctx = AllocSetContextCreate(TopMemoryContext, "thrillmon worker loop", ALLOCSET_DEFAULT_SIZES);

	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			st->next_collect = 0; // the interval may have changed: back onto the new grid
			st->next_detect = 0;
		}
		MemoryContextSwitchTo(st->loop_ctx);
		MemoryContextReset(st->loop_ctx);
		thrillmon::pg::SharedTick();

		volatile long sleep_ms = kErrorBackoffMs;
		PG_TRY();
		{
			sleep_ms = Tick(st);
		}
		PG_CATCH();
		{
			// Something outside a job failed (the extension dropped under us, say): log it,
			// clean up, back off, and try again; the worker never exits for an ERROR.
			MemoryContextSwitchTo(st->loop_ctx);
			ErrorData *edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			ereport(LOG, (errmsg("thrillmon worker: %s", edata->message)));
			thrillmon::pg::SharedSetState("error, retrying", "");
			st->ready = false;
			st->logged = kLoggedNothing;
			sleep_ms = kErrorBackoffMs;
		}
		PG_END_TRY();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
