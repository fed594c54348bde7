// HttpOutbox::Post and HttpWriteBatch (streamfleet/http/http_exchange.h): while a batch lives on a thread,
// that thread's posts collect here, per outbox, and go out when the outermost batch ends.
#include <utility>
#include <vector>

#include "http_outbox.h"
#include "streamfleet/http/http_exchange.h"

namespace streamfleet {
namespace {

struct PendingPosts {
  int depth = 0;
  // Few outboxes (one per server) per batch: a vector beats a map. shared_ptr: a server stopped while a
  // batch holds its messages must not leave a dangling outbox (its Close()d outbox then drops them).
  std::vector<std::pair<std::shared_ptr<HttpOutbox>, std::vector<HttpOutMessage>>> per_outbox;
};

thread_local PendingPosts t_pending;

}  // namespace

void HttpOutbox::Post(HttpOutMessage m) {
  if (t_pending.depth > 0) {
    for (auto& [box, ms] : t_pending.per_outbox) {
      if (box.get() == this) {
        ms.push_back(std::move(m));
        return;
      }
    }
    t_pending.per_outbox.emplace_back(shared_from_this(), std::vector<HttpOutMessage>{}).second.push_back(std::move(m));
    return;
  }
  Deliver([&](std::vector<HttpOutMessage>& q) { q.push_back(std::move(m)); });
}

void HttpOutbox::PostAll(std::vector<HttpOutMessage> ms) {
  if (ms.empty()) return;
  Deliver([&](std::vector<HttpOutMessage>& q) {
    if (q.empty()) {
      q = std::move(ms);
    } else {
      q.insert(q.end(), std::make_move_iterator(ms.begin()), std::make_move_iterator(ms.end()));
    }
  });
}

HttpWriteBatch::HttpWriteBatch() { ++t_pending.depth; }

HttpWriteBatch::~HttpWriteBatch() {
  if (--t_pending.depth > 0) return;
  auto per_outbox = std::move(t_pending.per_outbox);
  t_pending.per_outbox.clear();
  for (auto& [box, ms] : per_outbox) box->PostAll(std::move(ms));
}

}  // namespace streamfleet
