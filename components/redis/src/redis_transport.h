#pragma once
// One blocking connection to one Redis server, below RedisClient: commands in (RESP), replies out. Two
// kinds: plain TCP through hiredis's own context, and TLS (OpenSSL for the session, hiredis's RESP
// formatting and reader for the protocol), because Debian 12's hiredis 0.14 has no TLS of its own.
// Everything above (pipelines, deferred replies, NOSCRIPT repair, cluster routing) is the same for both.
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "streamfleet/base/config.h"
#include "streamfleet/base/status.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace streamfleet {

// A connected, authenticated socket taken out of a transport, for an event loop to drive
// (uv_resp_connection.h): the fd, and for TLS its OpenSSL session and the context that must outlive it.
// The new owner closes fd and frees ssl.
struct DetachedSocket {
  int fd = -1;
  SSL* ssl = nullptr;  // null: plain TCP
  std::shared_ptr<SSL_CTX> ctx;
};

class RedisTransport {
 public:
  virtual ~RedisTransport() = default;
  // Queues a command; it is written by Flush or the next Read.
  virtual void Append(const std::vector<std::string>& argv) = 0;
  // Writes everything queued (within the timeout).
  virtual Status Flush() = 0;
  // The next reply, after writing what is queued; the caller frees it (freeReplyObject). Errors:
  // kDeadlineExceeded (timeout), kUnavailable (connection lost), kInternal (protocol). After an error the
  // transport is dead: drop it.
  virtual StatusOr<redisReply*> Read() = 0;
  // Socket timeout for the reads and writes that follow.
  virtual void SetTimeout(int ms) = 0;
  // shutdown(2) of the socket: a Read blocked in another thread returns an error. The one call that may come
  // from another thread (SentinelWatcher's stop).
  virtual void Shutdown() = 0;
  // Hands the connection over (nothing may be queued or unread); the transport is unusable afterwards.
  virtual DetachedSocket Detach() = 0;
};

// Connects (TCP or TLS as config.tls says) to config.host:config.port. kUnavailable when the server cannot
// be reached; kUnauthenticated for a TLS handshake refused on certificates (the reason in the message);
// kInvalidArgument for unreadable certificate files.
StatusOr<std::unique_ptr<RedisTransport>> ConnectTransport(const RedisConfig& config);

// The TLS kind (tls_transport.cc).
StatusOr<std::unique_ptr<RedisTransport>> ConnectTlsTransport(const RedisConfig& config);

// The first error OpenSSL queued on this thread, as text, and the queue cleared; "" when none was queued
// (tls_transport.cc).
std::string TakeOpenSslError();

}  // namespace streamfleet
