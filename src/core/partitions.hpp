// Daily partitions of thrillmon.metric_time_series: which exist, which to make, which to drop.
//
// A partition covers one UTC day [00:00, next 00:00) and is named metric_time_series_pYYYYMMDD,
// so its bounds can be read back from its name without parsing pg_get_expr() output (whose text
// depends on the session's TimeZone and DateStyle). Partitions with other names are never touched.
#pragma once
#include "core/no_postgres.hpp"

#include "core/civil_time.hpp"

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
std::optional<DailyPartition>
PartitionForDay(std::int64_t day);

// The day a partition name stands for, or std::nullopt when the name is not one of ours.
std::optional<std::int64_t>
ParsePartitionName(const std::string &relname);

// Days that should exist ahead of time: from yesterday to premake_days after today, in order.
std::vector<std::int64_t>
PremakeDays(EpochMicros now, int premake_days);

// What retention does to the daily partitions, given the cut-off: partitions entirely older
// than it are dropped whole; the one partition containing it has only its older rows deleted.
struct MetricRetentionPlan {
	std::vector<std::int64_t> drop_days;       // upper bound <= cutoff
	std::optional<std::int64_t> straddling_day; // lower bound < cutoff < upper bound
};

MetricRetentionPlan
PlanMetricRetention(std::vector<std::int64_t> existing_days, EpochMicros cutoff);

} // namespace thrillmon
