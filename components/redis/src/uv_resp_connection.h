#pragma once
// Internal to the redis component: one Redis connection driven by a libuv loop without hiredis's async
// context, for the connections that context cannot read: TLS (hiredis 0.14 has none) and, behind Sentinel,
// a socket opened by RedisClient (which asks the sentinels, authenticates and refuses a replica) and handed
// over here. RESP is hiredis's own: redisFormatCommandArgv for the commands, a redisReader for the replies.
// The socket is non-blocking; OpenSSL (or recv/send) moves the bytes.
//
// Why writes wait for the writable event instead of going out in Command(): every command queued in one
// loop iteration (a wake-up's whole batch from many request threads) then leaves in one write, which is
// what makes one shared connection cheap -- with TLS even more so, since each write is a TLS record.
//
// Lifetime: the loop owns it. Close() (or a failure) stops it, answers every pending command once with a
// null reply, in order, and frees it when libuv has closed the handle; the owner must drop its pointer at
// Close() or at OnDown, and never touch it afterwards.
#include <hiredis/hiredis.h>
#include <uv.h>

#include <deque>
#include <string>
#include <vector>

#include "redis_transport.h"

namespace streamfleet {

class UvRespConnection {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // A reply (freed by the connection after this returns) or, when the connection went down before it
    // came, nullptr. `privdata` is what Command() was given.
    virtual void OnRespReply(UvRespConnection* conn, redisReply* reply, void* privdata) = 0;
    // The connection failed by itself (read/write error, server closed): called once, before the pending
    // commands are answered with nullptr. Not called for Close().
    virtual void OnRespDown(UvRespConnection* conn, const std::string& why) = 0;
  };

  // Takes `socket` (made non-blocking). Start() must be called before Command().
  UvRespConnection(uv_loop_t* loop, DetachedSocket socket, Owner* owner);
  UvRespConnection(const UvRespConnection&) = delete;
  UvRespConnection& operator=(const UvRespConnection&) = delete;

  // Registers the socket with the loop. On failure the connection is already closed (and will free itself).
  bool Start();
  // Queues one command; it is written on the next writable event. Its reply goes to the owner with privdata.
  void Command(const std::vector<std::string>& argv, void* privdata);
  // Stops, answers every pending command with nullptr (no OnRespDown), frees itself later. Idempotent.
  void Close();

  size_t pending() const { return pending_.size(); }

 private:
  ~UvRespConnection();
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void ReadAvailable();
  void WriteQueued();
  void Fail(const std::string& why);
  void Rearm();
  // One read/write step: bytes moved, 0 for "would block", -1 on error (error_ set).
  long ReadSome(char* buf, size_t len);
  long WriteSome(const char* buf, size_t len);

  uv_poll_t poll_;
  DetachedSocket socket_;
  Owner* owner_;
  redisReader* reader_;
  std::deque<void*> pending_;  // privdata of the commands written or queued, in reply order
  std::string out_;            // formatted commands not yet written, from out_at_
  size_t out_at_ = 0;
  size_t retry_len_ = 0;  // a TLS write that wanted to be retried: OpenSSL needs the same length again
  int armed_ = 0;         // events the poll handle watches now
  bool started_ = false;
  bool closed_ = false;
  std::string error_;
};

}  // namespace streamfleet
