// The rules of a detection configuration (a row of anomaly_detection_config, or backtest()'s
// overrides), in one place: the table's trigger, backtest() and the detection pass all call these,
// and the build writes the limits into the table's CHECK constraints (src/tools/sqlgen.cpp).
#pragma once
#include "core/no_postgres.hpp"

#include "core/validation.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace thrillmon::detect {

// Robust standard deviations. Below the minimum nearly every point is an anomaly (at 1e-300,
// every one): a mistyped value, not a configuration.
constexpr double kMinSensitivity = 0.5;
constexpr double kMaxSensitivity = 100;
constexpr std::int64_t kMinDataPointsMin = 2; // a deviation needs a spread
constexpr std::int64_t kMinDataPointsMax = 1000000;
constexpr std::int64_t kLookbackMinutesMin = 1;
constexpr std::int64_t kLookbackMinutesMax = 527040; // 366 days
constexpr std::int64_t kCooldownMinutesMax = 527040;
constexpr double kDefaultSensitivity = 4.5;
// Labels people give anomalies (label_anomaly()): one per anomaly, and at most this many in all,
// since a label outlives its anomaly (it keeps suppressing the shape it marks).
constexpr std::int64_t kMaxAnomalyLabels = 100000;

// An algorithm list as SQL gives it: the array itself may be NULL, and so may each element.
struct AlgorithmList {
	bool is_null;
	const std::optional<std::string_view> *items;
	std::size_t count;
};

// detection_algorithms: at least one element, none NULL, every one a known algorithm (all the
// unknown ones named, sorted). On success *mask (if given) is the set of their AlgorithmBit()s.
MaybeError ValidateAlgorithms(const AlgorithmList &algorithms, std::uint32_t *mask = nullptr);

MaybeError ValidateSensitivity(std::optional<double> sensitivity);

// A whole configuration row, rule by rule in the order the trigger has always checked them:
// algorithms, sensitivity, min_data_points, lookback_window_minutes (also against
// min_data_points), alert_threshold_score, cooldown_minutes.
struct DetectionConfig {
	AlgorithmList algorithms;
	std::optional<double> sensitivity;
	std::optional<std::int64_t> min_data_points;
	std::optional<std::int64_t> lookback_window_minutes;
	std::optional<double> alert_threshold_score;
	std::optional<std::int64_t> cooldown_minutes;
};

MaybeError ValidateDetectionConfig(const DetectionConfig &config);

} // namespace thrillmon::detect
