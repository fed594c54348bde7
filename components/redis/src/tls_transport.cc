// TLS to Redis: a blocking socket, an OpenSSL session on it, hiredis's command formatting and RESP reader
// for the protocol. Verification (chain and host name) is on unless REDIS_TLS_INSECURE.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "host_lookup.h"
#include "redis_internal.h"
#include "redis_transport.h"
#include "streamfleet/base/log.h"

namespace streamfleet {

namespace {

std::string OpenSslError() {
  std::string e = TakeOpenSslError();
  return e.empty() ? "no OpenSSL error recorded" : e;
}

// What a TLS file is as stat(2) sees it through symlinks. A rotation changes it whether the file is
// rewritten in place (a copy, cert-manager's CSI driver) or the symlink a mounted Kubernetes Secret is read
// through is swapped to a new directory (a new inode).
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path) {
  FileStamp s;
  struct stat st {};
  if (path.empty() || stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

using TlsFileStamps = std::array<FileStamp, 3>;  // REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY

StatusOr<std::shared_ptr<SSL_CTX>> BuildContext(const RedisTlsConfig& t) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return Status::Internal("redis TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_AUTO_RETRY);
  // Read what the socket holds, not one record header and then its body: one read(2) per batch of replies
  // instead of two per reply (the task worker's small acks made that half of its system calls).
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  if (t.insecure) {
    SF_LOG_WARN("REDIS_TLS_INSECURE=true: Redis' certificate and host name are NOT verified (development only)");
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    int ok = t.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                               : SSL_CTX_load_verify_locations(ctx.get(), t.ca_file.c_str(), nullptr);
    if (ok != 1) return Status::InvalidArgument("REDIS_TLS_CA " + t.ca_file + ": " + OpenSslError());
  }
  if (!t.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert_file.c_str()) != 1) {
      return Status::InvalidArgument("REDIS_TLS_CERT " + t.cert_file + ": " + OpenSslError());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), t.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return Status::InvalidArgument("REDIS_TLS_KEY " + t.key_file + ": " + OpenSslError());
    }
  }
  return ctx;
}

// The SSL_CTX of a TLS setting, read again when one of its files changed: each connection (a reconnect after
// a restart or a failover, a new process thread's client) uses the files as they are, so a rotated
// certificate needs no restart. Open connections keep the session they made. Files that change into
// something unusable (a certificate whose new key has not been written yet, a truncated file) leave the
// previous context in use, with one warning per change: a rotation half-way never breaks reconnects.
StatusOr<std::shared_ptr<SSL_CTX>> ContextFor(const RedisTlsConfig& t) {
  struct Cached {
    std::shared_ptr<SSL_CTX> ctx;
    TlsFileStamps stamps;   // the files ctx was read from
    std::optional<TlsFileStamps> refused;  // the last files that could not be used (warned once)
  };
  static std::mutex mu;
  static std::map<std::string, Cached> contexts;
  const std::string key = t.ca_file + '\n' + t.cert_file + '\n' + t.key_file + '\n' + (t.insecure ? "1" : "0");
  const TlsFileStamps now{StampOf(t.ca_file), StampOf(t.cert_file), StampOf(t.key_file)};
  std::lock_guard<std::mutex> lock(mu);
  auto it = contexts.find(key);
  if (it != contexts.end() && (it->second.stamps == now || it->second.refused == now)) return it->second.ctx;
  auto built = BuildContext(t);
  if (!built.ok()) {
    if (it == contexts.end()) return built.status();
    SF_LOG_WARN("Redis TLS files changed but cannot be used ({}); connecting with the previous ones",
                built.status().ToString());
    it->second.refused = now;
    return it->second.ctx;
  }
  if (it != contexts.end()) SF_LOG_INFO("Redis TLS files changed: new connections use them");
  contexts[key] = Cached{*built, now, std::nullopt};
  return *built;
}

void SetSocketTimeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A connected blocking socket, or -1 with *why.
int ConnectSocket(const std::string& host, int port, int timeout_ms, std::string* why) {
  // Looked up within the connect timeout (getaddrinfo has no limit of its own), then each address in turn,
  // all within it.
  const ConnectDeadline deadline(timeout_ms);
  auto addresses = LookUpHost(host, timeout_ms);
  if (!addresses.ok()) {
    *why = addresses.status().message();
    return -1;
  }
  int fd = -1;
  *why = "timed out after " + std::to_string(timeout_ms) + " ms";
  for (const std::string& ip : *addresses) {
    const int left_ms = deadline.LeftMs();
    if (left_ms <= 0) break;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // an address already: no lookup
    addrinfo* ai = nullptr;
    if (getaddrinfo(ip.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0 || ai == nullptr) continue;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int c = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
    const int connect_errno = errno;
    freeaddrinfo(ai);
    if (fd < 0) continue;
    errno = connect_errno;
    if (c != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof(err);
      if (poll(&p, 1, left_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        c = 0;
      } else {
        errno = err != 0 ? err : ETIMEDOUT;
      }
    }
    if (c == 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      break;
    }
    *why = ip + ": " + std::strerror(errno);
    close(fd);
    fd = -1;
  }
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  }
  return fd;
}

class TlsTransport final : public RedisTransport {
 public:
  TlsTransport(int fd, SSL* ssl, std::shared_ptr<SSL_CTX> ctx)
      : fd_(fd), ssl_(ssl), ctx_(std::move(ctx)), reader_(redisReaderCreate()) {}
  ~TlsTransport() override {
    SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
    redisReaderFree(reader_);
  }

  void Append(const std::vector<std::string>& argv) override {
    ArgvView v(argv);
    char* cmd = nullptr;
    int len = redisFormatCommandArgv(&cmd, v.argc(), v.ptrs.data(), v.lens.data());
    if (len > 0) out_.append(cmd, static_cast<size_t>(len));
    free(cmd);
  }

  Status Flush() override {
    size_t at = 0;
    while (at < out_.size()) {
      int n = SSL_write(ssl_, out_.data() + at, static_cast<int>(std::min<size_t>(out_.size() - at, INT_MAX)));
      if (n <= 0) return IoError(n, "write");
      at += static_cast<size_t>(n);
    }
    out_.clear();
    return Status::Ok();
  }

  StatusOr<redisReply*> Read() override {
    SF_RETURN_IF_ERROR(Flush());
    char buf[16 * 1024];
    while (true) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        return Status::Internal(std::string("redis protocol error: ") + reader_->errstr);
      }
      if (reply != nullptr) return static_cast<redisReply*>(reply);
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) return IoError(n, "read");
      redisReaderFeed(reader_, buf, static_cast<size_t>(n));
    }
  }

  void SetTimeout(int ms) override { SetSocketTimeout(fd_, ms); }
  void Shutdown() override { ::shutdown(fd_, SHUT_RDWR); }

  DetachedSocket Detach() override {
    DetachedSocket d{fd_, ssl_, ctx_};
    fd_ = -1;
    ssl_ = nullptr;
    return d;
  }

 private:
  Status IoError(int n, const char* what) {
    int e = SSL_get_error(ssl_, n);
    int saved = errno;
    if (e == SSL_ERROR_ZERO_RETURN) return Status::Unavailable("redis TLS connection closed by the server");
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
        (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK || saved == ETIMEDOUT))) {
      ERR_clear_error();
      return Status::DeadlineExceeded(std::string("redis timeout (TLS ") + what + ")");
    }
    if (e == SSL_ERROR_SYSCALL) {
      std::string detail = OpenSslError();
      if (saved != 0) detail = std::strerror(saved);
      return Status::Unavailable(std::string("redis TLS ") + what + ": " + detail);
    }
    return Status::Unavailable(std::string("redis TLS ") + what + ": " + OpenSslError());
  }

  int fd_;
  SSL* ssl_;
  std::shared_ptr<SSL_CTX> ctx_;  // outlives ssl_
  redisReader* reader_;
  std::string out_;
};

}  // namespace

std::string TakeOpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

StatusOr<std::unique_ptr<RedisTransport>> ConnectTlsTransport(const RedisConfig& config) {
  auto ctx = ContextFor(config.tls);
  if (!ctx.ok()) return ctx.status();
  const std::string where = config.host + ":" + std::to_string(config.port);
  std::string why;
  int fd = ConnectSocket(config.host, config.port, config.connect_timeout_ms, &why);
  if (fd < 0) return Status::Unavailable("redis connect " + where + ": " + why);
  SetSocketTimeout(fd, config.connect_timeout_ms);  // the handshake
  SSL* ssl = SSL_new(ctx->get());
  if (ssl == nullptr) {
    close(fd);
    return Status::Internal("redis TLS: " + OpenSslError());
  }
  SSL_set_fd(ssl, fd);
  const std::string name = config.tls.server_name.empty() ? config.host : config.tls.server_name;
  const bool ip = IsIpLiteral(name);
  if (!ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI carries names only
  if (!config.tls.insecure) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
  }
  if (SSL_connect(ssl) != 1) {
    long verify = SSL_get_verify_result(ssl);
    int saved = errno;
    std::string detail = OpenSslError();
    SSL_free(ssl);
    close(fd);
    if (verify != X509_V_OK) {
      return Status::Unauthenticated("redis TLS handshake with " + where + ": certificate verify failed: " +
                                     X509_verify_cert_error_string(verify));
    }
    if (detail == "no OpenSSL error recorded" && saved != 0) detail = std::strerror(saved);
    return Status::Unavailable("redis TLS handshake with " + where + " failed: " + detail);
  }
  SetSocketTimeout(fd, config.command_timeout_ms);
  return std::unique_ptr<RedisTransport>(new TlsTransport(fd, ssl, std::move(*ctx)));
}

}  // namespace streamfleet
