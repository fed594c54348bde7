// The live hub's cap on row reads per pass (components/live/src/row_read_budget.h): one organization's many
// streams do not take a whole pass, and other organizations still get reads in it.
#include "row_read_budget.h"

#include <gtest/gtest.h>

namespace streamfleet::live {
namespace {

TEST(RowReadBudgetTest, OneOrganizationTakesItsShareAndOthersStillRead) {
  RowReadBudget budget;
  int first = 0;
  for (int i = 0; i < 5000; ++i) first += budget.Take(1) ? 1 : 0;
  EXPECT_EQ(first, RowReadBudget::kPerOrganization);
  EXPECT_TRUE(budget.Take(2)) << "another organization's stream is not queued behind the first's";
}

TEST(RowReadBudgetTest, APassReadsAtMostItsTotal) {
  RowReadBudget budget;
  int taken = 0;
  for (int64_t org = 1; org <= 100; ++org) {
    for (int i = 0; i < 3; ++i) taken += budget.Take(org) ? 1 : 0;
  }
  EXPECT_EQ(taken, RowReadBudget::kPerPass);
  EXPECT_FALSE(budget.Take(1000));
  RowReadBudget next;  // the next pass starts again
  EXPECT_TRUE(next.Take(1000));
}

}  // namespace
}  // namespace streamfleet::live
