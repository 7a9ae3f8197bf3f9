// Detection configuration rules (see detect_config.hpp). The messages are the SQL API's: tests in
// sql/detection.sql and test/pgtap/detection.sql hold them to it.
#include "core/detect_config.hpp"

#include "core/detect.hpp"
#include "core/vocabulary.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace thrillmon::detect {

namespace {

ValidationError
Error(const char *sqlstate, std::string message, std::string hint = {})
{
	return ValidationError {sqlstate, std::move(message), std::move(hint)};
}

std::string
AlgorithmHint()
{
	return "Known algorithms: " + vocabulary::Join(vocabulary::kDetectionAlgorithm, ", ") + ".";
}

// "got %" as PL/pgSQL's RAISE printed it: <NULL> for NULL.
std::string
Got(std::optional<std::int64_t> v)
{
	return v ? std::to_string(*v) : "<NULL>";
}

std::string
Got(std::optional<double> v)
{
	return v ? FormatFloat8(*v) : "<NULL>";
}

} // namespace

MaybeError
ValidateAlgorithms(const AlgorithmList &algorithms, std::uint32_t *mask)
{
	if (algorithms.is_null || algorithms.count == 0)
		return Error(kSqlstateInvalidParameterValue, "detection_algorithms must name at least one algorithm",
		             AlgorithmHint());
	for (std::size_t i = 0; i < algorithms.count; i++)
		if (!algorithms.items[i])
			return Error(kSqlstateNullValueNotAllowed, "detection_algorithms must not contain NULL");
	std::vector<std::string_view> unknown;
	std::uint32_t bits = 0;
	for (std::size_t i = 0; i < algorithms.count; i++) {
		Algorithm a;
		if (ParseAlgorithm(*algorithms.items[i], &a))
			bits |= AlgorithmBit(a);
		else
			unknown.push_back(*algorithms.items[i]);
	}
	if (!unknown.empty()) {
		std::sort(unknown.begin(), unknown.end());
		std::string names;
		for (const std::string_view u : unknown)
			names += (names.empty() ? "" : "\", \"") + std::string(u.substr(0, 200));
		return Error(kSqlstateInvalidParameterValue, "unknown detection algorithm \"" + names + "\"", AlgorithmHint());
	}
	if (mask)
		*mask = bits;
	return std::nullopt;
}

MaybeError
ValidateSensitivity(std::optional<double> sensitivity)
{
	if (!sensitivity || !(*sensitivity >= kMinSensitivity && *sensitivity <= kMaxSensitivity))
		return Error(kSqlstateInvalidParameterValue, "sensitivity must be between 0.5 and 100, got " + Got(sensitivity),
		             "It is the deviation, in robust standard deviations, that makes a point an anomaly (default "
		             "4.5); below 0.5 nearly every point would be one.");
	return std::nullopt;
}

MaybeError
ValidateDetectionConfig(const DetectionConfig &c)
{
	if (auto e = ValidateAlgorithms(c.algorithms))
		return e;
	if (auto e = ValidateSensitivity(c.sensitivity))
		return e;
	if (!c.min_data_points || *c.min_data_points < kMinDataPointsMin || *c.min_data_points > kMinDataPointsMax)
		return Error(kSqlstateInvalidParameterValue,
		             "min_data_points must be between 2 and 1000000, got " + Got(c.min_data_points));
	if (!c.lookback_window_minutes || *c.lookback_window_minutes < kLookbackMinutesMin ||
	    *c.lookback_window_minutes > kLookbackMinutesMax)
		return Error(kSqlstateInvalidParameterValue,
		             "lookback_window_minutes must be between 1 and 527040 (366 days), got " +
		                 Got(c.lookback_window_minutes));
	if (*c.lookback_window_minutes < *c.min_data_points)
		return Error(kSqlstateInvalidParameterValue,
		             "lookback_window_minutes (" + std::to_string(*c.lookback_window_minutes) +
		                 ") is shorter than min_data_points (" + std::to_string(*c.min_data_points) + ")",
		             "At one point a minute the detector would never see enough history to score; lengthen the "
		             "lookback or lower min_data_points.");
	if (!c.alert_threshold_score || !(*c.alert_threshold_score >= 0 && *c.alert_threshold_score <= 1))
		return Error(kSqlstateInvalidParameterValue,
		             "alert_threshold_score must be between 0 and 1, got " + Got(c.alert_threshold_score));
	if (!c.cooldown_minutes || *c.cooldown_minutes < 0 || *c.cooldown_minutes > kCooldownMinutesMax)
		return Error(kSqlstateInvalidParameterValue,
		             "cooldown_minutes must be between 0 and 527040, got " + Got(c.cooldown_minutes));
	return std::nullopt;
}

} // namespace thrillmon::detect
