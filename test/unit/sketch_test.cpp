// Observation statistics: exact count/sum/min/max, quantiles within 1% relative error, merging.
#include "core/sketch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

using namespace thrillmon;

namespace {

std::unique_ptr<ObservationStats>
Fresh()
{
	auto s = std::make_unique<ObservationStats>();
	StatsReset(s.get());
	return s;
}

double
TrueQuantile(std::vector<double> v, double q)
{
	std::sort(v.begin(), v.end());
	return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

void
ExpectQuantilesWithin1Percent(const std::vector<double> &values, const ObservationStats &s)
{
	for (double q : {0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}) {
		const double truth = TrueQuantile(values, q);
		const double est = StatsQuantile(s, q);
		EXPECT_LE(std::fabs(est - truth), 0.01 * std::fabs(truth) + 1e-12)
		    << "q=" << q << " truth=" << truth << " est=" << est;
	}
}

} // namespace

TEST(Sketch, EmptyIsZero)
{
	auto s = Fresh();
	EXPECT_EQ(s->count, 0u);
	EXPECT_EQ(StatsQuantile(*s, 0.5), 0.0);
}

TEST(Sketch, ExactAggregates)
{
	auto s = Fresh();
	for (double v : {3.0, 1.0, 2.0, 10.0, -4.0})
		StatsAdd(s.get(), v);
	EXPECT_EQ(s->count, 5u);
	EXPECT_DOUBLE_EQ(static_cast<double>(StatsSum(*s)), 12.0);
	EXPECT_DOUBLE_EQ(StatsMean(*s), 2.4);
	EXPECT_DOUBLE_EQ(s->min, -4.0);
	EXPECT_DOUBLE_EQ(s->max, 10.0);
	EXPECT_DOUBLE_EQ(StatsQuantile(*s, 0.0), -4.0);
	EXPECT_DOUBLE_EQ(StatsQuantile(*s, 1.0), 10.0);
}

TEST(Sketch, LognormalLatenciesWithinOnePercent)
{
	std::mt19937_64 rng(42);
	std::lognormal_distribution<double> d(std::log(120.0), 0.8); // API response times in ms
	std::vector<double> values;
	auto s = Fresh();
	for (int i = 0; i < 200000; ++i) {
		values.push_back(d(rng));
		StatsAdd(s.get(), values.back());
	}
	ExpectQuantilesWithin1Percent(values, *s);
}

TEST(Sketch, UniformWithZerosAndNegatives)
{
	std::mt19937_64 rng(7);
	std::uniform_real_distribution<double> d(-50.0, 500.0);
	std::vector<double> values;
	auto s = Fresh();
	for (int i = 0; i < 100000; ++i) {
		double v = (i % 10 == 0) ? 0.0 : d(rng);
		values.push_back(v);
		StatsAdd(s.get(), v);
	}
	ExpectQuantilesWithin1Percent(values, *s);
}

TEST(Sketch, MergeEqualsAddingEverything)
{
	std::mt19937_64 rng(3);
	std::exponential_distribution<double> d(0.01);
	auto a = Fresh(), b = Fresh(), all = Fresh();
	std::vector<double> values;
	for (int i = 0; i < 50000; ++i) {
		const double v = d(rng) + 0.5;
		values.push_back(v);
		StatsAdd(i % 3 ? a.get() : b.get(), v);
		StatsAdd(all.get(), v);
	}
	StatsMerge(a.get(), *b);
	EXPECT_EQ(a->count, all->count);
	EXPECT_NEAR(static_cast<double>(StatsSum(*a)), static_cast<double>(StatsSum(*all)),
	            1e-6 * static_cast<double>(StatsSum(*all)));
	EXPECT_EQ(a->min, all->min);
	EXPECT_EQ(a->max, all->max);
	ExpectQuantilesWithin1Percent(values, *a);
	StatsMerge(a.get(), *Fresh()); // merging nothing changes nothing
	EXPECT_EQ(a->count, all->count);
}

TEST(Sketch, WideRangeKeepsTheHighQuantiles)
{
	// Twelve orders of magnitude in one interval: the lowest values fold, the top stays exact.
	auto s = Fresh();
	std::vector<double> values;
	for (int e = -6; e <= 6; ++e)
		for (int i = 1; i <= 100; ++i) {
			values.push_back(i * std::pow(10.0, e));
			StatsAdd(s.get(), values.back());
		}
	for (double q : {0.9, 0.95, 0.99}) {
		const double truth = TrueQuantile(values, q);
		EXPECT_LE(std::fabs(StatsQuantile(*s, q) - truth), 0.01 * truth) << q;
	}
	EXPECT_EQ(s->count, values.size());
}

TEST(Sketch, SumsPastTheDoubleRangeKeepAFiniteMean)
{
	auto s = Fresh();
	const double big = std::numeric_limits<double>::max();
	StatsAdd(s.get(), big);
	StatsAdd(s.get(), big);
	EXPECT_EQ(StatsMean(*s), big);
	EXPECT_TRUE(std::isnan(StatsSumAsDouble(*s)));
	EXPECT_EQ(StatsQuantile(*s, 0.5), big);
	auto t = Fresh();
	StatsAdd(t.get(), -big);
	StatsAdd(t.get(), big);
	EXPECT_EQ(StatsMean(*t), 0.0);
	EXPECT_EQ(StatsSumAsDouble(*t), 0.0);
}

TEST(Sketch, WorksAtTheEightByteAlignmentOfSharedMemoryAndPalloc)
{
	// Shared memory and palloc align to 8 bytes; a 16-byte-aligned member (long double) there
	// was a segfault. Under UBSan (make sanitize) a misaligned access here is reported.
	alignas(16) static unsigned char buffer[sizeof(ObservationStats) + 8];
	auto *s = reinterpret_cast<ObservationStats *>(buffer + 8);
	StatsReset(s);
	StatsAdd(s, 2.0);
	StatsAdd(s, 4.0);
	ObservationStats copy;
	std::memcpy(&copy, s, sizeof copy);
	StatsMerge(s, copy);
	EXPECT_EQ(s->count, 4u);
	EXPECT_EQ(StatsMean(*s), 3.0);
}
