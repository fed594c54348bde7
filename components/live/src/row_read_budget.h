// How many database reads of generation rows one pass of the live hub makes. The reads run on the hub's one
// thread, which serves every organization's streams: an organization opening thousands of streams of ids
// with no buffer (each needs its row read once) made one pass read them all, and every organization's
// chunks and keep-alives waited that long (seconds at a millisecond a read; a database timing out, far
// longer). A pass now reads at most kPerPass rows, at most kPerOrganization of them for one organization;
// the others wait for the next pass (a tick later), so another organization's stream is not queued behind
// them.
#pragma once

#include <cstdint>
#include <map>

namespace streamfleet::live {

class RowReadBudget {
 public:
  static constexpr int kPerPass = 32;
  static constexpr int kPerOrganization = 8;

  // Whether this pass may read a row of `org` now; counts it when so.
  bool Take(int64_t org) {
    if (used_ >= kPerPass) return false;
    int& mine = per_org_[org];
    if (mine >= kPerOrganization) return false;
    ++mine;
    ++used_;
    return true;
  }

 private:
  int used_ = 0;
  std::map<int64_t, int> per_org_;
};

}  // namespace streamfleet::live
