// Validation rules and the retention cut-off.
#include "core/validation.hpp"

#include "core/vocabulary.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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
CategoryHint()
{
	return "Use one of: " + vocabulary::Join(vocabulary::kMetricCategory, ", ") + ".";
}

// Characters a name given to record_metric(), observe() or register_collector() may not hold
// (besides C0 controls and DEL): C1 controls, which terminals act on; bidirectional controls,
// which make a name display as another (U+202E shows "abc" + RLO + "fed" as "abcdef"); and
// invisible ones, which make two names look alike. As UTF-8: thrillmon's names are counted
// and stored as UTF-8 text.
bool
Unwelcome(char32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9F) ||     // C1 controls
	       cp == 0x061C ||                   // ARABIC LETTER MARK
	       cp == 0x180E ||                   // MONGOLIAN VOWEL SEPARATOR
	       (cp >= 0x200B && cp <= 0x200F) || // ZWSP, ZWNJ, ZWJ, LRM, RLM
	       (cp >= 0x2028 && cp <= 0x202E) || // LINE/PARAGRAPH SEPARATOR, LRE..RLO
	       (cp >= 0x2060 && cp <= 0x2064) || // WORD JOINER, invisible operators
	       (cp >= 0x2066 && cp <= 0x2069) || // LRI..PDI
	       cp == 0xFEFF;                     // ZERO WIDTH NO-BREAK SPACE (BOM)
}

// The first unwelcome code point of a UTF-8 string, if any. Ill-formed bytes (which a UTF-8
// database never hands over) are skipped.
std::optional<char32_t>
FirstUnwelcome(std::string_view s)
{
	for (std::size_t i = 0; i < s.size();) {
		const unsigned char c = static_cast<unsigned char>(s[i]);
		std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
		if (i + n > s.size())
			n = 1;
		char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
		for (std::size_t k = 1; k < n; k++)
			cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
		if (n > 1 && Unwelcome(cp))
			return cp;
		i += n;
	}
	return std::nullopt;
}

std::string
CodePoint(char32_t cp)
{
	char buf[16];
	std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
	return buf;
}

// A name (`noun`: "metric_name", "collector name"): not NULL, no control characters, not empty
// (nor blank, unless allow_blank), at most kMaxMetricNameChars characters; and when `strict`
// (a name given to a function, not one already stored), none of the Unwelcome() characters.
MaybeError
CheckName(std::optional<std::string_view> name, const std::string &noun, bool allow_blank, bool strict)
{
	if (!name)
		return Error(kSqlstateNullValueNotAllowed, noun + " must not be NULL");
	bool blank = true;
	for (const unsigned char c : *name) {
		if (c < 0x20 || c == 0x7F)
			return Error(kSqlstateCharacterNotInRepertoire, noun + " must not contain control characters");
		if (c != ' ')
			blank = false;
	}
	if (strict)
		if (const std::optional<char32_t> cp = FirstUnwelcome(*name)) {
			if (*cp <= 0x9F) // C1: a control character like those of C0
				return Error(kSqlstateCharacterNotInRepertoire, noun + " must not contain control characters");
			return Error(kSqlstateCharacterNotInRepertoire,
			             noun + " must not contain invisible or bidirectional formatting characters (" +
			                 CodePoint(*cp) + ")",
			             "A name must read as what it is: such characters make it display as another name, or "
			             "two names look alike.");
		}
	if (name->empty() || (blank && !allow_blank))
		return Error(kSqlstateInvalidParameterValue, noun + " must not be empty");
	const std::size_t length = Utf8Length(*name);
	if (length > kMaxMetricNameChars)
		return Error(kSqlstateStringDataRightTruncation, noun + " is too long (" + std::to_string(length) +
		                                                     " characters, at most " +
		                                                     std::to_string(kMaxMetricNameChars) + ")");
	return std::nullopt;
}

MaybeError
CheckMetricName(std::optional<std::string_view> name, bool allow_blank, bool strict)
{
	return CheckName(name, "metric_name", allow_blank, strict);
}

} // namespace

MaybeError
ValidateMetricName(std::optional<std::string_view> name)
{
	return CheckMetricName(name, false, true);
}

MaybeError
ValidateMetricValue(std::optional<double> value)
{
	if (!value)
		return Error(kSqlstateNullValueNotAllowed, "metric_value must not be NULL");
	if (std::isnan(*value))
		return Error(kSqlstateInvalidParameterValue, "metric_value must be a finite number, not NaN");
	if (std::isinf(*value))
		return Error(kSqlstateInvalidParameterValue, std::string("metric_value must be a finite number, not ") +
		                                                 (*value > 0 ? "Infinity" : "-Infinity"));
	return std::nullopt;
}

MaybeError
ValidateCategory(std::optional<std::string_view> category)
{
	if (!category)
		return Error(kSqlstateNullValueNotAllowed, "metric_category must not be NULL", CategoryHint());
	if (vocabulary::IndexOf(vocabulary::kMetricCategory, *category))
		return std::nullopt;
	return Error(kSqlstateInvalidParameterValue, "unknown metric_category \"" + std::string(*category) + "\"",
	             CategoryHint());
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
		return Error(kSqlstateInvalidParameterValue, std::string("metadata must be a JSON object, not ") +
		                                                 (kind == JsonKind::Array ? "an array" : "a scalar"));
	if (size_bytes > kMaxMetadataBytes)
		return Error(kSqlstateInvalidParameterValue, "metadata is too large (" + std::to_string(size_bytes) +
		                                                 " bytes, at most " + std::to_string(kMaxMetadataBytes) + ")");
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
ValidateRecordedTimestamp(bool is_finite, std::int64_t ts, std::int64_t now)
{
	if (auto e = ValidateTimestampIsFinite(is_finite))
		return e;
	if (ts > now && ts - now > static_cast<std::int64_t>(kMaxFutureDays) * kMicrosPerDay)
		return Error(kSqlstateDatetimeFieldOverflow,
		             "ts must not be more than " + std::to_string(kMaxFutureDays) + " days after now()",
		             "A point dated that far ahead would get no daily partition for a year or more; check the year, "
		             "or the clock of the client that sent it.");
	return std::nullopt;
}

MaybeError
ValidateStoredPoint(std::string_view name, double value, std::string_view category,
                    std::optional<MetadataShape> metadata, bool timestamp_is_finite)
{
	if (auto e = CheckMetricName(name, true, false))
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
ValidateCollectorName(std::optional<std::string_view> name)
{
	return CheckName(name, "collector name", false, true);
}

MaybeError
ValidateCollector(std::optional<std::string_view> name, std::optional<std::string_view> category,
                  std::optional<IntervalValue> collect_interval)
{
	if (auto e = ValidateCollectorName(name))
		return e;
	if (auto e = ValidateCategory(category))
		return e;
	if (!collect_interval)
		return Error(kSqlstateNullValueNotAllowed, "collect_interval must not be NULL");
	// interval_cmp_value(): months of 30 days, days of 24 hours, in 128 bits (no overflow).
	const __int128 span =
	    (static_cast<__int128>(collect_interval->months) * 30 + collect_interval->days) * kMicrosPerDay +
	    collect_interval->micros;
	if (span < kMicrosPerSecond || span > kMicrosPerDay)
		return Error(kSqlstateInvalidParameterValue,
		             "collect_interval must be between 1 second and 1 day, got " + std::string(collect_interval->text));
	return std::nullopt;
}

std::string
FormatFloat8(double value)
{
	if (std::isnan(value))
		return "NaN";
	if (std::isinf(value))
		return value > 0 ? "Infinity" : "-Infinity";
	// The shortest digits that read back exactly, as d.ddde[+-]XX (Ryu, as Postgres uses).
	char buf[64];
	const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
	const std::string sci(buf, r.ptr);
	const std::size_t e = sci.find('e');
	const bool negative = sci[0] == '-';
	std::string digits;
	for (std::size_t i = negative ? 1 : 0; i < e; i++)
		if (sci[i] != '.')
			digits += sci[i];
	const int exponent = std::atoi(sci.c_str() + e + 1);
	// d2s.c: fixed-point for decimal exponents in [-4, 15), as printf's %g would.
	if (exponent < -4 || exponent >= 15)
		return sci;
	std::string out = negative ? "-" : "";
	if (exponent < 0) {
		out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
	} else {
		const std::size_t int_digits = static_cast<std::size_t>(exponent) + 1;
		if (digits.size() <= int_digits) {
			out += digits + std::string(int_digits - digits.size(), '0');
		} else {
			out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
		}
	}
	return out;
}

MaybeError
ValidateRetentionDays(std::optional<int> days, std::string_view arg)
{
	const std::string name(arg);
	if (!days)
		return Error(kSqlstateNullValueNotAllowed, name + " must not be NULL");
	if (*days < 1)
		return Error(kSqlstateInvalidParameterValue, name + " must be at least 1, got " + std::to_string(*days),
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
