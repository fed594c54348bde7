#pragma once
// Authentication and CSRF protection of the admin UI. Thread-safe.
//
// Who may do what:
//  - a browser logs in once with the admin token (POST /login) and gets a session: an HttpOnly,
//    SameSite=Strict cookie naming it, and a per-session CSRF token the page reads from GET /api/session;
//  - a script sends `Authorization: Bearer ADMIN_TOKEN` on each request instead (no session, no cookie).
// Every POST made with a session cookie must carry the session's CSRF token (X-CSRF-Token header or a
// `csrf` form field) and an Origin naming this server; a bearer POST needs no CSRF token (browsers never
// attach it on their own) but a foreign Origin is still refused.
// In insecure mode (ADMIN_INSECURE, no token) everyone is authenticated, and sessions (hence CSRF) still
// apply to browsers: a page load creates one. Only requests addressed to a loopback name are answered then
// (Host localhost, 127.0.0.1 or [::1]): a web page whose name a DNS rebinding pointed at 127.0.0.1 is its own
// origin, and would otherwise pass the Origin check and drive the fleet from the developer's browser.
// Wrong tokens (the login form and Bearer alike) are counted: past kMaxTokenFailures within kFailureWindow,
// every token is refused with 429 until the window ends, so the token cannot be guessed at request speed.
// Sessions already open are not affected.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "streamfleet/http/http_server.h"

namespace streamfleet::admin {

struct Session {
  std::string id;
  std::string csrf;
  std::chrono::steady_clock::time_point expires;
};

enum class AuthResult { kOk, kUnauthenticated, kCsrfRefused, kThrottled };

struct RequestAuth {
  AuthResult result = AuthResult::kUnauthenticated;
  std::optional<Session> session;  // set when the request carried a valid session cookie
  bool bearer = false;             // authenticated by Authorization: Bearer
  std::string reason;              // why it was refused
};

class AdminAuth {
 public:
  static constexpr const char* kCookie = "sf_admin";
  AdminAuth(std::string token, bool insecure, std::chrono::seconds session_ttl = std::chrono::hours(12))
      : token_(std::move(token)), insecure_(insecure), ttl_(session_ttl) {}

  static constexpr int kMaxTokenFailures = 10;
  static constexpr std::chrono::seconds kFailureWindow{10};
  static constexpr const char* kThrottledReason = "too many wrong tokens: try again in a few seconds";

  bool insecure() const { return insecure_; }
  // Constant-time comparison with the configured token (false when none is configured).
  bool TokenMatches(const std::string& candidate) const;
  // A token offered (login form, Bearer): nullopt while wrong tokens are throttled (seconds to wait),
  // else whether it matches; a wrong one is counted.
  std::optional<bool> OfferToken(const std::string& candidate);
  // Whether the request is addressed to a loopback name (its Host header): AdminServer answers nothing else in
  // insecure mode.
  static bool LoopbackHost(const HttpExchange& ex);
  // A new session (random 256-bit id and CSRF token).
  Session CreateSession();
  void EndSession(const std::string& id);
  // Authenticates a request; for POSTs also checks Origin and (session requests) the CSRF token.
  // form_csrf: the `csrf` field of a form-encoded body, when the caller parsed one.
  RequestAuth Check(const HttpExchange& ex, const std::string& form_csrf = "");
  // Set-Cookie value for a session (HttpOnly, SameSite=Strict, Path=/), Secure when the request reached the
  // server over HTTPS (ViaHttps): a browser then never sends the session over plain HTTP.
  static std::string CookieFor(const Session& s, bool secure);
  static std::string ClearCookie(bool secure);
  // The request came over HTTPS: the admin serves plain HTTP, so this is what the TLS-terminating proxy (an
  // ingress) says in X-Forwarded-Proto or Forwarded. Trusted as given: it can only make the cookie stricter.
  static bool ViaHttps(const HttpExchange& ex);
  // Origin matches the Host header (any scheme): the request comes from a page served by this server.
  static bool SameOrigin(const HttpExchange& ex);

 private:
  std::optional<Session> FindSession(const HttpExchange& ex);

  const std::string token_;
  const bool insecure_;
  const std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // guarded by mu_
  std::chrono::steady_clock::time_point window_start_{};  // guarded by mu_: the failure window's start
  int failures_ = 0;                                      // guarded by mu_: wrong tokens in that window
};

// Value of one cookie from a Cookie header ("a=1; b=2").
std::optional<std::string> CookieValue(const std::string& header, const std::string& name);

}  // namespace streamfleet::admin
