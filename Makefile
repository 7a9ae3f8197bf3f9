# thrillmon: PGXS build (see STYLE.md for the Debian/LLVM traps this file works around).
EXTENSION  = thrillmon
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = thrillmon
CORE_SRCS  = $(sort $(wildcard src/core/*.cpp))
PG_SRCS    = $(sort $(wildcard src/pg/*.cpp))
OBJS       = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# Released scripts are frozen: the first release's install script and one upgrade script per
# later release, in order. The current version's install script is generated as the first
# release followed by every upgrade, so a fresh install and an upgraded one run the same DDL
# (test/scripts/upgrade.sh still checks they end up identical).
FIRST_VERSION = 0.1.0
UPGRADE_CHAIN = sql/$(EXTENSION)--0.1.0--0.2.0.sql sql/$(EXTENSION)--0.2.0--0.3.0.sql \
                sql/$(EXTENSION)--0.3.0--0.4.0.sql sql/$(EXTENSION)--0.4.0--0.5.0.sql
DATA_built    = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA          = sql/$(EXTENSION)--$(FIRST_VERSION).sql $(UPGRADE_CHAIN)

REGRESS      = install_schema record_metric retention_api partitions collectors detection
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG   ?= pg_config
PG_CPPFLAGS += -Isrc
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  += -lstdc++

EXTRA_CLEAN = $(DATA_built) test/unit/unit_tests test/unit/unit_tests_sanitized test/fuzz/fuzz_core test/fuzz/corpus results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Debian's Postgres is built with LLVM: every object also gets a .bc made by clang with only
# BITCODE_CXXFLAGS + CPPFLAGS, which would lack -std=c++17.
COMPILE.cxx.bc += $(PG_CXXFLAGS)

# PGXS tracks no header dependencies: without this, changing a struct in a header rebuilt only
# some objects, and glue and core disagreed about its layout (a crash, found the hard way).
HEADERS = $(wildcard src/core/*.hpp src/pg/*.hpp)
$(OBJS) $(OBJS:.o=.bc): $(HEADERS)

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION)--$(FIRST_VERSION).sql $(UPGRADE_CHAIN)
	cat $^ > $@

# ---- C++ core unit tests: system g++ and GoogleTest, no PGXS, no server -----------------------
GTEST_CXXFLAGS = -std=c++17 -Wall -Wextra -O1 -g -Isrc
UNIT_SRCS      = $(sort $(wildcard test/unit/*_test.cpp))

test/unit/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(wildcard src/core/*.hpp)
	$(CXX) $(GTEST_CXXFLAGS) -o $@ $(UNIT_SRCS) $(CORE_SRCS) -lgtest -lgtest_main -pthread

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer (any report fails).
test/unit/unit_tests_sanitized: $(UNIT_SRCS) $(CORE_SRCS) $(wildcard src/core/*.hpp)
	$(CXX) $(GTEST_CXXFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
		-o $@ $(UNIT_SRCS) $(CORE_SRCS) -lgtest -lgtest_main -pthread

# libFuzzer over the core's parsers, validators, calendar math and sketch (clang, with sanitizers).
FUZZ_RUNS ?= 1000000
test/fuzz/fuzz_core: test/fuzz/fuzz_core.cpp $(CORE_SRCS) $(wildcard src/core/*.hpp)
	clang++-14 -std=c++17 -O1 -g -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ test/fuzz/fuzz_core.cpp $(CORE_SRCS)

.PHONY: unittest sanitize fuzz pgtap concurrency soak test demo bench bench-nodiscard nab
unittest: test/unit/unit_tests
	test/unit/unit_tests

sanitize: test/unit/unit_tests_sanitized
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 test/unit/unit_tests_sanitized

fuzz: test/fuzz/fuzz_core
	mkdir -p test/fuzz/corpus
	test/fuzz/fuzz_core -runs=$(FUZZ_RUNS) -seed=1 -max_len=4096 -print_final_stats=1 test/fuzz/corpus

# pgTAP suites against an installed server reached through the usual PG* variables.
pgtap:
	pg_prove -v test/pgtap/*.sql

concurrency:
	bash test/scripts/concurrent_retention.sh

# The fault tests with the full 10-minute soak (make test runs a 60 s one); own cluster.
soak:
	SOAK_S=600 bash test/scripts/faults.sh

# The two commands of the README: both install their own dependencies.
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

# bench/retention.sh again, on an ext4 mounted without online discard (a loop-mounted image).
bench-nodiscard:
	bash scripts/bench_nodiscard.sh

# Detection quality on NAB's development subset, through SQL (backtest()), in its own cluster.
nab:
	bash scripts/nab.sh
