// libFuzzer target over the core's parsers, validators, calendar math and sketch. Each input's
// first byte picks what to exercise; invariants that must hold for every input are checked and a
// violation traps (libFuzzer then saves the input). Run by `make fuzz` for a fixed number of
// inputs with a fixed seed, under AddressSanitizer and UndefinedBehaviorSanitizer.
#include "core/civil_time.hpp"
#include "core/partitions.hpp"
#include "core/schedule.hpp"
#include "core/detect.hpp"
#include "core/detect_config.hpp"
#include "core/sketch.hpp"
#include "core/validation.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

using namespace thrillmon;

namespace {

void
Check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

template <typename T>
T
Take(const std::uint8_t *&data, std::size_t &size)
{
	T v {};
	const std::size_t n = size < sizeof v ? size : sizeof v;
	std::memcpy(&v, data, n);
	data += n;
	size -= n;
	return v;
}

void
FuzzName(const std::uint8_t *data, std::size_t size)
{
	const std::string_view name(reinterpret_cast<const char *>(data), size);
	const auto e = ValidateMetricName(name);
	if (!e) {
		// Accepted: not blank, no control character, at most 128 code points.
		std::size_t chars = 0;
		bool blank = true;
		for (unsigned char c : name) {
			Check(c >= 0x20 && c != 0x7F);
			if ((c & 0xC0) != 0x80)
				++chars;
			if (c != ' ')
				blank = false;
		}
		Check(!blank && chars <= kMaxMetricNameChars);
	} else {
		Check(e->sqlstate.size() == 5 && e->sqlstate.compare(0, 2, "22") == 0 && !e->message.empty());
	}
	(void) ValidateCategory(name);
}

void
FuzzPartitionName(const std::uint8_t *data, std::size_t size)
{
	const std::string name(reinterpret_cast<const char *>(data), size);
	const std::string prefixed = std::string(kPartitionPrefix) + name;
	for (const std::string *s : {&name, &prefixed}) {
		if (auto day = ParsePartitionName(*s)) {
			auto p = PartitionForDay(*day);
			Check(p.has_value() && p->name == *s); // names round-trip exactly
		}
	}
}

void
FuzzCalendar(const std::uint8_t *data, std::size_t size)
{
	const std::int64_t raw = Take<std::int64_t>(data, size);
	const std::int64_t day = raw % (INT64_C(4000000)); // +-10,000 years
	const CivilDate c = CivilFromDays(day);
	Check(IsValidDate(c) && DaysFromCivil(c) == day);
	const EpochMicros t = day * kMicrosPerDay + (raw & 0xFFFFFFF) % kMicrosPerDay;
	Check(DayIndexOf(t) == day);
	const int interval = 1 + static_cast<int>(static_cast<std::uint64_t>(raw) % 86400);
	const EpochMicros next = NextSlot(t, interval);
	Check(next > t && next - t <= static_cast<EpochMicros>(interval) * kMicrosPerSecond &&
	      CurrentSlot(t, interval) <= t);
	const int days = static_cast<int>(raw % 50000);
	const auto e = ValidateRetentionDays(days, "retention_days");
	Check(e.has_value() == (days < 1 || days > kMaxRetentionDays));
	if (!e)
		Check(RetentionCutoff(t, days) == t - days * kMicrosPerDay);
	if (auto p = PartitionForDay(day))
		Check(ParsePartitionName(p->name) == day);
}

void
FuzzSketch(const std::uint8_t *data, std::size_t size)
{
	auto a = std::make_unique<ObservationStats>();
	auto b = std::make_unique<ObservationStats>();
	StatsReset(a.get());
	StatsReset(b.get());
	std::uint64_t n = 0;
	while (size >= sizeof(double)) {
		const double v = Take<double>(data, size);
		if (!std::isfinite(v) || std::fabs(v) > 1e300)
			continue;
		StatsAdd((n++ % 2) ? a.get() : b.get(), v);
	}
	StatsMerge(a.get(), *b);
	Check(a->count == n);
	if (n == 0)
		return;
	double prev = -INFINITY;
	for (double q : {0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0}) {
		const double v = StatsQuantile(*a, q);
		Check(v >= a->min && v <= a->max && v >= prev); // within range, monotone in q
		prev = v;
	}
}

} // namespace

// The detectors on arbitrary streams: any algorithm set, sensitivity and minimum, values and time
// steps taken from the input (finite values, as the glue guarantees; time may go backwards or
// jump), algorithm names parsed from the input. Every score must be sane.
void
FuzzDetector(const std::uint8_t *data, std::size_t size)
{
	namespace det = thrillmon::detect;
	if (size < 4)
		return;
	det::Algorithm parsed;
	(void) det::ParseAlgorithm(std::string_view(reinterpret_cast<const char *>(data), size < 16 ? size : 16), &parsed);
	det::Settings st;
	st.algorithms = (static_cast<std::uint32_t>(data[0]) | (static_cast<std::uint32_t>(data[1] & 1) << 8));
	st.sensitivity = 0.1 + data[2] * 0.2;
	st.min_data_points = 2 + data[3] % 64;
	det::DetectionConfig cfg {};
	cfg.algorithms.is_null = true;
	cfg.sensitivity = st.sensitivity;
	cfg.min_data_points = st.min_data_points;
	cfg.lookback_window_minutes = data[3];
	(void) det::ValidateDetectionConfig(cfg);
	det::Detector d(st);
	data += 4;
	size -= 4;
	double t = 1.7e9;
	for (std::size_t i = 0; i + 9 <= size; i += 9) {
		double v;
		std::memcpy(&v, data + i, sizeof v);
		if (!std::isfinite(v))
			v = static_cast<double>(data[i]) - 128;
		const std::uint8_t step = data[i + 8];
		t += step < 8 ? -60.0 * step : step < 250 ? 60.0 : 86400.0 * step;
		det::Point p = det::MakePoint(t, v, (step % 27 - 13) * 3600);
		det::Score s = (step & 1) ? d.Update(p) : (d.Warm(p), d.Update(p));
		if (!(s.score >= 0 && s.score <= 1) || !std::isfinite(s.deviation) || !std::isfinite(s.baseline) ||
		    (s.anomaly && s.score < 0.25))
			__builtin_trap();
	}
}

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	if (size == 0)
		return 0;
	const std::uint8_t which = data[0] % 6;
	++data;
	--size;
	switch (which) {
	case 0:
		FuzzName(data, size);
		break;
	case 1:
		FuzzPartitionName(data, size);
		break;
	case 2:
		FuzzCalendar(data, size);
		break;
	case 3:
	case 4:
		FuzzDetector(data, size);
		break;
	default:
		FuzzSketch(data, size);
		break;
	}
	return 0;
}
