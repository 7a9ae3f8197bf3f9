// Input rules for everything a user hands thrillmon, as plain data so they can be unit-tested
// without a server. The glue turns a ValidationError into ereport(ERROR) with its SQLSTATE.
#pragma once
#include "core/no_postgres.hpp"

#include "core/civil_time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thrillmon {

constexpr std::size_t kMaxMetricNameChars = 128;
constexpr std::size_t kMaxMetadataBytes = 64 * 1024;
constexpr int kMaxRetentionDays = 36500; // a century: anything larger is a typo, not a policy

// SQLSTATEs used (all in classes 22 "data exception" and 23 "integrity constraint violation").
constexpr const char *kSqlstateNullValueNotAllowed = "22004";
constexpr const char *kSqlstateStringDataRightTruncation = "22001";
constexpr const char *kSqlstateInvalidParameterValue = "22023";
constexpr const char *kSqlstateDatetimeFieldOverflow = "22008";
constexpr const char *kSqlstateCharacterNotInRepertoire = "22021";

struct ValidationError {
	std::string sqlstate; // five characters
	std::string message;
	std::string hint; // may be empty
};

using MaybeError = std::optional<ValidationError>;

// A metric name: not NULL, not empty or blank, at most 128 characters (not bytes), no control
// characters. Quotes, semicolons and any other printable Unicode are allowed and kept verbatim.
MaybeError ValidateMetricName(std::optional<std::string_view> name);

// A metric value: finite (NaN and +/-Infinity would poison every mean and deviation downstream).
MaybeError ValidateMetricValue(std::optional<double> value);

// A category: one of vocabulary::kMetricCategories.
MaybeError ValidateCategory(std::optional<std::string_view> category);

// A point's name, value and category, checked in that order (record_metric() and observe()):
// the first failing rule's error.
MaybeError ValidatePoint(std::optional<std::string_view> name, std::optional<double> value,
                         std::optional<std::string_view> category);

// Metadata, described by the glue: is it a JSON object, and how large is it in bytes.
enum class JsonKind { Object, Array, Scalar };
MaybeError ValidateMetadata(JsonKind kind, std::size_t size_bytes);

// A point's timestamp: finite (infinity has no day to be stored in nor ever expires).
MaybeError ValidateTimestampIsFinite(bool is_finite, std::string_view arg = "ts");

// The farthest ahead of now a point may be recorded: far beyond it the point could get no daily
// partition (thrillmon.partition_premake_days is at most 365), and a year typed wrong shows for
// a metric's latest value for good.
constexpr int kMaxFutureDays = 366;

// A point's timestamp given to record_metric(): finite, and at most kMaxFutureDays after now.
// ts and now are microseconds from one epoch, any epoch: only their difference counts, so the
// glue passes Postgres's own (2000-01-01) values, which near 294276 AD would overflow if moved
// to the Unix epoch.
MaybeError ValidateRecordedTimestamp(bool is_finite, std::int64_t ts, std::int64_t now);

// Metadata of a stored row: absent, or described by the glue (kind and size in bytes).
struct MetadataShape {
	JsonKind kind;
	std::size_t size_bytes;
};

// The rules metric_time_series itself holds every row to, however it is written (its CHECK
// constraint metric_point_valid): record_metric()'s rules, in the order of its parameters,
// except that a name of spaces only is accepted. Before 0.5.0 the table's own checks accepted
// such names, and the upgrade, which validates the stored rows, must not fail on them.
MaybeError ValidateStoredPoint(std::string_view name, double value, std::string_view category,
                               std::optional<MetadataShape> metadata, bool timestamp_is_finite);

// A collector's name: the rules of a metric name (a one-column collector's metric is named after
// it), with "collector name" in the messages.
MaybeError ValidateCollectorName(std::optional<std::string_view> name);

// An interval as Postgres holds it, and its text (for messages).
struct IntervalValue {
	std::int32_t months;
	std::int32_t days;
	std::int64_t micros;
	std::string_view text;
};

// register_collector()'s arguments but the query (which the glue checks by planning it): the name,
// the category, and an interval of 1 second to 1 day (compared as Postgres compares intervals: a
// month is 30 days, a day 24 hours). In that order: the first failing rule's error.
MaybeError ValidateCollector(std::optional<std::string_view> name, std::optional<std::string_view> category,
                             std::optional<IntervalValue> collect_interval);

// A float8 as Postgres prints it by default (float8out with extra_float_digits = 1): the shortest
// text that reads back exactly, fixed-point for decimal exponents -4..14, else d.ddde+XX; NaN,
// Infinity, -Infinity. Messages quote values the way a psql user would see them.
std::string FormatFloat8(double value);

// Retention days: not NULL, at least 1, at most kMaxRetentionDays. `arg` names the parameter.
MaybeError ValidateRetentionDays(std::optional<int> days, std::string_view arg);

// The retention cut-off: exactly `days` x 24 h before `now`. Rows older than it are expired.
// Whole 24-hour days rather than calendar days in some zone, so that a cleanup removes the same
// rows whatever TimeZone the session calling it has (a DST change never shifts it by an hour).
EpochMicros RetentionCutoff(EpochMicros now, int days);

} // namespace thrillmon
