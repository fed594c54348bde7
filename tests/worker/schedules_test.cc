// SCHEDULES (queue-worker/schedule_firer.h) with real WorkerServices on one Redis and a manual clock: each
// occurrence enqueues its task once however many workers look, with its payload and queue; occurrences missed
// while the whole fleet was down fire once on return; a schedule seen for the first time does not fire its
// past occurrences.
#include <gtest/gtest.h>

#include "tests/worker/worker_fixture.h"

namespace streamfleet::worker {
namespace {

constexpr const char* kSchedules =
    R"([{"name": "minutely", "cron": "* * * * *", "type": "noop", "payload": {"k": 1}, "queue": "low"}])";

class SchedulesTest : public WorkerTest {
 protected:
  void Housekeep(WorkerService& w, const std::string& consumer) {
    Status s = w.HousekeepOnce(*redis_, consumer);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<v1::TaskEnvelope> Fired() {
    std::vector<v1::TaskEnvelope> out;
    for (const auto& s : keys_.QueueShards("low")) {
      for (const auto& e : ParseEntries(s, *redis_->Command({"XRANGE", s, "-", "+"}))) {
        v1::TaskEnvelope t;
        EXPECT_TRUE(t.ParseFromString(*e.Field("e")));
        out.push_back(t);
      }
    }
    return out;
  }
};

TEST_F(SchedulesTest, EachOccurrenceFiresOnceFleetWideWithItsPayload) {
  WorkerService& a = Make({{"SCHEDULES", kSchedules}});
  WorkerService& b = Make({{"SCHEDULES", kSchedules}});
  Housekeep(a, "a");
  Housekeep(b, "b");
  EXPECT_TRUE(Fired().empty()) << "first sight: the past occurrence does not fire";

  clock_.Advance(60'000);  // the next minute is due
  Housekeep(a, "a");
  Housekeep(b, "b");
  Housekeep(a, "a");
  auto fired = Fired();
  ASSERT_EQ(fired.size(), 1u) << "two workers, three looks, one task";
  EXPECT_EQ(fired[0].type(), "noop");
  EXPECT_EQ(fired[0].payload(), R"({"k":1})");
  EXPECT_EQ(fired[0].queue(), "low");

  clock_.Advance(10 * 60'000);  // the fleet was down for ten occurrences
  Housekeep(b, "b");
  Housekeep(a, "a");
  EXPECT_EQ(Fired().size(), 2u) << "the missed occurrences fire once";

  WorkerService& c = Make({{"SCHEDULES", kSchedules}});  // a worker started later
  Housekeep(c, "c");
  EXPECT_EQ(Fired().size(), 2u) << "it waits for the next occurrence after the last fired one";
  clock_.Advance(60'000);
  Housekeep(c, "c");
  Housekeep(a, "a");
  EXPECT_EQ(Fired().size(), 3u);
  auto last = redis_->Command({"GET", keys_.ScheduleLastFired("minutely")});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(std::stoll(last->str) % 60'000, 0) << "the occurrence, on the minute";
}

}  // namespace
}  // namespace streamfleet::worker
