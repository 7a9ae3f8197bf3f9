#!/usr/bin/env bash
# Throughput of the C++ anomaly detector (src/core/detect.cpp), no server needed: builds
# bench/core/detect_bench.cpp with Google Benchmark against src/core/*.cpp into bench/out/ and runs
# it. Extra arguments go to the benchmark binary (e.g. --benchmark_filter=ensemble).
# Target: the default ensemble scores >= 1,000,000 points per second on one core.
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-g++}
OUT=bench/out
mkdir -p "$OUT"
BIN=$OUT/detect_bench
JSON=$OUT/detect_bench.json
TARGET=1000000

echo "building $BIN ($CXX -O2)" >&2
"$CXX" -O2 -std=c++17 -Wall -Wextra -Isrc -o "$BIN" bench/core/detect_bench.cpp src/core/*.cpp \
	-lbenchmark -lbenchmark_main -pthread

# Three repetitions, medians reported (REPS=1 for a quick look). items_per_second is per CPU
# second of the benchmark thread; the summary also gives the wall-clock rate, which is lower when
# the machine is busy.
"$BIN" --benchmark_repetitions="${REPS:-3}" --benchmark_report_aggregates_only=true \
	--benchmark_out="$JSON" --benchmark_out_format=json "$@"

# Summary from the JSON (items_per_second of each benchmark), then the target line.
python3 - "$JSON" "$TARGET" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
target = float(sys.argv[2])
rates = {}
for b in data["benchmarks"]:
    kind = b.get("run_type", "iteration")
    if kind == "aggregate" and b.get("aggregate_name") != "median":
        continue
    name = b.get("run_name", b["name"])
    if kind == "iteration" and name in rates:
        continue
    cpu = b.get("items_per_second", 0.0)
    wall = cpu * b["cpu_time"] / b["real_time"] if b.get("real_time") else 0.0
    rates[name] = (cpu, wall)
print()
print(f"{'benchmark (median)':40s} {'per CPU second':>16s} {'per wall second':>16s}")
for name, (cpu, wall) in rates.items():
    unit = "detectors/s" if name.startswith("construct") else "points/s"
    print(f"{name:40s} {cpu:16,.0f} {wall:16,.0f}  {unit}")
ens = rates.get("update/ensemble")
if ens is None:
    print("ensemble: not measured (filtered out)")
else:
    print(f"ensemble: {ens[0]:.0f} points/s (target >= {target:.0f}): {'ok' if ens[0] >= target else 'MISSED'}")
PY
