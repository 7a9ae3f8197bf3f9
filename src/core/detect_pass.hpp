// The detection pass's policy, without Postgres: which detectors a backend may keep between
// passes, which metrics a pass must rebuild from their history, which it forgets, and the scoring
// of a pass's metrics (in threads). The glue (src/pg/detect_pass.cpp) reads the configuration and
// the points into PassMetrics, calls ScorePass(), and writes the anomalies back.
//
// A backend keeps one DetectorCache, valid for exactly one pass: the pass number and horizon live
// in thrillmon.detector_progress, and a pass whose cache was made by the previous pass in the same
// database (the worker's steady state) reads only the points that arrived since. Any other backend,
// or the worker after a restart or an aborted pass, finds the pass number moved on, forgets
// everything and rebuilds each metric from lookback_window_minutes of history before scoring. So
// state is never trusted beyond the pass it was made for, and a point is scored exactly once (the
// horizon moves in the same transaction as the anomalies are written).
#pragma once
#include "core/no_postgres.hpp"

#include "core/detect.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace thrillmon::detect {

// A metric's configuration as the pass uses it (a row of anomaly_detection_config, or the '*'
// defaults). The alerting columns are the SQL side's; they do not change the detector.
struct MetricSettings {
	bool enabled = true;
	double sensitivity = 4.5;
	std::int64_t lookback_minutes = 1440;
	std::uint32_t algorithms = AlgorithmBit(Algorithm::kEnsemble);
	std::uint32_t min_points = 30;

	// Whether a detector built under o scores as one built under these settings would.
	bool
	SameDetector(const MetricSettings &o) const
	{
		return sensitivity == o.sensitivity && lookback_minutes == o.lookback_minutes && algorithms == o.algorithms &&
		       min_points == o.min_points;
	}
	Settings ForDetector() const;
};

// A stored point as a pass reads it.
struct PassPoint {
	std::int64_t stored;     // the stored value of its timestamp (results carry it back exactly)
	double t;                // seconds since the Unix epoch
	double value;            // finite
	std::int32_t utc_offset; // seconds east of UTC in the session's time zone at t
};

// A maintenance window: the metrics LIKE pattern, from start to end (epoch seconds, end
// excluded). Their points inside it are neither scored nor learned.
struct Window {
	std::string pattern;
	double start;
	double end;
};
using Intervals = std::vector<std::pair<double, double>>;

// The intervals of the windows that cover a metric's name.
Intervals WindowsFor(const std::vector<Window> &windows, std::string_view name);

// Whether t falls inside one of the intervals.
inline bool
InWindows(const Intervals &intervals, double t)
{
	for (const auto &[start, end] : intervals)
		if (t >= start && t < end)
			return true;
	return false;
}

// One metric of a pass: what it scores (fresh), and, when its detector must be rebuilt in a
// steady pass, the history before the previous horizon.
struct PassMetric {
	std::string name;
	std::string category;
	MetricSettings settings;
	Intervals excluded; // maintenance windows: points inside are dropped before scoring
	bool needs_history = false;
	std::vector<PassPoint> history;
	std::vector<PassPoint> fresh;
};

struct PassAnomaly {
	std::size_t metric; // index into the pass's metrics
	PassPoint point;
	Score score;
};

// What a pass did, for thrillmon._detect_pass_stats(), health_check() and the tests.
struct PassStats {
	std::int64_t pass = 0;
	std::size_t metrics = 0; // metrics with fresh points, scored
	std::size_t rebuilt = 0; // detectors made new (rebuilt from history, if any) this pass
	std::size_t points = 0;  // points scored
	std::size_t anomalies = 0;
	std::size_t cached = 0;  // metrics whose state is kept for the next pass
	int threads = 0;         // distinct threads that scored
	std::size_t skipped = 0; // metrics left unscored: more than the pass may hold (glue's count)
	std::size_t failed = 0;  // metrics whose scoring failed (out of memory): forgotten
};

// How a metric's points arrive, for the no_data alert (a metric that stops arriving): the gaps
// between its points, smoothed. A metric is regular when it has shown kCadenceMinGaps gaps and
// their typical deviation is at most half their typical length (a collector's interval, give or
// take its jitter); an event-driven metric (points only when something happens) is not, and is
// never called silent. A regular metric is silent once no point has come for kSilentIntervals of
// its intervals, and never sooner than kSilentFloorSeconds (a pass that runs late must not call
// a metric of 2-second points silent).
constexpr std::uint32_t kCadenceMinGaps = 8;
constexpr double kSilentIntervals = 5;
constexpr double kSilentFloorSeconds = 120;
// A silence is reported again, while it lasts, this often (the pass may have let it pass: a
// maintenance window, a silence, a pass that rolled back).
constexpr double kSilentRepeatSeconds = 600;

struct Cadence {
	double last_t = 0;
	std::int64_t last_stored = 0; // the stored timestamp of its last point
	double gap = 0;               // smoothed gap between points (seconds)
	double gap_dev = 0;           // smoothed |gap - typical gap|
	std::uint32_t gaps = 0;
	std::int64_t lookback_minutes = 1440;
	double reported_at = -1; // when (pass horizon) it was last reported silent

	// Learns a point (in time order; an earlier or simultaneous one only moves nothing back).
	void Note(const PassPoint &p);
	bool Regular() const;
	// Seconds after its last point from which a regular metric is silent.
	double
	SilentAfter() const
	{
		return gap * kSilentIntervals > kSilentFloorSeconds ? gap * kSilentIntervals : kSilentFloorSeconds;
	}
};

struct SilentMetric {
	std::string name;
	std::int64_t last_stored;
	double interval; // its typical gap (seconds)
};

// The backend's detectors, one per metric, kept between passes. A metric's state is made lazily:
// until a metric has more than a few points (kLazyPoints, and fewer than its min_data_points, so
// every one of them only warms up), the cache keeps the points themselves, a few dozen bytes,
// rather than a detector of 24 kB; its detector is made from them, exactly as if it had learned
// them one by one, when the next point comes. So a flood of names with a point or two each costs
// next to nothing. At most `capacity` detectors are kept, and ten times as many entries in all:
// past that, the least recently used go (they are rebuilt from history when their metric comes
// back).
class DetectorCache {
public:
	static constexpr std::size_t kLazyPoints = 8;
	// Entries kept at most, lazy ones included, per detector of the capacity.
	static constexpr std::size_t kLazyEntriesPerDetector = 10;

	explicit DetectorCache(std::size_t capacity = 10000) : capacity_(capacity)
	{
	}
	void
	set_capacity(std::size_t capacity)
	{
		capacity_ = capacity;
	}

	// Starts a pass in `database` after the pass numbered prev_pass: the cache serves it only if it
	// was left by that very pass in that database; otherwise it forgets everything. Until EndPass()
	// it is marked invalid, so a pass that fails half-way leaves nothing half-built trusted.
	// Returns whether the cache was kept (false: it starts empty, and knows no cadence either).
	bool BeginPass(std::uint32_t database, std::int64_t prev_pass);

	// Whether a steady pass must read the metric's history to score it: nothing is cached for it,
	// or what is was built under other settings.
	bool NeedsRebuild(const std::string &name, const MetricSettings &settings) const;
	bool
	Holds(const std::string &name) const
	{
		return entries_.count(name) > 0;
	}

	// A metric's state for this pass: its detector, or (lazily) the few points it has seen.
	struct Entry {
		MetricSettings settings;
		std::unique_ptr<Detector> detector;
		std::vector<PassPoint> early; // without a detector: every point so far, in time order
		std::int64_t used = 0;        // the last pass that scored it (for least-recently-used)
		double last_t = 0;            // its last point's time (seconds)
	};
	struct Slot {
		Entry *entry;
		bool rebuild; // new: to be built from the metric's history before it scores
	};
	// The metric's entry for this pass: the cached one, or a new one.
	Slot Acquire(const std::string &name, const MetricSettings &settings);

	// Drops the metric's state (a disabled metric, or one whose scoring failed).
	void Forget(const std::string &name);
	// Learns that the metric's point p arrived (in time order per metric; called by the pass for
	// every point it reads, scored or history, in one thread). Kept for as long as the point is
	// within the lookback; at most kLazyEntriesPerDetector * capacity metrics, the longest
	// silent going first.
	void NoteArrivals(std::string_view name, const PassPoint *points, std::size_t n, std::int64_t lookback_minutes);
	void
	NoteArrival(std::string_view name, const PassPoint &p, std::int64_t lookback_minutes)
	{
		NoteArrivals(name, &p, 1, lookback_minutes);
	}
	// The regular metrics silent at upto (seconds), each at most once every kSilentRepeatSeconds,
	// by name.
	std::vector<SilentMetric> FindSilent(double upto);
	std::size_t
	cadences() const
	{
		return cadence_.size();
	}

	// Ends the pass: forgets the metrics whose last point is older than their lookback before upto
	// (a rebuild would find no history for them either), then the least recently used detectors
	// past the capacity, and is valid from now on for the pass after the one numbered `pass`.
	void EndPass(std::int64_t pass, double upto_seconds);

	// Forgets everything (a backend other than the worker, after its pass: it is unlikely to run
	// the next one, and must not keep tens of MB for the rest of its session).
	void
	Clear()
	{
		entries_.clear();
		cadence_.clear();
		pass_ = -1;
	}

	std::size_t
	size() const
	{
		return entries_.size();
	}
	// Metrics with a detector made (the rest hold only their few early points).
	std::size_t detectors() const;
	bool
	Valid() const
	{
		return pass_ >= 0;
	}

private:
	std::size_t capacity_;
	std::uint32_t database_ = 0;
	std::int64_t pass_ = -1;
	std::int64_t current_ = 0; // the pass in progress (BeginPass's prev_pass + 1, for `used`)
	std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
	std::unordered_map<std::string, Cadence> cadence_;
};

// Scores one metric's points with its entry: rebuilds it from history first when new, keeps the
// points themselves while it is lazy, and returns the anomalies through out.
void ScoreMetric(DetectorCache::Entry &entry, bool rebuild, PassMetric &metric, std::size_t index,
                 std::vector<PassAnomaly> *out);

// Whether a point at t belongs to a metric's lookback window ending at `end` (seconds).
inline bool
InLookback(double t, double end, std::int64_t lookback_minutes)
{
	return t > end - 60.0 * static_cast<double>(lookback_minutes);
}

// Scores a pass between BeginPass() and EndPass(): every enabled metric with fresh points gets its
// detector from the cache (a new one is rebuilt from its history first: the same Rebuild()
// backtest() warms up with), then scores its fresh points in time order; a disabled metric's
// detector is forgotten. The metrics are scored in `threads` threads (see thread_pool.hpp), each
// detector by one thread only. Returns the anomalies in metric order, and fills stats.
std::vector<PassAnomaly> ScorePass(DetectorCache &cache, std::deque<PassMetric> &metrics, int threads,
                                   PassStats *stats);

// Sorts points by time, stably (a metric's rows arrive in time order; only a backfill is not).
void SortByTime(std::vector<PassPoint> &points);

inline Point
ToPoint(const PassPoint &p)
{
	return MakePoint(p.t, p.value, p.utc_offset);
}

// backtest()'s replay, fed a metric's points in time order a batch at a time: it warms a
// detector on the points before `from` exactly as Detector::Rebuild() does (Warm() for all but
// the last kRebuildFull, kept here, then Learn() for those), and scores the rest. So its memory
// is the detector, kRebuildFull points and the caller's batch, whatever the range (1 M points
// held at once cost 322 MB before 0.7.0, callable by any reader).
class Replay {
public:
	Replay(const Settings &settings, std::int64_t from_stored) : det_(settings), from_(from_stored)
	{
	}
	// Feeds n points (in time order, after those of earlier calls): appends the ones at or after
	// `from` to scored, and their scores to scores.
	void Feed(const PassPoint *points, std::size_t n, std::vector<PassPoint> *scored, std::vector<Score> *scores);

private:
	Detector det_;
	std::int64_t from_;
	std::deque<PassPoint> recent_; // the warm-up's last points, not learned yet
	bool scoring_ = false;
};

} // namespace thrillmon::detect
