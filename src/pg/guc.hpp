// GUC variables shared across the glue (defined in module.cpp).
#pragma once

namespace thrillmon::pg {

enum SchedulerMode { kSchedulerInternal = 0, kSchedulerPgCron = 1, kSchedulerOff = 2 };

extern int partition_premake_days;
extern char *worker_database;
extern bool worker_enabled;
extern int collect_interval_s;
extern int detect_interval_s;
extern char *retention_time;
extern int scheduler_mode;
extern int max_observed_metrics;
extern int max_observed_metrics_per_database;
extern int detect_threads;
extern int detector_cache_size;
extern bool session_detector_cache;
extern bool corroborate_new_metrics;
extern int max_metrics_per_pass;
extern char *notify_allowed_hosts;
extern int delivery_max_age_s;
extern int delivery_retry_max_s;
extern int alertmanager_resend_interval_s;

} // namespace thrillmon::pg
