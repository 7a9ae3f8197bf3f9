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
	std::int32_t offset;                  // key of counts[0]
	std::int32_t used;                    // 0 until the first value
	std::uint32_t counts[kSketchBuckets]; // saturating: 4e9 per bucket per flush interval
};

struct ObservationStats {
	std::uint64_t count;
	// The sum, a long double kept as bytes (read it with StatsSum()): extended precision because
	// finite values can add up past DBL_MAX (two observations of 1e308) and the mean must stay
	// finite; as bytes because long double wants 16-byte alignment, which shared memory and
	// palloc do not promise, and a misaligned long double is a segfault on x86-64.
	unsigned char sum_bytes[sizeof(long double)];
	double min;
	double max;
	std::uint64_t zero_count; // |v| below the smallest bucket (including 0)
	SketchStore positive;
	SketchStore negative; // by magnitude
};

static_assert(std::is_trivially_copyable<ObservationStats>::value, "lives in shared memory");
static_assert(alignof(ObservationStats) <= 8, "shared memory and palloc align to 8 bytes only");

// The sum of the values added so far.
long double StatsSum(const ObservationStats &s) noexcept;

void StatsReset(ObservationStats *s) noexcept;

// Adds one finite value (the caller rejects NaN and infinities).
void StatsAdd(ObservationStats *s, double value) noexcept;

// Adds everything in `from` to `into`.
void StatsMerge(ObservationStats *into, const ObservationStats &from) noexcept;

// The mean as a finite double (0 for an empty sample).
double StatsMean(const ObservationStats &s) noexcept;

// The sum as a double, or NaN when it does not fit one (the caller reports it as unknown).
double StatsSumAsDouble(const ObservationStats &s) noexcept;

// The q-quantile (0 <= q <= 1) estimate; 0 for an empty sample.
double StatsQuantile(const ObservationStats &s, double q) noexcept;

} // namespace thrillmon
