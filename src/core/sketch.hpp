// Observation statistics for observe(): count, sum, min, max and a relative-error quantile
// sketch (DDSketch-style log buckets), in one fixed-size, trivially copyable struct so that it
// can live in shared memory, be updated under a spinlock without allocating, and be merged.
//
// Accuracy: a bucket covers values within a factor gamma = (1 + a) / (1 - a) with a = 0.01, and
// the estimate of a quantile is the bucket's midpoint in that sense, so every quantile whose
// bucket was not collapsed is within 1% of a true value of the sample. Each sign has a window of
// buckets that follows the largest magnitudes seen; magnitudes more than kBuckets buckets below
// the largest (a dynamic range of about 8e8) are folded into the window's lowest bucket, which
// only affects the lowest quantiles of such a wide sample.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <type_traits>

namespace thrillmon {

constexpr double kSketchRelativeAccuracy = 0.01;
constexpr int kSketchBuckets = 1024;

struct SketchStore {
	std::int32_t offset; // key of counts[0]
	std::int32_t used;   // 0 until the first value
	std::uint32_t counts[kSketchBuckets]; // saturating: 4e9 per bucket per flush interval
};

struct ObservationStats {
	std::uint64_t count;
	double sum;
	double min;
	double max;
	std::uint64_t zero_count; // |v| below the smallest bucket (including 0)
	SketchStore positive;
	SketchStore negative; // by magnitude
};

static_assert(std::is_trivially_copyable<ObservationStats>::value, "lives in shared memory");

void
StatsReset(ObservationStats *s) noexcept;

// Adds one finite value (the caller rejects NaN and infinities).
void
StatsAdd(ObservationStats *s, double value) noexcept;

// Adds everything in `from` to `into`.
void
StatsMerge(ObservationStats *into, const ObservationStats &from) noexcept;

// The q-quantile (0 <= q <= 1) estimate; 0 for an empty sample.
double
StatsQuantile(const ObservationStats &s, double q) noexcept;

} // namespace thrillmon
