// Plain TCP: hiredis's blocking context, as the client always used it.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "host_lookup.h"
#include "redis_internal.h"
#include "redis_transport.h"

namespace streamfleet {

namespace {

timeval ToTimeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

class HiredisTransport final : public RedisTransport {
 public:
  explicit HiredisTransport(redisContext* ctx) : ctx_(ctx) {}
  ~HiredisTransport() override { redisFree(ctx_); }

  void Append(const std::vector<std::string>& argv) override {
    ArgvView v(argv);
    redisAppendCommandArgv(ctx_, v.argc(), v.ptrs.data(), v.lens.data());
  }
  Status Flush() override {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(ctx_, &done) != REDIS_OK) return Error();
    }
    return Status::Ok();
  }
  StatusOr<redisReply*> Read() override {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Error();
    return static_cast<redisReply*>(raw);
  }
  void SetTimeout(int ms) override { redisSetTimeout(ctx_, ToTimeval(ms)); }
  void Shutdown() override { ::shutdown(ctx_->fd, SHUT_RDWR); }
  // A duplicate of the socket: hiredis closes its own fd when the context is freed.
  DetachedSocket Detach() override { return DetachedSocket{fcntl(ctx_->fd, F_DUPFD_CLOEXEC, 0), nullptr, nullptr}; }

 private:
  Status Error() {
    if (ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT)) {
      return Status::DeadlineExceeded(std::string("redis timeout: ") + ctx_->errstr);
    }
    if (ctx_->err == REDIS_ERR_PROTOCOL) return Status::Internal(std::string("redis protocol error: ") + ctx_->errstr);
    return Status::Unavailable(std::string("redis connection error: ") + ctx_->errstr);
  }

  redisContext* ctx_;
};

}  // namespace

StatusOr<std::unique_ptr<RedisTransport>> ConnectTransport(const RedisConfig& config) {
  if (config.tls.enabled) return ConnectTlsTransport(config);
  const std::string where = config.host + ":" + std::to_string(config.port);
  // Looked up here, within the connect timeout (hiredis would call getaddrinfo without a limit); the lookup
  // and the connects share it.
  const ConnectDeadline deadline(config.connect_timeout_ms);
  auto addresses = LookUpHost(config.host, config.connect_timeout_ms);
  if (!addresses.ok()) return Status::Unavailable("redis connect " + where + ": " + addresses.status().message());
  redisContext* ctx = nullptr;
  std::string why = "timed out after " + std::to_string(config.connect_timeout_ms) + " ms";
  for (const std::string& ip : *addresses) {
    const int left_ms = deadline.LeftMs();
    if (left_ms <= 0) break;
    ctx = redisConnectWithTimeout(ip.c_str(), config.port, ToTimeval(left_ms));
    if (ctx == nullptr) return Status::Unavailable("redis: cannot allocate context");
    if (!ctx->err) break;
    why = ip + ": " + ctx->errstr;
    redisFree(ctx);
    ctx = nullptr;
  }
  if (ctx == nullptr) return Status::Unavailable("redis connect " + where + ": " + why);
  redisSetTimeout(ctx, ToTimeval(config.command_timeout_ms));
  redisEnableKeepAlive(ctx);
  return std::unique_ptr<RedisTransport>(new HiredisTransport(ctx));
}

}  // namespace streamfleet
