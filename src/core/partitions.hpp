// Daily partitions of thrillmon.metric_time_series: which exist, which to make, which to drop.
//
// A partition covers one UTC day [00:00, next 00:00) and is named metric_time_series_pYYYYMMDD,
// so its bounds can be read back from its name without parsing pg_get_expr() output (whose text
// depends on the session's TimeZone and DateStyle). Partitions with other names are never touched.
#pragma once
#include "core/no_postgres.hpp"

#include "core/civil_time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace thrillmon {

constexpr const char *kPartitionPrefix = "metric_time_series_p";

struct DailyPartition {
	std::int64_t day;  // days since 1970-01-01 (UTC)
	std::string name;  // metric_time_series_pYYYYMMDD
	std::string lower; // timestamptz literal of the inclusive lower bound, in UTC
	std::string upper; // timestamptz literal of the exclusive upper bound, in UTC
};

// The partition for a UTC day; std::nullopt where the day or the next one falls outside years
// 1..9999 (rows there stay in the default partition).
std::optional<DailyPartition> PartitionForDay(std::int64_t day);

// The day a partition name stands for, or std::nullopt when the name is not one of ours.
std::optional<std::int64_t> ParsePartitionName(const std::string &relname);

// Days that should exist ahead of time: from yesterday to premake_days after today, in order.
std::vector<std::int64_t> PremakeDays(EpochMicros now, int premake_days);

// Partitions one maintenance run makes at most: it holds the lock that blocks every insert
// while it makes them, so a backlog (a backfill of many days) is worked off in runs of this many,
// each in a transaction of its own (the worker runs the next one at once).
constexpr std::size_t kMaxPartitionsPerRun = 32;

// What one maintenance run does. Partitions are made only for the days from the one holding the
// metrics' retention cut-off (older days would be dropped by the next cleanup, whose DELETE takes
// their rows from the default partition anyway) to premake_days after today (a point dated later,
// which only a direct INSERT can write, waits in the default partition until its day comes within
// reach): so how many partitions exist is the configuration's to decide, not a writer's.
struct MaintenancePlan {
	std::vector<std::int64_t> create; // days to make now, in day order: at most the cap, chosen
	                                  // premade days nearest first, then waiting days newest first
	std::size_t waiting = 0;          // days within reach left for the next run (the cap)
	std::int64_t first_day = 0;       // the window of days partitions are made for
	std::int64_t last_day = 0;
};

// existing: the days that have a partition; pending: days with rows in the default partition;
// retention_cutoff: the metrics policy's cut-off, when retention is enabled.
MaintenancePlan PlanMaintenance(EpochMicros now, int premake_days, const std::vector<std::int64_t> &existing,
                                const std::vector<std::int64_t> &pending, std::optional<EpochMicros> retention_cutoff,
                                std::size_t cap = kMaxPartitionsPerRun);

// What retention does to the daily partitions, given the cut-off: the partitions whose whole day
// ended at or before it are dropped. The one partition containing the cut-off is left whole (its
// older rows go with it once its day has expired too), so retention never reads or deletes rows
// of a daily partition, and a point goes once it is between retention_days and retention_days + 1
// day old.
struct MetricRetentionPlan {
	std::vector<std::int64_t> drop_days; // upper bound <= cutoff, in order
};

MetricRetentionPlan PlanMetricRetention(std::vector<std::int64_t> existing_days, EpochMicros cutoff);

// ANALYZE samples 300 rows per unit of statistics target, and reads as many pages as it wants
// rows (analyze.c: minrows = 300 * attstattarget; BlockSampler takes every block when there are
// no more blocks than that). A table no larger has every page read and its live rows counted,
// not extrapolated, so the pg_class.reltuples it writes is exact.
constexpr std::int64_t kAnalyzeRowsPerStatisticsTarget = 300;

// The largest table (in pages) that ANALYZE reads in full at a statistics target.
std::int64_t AnalyzeFullReadPages(int statistics_target);

// What Postgres knows about a partition's rows without reading them.
struct PartitionStatistics {
	double reltuples = -1;                  // pg_class.reltuples: -1 until ANALYZE or VACUUM ran
	std::int64_t relpages = 0;              // pg_class.relpages: the size that run saw
	std::int64_t pages_now = 0;             // the size now
	std::int64_t changes_since_analyze = 0; // rows changed since, as reported by every session
	std::int64_t unreported_changes = 0;    // rows changed by this session, not reported yet
	bool analyzed_last = false;             // an ANALYZE is on record and no VACUUM ran after it
	int statistics_target = 0;              // largest per-column target (default_statistics_target unless set)
};

// The partition's exact number of rows when its statistics hold it, std::nullopt when only
// reading the rows can tell. Exact means: the last ANALYZE read every page (so it counted, not
// estimated), nothing changed since (no row change reported or pending in this session, same
// size), and no VACUUM overwrote reltuples with its own extrapolation afterwards.
std::optional<std::int64_t> ExactRowsFromStatistics(const PartitionStatistics &stats);

// A daily partition and its statistics, for choosing what partition maintenance analyses.
struct DailyPartitionStatistics {
	std::int64_t day;
	PartitionStatistics stats;
};

// The daily partitions maintenance should ANALYZE so that retention can take their row counts
// from statistics: days that are over at `now`, whose statistics are not exact, and that ANALYZE
// can count exactly (no larger than it reads in full). Newest first, at most max_days of them.
std::vector<std::int64_t> DaysToAnalyze(std::vector<DailyPartitionStatistics> partitions, EpochMicros now,
                                        std::size_t max_days);

} // namespace thrillmon
