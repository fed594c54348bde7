#pragma once
// The streamed answers (server-sent events) of one LoopHttpServer, on an event loop and thread of their own.
//
// Why: a stream lives for minutes and gets a write for every event, while the server's loop answers short
// requests. On the loop that reads the requests, each event's write(2) -- and the kernel's TCP work behind it,
// on loopback the receiver's side too -- runs between the requests and delays them (docs/performance.md, live
// streams). So once a stream's head is due, the server's loop hands the socket over: a dup of its descriptor
// (a libuv handle cannot change loops), after which it closes its own and never touches the socket again.
//
// A stream's writer posts to this loop's outbox under the id the stream got when it opened (NextId), from any
// thread and possibly before the socket arrives (kAdopt): such writes wait here for it. Every stream gets
// exactly one kAdopt; with fd -1 (the client had gone, or the server was stopping) its waiting writes are
// dropped, and so is anything written to it later (its state is closed by then).
#include <cstdint>
#include <memory>

#include "http_outbox.h"

namespace streamfleet {

class HttpStreamLoop {
 public:
  HttpStreamLoop();   // starts the thread
  ~HttpStreamLoop();  // Stop()
  HttpStreamLoop(const HttpStreamLoop&) = delete;
  HttpStreamLoop& operator=(const HttpStreamLoop&) = delete;

  // Where streams post kAdopt, kStreamData and kStreamEnd.
  const std::shared_ptr<HttpOutbox>& outbox() const;
  // The streams' sockets this loop holds (any thread).
  int64_t open_sockets() const;
  // A new stream's id (process-wide unique).
  static uint64_t NextId();

  // An ended stream whose last bytes the client has not taken within this long is closed anyway: a client
  // that stopped reading must not keep a socket (or Stop) waiting.
  static constexpr uint64_t kEndFlushMs = 5000;
  // The server begins to stop (any thread): every stream ends now with its last chunk, and so does each one
  // handed over from now on, right after its head and what was written to it. Idempotent.
  void BeginStop();
  // Ends what is still open, waits until every socket is closed (at most kEndFlushMs and a tick after its
  // end), and joins the thread. Call once the server's own loop has stopped, so nothing can be handed over
  // any more. Idempotent.
  void Stop();

  struct Impl;  // public for the socket class in the .cc, where it is defined

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamfleet
