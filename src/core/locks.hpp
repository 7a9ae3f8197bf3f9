// The advisory locks thrillmon serialises its jobs with, in one registry. They are taken in the
// two-int form pg_advisory_xact_lock(kClass, key): kClass keeps them apart from an application's
// own advisory locks. The glue takes them by name from here, and the SQL sources say
// @lock:retention_cleanup@ (or @lock_key:...@) and get these numbers from the build
// (src/tools/sqlgen.cpp), so no key is written down twice.
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
