// The locks thrillmon serialises its jobs with, in one registry. Each is a row of
// thrillmon.job_locks, which the build fills from here (src/tools/sqlgen.cpp), and a job locks its
// row FOR UPDATE for the length of its transaction: locking a row needs UPDATE on the table, which
// no role is granted, so no session but thrillmon's own can take one. (An advisory lock, which any
// role that can connect may take, let anyone stop every job.) The glue locks them by name from
// here; the SQL sources name them as a placeholder the build checks. kClass and the keys are the
// advisory locks of 0.6.0 and before, still taken where the schema has no job_locks table yet
// (the library updated, ALTER EXTENSION UPDATE not run).
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <string_view>

namespace thrillmon::locks {

constexpr std::int32_t kClass = 0x7448524c; // "tHRL", 1950896716

struct Lock {
	std::string_view name;
	std::int32_t key;
	const char *serialises;
};

// Transaction-scoped, every one of them: none can outlive a caller that errors out.
inline constexpr Lock kMaintainPartitions {"maintain_partitions", 1,
                                           "partition maintenance with itself and with metric retention"};
inline constexpr Lock kMetricRetention {"metric_retention", 2, "metric retention (dropping daily partitions)"};
inline constexpr Lock kRetentionCleanup {"retention_cleanup", 3,
                                         "run_data_retention_cleanup() (tried: a second caller skips)"};
inline constexpr Lock kFlushObserved {"flush_observed", 4, "flushes of observe()'s shared memory"};
inline constexpr Lock kDetectPass {"detect_pass", 5, "detection passes"};

inline constexpr Lock kAll[] = {kMaintainPartitions, kMetricRetention, kRetentionCleanup, kFlushObserved, kDetectPass};

// The lock of that name, or nullptr.
constexpr const Lock *
Find(std::string_view name)
{
	for (const Lock &l : kAll)
		if (l.name == name)
			return &l;
	return nullptr;
}

} // namespace thrillmon::locks
