// Validation rules and the retention cut-off.
#include "core/validation.hpp"

#include <cmath>

namespace thrillmon {

namespace {

// Counts UTF-8 code points (the server encoding is UTF-8 on every Debian default cluster; for a
// single-byte encoding each byte is below 0x80 or counted as a character start, close enough
// for a length limit that exists to catch mistakes).
std::size_t
Utf8Length(std::string_view s)
{
	std::size_t n = 0;
	for (const unsigned char c : s)
		if ((c & 0xC0) != 0x80)
			++n;
	return n;
}

ValidationError
Error(const char *sqlstate, std::string message, std::string hint = {})
{
	return ValidationError {sqlstate, std::move(message), std::move(hint)};
}

std::string
CategoryList()
{
	std::string list;
	for (const auto &c : MetricCategories()) {
		if (!list.empty())
			list += ", ";
		list += c;
	}
	return list;
}

} // namespace

const std::vector<std::string> &
MetricCategories()
{
	static const std::vector<std::string> kCategories = {"performance", "system", "security",
	                                                     "workflow",    "monitoring", "custom"};
	return kCategories;
}

namespace {

MaybeError
CheckMetricName(std::optional<std::string_view> name, bool allow_blank)
{
	if (!name)
		return Error(kSqlstateNullValueNotAllowed, "metric_name must not be NULL");
	bool blank = true;
	for (const unsigned char c : *name) {
		if (c < 0x20 || c == 0x7F)
			return Error(kSqlstateCharacterNotInRepertoire, "metric_name must not contain control characters");
		if (c != ' ')
			blank = false;
	}
	if (name->empty() || (blank && !allow_blank))
		return Error(kSqlstateInvalidParameterValue, "metric_name must not be empty");
	const std::size_t length = Utf8Length(*name);
	if (length > kMaxMetricNameChars)
		return Error(kSqlstateStringDataRightTruncation,
		             "metric_name is too long (" + std::to_string(length) + " characters, at most " +
		                 std::to_string(kMaxMetricNameChars) + ")");
	return std::nullopt;
}

} // namespace

MaybeError
ValidateMetricName(std::optional<std::string_view> name)
{
	return CheckMetricName(name, false);
}

MaybeError
ValidateMetricValue(std::optional<double> value)
{
	if (!value)
		return Error(kSqlstateNullValueNotAllowed, "metric_value must not be NULL");
	if (std::isnan(*value))
		return Error(kSqlstateInvalidParameterValue, "metric_value must be a finite number, not NaN");
	if (std::isinf(*value))
		return Error(kSqlstateInvalidParameterValue,
		             std::string("metric_value must be a finite number, not ") + (*value > 0 ? "Infinity" : "-Infinity"));
	return std::nullopt;
}

MaybeError
ValidateCategory(std::optional<std::string_view> category)
{
	if (!category)
		return Error(kSqlstateNullValueNotAllowed, "metric_category must not be NULL",
		             "Use one of: " + CategoryList() + ".");
	for (const auto &c : MetricCategories())
		if (*category == c)
			return std::nullopt;
	return Error(kSqlstateInvalidParameterValue, "unknown metric_category \"" + std::string(*category) + "\"",
	             "Use one of: " + CategoryList() + ".");
}

MaybeError
ValidatePoint(std::optional<std::string_view> name, std::optional<double> value,
              std::optional<std::string_view> category)
{
	if (auto e = ValidateMetricName(name))
		return e;
	if (auto e = ValidateMetricValue(value))
		return e;
	return ValidateCategory(category);
}

MaybeError
ValidateMetadata(JsonKind kind, std::size_t size_bytes)
{
	if (kind != JsonKind::Object)
		return Error(kSqlstateInvalidParameterValue,
		             std::string("metadata must be a JSON object, not ") + (kind == JsonKind::Array ? "an array" : "a scalar"));
	if (size_bytes > kMaxMetadataBytes)
		return Error(kSqlstateInvalidParameterValue,
		             "metadata is too large (" + std::to_string(size_bytes) + " bytes, at most " +
		                 std::to_string(kMaxMetadataBytes) + ")");
	return std::nullopt;
}

MaybeError
ValidateTimestampIsFinite(bool is_finite, std::string_view arg)
{
	if (!is_finite)
		return Error(kSqlstateDatetimeFieldOverflow,
		             std::string(arg) + " must be a finite timestamp, not infinity or -infinity");
	return std::nullopt;
}

MaybeError
ValidateStoredPoint(std::string_view name, double value, std::string_view category,
                    std::optional<MetadataShape> metadata, bool timestamp_is_finite)
{
	if (auto e = CheckMetricName(name, true))
		return e;
	if (auto e = ValidateMetricValue(value))
		return e;
	if (auto e = ValidateCategory(category))
		return e;
	if (metadata)
		if (auto e = ValidateMetadata(metadata->kind, metadata->size_bytes))
			return e;
	return ValidateTimestampIsFinite(timestamp_is_finite, "\"timestamp\"");
}

MaybeError
ValidateRetentionDays(std::optional<int> days, std::string_view arg)
{
	const std::string name(arg);
	if (!days)
		return Error(kSqlstateNullValueNotAllowed, name + " must not be NULL");
	if (*days < 1)
		return Error(kSqlstateInvalidParameterValue,
		             name + " must be at least 1, got " + std::to_string(*days),
		             "To keep data forever, set enabled = false on its retention policy.");
	if (*days > kMaxRetentionDays)
		return Error(kSqlstateInvalidParameterValue,
		             name + " must be at most " + std::to_string(kMaxRetentionDays) + ", got " + std::to_string(*days),
		             "To keep data forever, set enabled = false on its retention policy.");
	return std::nullopt;
}

EpochMicros
RetentionCutoff(EpochMicros now, int days)
{
	return now - static_cast<EpochMicros>(days) * kMicrosPerDay;
}

} // namespace thrillmon
