// What the detection glue's files share: reading metric points (detect_scan.cpp) and the
// detection configuration (detect_settings.cpp), for the pass (detection.cpp) and backtest()
// (backtest.cpp). Functions here ereport: call them from frames that own no C++ object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/detect_config.hpp"
#include "core/detect_pass.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/array.h"
}

namespace thrillmon::pg {

// ---- points (detect_scan.cpp) -----------------------------------------------------------------

// A stored row as a point: name and category point into the row's memory (valid only while the
// sink runs). category is nullptr when the scan does not read it.
struct ScanRow {
	const char *name;
	int name_len;
	const char *category;
	int category_len;
	thrillmon::detect::PassPoint point;
};

// Where a scan hands its rows, batch by batch, inside the compute phase: a plain function and its
// context (no std::function, which would put a destructor in the scan's frame).
struct RowSink {
	void (*fn)(void *ctx, const ScanRow *rows, int n);
	void *ctx;
};

template <typename F>
RowSink
SinkOf(F &f)
{
	return RowSink {[](void *ctx, const ScanRow *rows, int n) { (*static_cast<F *>(ctx))(rows, n); }, &f};
}

double EpochSeconds(TimestampTz ts);

// t minus that many minutes, clamped at the lowest timestamp (infinities stay as they are).
TimestampTz MinusMinutes(TimestampTz t, std::int64_t minutes);

// Postgres-side work after each batch's sink has run (outside the C++ boundary, so it may
// ereport): backtest() writes the rows a batch scored, so it never holds more than a batch.
struct AfterBatch {
	void (*fn)(void *ctx);
	void *ctx;
};

// Runs query ("timestamp", metric_value, metric_name and, if with_category, metric_category:
// fixed-width columns first, so their offsets are cached) through a cursor.
void ScanPoints(const char *query, bool with_category, int nargs, Oid *types, Datum *values, RowSink sink,
                AfterBatch after = {nullptr, nullptr});

// A steady pass's new points: the rows in (lo, hi], with their category, read through each daily
// partition's BRIN index directly. False, before reading anything, when the table has a partition
// that is not one of ours or lacks that index: the caller then reads through SQL.
bool ScanFreshDirect(TimestampTz lo, TimestampTz hi, RowSink sink);

// A cold pass's lookback window: the rows in (lo, hi], without their category, read by a
// sequential scan of each partition that can hold them. False as ScanFreshDirect.
bool ScanWindowDirect(TimestampTz lo, TimestampTz hi, RowSink sink);

// ---- configuration (detect_settings.cpp) ------------------------------------------------------

// A text[] as the core's AlgorithmList, its elements viewed in place (palloc'd in the current
// memory context; valid as long as the array). NULL (nullptr) reads as a NULL list.
thrillmon::detect::AlgorithmList AlgorithmsArg(ArrayType *array);

// anomaly_detection_config as the pass and backtest() use it.
struct SettingsTable {
	std::unordered_map<std::string, thrillmon::detect::MetricSettings> by_name;
	thrillmon::detect::MetricSettings defaults;     // the row '*'
	std::vector<thrillmon::detect::Window> windows; // maintenance windows (silence_rules)

	// Builds a std::string: call it in the compute phase.
	const thrillmon::detect::MetricSettings &For(std::string_view name) const;
	std::int64_t MaxLookbackMinutes() const;
};

// Reads anomaly_detection_config and the maintenance windows into the backend's SettingsTable
// (made on first use, never freed: it is small) and returns it. Needs an SPI connection.
const SettingsTable &ReadSettings();

} // namespace thrillmon::pg
