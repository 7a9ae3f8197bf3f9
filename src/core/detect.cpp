#include "core/detect.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace thrillmon::detect {
namespace {

constexpr const char *kAlgorithmNames[kAlgorithmCount] = {
	"z_score", "mad", "moving_average", "rate_of_change", "ewma", "cusum", "seasonal", "predictive", "ensemble",
};

// 1 / Phi^-1(3/4): MAD to standard deviation for Gaussian data.
constexpr double kMadToSigma = 1.482602218505602;
// sqrt(pi / 2): mean absolute deviation to standard deviation for Gaussian data.
constexpr double kMeanAbsToSigma = 1.2533141373155003;

constexpr double kEwmaLambda = 0.2;
constexpr double kCusumSlack = 0.5;     // k, in standard deviations
constexpr double kCusumCap = 50.0;      // bounds the statistic (and so its decay after a shift)
constexpr double kHoltAlpha = 0.5;
constexpr double kHoltBeta = 0.1;
constexpr double kAbsDevAlpha = 0.02;   // EW mean |x - median|
constexpr double kErrAlpha = 0.05;      // EW mean |forecast error|
constexpr double kBucketAlpha = 0.2;    // seasonal bucket mean and spread
constexpr std::uint32_t kSeasonDays = 3; // distinct days (weeks) before a bucket is trusted
constexpr double kScorePower = 4.0;
// Per-component calibration. Each component's |z| is kept in a decayed histogram; its
// kTailQuantile on this metric, against the same quantile on white Gaussian noise (kTailReference,
// measured by simulation), says how much heavier this metric's tail is for that component. A
// component that is routinely far out here (a window baseline on a daily square wave, a step
// detector on a spiky series) is scaled down so it no longer decides alone; one that is
// well-calibrated (factor 1) is left alone, so Gaussian deviations keep their meaning.
constexpr double kTailQuantile = 0.999;
constexpr double kTailReference[8] = {3.596, 3.663, 3.357, 3.782, 3.450, 3.991, 3.494, 3.817};
constexpr float kTailMemory = 4000.0f;  // points
constexpr std::uint32_t kTailMinPoints = 500; // history before a component's factor is trusted
constexpr int kTailRefreshPoints = 16;
constexpr std::uint32_t kEpisodePoints = 64; // refractory length after a reported anomaly
constexpr double kEscalation = 1.5;      // a deviation this much larger than the episode's peak is new
constexpr double kSeasonScaleAlpha = 0.01; // pooled seasonal residual scale
constexpr double kSeasonExplains = 0.5;  // seasonal residual / plain spread below which it arbitrates

// Histogram bin of |z| on a log-like scale: the exponent of 1 + |z| and the top two bits of its
// mantissa (4 bins per octave), without calling log2.
int TailBin(double z) {
	double v = 1.0 + std::min(std::fabs(z), 1e9);
	std::uint64_t bits;
	std::memcpy(&bits, &v, sizeof bits);
	int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
	int m = static_cast<int>((bits >> 50) & 3);
	int bin = e * 4 + m;
	return bin < thrillmon::detect::Detector::kTailBins ? bin : thrillmon::detect::Detector::kTailBins;
}
// Lower edge of a bin in |z|.
double TailEdge(double bin) {
	int e = static_cast<int>(bin) / 4;
	double m = bin - 4.0 * e;
	return std::ldexp(1.0 + m / 4.0, e) - 1.0;
}

// Inserts x into the sorted array a[0..n) (room for one more).
void SortedInsert(double *a, int n, double x) {
	int i = static_cast<int>(std::upper_bound(a, a + n, x) - a);
	std::memmove(a + i + 1, a + i, static_cast<std::size_t>(n - i) * sizeof(double));
	a[i] = x;
}

// Removes one copy of x from the sorted array a[0..n).
void SortedErase(double *a, int n, double x) {
	int i = static_cast<int>(std::lower_bound(a, a + n, x) - a);
	if (i >= n)
		i = n - 1; // cannot happen for values that were inserted; stay in bounds regardless
	std::memmove(a + i, a + i + 1, static_cast<std::size_t>(n - i - 1) * sizeof(double));
}

double SortedMedian(const double *a, int n) {
	if (n <= 0)
		return 0;
	return (n % 2) ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

// The k-th smallest (0-based) |a[i] - m| over sorted a[0..n), in O(log n): the distances left of
// m, read outwards, and right of m, read outwards, are two sorted runs.
double KthDistance(const double *a, int n, double m, int k) {
	int p = static_cast<int>(std::lower_bound(a, a + n, m) - a);
	int na = p, nb = n - p;
	auto A = [&](int j) { return m - a[p - 1 - j]; };
	auto B = [&](int j) { return a[p + j] - m; };
	int lo = std::max(0, k - nb), hi = std::min(k, na);
	while (lo <= hi) {
		int i = (lo + hi) / 2, j = k - i;
		double a_prev = i > 0 ? A(i - 1) : -HUGE_VAL, b_prev = j > 0 ? B(j - 1) : -HUGE_VAL;
		double a_cur = i < na ? A(i) : HUGE_VAL, b_cur = j < nb ? B(j) : HUGE_VAL;
		if (a_prev > b_cur)
			hi = i - 1;
		else if (b_prev > a_cur)
			lo = i + 1;
		else
			return std::min(a_cur, b_cur);
	}
	return 0; // unreachable for 0 <= k < n
}

double SortedMad(const double *a, int n, double m) {
	if (n <= 0)
		return 0;
	if (n % 2)
		return KthDistance(a, n, m, n / 2);
	return 0.5 * (KthDistance(a, n, m, n / 2 - 1) + KthDistance(a, n, m, n / 2));
}

double Floor(double scale, double level) {
	double f = 1e-6 * (std::fabs(level) + 1e-3);
	return scale > f ? scale : f;
}

} // namespace

bool ParseAlgorithm(std::string_view name, Algorithm *out) {
	for (int i = 0; i < kAlgorithmCount; i++)
		if (name == kAlgorithmNames[i]) {
			*out = static_cast<Algorithm>(i);
			return true;
		}
	return false;
}

const char *AlgorithmName(Algorithm a) {
	int i = static_cast<int>(a);
	return (i >= 0 && i < kAlgorithmCount) ? kAlgorithmNames[i] : "ensemble";
}

const char *AnomalyTypeName(AnomalyType t) {
	switch (t) {
	case AnomalyType::kSpike: return "spike";
	case AnomalyType::kDrop: return "drop";
	case AnomalyType::kLevelShift: return "level_shift";
	case AnomalyType::kTrendChange: return "trend_change";
	case AnomalyType::kOutlier: break;
	}
	return "outlier";
}

const char *SeverityName(Severity s) {
	switch (s) {
	case Severity::kLow: return "low";
	case Severity::kMedium: return "medium";
	case Severity::kHigh: return "high";
	case Severity::kCritical: break;
	}
	return "critical";
}

const char *ValidateSettings(double sensitivity, std::int64_t min_data_points, std::int64_t lookback_minutes) {
	if (!(sensitivity > 0) || !std::isfinite(sensitivity) || sensitivity > 100)
		return "sensitivity must be greater than 0 and at most 100 (robust standard deviations)";
	if (min_data_points < 2 || min_data_points > 1000000)
		return "min_data_points must be between 2 and 1000000";
	if (lookback_minutes < 1 || lookback_minutes > 527040)
		return "lookback_window_minutes must be between 1 and 527040 (366 days)";
	if (lookback_minutes < min_data_points)
		return "lookback_window_minutes is shorter than min_data_points: at one point a minute the detector could never warm up";
	return nullptr;
}

Point MakePoint(double t, double value, long utc_offset_seconds) {
	Point p;
	p.t = t;
	p.value = value;
	double local = std::floor(t) + static_cast<double>(utc_offset_seconds);
	double day = std::floor(local / 86400.0);
	double sec = local - day * 86400.0;
	p.local_day = static_cast<std::int64_t>(day);
	p.local_minute = std::clamp(static_cast<int>(sec / 60.0), 0, 1439);
	// 1970-01-01 was a Thursday (4)
	long long dow = (static_cast<long long>(day) % 7 + 7 + 4) % 7;
	p.local_dow = static_cast<int>(dow);
	return p;
}

Detector::Detector(const Settings &settings) : settings_(settings) {
	if (!(settings_.sensitivity > 0) || !std::isfinite(settings_.sensitivity))
		settings_.sensitivity = 4.5;
	if (settings_.min_data_points < 2)
		settings_.min_data_points = 2;
	if ((settings_.algorithms & (kAllComponents | AlgorithmBit(Algorithm::kEnsemble))) == 0)
		settings_.algorithms = AlgorithmBit(Algorithm::kEnsemble);
	std::memset(ring_, 0, sizeof ring_);
	std::memset(sorted_, 0, sizeof sorted_);
	std::memset(step_ring_, 0, sizeof step_ring_);
	std::memset(step_sorted_, 0, sizeof step_sorted_);
	std::memset(short_ring_, 0, sizeof short_ring_);
	std::memset(day_, 0, sizeof day_);
	std::memset(week_, 0, sizeof week_);
	std::memset(tail_, 0, sizeof tail_);
	for (double &q : tail_q_)
		q = 0;
}

double Detector::RobustScale() const {
	double m = SortedMedian(sorted_, count_);
	double mad = kMadToSigma * SortedMad(sorted_, count_, m);
	double mean_abs = kMeanAbsToSigma * absdev_ew_;
	return Floor(std::max(mad, mean_abs), m);
}

void Detector::TailAdd(int c, double z) {
	tail_[c][TailBin(z)] += tail_weight_;
	tail_total_[c] += tail_weight_;
	tail_count_[c]++;
}

double Detector::TailQuantile(int c) const {
	double want = kTailQuantile * tail_total_[c], cum = 0;
	for (int i = 0; i < kTailBins; i++) {
		double h = tail_[c][i];
		if (h > 0 && cum + h >= want)
			return TailEdge(i + (want - cum) / h);
		cum += h;
	}
	return TailEdge(kTailBins);
}

Score Detector::Update(const Point &in) {
	Point p = in;
	if (n_ > 0 && !(p.t >= last_t_))
		p.t = last_t_;
	const double x = p.value;
	const std::uint32_t mask = settings_.algorithms & AlgorithmBit(Algorithm::kEnsemble)
		? kAllComponents : settings_.algorithms;
	const bool ensemble = settings_.algorithms & AlgorithmBit(Algorithm::kEnsemble);
	Score out;

	const double m = SortedMedian(sorted_, count_);
	const double s = RobustScale();
	const double dt = n_ > 0 ? p.t - last_t_ : 0;
	const double step = x - last_value_;
	const bool have_prev = n_ > 0;

	// ---- score (from the state before this point) ---------------------------------------
	Component comp[8];
	bool on[8] = {};
	if (n_ >= settings_.min_data_points && count_ >= 2) {
		auto set = [&](Algorithm a, double z, double baseline) {
			int i = static_cast<int>(a);
			if (!(mask & AlgorithmBit(a)) || !std::isfinite(z))
				return;
			comp[i] = {z, baseline};
			on[i] = true;
		};
		set(Algorithm::kMad, (x - m) / s, m);

		double mean = sum_ / count_;
		double var = sumsq_ / count_ - mean * mean;
		// Floored by the robust scale: a window that happens to be flat (one phase of a square
		// wave) must not make the next phase an astronomically large z.
		double sd = std::max(Floor(std::sqrt(var > 0 ? var : 0), mean), s);
		set(Algorithm::kZScore, (x - mean) / sd, mean);

		{
			double sum = x;
			int k = 1;
			for (int i = 0; i < kShortRun - 1 && i < count_; i++, k++)
				sum += short_ring_[(short_pos_ + kShortRun - 1 - i) % kShortRun];
			set(Algorithm::kMovingAverage, (sum / k - m) / (s / std::sqrt(static_cast<double>(k))), m);
		}
		if (step_count_ >= 2) {
			double step_scale = Floor(kMadToSigma * SortedMedian(step_sorted_, step_count_), m);
			step_scale = std::max(step_scale, 0.5 * s); // a flat stretch does not make every step huge
			set(Algorithm::kRateOfChange, step / step_scale, last_value_);
		}
		{
			double e = kEwmaLambda * x + (1 - kEwmaLambda) * ewma_;
			set(Algorithm::kEwma, (e - m) / (s * std::sqrt(kEwmaLambda / (2 - kEwmaLambda))), m);
		}
		{
			double r = std::clamp((x - m) / s, -6.0, 6.0);
			double hi = std::min(kCusumCap, std::max(0.0, cusum_hi_ + r - kCusumSlack));
			double lo = std::min(kCusumCap, std::max(0.0, cusum_lo_ - r - kCusumSlack));
			// P(S > h) ~ exp(-2 k h) = exp(-h) for k = 1/2; the Gaussian z with that tail is sqrt(2h).
			double z = hi >= lo ? std::sqrt(2 * hi) : -std::sqrt(2 * lo);
			set(Algorithm::kCusum, z, m);
		}
		{
			const Bucket &w = week_[p.local_dow * 24 + p.local_minute / 60];
			const Bucket &d = day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440];
			const Bucket *b = w.days >= kSeasonDays ? &w : d.days >= kSeasonDays ? &d : nullptr;
			if (b) {
				// The bucket's own spread has few samples (one a day per 5-minute bucket), so the
				// pooled residual scale of all buckets is a floor that keeps this z well calibrated.
				double sc = Floor(std::max({kMeanAbsToSigma * b->absdev, kMeanAbsToSigma * season_scale_, 0.1 * s}), b->mean);
				set(Algorithm::kSeasonal, (x - b->mean) / sc, b->mean);
			}
		}
		if (holt_n_ >= 3) {
			double f = level_ + trend_ * dt;
			double sc = Floor(std::max(kMeanAbsToSigma * err_scale_, 0.1 * s), f);
			set(Algorithm::kPredictive, (x - f) / sc, f);
		}

		// Ensemble: every component's |z| divided by its calibration factor on this metric; the
		// largest decides. A single component reports its plain z.
		double cal[8] = {};
		int best = -1;
		for (int i = 0; i < 8; i++) {
			if (!on[i])
				continue;
			double f = 1;
			if (ensemble && tail_count_[i] >= kTailMinPoints)
				f = std::max(1.0, tail_q_[i] / kTailReference[i]);
			cal[i] = std::fabs(comp[i].z) / f;
			if (best < 0 || cal[i] > cal[best])
				best = i;
		}
		// Where the daily profile explains most of the variation (its residual scale is well
		// under the plain spread around the window median), the window components only see the
		// profile's routine swings: the seasonal deviation then bounds theirs.
		const int si = static_cast<int>(Algorithm::kSeasonal);
		if (ensemble && on[si] && kMeanAbsToSigma * season_scale_ < kSeasonExplains * kMeanAbsToSigma * absdev_ew_)
			for (int i = 0; i < 8; i++)
				if (on[i] && i != si)
					cal[i] = std::min(cal[i], cal[si]);
		if (best >= 0) {
			for (int i = 0; i < 8; i++)
				if (on[i] && cal[i] > cal[best])
					best = i;
			// A point deviation explained almost as well by the point components is a spike or a
			// drop, not a trend change or a level shift: prefer the simpler explanation.
			for (Algorithm a : {Algorithm::kMad, Algorithm::kZScore}) {
				int i = static_cast<int>(a);
				if (best != i && on[i] && cal[i] >= 0.8 * cal[best] && best != static_cast<int>(Algorithm::kMad)
					&& best != static_cast<int>(Algorithm::kZScore))
					best = i;
			}
			double d = cal[best];
			double r = d / settings_.sensitivity;
			double rp = std::pow(r, kScorePower);
			out.warming_up = false;
			out.score = std::isfinite(rp) ? rp / (1 + rp) : 1.0;
			out.deviation = comp[best].z < 0 ? -d : d;
			out.baseline = comp[best].baseline;
			Algorithm a = static_cast<Algorithm>(best);
			out.algorithm = a;
			switch (a) {
			case Algorithm::kMovingAverage:
			case Algorithm::kEwma:
			case Algorithm::kCusum: out.type = AnomalyType::kLevelShift; break;
			case Algorithm::kPredictive: out.type = AnomalyType::kTrendChange; break;
			case Algorithm::kSeasonal: out.type = AnomalyType::kOutlier; break;
			default: out.type = comp[best].z >= 0 ? AnomalyType::kSpike : AnomalyType::kDrop; break;
			}
			out.severity = r >= 3 ? Severity::kCritical : r >= 2 ? Severity::kHigh
				: r >= 1.5 ? Severity::kMedium : Severity::kLow;
			out.anomaly = r >= 1.0;
			// One report per episode: within kEpisodePoints of a reported anomaly, only a clearly
			// larger deviation is news. The score is halved so a threshold at 0.5 agrees.
			if (out.anomaly && episode_left_ > 0 && d < kEscalation * episode_peak_) {
				out.anomaly = false;
				out.score *= 0.5;
			} else if (out.anomaly) {
				episode_peak_ = d;
				episode_left_ = kEpisodePoints + 1;
				if (a == Algorithm::kCusum)
					cusum_hi_ = cusum_lo_ = 0; // reported: start accumulating afresh
			}
		}
		if (ensemble) {
			for (int i = 0; i < 8; i++)
				if (on[i])
					TailAdd(i, comp[i].z);
			tail_weight_ *= 1.0f / (1.0f - 1.0f / kTailMemory);
			if (tail_weight_ > 1e30f) {
				for (auto &h : tail_)
					for (float &c : h)
						c *= 1e-30f;
				for (float &t : tail_total_)
					t *= 1e-30f;
				tail_weight_ *= 1e-30f;
			}
			if (++tail_refresh_ >= kTailRefreshPoints) {
				tail_refresh_ = 0;
				for (int i = 0; i < 8; i++)
					if (tail_count_[i] > 0)
						tail_q_[i] = TailQuantile(i);
			}
		}
	}
	if (episode_left_ > 0)
		episode_left_--;

	// ---- learn ----------------------------------------------------------------------------
	// CUSUM from the pre-point baseline (as scored)
	if (count_ >= 2) {
		double r = std::clamp((x - m) / s, -6.0, 6.0);
		if (!(out.anomaly && out.algorithm == Algorithm::kCusum)) {
			cusum_hi_ = std::min(kCusumCap, std::max(0.0, cusum_hi_ + r - kCusumSlack));
			cusum_lo_ = std::min(kCusumCap, std::max(0.0, cusum_lo_ - r - kCusumSlack));
		}
		// Not clipped: in a series that is mostly one value (MAD 0) this is the only scale, and
		// clipping it at a multiple of itself would keep it near zero for ever.
		absdev_ew_ += kAbsDevAlpha * (std::fabs(x - m) - absdev_ew_);
	} else if (count_ == 1) {
		absdev_ew_ = std::fabs(x - m);
	}
	if (have_prev) {
		double a = std::fabs(step);
		if (step_count_ == kWindow) {
			SortedErase(step_sorted_, step_count_, step_ring_[step_pos_]);
			step_count_--;
		}
		SortedInsert(step_sorted_, step_count_, a);
		step_count_++;
		step_ring_[step_pos_] = a;
		step_pos_ = (step_pos_ + 1) % kWindow;
	}
	// value window, running sums
	if (count_ == kWindow) {
		double old = ring_[ring_pos_];
		SortedErase(sorted_, count_, old);
		count_--;
		sum_ -= old;
		sumsq_ -= old * old;
	}
	SortedInsert(sorted_, count_, x);
	count_++;
	ring_[ring_pos_] = x;
	ring_pos_ = (ring_pos_ + 1) % kWindow;
	sum_ += x;
	sumsq_ += x * x;
	if (++resum_ >= kWindow) { // cancel the running sums' rounding drift
		resum_ = 0;
		sum_ = sumsq_ = 0;
		for (int i = 0; i < count_; i++) {
			sum_ += sorted_[i];
			sumsq_ += sorted_[i] * sorted_[i];
		}
	}
	short_ring_[short_pos_] = x;
	short_pos_ = (short_pos_ + 1) % kShortRun;
	ewma_ = n_ == 0 ? x : kEwmaLambda * x + (1 - kEwmaLambda) * ewma_;

	// Holt's linear trend, per second of time (irregular spacing)
	if (holt_n_ == 0) {
		level_ = x;
		trend_ = 0;
	} else {
		double f = level_ + trend_ * dt;
		double e = x - f;
		double sc = kMeanAbsToSigma * err_scale_;
		double clipped = (holt_n_ > 3 && sc > 0) ? std::clamp(e, -5 * sc, 5 * sc) : e;
		err_scale_ = holt_n_ == 1 ? std::fabs(e) : err_scale_ + kErrAlpha * (std::fabs(clipped) - err_scale_);
		double new_level = kHoltAlpha * x + (1 - kHoltAlpha) * f;
		if (dt > 0)
			trend_ = kHoltBeta * (new_level - level_) / dt + (1 - kHoltBeta) * trend_;
		level_ = new_level;
	}
	holt_n_++;

	// seasonal buckets
	auto learn_bucket = [&](Bucket &b) {
		if (b.count == 0) {
			b.mean = x;
			b.absdev = 0;
		} else {
			double dev = std::fabs(x - b.mean);
			double sc = kMeanAbsToSigma * b.absdev;
			if (b.days >= kSeasonDays && sc > 0)
				dev = std::min(dev, 6 * sc);
			b.absdev += kBucketAlpha * (dev - b.absdev);
			b.mean += kBucketAlpha * (x - b.mean);
		}
		if (b.count == 0 || b.last_day != p.local_day) {
			b.days++;
			b.last_day = p.local_day;
		}
		b.count++;
	};
	{
		const Bucket &b = day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440];
		if (b.days >= kSeasonDays) {
			double dev = std::fabs(x - b.mean), sc = kMeanAbsToSigma * season_scale_;
			if (sc > 0)
				dev = std::min(dev, 6 * sc); // an outlier does not inflate the scale much
			season_scale_ = season_scale_ == 0 ? dev : season_scale_ + kSeasonScaleAlpha * (dev - season_scale_);
		}
	}
	learn_bucket(day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440]);
	learn_bucket(week_[std::clamp(p.local_dow, 0, 6) * 24 + std::clamp(p.local_minute, 0, 1439) / 60]);

	last_t_ = p.t;
	last_value_ = x;
	n_++;
	return out;
}

} // namespace thrillmon::detect
