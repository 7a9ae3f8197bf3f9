// Out of memory in the middle of a pass: the metric whose scoring could not allocate is that
// metric's failure (forgotten, counted), and every other metric is scored and kept. The test
// binary replaces operator new with one that, while `fail_at_least` is set, throws std::bad_alloc
// for every allocation of that many bytes or more: a detector is one large allocation, the
// few points of a lazy metric and the bookkeeping are small ones.
#include "core/detect_pass.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <new>
#include <string>

namespace {
std::atomic<std::size_t> fail_at_least {0};
} // namespace

// g++ sees free() given what operator new returned; here operator new is malloc() itself.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void *
operator new(std::size_t size)
{
	const std::size_t limit = fail_at_least.load(std::memory_order_relaxed);
	if (limit != 0 && size >= limit)
		throw std::bad_alloc();
	if (void *p = std::malloc(size == 0 ? 1 : size))
		return p;
	throw std::bad_alloc();
}
void
operator delete(void *p) noexcept
{
	std::free(p);
}
void
operator delete(void *p, std::size_t) noexcept
{
	std::free(p);
}

using namespace thrillmon;
using namespace thrillmon::detect;

namespace {

PassMetric
Points(const std::string &name, int n)
{
	PassMetric m;
	m.name = name;
	m.category = "custom";
	for (int i = 0; i < n; i++) {
		const double t = 1704067200.0 + i * 60.0;
		m.fresh.push_back(PassPoint {static_cast<std::int64_t>(t * 1e6), t, 100.0 + (i % 3), 0});
	}
	return m;
}

} // namespace

TEST(DetectPassOutOfMemory, OneMetricsFailureIsItsOwn)
{
	ASSERT_GT(sizeof(Detector), std::size_t {4096}) << "a detector is the one large allocation";
	DetectorCache cache(100);
	std::deque<PassMetric> metrics;
	metrics.push_back(Points("needs_a_detector", 40));
	metrics.push_back(Points("lazy", 3));
	metrics.push_back(Points("also_needs_one", 40));
	cache.BeginPass(1, 0);
	PassStats stats;
	fail_at_least = sizeof(Detector);
	std::vector<PassAnomaly> found;
	EXPECT_NO_THROW(found = ScorePass(cache, metrics, 1, &stats));
	fail_at_least = 0;
	cache.EndPass(1, 1704067200.0 + 40 * 60.0);
	EXPECT_EQ(stats.failed, 2u);
	EXPECT_EQ(stats.metrics, 1u) << "the lazy metric was scored";
	EXPECT_EQ(stats.points, 3u);
	EXPECT_TRUE(cache.Holds("lazy"));
	EXPECT_FALSE(cache.Holds("needs_a_detector")) << "forgotten: rebuilt from history next time";
	EXPECT_FALSE(cache.Holds("also_needs_one"));

	// Memory back: the next pass (a rebuild from history for the forgotten ones) scores them all.
	std::deque<PassMetric> again;
	again.push_back(Points("needs_a_detector", 40));
	again.push_back(Points("lazy", 3));
	cache.BeginPass(1, 1);
	ScorePass(cache, again, 1, &stats);
	EXPECT_EQ(stats.failed, 0u);
	EXPECT_EQ(stats.metrics, 2u);
	EXPECT_EQ(cache.detectors(), 1u);
}
