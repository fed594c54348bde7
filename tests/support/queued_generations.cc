#include "support/queued_generations.h"

#include "streamfleet/redis/stream_admin.h"
#include "streamfleet/v1/task.pb.h"

namespace streamfleet::testing {

std::vector<QueuedGeneration> QueuedGenerations(RedisClient& redis, const std::string& stream) {
  std::vector<QueuedGeneration> out;
  auto r = redis.Command({"XRANGE", stream, "-", "+"});
  if (!r.ok()) return out;
  for (const auto& e : ParseEntries(stream, *r)) {
    v1::TaskEnvelope task;
    const std::string* raw = e.Field("e");
    QueuedGeneration q;
    if (raw == nullptr || !task.ParseFromString(*raw)) {
      q.payload_error = "undecodable TaskEnvelope";
    } else {
      q.task_id = task.id();
      q.type = task.type();
      auto req = ParseGenerationRunPayload(task.payload());
      if (req.ok()) {
        q.request = *req;
      } else {
        q.payload_error = req.status().ToString();
      }
    }
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace streamfleet::testing
