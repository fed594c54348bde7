#include "streamfleet/taskqueue/task_keys.h"

#include <algorithm>

#include "streamfleet/base/random.h"
#include "streamfleet/redis/cluster_slots.h"

namespace streamfleet {

TaskKeys::TaskKeys(std::string prefix, KeySchemaMode mode, int shards)
    : p_(std::move(prefix)),
      cluster_(mode == KeySchemaMode::kCluster),
      shards_(cluster_ ? std::max(1, shards) : 1) {}

std::string TaskKeys::Queue(const std::string& name, int shard) const {
  if (!cluster_) return p_ + ":queue:" + name;
  return "{" + p_ + ":queue:" + name + ":" + std::to_string(shard) + "}";
}

std::vector<std::string> TaskKeys::QueueShards(const std::string& name) const {
  std::vector<std::string> out;
  for (int i = 0; i < shards_; ++i) out.push_back(Queue(name, i));
  return out;
}

std::vector<std::string> TaskKeys::QueueStreams(const std::vector<std::string>& names) const {
  std::vector<std::string> out;
  for (const auto& n : names) {
    for (int i = 0; i < shards_; ++i) out.push_back(Queue(n, i));
  }
  return out;
}

std::string TaskKeys::QueueOf(const std::string& stream) const {
  if (!cluster_) {
    const std::string head = p_ + ":queue:";
    return stream.compare(0, head.size(), head) == 0 ? stream.substr(head.size()) : "";
  }
  const std::string head = "{" + p_ + ":queue:";
  if (stream.compare(0, head.size(), head) != 0 || stream.back() != '}') return "";
  // Queue names never hold ':' (ValidQueueName), so the last one separates the shard number.
  auto colon = stream.rfind(':');
  if (colon < head.size()) return "";
  return stream.substr(head.size(), colon - head.size());
}

int TaskKeys::ShardFor(const std::string& unique_key) const {
  if (shards_ == 1) return 0;
  // CRC16 (the cluster's own key hash): stable across processes and languages.
  if (!unique_key.empty()) return Crc16(unique_key) % shards_;
  return static_cast<int>(RandomU64() % static_cast<unsigned>(shards_));
}

std::string TaskKeys::ScheduledOf(const std::string& stream) const {
  return cluster_ ? stream + ":scheduled" : Scheduled();
}

std::string TaskKeys::DeadLettersOf(const std::string& stream) const {
  return cluster_ ? stream + ":dlq" : DeadLetters();
}

std::string TaskKeys::PausedFlagOf(const std::string& stream) const { return stream + ":paused"; }

std::string TaskKeys::CancelledOf(const std::string& stream) const {
  return cluster_ ? stream + ":cancelled" : Cancelled();
}

std::vector<std::string> TaskKeys::AllScheduled(const std::vector<std::string>& queues) const {
  if (!cluster_) return {Scheduled()};
  std::vector<std::string> out;
  for (const auto& s : QueueStreams(queues)) out.push_back(ScheduledOf(s));
  return out;
}

std::vector<std::string> TaskKeys::AllDeadLetters(const std::vector<std::string>& queues) const {
  if (!cluster_) return {DeadLetters()};
  std::vector<std::string> out;
  for (const auto& s : QueueStreams(queues)) out.push_back(DeadLettersOf(s));
  return out;
}

}  // namespace streamfleet
