// The detection pass's policy (which detectors a backend keeps, rebuilds and forgets) and its
// scoring in threads: the contract src/pg/detection.cpp relies on, without a server.
#include "core/detect_pass.hpp"
#include "core/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace thrillmon;
using namespace thrillmon::detect;

namespace {

constexpr double kT0 = 1704067200.0; // 2024-01-01 00:00 UTC
constexpr double kMinute = 60.0;

PassPoint
At(double t, double v)
{
	return PassPoint {static_cast<std::int64_t>(t * 1e6), t, v, 0};
}

// A metric with n points a minute apart from `start`, noise around 100 (seeded by the name), and
// a spike of `spike` at the last point if nonzero.
PassMetric
Metric(const std::string &name, double start, int n, double spike = 0)
{
	PassMetric m;
	m.name = name;
	m.category = "custom";
	std::mt19937_64 rng(std::hash<std::string> {}(name));
	std::normal_distribution<double> noise(100, 1);
	for (int i = 0; i < n; i++)
		m.fresh.push_back(At(start + i * kMinute, (spike != 0 && i == n - 1) ? spike : noise(rng)));
	return m;
}

// What a detector scores for `points` rebuilt from `history`, one thread, no cache: the reference
// a pass must equal (it is what backtest() computes).
std::vector<Score>
Reference(const MetricSettings &s, const std::vector<PassPoint> &history, const std::vector<PassPoint> &points)
{
	Detector d(s.ForDetector());
	d.Rebuild(history.size(), [&](std::size_t i) { return ToPoint(history[i]); });
	std::vector<Score> out;
	for (const PassPoint &p : points)
		out.push_back(d.Update(ToPoint(p)));
	return out;
}

// Acquires the metric's detector as a pass would and feeds it one point at t (a detector that has
// seen no point is quiet, and EndPass() forgets it); returns whether it was new.
bool
Touch(DetectorCache &cache, const std::string &name, const MetricSettings &s, double t = kT0)
{
	const DetectorCache::Slot slot = cache.Acquire(name, s);
	PassMetric m;
	m.name = name;
	m.settings = s;
	m.fresh.push_back(At(t, 1));
	std::vector<PassAnomaly> out;
	ScoreMetric(*slot.entry, slot.rebuild, m, 0, &out);
	return slot.rebuild;
}

} // namespace

TEST(DetectorCache, ServesOnlyThePassAfterTheOneThatMadeIt)
{
	DetectorCache cache;
	MetricSettings s;
	EXPECT_FALSE(cache.Valid());
	cache.BeginPass(1, 0);
	EXPECT_TRUE(Touch(cache, "a", s));
	EXPECT_FALSE(cache.Valid()) << "invalid until the pass ends";
	cache.EndPass(7, kT0);
	EXPECT_TRUE(cache.Valid());
	EXPECT_EQ(cache.size(), 1u);

	// The next pass after 7, in the same database: served.
	cache.BeginPass(1, 7);
	EXPECT_FALSE(cache.NeedsRebuild("a", s));
	EXPECT_FALSE(Touch(cache, "a", s));
	cache.EndPass(8, kT0);

	// Another pass ran in between (8 -> 9 elsewhere): everything is forgotten.
	cache.BeginPass(1, 9);
	EXPECT_EQ(cache.size(), 0u);
	EXPECT_TRUE(cache.NeedsRebuild("a", s));
	Touch(cache, "a", s);
	cache.EndPass(10, kT0);

	// Another database: forgotten.
	cache.BeginPass(2, 10);
	EXPECT_EQ(cache.size(), 0u);
}

TEST(DetectorCache, APassThatNeverEndedLeavesNothingTrusted)
{
	DetectorCache cache;
	MetricSettings s;
	cache.BeginPass(1, 0);
	Touch(cache, "a", s);
	cache.EndPass(5, kT0);
	ASSERT_EQ(cache.size(), 1u);
	cache.BeginPass(1, 5);
	Touch(cache, "b", s); // half-way through pass 6, which then fails (rolled back)
	// The next pass finds pass 5 still the last committed one: the cache must not serve it.
	cache.BeginPass(1, 5);
	EXPECT_EQ(cache.size(), 0u);
}

TEST(DetectorCache, ChangedSettingsRebuildThatMetricOnly)
{
	DetectorCache cache;
	MetricSettings s;
	cache.BeginPass(1, 0);
	Touch(cache, "a", s);
	Touch(cache, "b", s);
	cache.EndPass(1, kT0);
	cache.BeginPass(1, 1);
	MetricSettings changed = s;
	changed.sensitivity = 6;
	EXPECT_TRUE(cache.NeedsRebuild("a", changed));
	EXPECT_TRUE(Touch(cache, "a", changed));
	EXPECT_FALSE(Touch(cache, "b", s));
	// Alerting settings are not the detector's: enabled alone changes nothing.
	MetricSettings same_detector = s;
	same_detector.enabled = false;
	EXPECT_FALSE(cache.NeedsRebuild("b", same_detector));
	cache.Forget("b");
	EXPECT_TRUE(cache.NeedsRebuild("b", s));
}

TEST(DetectorCache, QuietMetricsAreForgottenAfterTheirLookback)
{
	DetectorCache cache;
	MetricSettings day;
	day.lookback_minutes = 1440;
	MetricSettings hour = day;
	hour.lookback_minutes = 60;
	cache.BeginPass(1, 0);
	Touch(cache, "day", day);
	Touch(cache, "hour", hour);
	cache.EndPass(1, kT0 + 59 * kMinute);
	EXPECT_EQ(cache.size(), 2u);
	cache.BeginPass(1, 1);
	cache.EndPass(2, kT0 + 61 * kMinute);
	EXPECT_EQ(cache.size(), 1u) << "quiet for more than its hour";
	EXPECT_FALSE(cache.NeedsRebuild("day", day));
	EXPECT_TRUE(cache.NeedsRebuild("hour", hour));
}

TEST(DetectorCache, AMetricWithAFewPointsHoldsNoDetector)
{
	// A flood of names with one point each: each is a few points, not a 24 kB detector.
	DetectorCache cache;
	std::deque<PassMetric> metrics;
	for (int i = 0; i < 1000; i++)
		metrics.push_back(Metric("once" + std::to_string(i), kT0, 1));
	cache.BeginPass(1, 0);
	PassStats stats;
	EXPECT_TRUE(ScorePass(cache, metrics, 1, &stats).empty());
	cache.EndPass(1, kT0);
	EXPECT_EQ(cache.size(), 1000u);
	EXPECT_EQ(cache.detectors(), 0u);
	EXPECT_EQ(stats.points, 1000u);
}

TEST(DetectorCache, ALazyStartScoresExactlyAsAnEagerOne)
{
	// 200 points arriving 3 at a time (the first passes stay lazy): the same anomalies, scores and
	// all, as one detector fed every point.
	const PassMetric all = Metric("m", kT0, 200, 500);
	std::vector<Score> ref = Reference(MetricSettings {}, {}, all.fresh);
	DetectorCache cache;
	std::vector<PassAnomaly> found;
	std::int64_t pass = 0;
	for (std::size_t i = 0; i < all.fresh.size(); i += 3) {
		std::deque<PassMetric> metrics(1);
		metrics[0].name = "m";
		for (std::size_t k = i; k < std::min(i + 3, all.fresh.size()); k++)
			metrics[0].fresh.push_back(all.fresh[k]);
		cache.BeginPass(1, pass);
		const std::vector<PassAnomaly> a = ScorePass(cache, metrics, 1, nullptr);
		found.insert(found.end(), a.begin(), a.end());
		cache.EndPass(++pass, metrics[0].fresh.back().t);
		if (i == 3) {
			EXPECT_EQ(cache.detectors(), 0u) << "six points: still lazy";
		}
	}
	EXPECT_EQ(cache.detectors(), 1u);
	std::size_t expected = 0;
	for (const Score &r : ref)
		expected += r.anomaly;
	ASSERT_EQ(found.size(), expected);
	for (const PassAnomaly &a : found) {
		const std::size_t i = static_cast<std::size_t>(std::lround((a.point.t - kT0) / kMinute));
		EXPECT_EQ(a.score.score, ref[i].score) << i;
	}
	EXPECT_EQ(found.back().point.value, 500);
}

TEST(DetectorCache, AtMostItsCapacityOfDetectorsTheLeastRecentlyUsedGo)
{
	DetectorCache cache(3);
	std::int64_t pass = 0;
	auto pass_over = [&](std::vector<std::string> names) {
		std::deque<PassMetric> metrics;
		for (const std::string &n : names)
			metrics.push_back(Metric(n, kT0 + pass * 100 * kMinute, 100));
		cache.BeginPass(1, pass);
		ScorePass(cache, metrics, 1, nullptr);
		const double horizon = kT0 + pass * 100 * kMinute;
		cache.EndPass(++pass, horizon);
	};
	pass_over({"a", "b", "c", "d"});
	EXPECT_EQ(cache.detectors(), 3u);
	pass_over({"b", "c", "d"}); // a (if still there) is now the least recently used
	pass_over({"e"});
	EXPECT_EQ(cache.detectors(), 3u);
	EXPECT_TRUE(cache.NeedsRebuild("a", MetricSettings {}));
	EXPECT_TRUE(cache.NeedsRebuild("b", MetricSettings {})) << "b, c and d were used last in the same pass; one goes";
	EXPECT_FALSE(cache.NeedsRebuild("e", MetricSettings {}));
}

TEST(DetectPass, ScoresLikeAFreshDetectorAndKeepsState)
{
	DetectorCache cache;
	std::deque<PassMetric> metrics;
	metrics.push_back(Metric("m", kT0, 200));
	const std::vector<PassPoint> all = metrics[0].fresh;
	PassStats stats;
	cache.BeginPass(1, 0);
	ScorePass(cache, metrics, 1, &stats);
	cache.EndPass(1, all.back().t);
	EXPECT_EQ(stats.metrics, 1u);
	EXPECT_EQ(stats.rebuilt, 1u);
	EXPECT_EQ(stats.points, 200u);
	EXPECT_EQ(stats.threads, 1);

	// The next pass: 50 more points (and a spike), from the cached detector.
	std::deque<PassMetric> next;
	next.push_back(Metric("m", kT0 + 200 * kMinute, 50, 400));
	cache.BeginPass(1, 1);
	const std::vector<PassAnomaly> found = ScorePass(cache, next, 1, &stats);
	EXPECT_EQ(stats.rebuilt, 0u) << "served from the cache";
	std::vector<PassPoint> everything = all;
	everything.insert(everything.end(), next[0].fresh.begin(), next[0].fresh.end());
	const std::vector<Score> ref = Reference(MetricSettings {}, {}, everything);
	ASSERT_FALSE(found.empty());
	EXPECT_EQ(found.back().point.value, 400);
	for (const PassAnomaly &a : found) {
		const std::size_t i = 200 + static_cast<std::size_t>(std::lround((a.point.t - next[0].fresh[0].t) / kMinute));
		EXPECT_DOUBLE_EQ(a.score.score, ref[i].score) << i;
	}
}

TEST(DetectPass, ARebuildFromHistoryEqualsTheBacktestWarmUp)
{
	MetricSettings s;
	PassMetric m = Metric("m", kT0 + 600 * kMinute, 30, 500);
	m.needs_history = true;
	m.history = Metric("m-history", kT0, 600).fresh;
	const std::vector<Score> ref = Reference(s, m.history, m.fresh);
	DetectorCache cache;
	cache.BeginPass(1, 3); // a cache that serves nothing: the metric is rebuilt
	std::deque<PassMetric> metrics {m};
	PassStats stats;
	const std::vector<PassAnomaly> found = ScorePass(cache, metrics, 1, &stats);
	EXPECT_EQ(stats.rebuilt, 1u);
	std::size_t expected = 0;
	for (const Score &r : ref)
		expected += r.anomaly;
	ASSERT_EQ(found.size(), expected);
	EXPECT_EQ(found.back().point.value, 500);
}

TEST(DetectPass, DisabledMetricsAreForgottenAndNotScored)
{
	DetectorCache cache;
	std::deque<PassMetric> metrics;
	metrics.push_back(Metric("a", kT0, 50));
	cache.BeginPass(1, 0);
	ScorePass(cache, metrics, 1, nullptr);
	cache.EndPass(1, kT0 + 50 * kMinute);
	ASSERT_EQ(cache.size(), 1u);
	metrics[0].settings.enabled = false;
	PassStats stats;
	cache.BeginPass(1, 1);
	EXPECT_TRUE(ScorePass(cache, metrics, 1, &stats).empty());
	EXPECT_EQ(stats.metrics, 0u);
	EXPECT_EQ(cache.size(), 0u);
}

TEST(DetectPass, ThreadsScoreExactlyWhatOneThreadScores)
{
	// 300 metrics, each with a spike (after the detectors' learning points): in 1 thread and in 4
	// (each thread takes 64 or more).
	constexpr int kPoints = static_cast<int>(Detector::kLearnPoints) + 40;
	auto make = [] {
		std::deque<PassMetric> ms;
		for (int i = 0; i < 300; i++)
			ms.push_back(Metric("m" + std::to_string(i), kT0, kPoints, 300 + i));
		return ms;
	};
	std::deque<PassMetric> one = make(), four = make();
	DetectorCache c1, c4;
	PassStats s1, s4;
	c1.BeginPass(1, 0);
	c4.BeginPass(1, 0);
	const std::vector<PassAnomaly> a1 = ScorePass(c1, one, 1, &s1);
	const std::vector<PassAnomaly> a4 = ScorePass(c4, four, 4, &s4);
	EXPECT_EQ(s1.threads, 1);
	EXPECT_EQ(s4.threads, 4) << "four threads scored";
	EXPECT_EQ(s4.points, 300u * kPoints);
	ASSERT_EQ(a1.size(), a4.size());
	for (std::size_t i = 0; i < a1.size(); i++) {
		EXPECT_EQ(a1[i].metric, a4[i].metric);
		EXPECT_EQ(a1[i].point.stored, a4[i].point.stored);
		EXPECT_EQ(a1[i].score.score, a4[i].score.score);
	}
	std::set<std::size_t> spiked;
	for (const PassAnomaly &a : a4)
		if (a.point.t == kT0 + (kPoints - 1) * kMinute)
			spiked.insert(a.metric);
	EXPECT_EQ(spiked.size(), 300u) << "every metric's spike is found";
}

TEST(ThreadPool, ThreadsForCountsWork)
{
	EXPECT_EQ(ThreadsFor(0, 4), 1);
	EXPECT_EQ(ThreadsFor(63, 4), 1);
	EXPECT_EQ(ThreadsFor(128, 4), 2);
	EXPECT_EQ(ThreadsFor(300, 4), 4);
	EXPECT_EQ(ThreadsFor(100000, 4), 4);
	EXPECT_EQ(ThreadsFor(100000, 0), 1);
	EXPECT_EQ(ThreadsFor(10, 8, 1), 8);
}

TEST(ThreadPool, ChunksCoverTheRangeOnceEachWorkerOnItsOwnThread)
{
	for (int workers : {1, 2, 3, 7}) {
		for (std::size_t chunk : {1, 7, 64, 5000}) {
			std::vector<std::atomic<int>> seen(1000);
			std::mutex mu;
			std::map<int, std::thread::id> thread_of;
			bool distinct = true;
			const int ran = RunChunks(seen.size(), workers, chunk, [&](std::size_t lo, std::size_t hi, int worker) {
				{
					std::lock_guard<std::mutex> lock(mu);
					auto [it, fresh] = thread_of.emplace(worker, std::this_thread::get_id());
					if (!fresh && it->second != std::this_thread::get_id())
						distinct = false;
				}
				EXPECT_LE(hi - lo, chunk);
				for (std::size_t i = lo; i < hi; i++)
					seen[i]++;
			});
			EXPECT_GE(ran, 1);
			EXPECT_LE(ran, workers);
			EXPECT_TRUE(distinct) << "a worker number stays on one thread";
			std::set<std::thread::id> ids;
			for (const auto &[w, id] : thread_of)
				ids.insert(id);
			EXPECT_EQ(ids.size(), thread_of.size()) << "each worker on a thread of its own";
			// (The helpers may have taken every chunk before the caller took one.)
			for (const auto &[w, id] : thread_of) {
				if (w == 0) {
					EXPECT_EQ(id, std::this_thread::get_id()) << "worker 0 is the caller";
				} else {
					EXPECT_NE(id, std::this_thread::get_id()) << "the others are helpers";
				}
			}
			for (std::size_t i = 0; i < seen.size(); i++)
				ASSERT_EQ(seen[i].load(), 1) << i << " with " << workers << " workers, chunks of " << chunk;
		}
	}
}

TEST(ThreadPool, HelpersComeWhenThereIsWorkForThem)
{
	// 200 chunks of a millisecond each: every helper wakes long before the caller is done alone.
	// The helpers are kept: a second call finds the same ones waiting.
	for (int round = 0; round < 2; round++) {
		std::mutex mu;
		std::set<std::thread::id> ids;
		const int ran = RunChunks(200, 3, 1, [&](std::size_t, std::size_t, int) {
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
			std::lock_guard<std::mutex> lock(mu);
			ids.insert(std::this_thread::get_id());
		});
		EXPECT_EQ(ran, 3);
		EXPECT_EQ(ids.size(), 3u);
	}
}

TEST(ThreadPool, ExceptionsComeBackToTheCaller)
{
	// The worker that throws takes no more chunks; the others finish every other one.
	std::atomic<int> finished {0};
	std::atomic<bool> thrown {false};
	EXPECT_THROW(RunChunks(100, 4, 1,
	                       [&](std::size_t lo, std::size_t, int) {
		                       std::this_thread::sleep_for(std::chrono::microseconds(200));
		                       if (lo == 50 && !thrown.exchange(true))
			                       throw std::runtime_error("chunk 50");
		                       finished++;
	                       }),
	             std::runtime_error);
	EXPECT_EQ(finished.load(), 99) << "the other chunks ran to the end";
	// and the helpers still serve the next call
	std::atomic<int> again {0};
	RunChunks(100, 4, 1, [&](std::size_t, std::size_t, int) { again++; });
	EXPECT_EQ(again.load(), 100);
}

TEST(ThreadPool, HelpersRunWithEverySignalBlocked)
{
	std::atomic<int> unblocked {0};
	std::atomic<int> helpers {0};
	RunChunks(400, 4, 1, [&](std::size_t, std::size_t, int worker) {
		std::this_thread::sleep_for(std::chrono::microseconds(200));
		if (worker == 0)
			return; // the caller's own thread keeps its mask
		helpers++;
		sigset_t mask;
		pthread_sigmask(SIG_SETMASK, nullptr, &mask);
		if (!sigismember(&mask, SIGTERM) || !sigismember(&mask, SIGINT) || !sigismember(&mask, SIGUSR1))
			unblocked++;
	});
	EXPECT_GT(helpers.load(), 0);
	EXPECT_EQ(unblocked.load(), 0);
	sigset_t mine;
	pthread_sigmask(SIG_SETMASK, nullptr, &mine);
	EXPECT_FALSE(sigismember(&mine, SIGTERM)) << "the caller's mask is restored";
}

TEST(DetectorCache, LazyEntriesAreBoundedToo)
{
	// Capacity 2: at most 20 entries in all, whatever names arrive.
	DetectorCache cache(2);
	std::int64_t pass = 0;
	for (int round = 0; round < 5; round++) {
		std::deque<PassMetric> metrics;
		for (int i = 0; i < 15; i++)
			metrics.push_back(Metric("r" + std::to_string(round) + "_" + std::to_string(i), kT0 + round * kMinute, 1));
		cache.BeginPass(1, pass);
		ScorePass(cache, metrics, 1, nullptr);
		cache.EndPass(++pass, kT0 + round * kMinute);
	}
	EXPECT_EQ(cache.size(), DetectorCache::kLazyEntriesPerDetector * 2);
	EXPECT_TRUE(cache.Holds("r4_0")) << "the most recent stay";
	EXPECT_FALSE(cache.Holds("r0_0"));
}

// backtest()'s streaming replay, fed in batches of any size, scores exactly what the whole range
// held at once scored (Rebuild() on the points before `from`, then Update() on the rest).
TEST(Replay, InBatchesEqualsTheWholeRangeAtOnce)
{
	const MetricSettings s;
	PassMetric m = Metric("replay", kT0, 3000, 400);
	const std::vector<PassPoint> &all = m.fresh;
	const std::int64_t from = all[2000].stored; // 2,000 points of warm-up: more than kRebuildFull
	Detector reference(s.ForDetector());
	reference.Rebuild(2000, [&](std::size_t i) { return ToPoint(all[i]); });
	std::vector<Score> want;
	for (std::size_t i = 2000; i < all.size(); i++)
		want.push_back(reference.Update(ToPoint(all[i])));
	for (const std::size_t batch : {std::size_t {1}, std::size_t {7}, std::size_t {512}, std::size_t {10000}}) {
		Replay replay(s.ForDetector(), from);
		std::vector<PassPoint> scored;
		std::vector<Score> got;
		for (std::size_t i = 0; i < all.size(); i += batch)
			replay.Feed(all.data() + i, std::min(batch, all.size() - i), &scored, &got);
		ASSERT_EQ(got.size(), want.size()) << batch;
		EXPECT_EQ(scored.front().stored, from);
		for (std::size_t k = 0; k < want.size(); k++) {
			EXPECT_EQ(got[k].score, want[k].score) << batch << " " << k;
			EXPECT_EQ(got[k].anomaly, want[k].anomaly) << batch << " " << k;
		}
	}
	// No point before `from` at all, or none after it.
	Replay none(s.ForDetector(), all.back().stored + 1);
	std::vector<PassPoint> scored;
	std::vector<Score> got;
	none.Feed(all.data(), all.size(), &scored, &got);
	EXPECT_TRUE(got.empty());
}

// ---- cadence: a metric that stops arriving (the no_data alert) -----------------------------------

namespace {

// Notes n points of `name` `gap` seconds apart from `start` (each gap jittered by up to +-jitter).
double
Arrive(DetectorCache &cache, const std::string &name, double start, int n, double gap, double jitter = 0,
       unsigned seed = 1)
{
	std::mt19937_64 rng(seed);
	std::uniform_real_distribution<double> j(-jitter, jitter);
	double t = start;
	double last = start;
	for (int i = 0; i < n; i++) {
		cache.NoteArrival(name, At(t, 1), 1440);
		last = t;
		t += gap + j(rng);
	}
	return last;
}

std::vector<std::string>
SilentNames(DetectorCache &cache, double upto)
{
	std::vector<std::string> out;
	for (const SilentMetric &m : cache.FindSilent(upto))
		out.push_back(m.name);
	return out;
}

} // namespace

TEST(Cadence, ARegularMetricIsSilentAfterFiveIntervals)
{
	DetectorCache cache;
	const double last = Arrive(cache, "every_minute", kT0, 60, 60, 3);
	EXPECT_TRUE(SilentNames(cache, last + 4 * 60).empty()) << "four intervals late is not yet silent";
	const std::vector<SilentMetric> silent = cache.FindSilent(last + 5.5 * 60);
	ASSERT_EQ(silent.size(), 1u);
	EXPECT_EQ(silent[0].name, "every_minute");
	EXPECT_NEAR(silent[0].interval, 60, 3);
	EXPECT_EQ(silent[0].last_stored, static_cast<std::int64_t>(last * 1e6)) << "reported with its last point";
	EXPECT_TRUE(SilentNames(cache, last + 6 * 60).empty()) << "reported once";
	EXPECT_EQ(SilentNames(cache, last + 5.5 * 60 + kSilentRepeatSeconds).size(), 1u) << "and again ten minutes on";
}

TEST(Cadence, FastMetricsWaitForTheFloor)
{
	DetectorCache cache;
	const double last = Arrive(cache, "every_2s", kT0, 200, 2, 0.2);
	EXPECT_TRUE(SilentNames(cache, last + 60).empty()) << "30 intervals, but under two minutes";
	EXPECT_EQ(SilentNames(cache, last + kSilentFloorSeconds + 1).size(), 1u);
}

TEST(Cadence, IrregularAndYoungMetricsAreNeverSilent)
{
	DetectorCache cache;
	// Points only when something happens: exponential gaps, mean 5 minutes.
	std::mt19937_64 rng(7);
	std::exponential_distribution<double> gap(1.0 / 300);
	double t = kT0;
	for (int i = 0; i < 300; i++) {
		cache.NoteArrival("events", At(t, 1), 1440);
		t += gap(rng);
	}
	Arrive(cache, "young", kT0, kCadenceMinGaps, 60); // one gap short of the minimum
	for (double upto = t; upto < t + 86400; upto += 60)
		EXPECT_TRUE(SilentNames(cache, upto).empty()) << "at " << upto - t << " s";
}

TEST(Cadence, OneLongAbsenceDoesNotRedefineTheInterval)
{
	DetectorCache cache;
	double last = Arrive(cache, "m", kT0, 100, 60);
	last = Arrive(cache, "m", last + 6 * 3600, 3, 60); // back after six hours, three points
	const std::vector<SilentMetric> silent = cache.FindSilent(last + 10 * 60);
	ASSERT_EQ(silent.size(), 1u) << "still regular";
	EXPECT_LT(silent[0].interval, 90.0) << "the absence counts as at most four intervals";
}

TEST(Cadence, ForgottenPastTheLookbackAndWithTheCache)
{
	DetectorCache cache(2);
	cache.BeginPass(1, 0);
	const double last = Arrive(cache, "m", kT0, 20, 60);
	cache.EndPass(1, last + 1439 * 60);
	EXPECT_EQ(cache.cadences(), 1u);
	cache.BeginPass(1, 1);
	cache.EndPass(2, last + 1441 * 60);
	EXPECT_EQ(cache.cadences(), 0u) << "a last point older than the lookback";
	Arrive(cache, "m", kT0, 20, 60);
	EXPECT_FALSE(cache.BeginPass(1, 7)) << "a cache that is not the previous pass's starts over";
	EXPECT_EQ(cache.cadences(), 0u);
}

TEST(Cadence, BoundedToTenEntriesPerDetector)
{
	DetectorCache cache(3);
	cache.BeginPass(1, 0);
	for (int i = 0; i < 100; i++)
		cache.NoteArrival("m" + std::to_string(100 + i), At(kT0 + i, 1), 1440);
	cache.EndPass(1, kT0 + 200);
	EXPECT_EQ(cache.cadences(), 30u);
	EXPECT_EQ(cache.FindSilent(kT0 + 200).size(), 0u);
}
