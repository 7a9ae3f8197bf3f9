// When observe()'s shared slots are given back, and how many a database may hold: the rules the
// glue (src/pg/observe.cpp) applies under its locks, kept here to be tested without a server.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>

namespace thrillmon {

// A slot its database's flushes found empty this many times in a row is given back: no
// observation for a whole collection interval, so nothing is lost (it is empty) and a name that
// comes back gets a slot again.
constexpr int kObservedIdleFlushes = 2;

// A slot nothing has flushed for this long (its database was dropped, or is no longer
// collected) is given back by any database's flush, with what it held.
constexpr std::int64_t kObservedOrphanMicros = INT64_C(2) * 86400 * 1000000;

// The slot's own database's flush, after taking its statistics (`had_observations`): the
// slot's idle count after this flush.
constexpr int
ObservedIdleAfterFlush(int idle_flushes, bool had_observations)
{
	return had_observations ? 0 : (idle_flushes < kObservedIdleFlushes ? idle_flushes + 1 : idle_flushes);
}

// Whether its own database's flush gives the slot back: empty, and idle long enough.
constexpr bool
ObservedSlotIdle(int idle_flushes, std::uint64_t count)
{
	return count == 0 && idle_flushes >= kObservedIdleFlushes;
}

// Whether another database's flush gives the slot back: nothing flushed it for two days.
constexpr bool
ObservedSlotOrphaned(std::int64_t last_flushed_at, std::int64_t now)
{
	return now - last_flushed_at > kObservedOrphanMicros;
}

// Whether a database holding `held` slots may take one more. The worker's database is bounded by
// the pool only; every other one by the quota too (so no one of them can lock the others out).
constexpr bool
ObservedQuotaAllows(bool worker_database, int held, int quota)
{
	return worker_database || held < quota;
}

} // namespace thrillmon
