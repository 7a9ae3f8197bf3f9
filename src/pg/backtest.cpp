// backtest(): replays a metric's stored history through the live detector, causally, writing
// nothing: how a user tunes a sensitivity before switching alerts on. The engine is the pass's
// (a detector built from the metric's configuration, warmed with the same Rebuild() a pass's
// cache uses); the overrides are validated by the core's rules for a configuration.
#include <memory>
#include <string_view>
#include <vector>

#include "core/detect_config.hpp"
#include "core/detect_pass.hpp"
#include "pg/boundary.hpp"
#include "pg/detect.hpp"

extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg/compat.hpp"
}

namespace detect = thrillmon::detect;
using thrillmon::pg::RunCore;
using thrillmon::pg::ScanRow;

namespace {

// The replay and the batch it has just scored: the backend's (plain pointer, no static
// constructor), made per call, freed at its end.
struct Run {
	std::unique_ptr<detect::Replay> replay;
	std::vector<detect::PassPoint> points; // the batch's scored points
	std::vector<detect::Score> scores;
	std::vector<detect::PassPoint> batch; // the rows a batch read, as points
	detect::Intervals excluded;           // the metric's maintenance windows
};
Run *run = nullptr;

// After each batch (Postgres side): its rows into the result's tuplestore (which spills to disk
// past work_mem), in a memory context reset per batch.
struct Emit {
	ReturnSetInfo *rsinfo;
	MemoryContext batch_ctx;
};
void
EmitBatch(void *ctx)
{
	Emit *emit = static_cast<Emit *>(ctx);
	MemoryContext old = MemoryContextSwitchTo(emit->batch_ctx);
	for (std::size_t k = 0; k < run->scores.size(); k++) {
		const detect::PassPoint &p = run->points[k];
		const detect::Score &sc = run->scores[k];
		Datum out[9];
		bool nulls[9] = {};
		out[0] = TimestampTzGetDatum(p.stored);
		out[1] = Float8GetDatum(p.value);
		out[2] = Float8GetDatum(sc.score);
		out[3] = BoolGetDatum(sc.anomaly);
		if (sc.warming_up) {
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = nulls[8] = true;
		} else {
			out[4] = CStringGetTextDatum(sc.anomaly ? detect::AnomalyTypeName(sc.type) : "none");
			out[5] = CStringGetTextDatum(detect::SeverityName(sc.severity));
			out[6] = CStringGetTextDatum(detect::AlgorithmName(sc.algorithm));
			out[7] = Float8GetDatum(sc.deviation);
			out[8] = Float8GetDatum(sc.baseline);
		}
		if (!sc.anomaly)
			nulls[4] = nulls[5] = true;
		tuplestore_putvalues(emit->rsinfo->setResult, emit->rsinfo->setDesc, out, nulls);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(emit->batch_ctx);
	// Cleared, not freed: the next batch is as large.
	run->points.clear();
	run->scores.clear();
}

} // namespace

// _backtest(metric, from, upto, algorithms, sensitivity): replays the metric's stored points in
// [from, upto] through a fresh detector warmed on the lookback window before `from`, and returns
// one row per point.
THRILLMON_FUNCTION(thrillmon_backtest)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
		                errmsg("thrillmon: backtest needs metric_name, from and to")));
	text *metric = PG_GETARG_TEXT_PP(0);
	const TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	const TimestampTz upto = PG_GETARG_TIMESTAMPTZ(2);
	if (from > upto)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("thrillmon: backtest range is empty: from is after to")));
	const bool override_algorithms = !PG_ARGISNULL(3);
	const detect::AlgorithmList algorithms =
	    thrillmon::pg::AlgorithmsArg(override_algorithms ? PG_GETARG_ARRAYTYPE_P(3) : nullptr);
	const bool override_sensitivity = !PG_ARGISNULL(4);
	const double sensitivity = override_sensitivity ? PG_GETARG_FLOAT8(4) : 0;
	std::uint32_t mask = 0;
	RunCore([&] {
		thrillmon::MaybeError e;
		if (override_algorithms)
			e = detect::ValidateAlgorithms(algorithms, &mask);
		if (!e && override_sensitivity)
			e = detect::ValidateSensitivity(sensitivity);
		return e;
	});

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	// Made before SPI_connect(): SPI's own context is gone at SPI_finish().
	Emit emit {rsinfo, AllocSetContextCreate(CurrentMemoryContext, "thrillmon backtest batch", ALLOCSET_DEFAULT_SIZES)};
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	const thrillmon::pg::SettingsTable &settings = thrillmon::pg::ReadSettings();
	const std::string_view metric_name(VARDATA_ANY(metric), VARSIZE_ANY_EXHDR(metric));
	detect::MetricSettings s;
	detect::Intervals *excluded = nullptr;
	RunCore([&] {
		s = settings.For(metric_name);
		if (run == nullptr)
			run = new Run();
		run->excluded = detect::WindowsFor(settings.windows, metric_name);
		excluded = &run->excluded;
		if (override_algorithms)
			s.algorithms = mask;
		if (override_sensitivity)
			s.sensitivity = sensitivity;
		if (run == nullptr)
			run = new Run();
		run->replay = std::make_unique<detect::Replay>(s.ForDetector(), from);
		run->points.clear();
		run->scores.clear();
	});

	// In time order, a batch at a time: the replay warms up on the points before `from` and
	// scores the rest; each batch's rows go to the result before the next is read.
	Oid types[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[3] = {PointerGetDatum(metric),
	                   TimestampTzGetDatum(thrillmon::pg::MinusMinutes(from, s.lookback_minutes)),
	                   TimestampTzGetDatum(upto)};
	auto feed = [&](const ScanRow *rows, int n) {
		run->batch.clear();
		for (int i = 0; i < n; i++)
			if (excluded->empty() || !detect::InWindows(*excluded, rows[i].point.t))
				run->batch.push_back(rows[i].point); // (a maintenance window's points are not replayed)
		run->replay->Feed(run->batch.data(), run->batch.size(), &run->points, &run->scores);
	};
	thrillmon::pg::ScanPoints("SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
	                          "WHERE metric_name = $1 AND \"timestamp\" > $2 AND \"timestamp\" <= $3 "
	                          "ORDER BY \"timestamp\"",
	                          false, 3, types, values, thrillmon::pg::SinkOf(feed),
	                          thrillmon::pg::AfterBatch {EmitBatch, &emit});
	SPI_finish();
	MemoryContextDelete(emit.batch_ctx);
	RunCore([&] {
		run->replay.reset();
		run->points.clear();
		run->points.shrink_to_fit();
		run->scores.clear();
		run->scores.shrink_to_fit();
		run->batch.clear();
		run->batch.shrink_to_fit();
	});
	return (Datum) 0;
}
