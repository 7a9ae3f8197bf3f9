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
UPGRADE_CHAIN = sql/$(EXTENSION)--0.1.0--0.2.0.sql
DATA_built    = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA          = sql/$(EXTENSION)--$(FIRST_VERSION).sql $(UPGRADE_CHAIN)

REGRESS      = install_schema record_metric retention_api partitions collectors
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG   ?= pg_config
PG_CPPFLAGS += -Isrc
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  += -lstdc++

EXTRA_CLEAN = $(DATA_built) test/unit/unit_tests results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Debian's Postgres is built with LLVM: every object also gets a .bc made by clang with only
# BITCODE_CXXFLAGS + CPPFLAGS, which would lack -std=c++17.
COMPILE.cxx.bc += $(PG_CXXFLAGS)

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION)--$(FIRST_VERSION).sql $(UPGRADE_CHAIN)
	cat $^ > $@

# ---- C++ core unit tests: system g++ and GoogleTest, no PGXS, no server -----------------------
GTEST_CXXFLAGS = -std=c++17 -Wall -Wextra -O1 -g -Isrc
UNIT_SRCS      = $(sort $(wildcard test/unit/*_test.cpp))

test/unit/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(wildcard src/core/*.hpp)
	$(CXX) $(GTEST_CXXFLAGS) -o $@ $(UNIT_SRCS) $(CORE_SRCS) -lgtest -lgtest_main -pthread

.PHONY: unittest pgtap concurrency test demo bench
unittest: test/unit/unit_tests
	test/unit/unit_tests

# pgTAP suites against an installed server reached through the usual PG* variables.
pgtap:
	pg_prove -v test/pgtap/*.sql

concurrency:
	bash test/scripts/concurrent_retention.sh

# The two commands of the README: both install their own dependencies.
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh
