#include "ingest/append_batcher.h"

#include <memory>
#include <utility>

#include "streamfleet/chunks/chunk_scripts.h"

namespace streamfleet {

void AppendBatcher::Submit(ChunkWriter::AppendCall call, Done done) {
  Waiting w{std::move(call), std::move(done)};
  if (closed_) {
    SendAlone(std::move(w));  // (answered "stopped" by the closed client, as any late command)
    return;
  }
  if (!sent_this_turn_ && waiting_.empty()) {
    sent_this_turn_ = true;
    SendAlone(std::move(w));
  } else {
    waiting_.push_back(std::move(w));
    if (waiting_.size() >= kMaxPerCall) Flush();
  }
  // At the end of the turn: what waits goes out, and the next turn's first request goes alone again.
  if (!flush_due_) {
    flush_due_ = true;
    redis_.AtTurnEnd([this] {
      flush_due_ = false;
      Flush();
      sent_this_turn_ = false;
    });
  }
}

void AppendBatcher::SendAlone(Waiting w) {
  redis_.SendEval(scripts::IngestAppend(), w.call.keys, w.call.args, std::move(w.done));
}

void AppendBatcher::Flush() {
  if (waiting_.empty()) return;
  std::vector<Waiting> batch;
  batch.swap(waiting_);
  if (batch.size() == 1) {
    SendAlone(std::move(batch[0]));
    return;
  }
  shared_.Increment(static_cast<double>(batch.size()));
  std::vector<ChunkWriter::AppendCall> calls;
  auto dones = std::make_shared<std::vector<Done>>();
  calls.reserve(batch.size());
  dones->reserve(batch.size());
  for (auto& w : batch) {
    calls.push_back(std::move(w.call));
    dones->push_back(std::move(w.done));
  }
  ChunkWriter::AppendCall many = ChunkWriter::PackAppends(std::move(calls));
  redis_.SendEval(scripts::IngestAppendMany(), many.keys, many.args, [dones](StatusOr<RedisValue> reply) {
    auto each = ChunkWriter::SplitAppendsReply(std::move(reply), dones->size());
    for (size_t i = 0; i < dones->size(); ++i) (*dones)[i](std::move(each[i]));
  });
}

void AppendBatcher::Close() {
  if (closed_) return;
  Flush();
  closed_ = true;
}

}  // namespace streamfleet
