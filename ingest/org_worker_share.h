#pragma once
// How many of ingest's worker threads one organization's requests may hold at once (INGEST_ORG_MAX_WORKERS).
// A streamed upload (chunked, NDJSON, SSE) holds a worker thread for as long as its body takes, and a body
// may legitimately trickle for minutes (an LLM's deltas relayed as they come), so no deadline on the body
// can tell abuse from use. Without a share, one organization with INGEST_THREADS slow uploads held every
// worker, and every other organization's progress, finish, start and streamed requests waited. Above its
// share an organization's request is answered 429 at once rather than queued: a queued request would wait
// for a worker all the same.
//
// Thread-safety: Acquire and the slots' release may be called from any thread.
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace streamfleet::ingest {

class OrgWorkerShare {
 public:
  explicit OrgWorkerShare(int max_per_org) : max_(max_per_org) {}

  // A held worker of one organization; released when destroyed. Empty (false) when the share was full.
  class Slot {
   public:
    Slot() = default;
    Slot(OrgWorkerShare* share, int64_t org) : share_(share), org_(org) {}
    Slot(Slot&& o) noexcept : share_(o.share_), org_(o.org_) { o.share_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (share_ != nullptr) share_->Release(org_);
    }
    explicit operator bool() const { return share_ != nullptr; }

   private:
    OrgWorkerShare* share_ = nullptr;
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
