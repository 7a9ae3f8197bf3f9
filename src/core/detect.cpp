#include "core/detect.hpp"

#include "core/vocabulary.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

namespace thrillmon::detect {
namespace {

// The enums index the SQL API's vocabularies (their words are the names the API uses).
static_assert(std::size(vocabulary::kDetectionAlgorithms) == kAlgorithmCount);
static_assert(vocabulary::kDetectionAlgorithms[static_cast<int>(Algorithm::kEnsemble)] == "ensemble");
static_assert(std::size(vocabulary::kAnomalyTypes) == static_cast<std::size_t>(AnomalyType::kFlatline) + 1);
static_assert(std::size(vocabulary::kSeverities) == static_cast<std::size_t>(Severity::kCritical) + 1);

// 1 / Phi^-1(3/4): MAD to standard deviation for Gaussian data.
constexpr double kMadToSigma = 1.482602218505602;
// sqrt(pi / 2): mean absolute deviation to standard deviation for Gaussian data.
constexpr double kMeanAbsToSigma = 1.2533141373155003;

constexpr double kEwmaLambda = 0.2;
constexpr double kCusumSlack = 0.5;       // k, in standard deviations
constexpr double kCusumCap = 50.0;        // bounds the statistic (and so its decay after a shift)
constexpr double kCusumBiasAlpha = 0.002; // slow mean of the clipped residual (skew correction)
// The CUSUM's threshold assumes steps of unit variance. A heavy-tailed metric's clipped residual
// varies more than that in robust deviations (root mean square 1.1 to 1.16 on Student-t(3) and
// log-normal latency: variance 1.2 to 1.35), and the sum's tail grows exponentially with the
// variance: over half of log-normal latency's false level shifts were the CUSUM's. So the steps
// are divided by their own root mean square (a slow mean over about 1000 points, starting at 1),
// never multiplied: a metric whose robust scale overstates its noise keeps the plain sum. It
// learns from every point, a shift's first points too (clipping its squares at 9 or 16 gave back
// most of the gain on heavy tails); a second 3-sd shift 2, 6 or 12 hours after a first was found
// as often and as soon as without it (20 seeds).
constexpr double kCusumVarAlpha = 0.001;
constexpr double kHoltAlpha = 0.5;
constexpr double kHoltBeta = 0.1;
constexpr double kAbsDevAlpha = 0.02; // EW mean |x - median|
// The scale of a sparse series' moves. A metric that sits on one value most of the time (a
// mostly-zero counter, a 98/2 flag, a Poisson count with a small mean) has a MAD of 0 and a mean
// |x - median| diluted by all the points on the median, so its every routine move was
// hundreds of robust deviations. Its moves have a size of their own: the mean |x - median| over
// the points off the median, as a floor for the robust scale (kDepartFloor of it). On a continuous
// metric every point is off the median and that mean is below the scale it floors (0.8 sd on
// Gaussian noise): only ties change anything. A running mean over the first kDepartClipAfter
// moves, then an EW mean over kDepartMoves moves (not points: a sparse metric's moves are rare),
// each move clipped at kDepartClip times the mean, so one storm does not hide the next.
constexpr double kDepartFloor = 1.0;
constexpr double kDepartMoves = 64;
constexpr std::uint32_t kDepartClipAfter = 16;
constexpr double kDepartClip = 3.0;
constexpr double kErrAlpha = 0.05;       // EW mean |forecast error|
constexpr double kDtAlpha = 0.02;        // EW mean spacing of the points
constexpr double kBucketAlpha = 0.2;     // seasonal bucket mean and spread
constexpr double kWeekAlpha = 0.05;      // hour-of-week offset (many points per visit)
constexpr double kBucketClip = 4.0;      // winsorising of a trusted bucket's update, in its scales
constexpr std::uint32_t kSeasonDays = 3; // distinct days (weeks) before a bucket is trusted
constexpr double kHorizonSteps = 3.0;    // predictive: trend extrapolated over at most this many gaps
constexpr double kHorizonGrowth = 2.0;   // predictive: error scale growth cap after a long gap
// predictive: error scale floor, in window scales (a near-perfect fit must not make every wiggle news)
constexpr double kPredictiveFloor = 0.1;
constexpr double kStepOverLevel = 2.0;         // ensemble: a step counts up to this times the level deviation
constexpr std::uint32_t kAftermathPoints = 16; // ensemble: points after a report the forecast is held to the level
constexpr double kEarlyPoints = 8.0;           // ensemble: d *= n / (n + kEarlyPoints)
constexpr double kScoreLogSlope = 1.6770;      // see ScoreOfRatio()
constexpr double kSeasonScaleAlpha = 0.01;     // pooled seasonal residual scale
// Clip of one residual in the pooled scales, in those scales: low, so that an anomalous day
// grows them only slowly.
constexpr double kScaleClip = 2.0;
// The seasonal component arbitrates (bounds the window components) where its pooled residual
// scale is below kSeasonExplains times the window baseline's on the same points, and is left out
// of the ensemble where it is no better than kSeasonUseful times that.
constexpr double kSeasonExplains = 0.5;
constexpr double kSeasonUseful = 1.0;

// Per-component calibration. Each component's |z| is kept in a decayed histogram; its
// kTailQuantile on this metric, against the same quantile on white Gaussian noise (kTailReference,
// measured by simulating the ensemble on white noise), says how much heavier this metric's tail
// is for that component. A component that is routinely far out here (a window baseline on a
// daily square wave, a step detector on a spiky series) is scaled down so it no longer decides
// alone; a well-calibrated one (factor 1) is left alone, so Gaussian deviations keep their meaning.
constexpr double kTailQuantile = 0.999;
constexpr double kTailReference[Detector::kComponents] = {3.596, 3.663, 3.357, 3.782, 3.450,
                                                          3.987, 3.573, 3.817, 3.566};
constexpr float kTailMemory = 4000.0f;                                 // points
constexpr std::uint32_t kTailMinPoints = Detector::kCalibrationPoints; // history before a component's factor is trusted
constexpr int kTailRefreshPoints = 16;
// The quantile estimate from a few thousand points is itself noisy: a tail within this factor of
// the Gaussian one is taken as Gaussian, so well-behaved metrics keep their plain deviations.
constexpr double kTailTolerance = 1.2;
// The quantile at kTailQuantile says how heavy the tail is there (1e-3), not beyond it, where a
// once-a-week false alarm lives (1e-4 at one point a minute): a power-law tail (Student-t noise,
// log-normal latency, a count's right tail) is heavier still a decade further out. So each
// component's tail is also extrapolated one decade, at the slope it has between kTailInner (1e-2)
// and kTailQuantile: the 1e-4 quantile of a power law is the 1e-3 one times their ratio. It is
// set against the Gaussian's own 1e-4 quantile (kGaussianDecade times the reference), and the
// larger of the two factors is used. On Gaussian noise the extrapolation stays within the
// tolerance (through the histogram the ratio is 1.23 to 1.47 there, kInnerRatio, so the factor
// comes out 0.87 to 1.04 of the Gaussian's), so plain deviations keep their meaning.
// The ratio is capped at kTailRatioCap: the few points beyond the 1e-3 quantile of a few thousand
// make it noisy.
constexpr double kTailInner = 0.99;
constexpr double kTailRatioCap = 3.0;
constexpr double kGaussianDecade = 3.8906 / 3.2905; // two-sided Gaussian quantiles at 1e-4 and 1e-3
// A component that averages over many points (the moving average, the EWMA, the burst sum over
// kBurstPoints) moves slowly: its 1e-3 quantile over a few thousand points rests on a few hundred
// independent values, and on a bursty metric it came out like white noise's for its first days (a
// mostly-zero counter's chance pairs of bursts were reported one or two a week). Its far tail is
// also estimated from the quantiles the histogram knows well, kTailCore (0.9) and kTailInner
// (0.99): the 0.99 one, times the ratio of 0.999 to 0.99 on white noise, times how much faster
// than on white noise the tail grows from 0.9 to 0.99 (capped at kTailRatioCap). On white noise it
// is the 0.999 quantile. The references are white noise's, measured through the same histogram
// (kTailReference's simulation). Point components keep their 0.999 quantile: for them (and the
// CUSUM) the same estimate cost NAB 6 points, the bulk of a real metric's deviations saying little
// about its far tail. On a component that is 0 most of the time (the burst sum of a mostly-zero
// counter: over 90 % of its points) the 0.9 quantile is an interpolation inside the first bin, the
// growth is at its cap, and the estimate is the cap's, 4.4 times the 0.99 quantile: such a
// component then speaks only for bursts far beyond its usual 1 in 100 (factor 7 to 10 on the rare
// bursts shape). That is what quieted the rare bursts; a burst far beyond the usual ones is still
// found (a lock storm's lock_waits: the moving average at 44 to 64 deviations, critical).
constexpr double kTailCore = 0.9;
constexpr bool
Averaging(int c)
{
	return c == static_cast<int>(Algorithm::kMovingAverage) || c == static_cast<int>(Algorithm::kEwma) ||
	       c == Detector::kBurst;
}
constexpr double kCoreRatio[Detector::kComponents] = {1.558, 1.570, 1.531, 1.594, 1.530,
                                                      1.429, 1.583, 1.602, 1.847}; // 0.99 / 0.9
constexpr double kInnerRatio[Detector::kComponents] = {1.416, 1.409, 1.372, 1.389, 1.390,
                                                       1.234, 1.425, 1.384, 1.474}; // 0.999 / 0.99
constexpr double kMultiplicity = 2.0; // effective number of independent components (max of them)
constexpr double kSimpler = 0.5;      // a point component this close to the largest decides the type

// Burst component (ensemble only): how often the metric deviates, not how far.
constexpr double kSurpriseCap = 6.0;  // cap on one point's surprise (robust deviations)
constexpr double kBurstAlpha = 0.002; // long-run level and spread of the burst sum

// Episodes (refractory): a report raises an envelope that decays over kEpisodePoints; while a
// deviation stays under kEscalation times it, it is the same episode and not reported again.
constexpr double kEpisodePoints = 1440;
constexpr double kEnvelopeDecay = 1.0 - 1.0 / kEpisodePoints;
constexpr double kEnvelopeCap = 3.0; // in units of the sensitivity
constexpr double kEscalation = 1.5;
// ... and in the short run one report per event, with hysteresis: a point that comes within 5 %
// of the sensitivity (reported or not) opens a short episode of kNearPoints points, in which
// what follows scores under that bar unless it is kNearEscalation times as far out. An event
// seldom crosses the bar cleanly once: it hovers around it for a few points (a spike's shoulders,
// a level shift's first points, a noisy ramp), and each of those was a report of its own. The
// first report of an episode that a near miss opened is still made (and opens its own episode):
// a near miss never hides the real crossing that follows it.
constexpr double kNearRatio = 0.95;
constexpr std::uint32_t kNearPoints = 30;
constexpr double kNearEscalation = 3.0;

// A new extreme (the ensemble only): a point beyond the highest or lowest value this detector has
// learned, by more than kExtremeMargin of that range and kExtremeScales robust standard
// deviations of the window, is reported at kExtremeRatio of the sensitivity (low: it raises no
// alert at the default threshold), whatever its deviation from the recent window, once the
// detector has learned kExtremeMinPoints points. The range says what the metric has done, which
// a window of 128 points forgets: a heavy-tailed metric keeps a wide one. The margins keep a
// drift (small new extremes all the time) and the records of plain noise (rarer the longer it
// runs) quiet. At least kExtremeMinRatio of the sensitivity as a deviation too, and one such
// report per kNearPoints points.
constexpr double kExtremeMargin = 0.05;
constexpr double kExtremeScales = 0.75;
constexpr std::uint64_t kExtremeMinPoints = 400;
constexpr double kExtremeRatio = 1.1;
constexpr double kExtremeMinRatio = 0.2;

// A deviation smaller than this fraction of the metric's level is reported low at most (see
// Update()).
constexpr double kMinEffect = 0.02;

// Histogram bin of |z| on a log-like scale: the exponent of 1 + |z| and the top two bits of its
// mantissa (4 bins per octave), without calling log2.
int
TailBin(double z)
{
	double v = 1.0 + std::min(std::fabs(z), 1e9);
	std::uint64_t bits;
	std::memcpy(&bits, &v, sizeof bits);
	int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
	int m = static_cast<int>((bits >> 50) & 3);
	int bin = e * 4 + m;
	return bin < thrillmon::detect::Detector::kTailBins ? bin : thrillmon::detect::Detector::kTailBins;
}
// Lower edge of a bin in |z|.
double
TailEdge(double bin)
{
	int e = static_cast<int>(bin) / 4;
	double m = bin - 4.0 * e;
	return std::ldexp(1.0 + m / 4.0, e) - 1.0;
}

// lower_bound / upper_bound on a[0..n) without data-dependent branches (the compiler emits
// conditional moves): on noisy data a branchy binary search mispredicts half its steps.
int
LowerBound(const double *a, int n, double x)
{
	if (n <= 0)
		return 0;
	const double *b = a;
	while (n > 1) {
		int half = n / 2;
		b = b[half] < x ? b + half : b;
		n -= half;
	}
	return static_cast<int>(b - a) + (*b < x);
}
int
UpperBound(const double *a, int n, double x)
{
	if (n <= 0)
		return 0;
	const double *b = a;
	while (n > 1) {
		int half = n / 2;
		b = !(x < b[half]) ? b + half : b;
		n -= half;
	}
	return static_cast<int>(b - a) + !(x < *b);
}

// Inserts x into the sorted array a[0..n) (room for one more).
void
SortedInsert(double *a, int n, double x)
{
	int i = UpperBound(a, n, x);
	std::memmove(a + i + 1, a + i, static_cast<std::size_t>(n - i) * sizeof(double));
	a[i] = x;
}

// Replaces one copy of old by x in the sorted array a[0..n), moving only the elements between
// their two positions (a full window slides by one point with a single short move).
void
SortedReplace(double *a, int n, double old, double x)
{
	int i = LowerBound(a, n, old);
	if (i >= n)
		i = n - 1; // cannot happen for values that were inserted; stay in bounds regardless
	int j = UpperBound(a, n, x);
	if (j > i) {
		std::memmove(a + i, a + i + 1, static_cast<std::size_t>(j - 1 - i) * sizeof(double));
		a[j - 1] = x;
	} else {
		std::memmove(a + j + 1, a + j, static_cast<std::size_t>(i - j) * sizeof(double));
		a[j] = x;
	}
}

double
SortedMedian(const double *a, int n)
{
	if (n <= 0)
		return 0;
	return (n % 2) ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

// The mean of the k-th and (k+1)-th smallest (0-based) |a[i] - m| over sorted a[0..n) (or the
// k-th alone when pair is false), in O(log n): the distances left of m, read outwards, and right
// of m, read outwards, are two sorted runs.
double
KthDistance(const double *a, int n, double m, int k, bool pair)
{
	int p = LowerBound(a, n, m);
	int na = p, nb = n - p;
	auto A = [&](int j) {
		return j < na ? m - a[p - 1 - j] : HUGE_VAL;
	};
	auto B = [&](int j) {
		return j < nb ? a[p + j] - m : HUGE_VAL;
	};
	int lo = std::max(0, k - nb), hi = std::min(k, na);
	while (lo <= hi) {
		int i = (lo + hi) / 2, j = k - i;
		double a_prev = i > 0 ? A(i - 1) : -HUGE_VAL, b_prev = j > 0 ? B(j - 1) : -HUGE_VAL;
		double a_cur = A(i), b_cur = B(j);
		if (a_prev > b_cur) {
			hi = i - 1;
		} else if (b_prev > a_cur) {
			lo = i + 1;
		} else {
			if (!pair)
				return std::min(a_cur, b_cur);
			// the next one is the smaller of the run not taken and the successor in the other
			double next = a_cur <= b_cur ? std::min(A(i + 1), b_cur) : std::min(a_cur, B(j + 1));
			return 0.5 * (std::min(a_cur, b_cur) + next);
		}
	}
	return 0; // unreachable for 0 <= k < n
}

double
SortedMad(const double *a, int n, double m)
{
	if (n <= 0)
		return 0;
	if (n % 2)
		return KthDistance(a, n, m, n / 2, false);
	return KthDistance(a, n, m, n / 2 - 1, true);
}

// The weight of the k-th sample (1-based) in a mean that is a plain running mean at first and an
// EW mean with weight alpha once 1 / k falls below it: the start-up value does not linger.
double
StartupWeight(double alpha, double k)
{
	return std::max(alpha, 1.0 / k);
}

double
Floor(double scale, double level)
{
	double f = 1e-6 * (std::fabs(level) + 1e-3);
	return scale > f ? scale : f;
}

} // namespace

// Score of r = deviation / sensitivity: 0.5 r^4 up to 1 (0.5 at the sensitivity), then
// 1 - 0.5 / (1 + c ln r)^2, which reaches 0.8 at r = sqrt(2) as r^4 / (1 + r^4) did, and stays
// below 1 in double precision for every finite deviation (1 - 4e-7 at 1e300), so scores keep
// ranking points however far out they are.
double
ScoreOfRatio(double r)
{
	if (!(r > 0))
		return 0;
	if (r <= 1) {
		double r2 = r * r;
		return 0.5 * r2 * r2;
	}
	double q = 1 + kScoreLogSlope * std::log(r);
	return 1 - 0.5 / (q * q);
}

bool
ParseAlgorithm(std::string_view name, Algorithm *out)
{
	if (auto i = vocabulary::IndexOf(vocabulary::kDetectionAlgorithm, name)) {
		*out = static_cast<Algorithm>(*i);
		return true;
	}
	return false;
}

// The vocabularies' words are string literals, so their data is NUL-terminated.
const char *
AlgorithmName(Algorithm a)
{
	const auto i = static_cast<std::size_t>(a);
	return (i < std::size(vocabulary::kDetectionAlgorithms) ? vocabulary::kDetectionAlgorithms[i] : "ensemble").data();
}

const char *
AnomalyTypeName(AnomalyType t)
{
	const auto i = static_cast<std::size_t>(t);
	return (i < std::size(vocabulary::kAnomalyTypes) ? vocabulary::kAnomalyTypes[i] : "outlier").data();
}

const char *
SeverityName(Severity s)
{
	const auto i = static_cast<std::size_t>(s);
	return (i < std::size(vocabulary::kSeverities) ? vocabulary::kSeverities[i] : "critical").data();
}

Point
MakePoint(double t, double value, long utc_offset_seconds)
{
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

Detector::Detector(const Settings &settings) : settings_(settings)
{
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
	std::memset(burst_ring_, 0, sizeof burst_ring_);
	std::memset(day_, 0, sizeof day_);
	std::memset(week_, 0, sizeof week_);
	std::memset(tail_, 0, sizeof tail_);
	for (int i = 0; i < kComponents; i++) {
		tail_q_[i] = 0;
		inv_factor_[i] = 1;
	}
}

// The factor that gives the CUSUM's steps unit variance, at most 1 (see kCusumVarAlpha).
double
Detector::CusumUnit() const
{
	return cusum_var_ > 1 ? 1 / std::sqrt(cusum_var_) : 1.0;
}

double
Detector::RobustScale(double m, bool *tied) const
{
	double mad = kMadToSigma * SortedMad(sorted_, count_, m);
	*tied = count_ >= 2 && mad == 0;
	double mean_abs = kMeanAbsToSigma * absdev_ew_;
	return Floor(std::max({mad, mean_abs, kDepartFloor * depart_ew_}), m);
}

void
Detector::TailAdd(int c, double z)
{
	tail_[c][TailBin(z)] += tail_weight_;
	tail_total_[c] += tail_weight_;
	tail_count_[c]++;
}

// The quantiles q[0] <= q[1] <= q[2] of component c's |z|, in one pass over its histogram.
void
Detector::TailQuantiles(int c, const double (&q)[3], double (&out)[3]) const
{
	int k = 0;
	double want = q[0] * tail_total_[c], cum = 0;
	for (int i = 0; i < kTailBins && k < 3; i++) {
		double h = tail_[c][i];
		while (k < 3 && h > 0 && cum + h >= want) {
			out[k++] = TailEdge(i + (want - cum) / h);
			if (k < 3)
				want = q[k] * tail_total_[c];
		}
		cum += h;
	}
	for (; k < 3; k++)
		out[k] = TailEdge(kTailBins);
}

// Each component's factor: how much heavier its tail is here than on white Gaussian noise (1
// within the tolerance). Stored inverted, for a multiply per point; a component without enough
// history of its own gets the largest factor of the others.
void
Detector::RefreshCalibration()
{
	double factor[kComponents], borrowed = 1;
	for (int i = 0; i < kComponents; i++) {
		factor[i] = 0;
		double core = 0, inner = 0;
		if (tail_count_[i] > 0) {
			double q[3];
			TailQuantiles(i, {kTailCore, kTailInner, kTailQuantile}, q);
			core = q[0];
			inner = q[1];
			tail_q_[i] = q[2];
		}
		if (tail_count_[i] >= kTailMinPoints) {
			factor[i] = std::max(1.0, tail_q_[i] / (kTailTolerance * kTailReference[i]));
			if (inner > 0 && tail_q_[i] > inner) {
				const double far = tail_q_[i] * std::min(tail_q_[i] / inner, kTailRatioCap);
				factor[i] = std::max(factor[i], far / (kTailTolerance * kGaussianDecade * kTailReference[i]));
			}
			if (Averaging(i) && core > 0 && inner > core) {
				const double est = inner * kInnerRatio[i] * std::min(inner / core / kCoreRatio[i], kTailRatioCap);
				factor[i] = std::max(factor[i], est / (kTailTolerance * kTailReference[i]));
			}
			borrowed = std::max(borrowed, factor[i]);
		}
	}
	for (int i = 0; i < kComponents; i++)
		inv_factor_[i] = 1.0 / (factor[i] > 0 ? factor[i] : borrowed);
}

void
Detector::Prefetch(const Point &p) const
{
	// Everything Update() touches for any point: the object up to the seasonal buckets (windows,
	// scalars), the calibration histograms and what follows them, and the two buckets of p's
	// local time. Not the other buckets (14 kB, one of each read per point).
	auto lines = [](const void *from, const void *to) {
		for (const char *c = static_cast<const char *>(from); c < static_cast<const char *>(to); c += 64)
			__builtin_prefetch(c);
	};
	lines(this, day_);
	lines(&tail_, this + 1);
	__builtin_prefetch(&day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440]);
	__builtin_prefetch(&week_[std::clamp(p.local_dow, 0, 6) * 24 + std::clamp(p.local_minute, 0, 1439) / 60]);
}

Score
Detector::Update(const Point &in)
{
	Point p = in;
	if (n_ > 0 && !(p.t >= last_t_))
		p.t = last_t_;
	const double x = p.value;
	const std::uint32_t mask =
	    settings_.algorithms & AlgorithmBit(Algorithm::kEnsemble) ? kAllComponents : settings_.algorithms;
	const bool ensemble = settings_.algorithms & AlgorithmBit(Algorithm::kEnsemble);
	Score out;

	const double m = SortedMedian(sorted_, count_);
	bool tied = false; // half the window or more on one value: a sparse series
	const double s = RobustScale(m, &tied);
	const double dt = n_ > 0 ? p.t - last_t_ : 0;
	const double step = x - last_value_;
	const bool have_prev = n_ > 0;

	// Seasonal expectation: the time-of-day bucket, plus the hour-of-week bucket's learned offset
	// from it once that has history from kSeasonDays distinct weeks (an offset, not a level of
	// its own: an hour-long bucket cannot follow the daily profile within the hour).
	Bucket &day = day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440];
	Bucket &week = week_[std::clamp(p.local_dow, 0, 6) * 24 + std::clamp(p.local_minute, 0, 1439) / 60];
	const bool season_ok = day.days >= kSeasonDays;
	const double season_pred = day.mean + (week.days >= kSeasonDays ? week.mean : 0.0);

	// ---- score (from the state before this point) ---------------------------------------
	Component comp[kComponents];
	bool on[kComponents] = {};
	// Surprise of this point for the burst component: its robust deviation, capped so that one
	// huge spike counts like any clear one (the component measures how often, not how far).
	const double surprise = count_ >= 2 ? std::min(std::fabs(x - m) / s, kSurpriseCap) : 0;
	const double burst_sum = burst_sum_ + surprise - burst_ring_[burst_pos_];
	if (n_ >= settings_.min_data_points && count_ >= 2) {
		auto set = [&](Algorithm a, double z, double baseline) {
			int i = static_cast<int>(a);
			// A component whose arithmetic overflowed on absurd (finite) values abstains: no
			// score, deviation or baseline that is not finite ever leaves the detector.
			if (!(mask & AlgorithmBit(a)) || !std::isfinite(z) || !std::isfinite(baseline))
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
			// Residuals are centred on their own slow mean: against the median, a skewed metric
			// (mostly idle with bursts) has a positive mean residual and would saturate the sum.
			double r = (std::clamp((x - m) / s, -6.0, 6.0) - cusum_bias_) * CusumUnit();
			double hi = std::min(kCusumCap, std::max(0.0, cusum_hi_ + r - kCusumSlack));
			double lo = std::min(kCusumCap, std::max(0.0, cusum_lo_ - r - kCusumSlack));
			// P(S > h) ~ exp(-2 k h) = exp(-h) for k = 1/2; the Gaussian z with that tail is sqrt(2h).
			double z = hi >= lo ? std::sqrt(2 * hi) : -std::sqrt(2 * lo);
			set(Algorithm::kCusum, z, m);
		}
		if (season_ok) {
			// The bucket's own spread has few samples (one a day per 5-minute bucket), so the
			// pooled residual scale of all buckets is a floor that keeps this z well calibrated.
			// (In a tied window, the window's scale: the buckets' spreads are diluted by the idle
			// points as the window's was, see kDepartFloor.)
			double sc =
			    Floor(std::max({kMeanAbsToSigma * day.absdev, kMeanAbsToSigma * season_scale_, tied ? s : 0.1 * s}),
			          season_pred);
			set(Algorithm::kSeasonal, (x - season_pred) / sc, season_pred);
		}
		if (holt_n_ >= 3) {
			// The trend is extrapolated over at most kHorizonSteps typical gaps (after a long
			// gap the level is the better guess), and the forecast is less certain further out:
			// its error scale grows like a random walk's, sqrt(steps), up to kHorizonGrowth.
			double steps = dt_ew_ > 0 ? dt / dt_ew_ : 1.0;
			double f = level_ + trend_ * (dt_ew_ > 0 ? std::min(dt, kHorizonSteps * dt_ew_) : dt);
			// A sparse series' forecast errors are as diluted by its idle points as its deviations
			// from the median are: its moves are measured against their own size here too.
			double sc = Floor(std::max(kMeanAbsToSigma * err_scale_, tied ? s : kPredictiveFloor * s), f);
			if (steps > 1)
				sc *= std::min(std::sqrt(steps), kHorizonGrowth);
			set(Algorithm::kPredictive, (x - f) / sc, f);
		}

		// Burst (ensemble only): the surprise summed over the last kBurstPoints against its own
		// long-run level and spread; one-sided, since only more surprise than usual is news (a
		// spikier stretch of a spiky metric, where each spike alone is routine).
		if (ensemble && burst_n_ >= kBurstPoints + kTailMinPoints) {
			double bsd = Floor(kMeanAbsToSigma * burst_dev_, burst_mean_);
			// In a tied window the surprises are a count of the rare moves (each about one move's
			// size, kDepartFloor): their sum's spread is at least a count's, the root of its mean.
			// The mean |deviation| of a sum that is mostly near 0 is diluted as the window's was.
			if (tied)
				bsd = std::max(bsd, std::sqrt(burst_mean_));
			comp[kBurst] = {std::max(0.0, burst_sum - burst_mean_) / bsd, m};
			on[kBurst] = true;
		}
		// Ensemble: every component's |z| times its inverse calibration factor on this metric (a
		// component without its own calibration yet, such as the seasonal one in its first days,
		// borrows the most conservative factor of the others; see RefreshCalibration). A single
		// component reports its plain z.
		double cal[kComponents] = {};
		for (int i = 0; i < kComponents; i++)
			if (on[i]) {
				cal[i] = std::fabs(comp[i].z) * (ensemble ? inv_factor_[i] : 1.0);
				if (!std::isfinite(cal[i])) // overflow on absurd values: such a component abstains
					on[i] = false, cal[i] = 0;
			}
		// A large step back to an ordinary level (the point after a spike) is a return, not
		// news: in the ensemble, the step counts only as far as the point itself deviates.
		const int ri = static_cast<int>(Algorithm::kRateOfChange);
		if (ensemble && on[ri]) {
			const int mi0 = static_cast<int>(Algorithm::kMad), zi0 = static_cast<int>(Algorithm::kZScore);
			double level = std::max(on[mi0] ? cal[mi0] : 0.0, on[zi0] ? cal[zi0] : 0.0);
			cal[ri] = std::min(cal[ri], kStepOverLevel * level);
			// The same for the forecast just after a report: the spike it reported has pulled the
			// trend, and the points that follow, back at their ordinary level, miss the forecast
			// by as much; that is the spike's aftermath, not a trend change of its own.
			const int pi = static_cast<int>(Algorithm::kPredictive);
			if (on[pi] && since_report_ < kAftermathPoints)
				cal[pi] = std::min(cal[pi], kStepOverLevel * level);
		}
		// Where the daily profile explains most of the variation (its residual scale is well
		// under the window baseline's), the window components only see the profile's routine
		// swings: the seasonal deviation then bounds theirs. Conversely, a daily profile that
		// predicts no better than the window (a metric without daily pattern) only adds the noise
		// of its few-sample bucket means: it stays out.
		const int si = static_cast<int>(Algorithm::kSeasonal);
		if (ensemble && on[si] && season_scale_ < kSeasonExplains * plain_scale_) {
			for (int i = 0; i < kComponents; i++)
				cal[i] = std::min(cal[i], cal[si]);
		} else if (ensemble && on[si] && season_scale_ >= kSeasonUseful * plain_scale_) {
			cal[si] = 0;
		}
		int best = -1;
		for (int i = 0; i < kComponents; i++)
			if (on[i] && (best < 0 || cal[i] > cal[best]))
				best = i;
		if (best >= 0) {
			// A point deviation explained almost as well by the point components is a spike or a
			// drop, not a trend change or a level shift: the simpler explanation decides, with its
			// own deviation (the other component's excess over it is not trusted as news).
			const int mi = static_cast<int>(Algorithm::kMad), zi = static_cast<int>(Algorithm::kZScore);
			if (best != mi && best != zi) {
				if (on[mi] && cal[mi] >= kSimpler * cal[best])
					best = mi;
				else if (on[zi] && cal[zi] >= kSimpler * cal[best])
					best = zi;
			}
			double d = cal[best];
			// A metric that has shown one value only has no scale: its first move is news, but how
			// far out it is cannot be said (against a zero scale, any move was "1e9 deviations"
			// and critical). Reported at kExtremeRatio, as a new extreme: low. The move gives
			// the metric its scale (kDepartFloor). Its nominal deviation opens no episode: a move
			// far beyond this one, or one that lasts, is reported as usual.
			const bool first_move = ensemble && hi_ == lo_ && x != hi_;
			if (first_move)
				d = std::min(d, kExtremeRatio * settings_.sensitivity);
			else if (ensemble) {
				// The largest of several deviations is more often far out than any one of them:
				// a multiple-comparison correction keeps white noise as quiet as one Gaussian
				// z. The tail probability of the largest, about kMultiplicity times that of one,
				// goes back to a Gaussian z: d'^2/2 + ln d' = d^2/2 + ln d - ln k (one step).
				// (Beyond 1e6 the correction is far below double precision: skipped, so d * d
				// cannot overflow.)
				if (d < 1e6) {
					double d2 = d * d - 2 * std::log(kMultiplicity);
					if (d2 > 0) {
						double first = std::sqrt(d2);
						d = std::sqrt(d2 + 2 * std::log(d / first));
					} else {
						d = 0;
					}
				}
				// The first scored points rest on rough estimates (a few dozen points): they
				// need a proportionally larger deviation.
				d *= static_cast<double>(n_) / (n_ + kEarlyPoints);
			}
			if (!std::isfinite(d))
				d = 1e300;
			// Clear, but small: a point within kMinEffect of the metric's level, from the window's
			// median and from what the deciding component expected, is reported low at most. A
			// metric whose noise is a tiny fraction of its level (a size, a ratio near its
			// ceiling, a temperature) makes a move of a per cent many deviations: a cache hit rate
			// of 99.9 % dipping to 98.6 % for one 2 s interval was a critical alert, 18 sd.
			if (ensemble && std::max(std::fabs(x - m), std::fabs(x - comp[best].baseline)) < kMinEffect * std::fabs(m))
				d = std::min(d, kExtremeRatio * settings_.sensitivity);
			double r = d / settings_.sensitivity;
			out.warming_up = false;
			out.score = ScoreOfRatio(r);
			out.deviation = comp[best].z < 0 ? -d : d;
			out.baseline = comp[best].baseline;
			// A burst is reported as a moving-average level shift: the short-run average of the
			// deviations has shifted.
			Algorithm a = best == kBurst ? Algorithm::kMovingAverage : static_cast<Algorithm>(best);
			out.algorithm = a;
			switch (a) {
			case Algorithm::kMovingAverage:
			case Algorithm::kEwma:
			case Algorithm::kCusum:
				out.type = AnomalyType::kLevelShift;
				break;
			case Algorithm::kPredictive:
				out.type = AnomalyType::kTrendChange;
				break;
			case Algorithm::kSeasonal:
				out.type = AnomalyType::kOutlier;
				break;
			default:
				out.type = comp[best].z >= 0 ? AnomalyType::kSpike : AnomalyType::kDrop;
				break;
			}
			// The type describes the shape: a point that is itself far outside the window (robust
			// deviation past the sensitivity) is a spike or a drop, whichever forecast saw it
			// first; a trend change is a point the window finds ordinary but the trend does not.
			if (ensemble && a == Algorithm::kPredictive && on[mi] && cal[mi] >= settings_.sensitivity)
				out.type = comp[mi].z >= 0 ? AnomalyType::kSpike : AnomalyType::kDrop;
			// Bands in units of the sensitivity. High starts a little under 2x so a 10-sigma spike
			// stays high when the window's scale estimate comes out a bit large.
			out.severity = r >= 3      ? Severity::kCritical
			               : r >= 1.75 ? Severity::kHigh
			               : r >= 1.3  ? Severity::kMedium
			                           : Severity::kLow;
			out.anomaly = r >= 1.0;
			// One report per episode: a deviation is news only when it clearly exceeds the recent
			// envelope of deviations (which decays over kEpisodePoints), so a sustained anomaly
			// is reported once and a fresh one after a quiet spell is reported again. A
			// suppressed point's score is halved so a threshold at 0.5 agrees.
			if (out.anomaly && d < kEscalation * envelope_) {
				out.anomaly = false;
				out.score *= 0.5;
			} else if (out.anomaly && a == Algorithm::kCusum) {
				cusum_hi_ = cusum_lo_ = 0; // reported: start accumulating afresh
			}
			// Capped: one enormous deviation must not silence the metric for days while the
			// envelope decays.
			if (r >= 1.0 && !first_move)
				envelope_ = std::max(envelope_, std::min(d, kEnvelopeCap * settings_.sensitivity));
			if (out.anomaly)
				since_report_ = 0;
			// The short episode (kNearRatio): only what the envelope let through counts.
			if (ensemble && !first_move && r >= kNearRatio && out.score >= ScoreOfRatio(kNearRatio)) {
				if (since_near_ < kNearPoints && d < kNearEscalation * near_d_ && !(out.anomaly && !near_reported_)) {
					out.anomaly = false;
					out.score = std::min(out.score, 0.5 * ScoreOfRatio(kNearRatio));
				} else {
					since_near_ = 0;
					near_d_ = std::min(d, kEnvelopeCap * settings_.sensitivity); // capped as the envelope is
					near_reported_ = out.anomaly;
				}
			}
		}
		if (ensemble) {
			for (int i = 0; i < kComponents; i++)
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
				RefreshCalibration();
			}
		}
	}
	// ---- a new extreme ----------------------------------------------------------------------
	if (ensemble && n_ >= kExtremeMinPoints && n_ >= settings_.min_data_points && hi_ > lo_ &&
	    since_extreme_ >= kNearPoints && !out.warming_up) {
		const double margin = std::max(kExtremeMargin * (hi_ - lo_), kExtremeScales * s);
		const bool above = x > hi_ + margin, below = x < lo_ - margin;
		if ((above || below) && std::fabs(out.deviation) >= kExtremeMinRatio * settings_.sensitivity) {
			since_extreme_ = 0;
			if (!out.anomaly) {
				out.anomaly = true;
				out.score = std::max(out.score, ScoreOfRatio(kExtremeRatio));
				out.deviation =
				    (above ? 1 : -1) * std::max(std::fabs(out.deviation), kExtremeRatio * settings_.sensitivity);
				out.baseline = above ? hi_ : lo_;
				out.type = above ? AnomalyType::kSpike : AnomalyType::kDrop;
				out.severity = Severity::kLow;
				out.algorithm = Algorithm::kEnsemble;
				since_report_ = 0;
			}
		}
	}
	if (since_extreme_ < UINT32_MAX)
		since_extreme_++;
	NoteExtreme(x);

	envelope_ *= kEnvelopeDecay;
	if (since_report_ < UINT32_MAX)
		since_report_++;
	if (since_near_ < UINT32_MAX)
		since_near_++;

	// burst: the running sum of the last kBurstPoints surprises, and its long-run level/spread
	if (count_ >= 2) {
		burst_sum_ = burst_sum;
		burst_ring_[burst_pos_] = surprise;
		burst_pos_ = (burst_pos_ + 1) % kBurstPoints;
		if (burst_pos_ == 0) { // cancel the running sum's rounding drift
			burst_sum_ = 0;
			for (double u : burst_ring_)
				burst_sum_ += u;
		}
		if (++burst_n_ >= kBurstPoints) {
			double dev = std::fabs(burst_sum - burst_mean_);
			double sc = kMeanAbsToSigma * burst_dev_;
			if (burst_n_ > kBurstPoints + kTailMinPoints && sc > 0)
				dev = std::min(dev, 6 * sc);
			if (burst_n_ == kBurstPoints) {
				burst_mean_ = burst_sum;
				burst_dev_ = 0;
			} else {
				double a = StartupWeight(kBurstAlpha, burst_n_ - kBurstPoints + 1);
				burst_mean_ += a * (burst_sum - burst_mean_);
				burst_dev_ += a * (dev - burst_dev_);
			}
		}
	}

	// ---- flatline --------------------------------------------------------------------------
	// No deviation shows a metric that stopped changing: every point is its own baseline. So the
	// run of one repeated value is counted, and reported once, when it is both long
	// (kFlatMinPoints) and four times the longest this metric has shown (a counter that is often
	// 0 for hours, or a quiet night's gauge, has shown long runs and is not reported for them).
	// Nor is a run of the value a sparse series rests on (the median of a tied window, when the
	// run began): a mostly-zero counter that stays 0 has not stopped changing, it is idle.
	NoteRun(x, tied && x == m);
	if (ensemble && n_ >= settings_.min_data_points && run_start_n_ >= static_cast<std::uint64_t>(kWindow) &&
	    !run_at_rest_ &&
	    static_cast<double>(run_length_) >= std::max(static_cast<double>(kFlatMinPoints), 4 * longest_run_) &&
	    static_cast<double>(run_length_ - 1) < std::max(static_cast<double>(kFlatMinPoints), 4 * longest_run_)) {
		constexpr double kFlatRatio = 1.5; // medium, and above the default alert threshold (0.8)
		out.warming_up = false;
		out.anomaly = true;
		out.score = ScoreOfRatio(kFlatRatio);
		out.deviation = kFlatRatio * settings_.sensitivity;
		out.baseline = m;
		out.type = AnomalyType::kFlatline;
		out.severity = Severity::kMedium;
		out.algorithm = Algorithm::kEnsemble;
	}

	// ---- learn ----------------------------------------------------------------------------
	// CUSUM from the pre-point baseline (as scored)
	if (count_ >= 2) {
		double rc = std::clamp((x - m) / s, -6.0, 6.0), r = (rc - cusum_bias_) * CusumUnit();
		cusum_var_ += kCusumVarAlpha * ((rc - cusum_bias_) * (rc - cusum_bias_) - cusum_var_);
		cusum_bias_ += kCusumBiasAlpha * (rc - cusum_bias_);
		// Only once scoring starts: the first few points' baseline is too rough to accumulate.
		if (n_ >= settings_.min_data_points && !(out.anomaly && out.algorithm == Algorithm::kCusum)) {
			cusum_hi_ = std::min(kCusumCap, std::max(0.0, cusum_hi_ + r - kCusumSlack));
			cusum_lo_ = std::min(kCusumCap, std::max(0.0, cusum_lo_ - r - kCusumSlack));
		}
		// Not clipped: in a series that is mostly one value (MAD 0) this is the only scale, and
		// clipping it at a multiple of itself would keep it near zero for ever. A plain running
		// mean at first, so the start-up value (one difference of two points) does not linger:
		// it had kept a new metric's scale near twice its size for its first hundred points.
		absdev_ew_ += StartupWeight(kAbsDevAlpha, static_cast<double>(n_)) * (std::fabs(x - m) - absdev_ew_);
		NoteDeparture(std::fabs(x - m));
	} else if (count_ == 1) {
		absdev_ew_ = std::fabs(x - m);
		NoteDeparture(absdev_ew_);
	}
	if (have_prev) {
		double a = std::fabs(step);
		if (step_count_ == kWindow) {
			SortedReplace(step_sorted_, step_count_, step_ring_[step_pos_], a);
		} else {
			SortedInsert(step_sorted_, step_count_, a);
			step_count_++;
		}
		step_ring_[step_pos_] = a;
		step_pos_ = (step_pos_ + 1) % kWindow;
	}
	// value window, running sums
	if (count_ == kWindow) {
		double old = ring_[ring_pos_];
		SortedReplace(sorted_, count_, old, x);
		sum_ -= old;
		sumsq_ -= old * old;
	} else {
		SortedInsert(sorted_, count_, x);
		count_++;
	}
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
		// (Extrapolated as the score's forecast is: over a long gap, a collector down for days,
		// the trend times the gap had put the level far from anything the metric did.)
		double f = level_ + trend_ * (dt_ew_ > 0 ? std::min(dt, kHorizonSteps * dt_ew_) : dt);
		double e = x - f;
		double sc = kMeanAbsToSigma * err_scale_;
		double clipped = (holt_n_ > 3 && sc > 0) ? std::clamp(e, -5 * sc, 5 * sc) : e;
		err_scale_ = holt_n_ == 1 ? std::fabs(e) : err_scale_ + kErrAlpha * (std::fabs(clipped) - err_scale_);
		double new_level = kHoltAlpha * x + (1 - kHoltAlpha) * f;
		if (dt > 0) {
			// With irregular spacing, a level change over a gap much shorter than usual is mostly
			// noise divided by a small dt: such a step moves the trend proportionally less.
			double w = dt_ew_ > 0 ? std::min(1.0, dt / dt_ew_) : 1.0;
			trend_ += kHoltBeta * w * ((new_level - level_) / dt - trend_);
			// (A gap counts as a few usual spacings: one outage does not make the metric sparse.)
			dt_ew_ = dt_ew_ == 0 ? dt : dt_ew_ + kDtAlpha * (std::min(dt, kHorizonSteps * dt_ew_) - dt_ew_);
		}
		level_ = new_level;
	}
	holt_n_++;

	LearnSeason(p, x, day, week, true, m);

	last_t_ = p.t;
	last_value_ = x;
	n_++;
	// A new metric learns before it speaks. Its first points rest on a window still filling (the
	// median of a drifting metric lags it by half the fill, so the CUSUM against it climbs on any
	// slow trend or daily rise) and on no calibration (a heavy tail's first routine spikes are
	// "6 sd"): in the shapes of a healthy system those made most of a first day's reports, and a
	// database's first checkpoint (a burst of full-page writes) its first critical alert. A report
	// there is held back, not lost: everything it moves (the episode, the CUSUM's restart) moves
	// as if it had been made, so what follows is scored exactly as before. Held back with its
	// score halved, as an episode's repeats are, so a threshold at 0.5 agrees.
	if (ensemble && out.anomaly && n_ <= kLearnPoints) {
		out.anomaly = false;
		out.learning = true;
		out.score *= 0.5;
	}
	// (n_ now counts this point.)
	out.provisional = ensemble && out.anomaly && n_ <= settings_.min_data_points + kCalibrationPoints;
	return out;
}

void
Detector::LearnBucket(Bucket &b, double x, std::int64_t local_day)
{
	if (b.count == 0) {
		b.mean = x;
		b.absdev = 0;
	} else {
		double dev = std::fabs(x - b.mean);
		double sc = kMeanAbsToSigma * std::max(b.absdev, season_scale_);
		double xc = x;
		if (b.days >= kSeasonDays && sc > 0) {
			dev = std::min(dev, 6 * sc);
			// A trusted profile moves only a few of its own deviations per day: one anomalous
			// day must not bend it so far that the next normal day looks anomalous.
			xc = std::clamp(x, b.mean - kBucketClip * sc, b.mean + kBucketClip * sc);
		}
		b.absdev += kBucketAlpha * (dev - b.absdev);
		b.mean += kBucketAlpha * (xc - b.mean);
	}
	if (b.count == 0 || b.last_day != local_day) {
		b.days++;
		b.last_day = local_day;
	}
	b.count++;
}

// The seasonal part of learning a point. with_scales: also the pooled residual scales, which
// compare the profile with the window baseline m (Warm() has no window, and leaves them to the
// fully learnt points that follow).
void
Detector::LearnSeason(const Point &p, double x, Bucket &day, Bucket &week, bool with_scales, double m)
{
	const bool season_ok = day.days >= kSeasonDays;
	if (season_ok) {
		const double season_pred = day.mean + (week.days >= kSeasonDays ? week.mean : 0.0);
		if (with_scales) {
			// pooled seasonal residual scale (before this point is learned, as scored)
			double dev = std::fabs(x - season_pred), sc = kMeanAbsToSigma * season_scale_;
			if (sc > 0)
				dev = std::min(dev, kScaleClip * sc); // an outlier does not inflate the scale much
			season_scale_ = season_scale_ == 0 ? dev : season_scale_ + kSeasonScaleAlpha * (dev - season_scale_);
			// the window baseline's residual on the same points, clipped the same way: the fair
			// comparison for whether the daily profile explains the metric
			double pdev = std::fabs(x - m), psc = kMeanAbsToSigma * plain_scale_;
			if (psc > 0)
				pdev = std::min(pdev, kScaleClip * psc);
			plain_scale_ = plain_scale_ == 0 ? pdev : plain_scale_ + kSeasonScaleAlpha * (pdev - plain_scale_);
		}
		// the hour-of-week offset from the (trusted) time-of-day profile
		double r = x - day.mean;
		if (week.count == 0) {
			week.mean = r;
		} else {
			double wsc = kMeanAbsToSigma * std::max(day.absdev, season_scale_);
			if (week.days >= kSeasonDays && wsc > 0)
				r = std::clamp(r, week.mean - kBucketClip * wsc, week.mean + kBucketClip * wsc);
			week.mean += kWeekAlpha * (r - week.mean);
		}
		if (week.count == 0 || week.last_day != p.local_day) {
			week.days++;
			week.last_day = p.local_day;
		}
		week.count++;
	}
	LearnBucket(day, x, p.local_day);
}

void
Detector::Warm(const Point &in)
{
	Point p = in;
	if (n_ > 0 && !(p.t >= last_t_))
		p.t = last_t_;
	Bucket &day = day_[std::clamp(p.local_minute, 0, 1439) * kDayBuckets / 1440];
	Bucket &week = week_[std::clamp(p.local_dow, 0, 6) * 24 + std::clamp(p.local_minute, 0, 1439) / 60];
	LearnSeason(p, p.value, day, week, false, 0);
	NoteRun(p.value, false);
	NoteExtreme(p.value);
	last_t_ = p.t;
	last_value_ = p.value;
	n_++;
}

void
Detector::NoteRun(double x, bool at_rest)
{
	// (n_ still counts the points before x.) One value: exactly equal, as a stuck sensor or a
	// collector that repeats its last reading writes it.
	if (run_length_ > 0 && x == run_value_) {
		run_length_++;
	} else {
		// (A rest says nothing about how long the metric holds a value otherwise.)
		if (!run_at_rest_)
			longest_run_ = std::max(longest_run_, static_cast<double>(run_length_));
		run_value_ = x;
		run_length_ = 1;
		run_start_n_ = n_;
		run_at_rest_ = at_rest;
	}
	constexpr double kRunMemory = 10080; // points (a week at one a minute)
	longest_run_ *= 1.0 - 1.0 / kRunMemory;
}

void
Detector::NoteDeparture(double dev)
{
	if (!(dev > 0) || !std::isfinite(dev))
		return;
	if (departs_ < UINT32_MAX)
		departs_++;
	if (departs_ > kDepartClipAfter)
		dev = std::min(dev, kDepartClip * depart_ew_);
	depart_ew_ += StartupWeight(1.0 / kDepartMoves, departs_) * (dev - depart_ew_);
}

void
Detector::NoteExtreme(double x)
{
	if (n_ == 0) {
		lo_ = hi_ = x;
		return;
	}
	lo_ = std::min(lo_, x);
	hi_ = std::max(hi_, x);
}

} // namespace thrillmon::detect
