// Wall-clock slot arithmetic.
#include "core/schedule.hpp"

namespace thrillmon {

EpochMicros
CurrentSlot(EpochMicros now, int interval_seconds)
{
	const std::int64_t step = static_cast<std::int64_t>(interval_seconds < 1 ? 1 : interval_seconds) * kMicrosPerSecond;
	std::int64_t q = now / step;
	if (now % step != 0 && now < 0)
		--q;
	return q * step;
}

EpochMicros
NextSlot(EpochMicros now, int interval_seconds)
{
	const std::int64_t step = static_cast<std::int64_t>(interval_seconds < 1 ? 1 : interval_seconds) * kMicrosPerSecond;
	return CurrentSlot(now, interval_seconds) + step;
}

long
MillisUntil(EpochMicros now, EpochMicros due, long max_ms)
{
	if (due <= now)
		return 0;
	const std::int64_t ms = (due - now + 999) / 1000; // round up: never wake just before the slot
	return ms > max_ms ? max_ms : static_cast<long>(ms);
}

} // namespace thrillmon
