// The detection pass's policy and scoring (see detect_pass.hpp).
#include "core/detect_pass.hpp"

#include "core/delivery.hpp"
#include "core/thread_pool.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace thrillmon::detect {

namespace {

// How many detectors ahead of the one being scored the pass prefetches (Detector::Prefetch): far
// enough for the loads to arrive while a few points are scored (measured: 1 < 2 < 4 ~ 8).
constexpr std::size_t kPrefetchAhead = 4;
// How many metrics a scoring thread takes at a time: enough that taking one (an atomic add)
// costs nothing beside scoring them, few enough that a thread starting late still finds work.
constexpr std::size_t kScoreChunk = 32;

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

bool
DetectorCache::BeginPass(std::uint32_t database, std::int64_t prev_pass)
{
	const bool kept = database_ == database && pass_ >= 0 && pass_ == prev_pass;
	if (!kept) {
		entries_.clear();
		cadence_.clear();
	}
	database_ = database;
	current_ = prev_pass + 1;
	pass_ = -1; // until this pass has finished
	return kept;
}

void
Cadence::Note(const PassPoint &p)
{
	if (last_stored != 0 && p.t <= last_t)
		return;
	if (last_stored != 0) {
		double g = p.t - last_t;
		if (gaps == 0) {
			gap = g;
		} else {
			// A gap far longer than usual (the metric was away, or a collector restarted) is
			// counted as 4 intervals: one absence must not redefine the interval.
			if (gaps >= kCadenceMinGaps && g > 4 * gap)
				g = 4 * gap;
			constexpr double kAlpha = 0.1;
			gap_dev += kAlpha * (std::fabs(g - gap) - gap_dev);
			gap += kAlpha * (g - gap);
		}
		if (gaps < UINT32_MAX)
			gaps++;
	}
	last_t = p.t;
	last_stored = p.stored;
}

bool
Cadence::Regular() const
{
	return gaps >= kCadenceMinGaps && gap > 0 && gap_dev <= 0.5 * gap;
}

void
DetectorCache::NoteArrivals(std::string_view name, const PassPoint *points, std::size_t n,
                            std::int64_t lookback_minutes)
{
	if (n == 0)
		return;
	std::string key(name);
	auto it = cadence_.find(key);
	if (it == cadence_.end())
		it = cadence_.emplace(std::move(key), Cadence {}).first;
	it->second.lookback_minutes = lookback_minutes;
	for (std::size_t i = 0; i < n; i++)
		it->second.Note(points[i]);
}

std::vector<SilentMetric>
DetectorCache::FindSilent(double upto)
{
	std::vector<SilentMetric> out;
	for (auto &[name, c] : cadence_) {
		if (!c.Regular() || upto - c.last_t < c.SilentAfter())
			continue;
		if (c.reported_at >= 0 && upto - c.reported_at < kSilentRepeatSeconds)
			continue;
		c.reported_at = upto;
		out.push_back(SilentMetric {name, c.last_stored, c.gap});
	}
	std::sort(out.begin(), out.end(), [](const SilentMetric &a, const SilentMetric &b) { return a.name < b.name; });
	return out;
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
	if (it != entries_.end() && it->second->settings.SameDetector(settings)) {
		it->second->used = current_;
		return Slot {it->second.get(), false};
	}
	auto entry = std::make_unique<Entry>();
	entry->settings = settings;
	entry->used = current_;
	it = entries_.insert_or_assign(name, std::move(entry)).first;
	return Slot {it->second.get(), true};
}

void
DetectorCache::Forget(const std::string &name)
{
	entries_.erase(name);
}

std::size_t
DetectorCache::detectors() const
{
	std::size_t n = 0;
	for (const auto &kv : entries_)
		n += kv.second->detector != nullptr;
	return n;
}

void
DetectorCache::EndPass(std::int64_t pass, double upto_seconds)
{
	for (auto it = cadence_.begin(); it != cadence_.end();) {
		if (!InLookback(it->second.last_t, upto_seconds, it->second.lookback_minutes))
			it = cadence_.erase(it);
		else
			++it;
	}
	if (cadence_.size() > kLazyEntriesPerDetector * capacity_) {
		// The longest silent go first (by name among equals: the same ones whatever the order).
		std::vector<std::pair<double, std::string>> by_age;
		for (const auto &kv : cadence_)
			by_age.emplace_back(kv.second.last_t, kv.first);
		std::sort(by_age.begin(), by_age.end());
		for (std::size_t i = 0; i < by_age.size() - kLazyEntriesPerDetector * capacity_; i++)
			cadence_.erase(by_age[i].second);
	}
	std::size_t with_detector = 0;
	for (auto it = entries_.begin(); it != entries_.end();) {
		if (!InLookback(it->second->last_t, upto_seconds, it->second->settings.lookback_minutes)) {
			it = entries_.erase(it);
			continue;
		}
		with_detector += it->second->detector != nullptr;
		++it;
	}
	// Past the capacity, the least recently used detectors go; past ten times it, the least
	// recently used entries, lazy ones too (a few points each, so that many names with a point or
	// two cannot pile up either). Of those used last in the same pass, by name: the same ones
	// whatever the hash table's order.
	auto evict = [&](bool detectors_only, std::size_t keep) {
		std::vector<std::pair<std::int64_t, std::string>> candidates;
		for (const auto &kv : entries_)
			if (!detectors_only || kv.second->detector)
				candidates.emplace_back(kv.second->used, kv.first);
		if (candidates.size() <= keep)
			return;
		std::sort(candidates.begin(), candidates.end());
		for (std::size_t i = 0; i < candidates.size() - keep; i++)
			entries_.erase(candidates[i].second);
	};
	if (with_detector > capacity_)
		evict(true, capacity_);
	if (entries_.size() > kLazyEntriesPerDetector * capacity_)
		evict(false, kLazyEntriesPerDetector * capacity_);
	pass_ = pass;
}

void
ScoreMetric(DetectorCache::Entry &entry, bool rebuild, PassMetric &metric, std::size_t index,
            std::vector<PassAnomaly> *out)
{
	if (rebuild) {
		SortByTime(metric.history);
		entry.early.clear();
		entry.detector.reset();
		entry.early = std::move(metric.history);
		metric.history.clear();
	}
	SortByTime(metric.fresh);
	// While a metric has only a few points, every one of them warms up (fewer than
	// min_data_points): keep the points, score them as warming up, make no detector yet.
	const std::size_t lazy_limit =
	    std::min<std::size_t>(DetectorCache::kLazyPoints, std::max<std::uint32_t>(metric.settings.min_points, 2) - 1);
	if (!entry.detector && entry.early.size() + metric.fresh.size() <= lazy_limit) {
		entry.early.insert(entry.early.end(), metric.fresh.begin(), metric.fresh.end());
		if (!entry.early.empty())
			entry.last_t = entry.early.back().t;
		return;
	}
	if (!entry.detector) {
		// As if it had learned them one by one (Rebuild: Warm() only beyond its last 512 points).
		entry.detector = std::make_unique<Detector>(entry.settings.ForDetector());
		entry.detector->Rebuild(entry.early.size(), [&](std::size_t i) { return ToPoint(entry.early[i]); });
		entry.early.clear();
		entry.early.shrink_to_fit();
	}
	for (const PassPoint &p : metric.fresh) {
		const Score s = entry.detector->Update(ToPoint(p));
		if (s.anomaly)
			out->push_back(PassAnomaly {index, p, s});
	}
	entry.last_t = entry.detector->last_time();
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
	// First find (or make) each metric's entry, then score: the scoring loop can then prefetch
	// the next detector's state while it scores this one (see Detector::Prefetch).
	struct Todo {
		std::size_t metric;
		DetectorCache::Entry *entry;
		bool rebuild;
		bool failed;
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
		todo.push_back(Todo {m, slot.entry, slot.rebuild, false});
	}
	// Each entry is touched by one thread only, and a chunk reads only its own metrics' points:
	// the threads share nothing but their read-only inputs. One metric's failure (out of memory)
	// is that metric's: it is forgotten, and the others are scored.
	const int slices = ThreadsFor(todo.size(), threads);
	// (By chunk: put together in the chunks' order, they are in the metrics' order, however the
	// chunks fell to the threads.)
	std::vector<std::vector<PassAnomaly>> found((todo.size() + kScoreChunk - 1) / kScoreChunk);
	std::vector<std::size_t> scored(static_cast<std::size_t>(slices), 0);
	const int ran = RunChunks(todo.size(), slices, kScoreChunk, [&](std::size_t lo, std::size_t hi, int slice) {
		std::vector<PassAnomaly> &out = found[lo / kScoreChunk];
		auto prefetch = [&](std::size_t j) {
			if (j < hi && todo[j].entry->detector && !metrics[todo[j].metric].fresh.empty())
				todo[j].entry->detector->Prefetch(ToPoint(metrics[todo[j].metric].fresh.front()));
		};
		for (std::size_t j = lo; j < lo + kPrefetchAhead; j++)
			prefetch(j);
		for (std::size_t k = lo; k < hi; k++) {
			prefetch(k + kPrefetchAhead);
			PassMetric &pm = metrics[todo[k].metric];
			const std::size_t before = out.size();
			try {
				ScoreMetric(*todo[k].entry, todo[k].rebuild, pm, todo[k].metric, &out);
				scored[static_cast<std::size_t>(slice)] += pm.fresh.size();
			} catch (const std::bad_alloc &) {
				out.resize(before);
				todo[k].failed = true;
			}
		}
	});
	std::vector<PassAnomaly> anomalies;
	for (const std::vector<PassAnomaly> &part : found)
		anomalies.insert(anomalies.end(), part.begin(), part.end());
	std::size_t failed = 0;
	for (const Todo &t : todo)
		if (t.failed) {
			cache.Forget(metrics[t.metric].name);
			failed++;
		}
	if (stats != nullptr) {
		stats->metrics = todo.size() - failed;
		stats->rebuilt = static_cast<std::size_t>(
		    std::count_if(todo.begin(), todo.end(), [](const Todo &t) { return t.rebuild && !t.failed; }));
		stats->points = 0;
		for (const std::size_t n : scored)
			stats->points += n;
		stats->anomalies = anomalies.size();
		stats->threads = ran;
		stats->failed = failed;
	}
	return anomalies;
}

void
Replay::Feed(const PassPoint *points, std::size_t n, std::vector<PassPoint> *scored, std::vector<Score> *scores)
{
	for (std::size_t i = 0; i < n; i++) {
		const PassPoint &p = points[i];
		if (!scoring_ && p.stored < from_) {
			recent_.push_back(p);
			if (recent_.size() > Detector::kRebuildFull) {
				det_.Warm(ToPoint(recent_.front()));
				recent_.pop_front();
			}
			continue;
		}
		if (!scoring_) {
			for (const PassPoint &q : recent_)
				det_.Learn(ToPoint(q));
			recent_.clear();
			scoring_ = true;
		}
		scored->push_back(p);
		scores->push_back(det_.Update(ToPoint(p)));
	}
}

Intervals
WindowsFor(const std::vector<Window> &windows, std::string_view name)
{
	Intervals out;
	for (const Window &w : windows)
		if (w.end > w.start && delivery::LikeMatch(w.pattern, name))
			out.emplace_back(w.start, w.end);
	return out;
}

} // namespace thrillmon::detect
