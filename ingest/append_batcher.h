#pragma once
// Ingest's single-chunk appends of one event-loop turn, sent to Redis as one script call.
//
// Entering a script and converting its arguments is a good part of what a one-chunk IngestAppend costs Redis
// (docs/performance.md, "Ingest against redis-benchmark XADD"), and under load the HTTP loop reads several
// requests per turn. The first request of a turn goes out alone at once (Redis starts on it while the loop
// reads the others); the rest wait for the end of the turn, or until kMaxPerCall are waiting, and go out as one
// IngestAppendMany call, each request still checked and answered on its own.
#include <cstddef>
#include <functional>
#include <vector>

#include <prometheus/counter.h>

#include "streamfleet/chunks/chunk_writer.h"
#include "streamfleet/redis/async_redis.h"

namespace streamfleet {

class AppendBatcher {
 public:
  // Measured with a prototype: 8 requests per call cost Redis about 8.5 us per chunk against 10.6-11.3 alone.
  static constexpr size_t kMaxPerCall = 8;
  using Done = std::function<void(StatusOr<RedisValue>)>;

  // `redis` is hosted on the loop thread that calls Submit (AsyncRedis::OnLoop), and outlives this object.
  // `shared` counts the requests sent in a call with others.
  AppendBatcher(AsyncRedis& redis, prometheus::Counter& shared) : redis_(redis), shared_(shared) {}
  AppendBatcher(const AppendBatcher&) = delete;
  AppendBatcher& operator=(const AppendBatcher&) = delete;

  // Loop thread. `done` gets the request's own IngestAppend reply (or its refusal, or the call's error).
  void Submit(ChunkWriter::AppendCall call, Done done);
  // Loop thread: sends what waits, and from then on each request alone (the loop is ending). Idempotent.
  void Close();

 private:
  struct Waiting {
    ChunkWriter::AppendCall call;
    Done done;
  };
  void Flush();
  void SendAlone(Waiting w);

  AsyncRedis& redis_;
  prometheus::Counter& shared_;
  bool closed_ = false;
  bool sent_this_turn_ = false;
  bool flush_due_ = false;  // AtTurnEnd asked for this turn
  std::vector<Waiting> waiting_;
};

}  // namespace streamfleet
