// When observe()'s shared slots are given back, and the per-database quota: the rules
// src/pg/observe.cpp applies under its locks.
#include "core/observe_policy.hpp"

#include <gtest/gtest.h>

using namespace thrillmon;

TEST(ObservePolicy, ASlotGoesAfterTwoFlushesFindItEmpty)
{
	int idle = 0;
	idle = ObservedIdleAfterFlush(idle, true);
	EXPECT_FALSE(ObservedSlotIdle(idle, 0)) << "a flush that took observations keeps it";
	idle = ObservedIdleAfterFlush(idle, false);
	EXPECT_FALSE(ObservedSlotIdle(idle, 0)) << "one empty flush: maybe the name is only slow";
	idle = ObservedIdleAfterFlush(idle, false);
	EXPECT_TRUE(ObservedSlotIdle(idle, 0)) << "a whole interval without an observation";
	EXPECT_FALSE(ObservedSlotIdle(idle, 1)) << "never with observations in it";
	EXPECT_EQ(ObservedIdleAfterFlush(idle, true), 0);
	EXPECT_EQ(ObservedIdleAfterFlush(ObservedIdleAfterFlush(idle, false), false), kObservedIdleFlushes) << "saturates";
}

TEST(ObservePolicy, ASlotNothingFlushesForTwoDaysIsOrphaned)
{
	const std::int64_t day = INT64_C(86400) * 1000000;
	EXPECT_FALSE(ObservedSlotOrphaned(0, day));
	EXPECT_FALSE(ObservedSlotOrphaned(0, 2 * day));
	EXPECT_TRUE(ObservedSlotOrphaned(0, 2 * day + 1));
}

TEST(ObservePolicy, TheQuotaBindsEveryDatabaseButTheWorkers)
{
	EXPECT_TRUE(ObservedQuotaAllows(false, 63, 64));
	EXPECT_FALSE(ObservedQuotaAllows(false, 64, 64));
	EXPECT_FALSE(ObservedQuotaAllows(false, 0, 0)) << "a quota of 0: only the worker's database observes";
	EXPECT_TRUE(ObservedQuotaAllows(true, 1000, 64)) << "the worker's database: the pool is its bound";
}
