// Input rules and the retention cut-off.
#include "core/validation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace thrillmon;

TEST(Validation, MetricNames)
{
	EXPECT_FALSE(ValidateMetricName(std::string_view("api_response_time")));
	EXPECT_FALSE(ValidateMetricName(std::string_view("it's; DROP TABLE x; --")));
	EXPECT_FALSE(ValidateMetricName(std::string_view("température_°C_🔥")));
	EXPECT_EQ(ValidateMetricName(std::nullopt)->sqlstate, "22004");
	EXPECT_EQ(ValidateMetricName(std::string_view(""))->message, "metric_name must not be empty");
	EXPECT_EQ(ValidateMetricName(std::string_view("   "))->sqlstate, "22023");
	EXPECT_EQ(ValidateMetricName(std::string_view("a\tb"))->sqlstate, "22021");
	EXPECT_EQ(ValidateMetricName(std::string_view("a\nb"))->sqlstate, "22021");
}

// One rule for the names given to record_metric(), observe() and register_collector(): no C1
// controls, and none of the characters that make a name display as another.
TEST(Validation, NamesRefuseInvisibleAndBidiCharacters)
{
	EXPECT_EQ(ValidateMetricName(std::string_view("next\u0085line"))->message,
	          "metric_name must not contain control characters");
	for (const char *bad :
	     {"\u202Eevil", "a\u202Ab", "zero\u200Bwidth", "zw\u200Cnj", "zw\u200Dj", "\u200Eltr", "\u200Frtl", "iso\u2066",
	      "\u2069pdi", "word\u2060joiner", "\uFEFFbom", "\u061Calm", "line\u2028sep", "mvs\u180E"}) {
		const MaybeError e = ValidateMetricName(std::string_view(bad));
		ASSERT_TRUE(e) << bad;
		EXPECT_EQ(e->sqlstate, "22021");
		EXPECT_NE(e->message.find("must not contain invisible or bidirectional formatting characters (U+"),
		          std::string::npos)
		    << e->message;
	}
	EXPECT_EQ(ValidateMetricName(std::string_view("a\u202Eb"))->message,
	          "metric_name must not contain invisible or bidirectional formatting characters (U+202E)");
	EXPECT_EQ(ValidateCollectorName(std::string_view("c\u200B"))->message,
	          "collector name must not contain invisible or bidirectional formatting characters (U+200B)");
	// Their neighbours are fine: a no-break space, an en dash, Arabic, emoji, combining accents.
	for (const char *good :
	     {"a\u00A0b", "a\u2013b", "\u0645\u0642\u064A\u0627\u0633", "\U0001F4C8", "e\u0301", "\u2070sup", "\u2065x"}) {
		EXPECT_FALSE(ValidateMetricName(std::string_view(good))) << good;
	}
	// A stored row is checked as before 0.7.0 (a dump of an older release must restore).
	EXPECT_FALSE(ValidateStoredPoint("\u202Eevil", 1.0, "custom", std::nullopt, true));
}

TEST(Validation, MetricNameLengthCountsCharactersNotBytes)
{
	std::string ascii(128, 'x');
	EXPECT_FALSE(ValidateMetricName(std::string_view(ascii)));
	ascii += 'x';
	const auto e = ValidateMetricName(std::string_view(ascii));
	ASSERT_TRUE(e);
	EXPECT_EQ(e->sqlstate, "22001");
	EXPECT_EQ(e->message, "metric_name is too long (129 characters, at most 128)");

	std::string wide;
	for (int i = 0; i < 128; ++i)
		wide += "\xc3\xa9"; // é: 2 bytes, 1 character
	EXPECT_FALSE(ValidateMetricName(std::string_view(wide)));
	wide += "\xf0\x9f\x94\xa5"; // one 4-byte character
	EXPECT_EQ(ValidateMetricName(std::string_view(wide))->message,
	          "metric_name is too long (129 characters, at most 128)");
}

TEST(Validation, MetricValuesMustBeFinite)
{
	EXPECT_FALSE(ValidateMetricValue(0.0));
	EXPECT_FALSE(ValidateMetricValue(-1e308));
	EXPECT_FALSE(ValidateMetricValue(std::numeric_limits<double>::denorm_min()));
	EXPECT_EQ(ValidateMetricValue(std::nullopt)->sqlstate, "22004");
	EXPECT_EQ(ValidateMetricValue(std::numeric_limits<double>::quiet_NaN())->message,
	          "metric_value must be a finite number, not NaN");
	EXPECT_EQ(ValidateMetricValue(std::numeric_limits<double>::infinity())->message,
	          "metric_value must be a finite number, not Infinity");
	EXPECT_EQ(ValidateMetricValue(-std::numeric_limits<double>::infinity())->message,
	          "metric_value must be a finite number, not -Infinity");
}

TEST(Validation, Categories)
{
	for (const char *c : {"performance", "system", "security", "workflow", "monitoring", "custom"})
		EXPECT_FALSE(ValidateCategory(std::string_view(c))) << c;
	const auto e = ValidateCategory(std::string_view("Performance"));
	ASSERT_TRUE(e);
	EXPECT_EQ(e->sqlstate, "22023");
	EXPECT_EQ(e->message, "unknown metric_category \"Performance\"");
	EXPECT_EQ(e->hint, "Use one of: performance, system, security, workflow, monitoring, custom.");
	EXPECT_EQ(ValidateCategory(std::nullopt)->sqlstate, "22004");
}

TEST(Validation, Metadata)
{
	EXPECT_FALSE(ValidateMetadata(JsonKind::Object, 0));
	EXPECT_FALSE(ValidateMetadata(JsonKind::Object, kMaxMetadataBytes));
	EXPECT_EQ(ValidateMetadata(JsonKind::Object, kMaxMetadataBytes + 1)->message,
	          "metadata is too large (65537 bytes, at most 65536)");
	EXPECT_EQ(ValidateMetadata(JsonKind::Array, 10)->message, "metadata must be a JSON object, not an array");
	EXPECT_EQ(ValidateMetadata(JsonKind::Scalar, 10)->message, "metadata must be a JSON object, not a scalar");
}

TEST(Validation, Timestamps)
{
	EXPECT_FALSE(ValidateTimestampIsFinite(true));
	const EpochMicros now = INT64_C(1764676800) * kMicrosPerSecond;
	EXPECT_FALSE(ValidateRecordedTimestamp(true, now - 1000 * kMicrosPerDay, now)) << "the past is fine";
	EXPECT_FALSE(ValidateRecordedTimestamp(true, now + 366 * kMicrosPerDay, now));
	EXPECT_EQ(ValidateRecordedTimestamp(true, now + 366 * kMicrosPerDay + 1, now)->message,
	          "ts must not be more than 366 days after now()");
	EXPECT_EQ(ValidateRecordedTimestamp(true, INT64_MAX, now)->sqlstate, "22008");
	EXPECT_EQ(ValidateRecordedTimestamp(false, 0, now)->message,
	          "ts must be a finite timestamp, not infinity or -infinity");
	EXPECT_EQ(ValidateTimestampIsFinite(false)->sqlstate, "22008");
}

// The table's check (metric_point_valid): record_metric()'s rules in its order, but a name of
// spaces only passes, as it did under the table's checks before 0.5.0.
TEST(Validation, StoredPoint)
{
	const double nan = std::numeric_limits<double>::quiet_NaN();
	const MetadataShape object {JsonKind::Object, 10};
	EXPECT_FALSE(ValidateStoredPoint("m", 1.0, "custom", std::nullopt, true));
	EXPECT_FALSE(ValidateStoredPoint("m", 1.0, "custom", object, true));
	EXPECT_FALSE(ValidateStoredPoint("   ", 1.0, "system", std::nullopt, true));
	EXPECT_EQ(ValidateStoredPoint("", 1.0, "custom", std::nullopt, true)->message, "metric_name must not be empty");
	EXPECT_EQ(ValidateStoredPoint("a\x7f", 1.0, "custom", std::nullopt, true)->sqlstate, "22021");
	EXPECT_EQ(ValidateStoredPoint(std::string(129, 'x'), 1.0, "custom", std::nullopt, true)->sqlstate, "22001");
	EXPECT_EQ(ValidateStoredPoint("m", nan, "custom", std::nullopt, true)->message,
	          "metric_value must be a finite number, not NaN");
	EXPECT_EQ(ValidateStoredPoint("m", 1.0, "nope", std::nullopt, true)->message, "unknown metric_category \"nope\"");
	EXPECT_EQ(ValidateStoredPoint("m", 1.0, "custom", MetadataShape {JsonKind::Array, 2}, true)->message,
	          "metadata must be a JSON object, not an array");
	EXPECT_EQ(ValidateStoredPoint("m", 1.0, "custom", MetadataShape {JsonKind::Object, kMaxMetadataBytes + 1}, true)
	              ->sqlstate,
	          "22023");
	EXPECT_EQ(ValidateStoredPoint("m", 1.0, "custom", std::nullopt, false)->message,
	          "\"timestamp\" must be a finite timestamp, not infinity or -infinity");
	// The first broken rule wins, in column order: name, value, category, metadata, timestamp.
	EXPECT_EQ(ValidateStoredPoint("", nan, "nope", MetadataShape {JsonKind::Scalar, 1}, false)->message,
	          "metric_name must not be empty");
	EXPECT_EQ(ValidateStoredPoint("m", nan, "nope", MetadataShape {JsonKind::Scalar, 1}, false)->message,
	          "metric_value must be a finite number, not NaN");
	EXPECT_EQ(ValidateStoredPoint("m", 1.0, "custom", MetadataShape {JsonKind::Scalar, 1}, false)->message,
	          "metadata must be a JSON object, not a scalar");
}

TEST(Validation, RetentionDays)
{
	EXPECT_FALSE(ValidateRetentionDays(1, "retention_days"));
	EXPECT_FALSE(ValidateRetentionDays(30, "retention_days"));
	EXPECT_FALSE(ValidateRetentionDays(kMaxRetentionDays, "retention_days"));
	EXPECT_EQ(ValidateRetentionDays(std::nullopt, "retention_days")->sqlstate, "22004");
	EXPECT_EQ(ValidateRetentionDays(std::nullopt, "retention_days")->message, "retention_days must not be NULL");
	EXPECT_EQ(ValidateRetentionDays(0, "retention_days")->message, "retention_days must be at least 1, got 0");
	EXPECT_EQ(ValidateRetentionDays(-7, "archive_after_days")->message,
	          "archive_after_days must be at least 1, got -7");
	EXPECT_EQ(ValidateRetentionDays(kMaxRetentionDays + 1, "retention_days")->sqlstate, "22023");
}

TEST(Validation, CutoffIsWholeTwentyFourHourDaysAcrossDst)
{
	// 2026-11-01 is the end of DST in New York; 30 days before 2026-11-25 13:00 UTC is exactly
	// 720 hours earlier whatever zone the caller is in, not 30 calendar days in some zone.
	const EpochMicros now = FromLocal({2026, 11, 25}, 8, 0, 0, -5 * 3600);
	const EpochMicros cutoff = RetentionCutoff(now, 30);
	EXPECT_EQ(now - cutoff, INT64_C(720) * 3600 * kMicrosPerSecond);
	EXPECT_EQ(cutoff, FromLocal({2026, 10, 26}, 13, 0, 0, 0));
	// The same instant seen from Kolkata gives the same cut-off.
	EXPECT_EQ(RetentionCutoff(FromLocal({2026, 11, 25}, 18, 30, 0, 5 * 3600 + 1800), 30), cutoff);
	// Spring forward (2026-03-08 in New York): still 24 h a day.
	const EpochMicros spring = FromLocal({2026, 3, 9}, 12, 0, 0, -4 * 3600);
	EXPECT_EQ(spring - RetentionCutoff(spring, 2), INT64_C(48) * 3600 * kMicrosPerSecond);
}

TEST(Validation, CutoffAtTheExtremesDoesNotOverflow)
{
	const EpochMicros now = FromLocal({2026, 11, 25}, 0, 0, 0, 0);
	EXPECT_EQ(RetentionCutoff(now, kMaxRetentionDays), now - INT64_C(36500) * kMicrosPerDay);
}

TEST(Validation, PointChecksNameThenValueThenCategory)
{
	EXPECT_FALSE(ValidatePoint(std::string_view("m"), 1.0, std::string_view("custom")));
	EXPECT_EQ(ValidatePoint(std::nullopt, std::nullopt, std::nullopt)->message, "metric_name must not be NULL");
	EXPECT_EQ(ValidatePoint(std::string_view("m"), std::nullopt, std::nullopt)->message,
	          "metric_value must not be NULL");
	EXPECT_EQ(ValidatePoint(std::string_view("m"), 1.0, std::string_view("x"))->message,
	          "unknown metric_category \"x\"");
}

TEST(Validation, CollectorsFollowTheMetricNameRules)
{
	const IntervalValue minute {0, 0, 60 * kMicrosPerSecond, "00:01:00"};
	EXPECT_FALSE(ValidateCollector(std::string_view("pending_submissions"), std::string_view("workflow"), minute));
	EXPECT_EQ(ValidateCollector(std::nullopt, std::string_view("custom"), minute)->message,
	          "collector name must not be NULL");
	EXPECT_EQ(ValidateCollector(std::string_view("  "), std::string_view("custom"), minute)->message,
	          "collector name must not be empty");
	EXPECT_EQ(ValidateCollector(std::string_view("a\nb"), std::string_view("custom"), minute)->sqlstate, "22021");
	const std::string long_name(129, 'c');
	const auto e = ValidateCollector(std::string_view(long_name), std::string_view("custom"), minute);
	EXPECT_EQ(e->sqlstate, "22001");
	EXPECT_EQ(e->message, "collector name is too long (129 characters, at most 128)");
	// The name first, then the category, then the interval.
	EXPECT_EQ(ValidateCollector(std::string_view(""), std::nullopt, std::nullopt)->message,
	          "collector name must not be empty");
	EXPECT_EQ(ValidateCollector(std::string_view("c"), std::nullopt, std::nullopt)->message,
	          "metric_category must not be NULL");
	EXPECT_EQ(ValidateCollector(std::string_view("c"), std::string_view("app"), minute)->message,
	          "unknown metric_category \"app\"");
	EXPECT_EQ(ValidateCollector(std::string_view("c"), std::string_view("custom"), std::nullopt)->sqlstate, "22004");
}

TEST(Validation, CollectorIntervalsAreComparedAsPostgresComparesThem)
{
	auto check = [](IntervalValue v) {
		auto e = ValidateCollector(std::string_view("c"), std::string_view("custom"), v);
		return e ? e->message : std::string("ok");
	};
	EXPECT_EQ(check({0, 0, kMicrosPerSecond, "00:00:01"}), "ok");
	EXPECT_EQ(check({0, 1, 0, "1 day"}), "ok");
	EXPECT_EQ(check({0, 0, kMicrosPerDay, "24:00:00"}), "ok");
	EXPECT_EQ(check({0, 0, kMicrosPerSecond - 1, "00:00:00.999999"}),
	          "collect_interval must be between 1 second and 1 day, got 00:00:00.999999");
	EXPECT_EQ(check({0, 1, 1, "1 day 00:00:00.000001"}),
	          "collect_interval must be between 1 second and 1 day, got 1 day 00:00:00.000001");
	// A month is 30 days; a negative part counts against the rest.
	EXPECT_NE(check({1, 0, 0, "1 mon"}), "ok");
	EXPECT_EQ(check({1, -29, -60 * kMicrosPerSecond, "1 mon -29 days -00:01:00"}), "ok");
	EXPECT_NE(check({0, 0, -kMicrosPerSecond, "-00:00:01"}), "ok");
	// No overflow at the ends of the range.
	EXPECT_NE(check({INT32_MAX, INT32_MAX, INT64_MAX, "huge"}), "ok");
	EXPECT_NE(check({INT32_MIN, INT32_MIN, INT64_MIN, "tiny"}), "ok");
}

TEST(Validation, Float8AsPostgresPrintsIt)
{
	// Each expected string is what SELECT x::float8 prints with the default extra_float_digits.
	EXPECT_EQ(FormatFloat8(0), "0");
	EXPECT_EQ(FormatFloat8(-0.0), "-0");
	EXPECT_EQ(FormatFloat8(1), "1");
	EXPECT_EQ(FormatFloat8(-1), "-1");
	EXPECT_EQ(FormatFloat8(100.5), "100.5");
	EXPECT_EQ(FormatFloat8(-0.1), "-0.1");
	EXPECT_EQ(FormatFloat8(0.1 + 0.2), "0.30000000000000004");
	EXPECT_EQ(FormatFloat8(1.5), "1.5");
	EXPECT_EQ(FormatFloat8(0.0001), "0.0001");
	EXPECT_EQ(FormatFloat8(0.00001), "1e-05");
	EXPECT_EQ(FormatFloat8(0.000123), "0.000123");
	EXPECT_EQ(FormatFloat8(123456789012345), "123456789012345");
	EXPECT_EQ(FormatFloat8(1e15), "1e+15");
	EXPECT_EQ(FormatFloat8(1234567890123456), "1.234567890123456e+15");
	EXPECT_EQ(FormatFloat8(100000000000000000000.0), "1e+20");
	EXPECT_EQ(FormatFloat8(123456789012345680000.0), "1.2345678901234568e+20");
	EXPECT_EQ(FormatFloat8(1e300), "1e+300");
	EXPECT_EQ(FormatFloat8(5e-324), "5e-324");
	EXPECT_EQ(FormatFloat8(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
	EXPECT_EQ(FormatFloat8(std::nan("")), "NaN");
	EXPECT_EQ(FormatFloat8(std::numeric_limits<double>::infinity()), "Infinity");
	EXPECT_EQ(FormatFloat8(-std::numeric_limits<double>::infinity()), "-Infinity");
}
