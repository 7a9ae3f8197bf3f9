// NAB detector command for ../shared/eval/nab_score.py that runs the core directly (the fast
// loop for development). The reported score goes through SQL instead: bench/nab/score_sql.sh.
// stdin: "timestamp,value" CSV (timestamps in UTC); stdout: one score per row.
#include "core/civil_time.hpp"
#include "core/detect.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

using namespace thrillmon::detect;

int
main(int argc, char **argv)
{
	Settings st;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!std::strcmp(argv[i], "--algorithm")) {
			Algorithm a;
			if (!ParseAlgorithm(argv[i + 1], &a)) {
				std::fprintf(stderr, "unknown algorithm\n");
				return 2;
			}
			st.algorithms = AlgorithmBit(a);
		} else if (!std::strcmp(argv[i], "--sensitivity")) {
			st.sensitivity = std::atof(argv[i + 1]);
		}
	}
	Detector det(st);
	std::string line;
	std::getline(std::cin, line); // header
	while (std::getline(std::cin, line)) {
		if (line.empty())
			continue;
		int Y, M, D, h, m, s;
		double v;
		if (std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d,%lf", &Y, &M, &D, &h, &m, &s, &v) != 7) {
			std::fprintf(stderr, "bad row: %s\n", line.c_str());
			return 2;
		}
		double t = static_cast<double>(thrillmon::DaysFromCivil(thrillmon::CivilDate {Y, M, D})) * 86400.0 + h * 3600 +
		           m * 60 + s;
		Score sc = det.Update(MakePoint(t, v, 0));
		std::printf("%.17g\n", sc.score);
	}
	return 0;
}
