// Calendar arithmetic on UTC instants, with no time-zone database and no global state.
//
// thrillmon stores instants as timestamptz, which is an absolute point in time; a session's
// TimeZone only changes how it is read and printed. Every boundary the core computes (daily
// partitions, retention cut-offs) is therefore done in UTC, so that the same row lands in the same
// partition, and the same cut-off removes the same rows, whatever TimeZone the caller has set.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace thrillmon {

// Microseconds since 1970-01-01 00:00:00 UTC.
using EpochMicros = std::int64_t;

constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kSecondsPerDay = 86400;
constexpr std::int64_t kMicrosPerDay = kSecondsPerDay * kMicrosPerSecond;

// Offset between the Postgres epoch (2000-01-01 UTC, what TimestampTz counts from) and Unix's.
constexpr std::int64_t kPostgresEpochOffsetMicros = INT64_C(946684800) * kMicrosPerSecond;

struct CivilDate {
	int year;
	int month; // 1..12
	int day;   // 1..31
};

// Days since 1970-01-01 for a proleptic Gregorian date (negative before it).
std::int64_t DaysFromCivil(const CivilDate &date);

// Inverse of DaysFromCivil.
CivilDate CivilFromDays(std::int64_t days);

// The UTC day an instant falls in (floor division, so instants before 1970 go to the earlier day).
std::int64_t DayIndexOf(EpochMicros t);

// The instant `local` civil time names at a fixed UTC offset (what "2026-03-08 01:30-05" means).
EpochMicros FromLocal(const CivilDate &date, int hour, int minute, int second, int utc_offset_seconds);

// ISO date "YYYY-MM-DD"; std::nullopt outside years 1..9999 (not representable in four digits).
std::optional<std::string> FormatDate(const CivilDate &date);

// Whether a civil date exists (month 1..12, day within the month, leap years included).
bool IsValidDate(const CivilDate &date);

} // namespace thrillmon
