// sqlgen: builds the install script from sql/source/*.sql (given in order on the command line),
// writing it to standard output. It concatenates the files, marks where each begins, and replaces
// the placeholders that take the SQL side's words and numbers from the core, so that nothing the
// core defines is written down a second time in SQL:
//
//   @list:VOCABULARY@    'low', 'medium', 'high', 'critical'     (for IN (...))
//   @array:VOCABULARY@   '{low,medium,high,critical}'             (a text[] literal)
//   @words:VOCABULARY@   low, medium, high, critical              (for messages and hints)
//   @job_lock:NAME@      'retention_cleanup'                      (a job lock's name, checked)
//   @job_lock_rows@      ('maintain_partitions', '...'), ...      (thrillmon.job_locks' rows)
//   @limit:NAME@         a number from the core (see kLimits)
//
// VOCABULARY is a name of src/core/vocabulary.hpp, NAME one of src/core/locks.hpp. An unknown
// placeholder fails the build (exit status 1, with file and line), so a typo cannot reach SQL.
// Built and run by the Makefile with the host compiler; it is not part of the extension.
#include "core/delivery.hpp"
#include "core/detect_config.hpp"
#include "core/locks.hpp"
#include "core/validation.hpp"
#include "core/vocabulary.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace {

using namespace thrillmon;

struct Limit {
	std::string_view name;
	std::string value;
};

// The numbers the SQL sources take from the core (CHECK constraints' bounds).
const Limit kLimits[] = {
    {"metric_name_chars", std::to_string(kMaxMetricNameChars)},
    {"retention_days_max", std::to_string(kMaxRetentionDays)},
    {"sensitivity_min", FormatFloat8(detect::kMinSensitivity)},
    {"sensitivity_max", FormatFloat8(detect::kMaxSensitivity)},
    {"sensitivity_default", FormatFloat8(detect::kDefaultSensitivity)},
    {"min_data_points_min", std::to_string(detect::kMinDataPointsMin)},
    {"min_data_points_max", std::to_string(detect::kMinDataPointsMax)},
    {"lookback_minutes_min", std::to_string(detect::kLookbackMinutesMin)},
    {"lookback_minutes_max", std::to_string(detect::kLookbackMinutesMax)},
    {"cooldown_minutes_max", std::to_string(detect::kCooldownMinutesMax)},
    {"max_anomaly_labels", std::to_string(detect::kMaxAnomalyLabels)},
    {"max_channels", std::to_string(delivery::kMaxChannels)},
    {"max_active_silences", std::to_string(delivery::kMaxActiveSilences)},
    {"max_pending_deliveries", std::to_string(delivery::kMaxPendingDeliveries)},
    {"max_in_flight_per_channel", std::to_string(delivery::kMaxInFlightPerChannel)},
    {"max_url_chars", std::to_string(delivery::kMaxUrlChars)},
    {"max_headers_bytes", std::to_string(delivery::kMaxHeadersBytes)},
    {"response_excerpt_chars", std::to_string(delivery::kResponseExcerptChars)},
};

std::string
Quoted(const vocabulary::Vocabulary &v)
{
	std::string out;
	for (const std::string_view w : v)
		out += (out.empty() ? "'" : ", '") + std::string(w) + "'";
	return out;
}

// The replacement for a placeholder's inside (between the @s), or nullopt when it is unknown.
std::optional<std::string>
Expand(std::string_view p)
{
	const std::size_t colon = p.find(':');
	const std::string_view kind = p.substr(0, colon);
	const std::string_view arg = colon == std::string_view::npos ? std::string_view() : p.substr(colon + 1);
	if (kind == "job_lock_rows" && colon == std::string_view::npos) {
		std::string rows;
		for (const locks::Lock &l : locks::kAll) {
			std::string what;
			for (const char *c = l.serialises; *c; c++)
				what += *c == '\'' ? std::string("''") : std::string(1, *c);
			rows += (rows.empty() ? "" : ",\n\t") + std::string("('") + std::string(l.name) + "', '" + what + "')";
		}
		return rows;
	}
	if (kind == "list" || kind == "array" || kind == "words") {
		const vocabulary::Vocabulary *v = vocabulary::Find(arg);
		if (v == nullptr)
			return std::nullopt;
		if (kind == "list")
			return Quoted(*v);
		if (kind == "array")
			return "'{" + vocabulary::Join(*v, ",") + "}'";
		return vocabulary::Join(*v, ", ");
	}
	if (kind == "job_lock") {
		const locks::Lock *l = locks::Find(arg);
		if (l == nullptr)
			return std::nullopt;
		return "'" + std::string(l->name) + "'";
	}
	if (kind == "limit")
		for (const Limit &l : kLimits)
			if (l.name == arg)
				return l.value;
	return std::nullopt;
}

bool
IsPlaceholderChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

// Replaces the placeholders of one line; false (and a message) on an unknown one. A placeholder is
// "@", a lower-case word, optionally ":" and another, and "@"; any other "@" (the jsonb and
// array operators @>, <@) is left alone.
bool
ExpandLine(const std::string &line, const std::string &where, std::string *out)
{
	out->clear();
	std::size_t i = 0;
	while (i < line.size()) {
		if (line[i] == '@' && i + 1 < line.size() && line[i + 1] >= 'a' && line[i + 1] <= 'z') {
			std::size_t j = i + 1;
			while (j < line.size() && IsPlaceholderChar(line[j]))
				j++;
			if (j < line.size() && line[j] == '@') {
				const std::string_view inside(line.data() + i + 1, j - i - 1);
				const std::optional<std::string> value = Expand(inside);
				if (!value) {
					std::cerr << where << ": unknown placeholder @" << inside << "@\n";
					return false;
				}
				*out += *value;
				i = j + 1;
				continue;
			}
		}
		*out += line[i++];
	}
	return true;
}

} // namespace

int
main(int argc, char **argv)
{
	if (argc < 2) {
		std::cerr << "usage: sqlgen sql/source/FILE.sql ... > install-script.sql\n";
		return 2;
	}
	bool ok = true;
	std::ostringstream script;
	for (int f = 1; f < argc; f++) {
		std::ifstream in(argv[f]);
		if (!in) {
			std::cerr << argv[f] << ": cannot read\n";
			return 1;
		}
		std::string line, expanded;
		int lineno = 0;
		while (std::getline(in, line)) {
			lineno++;
			ok = ExpandLine(line, std::string(argv[f]) + ":" + std::to_string(lineno), &expanded) && ok;
			script << expanded << '\n';
			// After the first file's first line (the \echo that stops psql -f): what this is.
			if (f == 1 && lineno == 1)
				script << "-- Generated by the build (src/tools/sqlgen) from sql/source/*.sql, which hold the one "
				          "current\n"
				          "-- definition of every object: edit those, not this file.\n";
		}
		if (f + 1 < argc)
			script << "\n-- " << std::string(76, '=') << "\n-- " << argv[f + 1] << "\n-- " << std::string(76, '=')
			       << "\n\n";
	}
	if (!ok)
		return 1;
	std::cout << script.str();
	return std::cout.good() ? 0 : 1;
}
