#pragma once
// One organization's share of something every organization's requests draw from, so that no organization
// can take all of it:
// - worker threads (INGEST_ORG_MAX_WORKERS). A streamed upload (chunked, NDJSON, SSE) holds a worker
//   thread for as long as its body takes, and a body may legitimately trickle for minutes (an LLM's deltas
//   relayed as they come), so no deadline on the body can tell abuse from use. Without a share, one
//   organization with INGEST_THREADS slow uploads held every worker, and every other organization's
//   progress, finish, start and streamed requests waited.
// - open live streams (LIVE_ORG_MAX_STREAMS). Each holds a connection, a file descriptor and its buffer for
//   as long as the client keeps it; without a share one organization's scripts could hold all of them.
// Above its share an organization's request is answered 429 at once rather than queued: a queued request
// would wait all the same.
//
// Thread-safety: Acquire and the slots' release may be called from any thread.
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace streamfleet::ingest {

class OrgShare {
 public:
  explicit OrgShare(int max_per_org) : max_(max_per_org) {}

  // What one organization holds of the share; released when destroyed. Empty (false) when it was full.
  class Slot {
   public:
    Slot() = default;
    Slot(OrgShare* share, int64_t org) : share_(share), org_(org) {}
    Slot(Slot&& o) noexcept : share_(o.share_), org_(o.org_) { o.share_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (share_ != nullptr) share_->Release(org_);
    }
    explicit operator bool() const { return share_ != nullptr; }

   private:
    OrgShare* share_ = nullptr;
    int64_t org_ = 0;
  };

  Slot Acquire(int64_t org) {
    std::lock_guard<std::mutex> l(mu_);
    int& n = held_[org];
    if (n >= max_) return {};
    ++n;
    return Slot(this, org);
  }
  int max() const { return max_; }

 private:
  void Release(int64_t org) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = held_.find(org);
    if (it != held_.end() && --it->second <= 0) held_.erase(it);  // the map holds only organizations at work
  }

  const int max_;
  std::mutex mu_;
  std::unordered_map<int64_t, int> held_;
};

}  // namespace streamfleet::ingest
