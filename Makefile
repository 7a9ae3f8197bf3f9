# thrillmon: PGXS build (see ../shared/STYLE.md for the Debian/LLVM traps this file works around).
EXTENSION  = thrillmon
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = thrillmon
CORE_SRCS  = $(sort $(wildcard src/core/*.cpp))
PG_SRCS    = $(sort $(wildcard src/pg/*.cpp))
OBJS       = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# The install script of the current version is built from sql/source/ (one current definition of
# every object, by area, in file-name order) by src/tools/sqlgen, which also writes in the core's
# vocabularies, lock keys and limits. A fresh install runs only that. Released scripts are frozen:
# the first release's install script and one upgrade script per later release (A--B), found by
# their names (so a generated script of an earlier version, left in sql/ by a version bump, is
# never installed); an upgraded install runs those, and test/scripts/upgrade.sh holds the two
# paths to the same result.
SQL_SOURCES = $(sort $(wildcard sql/source/*.sql))
DATA_built  = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA        = sql/$(EXTENSION)--0.1.0.sql $(wildcard sql/$(EXTENSION)--*--*.sql)

# pg_regress (the API contract and its messages) boots a temporary instance of its own with
# thrillmon preloaded (test/regress.conf), as pg_cron's suite does.
REGRESS      = install_schema record_metric retention_api partitions collectors detection dashboard
REGRESS_DIR  = .
REGRESS_OPTS = --temp-instance=$(REGRESS_DIR)/tmp_check --temp-config=$(if $(REGRESS_PREP),$(REGRESS_COPY)/,test/)regress.conf \
               --load-extension=$(EXTENSION) $(if $(REGRESS_PREP),--inputdir=$(REGRESS_COPY) --outputdir=$(REGRESS_COPY))

# Postgres refuses to run as root, and pg_regress starts its temporary instance as whoever runs
# it: as root, the suite runs as the postgres OS user, on a copy of its inputs that user can read
# (the checkout may be in root's home), with its results and regression.diffs in that copy. (Set
# before PGXS is included: its installcheck rule reads REGRESS_PREP then.)
ifeq ($(shell id -u),0)
ifndef REGRESS_COPY
REGRESS_COPY := $(shell mktemp -u /tmp/thrillmon-regress.XXXXXX)
endif
REGRESS_DIR  := $(REGRESS_COPY)
REGRESS_PREP  = regress-as-postgres
endif

PG_CONFIG   ?= pg_config
PG_CPPFLAGS += -Isrc -DTHRILLMON_VERSION='"$(EXTVERSION)"'
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  += -lstdc++ -lcurl

EXTRA_CLEAN = $(DATA_built) src/tools/sqlgen test/unit/unit_tests test/unit/unit_tests_sanitized test/fuzz/fuzz_core \
              test/fuzz/corpus results regression.diffs regression.out tmp_check

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Debian's Postgres is built with LLVM: every object also gets a .bc made by clang with only
# BITCODE_CXXFLAGS + CPPFLAGS, which would lack -std=c++17.
COMPILE.cxx.bc += $(PG_CXXFLAGS)

# PGXS tracks no header dependencies: without this, changing a struct in a header rebuilt only
# some objects, and glue and core disagreed about its layout (a crash, found the hard way). Not
# named HEADERS: PGXS installs the files of that variable into the server's include directory.
THRILLMON_HEADERS = $(wildcard src/core/*.hpp src/pg/*.hpp)
$(OBJS) $(OBJS:.o=.bc): $(THRILLMON_HEADERS)

ifdef REGRESS_PREP
# (PGXS runs `echo ... && pg_regress ...`: the wrapper goes in front of pg_regress itself.)
pg_regress_installcheck := $(subst && ,&& runuser -u postgres -- ,$(pg_regress_installcheck))
.PHONY: regress-as-postgres
regress-as-postgres:
	rm -rf $(REGRESS_COPY) && mkdir -p $(REGRESS_COPY)
	cp -r sql expected $(REGRESS_COPY)/ && cp test/regress.conf $(REGRESS_COPY)/
	chown -R postgres: $(REGRESS_COPY)
	@echo "thrillmon: pg_regress runs as the postgres OS user in $(REGRESS_COPY) (results/ and regression.diffs there)"
endif

src/tools/sqlgen: src/tools/sqlgen.cpp src/core/vocabulary.cpp $(wildcard src/core/*.hpp)
	$(CXX) -std=c++17 -Wall -Wextra -O1 -Isrc -o $@ src/tools/sqlgen.cpp src/core/vocabulary.cpp src/core/validation.cpp \
		src/core/civil_time.cpp

$(DATA_built): $(SQL_SOURCES) src/tools/sqlgen
	src/tools/sqlgen $(SQL_SOURCES) > $@.tmp && mv $@.tmp $@

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

.PHONY: unittest sanitize fuzz pgtap lint format concurrency soak delivery-soak healthy-soak detect-memory test demo bench bench-nodiscard citus-test bench-citus nab nab-loco deb dist package-test \
	report-screenshot
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

# The code style (.clang-format) and the glue's include order (STYLE.md rule 3), checked; `make
# format` rewrites the C++ sources in that style.
lint:
	bash test/lint.sh

format:
	clang-format-14 -i $(CORE_SRCS) $(PG_SRCS) $(wildcard src/core/*.hpp src/pg/*.hpp src/tools/*.cpp test/unit/*.cpp test/fuzz/*.cpp bench/core/*.cpp bench/nab/*.cpp)

concurrency:
	bash test/scripts/concurrent_retention.sh

# The fault tests with the full 10-minute soak (make test runs a 60 s one); own cluster.
soak:
	SOAK_S=600 bash test/scripts/faults.sh

# Delivery through a 10-minute receiver outage (make test runs 2 minutes); own cluster.
delivery-soak:
	DELIVERY_OUTAGE_S=600 bash test/scripts/delivery.sh

# A healthy database under pgbench for an hour, collected every 2 s and then every 60 s (make
# test runs five minutes at 2 s); what thrillmon raised is printed. (At 60 s the hour's 60
# collections are a new metric's learning points: that run skips its lock-storm checks.)
healthy-soak:
	HEALTHY_S=3600 HEALTHY_INTERVAL_S=2 bash test/scripts/healthy_pgbench.sh
	HEALTHY_S=3600 HEALTHY_INTERVAL_S=60 bash test/scripts/healthy_pgbench.sh

# Detection's memory under 100,000 one-point names and backtest() over a million points, the
# issue's cases (make test runs 20,000 and 300,000); own cluster.
detect-memory:
	NAMES=100000 BACKTEST_POINTS=1000000 bash test/scripts/detect_memory.sh

# The two commands of the README: both install their own dependencies.
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

# thrillmon on a loopback Citus cluster (a coordinator and two worker nodes): the test alone (make
# test runs it too), and the cost against one node. Citus is built from ../shared/vendor/citus
# when it is missing.
citus-test:
	bash scripts/citus.sh test

bench-citus:
	bash scripts/citus.sh bench

# bench/retention.sh again, on an ext4 mounted without online discard (a loop-mounted image).
bench-nodiscard:
	bash scripts/bench_nodiscard.sh

# Detection quality on NAB's development subset, through SQL (backtest()), in its own cluster.
nab:
	bash scripts/nab.sh

# The same per category, and leave one category out (tune the sensitivity on four, score the fifth).
nab-loco:
	bash scripts/nab.sh bench/nab_loco.sh

# The Debian package postgresql-15-thrillmon (debian/, pg_buildext), built unprivileged with
# dpkg-buildpackage -us -uc -b in a copy of the tree; the .deb goes to build/deb/.
deb:
	bash scripts/deb.sh

# The PGXN distribution thrillmon-$(EXTVERSION).zip of HEAD (or DIST_REF=<tag>), checked first.
DIST_REF ?= HEAD
dist:
	bash scripts/dist.sh --ref $(DIST_REF)

# The package tests alone (make test runs them too): the .deb installed, upgraded from the
# previous release's, tested and removed; the PGXN zip installed with pgxnclient. Root or sudo.
package-test:
	prove --ext .sh -e bash test/package/

# docs/report.png, the README's picture of a report: the screenshot test/scripts/report_browser.sh
# takes in Chromium, in a throw-away cluster (the same code path as the test's).
report-screenshot:
	bash scripts/report_screenshot.sh
