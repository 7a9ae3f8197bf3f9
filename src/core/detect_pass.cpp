// The detection pass's policy and scoring (see detect_pass.hpp).
#include "core/detect_pass.hpp"

#include "core/thread_pool.hpp"

#include <algorithm>

namespace thrillmon::detect {

namespace {

// How many detectors ahead of the one being scored the pass prefetches (Detector::Prefetch): far
// enough for the loads to arrive while a few points are scored (measured: 1 < 2 < 4 ~ 8).
constexpr std::size_t kPrefetchAhead = 4;

} // namespace

Settings
MetricSettings::ForDetector() const
{
	Settings s;
	s.algorithms = algorithms;
	s.sensitivity = sensitivity;
	s.min_data_points = min_points;
	return s;
}

void
DetectorCache::BeginPass(std::uint32_t database, std::int64_t prev_pass)
{
	if (database_ != database || pass_ < 0 || pass_ != prev_pass)
		entries_.clear();
	database_ = database;
	pass_ = -1; // until this pass has finished
}

bool
DetectorCache::NeedsRebuild(const std::string &name, const MetricSettings &settings) const
{
	auto it = entries_.find(name);
	return it == entries_.end() || !it->second->settings.SameDetector(settings);
}

DetectorCache::Slot
DetectorCache::Acquire(const std::string &name, const MetricSettings &settings)
{
	auto it = entries_.find(name);
	if (it != entries_.end() && it->second->settings.SameDetector(settings))
		return Slot {&it->second->detector, false};
	auto entry = std::unique_ptr<Entry>(new Entry {settings, Detector(settings.ForDetector())});
	it = entries_.insert_or_assign(name, std::move(entry)).first;
	return Slot {&it->second->detector, true};
}

void
DetectorCache::Forget(const std::string &name)
{
	entries_.erase(name);
}

void
DetectorCache::EndPass(std::int64_t pass, double upto_seconds)
{
	for (auto it = entries_.begin(); it != entries_.end();) {
		if (!InLookback(it->second->detector.last_time(), upto_seconds, it->second->settings.lookback_minutes))
			it = entries_.erase(it);
		else
			++it;
	}
	pass_ = pass;
}

void
SortByTime(std::vector<PassPoint> &points)
{
	auto by_time = [](const PassPoint &a, const PassPoint &b) {
		return a.t < b.t;
	};
	if (!std::is_sorted(points.begin(), points.end(), by_time))
		std::stable_sort(points.begin(), points.end(), by_time);
}

std::vector<PassAnomaly>
ScorePass(DetectorCache &cache, std::deque<PassMetric> &metrics, int threads, PassStats *stats)
{
	// First find (or make) each metric's detector, then score: the scoring loop can then prefetch
	// the next detector's state while it scores this one (see Detector::Prefetch).
	struct Todo {
		std::size_t metric;
		Detector *detector;
		bool rebuild;
	};
	std::vector<Todo> todo;
	todo.reserve(metrics.size());
	for (std::size_t m = 0; m < metrics.size(); m++) {
		PassMetric &pm = metrics[m];
		if (!pm.settings.enabled) {
			cache.Forget(pm.name);
			continue;
		}
		if (pm.fresh.empty())
			continue;
		const DetectorCache::Slot slot = cache.Acquire(pm.name, pm.settings);
		todo.push_back(Todo {m, slot.detector, slot.rebuild});
	}
	// Each detector is touched by one thread only, and a slice reads only its own metrics'
	// points: the slices share nothing but their read-only inputs.
	const int slices = ThreadsFor(todo.size(), threads);
	std::vector<std::vector<PassAnomaly>> found(static_cast<std::size_t>(slices));
	std::vector<std::size_t> scored(static_cast<std::size_t>(slices), 0);
	const int ran = RunSlices(todo.size(), slices, [&](std::size_t lo, std::size_t hi, int slice) {
		std::vector<PassAnomaly> &out = found[static_cast<std::size_t>(slice)];
		for (std::size_t k = lo; k < hi; k++) {
			PassMetric &pm = metrics[todo[k].metric];
			if (todo[k].rebuild) {
				SortByTime(pm.history);
				todo[k].detector->Rebuild(pm.history.size(), [&](std::size_t i) { return ToPoint(pm.history[i]); });
			}
			SortByTime(pm.fresh);
		}
		for (std::size_t k = lo; k < hi; k++) {
			if (k + kPrefetchAhead < hi)
				todo[k + kPrefetchAhead].detector->Prefetch(
				    ToPoint(metrics[todo[k + kPrefetchAhead].metric].fresh.front()));
			for (const PassPoint &p : metrics[todo[k].metric].fresh) {
				const Score s = todo[k].detector->Update(ToPoint(p));
				if (s.anomaly)
					out.push_back(PassAnomaly {todo[k].metric, p, s});
			}
			scored[static_cast<std::size_t>(slice)] += metrics[todo[k].metric].fresh.size();
		}
	});
	std::vector<PassAnomaly> anomalies;
	for (const std::vector<PassAnomaly> &part : found)
		anomalies.insert(anomalies.end(), part.begin(), part.end());
	if (stats != nullptr) {
		stats->metrics = todo.size();
		stats->rebuilt =
		    static_cast<std::size_t>(std::count_if(todo.begin(), todo.end(), [](const Todo &t) { return t.rebuild; }));
		stats->points = 0;
		for (const std::size_t n : scored)
			stats->points += n;
		stats->anomalies = anomalies.size();
		stats->threads = ran;
	}
	return anomalies;
}

} // namespace thrillmon::detect
