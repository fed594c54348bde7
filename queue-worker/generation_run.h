#pragma once
// generation.run: stream one generation from the configured OpenAI-compatible provider into the
// chunk streams, where the compactor assembles and finalizes it like any ingested generation.
//
//   payload: the request of POST /v1/orgs/{org}/generations with its generation_id
//            (streamfleet/chunks/generation_request.h builds and parses it).
//   row:     created by this handler with initial metadata (used_instruction, initiator, provider, model,
//            status "running"); at the end status, usage and counters are merged in (see docs/ARCHITECTURE.md
//            "Provider generations" for every outcome).
//
// Every attempt starts from an empty buffer (ChunkWriter::Reset), so a retry or a redelivery never mixes
// its chunks with an earlier attempt's. A generation whose metadata already has a final status is left
// alone (redelivery after it finished).
#include "queue-worker/handlers.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet::worker {

// Registers generation.run and its default retry policy (6 attempts, 2 s doubling to 60 s; TASK_POLICY
// applied afterwards overrides it). store must outlive the registry; nullptr: the task fails, not retried.
void RegisterGenerationRun(HandlerRegistry& registry, SqlStore* store);

}  // namespace streamfleet::worker
