// POST /v1/orgs/{org}/generations: ParseGenerationRequest on the body, then the generation.run payload
// built from it must parse back to the same request (ingest writes it, the queue-worker reads it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/generation_request.h"

using streamfleet::GenerationRequest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto req = streamfleet::ParseGenerationRequest(7, body);
  if (req.ok()) {
    FUZZ_CHECK(!req->content.empty() && req->scenario_id >= 0);
    req->generation_id = 59;
    auto back = streamfleet::ParseGenerationRunPayload(streamfleet::GenerationRunPayload(*req));
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(back->organization_id == 7 && back->generation_id == 59);
    FUZZ_CHECK(back->scenario_id == req->scenario_id && back->content == req->content &&
               back->source == req->source && back->language == req->language && back->model == req->model &&
               back->initiator == req->initiator);
  }
  // A task payload written by another producer (any language can enqueue generation.run).
  auto run = streamfleet::ParseGenerationRunPayload(body);
  if (run.ok()) FUZZ_CHECK(run->organization_id > 0 && run->generation_id > 0 && !run->content.empty());
  return 0;
}
