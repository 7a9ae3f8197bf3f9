// Calendar arithmetic: days <-> dates, UTC day of an instant, fixed-offset local times.
#include "core/civil_time.hpp"

#include <gtest/gtest.h>

using namespace thrillmon;

TEST(CivilTime, EpochIsDayZero)
{
	EXPECT_EQ(DaysFromCivil({1970, 1, 1}), 0);
	EXPECT_EQ(DaysFromCivil({1969, 12, 31}), -1);
	EXPECT_EQ(DaysFromCivil({2000, 3, 1}), 11017);
}

TEST(CivilTime, RoundTripsEveryDayOverFourCenturies)
{
	// 1600..2400 covers leap centuries (1600, 2000, 2400) and non-leap ones (1700, 1800, 1900, 2100).
	const std::int64_t first = DaysFromCivil({1600, 1, 1});
	const std::int64_t last = DaysFromCivil({2400, 12, 31});
	CivilDate prev = CivilFromDays(first - 1);
	for (std::int64_t d = first; d <= last; ++d) {
		const CivilDate c = CivilFromDays(d);
		ASSERT_EQ(DaysFromCivil(c), d);
		ASSERT_TRUE(IsValidDate(c));
		// Consecutive days are consecutive dates.
		const bool next_day = c.year == prev.year && c.month == prev.month && c.day == prev.day + 1;
		const bool next_month = c.day == 1 && ((c.year == prev.year && c.month == prev.month + 1) ||
		                                       (c.year == prev.year + 1 && c.month == 1 && prev.month == 12));
		ASSERT_TRUE(next_day || next_month) << c.year << "-" << c.month << "-" << c.day;
		prev = c;
	}
}

TEST(CivilTime, LeapYears)
{
	EXPECT_TRUE(IsValidDate({2024, 2, 29}));
	EXPECT_FALSE(IsValidDate({2026, 2, 29}));
	EXPECT_TRUE(IsValidDate({2000, 2, 29}));
	EXPECT_FALSE(IsValidDate({1900, 2, 29}));
	EXPECT_FALSE(IsValidDate({2026, 4, 31}));
	EXPECT_FALSE(IsValidDate({2026, 13, 1}));
	EXPECT_FALSE(IsValidDate({2026, 0, 1}));
}

TEST(CivilTime, DayIndexFloorsBeforeEpoch)
{
	EXPECT_EQ(DayIndexOf(0), 0);
	EXPECT_EQ(DayIndexOf(-1), -1); // 1969-12-31 23:59:59.999999
	EXPECT_EQ(DayIndexOf(kMicrosPerDay - 1), 0);
	EXPECT_EQ(DayIndexOf(kMicrosPerDay), 1);
	EXPECT_EQ(DayIndexOf(-kMicrosPerDay), -1);
	EXPECT_EQ(DayIndexOf(-kMicrosPerDay - 1), -2);
}

TEST(CivilTime, LocalTimesWithOffsetsLandOnTheirUtcDay)
{
	// 23:30 in New York (EST, -05) on 2026-03-07 is 04:30 UTC on 2026-03-08.
	EXPECT_EQ(DayIndexOf(FromLocal({2026, 3, 7}, 23, 30, 0, -5 * 3600)), DaysFromCivil({2026, 3, 8}));
	// 00:30 in Kolkata (+05:30) is still the previous UTC day.
	EXPECT_EQ(DayIndexOf(FromLocal({2026, 11, 25}, 0, 30, 0, 5 * 3600 + 1800)), DaysFromCivil({2026, 11, 24}));
	// Chatham Islands, +13:45 in summer: 13:44 local is 00:00 - 1 minute UTC.
	EXPECT_EQ(DayIndexOf(FromLocal({2026, 1, 2}, 13, 44, 0, 13 * 3600 + 45 * 60)), DaysFromCivil({2026, 1, 1}));
	EXPECT_EQ(DayIndexOf(FromLocal({2026, 1, 2}, 13, 45, 0, 13 * 3600 + 45 * 60)), DaysFromCivil({2026, 1, 2}));
}

TEST(CivilTime, DstRepeatedHourMapsToTwoInstantsOnTheSameUtcDay)
{
	// 2026-11-01 01:30 happens twice in New York: at -04 (EDT) and then at -05 (EST).
	const EpochMicros first = FromLocal({2026, 11, 1}, 1, 30, 0, -4 * 3600);
	const EpochMicros second = FromLocal({2026, 11, 1}, 1, 30, 0, -5 * 3600);
	EXPECT_EQ(second - first, 3600 * kMicrosPerSecond);
	EXPECT_EQ(DayIndexOf(first), DaysFromCivil({2026, 11, 1}));
	EXPECT_EQ(DayIndexOf(second), DaysFromCivil({2026, 11, 1}));
}

TEST(CivilTime, FormatDate)
{
	EXPECT_EQ(FormatDate({2026, 11, 5}).value(), "2026-11-05");
	EXPECT_EQ(FormatDate({1, 1, 1}).value(), "0001-01-01");
	EXPECT_EQ(FormatDate({9999, 12, 31}).value(), "9999-12-31");
	EXPECT_FALSE(FormatDate({0, 1, 1}).has_value());
	EXPECT_FALSE(FormatDate({10000, 1, 1}).has_value());
	EXPECT_FALSE(FormatDate({2026, 2, 30}).has_value());
}
