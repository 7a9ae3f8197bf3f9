// Worker schedule math: wall-clock slots and sleep lengths.
#include "core/schedule.hpp"

#include <gtest/gtest.h>

using namespace thrillmon;

namespace {
EpochMicros
At(int hh, int mm, int ss, int micros = 0)
{
	return FromLocal({2026, 11, 25}, hh, mm, ss, 0) + micros;
}
} // namespace

TEST(Schedule, SixtySecondsFiresOnTheMinute)
{
	EXPECT_EQ(NextSlot(At(13, 7, 12), 60), At(13, 8, 0));
	EXPECT_EQ(NextSlot(At(13, 7, 59, 999999), 60), At(13, 8, 0));
	// Exactly on a slot: the next one, not the same one again.
	EXPECT_EQ(NextSlot(At(13, 8, 0), 60), At(13, 9, 0));
	EXPECT_EQ(CurrentSlot(At(13, 8, 0), 60), At(13, 8, 0));
	EXPECT_EQ(CurrentSlot(At(13, 8, 59), 60), At(13, 8, 0));
}

TEST(Schedule, OtherIntervalsAlignToTheEpochGrid)
{
	EXPECT_EQ(NextSlot(At(13, 7, 12), 300), At(13, 10, 0));
	EXPECT_EQ(NextSlot(At(13, 7, 12), 1), At(13, 7, 13));
	EXPECT_EQ(NextSlot(At(23, 59, 30), 3600), FromLocal({2026, 11, 26}, 0, 0, 0, 0));
	// Intervals that do not divide a day still form one grid, shared by every server.
	EXPECT_EQ(NextSlot(At(13, 7, 12), 7) % (7 * kMicrosPerSecond), 0);
}

TEST(Schedule, NonPositiveIntervalIsOneSecond)
{
	EXPECT_EQ(NextSlot(At(13, 7, 12, 5), 0), At(13, 7, 13));
	EXPECT_EQ(NextSlot(At(13, 7, 12, 5), -10), At(13, 7, 13));
}

TEST(Schedule, BeforeTheEpochFloors)
{
	EXPECT_EQ(CurrentSlot(-1, 60), -60 * kMicrosPerSecond);
	EXPECT_EQ(NextSlot(-1, 60), 0);
}

TEST(Schedule, MillisUntilRoundsUpAndClamps)
{
	EXPECT_EQ(MillisUntil(At(13, 7, 12), At(13, 7, 12), 1000), 0);
	EXPECT_EQ(MillisUntil(At(13, 7, 13), At(13, 7, 12), 1000), 0);
	EXPECT_EQ(MillisUntil(At(13, 7, 12), At(13, 7, 12, 1), 1000), 1);
	EXPECT_EQ(MillisUntil(At(13, 7, 12), At(13, 7, 12, 1500), 1000), 2);
	EXPECT_EQ(MillisUntil(At(13, 7, 0), At(13, 8, 0), 10000), 10000);
}
