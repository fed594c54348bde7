#include "uv_redis_adapter.h"

#include <cstdlib>

namespace streamfleet::uvredis {
namespace {

struct Events {
  uv_poll_t poll;              // first member: the handle's address is the struct's address
  redisAsyncContext* context;  // NULL once hiredis has released the context
  int events;                  // what hiredis currently waits for (UV_READABLE | UV_WRITABLE)
  int handling;                // > 0 while OnPoll is inside hiredis (InsideEvent)
};

void OnPoll(uv_poll_t* handle, int status, int events) {
  auto* e = static_cast<Events*>(handle->data);
  // The fix (see the header): on an error status, let hiredis try what it was waiting for.
  int ready = status < 0 ? e->events : events;
  // Each call may free the context (its cleanup hook clears e->context); the struct itself stays valid
  // until the close callback, which libuv runs on a later loop iteration.
  ++e->handling;
  if (e->context != nullptr && (ready & UV_READABLE)) redisAsyncHandleRead(e->context);
  if (e->context != nullptr && (ready & UV_WRITABLE)) redisAsyncHandleWrite(e->context);
  --e->handling;
}

void Update(Events* e, int add, int remove) {
  int want = (e->events | add) & ~remove;
  if (want == e->events) return;
  e->events = want;
  if (want != 0) {
    uv_poll_start(&e->poll, want, OnPoll);
  } else {
    uv_poll_stop(&e->poll);
  }
}

void AddRead(void* p) { Update(static_cast<Events*>(p), UV_READABLE, 0); }
void DelRead(void* p) { Update(static_cast<Events*>(p), 0, UV_READABLE); }
void AddWrite(void* p) { Update(static_cast<Events*>(p), UV_WRITABLE, 0); }
void DelWrite(void* p) { Update(static_cast<Events*>(p), 0, UV_WRITABLE); }

void OnClosed(uv_handle_t* handle) { std::free(handle->data); }

void Cleanup(void* p) {
  auto* e = static_cast<Events*>(p);
  e->context = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), OnClosed);
}

}  // namespace

bool InsideEvent(const redisAsyncContext* ac) {
  const auto* e = static_cast<const Events*>(ac->ev.data);
  return e != nullptr && e->handling > 0;
}

int Attach(uv_loop_t* loop, redisAsyncContext* ac) {
  if (ac->ev.data != nullptr) return REDIS_ERR;
  auto* e = static_cast<Events*>(std::calloc(1, sizeof(Events)));
  if (e == nullptr) return REDIS_ERR;
  if (uv_poll_init_socket(loop, &e->poll, ac->c.fd) != 0) {
    std::free(e);
    return REDIS_ERR;
  }
  e->context = ac;
  e->poll.data = e;
  ac->ev.data = e;
  ac->ev.addRead = AddRead;
  ac->ev.delRead = DelRead;
  ac->ev.addWrite = AddWrite;
  ac->ev.delWrite = DelWrite;
  ac->ev.cleanup = Cleanup;
  return REDIS_OK;
}

}  // namespace streamfleet::uvredis
