#pragma once
// Internal to common: drives a hiredis async context from a libuv loop (our own adapter, not hiredis's
// bundled adapters/libuv.h).
//
// Why not the bundled one: in hiredis 0.14 its poll callback returns early when libuv reports an error
// status. A refused non-blocking connect arrives exactly that way, so hiredis never looks at the socket:
// the connect callback is never called, queued command callbacks are never called, and the loop simply
// runs out of work -- a process "finishes" silently while Redis is down. Here an error status hands
// hiredis the events it was waiting for, so it reads the socket, sees the error and reports it
// (connect callback with REDIS_ERR, every pending reply callback with NULL), as hiredis >= 1.0 does.
#include <hiredis/async.h>
#include <uv.h>

namespace streamfleet::uvredis {

// Attaches `ac` to `loop`. REDIS_OK, or REDIS_ERR if it is attached already or the socket cannot be
// polled. The poll handle lives until hiredis frees the context (its cleanup hook closes the handle).
int Attach(uv_loop_t* loop, redisAsyncContext* ac);

// True while `ac`'s own read or write event is being handled (hiredis is on the stack below the caller,
// e.g. in its connect callback). Whoever writes to the context outside an event must not do it then: a
// failed write frees the context under hiredis' feet (0.14 frees it at once).
bool InsideEvent(const redisAsyncContext* ac);

}  // namespace streamfleet::uvredis
