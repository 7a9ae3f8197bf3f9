// Throughput of the streaming detector (src/core/detect.cpp): points per second of Update() for
// the default ensemble and each single algorithm, Learn() (the state rebuild path), and the cost
// of constructing a Detector (a metric's cold state). Built and run by bench/core/run.sh.
//
// The stream is realistic for a monitored metric: one point a minute, N(100, 1) noise with a daily
// swing, a 1 % chance of a spike and a rare level shift. It is generated once, up front, so the
// timed loop measures the detector only; a detector is warmed up on a week of it before timing,
// so the figures are for the steady state (every component on, seasonal buckets trusted).
#include "core/detect.hpp"

#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

using namespace thrillmon::detect;

namespace {

constexpr double kT0 = 1704067200.0;     // 2024-01-01 00:00 UTC
constexpr std::size_t kStream = 1 << 16; // points in the timed stream (cycled)
constexpr std::size_t kWarm = 10080;     // a week at one a minute

const std::vector<Point> &
Stream()
{
	static const std::vector<Point> points = [] {
		std::vector<Point> v;
		v.reserve(kWarm + kStream);
		std::mt19937_64 rng(12345);
		std::normal_distribution<double> noise(0, 1);
		std::uniform_real_distribution<double> u(0, 1);
		double level = 100;
		for (std::size_t i = 0; i < kWarm + kStream; i++) {
			const double t = kT0 + 60.0 * static_cast<double>(i);
			if (u(rng) < 1e-4)
				level += 8 * (u(rng) < 0.5 ? -1 : 1);
			double x = level + 5 * std::sin(2 * M_PI * std::fmod(t, 86400.0) / 86400.0) + noise(rng);
			if (u(rng) < 0.01)
				x += (u(rng) < 0.5 ? -1 : 1) * (6 + 10 * u(rng));
			v.push_back(MakePoint(t, x, 3600));
		}
		return v;
	}();
	return points;
}

std::unique_ptr<Detector>
Warmed(std::uint32_t algorithms)
{
	Settings s;
	s.algorithms = algorithms;
	auto d = std::make_unique<Detector>(s);
	const std::vector<Point> &v = Stream();
	for (std::size_t i = 0; i < kWarm; i++)
		d->Learn(v[i]);
	return d;
}

// Update() on the stream after the warm-up week; time keeps moving forward when the stream is
// cycled (the points are shifted by the stream's length), so the detector never sees time go back.
void
BM_Update(benchmark::State &state, std::uint32_t algorithm_bits)
{
	const std::uint32_t algorithms = algorithm_bits;
	auto d = Warmed(algorithms);
	const std::vector<Point> &v = Stream();
	std::size_t i = 0;
	double shift = 0, anomalies = 0;
	for (auto _ : state) {
		Point p = v[kWarm + i];
		p.t += shift;
		Score s = d->Update(p);
		benchmark::DoNotOptimize(s);
		anomalies += s.anomaly;
		if (++i == kStream) {
			i = 0;
			shift += 60.0 * kStream; // continues one minute after the last point (local fields are reused)
		}
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
	state.counters["anomaly_rate"] = benchmark::Counter(anomalies, benchmark::Counter::kAvgIterations);
}

void
BM_Learn(benchmark::State &state)
{
	auto d = Warmed(AlgorithmBit(Algorithm::kEnsemble));
	const std::vector<Point> &v = Stream();
	std::size_t i = 0;
	double shift = 0;
	for (auto _ : state) {
		Point p = v[kWarm + i];
		p.t += shift;
		d->Learn(p);
		if (++i == kStream) {
			i = 0;
			shift += 60.0 * kStream;
		}
	}
	benchmark::DoNotOptimize(d->points());
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// A metric's cold state: constructing a Detector (zeroing its fixed-size arrays). Placement into
// reused storage, as a per-metric cache would do, so malloc is not what is measured.
void
BM_Construct(benchmark::State &state)
{
	alignas(Detector) static unsigned char storage[sizeof(Detector)];
	Settings s;
	for (auto _ : state) {
		Detector *d = new (storage) Detector(s);
		benchmark::DoNotOptimize(d);
		benchmark::ClobberMemory();
		d->~Detector();
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
	state.counters["bytes"] = static_cast<double>(Detector::MemoryBytes());
}

// Constructing on the heap, as a first point of a new metric would.
void
BM_ConstructHeap(benchmark::State &state)
{
	Settings s;
	for (auto _ : state) {
		auto d = std::make_unique<Detector>(s);
		benchmark::DoNotOptimize(d.get());
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// A cold detector brought to its steady state: the first 1000 points of a metric (warm-up,
// calibration histograms filling), per point.
void
BM_ColdStart1000(benchmark::State &state)
{
	const std::vector<Point> &v = Stream();
	Settings s;
	for (auto _ : state) {
		auto d = std::make_unique<Detector>(s);
		for (std::size_t i = 0; i < 1000; i++)
			benchmark::DoNotOptimize(d->Update(v[i]));
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
}

} // namespace

BENCHMARK_CAPTURE(BM_Update, ensemble, AlgorithmBit(Algorithm::kEnsemble))->Name("update/ensemble");
BENCHMARK_CAPTURE(BM_Update, z_score, AlgorithmBit(Algorithm::kZScore))->Name("update/z_score");
BENCHMARK_CAPTURE(BM_Update, mad, AlgorithmBit(Algorithm::kMad))->Name("update/mad");
BENCHMARK_CAPTURE(BM_Update, moving_average, AlgorithmBit(Algorithm::kMovingAverage))->Name("update/moving_average");
BENCHMARK_CAPTURE(BM_Update, rate_of_change, AlgorithmBit(Algorithm::kRateOfChange))->Name("update/rate_of_change");
BENCHMARK_CAPTURE(BM_Update, ewma, AlgorithmBit(Algorithm::kEwma))->Name("update/ewma");
BENCHMARK_CAPTURE(BM_Update, cusum, AlgorithmBit(Algorithm::kCusum))->Name("update/cusum");
BENCHMARK_CAPTURE(BM_Update, seasonal, AlgorithmBit(Algorithm::kSeasonal))->Name("update/seasonal");
BENCHMARK_CAPTURE(BM_Update, predictive, AlgorithmBit(Algorithm::kPredictive))->Name("update/predictive");
BENCHMARK(BM_Learn)->Name("learn/ensemble");
BENCHMARK(BM_Construct)->Name("construct/placement");
BENCHMARK(BM_ConstructHeap)->Name("construct/heap");
BENCHMARK(BM_ColdStart1000)->Name("cold_start_1000_points/ensemble");
