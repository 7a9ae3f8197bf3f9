// Metric retention by whole daily partitions (_cleanup_metrics), and the retention cut-off every
// cleanup starts from (_retention_cutoff). The plan (which days to drop) and the rules (how many
// days, what the statistics prove) are the core's; this file runs the DDL.
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "core/locks.hpp"
#include "core/partitions.hpp"
#include "core/validation.hpp"
#include "pg/boundary.hpp"
#include "pg/args.hpp"
#include "pg/partitions.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

using thrillmon::pg::PlainPartition;
using thrillmon::pg::PlainStatistics;
using thrillmon::pg::RunCore;
using thrillmon::pg::TextArg;

// _retention_cutoff(days, argument_name): validate retention days, return now() - days x 24 h.
THRILLMON_FUNCTION(thrillmon_retention_cutoff)
{
	const std::optional<int> days = PG_ARGISNULL(0) ? std::nullopt : std::optional<int>(PG_GETARG_INT32(0));
	const std::optional<std::string_view> arg = TextArg(fcinfo, 1);
	const thrillmon::EpochMicros now = GetCurrentTransactionStartTimestamp() + thrillmon::kPostgresEpochOffsetMicros;

	thrillmon::EpochMicros cutoff = 0;
	RunCore([&] {
		thrillmon::MaybeError e = thrillmon::ValidateRetentionDays(days, arg.value_or("retention_days"));
		if (!e)
			cutoff = thrillmon::RetentionCutoff(now, *days);
		return e;
	});
	PG_RETURN_TIMESTAMPTZ(cutoff - thrillmon::kPostgresEpochOffsetMicros);
}

// _cleanup_metrics(cutoff timestamptz): remove metric rows older than cutoff by whole days.
// The daily partitions whose day ended at or before it are dropped (cost per partition, not per
// row, and the disk space comes back at once); the one containing the cut-off is left whole until
// its own day has expired. Only the default partition, which maintenance keeps empty, has rows
// deleted. Returns (partitions_dropped text[], rows_dropped bigint, rows_deleted bigint).
THRILLMON_FUNCTION(thrillmon_cleanup_metrics_internal)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: cutoff must not be NULL")));
	const TimestampTz cutoff_ts = PG_GETARG_TIMESTAMPTZ(0);
	if (TIMESTAMP_NOT_FINITE(cutoff_ts))
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("thrillmon: cutoff must be finite")));
	const thrillmon::EpochMicros cutoff = cutoff_ts + thrillmon::kPostgresEpochOffsetMicros;
	MemoryContext fn_ctx = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	// Serialise with any other metric retention (a second cleanup would find the partitions it
	// planned to drop already gone) and with partition maintenance.
	thrillmon::pg::SpiJobLock(thrillmon::locks::kMetricRetention);
	thrillmon::pg::SpiJobLock(thrillmon::locks::kMaintainPartitions);

	int64_t *existing;
	const int n_existing = thrillmon::pg::ExistingPartitionDays(&existing);
	PlainPartition *drops =
	    static_cast<PlainPartition *>(MemoryContextAllocZero(fn_ctx, sizeof(PlainPartition) * (n_existing + 1)));
	int n_drops = 0;
	RunCore([&] {
		const thrillmon::MetricRetentionPlan plan =
		    thrillmon::PlanMetricRetention(std::vector<int64_t>(existing, existing + n_existing), cutoff);
		for (const int64_t day : plan.drop_days) {
			thrillmon::pg::FillPartition(&drops[n_drops], day);
			if (drops[n_drops].valid)
				n_drops++;
		}
	});

	int64_t rows_dropped = 0;
	int64_t rows_deleted = 0;
	StringInfoData sql;
	initStringInfo(&sql);
	// Order matters for ingest: dropping a partition locks the parent table against inserts
	// until commit. So the default partition's delete (which locks only that partition) and the
	// counts come first, and the drops last, right before the commit.
	Oid types[1] = {TIMESTAMPTZOID};
	Datum args[1] = {TimestampTzGetDatum(cutoff_ts)};
	thrillmon::pg::SpiRun("DELETE FROM ONLY thrillmon.metric_time_series_default WHERE \"timestamp\" < $1",
	                      SPI_OK_DELETE, 1, types, args);
	rows_deleted += static_cast<int64_t>(SPI_processed);
	// The parent's lock first, then the partitions', in one try (the writers' own order: a writer
	// holds the parent's lock while it inserts into a partition, so locking an expired partition
	// first deadlocked with a late backfill into it until lock_timeout, stalling it and failing
	// the run; see _lock_metrics_parent()). Then each count is exactly what the DROP removes. One statement for all of them, and
	// one look at their statistics: per partition, a statement each was a tenth of the cleanup's
	// own time.
	if (n_drops > 0) {
		const char **names = static_cast<const char **>(palloc(sizeof(const char *) * n_drops));
		for (int i = 0; i < n_drops; i++)
			names[i] = drops[i].name;
		thrillmon::pg::LockParentAndPartitions(names, n_drops);
	}
	PlainStatistics *stats = nullptr;
	const int n_stats = n_drops > 0 ? thrillmon::pg::ReadPartitionStatistics(nullptr, &stats) : 0;
	for (int i = 0; i < n_drops; i++) {
		// The count from statistics when they hold it exactly (maintenance ANALYZEs each day once
		// it is over), else by reading the partition.
		bool exact = false;
		int64_t rows = 0;
		for (int k = 0; k < n_stats; k++) {
			if (strcmp(stats[k].name, drops[i].name) != 0)
				continue;
			RunCore([&] {
				if (auto r = thrillmon::ExactRowsFromStatistics(stats[k].s)) {
					exact = true;
					rows = *r;
				}
			});
			break;
		}
		if (!exact) {
			resetStringInfo(&sql);
			appendStringInfo(&sql, "SELECT count(*) FROM ONLY thrillmon.%s", quote_identifier(drops[i].name));
			rows = thrillmon::pg::SpiInt64(sql.data);
		}
		elog(DEBUG1, "thrillmon: %s holds " INT64_FORMAT " rows (%s)", drops[i].name, rows,
		     exact ? "from its statistics" : "counted");
		rows_dropped += rows;
	}
	// Dropping a partition writes little WAL of its own, but the first change of each catalog
	// page after a checkpoint logs the whole page: almost all of a cleanup's WAL is such images
	// (of pg_class, pg_attribute, pg_depend, pg_constraint, pg_statistic and their indexes).
	// They compress well; wal_compression, a superuser setting, is turned on for the drops only
	// (restored right after). A cleanup run by someone else goes without.
	const int guc_level = NewGUCNestLevel();
	if (n_drops > 0 && superuser()) {
		// lz4 where the server was built with it (Debian's is), pglz everywhere.
		if (set_config_option("wal_compression", "lz4", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, DEBUG1,
		                      false) <= 0)
			(void) set_config_option("wal_compression", "pglz", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, DEBUG1,
			                         false);
	}
	if (n_drops > 0) {
		resetStringInfo(&sql);
		appendStringInfoString(&sql, "DROP TABLE ");
		for (int i = 0; i < n_drops; i++)
			appendStringInfo(&sql, "%sthrillmon.%s", i > 0 ? ", " : "", quote_identifier(drops[i].name));
		thrillmon::pg::SpiRun(sql.data, SPI_OK_UTILITY);
	}
	AtEOXact_GUC(true, guc_level);
	SPI_finish();

	Datum values[3] = {thrillmon::pg::PartitionNamesArray(drops, n_drops, fn_ctx), Int64GetDatum(rows_dropped),
	                   Int64GetDatum(rows_deleted)};
	return thrillmon::pg::ReturnRecord(fcinfo, values, 3);
}
