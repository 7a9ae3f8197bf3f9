// Streaming anomaly detectors (DESIGN §6): one Detector per metric, fed points in time order.
// Each point is scored from the points before it only (causal), then learned from, in constant
// time per point and constant memory per metric (no allocation after construction):
//
// * robust baseline: the median and MAD of the last kWindow points (a sorted copy of the window,
//   updated by binary search; the MAD by a k-th-of-two-sorted-runs search, O(log kWindow));
// * z_score        : distance from the window's mean in window standard deviations;
// * mad            : distance from the window's median in robust (MAD) standard deviations;
// * moving_average : the mean of the last kShortRun points against the median, scaled for the
//                    averaging (a short sustained shift);
// * rate_of_change : the step from the previous point against the window's typical step;
// * ewma           : an EWMA control chart against the median;
// * cusum          : two-sided CUSUM of robust residuals (level shifts), mapped to the z with the
//                    same Gaussian tail;
// * seasonal       : time-of-day (5-minute) and hour-of-week baselines in local time, used per
//                    bucket once it has history from kSeasonDays distinct days (weeks); its
//                    scale is floored by the pooled residual scale of all buckets;
// * predictive     : Holt's linear trend forecast, error against the forecast's own error scale
//                    (a prediction interval);
// * ensemble       : all of the above plus an internal burst component (the capped robust
//                    deviation summed over the last kBurstPoints against its long-run level: a
//                    rise in how often the metric deviates). Each component's |z| is divided by
//                    a calibration factor, the tail quantile of that component on this metric
//                    against its quantile on white Gaussian noise (1 when not clearly heavier),
//                    so components that routinely fire here stop deciding alone. Where the daily
//                    profile explains the metric, it bounds the window components (they only see
//                    its routine swings); where it explains nothing, it stays out. The largest
//                    calibrated deviation decides, corrected for being the largest of several,
//                    and one report per episode: a decaying envelope of reported deviations
//                    suppresses (halves the score of) what is not clearly larger, and for a few
//                    dozen points after a near miss (or a report) only a much larger deviation
//                    scores over the bar again (hysteresis). A point beyond the whole learned
//                    range by a margin (a new extreme) is reported, low. Besides, the
//                    ensemble reports a flatline: a metric that used to vary repeating one value
//                    for kFlatMinPoints points and four times its longest run of one value so far
//                    (a run that decays over about a week of points), once per run.
//
// A deviation d is a Gaussian-equivalent number of standard deviations. With r = d /
// sensitivity the score is 0.5 r^4 up to r = 1 (0.5 exactly at the sensitivity), then
// 1 - 0.5 / (1 + 1.677 ln r)^2 (0.8 at r = sqrt 2): never 1.0 in floating point for a finite d,
// so scores still rank points however far out (the NAB scorer needs that).
#pragma once
#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace thrillmon::detect {

enum class Algorithm : std::uint8_t {
	kZScore,
	kMad,
	kMovingAverage,
	kRateOfChange,
	kEwma,
	kCusum,
	kSeasonal,
	kPredictive,
	kEnsemble,
};
constexpr int kAlgorithmCount = 9;
constexpr std::uint32_t
AlgorithmBit(Algorithm a)
{
	return 1u << static_cast<unsigned>(a);
}
constexpr std::uint32_t kAllComponents = (1u << 8) - 1; // every algorithm except ensemble

// Parses a name from the SQL API (vocabulary::kDetectionAlgorithms); false when unknown. The
// rules of a whole configuration are detect_config.hpp's.
bool ParseAlgorithm(std::string_view name, Algorithm *out);
const char *AlgorithmName(Algorithm a);

// The score of r = deviation / sensitivity (see the top of this file).
double ScoreOfRatio(double r);

enum class AnomalyType : std::uint8_t { kSpike, kDrop, kLevelShift, kTrendChange, kOutlier, kFlatline };
const char *AnomalyTypeName(AnomalyType t);

enum class Severity : std::uint8_t { kLow, kMedium, kHigh, kCritical };
const char *SeverityName(Severity s);

struct Settings {
	std::uint32_t algorithms = AlgorithmBit(Algorithm::kEnsemble); // a set of AlgorithmBit()
	double sensitivity = 4.5;           // deviation (robust standard deviations) that scores 0.5
	std::uint32_t min_data_points = 30; // no score before this many points
};

struct Point {
	double t;               // seconds since the epoch (UTC)
	double value;           // finite
	int local_minute;       // minute of the day in the server's time zone, 0..1439
	int local_dow;          // day of the week in the server's time zone, 0 = Sunday
	std::int64_t local_day; // days since the epoch in local time (counts distinct days)
};

// Point from UTC epoch seconds and the local time zone's offset from UTC in seconds at t (the
// caller knows the zone; the core does no time zone math, which keeps DST where Postgres has it).
Point MakePoint(double t, double value, long utc_offset_seconds);

struct Score {
	double score = 0;     // [0, 1]; 0 during warm-up
	double deviation = 0; // signed deviation of the deciding algorithm (after normalisation)
	double baseline = 0;  // what that algorithm expected
	bool anomaly = false; // score >= 0.5
	bool warming_up = true;
	// A report held back: the ensemble would have reported this point, but it is still in its
	// first Detector::kLearnPoints points (its state is as if it had reported it).
	bool learning = false;
	// An anomaly of a detector whose calibration is not yet trusted (the ensemble, before
	// min_data_points + Detector::kCalibrationPoints points): a lone one raises no alert (the
	// detection pass asks for another metric anomalous with it; 70_detection.sql).
	bool provisional = false;
	AnomalyType type = AnomalyType::kOutlier;
	Severity severity = Severity::kLow;
	Algorithm algorithm = Algorithm::kEnsemble;
};

class Detector {
public:
	static constexpr int kWindow = 128;      // robust baseline window (points)
	static constexpr int kShortRun = 5;      // moving average length
	static constexpr int kDayBuckets = 288;  // 5-minute buckets of the local day
	static constexpr int kWeekBuckets = 168; // local hours of the week
	static constexpr int kTailBins = 128;    // deviation histogram, log-spaced (tail normalisation)
	static constexpr int kBurstPoints = 16;  // burst component: surprise summed over this many points
	// the eight public components plus the ensemble-only burst component (a rise in how often
	// the metric deviates)
	static constexpr int kBurst = 8;
	// A flatline: one value repeated for at least this many points (and four times the metric's
	// longest run so far), after at least kWindow points.
	static constexpr std::uint64_t kFlatMinPoints = 60;
	// The ensemble's first kLearnPoints points are learned, not reported: until its window is full,
	// a metric's median and scale rest on a part of one, and its calibration on nothing.
	static constexpr std::uint64_t kLearnPoints = kWindow;
	// Scored points before a component's tail calibration is trusted.
	static constexpr std::uint64_t kCalibrationPoints = 500;
	static constexpr int kComponents = 9;

	explicit Detector(const Settings &settings);

	// Scores p from the past, then learns p. p.t must not go backwards (a point at an earlier
	// time than the last is scored as if it came just after it).
	Score Update(const Point &p);
	// Learns p without scoring it (state rebuild); same state as Update().
	void
	Learn(const Point &p)
	{
		(void) Update(p);
	}
	// Learns only the seasonal profile from p: for history older than the last kRebuildFull
	// points of a rebuild, which the windows, scales and calibration would forget anyway (their
	// memory is shorter), while the daily and weekly profile needs days of it. About 20 times
	// cheaper than Learn().
	void Warm(const Point &p);
	// How many of a rebuild's most recent points get the full Learn() (see Rebuild()).
	static constexpr std::size_t kRebuildFull = 512;
	// Rebuilds state from history in time order: Warm() all but the last kRebuildFull points,
	// Learn() those. Live detection (a detector cache rebuilt from the lookback window) and
	// backtest() (its warm-up before `from`) both rebuild this way.
	template <typename PointAt>
	void
	Rebuild(std::size_t n, PointAt &&point_at)
	{
		std::size_t i = 0;
		for (; i + kRebuildFull < n; i++)
			Warm(point_at(i));
		for (; i < n; i++)
			Learn(point_at(i));
	}

	// Asks the CPU to start loading the state the next Update(p) reads, without waiting for it.
	// A pass scores a few points for each of many detectors, whose state (tens of MB together)
	// has left the caches since the last pass: issued for the next detector while scoring this
	// one, the loads overlap instead of stalling one by one. Only a hint; no effect on results.
	void Prefetch(const Point &p) const;

	std::uint64_t
	points() const
	{
		return n_;
	}
	double
	last_time() const
	{
		return last_t_;
	}
	static constexpr std::size_t
	MemoryBytes()
	{
		return sizeof(Detector);
	}

private:
	struct Bucket {
		double mean;
		double absdev;
		std::int64_t last_day;
		std::uint32_t days;
		std::uint32_t count;
	};
	struct Component {
		double z; // signed, Gaussian-equivalent
		double baseline;
	};

	double RobustScale(double m, bool *tied) const;
	double CusumUnit() const;
	void TailAdd(int c, double z);
	void LearnSeason(const Point &p, double x, Bucket &day, Bucket &week, bool with_scales, double m);
	void LearnBucket(Bucket &b, double x, std::int64_t local_day);
	void TailQuantiles(int c, const double (&q)[3], double (&out)[3]) const;
	void RefreshCalibration();

	Settings settings_;
	std::uint64_t n_ = 0;
	double last_t_ = 0;
	double last_value_ = 0;

	// value window: ring (arrival order) and its sorted copy
	double ring_[kWindow];
	double sorted_[kWindow];
	int ring_pos_ = 0;
	int count_ = 0;
	double sum_ = 0, sumsq_ = 0; // of the ring, for z_score (re-summed every kWindow points)
	int resum_ = 0;

	// |step| window for rate_of_change
	double step_ring_[kWindow];
	double step_sorted_[kWindow];
	int step_pos_ = 0;
	int step_count_ = 0;

	double short_ring_[kShortRun];
	int short_pos_ = 0;

	double ewma_ = 0;
	double absdev_ew_ = 0; // EW mean |x - median| (scale floor for discrete series)
	// EW mean |x - median| over the points off the median only: the size of a sparse series' moves
	double depart_ew_ = 0;
	std::uint32_t departs_ = 0;
	double cusum_hi_ = 0, cusum_lo_ = 0;
	double cusum_bias_ = 0; // slow mean of the clipped robust residual
	double cusum_var_ = 1;  // slow mean square of the clipped robust residual about cusum_bias_

	// burst component: ring of capped surprises, its sum, and the sum's long-run level/spread
	double burst_ring_[kBurstPoints];
	double burst_sum_ = 0, burst_mean_ = 0, burst_dev_ = 0;
	int burst_pos_ = 0;
	std::uint32_t burst_n_ = 0;

	// Holt's linear trend
	double level_ = 0, trend_ = 0, err_scale_ = 0;
	double dt_ew_ = 0; // EW mean spacing of the points (seconds)
	std::uint32_t holt_n_ = 0;

	Bucket day_[kDayBuckets];
	Bucket week_[kWeekBuckets];
	double season_scale_ = 0; // pooled EW mean |x - bucket mean| over all trusted buckets
	double plain_scale_ = 0;  // EW mean |x - window median| on the same points (comparison)

	// Per-component calibration: a decayed histogram of each component's |z| on this metric
	// (weights grow instead of decaying all bins), and the resulting tail quantile.
	float tail_[kComponents][kTailBins + 1];
	float tail_total_[kComponents] = {};
	std::uint32_t tail_count_[kComponents] = {};
	float tail_weight_ = 1;
	double tail_q_[kComponents] = {};
	double inv_factor_[kComponents]; // 1 / calibration factor (RefreshCalibration)
	int tail_refresh_ = 0;

	// refractory: the recent envelope of deviations (decaying); only a clear excess is reported
	double envelope_ = 0;
	std::uint32_t since_report_ = UINT32_MAX; // points since the last report
	// the short episode: points since a point came near the sensitivity, its deviation, and
	// whether it was reported
	std::uint32_t since_near_ = UINT32_MAX;
	double near_d_ = 0;
	bool near_reported_ = false;

	// flatline: the current run of one repeated value, the longest run so far (decaying), and how
	// many points came before the current run
	double run_value_ = 0;
	std::uint64_t run_length_ = 0;
	std::uint64_t run_start_n_ = 0;
	double longest_run_ = 0;
	bool run_at_rest_ = false; // the run began on the median of a tied window
	void NoteRun(double x, bool at_rest);

	// new extremes: the lowest and highest value learned, and points since the last new extreme
	// reported
	double lo_ = 0, hi_ = 0;
	std::uint32_t since_extreme_ = UINT32_MAX;
	void NoteExtreme(double x);
	void NoteDeparture(double dev);
};

} // namespace thrillmon::detect
