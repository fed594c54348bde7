// Cron expressions (streamfleet/base/cron.h) and SCHEDULES (task_specs.h): occurrences computed in UTC,
// checked against dates worked out by hand, and every malformed form refused.
#include "streamfleet/base/cron.h"

#include <gtest/gtest.h>

#include "streamfleet/base/config.h"
#include "streamfleet/base/task_specs.h"
#include "streamfleet/base/time.h"

namespace streamfleet {
namespace {

int64_t At(const std::string& iso) { return ParseTimeMs(iso).value(); }
std::string Iso(std::optional<int64_t> ms) { return ms ? IsoUtcFromMs(*ms) : "none"; }
CronSchedule Cron(const std::string& text) {
  auto c = CronSchedule::Parse(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().ToString();
  return c.ok() ? *c : *CronSchedule::Parse("* * * * *");
}

TEST(CronTest, NextAndPrevOfCommonExpressions) {
  const int64_t t = At("2026-12-03T14:07:30Z");  // a Thursday
  EXPECT_EQ(Iso(Cron("0 3 * * *").Next(t)), Iso(At("2026-12-04T03:00:00Z")));
  EXPECT_EQ(Iso(Cron("0 3 * * *").Prev(t)), Iso(At("2026-12-03T03:00:00Z")));
  EXPECT_EQ(Iso(Cron("*/15 * * * *").Next(t)), Iso(At("2026-12-03T14:15:00Z")));
  EXPECT_EQ(Iso(Cron("*/15 * * * *").Prev(t)), Iso(At("2026-12-03T14:00:00Z")));
  EXPECT_EQ(Iso(Cron("30 9 * * MON-FRI").Next(t)), Iso(At("2026-12-04T09:30:00Z")));
  EXPECT_EQ(Iso(Cron("30 9 * * mon-fri").Next(At("2026-12-04T10:00:00Z"))), Iso(At("2026-12-07T09:30:00Z")))
      << "Friday after 9:30: next Monday";
  EXPECT_EQ(Iso(Cron("0 0 1 * *").Next(t)), Iso(At("2027-01-01T00:00:00Z")));
  EXPECT_EQ(Iso(Cron("@yearly").Prev(t)), Iso(At("2026-01-01T00:00:00Z")));
  EXPECT_EQ(Iso(Cron("@hourly").Next(t)), Iso(At("2026-12-03T15:00:00Z")));
  EXPECT_EQ(Iso(Cron("0 12 29 FEB *").Next(t)), Iso(At("2028-02-29T12:00:00Z"))) << "leap day";
  EXPECT_EQ(Iso(Cron("5,10-12 8 * * *").Next(At("2026-12-03T08:10:00Z"))), Iso(At("2026-12-03T08:11:00Z")));
  EXPECT_EQ(Iso(Cron("0 0 * * 7").Next(t)), Iso(At("2026-12-06T00:00:00Z"))) << "7 is Sunday";
  EXPECT_EQ(Iso(Cron("* * * * *").Prev(t)), Iso(At("2026-12-03T14:07:00Z")));
  EXPECT_EQ(Iso(Cron("* * * * *").Prev(At("2026-12-03T14:07:00Z"))), Iso(At("2026-12-03T14:07:00Z")))
      << "Prev includes the instant itself";
  EXPECT_EQ(Iso(Cron("* * * * *").Next(At("2026-12-03T14:07:00Z"))), Iso(At("2026-12-03T14:08:00Z")))
      << "Next is strictly after";
}

TEST(CronTest, BothDayFieldsRestrictedMeansEitherDay) {
  // Vixie cron: the 13th of the month, or any Friday.
  CronSchedule c = Cron("0 0 13 * FRI");
  EXPECT_EQ(Iso(c.Next(At("2026-12-03T00:00:00Z"))), Iso(At("2026-12-04T00:00:00Z"))) << "a Friday";
  EXPECT_EQ(Iso(c.Next(At("2026-12-11T00:00:00Z"))), Iso(At("2026-12-13T00:00:00Z"))) << "the 13th, a Sunday";
}

TEST(CronTest, EveryIsMultiplesOfTheDurationSinceTheEpoch) {
  CronSchedule c = Cron("@every 30s");
  EXPECT_EQ(c.Next(At("2026-12-03T14:07:10Z")), At("2026-12-03T14:07:30Z"));
  EXPECT_EQ(c.Prev(At("2026-12-03T14:07:10Z")), At("2026-12-03T14:07:00Z"));
}

TEST(CronTest, ImpossibleDatesHaveNoOccurrence) {
  EXPECT_FALSE(Cron("0 0 30 FEB *").Next(At("2026-12-03T00:00:00Z")).has_value());
  EXPECT_FALSE(Cron("0 0 31 4 *").Prev(At("2026-12-03T00:00:00Z")).has_value());
}

TEST(CronTest, MalformedExpressionsAreRefused) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
                          "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * FOO *",
                          "@every", "@every 0s", "@every soon", "@sometimes", "1,,2 * * * *x", "-1 * * * *"}) {
    EXPECT_FALSE(CronSchedule::Parse(bad).ok()) << "\"" << bad << "\"";
  }
}

TEST(SchedulesTest, ParsesTheJsonFormAndRefusesMistakes) {
  auto s = ParseSchedules(R"([{"name": "nightly-purge", "cron": "0 3 * * *", "type": "generation_chunks.purge",
                               "payload": {"older_than": "30d"}, "queue": "low"},
                              {"name": "heartbeat", "cron": "@every 30s", "type": "noop"}])");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].payload, R"({"older_than":"30d"})");
  EXPECT_EQ((*s)[0].queue, "low");
  EXPECT_EQ((*s)[1].payload, "{}");
  EXPECT_EQ((*s)[1].queue, "default");
  EXPECT_TRUE(ParseSchedules("").ok());
  for (const char* bad : {"{}", "[1]", R"([{"name": "a", "cron": "0 3 * * *"}])",
                          R"([{"name": "a b", "cron": "0 3 * * *", "type": "t"}])",
                          R"([{"name": "a", "cron": "0 3 * *", "type": "t"}])",
                          R"([{"name": "a", "cron": "@daily", "type": "t", "queue": "Bad"}])",
                          R"([{"name": "a", "cron": "@daily", "type": "t", "every": "1h"}])",
                          R"([{"name": "a", "cron": "@daily", "type": "t"}, {"name": "a", "cron": "@daily", "type": "u"}])",
                          "[{"}) {
    EXPECT_FALSE(ParseSchedules(bad).ok()) << bad;
  }
}

// TASK_LIMITS shares the task_specs parsers: malformed items are refused, so a process stops at start.
TEST(TaskLimitsTest, ParsesAndRefusesMalformedItems) {
  auto l = ParseTaskLimits("mail.send=5/20,report=2/0");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->at("mail.send").max_running, 5);
  EXPECT_EQ(l->at("mail.send").per_second, 20);
  EXPECT_EQ(l->at("report").per_second, 0);
  for (const char* bad : {"mail=5", "mail=0/0", "mail=-1/5", "mail=a/b", "=1/1", "mail=1/2/3", "mail"}) {
    EXPECT_FALSE(ParseTaskLimits(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace streamfleet
