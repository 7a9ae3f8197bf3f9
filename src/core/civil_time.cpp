// Gregorian day arithmetic (the well-known days-from-civil algorithm over 400-year eras).
#include "core/civil_time.hpp"

#include <cstdio>

namespace thrillmon {

namespace {

// Floor division: C++ division truncates toward zero, which would put 1969-12-31 23:00 into day 0.
std::int64_t
FloorDiv(std::int64_t a, std::int64_t b)
{
	std::int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		--q;
	return q;
}

bool
IsLeap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

} // namespace

std::int64_t
DaysFromCivil(const CivilDate &date)
{
	std::int64_t y = date.year - (date.month <= 2 ? 1 : 0);
	const std::int64_t era = FloorDiv(y, 400);
	const std::int64_t yoe = y - era * 400;
	const std::int64_t mp = (date.month + 9) % 12; // March = 0
	const std::int64_t doy = (153 * mp + 2) / 5 + date.day - 1;
	const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

CivilDate
CivilFromDays(std::int64_t days)
{
	days += 719468;
	const std::int64_t era = FloorDiv(days, 146097);
	const std::int64_t doe = days - era * 146097;
	const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const std::int64_t mp = (5 * doy + 2) / 153;
	const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
	const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
	const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
	return CivilDate {year, month, day};
}

std::int64_t
DayIndexOf(EpochMicros t)
{
	return FloorDiv(t, kMicrosPerDay);
}

EpochMicros
FromLocal(const CivilDate &date, int hour, int minute, int second, int utc_offset_seconds)
{
	const std::int64_t local_seconds = DaysFromCivil(date) * kSecondsPerDay + hour * 3600 + minute * 60 + second;
	return (local_seconds - utc_offset_seconds) * kMicrosPerSecond;
}

bool
IsValidDate(const CivilDate &date)
{
	static const int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (date.month < 1 || date.month > 12 || date.day < 1)
		return false;
	int limit = kDaysInMonth[date.month - 1];
	if (date.month == 2 && IsLeap(date.year))
		limit = 29;
	return date.day <= limit;
}

std::optional<std::string>
FormatDate(const CivilDate &date)
{
	if (date.year < 1 || date.year > 9999 || !IsValidDate(date))
		return std::nullopt;
	char buf[16];
	std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", date.year, date.month, date.day);
	return std::string(buf);
}

} // namespace thrillmon
