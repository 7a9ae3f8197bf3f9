// Schedule math for the worker: wall-clock slots, so that a 60 s interval fires at :00 of every
// minute and points of different metrics (and different servers) line up on the same instants.
#pragma once
#include "core/no_postgres.hpp"

#include "core/civil_time.hpp"

#include <cstdint>

namespace thrillmon {

// The first slot strictly after `now` on the grid of `interval_seconds` counted from the Unix
// epoch. interval_seconds < 1 is treated as 1.
EpochMicros NextSlot(EpochMicros now, int interval_seconds);

// The slot `now` falls in (the latest grid point at or before it).
EpochMicros CurrentSlot(EpochMicros now, int interval_seconds);

// How long to sleep until `due`, in milliseconds, clamped to [0, max_ms] (the worker also wakes
// on its latch, and re-reads its settings, so a long sleep is never needed).
long MillisUntil(EpochMicros now, EpochMicros due, long max_ms);

} // namespace thrillmon
