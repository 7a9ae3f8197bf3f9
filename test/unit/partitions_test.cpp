// Partition names, bounds, premake ranges and the partition-level retention plan.
#include "core/partitions.hpp"
#include "core/validation.hpp"

#include <gtest/gtest.h>

using namespace thrillmon;

namespace {

std::int64_t
Day(int y, int m, int d)
{
	return DaysFromCivil({y, m, d});
}

EpochMicros
At(int y, int m, int d, int hh = 0, int mm = 0, int offset_seconds = 0)
{
	return FromLocal({y, m, d}, hh, mm, 0, offset_seconds);
}

} // namespace

TEST(Partitions, NameAndBoundsAreUtcDays)
{
	const auto p = PartitionForDay(Day(2026, 11, 25));
	ASSERT_TRUE(p.has_value());
	EXPECT_EQ(p->name, "metric_time_series_p20261125");
	EXPECT_EQ(p->lower, "2026-11-25 00:00:00+00");
	EXPECT_EQ(p->upper, "2026-11-26 00:00:00+00");
	// Month and year ends.
	EXPECT_EQ(PartitionForDay(Day(2026, 12, 31))->upper, "2027-01-01 00:00:00+00");
	EXPECT_EQ(PartitionForDay(Day(2024, 2, 28))->upper, "2024-02-29 00:00:00+00");
}

TEST(Partitions, OutsideFourDigitYearsThereIsNoPartition)
{
	EXPECT_FALSE(PartitionForDay(Day(9999, 12, 31)).has_value()); // its upper bound is year 10000
	EXPECT_TRUE(PartitionForDay(Day(9999, 12, 30)).has_value());
	EXPECT_TRUE(PartitionForDay(Day(1, 1, 1)).has_value());
	EXPECT_FALSE(PartitionForDay(Day(1, 1, 1) - 1).has_value());
}

TEST(Partitions, ParseRoundTripsAndRejectsOthers)
{
	for (std::int64_t d = Day(1999, 12, 25); d < Day(2001, 1, 10); ++d)
		ASSERT_EQ(ParsePartitionName(PartitionForDay(d)->name), d);
	EXPECT_FALSE(ParsePartitionName("metric_time_series_default").has_value());
	EXPECT_FALSE(ParsePartitionName("metric_time_series_p2026112").has_value());
	EXPECT_FALSE(ParsePartitionName("metric_time_series_p202611250").has_value());
	EXPECT_FALSE(ParsePartitionName("metric_time_series_p20260230").has_value());
	EXPECT_FALSE(ParsePartitionName("metric_time_series_p2026-1-1").has_value());
	EXPECT_FALSE(ParsePartitionName("other_table_p20261125xxxxx").has_value());
	EXPECT_FALSE(ParsePartitionName("metric_time_series_p00000101").has_value());
}

TEST(Partitions, PremakeFromYesterdayToAhead)
{
	const auto days = PremakeDays(At(2026, 11, 25, 13, 7), 3);
	ASSERT_EQ(days.size(), 5u);
	EXPECT_EQ(days.front(), Day(2026, 11, 24));
	EXPECT_EQ(days.back(), Day(2026, 11, 28));
	EXPECT_EQ(PremakeDays(At(2026, 11, 25), 0).size(), 2u);
	// Just before midnight UTC is still the same day, whatever the local clock says.
	EXPECT_EQ(PremakeDays(At(2026, 11, 25, 19, 30, -5 * 3600), 0).back(), Day(2026, 11, 26));
	// Out-of-range asks are clamped, not trusted.
	EXPECT_EQ(PremakeDays(At(2026, 11, 25), -5).size(), 2u);
	EXPECT_EQ(PremakeDays(At(2026, 11, 25), 100000).size(), 367u);
}

TEST(Partitions, RetentionPlanDropsWholeDaysAndFindsTheStraddlingOne)
{
	const EpochMicros now = At(2026, 11, 25, 13, 0);
	const EpochMicros cutoff = RetentionCutoff(now, 30); // 2026-10-26 13:00 UTC
	std::vector<std::int64_t> existing;
	for (std::int64_t d = Day(2026, 10, 20); d <= Day(2026, 11, 27); ++d)
		existing.push_back(d);
	existing.push_back(Day(2026, 10, 20)); // duplicates are harmless
	const auto plan = PlanMetricRetention(existing, cutoff);
	ASSERT_EQ(plan.drop_days.size(), 6u); // 20..25 October
	EXPECT_EQ(plan.drop_days.front(), Day(2026, 10, 20));
	EXPECT_EQ(plan.drop_days.back(), Day(2026, 10, 25));
	ASSERT_TRUE(plan.straddling_day.has_value());
	EXPECT_EQ(*plan.straddling_day, Day(2026, 10, 26));
}

TEST(Partitions, CutoffOnADayBoundaryLeavesNothingStraddling)
{
	const EpochMicros cutoff = At(2026, 10, 26);
	const auto plan = PlanMetricRetention({Day(2026, 10, 25), Day(2026, 10, 26), Day(2026, 10, 27)}, cutoff);
	ASSERT_EQ(plan.drop_days.size(), 1u);
	EXPECT_EQ(plan.drop_days[0], Day(2026, 10, 25));
	EXPECT_FALSE(plan.straddling_day.has_value());
}

TEST(Partitions, NothingExpiredNothingDropped)
{
	const auto plan = PlanMetricRetention({Day(2026, 11, 24), Day(2026, 11, 25)}, At(2026, 10, 26, 13));
	EXPECT_TRUE(plan.drop_days.empty());
	EXPECT_FALSE(plan.straddling_day.has_value());
	EXPECT_TRUE(PlanMetricRetention({}, At(2026, 10, 26)).drop_days.empty());
}
