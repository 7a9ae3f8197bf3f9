// The SQL API's vocabularies and lock registry: the words, their order, and their uses in the core.
#include "core/detect.hpp"
#include "core/locks.hpp"
#include "core/validation.hpp"
#include "core/vocabulary.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace thrillmon;

TEST(Vocabulary, WordsAndOrder)
{
	EXPECT_EQ(vocabulary::Join(vocabulary::kMetricCategory, ", "),
	          "performance, system, security, workflow, monitoring, custom");
	EXPECT_EQ(vocabulary::Join(vocabulary::kSeverity, ","), "low,medium,high,critical");
	EXPECT_EQ(vocabulary::Join(vocabulary::kIncidentStatus, ","), "open,investigating,resolved,closed");
	EXPECT_EQ(vocabulary::IndexOf(vocabulary::kSeverity, "critical"), 3u);
	EXPECT_FALSE(vocabulary::IndexOf(vocabulary::kSeverity, "Critical"));
	EXPECT_FALSE(vocabulary::IndexOf(vocabulary::kSeverity, ""));
}

TEST(Vocabulary, NamesAreUniqueAndFound)
{
	std::set<std::string_view> names;
	for (const vocabulary::Vocabulary &v : vocabulary::kAll) {
		EXPECT_TRUE(names.insert(v.name).second) << v.name;
		EXPECT_EQ(vocabulary::Find(v.name), &v);
		std::set<std::string_view> words(v.begin(), v.end());
		EXPECT_EQ(words.size(), v.size) << v.name << " has a duplicate word";
		for (const std::string_view w : v)
			EXPECT_EQ(w.find_first_of("',{}\" "), std::string_view::npos) << v.name << ": " << w;
	}
	EXPECT_EQ(vocabulary::Find("nope"), nullptr);
}

TEST(Vocabulary, UnfinishedIncidentStatusesAreIncidentStatuses)
{
	for (const std::string_view s : vocabulary::kIncidentStatusUnfinished)
		EXPECT_TRUE(vocabulary::IndexOf(vocabulary::kIncidentStatus, s)) << s;
}

TEST(Vocabulary, TheDetectorSpeaksIt)
{
	for (std::size_t i = 0; i < vocabulary::kDetectionAlgorithm.size; i++)
		EXPECT_EQ(detect::AlgorithmName(static_cast<detect::Algorithm>(i)), vocabulary::kDetectionAlgorithms[i]);
	for (std::size_t i = 0; i < vocabulary::kAnomalyType.size; i++)
		EXPECT_EQ(detect::AnomalyTypeName(static_cast<detect::AnomalyType>(i)), vocabulary::kAnomalyTypes[i]);
	for (std::size_t i = 0; i < vocabulary::kSeverity.size; i++)
		EXPECT_EQ(detect::SeverityName(static_cast<detect::Severity>(i)), vocabulary::kSeverities[i]);
	for (const std::string_view c : vocabulary::kMetricCategory)
		EXPECT_FALSE(ValidateCategory(c)) << c;
	EXPECT_EQ(ValidateCategory(std::string_view("nope"))->hint,
	          "Use one of: performance, system, security, workflow, monitoring, custom.");
}

TEST(Locks, KeysAreUniqueAndFound)
{
	EXPECT_EQ(locks::kClass, 1950896716);
	std::set<std::int32_t> keys;
	for (const locks::Lock &l : locks::kAll) {
		EXPECT_TRUE(keys.insert(l.key).second) << l.name;
		EXPECT_EQ(locks::Find(l.name), &l);
	}
	EXPECT_EQ(locks::Find("detect_pass")->key, 5);
	EXPECT_EQ(locks::Find("nope"), nullptr);
}
