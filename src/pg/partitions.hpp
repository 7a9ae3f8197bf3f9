// What partition maintenance (partitions.cpp) and metric retention (retention.cpp) share: the
// daily partitions as plain data, read from the catalogs, and the SQL result shapes. Plain
// C-style structs and functions: they cross the boundary as they are (no destructor), and the
// functions ereport, so callers hold no C++ object when they call them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/partitions.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
}

namespace thrillmon::pg {

// A daily partition as the core names it, in fixed buffers.
struct PlainPartition {
	int64_t day;
	bool valid; // false where the day has no partition (outside years 1..9999), or a bug
	char name[64];
	char lower[32];
	char upper[32];
};

// Fills out for day. Builds std::strings: call it inside the compute phase (RunCore) only.
void FillPartition(PlainPartition *out, int64_t day);

// Days of the existing daily partitions (names parsed by the core; other partitions ignored), in
// palloc'd memory of the caller's context.
int ExistingPartitionDays(int64_t **days_out);

// A partition's name and statistics (read from the catalogs, judged by the core). The core's
// PartitionStatistics is plain numbers, so it can live in palloc'd memory as it is.
struct PlainStatistics {
	char name[64];
	thrillmon::PartitionStatistics s;
};
static_assert(std::is_trivially_copyable<thrillmon::PartitionStatistics>::value &&
                  std::is_trivially_destructible<thrillmon::PartitionStatistics>::value,
              "PlainStatistics is palloc'd and never destroyed");

// The statistics of the partitions of metric_time_series (only the one named `only`, if given),
// in palloc'd memory of the caller's context. Catalog and cumulative statistics only: no row of
// the partitions is read.
int ReadPartitionStatistics(const char *only, PlainStatistics **out);

// thrillmon.metric_time_series' oid, or InvalidOid when the schema or the table is not there.
Oid MetricsTableOid();

// Whether Citus lists metric_time_series as distributed on this node (false without Citus, at
// the cost of one catalog name lookup). Then the coordinator's partitions are empty shells:
// their heaps, statistics and sizes say nothing of the points, which are on the shards, and only
// a query through Citus' planner sees them.
bool MetricsDistributed();

// Takes the partition-DDL lock on metric_time_series, then ACCESS EXCLUSIVE on the partitions
// named (thrillmon.NAME each, n of them), in one try that gives both back if a partition is
// busy (thrillmon._lock_metrics_parent(regclass[])). Needs the caller's SPI connection.
void LockParentAndPartitions(const char *const *names, int n);

// The names of parts[0..n) as a text[] made in ctx.
Datum PartitionNamesArray(const PlainPartition *parts, int n, MemoryContext ctx);

// A composite result of natts non-NULL values, shaped as the function's OUT parameters.
Datum ReturnRecord(FunctionCallInfo fcinfo, Datum *values, int natts);

} // namespace thrillmon::pg
