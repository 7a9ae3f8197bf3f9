// DDSketch-style bucketed quantiles with a fixed window per sign (see sketch.hpp).
#include "core/sketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace thrillmon {

namespace {

const double kGamma = (1 + kSketchRelativeAccuracy) / (1 - kSketchRelativeAccuracy);
const double kLogGamma = std::log(kGamma);
constexpr double kMinMagnitude = 1e-12; // below this a value counts as zero

std::int32_t
KeyOf(double magnitude) noexcept
{
	return static_cast<std::int32_t>(std::ceil(std::log(magnitude) / kLogGamma));
}

// The value a key stands for: within the relative accuracy of every value in its bucket.
double
ValueOf(std::int32_t key) noexcept
{
	return 2.0 * std::pow(kGamma, key) / (kGamma + 1.0);
}

// Moves the window so that it starts at new_offset, folding counts that fall below it into the
// lowest bucket (counts above the window cannot occur: callers only move it up to keep the top).
void
Rebase(SketchStore *st, std::int32_t new_offset) noexcept
{
	std::uint64_t moved[kSketchBuckets];
	std::memset(moved, 0, sizeof moved);
	// (64-bit while folding, saturated back to 32 below.)
	for (int i = 0; i < kSketchBuckets; ++i) {
		if (st->counts[i] == 0)
			continue;
		const std::int64_t key = static_cast<std::int64_t>(st->offset) + i;
		std::int64_t j = key - new_offset;
		if (j < 0)
			j = 0;
		if (j >= kSketchBuckets)
			j = kSketchBuckets - 1;
		moved[j] += st->counts[i];
	}
	for (int i = 0; i < kSketchBuckets; ++i)
		st->counts[i] = static_cast<std::uint32_t>(std::min<std::uint64_t>(moved[i], UINT32_MAX));
	st->offset = new_offset;
}

void
StoreAdd(SketchStore *st, std::int32_t key, std::uint64_t n) noexcept
{
	if (!st->used) {
		// Anchor so that this key sits in the middle: room for growth either way.
		st->offset = key - kSketchBuckets / 2;
		st->used = 1;
	}
	std::int64_t i = static_cast<std::int64_t>(key) - st->offset;
	if (i >= kSketchBuckets) {
		// A larger magnitude than the window holds: move up, folding the smallest.
		Rebase(st, key - (kSketchBuckets - 1));
		i = kSketchBuckets - 1;
	} else if (i < 0) {
		// A smaller one: move down if nothing at the top would fall off, else fold it in.
		int top = kSketchBuckets - 1;
		while (top >= 0 && st->counts[top] == 0)
			--top;
		const std::int64_t room = (kSketchBuckets - 1) - top;
		if (-i <= room) {
			Rebase(st, key);
			i = 0;
		} else {
			if (room > 0) {
				Rebase(st, static_cast<std::int32_t>(st->offset - room));
			}
			i = 0;
		}
	}
	const std::uint64_t sum = static_cast<std::uint64_t>(st->counts[i]) + n;
	st->counts[i] = static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, UINT32_MAX));
}

std::uint64_t
StoreTotal(const SketchStore &st) noexcept
{
	std::uint64_t n = 0;
	for (int i = 0; i < kSketchBuckets; ++i)
		n += st.counts[i];
	return n;
}

void
SetSum(ObservationStats *s, long double v) noexcept
{
	std::memcpy(s->sum_bytes, &v, sizeof v);
}

} // namespace

long double
StatsSum(const ObservationStats &s) noexcept
{
	long double v;
	std::memcpy(&v, s.sum_bytes, sizeof v);
	return v;
}

void
StatsReset(ObservationStats *s) noexcept
{
	std::memset(s, 0, sizeof *s);
	SetSum(s, 0.0L);
	s->min = std::numeric_limits<double>::infinity();
	s->max = -std::numeric_limits<double>::infinity();
}

void
StatsAdd(ObservationStats *s, double value) noexcept
{
	s->count++;
	SetSum(s, StatsSum(*s) + value);
	s->min = std::min(s->min, value);
	s->max = std::max(s->max, value);
	const double magnitude = std::fabs(value);
	if (magnitude < kMinMagnitude)
		s->zero_count++;
	else if (value > 0)
		StoreAdd(&s->positive, KeyOf(magnitude), 1);
	else
		StoreAdd(&s->negative, KeyOf(magnitude), 1);
}

void
StatsMerge(ObservationStats *into, const ObservationStats &from) noexcept
{
	if (from.count == 0)
		return;
	into->count += from.count;
	SetSum(into, StatsSum(*into) + StatsSum(from));
	into->min = std::min(into->min, from.min);
	into->max = std::max(into->max, from.max);
	into->zero_count += from.zero_count;
	const SketchStore *src[2] = {&from.positive, &from.negative};
	SketchStore *dst[2] = {&into->positive, &into->negative};
	for (int k = 0; k < 2; ++k) {
		if (!src[k]->used)
			continue;
		// Highest keys first, so the window settles on the top before lower keys arrive.
		for (int i = kSketchBuckets - 1; i >= 0; --i)
			if (src[k]->counts[i] != 0)
				StoreAdd(dst[k], src[k]->offset + i, src[k]->counts[i]);
	}
}

double
StatsMean(const ObservationStats &s) noexcept
{
	if (s.count == 0)
		return 0.0;
	const long double mean = StatsSum(s) / static_cast<long double>(s.count);
	// Rounding of an extended mean of finite values may still land a hair past the range.
	return std::clamp(static_cast<double>(mean), s.min, s.max);
}

double
StatsSumAsDouble(const ObservationStats &s) noexcept
{
	const long double limit = std::numeric_limits<double>::max();
	const long double sum = StatsSum(s);
	if (sum > limit || sum < -limit)
		return std::numeric_limits<double>::quiet_NaN();
	return static_cast<double>(sum);
}

double
StatsQuantile(const ObservationStats &s, double q) noexcept
{
	if (s.count == 0)
		return 0.0;
	if (q <= 0)
		return s.min;
	if (q >= 1)
		return s.max;
	// Rank among the sorted values: negatives (largest magnitude first), zeros, positives.
	const std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(s.count - 1));
	std::uint64_t seen = 0;
	const std::uint64_t negatives = StoreTotal(s.negative);
	double result = 0.0;
	if (rank < negatives) {
		for (int i = kSketchBuckets - 1; i >= 0; --i) {
			seen += s.negative.counts[i];
			if (seen > rank) {
				result = -ValueOf(s.negative.offset + i);
				break;
			}
		}
	} else if (rank < negatives + s.zero_count) {
		result = 0.0;
	} else {
		seen = negatives + s.zero_count;
		for (int i = 0; i < kSketchBuckets; ++i) {
			seen += s.positive.counts[i];
			if (seen > rank) {
				result = ValueOf(s.positive.offset + i);
				break;
			}
		}
	}
	// The bucket estimate never reaches beyond what was observed.
	return std::clamp(result, s.min, s.max);
}

} // namespace thrillmon
