// The words of the SQL API, each enumeration defined once. The core and the glue use these arrays;
// the build writes them into the install script (src/tools/sqlgen.cpp replaces @list:severity@ and
// the like in sql/source/), so the CHECK constraints, the PL/pgSQL and the C++ cannot disagree.
//
// Order is part of the definition: the detector's enums index kDetectionAlgorithms,
// kAnomalyTypes and kSeverities (static_asserts in detect.cpp), severities rank from least to
// worst, and incident statuses are listed in the order an incident moves through them.
#pragma once
#include "core/no_postgres.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace thrillmon::vocabulary {

inline constexpr std::string_view kMetricCategories[] = {"performance", "system",     "security",
                                                         "workflow",    "monitoring", "custom"};
inline constexpr std::string_view kDetectionAlgorithms[] = {
    "z_score", "mad", "moving_average", "rate_of_change", "ewma", "cusum", "seasonal", "predictive", "ensemble"};
inline constexpr std::string_view kAnomalyTypes[] = {"spike",        "drop",    "level_shift",
                                                     "trend_change", "outlier", "flatline"};
inline constexpr std::string_view kSeverities[] = {"low", "medium", "high", "critical"};
inline constexpr std::string_view kIncidentStatuses[] = {"open", "investigating", "resolved", "closed"};
// The statuses of an incident that is not over: it keeps its alerts from retention, takes new ones.
inline constexpr std::string_view kIncidentStatusesUnfinished[] = {"open", "investigating"};
inline constexpr std::string_view kJobs[] = {"collect", "detect", "retention", "maintenance"};
inline constexpr std::string_view kJobStatuses[] = {"running", "succeeded", "failed", "skipped"};
inline constexpr std::string_view kRetentionTargets[] = {"metrics",   "anomalies",   "alerts",
                                                         "incidents", "job_history", "deliveries"};
inline constexpr std::string_view kChannelKinds[] = {"alertmanager", "webhook", "slack"};
// What a delivery tells a channel, in the order an alert goes through them.
inline constexpr std::string_view kDeliveryEvents[] = {"new", "escalated", "resolved", "test"};
inline constexpr std::string_view kDeliveryStatuses[] = {"pending", "delivered", "dead"};
// Built-in metrics that count thrillmon's own alerts and incidents: an alert moves them, so an
// alert on them would be an alert about alerts (and raise the next one). Scored, never alerted.
inline constexpr std::string_view kSelfMetrics[] = {"unresolved_alerts", "active_incidents"};
// A person's verdict on an anomaly (label_anomaly()); tune_detection() separates the two.
inline constexpr std::string_view kAnomalyLabels[] = {"false_positive", "true_positive"};

// One enumeration: its name in the SQL sources (@list:NAME@) and its words.
struct Vocabulary {
	std::string_view name;
	const std::string_view *words;
	std::size_t size;

	const std::string_view *
	begin() const
	{
		return words;
	}
	const std::string_view *
	end() const
	{
		return words + size;
	}
};

template <std::size_t N>
constexpr Vocabulary
Of(std::string_view name, const std::string_view (&words)[N])
{
	return Vocabulary {name, words, N};
}

inline constexpr Vocabulary kMetricCategory = Of("metric_category", kMetricCategories);
inline constexpr Vocabulary kDetectionAlgorithm = Of("detection_algorithm", kDetectionAlgorithms);
inline constexpr Vocabulary kAnomalyType = Of("anomaly_type", kAnomalyTypes);
inline constexpr Vocabulary kSeverity = Of("severity", kSeverities);
inline constexpr Vocabulary kIncidentStatus = Of("incident_status", kIncidentStatuses);
inline constexpr Vocabulary kIncidentStatusUnfinished = Of("incident_status_unfinished", kIncidentStatusesUnfinished);
inline constexpr Vocabulary kJob = Of("job", kJobs);
inline constexpr Vocabulary kJobStatus = Of("job_status", kJobStatuses);
inline constexpr Vocabulary kRetentionTarget = Of("retention_target", kRetentionTargets);
inline constexpr Vocabulary kChannelKind = Of("channel_kind", kChannelKinds);
inline constexpr Vocabulary kDeliveryEvent = Of("delivery_event", kDeliveryEvents);
inline constexpr Vocabulary kDeliveryStatus = Of("delivery_status", kDeliveryStatuses);
inline constexpr Vocabulary kSelfMetric = Of("self_metric", kSelfMetrics);
inline constexpr Vocabulary kAnomalyLabel = Of("anomaly_label", kAnomalyLabels);

inline constexpr Vocabulary kAll[] = {kMetricCategory,
                                      kDetectionAlgorithm,
                                      kAnomalyType,
                                      kSeverity,
                                      kIncidentStatus,
                                      kIncidentStatusUnfinished,
                                      kJob,
                                      kJobStatus,
                                      kRetentionTarget,
                                      kChannelKind,
                                      kDeliveryEvent,
                                      kDeliveryStatus,
                                      kSelfMetric,
                                      kAnomalyLabel};

// The position of word in v, or nullopt.
std::optional<std::size_t> IndexOf(const Vocabulary &v, std::string_view word);

// The words joined by separator: Join(kSeverity, ", ") is "low, medium, high, critical".
std::string Join(const Vocabulary &v, std::string_view separator);

// The vocabulary of that name (as the SQL sources spell it), or nullptr.
const Vocabulary *Find(std::string_view name);

} // namespace thrillmon::vocabulary
