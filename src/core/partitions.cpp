// Partition naming and the partition-level retention plan.
#include "core/partitions.hpp"

#include <limits>
#include <set>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace thrillmon {

namespace {

constexpr int kMinPremakeDays = 0;
constexpr int kMaxPremakeDays = 365;

std::optional<std::string>
BoundLiteral(std::int64_t day)
{
	auto date = FormatDate(CivilFromDays(day));
	if (!date)
		return std::nullopt;
	// An explicit +00 offset: the literal names the same instant whatever the session TimeZone.
	return *date + " 00:00:00+00";
}

} // namespace

std::optional<DailyPartition>
PartitionForDay(std::int64_t day)
{
	auto lower = BoundLiteral(day);
	auto upper = BoundLiteral(day + 1);
	if (!lower || !upper)
		return std::nullopt;
	const CivilDate date = CivilFromDays(day);
	char suffix[16];
	std::snprintf(suffix, sizeof suffix, "%04d%02d%02d", date.year, date.month, date.day);
	return DailyPartition {day, std::string(kPartitionPrefix) + suffix, *lower, *upper};
}

std::optional<std::int64_t>
ParsePartitionName(const std::string &relname)
{
	const std::size_t prefix_len = std::strlen(kPartitionPrefix);
	if (relname.size() != prefix_len + 8 || relname.compare(0, prefix_len, kPartitionPrefix) != 0)
		return std::nullopt;
	int parts[3] = {0, 0, 0};
	const int widths[3] = {4, 2, 2};
	std::size_t pos = prefix_len;
	for (int i = 0; i < 3; ++i) {
		for (int j = 0; j < widths[i]; ++j, ++pos) {
			const char c = relname[pos];
			if (c < '0' || c > '9')
				return std::nullopt;
			parts[i] = parts[i] * 10 + (c - '0');
		}
	}
	const CivilDate date {parts[0], parts[1], parts[2]};
	if (date.year < 1 || !IsValidDate(date))
		return std::nullopt;
	return DaysFromCivil(date);
}

std::vector<std::int64_t>
PremakeDays(EpochMicros now, int premake_days)
{
	premake_days = std::clamp(premake_days, kMinPremakeDays, kMaxPremakeDays);
	const std::int64_t today = DayIndexOf(now);
	std::vector<std::int64_t> days;
	for (std::int64_t d = today - 1; d <= today + premake_days; ++d)
		days.push_back(d);
	return days;
}

MetricRetentionPlan
PlanMetricRetention(std::vector<std::int64_t> existing_days, EpochMicros cutoff)
{
	std::sort(existing_days.begin(), existing_days.end());
	existing_days.erase(std::unique(existing_days.begin(), existing_days.end()), existing_days.end());
	MetricRetentionPlan plan;
	for (const std::int64_t day : existing_days) {
		// (day + 1) * kMicrosPerDay cannot overflow: days come from four-digit-year names.
		if ((day + 1) * kMicrosPerDay <= cutoff)
			plan.drop_days.push_back(day);
	}
	return plan;
}

std::int64_t
AnalyzeFullReadPages(int statistics_target)
{
	return statistics_target > 0 ? kAnalyzeRowsPerStatisticsTarget * statistics_target : 0;
}

std::optional<std::int64_t>
ExactRowsFromStatistics(const PartitionStatistics &stats)
{
	// reltuples >= 0 alone is not enough: VACUUM and CREATE INDEX write it too, VACUUM from the
	// pages it scanned extrapolated to the rest, which is not exact; hence analyzed_last.
	if (!stats.analyzed_last || !(stats.reltuples >= 0))
		return std::nullopt;
	// Rows changed after the ANALYZE: another session's once it has reported them (sessions
	// report at most once a second, when idle), this session's (its own transaction included)
	// before that. A changed size catches a late insert that extended the table even before it
	// is reported.
	if (stats.changes_since_analyze != 0 || stats.unreported_changes != 0 || stats.relpages != stats.pages_now)
		return std::nullopt;
	if (stats.relpages < 0 || stats.relpages > AnalyzeFullReadPages(stats.statistics_target))
		return std::nullopt;
	// A count from reading every page is an integer well inside double's exact range.
	if (stats.reltuples > 1e15)
		return std::nullopt;
	return static_cast<std::int64_t>(std::llround(stats.reltuples));
}

std::vector<std::int64_t>
DaysToAnalyze(std::vector<DailyPartitionStatistics> partitions, EpochMicros now, std::size_t max_days)
{
	std::sort(partitions.begin(), partitions.end(),
	          [](const DailyPartitionStatistics &a, const DailyPartitionStatistics &b) { return a.day > b.day; });
	std::vector<std::int64_t> days;
	for (const DailyPartitionStatistics &p : partitions) {
		if (days.size() >= max_days)
			break;
		if ((p.day + 1) * kMicrosPerDay > now)
			continue; // rows still arrive: the count would not stay exact
		if (ExactRowsFromStatistics(p.stats))
			continue;
		if (p.stats.pages_now > AnalyzeFullReadPages(p.stats.statistics_target))
			continue; // ANALYZE would only estimate; retention counts this one
		if (!days.empty() && days.back() == p.day)
			continue;
		days.push_back(p.day);
	}
	return days;
}

MaintenancePlan
PlanMaintenance(EpochMicros now, int premake_days, const std::vector<std::int64_t> &existing,
                const std::vector<std::int64_t> &pending, std::optional<EpochMicros> retention_cutoff, std::size_t cap)
{
	MaintenancePlan plan;
	const std::vector<std::int64_t> premade = PremakeDays(now, premake_days);
	plan.last_day = premade.back();
	plan.first_day = retention_cutoff ? DayIndexOf(*retention_cutoff) : std::numeric_limits<std::int64_t>::min();
	const std::set<std::int64_t> have(existing.begin(), existing.end());
	std::vector<std::int64_t> wanted;
	std::set<std::int64_t> seen;
	auto want = [&](std::int64_t day) {
		if (day < plan.first_day || day > plan.last_day || have.count(day) || !seen.insert(day).second)
			return;
		if (!PartitionForDay(day))
			return; // outside years 1..9999: its rows stay in the default partition
		wanted.push_back(day);
	};
	// Today, tomorrow, ... and yesterday last among the premade days: inserts need today's first.
	const std::int64_t today = DayIndexOf(now);
	for (const std::int64_t day : premade)
		if (day >= today)
			want(day);
	want(today - 1);
	std::vector<std::int64_t> backlog(pending.begin(), pending.end());
	std::sort(backlog.rbegin(), backlog.rend());
	for (const std::int64_t day : backlog)
		want(day);
	if (wanted.size() > cap) {
		plan.waiting = wanted.size() - cap;
		wanted.resize(cap);
	}
	std::sort(wanted.begin(), wanted.end()); // reported in day order, whatever the priority was
	plan.create = std::move(wanted);
	return plan;
}

} // namespace thrillmon
