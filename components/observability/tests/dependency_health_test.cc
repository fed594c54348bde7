// Outage accounting: one count and one log line per state change, however many calls fail.
#include "streamfleet/observability/dependency_health.h"

#include <gtest/gtest.h>

namespace streamfleet {
namespace {

TEST(DependencyHealthTest, CountsOncePerOutageNotPerFailedCall) {
  prometheus::Registry registry;
  auto& up = prometheus::BuildGauge().Name("streamfleet_redis_up").Help("h").Register(registry).Add({});
  DependencyHealth h(registry, Dependency::kRedis, &up);
  EXPECT_FALSE(h.up());
  EXPECT_FALSE(h.down()) << "unknown before the first call";
  h.Report(Status::Ok(), "read");
  EXPECT_TRUE(h.up());
  EXPECT_EQ(up.Value(), 1);
  for (int i = 0; i < 50; ++i) h.Report(Status::Unavailable("connection refused"), "read");
  EXPECT_TRUE(h.down());
  EXPECT_EQ(up.Value(), 0);
  EXPECT_EQ(h.outages(), 1);
  h.Report(Status::Ok(), "read");
  h.Report(Status::Ok(), "read");
  EXPECT_TRUE(h.up());
  h.Report(Status::DeadlineExceeded("timeout"), "write");
  EXPECT_EQ(h.outages(), 2) << "a second outage after recovery";
}

TEST(DependencyHealthTest, AnsweredErrorsAreNotOutages) {
  prometheus::Registry registry;
  DependencyHealth h(registry, Dependency::kDatabase);
  h.Report(Status::Ok(), "write");
  h.Report(Status::InvalidArgument("constraint"), "write");
  EXPECT_TRUE(h.up());
  EXPECT_EQ(h.outages(), 0);
}

TEST(DependencyHealthTest, ARejectedPasswordIsAnOutage) {
  prometheus::Registry registry;
  DependencyHealth h(registry, Dependency::kRedis);
  h.Report(Status::Unauthenticated("WRONGPASS invalid username-password pair"), "connect");
  EXPECT_FALSE(h.up()) << "logged with its reason and counted, not ignored like an answered error";
  EXPECT_EQ(h.outages(), 1);
}

TEST(DependencyHealthTest, UnreachableAtStartIsAnOutageAndTheCounterIsExported) {
  prometheus::Registry registry;
  DependencyHealth h(registry, Dependency::kDatabase);
  h.Report(Status::Unavailable("refused"), "migrate");
  EXPECT_EQ(h.outages(), 1);
  bool found = false;
  for (const auto& f : registry.Collect()) found |= f.name == "streamfleet_db_outages_total";
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace streamfleet
