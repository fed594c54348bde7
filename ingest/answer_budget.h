#pragma once
// The bytes of answers that wait in the process for their clients to read them (INGEST_MAX_QUEUED_ANSWER_BYTES),
// and one organization's share of them (half).
//
// Why: GET /v1/orgs/{org}/generations/{gen} answers a row of up to INGEST_MAX_GENERATION_BYTES (64 MiB) as one
// write, and the answer stays in memory until the socket has taken its last byte. A client that reads nothing
// holds it for the keep-alive timeout, one that reads slowly (at least 256 KiB a minute keeps an answer going)
// for hours: 200 such connections of one organization held 12.8 GB. An answer that would take the queued total
// past the budget, or its organization past its half, is refused (503 / 429 with Retry-After) instead of queued.
//
// Why a budget rather than writing large rows in pieces at the socket's pace (as the live streams do): the row
// is read from the cache or the database whole, so a paced writer would still hold all of it for as long as
// the client takes; only not taking on more than the process can hold bounds the memory.
//
// An answer is admitted whatever its size when nothing is charged (to its organization, or at all), so a row
// larger than the budget can still be read, one at a time: the total stays below the budget plus one answer.
//
// Thread-safety: Admit and the charges' release may be called from any thread; a Charge may outlive the
// AnswerBudget (the HTTP loop releases it when the write completes).
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace streamfleet::ingest {

class AnswerBudget {
 private:
  struct Ledger;

 public:
  explicit AnswerBudget(int64_t max_bytes) : ledger_(std::make_shared<Ledger>(max_bytes)) {}

  // Bytes charged to one organization's answer; released when destroyed. Empty (false) when refused.
  class Charge {
   public:
    Charge() = default;
    Charge(Charge&& o) noexcept
        : ledger_(std::move(o.ledger_)), org_(o.org_), bytes_(std::exchange(o.bytes_, 0)) {}
    Charge& operator=(Charge&&) = delete;
    Charge(const Charge&) = delete;
    ~Charge() {
      if (ledger_) ledger_->Release(org_, bytes_);
    }
    explicit operator bool() const { return ledger_ != nullptr; }

   private:
    friend class AnswerBudget;
    Charge(std::shared_ptr<Ledger> ledger, int64_t org, int64_t bytes)
        : ledger_(std::move(ledger)), org_(org), bytes_(bytes) {}

    std::shared_ptr<Ledger> ledger_;
    int64_t org_ = 0;
    int64_t bytes_ = 0;
  };

  enum class Refusal { kNone, kOrganization, kProcess };
  struct Admission {
    Charge charge;                     // empty when refused
    Refusal refused = Refusal::kNone;  // who had no room for it
  };

  // Charges `bytes` of an answer to `org`, or says whose share had no room for it.
  Admission Admit(int64_t org, int64_t bytes) {
    Ledger& l = *ledger_;
    std::lock_guard<std::mutex> lock(l.mu);
    auto held = l.held.find(org);
    const int64_t org_held = held == l.held.end() ? 0 : held->second;
    if (org_held > 0 && org_held + bytes > org_max_bytes()) return {Charge(), Refusal::kOrganization};
    if (l.total > 0 && l.total + bytes > l.max) return {Charge(), Refusal::kProcess};
    l.held[org] += bytes;
    l.total += bytes;
    return {Charge(ledger_, org, bytes), Refusal::kNone};
  }

  int64_t max_bytes() const { return ledger_->max; }
  // Half: whatever one organization's clients leave unread, the other half serves everyone else.
  int64_t org_max_bytes() const { return ledger_->max / 2; }
  int64_t queued_bytes() const {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    return ledger_->total;
  }

 private:
  struct Ledger {
    explicit Ledger(int64_t max_bytes) : max(max_bytes) {}
    void Release(int64_t org, int64_t bytes) {
      std::lock_guard<std::mutex> lock(mu);
      total -= bytes;
      auto it = held.find(org);
      if (it != held.end() && (it->second -= bytes) <= 0) held.erase(it);  // only organizations with answers out
    }

    const int64_t max;
    std::mutex mu;
    int64_t total = 0;                          // guarded by mu
    std::unordered_map<int64_t, int64_t> held;  // guarded by mu: organization -> its bytes
  };

  std::shared_ptr<Ledger> ledger_;
};

}  // namespace streamfleet::ingest
