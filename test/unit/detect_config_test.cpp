// The rules of a detection configuration: the messages are the SQL API's (the same strings are
// asserted through SQL in sql/detection.sql and test/pgtap/detection.sql).
#include "core/detect_config.hpp"

#include "core/detect.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

using namespace thrillmon::detect;

namespace {

struct Row {
	std::vector<std::optional<std::string_view>> algorithms {std::string_view("ensemble")};
	bool algorithms_null = false;
	std::optional<double> sensitivity = 4.5;
	std::optional<std::int64_t> min_data_points = 30;
	std::optional<std::int64_t> lookback = 1440;
	std::optional<double> alert_threshold = 0.8;
	std::optional<std::int64_t> cooldown = 30;

	thrillmon::MaybeError
	Validate() const
	{
		DetectionConfig c;
		c.algorithms = AlgorithmList {algorithms_null, algorithms.data(), algorithms.size()};
		c.sensitivity = sensitivity;
		c.min_data_points = min_data_points;
		c.lookback_window_minutes = lookback;
		c.alert_threshold_score = alert_threshold;
		c.cooldown_minutes = cooldown;
		return ValidateDetectionConfig(c);
	}
};

std::string
Message(const Row &r)
{
	auto e = r.Validate();
	return e ? e->sqlstate + " " + e->message : "ok";
}

} // namespace

TEST(DetectConfig, TheShippedDefaultsAreValid)
{
	EXPECT_EQ(Message(Row {}), "ok");
	Row r;
	r.sensitivity = 100;
	r.min_data_points = 2;
	r.lookback = 2;
	r.alert_threshold = 0;
	r.cooldown = 0;
	EXPECT_EQ(Message(r), "ok");
}

TEST(DetectConfig, Algorithms)
{
	Row r;
	r.algorithms = {};
	EXPECT_EQ(Message(r), "22023 detection_algorithms must name at least one algorithm");
	EXPECT_EQ(r.Validate()->hint, "Known algorithms: z_score, mad, moving_average, rate_of_change, ewma, cusum, "
	                              "seasonal, predictive, ensemble.");
	r.algorithms_null = true;
	EXPECT_EQ(Message(r), "22023 detection_algorithms must name at least one algorithm");
	r = Row {};
	r.algorithms = {std::string_view("mad"), std::nullopt};
	EXPECT_EQ(Message(r), "22004 detection_algorithms must not contain NULL");
	r.algorithms = {std::string_view("zeta"), std::string_view("mad"), std::string_view("alpha")};
	EXPECT_EQ(Message(r), "22023 unknown detection algorithm \"alpha\", \"zeta\"");
	// A NULL is reported before an unknown name, whatever their order.
	r.algorithms = {std::string_view("bogus"), std::nullopt};
	EXPECT_EQ(Message(r), "22004 detection_algorithms must not contain NULL");
}

TEST(DetectConfig, AlgorithmMask)
{
	std::vector<std::optional<std::string_view>> names {std::string_view("mad"), std::string_view("cusum"),
	                                                    std::string_view("mad")};
	std::uint32_t mask = 0;
	EXPECT_FALSE(ValidateAlgorithms(AlgorithmList {false, names.data(), names.size()}, &mask));
	EXPECT_EQ(mask, AlgorithmBit(Algorithm::kMad) | AlgorithmBit(Algorithm::kCusum));
	std::uint32_t untouched = 7;
	names.push_back(std::string_view("nope"));
	EXPECT_TRUE(ValidateAlgorithms(AlgorithmList {false, names.data(), names.size()}, &untouched));
	EXPECT_EQ(untouched, 7u);
}

TEST(DetectConfig, Sensitivity)
{
	Row r;
	for (double bad : {0.0, -1.0, -0.0, 100.5, 1e300, 1e-300, 0.4999}) {
		r.sensitivity = bad;
		EXPECT_EQ(r.Validate()->sqlstate, "22023") << bad;
	}
	r.sensitivity = 0;
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got 0");
	r.sensitivity = 1e-300;
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got 1e-300") << "flags every point";
	r.sensitivity = 0.5;
	EXPECT_FALSE(r.Validate());
	r.sensitivity = std::nan("");
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got NaN");
	r.sensitivity = std::numeric_limits<double>::infinity();
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got Infinity");
	r.sensitivity = std::nullopt;
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got <NULL>");
	r.sensitivity = 100.5;
	EXPECT_EQ(Message(r), "22023 sensitivity must be between 0.5 and 100, got 100.5");
}

TEST(DetectConfig, CountsAndWindows)
{
	Row r;
	for (std::int64_t bad :
	     {std::int64_t {-1}, std::int64_t {0}, std::int64_t {1}, std::int64_t {1000001}, INT64_MIN, INT64_MAX}) {
		r.min_data_points = bad;
		EXPECT_EQ(r.Validate()->message.rfind("min_data_points must be between 2 and 1000000, got ", 0), 0u) << bad;
	}
	r = Row {};
	r.min_data_points = std::nullopt;
	EXPECT_EQ(Message(r), "22023 min_data_points must be between 2 and 1000000, got <NULL>");
	r = Row {};
	r.lookback = 0;
	EXPECT_EQ(Message(r), "22023 lookback_window_minutes must be between 1 and 527040 (366 days), got 0");
	r.lookback = 527041;
	EXPECT_EQ(r.Validate()->sqlstate, "22023");
	r.lookback = 20;
	EXPECT_EQ(Message(r), "22023 lookback_window_minutes (20) is shorter than min_data_points (30)");
	r.lookback = 30;
	EXPECT_EQ(Message(r), "ok");
	r.alert_threshold = 1.5;
	EXPECT_EQ(Message(r), "22023 alert_threshold_score must be between 0 and 1, got 1.5");
	r.alert_threshold = -0.1;
	EXPECT_EQ(Message(r), "22023 alert_threshold_score must be between 0 and 1, got -0.1");
	r.alert_threshold = std::nan("");
	EXPECT_EQ(Message(r), "22023 alert_threshold_score must be between 0 and 1, got NaN");
	r.alert_threshold = 1;
	r.cooldown = -1;
	EXPECT_EQ(Message(r), "22023 cooldown_minutes must be between 0 and 527040, got -1");
	r.cooldown = 527041;
	EXPECT_EQ(Message(r), "22023 cooldown_minutes must be between 0 and 527040, got 527041");
}

TEST(DetectConfig, RulesAreCheckedInTheTriggersOrder)
{
	Row r;
	r.sensitivity = 0;
	r.min_data_points = 1;
	r.cooldown = -1;
	EXPECT_EQ(r.Validate()->message.rfind("sensitivity", 0), 0u);
	r.algorithms = {};
	EXPECT_EQ(r.Validate()->message.rfind("detection_algorithms", 0), 0u);
}
