#include "uv_resp_connection.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "redis_internal.h"

namespace streamfleet {

namespace {
// Bytes read per step: a reply of many MiB arrives in many steps, each fed to the reader at once.
constexpr size_t kReadChunk = 64 * 1024;
// At most this much is written per step, so one huge value does not hold the loop in one call.
constexpr size_t kWriteChunk = 256 * 1024;
}  // namespace

UvRespConnection::UvRespConnection(uv_loop_t* loop, DetachedSocket socket, Owner* owner)
    : socket_(std::move(socket)), owner_(owner), reader_(redisReaderCreate()) {
  poll_.data = this;
  fcntl(socket_.fd, F_SETFL, fcntl(socket_.fd, F_GETFL) | O_NONBLOCK);
  if (socket_.ssl != nullptr) {
    // Non-blocking OpenSSL: a write may complete in parts, and a retried write may come from out_ after it
    // grew (moved).
    SSL_set_mode(socket_.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }
  started_ = uv_poll_init_socket(loop, &poll_, socket_.fd) == 0;
}

UvRespConnection::~UvRespConnection() {
  SSL_free(socket_.ssl);
  if (socket_.fd >= 0) close(socket_.fd);
  redisReaderFree(reader_);
}

bool UvRespConnection::Start() {
  if (!started_) {
    // The handle was never initialised, so there is nothing for libuv to close: free at once.
    delete this;
    return false;
  }
  Rearm();
  return true;
}

void UvRespConnection::Command(const std::vector<std::string>& argv, void* privdata) {
  ArgvView v(argv);
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, v.argc(), v.ptrs.data(), v.lens.data());
  if (len > 0) out_.append(cmd, static_cast<size_t>(len));
  free(cmd);
  pending_.push_back(privdata);
  if (closed_) {
    // Answered like every other command of a dead connection, without recursion into the caller.
    Fail(error_.empty() ? "connection closed" : error_);
    return;
  }
  Rearm();
}

void UvRespConnection::Rearm() {
  if (closed_) return;
  int want = UV_READABLE | (out_.size() > out_at_ ? UV_WRITABLE : 0);
  if (want == armed_) return;
  armed_ = want;
  uv_poll_start(&poll_, want, &UvRespConnection::OnPoll);
}

void UvRespConnection::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<UvRespConnection*>(handle->data);
  if (self->closed_) return;
  if (status < 0) {
    // libuv reports a socket error (e.g. reset) this way: reading says what it is.
    events = UV_READABLE;
  }
  // Read first: replies free the server's output buffer, and a TLS write may need a read to progress.
  if (events & UV_READABLE) self->ReadAvailable();
  if (!self->closed_ && (events & UV_WRITABLE)) self->WriteQueued();
  self->Rearm();
}

long UvRespConnection::ReadSome(char* buf, size_t len) {
  if (socket_.ssl == nullptr) {
    ssize_t n = recv(socket_.fd, buf, len, 0);
    if (n > 0) return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    error_ = n == 0 ? "connection closed by the server" : std::strerror(errno);
    return -1;
  }
  ERR_clear_error();
  int n = SSL_read(socket_.ssl, buf, static_cast<int>(len));
  if (n > 0) return n;
  int e = SSL_get_error(socket_.ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  int saved = errno;
  if (e == SSL_ERROR_ZERO_RETURN) {
    error_ = "TLS connection closed by the server";
  } else {
    std::string reason = TakeOpenSslError();
    error_ = "TLS read: " + (!reason.empty() ? reason : saved != 0 ? std::strerror(saved) : "connection closed");
  }
  return -1;
}

long UvRespConnection::WriteSome(const char* buf, size_t len) {
  if (socket_.ssl == nullptr) {
    ssize_t n = send(socket_.fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    error_ = std::string("write: ") + std::strerror(errno);
    return -1;
  }
  // OpenSSL requires a retried write to repeat the length it was refused with.
  if (retry_len_ > 0) len = retry_len_;
  ERR_clear_error();
  int n = SSL_write(socket_.ssl, buf, static_cast<int>(len));
  if (n > 0) {
    retry_len_ = 0;
    return n;
  }
  int e = SSL_get_error(socket_.ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    retry_len_ = len;
    return 0;
  }
  int saved = errno;
  std::string reason = TakeOpenSslError();
  error_ = "TLS write: " + (!reason.empty() ? reason : saved != 0 ? std::strerror(saved) : "connection closed");
  return -1;
}

void UvRespConnection::ReadAvailable() {
  char buf[kReadChunk];
  while (!closed_) {
    long n = ReadSome(buf, sizeof(buf));
    if (n < 0) {
      Fail(error_);
      return;
    }
    if (n == 0) break;
    redisReaderFeed(reader_, buf, static_cast<size_t>(n));
    while (!closed_) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        Fail(std::string("protocol error: ") + reader_->errstr);
        return;
      }
      if (reply == nullptr) break;
      auto* r = static_cast<redisReply*>(reply);
      if (pending_.empty()) {
        freeReplyObject(r);
        Fail("a reply nobody asked for (out of step)");
        return;
      }
      void* privdata = pending_.front();
      pending_.pop_front();
      // The owner may Close() us from here (it then sees closed_); we stay allocated until the loop runs
      // the close callback.
      owner_->OnRespReply(this, r, privdata);
      freeReplyObject(r);
    }
    // Plain: a short read means the kernel had no more. TLS: OpenSSL may hold bytes it read ahead, which the
    // poll will never report, so read until it says it wants the socket.
    if (socket_.ssl == nullptr && static_cast<size_t>(n) < sizeof(buf)) break;
  }
}

void UvRespConnection::WriteQueued() {
  while (!closed_ && out_at_ < out_.size()) {
    size_t len = std::min(out_.size() - out_at_, kWriteChunk);
    long n = WriteSome(out_.data() + out_at_, len);
    if (n < 0) {
      Fail(error_);
      return;
    }
    if (n == 0) return;  // the kernel's buffer is full: the next writable event goes on
    out_at_ += static_cast<size_t>(n);
  }
  if (out_at_ == out_.size()) {
    out_.clear();
    out_at_ = 0;
  }
}

void UvRespConnection::Fail(const std::string& why) {
  if (!closed_) {
    error_ = why;
    // Down first, so an owner reacting to the answers below already sees this connection gone.
    owner_->OnRespDown(this, why);
  }
  Close();
}

void UvRespConnection::Close() {
  if (!closed_) {
    closed_ = true;
    uv_poll_stop(&poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_),
             [](uv_handle_t* h) { delete static_cast<UvRespConnection*>(h->data); });
  }
  // Every pending command is answered exactly once, in order; an answer may queue another (it is answered
  // in this same loop).
  while (!pending_.empty()) {
    void* privdata = pending_.front();
    pending_.pop_front();
    owner_->OnRespReply(this, nullptr, privdata);
  }
}

}  // namespace streamfleet
