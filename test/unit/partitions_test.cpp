// Partition names, bounds, premake ranges and the partition-level retention plan.
#include "core/partitions.hpp"
#include "core/validation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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

TEST(Partitions, RetentionPlanDropsOnlyWholeExpiredDays)
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
	// 26 October holds the cut-off: kept whole, its rows before 13:00 included.
	EXPECT_EQ(std::count(plan.drop_days.begin(), plan.drop_days.end(), Day(2026, 10, 26)), 0);
}

TEST(Partitions, TheStraddlingDayGoesOnceItsWholeDayHasExpired)
{
	const std::vector<std::int64_t> existing {Day(2026, 10, 25), Day(2026, 10, 26), Day(2026, 10, 27)};
	// A day later (or one retention day less) the cut-off is past the end of 26 October.
	for (const EpochMicros cutoff : {At(2026, 10, 27, 13, 0), RetentionCutoff(At(2026, 11, 25, 13, 0), 29)}) {
		const auto plan = PlanMetricRetention(existing, cutoff);
		ASSERT_EQ(plan.drop_days.size(), 2u);
		EXPECT_EQ(plan.drop_days.back(), Day(2026, 10, 26));
	}
	// One microsecond before the end of the day it is still kept.
	EXPECT_EQ(PlanMetricRetention(existing, At(2026, 10, 27) - 1).drop_days.size(), 1u);
}

TEST(Partitions, CutoffOnADayBoundaryDropsTheDayThatEndsThere)
{
	const EpochMicros cutoff = At(2026, 10, 26);
	const auto plan = PlanMetricRetention({Day(2026, 10, 25), Day(2026, 10, 26), Day(2026, 10, 27)}, cutoff);
	ASSERT_EQ(plan.drop_days.size(), 1u);
	EXPECT_EQ(plan.drop_days[0], Day(2026, 10, 25));
}

TEST(Partitions, NothingExpiredNothingDropped)
{
	EXPECT_TRUE(PlanMetricRetention({Day(2026, 11, 24), Day(2026, 11, 25)}, At(2026, 10, 26, 13)).drop_days.empty());
	EXPECT_TRUE(PlanMetricRetention({}, At(2026, 10, 26)).drop_days.empty());
	// The straddling partition alone is not dropped.
	EXPECT_TRUE(PlanMetricRetention({Day(2026, 10, 26)}, At(2026, 10, 26, 23, 59)).drop_days.empty());
}

namespace {

// Statistics of a partition ANALYZE has just counted in full: 144,000 rows on 1,440 pages.
PartitionStatistics
Analyzed()
{
	PartitionStatistics s;
	s.reltuples = 144000;
	s.relpages = 1440;
	s.pages_now = 1440;
	s.analyzed_last = true;
	s.statistics_target = 100;
	return s;
}

} // namespace

TEST(Partitions, ExactRowsWhenAnalyzeReadEveryPageAndNothingChanged)
{
	EXPECT_EQ(AnalyzeFullReadPages(100), 30000);
	EXPECT_EQ(AnalyzeFullReadPages(1), 300);
	EXPECT_EQ(AnalyzeFullReadPages(0), 0);
	EXPECT_EQ(ExactRowsFromStatistics(Analyzed()), 144000);
	PartitionStatistics empty = Analyzed();
	empty.reltuples = 0;
	empty.relpages = empty.pages_now = 0;
	EXPECT_EQ(ExactRowsFromStatistics(empty), 0);
	// At the limit ANALYZE still reads every page.
	PartitionStatistics edge = Analyzed();
	edge.relpages = edge.pages_now = 30000;
	EXPECT_EQ(ExactRowsFromStatistics(edge), 144000);
}

TEST(Partitions, NoExactRowsFromStatisticsThatMayBeStale)
{
	auto with = [](auto change) {
		PartitionStatistics s = Analyzed();
		change(s);
		return ExactRowsFromStatistics(s);
	};
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.reltuples = -1; }));            // never analysed
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.analyzed_last = false; }));     // VACUUM wrote reltuples last
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.changes_since_analyze = 1; })); // a change reported since
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.unreported_changes = 1; }));    // this session's change
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.pages_now = 1441; }));          // grew since
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.pages_now = 1439; }));          // shrank since
	// ANALYZE sampled only part of the pages: an extrapolation.
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.relpages = s.pages_now = 30001; }));
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.statistics_target = 4; })); // reads 1,200 pages only
	EXPECT_TRUE(with([](PartitionStatistics &s) { s.statistics_target = 5; }));  // 1,500
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.statistics_target = 0; }));
	EXPECT_FALSE(with([](PartitionStatistics &s) { s.reltuples = std::nan(""); }));
}

TEST(Partitions, MaintenanceAnalysesFinishedDaysWhoseCountIsNotExact)
{
	const EpochMicros now = At(2026, 11, 25, 0, 30);
	auto stale = Analyzed();
	stale.changes_since_analyze = 10;
	auto never = Analyzed();
	never.reltuples = -1;
	never.analyzed_last = false;
	auto huge = stale;
	huge.relpages = huge.pages_now = 30001;
	const std::vector<DailyPartitionStatistics> parts {
	    {Day(2026, 11, 20), stale}, {Day(2026, 11, 21), Analyzed()}, {Day(2026, 11, 22), huge},
	    {Day(2026, 11, 23), never}, {Day(2026, 11, 24), stale}, // yesterday: over at 00:00
	    {Day(2026, 11, 25), never}, {Day(2026, 11, 26), never}, // today and tomorrow: not over
	};
	EXPECT_EQ(DaysToAnalyze(parts, now, 10),
	          (std::vector<std::int64_t> {Day(2026, 11, 24), Day(2026, 11, 23), Day(2026, 11, 20)}));
	// Newest first, bounded.
	EXPECT_EQ(DaysToAnalyze(parts, now, 2), (std::vector<std::int64_t> {Day(2026, 11, 24), Day(2026, 11, 23)}));
	EXPECT_TRUE(DaysToAnalyze(parts, now, 0).empty());
	// One microsecond before midnight yesterday is not over yet.
	EXPECT_EQ(DaysToAnalyze(parts, At(2026, 11, 25) - 1, 10),
	          (std::vector<std::int64_t> {Day(2026, 11, 23), Day(2026, 11, 20)}));
}

namespace {

// 2026-12-02 12:00 UTC.
constexpr EpochMicros kNoon = (INT64_C(20424) * 86400 + 12 * 3600) * INT64_C(1000000);
constexpr std::int64_t kToday = 20424;

} // namespace

TEST(PartitionsMaintenance, MakesThePremadeDaysNearestFirst)
{
	const MaintenancePlan plan = PlanMaintenance(kNoon, 7, {}, {}, kNoon - 30 * kMicrosPerDay);
	ASSERT_EQ(plan.create.size(), 9u);
	EXPECT_EQ(plan.create.front(), kToday - 1) << "reported in day order";
	EXPECT_EQ(plan.create.back(), kToday + 7);
	EXPECT_EQ(plan.waiting, 0u);
	// Under a cap the nearest days come first: today, tomorrow, ..., yesterday last.
	const MaintenancePlan capped = PlanMaintenance(kNoon, 7, {}, {}, std::nullopt, 3);
	EXPECT_EQ(capped.create, (std::vector<std::int64_t> {kToday, kToday + 1, kToday + 2}));
	EXPECT_EQ(capped.waiting, 6u);
	EXPECT_EQ(PlanMaintenance(kNoon, 7, {}, {}, std::nullopt, 8).create.front(), kToday) << "yesterday last";
	EXPECT_EQ(plan.last_day, kToday + 7);
	EXPECT_EQ(plan.first_day, kToday - 30);
	EXPECT_TRUE(PlanMaintenance(kNoon, 7, plan.create, {}, std::nullopt).create.empty()) << "idempotent";
}

TEST(PartitionsMaintenance, AWriterCannotDecideHowManyPartitionsExist)
{
	// 2,000 future days and 2,000 past ones in the default partition.
	std::vector<std::int64_t> pending;
	for (int i = 1; i <= 2000; i++) {
		pending.push_back(kToday + 7 + i);
		pending.push_back(kToday - 30 - i);
	}
	const std::vector<std::int64_t> existing = PlanMaintenance(kNoon, 7, {}, {}, std::nullopt).create;
	const MaintenancePlan plan = PlanMaintenance(kNoon, 7, existing, pending, kNoon - 30 * kMicrosPerDay);
	EXPECT_TRUE(plan.create.empty()) << "no day beyond premake_days, none before the retention cut-off";
	EXPECT_EQ(plan.waiting, 0u);
}

TEST(PartitionsMaintenance, ABackfillWithinReachIsWorkedOffInRuns)
{
	std::vector<std::int64_t> existing = PlanMaintenance(kNoon, 7, {}, {}, std::nullopt).create;
	std::vector<std::int64_t> pending;
	for (int i = 2; i <= 100; i++)
		pending.push_back(kToday - i); // 99 past days, all within a 365-day retention
	const EpochMicros cutoff = kNoon - 365 * kMicrosPerDay;
	MaintenancePlan plan = PlanMaintenance(kNoon, 7, existing, pending, cutoff);
	ASSERT_EQ(plan.create.size(), kMaxPartitionsPerRun);
	EXPECT_EQ(plan.waiting, 99u - kMaxPartitionsPerRun);
	EXPECT_EQ(plan.create.back(), kToday - 2) << "newest first";
	EXPECT_EQ(plan.create.front(), kToday - 33);
	int runs = 1;
	while (plan.waiting > 0) {
		existing.insert(existing.end(), plan.create.begin(), plan.create.end());
		plan = PlanMaintenance(kNoon, 7, existing, pending, cutoff);
		runs++;
	}
	existing.insert(existing.end(), plan.create.begin(), plan.create.end());
	EXPECT_EQ(runs, 4);
	EXPECT_EQ(existing.size(), 9u + 99u);
}

TEST(PartitionsMaintenance, TheCutOffsDayIsTheFirstKept)
{
	// A cut-off at 10:00 three days ago: that day ends after it (kept), the day before does not.
	const EpochMicros cutoff = (kToday - 3) * kMicrosPerDay + 10 * INT64_C(3600000000);
	const MaintenancePlan plan = PlanMaintenance(kNoon, 0, {}, {kToday - 3, kToday - 4}, cutoff);
	EXPECT_EQ(plan.first_day, kToday - 3);
	EXPECT_NE(std::find(plan.create.begin(), plan.create.end(), kToday - 3), plan.create.end());
	EXPECT_EQ(std::find(plan.create.begin(), plan.create.end(), kToday - 4), plan.create.end());
	// Premade days are premade whatever the retention (yesterday with a one-day cut-off).
	EXPECT_EQ(PlanMaintenance(kNoon, 0, {}, {}, kNoon - kMicrosPerDay).create.size(), 2u);
}

TEST(PartitionsMaintenance, DaysWithoutAPartitionNameAreLeftOut)
{
	const std::int64_t far = DaysFromCivil(CivilDate {10000, 1, 1});
	const MaintenancePlan plan = PlanMaintenance(kNoon, 7, {}, {far, -800000}, std::nullopt);
	EXPECT_EQ(plan.create.size(), 9u);
}
