// A task stream entry's "e" field as the queue-worker reads it: a streamfleet.v1.TaskEnvelope enqueued by
// any language (task_queue.h), then the payload generation.run parses. streamfleetctl's view of a
// scheduled task ("queue|envelope" zset members) splits at the first '|'.
#include <cstddef>
#include <climits>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/generation_request.h"
#include "streamfleet/v1/task.pb.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in a string field is logged on every such input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  streamfleet::v1::TaskEnvelope task;
  if (!task.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::string wire = task.SerializeAsString();
  streamfleet::v1::TaskEnvelope again;
  FUZZ_CHECK(again.ParseFromString(wire) && again.SerializeAsString() == wire);
  // The retry path re-enqueues the envelope with the next attempt and the error appended.
  if (task.attempt() < INT32_MAX) again.set_attempt(task.attempt() + 1);
  again.add_errors("attempt failed");
  streamfleet::v1::TaskEnvelope retried;
  FUZZ_CHECK(retried.ParseFromString(again.SerializeAsString()) && retried.errors_size() == task.errors_size() + 1);

  auto run = streamfleet::ParseGenerationRunPayload(task.payload());
  if (run.ok()) FUZZ_CHECK(run->organization_id > 0 && run->generation_id > 0);
  return 0;
}
