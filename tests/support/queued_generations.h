#pragma once
// Test support: the generation.run tasks waiting in a queue stream, decoded, so tests of the two ways to
// start a generation (HTTP route, CLI) check what the worker will receive.
#include <string>
#include <vector>

#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/redis/redis.h"

namespace streamfleet::testing {

struct QueuedGeneration {
  std::string task_id;
  std::string type;
  GenerationRequest request;  // from the payload; default-constructed when it does not parse
  std::string payload_error;  // why it did not parse, "" when it did
};

// Every task in the stream (XRANGE), in order.
std::vector<QueuedGeneration> QueuedGenerations(RedisClient& redis,
                                                const std::string& stream = "streamfleet:queue:default");

}  // namespace streamfleet::testing
