#include "admin/auth.h"

#include <openssl/rand.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "streamfleet/base/codec.h"

namespace streamfleet::admin {
namespace {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    std::abort();  // no randomness: never hand out guessable sessions
  }
  std::string hex;
  char buf[3];
  for (unsigned char c : raw) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return hex;
}

}  // namespace

std::optional<std::string> CookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string item = header.substr(pos, end - pos);
    size_t first = item.find_first_not_of(' ');
    if (first != std::string::npos) item = item.substr(first);
    size_t eq = item.find('=');
    if (eq != std::string::npos && item.substr(0, eq) == name) return item.substr(eq + 1);
    pos = end + 1;
  }
  return std::nullopt;
}

bool AdminAuth::TokenMatches(const std::string& candidate) const {
  return !token_.empty() && SecretEquals(candidate, token_);
}

std::optional<bool> AdminAuth::OfferToken(const std::string& candidate) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - window_start_ >= kFailureWindow) {
      window_start_ = now;
      failures_ = 0;
    }
    // Refused before it is compared: a right guess among throttled ones must not be told apart either.
    if (failures_ >= kMaxTokenFailures) return std::nullopt;
  }
  if (TokenMatches(candidate)) return true;
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_;
  return false;
}

bool AdminAuth::LoopbackHost(const HttpExchange& ex) {
  auto host = ex.Header("Host");
  if (!host) return false;
  std::string name = *host;
  if (!name.empty() && name[0] == '[') {
    name = name.substr(1, name.find(']') - 1);  // npos - 1 is still "to the end"
  } else if (auto colon = name.find(':'); colon != std::string::npos) {
    name = name.substr(0, colon);
  }
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name == "localhost" || name == "127.0.0.1" || name == "::1";
}

Session AdminAuth::CreateSession() {
  Session s{RandomHex(32), RandomHex(32), std::chrono::steady_clock::now() + ttl_};
  std::lock_guard<std::mutex> lock(mu_);
  // Drop expired sessions here: logins are rare, so this keeps the map small without a timer.
  auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires < now ? sessions_.erase(it) : std::next(it);
  }
  sessions_[s.id] = s;
  return s;
}

void AdminAuth::EndSession(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(id);
}

std::optional<Session> AdminAuth::FindSession(const HttpExchange& ex) {
  auto header = ex.Header("Cookie");
  if (!header) return std::nullopt;
  auto id = CookieValue(*header, kCookie);
  if (!id) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(*id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires < std::chrono::steady_clock::now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

bool AdminAuth::SameOrigin(const HttpExchange& ex) {
  auto origin = ex.Header("Origin");
  auto host = ex.Header("Host");
  if (!origin || !host) return false;
  return *origin == "http://" + *host || *origin == "https://" + *host;
}

RequestAuth AdminAuth::Check(const HttpExchange& ex, const std::string& form_csrf) {
  RequestAuth out;
  out.session = FindSession(ex);
  auto bearer = BearerToken(ex.Header("Authorization"));
  if (bearer && !token_.empty()) {
    auto offered = OfferToken(*bearer);
    if (!offered) {
      out.result = AuthResult::kThrottled;
      out.reason = kThrottledReason;
      return out;
    }
    out.bearer = *offered;
  }
  if (!out.session && !out.bearer && !insecure_) {
    out.reason = "log in with the admin token (or send Authorization: Bearer)";
    return out;
  }
  bool unsafe = ex.method() != "GET" && ex.method() != "HEAD";
  if (unsafe) {
    if (ex.Header("Origin") && !SameOrigin(ex)) {
      out.result = AuthResult::kCsrfRefused;
      out.reason = "cross-origin request refused (Origin does not match Host)";
      return out;
    }
    if (!out.bearer) {
      // A browser: the session's CSRF token and a same-origin Origin are both required.
      auto header = ex.Header("X-CSRF-Token");
      std::string sent = header ? *header : form_csrf;
      if (!out.session || sent.empty() || !SecretEquals(sent, out.session->csrf) || !SameOrigin(ex)) {
        out.result = AuthResult::kCsrfRefused;
        out.reason = "missing or wrong CSRF token (reload the page)";
        return out;
      }
    }
  }
  out.result = AuthResult::kOk;
  return out;
}

std::string AdminAuth::CookieFor(const Session& s, bool secure) {
  return std::string(kCookie) + "=" + s.id + "; Path=/; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

std::string AdminAuth::ClearCookie(bool secure) {
  return std::string(kCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" + (secure ? "; Secure" : "");
}

bool AdminAuth::ViaHttps(const HttpExchange& ex) {
  auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  if (auto proto = ex.Header("X-Forwarded-Proto")) {
    // "https", or a list from several proxies ("https, http"): the first is the client's.
    std::string first = lower(proto->substr(0, proto->find(',')));
    first.erase(0, first.find_first_not_of(" \t"));
    first.erase(first.find_last_not_of(" \t") + 1);
    if (first == "https") return true;
  }
  if (auto fwd = ex.Header("Forwarded")) {  // RFC 7239: "for=...;proto=https"
    std::string v = lower(fwd->substr(0, fwd->find(',')));
    if (v.find("proto=https") != std::string::npos) return true;
  }
  return false;
}

}  // namespace streamfleet::admin
