// The detection configuration: anomaly_detection_config read for the pass and backtest(), and
// _check_detection_config(), which the table's trigger calls. Every rule is the core's
// (src/core/detect_config.cpp): this file only reads values.
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/detect_config.hpp"
#include "core/detect_pass.hpp"
#include "pg/boundary.hpp"
#include "pg/detect.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace thrillmon::pg {

namespace {

SettingsTable *table = nullptr; // the backend's, made on first use (no static constructor)

} // namespace

thrillmon::detect::AlgorithmList
AlgorithmsArg(ArrayType *array)
{
	if (array == nullptr)
		return thrillmon::detect::AlgorithmList {true, nullptr, 0};
	Datum *elems;
	bool *nulls;
	int n;
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	auto *items = static_cast<std::optional<std::string_view> *>(
	    palloc(sizeof(std::optional<std::string_view>) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; i++) {
		if (nulls[i]) {
			new (&items[i]) std::optional<std::string_view>();
		} else {
			text *t = DatumGetTextPP(elems[i]);
			new (&items[i]) std::optional<std::string_view>(std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
		}
	}
	return thrillmon::detect::AlgorithmList {false, items, static_cast<std::size_t>(n)};
}

const thrillmon::detect::MetricSettings &
SettingsTable::For(std::string_view name) const
{
	auto it = by_name.find(std::string(name));
	return it == by_name.end() ? defaults : it->second;
}

std::int64_t
SettingsTable::MaxLookbackMinutes() const
{
	std::int64_t m = defaults.lookback_minutes;
	for (const auto &kv : by_name)
		m = std::max(m, kv.second.lookback_minutes);
	return m;
}

const SettingsTable &
ReadSettings()
{
	RunCore([&] {
		if (table == nullptr)
			table = new SettingsTable();
		table->by_name.clear();
		table->windows.clear();
		table->defaults = thrillmon::detect::MetricSettings {};
	});
	// Maintenance windows (0.8.0 on: a library newer than the installed SQL reads none), each cut
	// short where it was expired.
	SpiRun("SELECT pg_catalog.to_regclass('thrillmon.silence_rules') IS NOT NULL", SPI_OK_SELECT);
	bool isnull_w;
	if (SPI_processed == 1 && DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull_w))) {
		// (The bounds as timestamps, made seconds by EpochSeconds() like the points they are
		// compared with: EXTRACT(EPOCH)::float8 rounds once where EpochSeconds() rounds twice, so a
		// point exactly on a bound could fall on either side of it.)
		SpiRun("SELECT metric_pattern, starts_at, LEAST(ends_at, coalesce(expired_at, ends_at)) "
		       "FROM thrillmon.silence_rules WHERE maintenance",
		       SPI_OK_SELECT);
		for (uint64 i = 0; i < SPI_processed; i++) {
			HeapTuple tup = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull;
			text *pattern = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
			const double start = EpochSeconds(DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull)));
			const double end = EpochSeconds(DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull)));
			const std::string_view p(VARDATA_ANY(pattern), VARSIZE_ANY_EXHDR(pattern));
			RunCore([&] { table->windows.push_back(thrillmon::detect::Window {std::string(p), start, end}); });
		}
	}
	SpiRun("SELECT metric_name, enabled, sensitivity, lookback_window_minutes, detection_algorithms, "
	       "min_data_points FROM thrillmon.anomaly_detection_config",
	       SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		text *name = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
		thrillmon::detect::MetricSettings s;
		s.enabled = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		s.sensitivity = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		s.lookback_minutes = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		const thrillmon::detect::AlgorithmList algorithms =
		    AlgorithmsArg(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)));
		s.min_points = static_cast<std::uint32_t>(DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull)));
		const std::string_view key(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
		// The trigger validated the row when it was written; the same rules give its mask here.
		RunCore([&] {
			thrillmon::MaybeError e = thrillmon::detect::ValidateAlgorithms(algorithms, &s.algorithms);
			if (!e) {
				if (key == "*")
					table->defaults = s;
				else
					table->by_name.emplace(std::string(key), s);
			}
			return e;
		});
	}
	return *table;
}

} // namespace thrillmon::pg

// _check_detection_config(detection_algorithms, sensitivity, min_data_points,
// lookback_window_minutes, alert_threshold_score, cooldown_minutes): the core's rules for a
// configuration row, raising the first broken one's error. Not strict: NULLs are errors too.
THRILLMON_FUNCTION(thrillmon_check_detection_config)
{
	thrillmon::detect::DetectionConfig c;
	c.algorithms = thrillmon::pg::AlgorithmsArg(PG_ARGISNULL(0) ? nullptr : PG_GETARG_ARRAYTYPE_P(0));
	if (!PG_ARGISNULL(1))
		c.sensitivity = PG_GETARG_FLOAT8(1);
	if (!PG_ARGISNULL(2))
		c.min_data_points = PG_GETARG_INT32(2);
	if (!PG_ARGISNULL(3))
		c.lookback_window_minutes = PG_GETARG_INT32(3);
	if (!PG_ARGISNULL(4))
		c.alert_threshold_score = PG_GETARG_FLOAT8(4);
	if (!PG_ARGISNULL(5))
		c.cooldown_minutes = PG_GETARG_INT32(5);
	thrillmon::pg::RunCore([&] { return thrillmon::detect::ValidateDetectionConfig(c); });
	PG_RETURN_VOID();
}
