// backtest(): replays a metric's stored history through the live detector, causally, writing
// nothing: how a user tunes a sensitivity before switching alerts on. The engine is the pass's
// (a detector built from the metric's configuration, warmed with the same Rebuild() a pass's
// cache uses); the overrides are validated by the core's rules for a configuration.
#include <deque>
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
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace detect = thrillmon::detect;
using thrillmon::pg::RunCore;
using thrillmon::pg::ScanRow;

namespace {

// The replay's points and scores: the backend's, reused (cleared, not freed, between calls).
struct Replay {
	std::vector<detect::PassPoint> points;
	std::vector<detect::Score> scores;
	std::size_t first = 0; // points before it warm the detector up; the rest are scored
};
Replay *replay = nullptr;

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
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	const thrillmon::pg::SettingsTable &settings = thrillmon::pg::ReadSettings();
	const std::string_view metric_name(VARDATA_ANY(metric), VARSIZE_ANY_EXHDR(metric));
	detect::MetricSettings s;
	RunCore([&] {
		if (replay == nullptr)
			replay = new Replay();
		replay->points.clear();
		replay->scores.clear();
		s = settings.For(metric_name);
		if (override_algorithms)
			s.algorithms = mask;
		if (override_sensitivity)
			s.sensitivity = sensitivity;
	});

	Oid types[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[3] = {PointerGetDatum(metric),
	                   TimestampTzGetDatum(thrillmon::pg::MinusMinutes(from, s.lookback_minutes)),
	                   TimestampTzGetDatum(upto)};
	auto add = [&](const ScanRow *rows, int n) {
		for (int i = 0; i < n; i++)
			replay->points.push_back(rows[i].point);
	};
	thrillmon::pg::ScanPoints("SELECT \"timestamp\", metric_value, metric_name FROM thrillmon.metric_time_series "
	                          "WHERE metric_name = $1 AND \"timestamp\" > $2 AND \"timestamp\" <= $3",
	                          false, 3, types, values, thrillmon::pg::SinkOf(add));

	RunCore([&] {
		std::vector<detect::PassPoint> &points = replay->points;
		detect::SortByTime(points);
		detect::Detector det(s.ForDetector());
		// Warm-up before `from` exactly as a live rebuild does it, then score.
		std::size_t first = 0;
		while (first < points.size() && points[first].stored < from)
			first++;
		det.Rebuild(first, [&](std::size_t i) { return detect::ToPoint(points[i]); });
		replay->first = first;
		replay->scores.reserve(points.size() - first);
		for (std::size_t i = first; i < points.size(); i++)
			replay->scores.push_back(det.Update(detect::ToPoint(points[i])));
	});
	SPI_finish();

	for (std::size_t k = 0; k < replay->scores.size(); k++) {
		const detect::PassPoint &p = replay->points[replay->first + k];
		const detect::Score &sc = replay->scores[k];
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
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	RunCore([&] {
		replay->points.clear();
		replay->points.shrink_to_fit();
		replay->scores.clear();
		replay->scores.shrink_to_fit();
	});
	return (Datum) 0;
}
