// The shapes ops metrics really have, through the default detector (the ensemble at sensitivity
// 4.5) at one point a minute: how often each raises an anomaly when nothing is wrong, and the
// flatline (a metric that stops changing). Series generated here, fixed seeds.
#include "core/detect.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace thrillmon::detect;

namespace {

constexpr double kT0 = 1704067200.0; // 2024-01-01 00:00 UTC, a Monday
constexpr double kMinute = 60.0;
constexpr int kWeek = 10080; // points

// A shape: the value at minute i (t its UTC time), drawn from rng; and the zone's UTC offset at t.
struct Shape {
	const char *name;
	std::function<double(int i, double t, std::mt19937_64 &rng)> value;
	std::function<long(double t)> offset = [](double) {
		return 0L;
	};
};

double
Diurnal(double local_seconds)
{
	return 100 + 30 * std::sin(2 * M_PI * std::fmod(local_seconds, 86400.0) / 86400.0);
}

// Europe-like DST: +1 h, then +2 h from 2024-03-31 01:00 UTC (a week into the series below).
long
DstOffset(double t)
{
	return t < 1711846800.0 ? 3600L : 7200L;
}

std::vector<Shape>
Shapes()
{
	std::vector<Shape> s;
	s.push_back({"gaussian", [](int, double, std::mt19937_64 &r) {
		             return std::normal_distribution<double>(100, 1)(r);
	             }});
	s.push_back({"student_t3", [](int, double, std::mt19937_64 &r) {
		             return 100 + std::student_t_distribution<double>(3)(r);
	             }});
	s.push_back({"lognormal_latency", [](int, double, std::mt19937_64 &r) {
		             return std::exp(std::normal_distribution<double>(std::log(50.0), 0.5)(r));
	             }});
	s.push_back({"poisson_0.3", [](int, double, std::mt19937_64 &r) {
		             return static_cast<double>(std::poisson_distribution<int>(0.3)(r));
	             }});
	s.push_back({"poisson_4", [](int, double, std::mt19937_64 &r) {
		             return static_cast<double>(std::poisson_distribution<int>(4)(r));
	             }});
	s.push_back({"binary_98_2", [](int, double, std::mt19937_64 &r) {
		             return std::bernoulli_distribution(0.02)(r) ? 1.0 : 0.0;
	             }});
	// Mostly 0; now and then (1 in 200 minutes) a burst of 1 to 3 for 1 to 3 minutes.
	s.push_back({"rare_bursts", [left = 0, level = 0.0](int, double, std::mt19937_64 &r) mutable {
		             if (left == 0 && std::bernoulli_distribution(0.005)(r)) {
			             left = std::uniform_int_distribution<int>(1, 3)(r);
			             level = std::uniform_int_distribution<int>(1, 3)(r);
		             }
		             if (left > 0) {
			             left--;
			             return level;
		             }
		             return 0.0;
	             }});
	s.push_back({"integer_gauge", [](int, double, std::mt19937_64 &r) {
		             return std::round(std::normal_distribution<double>(20, 2)(r));
	             }});
	// A table's size: grows by about 10 kB a minute, in steps of a 8 kB page.
	s.push_back({"growing_size", [size = 1e9](int, double, std::mt19937_64 &r) mutable {
		             size += 8192.0 * std::poisson_distribution<int>(1.25)(r);
		             return size;
	             }});
	s.push_back({"diurnal_across_dst",
	             [](int, double t, std::mt19937_64 &r) {
		             return Diurnal(t + static_cast<double>(DstOffset(t))) + std::normal_distribution<double>(0, 2)(r);
	             },
	             DstOffset});
	return s;
}

// Anomalies per week of `shape` over `weeks` weeks from kT0 (after the first `skip` points).
double
WeeklyRate(const Shape &shape, std::uint64_t seed, int points, int skip = 0)
{
	Settings settings; // the defaults: ensemble, 4.5, 30
	Detector d(settings);
	std::mt19937_64 rng(seed);
	Shape s = shape; // (its generator may keep state)
	int n = 0;
	for (int i = 0; i < points; i++) {
		const double t = kT0 + i * kMinute;
		const Score sc = d.Update(MakePoint(t, s.value(i, t, rng), s.offset(t)));
		if (i >= skip)
			n += sc.anomaly;
		// (SHAPE_DEBUG=1 prints each anomaly: which component found what, where.)
		if (sc.anomaly && std::getenv("SHAPE_DEBUG"))
			std::printf("# %s %d %s %s %.2f\n", shape.name, i, AnomalyTypeName(sc.type), AlgorithmName(sc.algorithm),
			            sc.deviation);
	}
	return n * static_cast<double>(kWeek) / (points - skip);
}

// The seeds of the rates below: 11 and 22, or the two in SHAPE_SEEDS ("33,44"), to see how far
// the figures hold on series the detector was not looked at on.
std::pair<std::uint64_t, std::uint64_t>
Seeds()
{
	unsigned long long a = 11, b = 22;
	if (const char *env = std::getenv("SHAPE_SEEDS"))
		if (std::sscanf(env, "%llu,%llu", &a, &b) != 2)
			a = 11, b = 22;
	return {a, b};
}

} // namespace

// The rates, printed for bench/README.md (and the table): each shape, two seeds, two weeks
// (the DST change falls in the second), and the first three days of a diurnal series alone
// (before any daily profile exists).
TEST(Shapes, WeeklyRatesOnHealthySeries)
{
	const auto [seed_a, seed_b] = Seeds();
	std::map<std::string, double> rate;
	for (const Shape &s : Shapes()) {
		double sum = 0;
		for (std::uint64_t seed : {seed_a, seed_b})
			sum += WeeklyRate(s, seed, 2 * kWeek);
		rate[s.name] = sum / 2;
	}
	Shape first_days {"diurnal_first_3_days", [](int, double t, std::mt19937_64 &r) {
		                  return Diurnal(t) + std::normal_distribution<double>(0, 2)(r);
	                  }};
	rate[first_days.name] = (WeeklyRate(first_days, seed_a, 3 * 1440) + WeeklyRate(first_days, seed_b, 3 * 1440)) / 2;
	for (const auto &[name, r] : rate)
		std::printf("[ info     ] shape %-22s %5.2f anomalies per week (requirement <= 1)\n", name.c_str(), r);
	// What holds today. The rest are measured and printed: quieting them by calibrating the far
	// tail (beyond the one-decade extrapolation below) cost 4 NAB points, so it is not done yet.
	// The sparse shapes (the flag, the small count) hold since their moves are measured against
	// their own size, the larger count since its tail is extrapolated a decade (2.5 a week
	// without), and a diurnal series' first days since a new metric learns before it speaks (the
	// CUSUM against a window still filling climbed on the first hour's rise: 2.3 a week without),
	// and the rare bursts since the averaging components' far tail is also estimated from their
	// 0.9 and 0.99 quantiles (1.5 a week without: chance pairs of bursts, in the first days).
	for (const char *name : {"gaussian", "integer_gauge", "growing_size", "diurnal_across_dst", "diurnal_first_3_days",
	                         "binary_98_2", "poisson_0.3", "poisson_4", "rare_bursts"})
		EXPECT_LE(rate[name], 1.0) << name;
}

// The CUSUM's steps are divided by their own root mean square: on heavy-tailed noise its sum no
// longer drifts past the threshold every few days (11 of these series' 30 anomalies were its level
// shifts before; 3 after), and a real shift on the same noise is still found within minutes.
TEST(Shapes, TheCusumIsQuietOnHeavyTailsAndStillSeesAShift)
{
	std::map<std::string, Shape> by_name;
	for (const Shape &s : Shapes())
		by_name.emplace(s.name, s);
	int cusum = 0;
	for (const char *name : {"student_t3", "lognormal_latency"})
		for (std::uint64_t seed : {11u, 22u}) {
			Detector d(Settings {});
			std::mt19937_64 rng(seed);
			Shape s = by_name.at(name);
			for (int i = 0; i < 2 * kWeek; i++) {
				const double t = kT0 + i * kMinute;
				const Score sc = d.Update(MakePoint(t, s.value(i, t, rng), 0));
				cusum += sc.anomaly && sc.algorithm == Algorithm::kCusum;
			}
		}
	EXPECT_LE(cusum, 3);

	// Student-t(3) for a week, then the same noise 3 robust deviations higher (the robust scale of
	// t(3) noise is about 1.38, the mean |deviation| times sqrt(pi / 2)).
	Detector d(Settings {});
	std::mt19937_64 rng(7);
	std::student_t_distribution<double> t3(3);
	int found = -1, before = 0;
	for (int i = 0; i < kWeek + 60 && found < 0; i++) {
		const bool shifted = i >= kWeek;
		const Score sc = d.Update(MakePoint(kT0 + i * kMinute, 100 + t3(rng) + (shifted ? 3 * 1.38 : 0), 0));
		if (sc.anomaly && shifted)
			found = i - kWeek;
		else if (sc.anomaly)
			before++;
	}
	EXPECT_GE(found, 0) << "the shift is found";
	EXPECT_LE(found, 6) << "within 6 minutes";
	std::printf("[ info     ] a 3-deviation shift on Student-t(3) noise found after %d minutes (%d anomalies in "
	            "the week before)\n",
	            found, before);
}

// ---- flatline -------------------------------------------------------------------------------

TEST(Flatline, AMetricThatStopsChangingIsReportedOnce)
{
	Settings settings;
	Detector d(settings);
	std::mt19937_64 rng(5);
	std::normal_distribution<double> noise(100, 1);
	double t = kT0;
	int before = 0;
	for (int i = 0; i < 2 * 1440; i++, t += kMinute)
		before += d.Update(MakePoint(t, noise(rng), 0)).anomaly;
	EXPECT_EQ(before, 0);
	std::vector<int> at;
	std::vector<Score> flat;
	for (int i = 1; i <= 600; i++, t += kMinute) {
		const Score s = d.Update(MakePoint(t, 100.25, 0));
		if (s.anomaly && s.type == AnomalyType::kFlatline) {
			at.push_back(i);
			flat.push_back(s);
		}
	}
	ASSERT_EQ(at.size(), 1u) << "once per run";
	EXPECT_EQ(at[0], static_cast<int>(Detector::kFlatMinPoints)) << "after kFlatMinPoints repeats";
	EXPECT_EQ(flat[0].severity, Severity::kMedium);
	EXPECT_GE(flat[0].score, 0.8) << "above the default alert threshold";
	EXPECT_STREQ(AnomalyTypeName(flat[0].type), "flatline");
}

TEST(Flatline, ALongerRunThanTheMetricHasShownIsNeededAndSeenRunsRaiseTheBar)
{
	Settings settings;
	Detector d(settings);
	std::mt19937_64 rng(6);
	std::normal_distribution<double> noise(100, 1);
	double t = kT0;
	int flat = 0;
	auto feed = [&](double v) {
		flat += d.Update(MakePoint(t, v, 0)).type == AnomalyType::kFlatline;
		t += kMinute;
	};
	for (int i = 0; i < 1440; i++)
		feed(noise(rng));
	for (int i = 0; i < 100; i++) // a first flat stretch: reported
		feed(50);
	EXPECT_EQ(flat, 1);
	for (int i = 0; i < 1440; i++)
		feed(noise(rng));
	for (int i = 0; i < 300; i++) // 300 < 4 x 100: a run like ones it has shown
		feed(50);
	EXPECT_EQ(flat, 1) << "a run no longer than four times the longest seen is not news";
	for (int i = 0; i < 1440; i++)
		feed(noise(rng));
	for (int i = 0; i < 500; i++) // 300 became the longest run: 1200 are needed now
		feed(50);
	EXPECT_EQ(flat, 1) << "the bar rose with the runs seen";
	for (int i = 0; i < 1440; i++)
		feed(noise(rng));
	for (int i = 0; i < 2100; i++) // past four times the longest (500, decayed a little)
		feed(50);
	EXPECT_EQ(flat, 2) << "a run far past any seen is news again";
}

TEST(Flatline, OnlyTheEnsembleAndOnlyAfterAWindowOfHistory)
{
	Settings mad;
	mad.algorithms = AlgorithmBit(Algorithm::kMad);
	Settings ens;
	Detector a(mad), b(ens);
	double t = kT0;
	int flat_a = 0, flat_b = 0;
	std::mt19937_64 rng(7);
	std::normal_distribution<double> noise(100, 1);
	for (int i = 0; i < 100; i++, t += kMinute) { // fewer than kWindow points of history
		const double v = noise(rng);
		a.Update(MakePoint(t, v, 0));
		b.Update(MakePoint(t, v, 0));
	}
	for (int i = 0; i < 300; i++, t += kMinute) {
		flat_a += a.Update(MakePoint(t, 7, 0)).type == AnomalyType::kFlatline;
		flat_b += b.Update(MakePoint(t, 7, 0)).type == AnomalyType::kFlatline;
	}
	EXPECT_EQ(flat_a, 0) << "a single algorithm does not report flatlines";
	EXPECT_EQ(flat_b, 0) << "a metric constant from its first window on has never varied";
}

// ---- a slow leak ----------------------------------------------------------------------------

// A metric climbing steadily to three times its level over a day (memory leaking, a queue
// backing up) after two quiet days: found before it has doubled.
TEST(Leak, ASteadyClimbToThreeTimesOverADayIsFoundBeforeItDoubles)
{
	for (std::uint64_t seed : {31u, 32u, 33u}) {
		Settings settings;
		Detector d(settings);
		std::mt19937_64 rng(seed);
		std::normal_distribution<double> noise(0, 2);
		double t = kT0;
		int before = 0;
		for (int i = 0; i < 2 * 1440; i++, t += kMinute)
			before += d.Update(MakePoint(t, 100 + noise(rng), 0)).anomaly;
		int found_at = -1;
		std::string how;
		for (int i = 1; i <= 1440; i++, t += kMinute) {
			const Score s = d.Update(MakePoint(t, 100 + 200.0 * i / 1440 + noise(rng), 0));
			if (s.anomaly && found_at < 0) {
				found_at = i;
				how = std::string(AnomalyTypeName(s.type)) + " by " + AlgorithmName(s.algorithm);
			}
		}
		std::printf("[ info     ] leak seed %llu: found after %d minutes (level %.0f), %s; %d before it\n",
		            static_cast<unsigned long long>(seed), found_at, 100 + 200.0 * found_at / 1440, how.c_str(),
		            before);
		EXPECT_LE(before, 1) << "quiet before the leak";
		ASSERT_GT(found_at, 0) << "never found";
		EXPECT_LT(100 + 200.0 * found_at / 1440, 200.0) << "found before the level doubled";
	}
}
