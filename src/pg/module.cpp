// Module entry: PG_MODULE_MAGIC, _PG_init, the GUCs and the worker's registration.
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace thrillmon::pg {

// GUC storage must be plain C variables: guc.c writes them directly.
int partition_premake_days = 7;
char *worker_database = nullptr;
bool worker_enabled = true;
int collect_interval_s = 60;
int detect_interval_s = 300;
char *retention_time = nullptr;
int scheduler_mode = kSchedulerInternal;
int max_observed_metrics = 256;
int max_observed_metrics_per_database = 64;
int detect_threads = 2;
int detector_cache_size = 10000;
bool session_detector_cache = false;
bool corroborate_new_metrics = true;
int max_metrics_per_pass = 10000;
char *notify_allowed_hosts = nullptr;
int delivery_max_age_s = 86400;
int delivery_retry_max_s = 300;
int alertmanager_resend_interval_s = 60;

namespace {

const struct config_enum_entry kSchedulerOptions[] = {
    {"internal", kSchedulerInternal, false},
    {"pg_cron", kSchedulerPgCron, false},
    {"off", kSchedulerOff, false},
    {nullptr, 0, false},
};

// "HH:MM" (24-hour clock), what thrillmon.retention_time accepts.
bool
CheckRetentionTime(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	int h = -1, m = -1;
	char tail = '\0';
	if (v == nullptr || sscanf(v, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59) {
		GUC_check_errdetail("thrillmon.retention_time must be HH:MM on a 24-hour clock, like 03:00.");
		return false;
	}
	return true;
}

void
InitGucs()
{
	DefineCustomIntVariable("thrillmon.partition_premake_days",
	                        "Daily partitions of metric_time_series created ahead of today.",
	                        "maintain_partitions() keeps partitions from yesterday up to this many days ahead.",
	                        &partition_premake_days, 7, 0, 365, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("thrillmon.database", "Database the thrillmon worker serves.", nullptr, &worker_database,
	                           "postgres", PGC_POSTMASTER, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("thrillmon.enabled", "Whether the thrillmon worker runs its scheduled jobs.", nullptr,
	                         &worker_enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.collect_interval", "Seconds between metric collections (wall-clock slots).",
	                        nullptr, &collect_interval_s, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("thrillmon.detect_interval", "Seconds between anomaly detection passes (wall-clock slots).",
	                        nullptr, &detect_interval_s, 300, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("thrillmon.detect_threads",
	                        "Threads that score a detection pass, the backend's own included.",
	                        "A pass with many metrics scores them in this many threads (pure computation, one per "
	                        "64 metrics at most); 1 scores in the backend alone.",
	                        &detect_threads, 2, 1, 64, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.detector_cache_size",
	                        "Detectors the worker keeps between detection passes (about 24 kB each).",
	                        "Past it, the least recently used go, and are rebuilt from history when their metric comes "
	                        "back. A metric with only a few points holds no detector yet.",
	                        &detector_cache_size, 10000, 1, 1000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("thrillmon.session_detector_cache",
	                         "Keeps this session's detectors between its detection passes, as the worker does.",
	                         "Off, a session other than the worker gives its detectors back after each pass (they "
	                         "are only valid for the pass after it). On, a session that runs every pass itself "
	                         "(bench/detect.sh measures the worker's case this way) keeps up to "
	                         "thrillmon.detector_cache_size of them for its lifetime.",
	                         &session_detector_cache, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("thrillmon.corroborate_new_metrics",
	                         "A new metric's lone anomaly raises no alert until its detector is calibrated.",
	                         "On, an anomaly of a metric whose detector has not yet learned its calibration "
	                         "(min_data_points + 500 points) raises an alert only when another metric is anomalous "
	                         "in the same detection pass; it is recorded either way. Off, it alerts alone.",
	                         &corroborate_new_metrics, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.max_metrics_per_pass", "Distinct metrics one detection pass scores at most.",
	                        "Metrics past it (those with detectors kept come first) are left unscored in that pass, "
	                        "and health_check() says how many.",
	                        &max_metrics_per_pass, 10000, 1, 10000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("thrillmon.retention_time",
	                           "Time of day (HH:MM, server time zone) of the daily retention cleanup.", nullptr,
	                           &retention_time, "03:00", PGC_SIGHUP, 0, CheckRetentionTime, nullptr, nullptr);
	DefineCustomEnumVariable("thrillmon.scheduler", "Who runs thrillmon's jobs: internal (the worker), pg_cron or off.",
	                         "With pg_cron or off the worker runs no job on its own schedule.", &scheduler_mode,
	                         kSchedulerInternal, kSchedulerOptions, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.max_observed_metrics",
	                        "Distinct metric names observe() can hold in shared memory (about 8 kB each).",
	                        "A name not observed for a whole collection interval gives its slot back.",
	                        &max_observed_metrics, 256, 1, 100000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	// Its default is a quarter of the pool as configured (defined after it, so its value is read).
	DefineCustomIntVariable("thrillmon.max_observed_metrics_per_database",
	                        "observe() slots a database other than thrillmon.database may hold.",
	                        "The worker's database is bounded by thrillmon.max_observed_metrics only; the default is a "
	                        "quarter of it.",
	                        &max_observed_metrics_per_database, Max(1, max_observed_metrics / 4), 0, 100000, PGC_SIGHUP,
	                        0, nullptr, nullptr, nullptr);
	// Delivery. The allow-list is a superuser's: it decides which hosts an admin's channels (and
	// so the server, from inside the network) may send requests to; hidden from others.
	DefineCustomStringVariable("thrillmon.notify_allowed_hosts",
	                           "Hosts notification channels may reach: names, *.domain, addresses, CIDR networks, "
	                           "each optionally with :port; * for any. Empty: none.",
	                           "Checked when a channel is written and again before every request; redirects are not "
	                           "followed.",
	                           &notify_allowed_hosts, "", PGC_SUSET, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.delivery_max_age", "How long a delivery is retried before it is marked dead.",
	                        nullptr, &delivery_max_age_s, 86400, 60, 30 * 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr,
	                        nullptr, nullptr);
	DefineCustomIntVariable("thrillmon.delivery_retry_max", "The longest wait between two attempts of a delivery.",
	                        "Retries back off exponentially from one second, with jitter, up to this.",
	                        &delivery_retry_max_s, 300, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomIntVariable(
	    "thrillmon.alertmanager_resend_interval", "Seconds between re-sends of open alerts to Alertmanager channels.",
	    "Each send holds the alert open there for four intervals (its endsAt).", &alertmanager_resend_interval_s, 60, 5,
	    3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("thrillmon");
#else
	EmitWarningsOnPlaceholders("thrillmon");
#endif
}

void
RegisterWorker()
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof worker);
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10; // seconds; the postmaster restarts a worker that exits with 1
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "thrillmon");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "thrillmon_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "thrillmon collector");
	snprintf(worker.bgw_type, BGW_MAXLEN, "thrillmon collector");
	RegisterBackgroundWorker(&worker);

	// The delivery worker: its own process, so a receiver that is slow or down delays nothing else.
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "thrillmon_delivery_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "thrillmon delivery");
	snprintf(worker.bgw_type, BGW_MAXLEN, "thrillmon delivery");
	RegisterBackgroundWorker(&worker);
}

} // namespace
} // namespace thrillmon::pg

extern "C" void
_PG_init(void)
{
	// GUCs are defined whether or not the library is preloaded, so SET and SHOW work after the
	// first thrillmon function loads it; shared memory and the worker need preloading.
	thrillmon::pg::InitGucs();
	if (!process_shared_preload_libraries_in_progress)
		return;
	thrillmon::pg::InstallShmemHooks();
	thrillmon::pg::RegisterWorker();
}
