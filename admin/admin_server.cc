#include "admin/admin_server.h"

#include <cctype>
#include <map>

#include "admin/security_headers.h"
#include "admin/web_assets.h"
#include "streamfleet/base/log.h"
#include "streamfleet/base/text.h"

namespace streamfleet::admin {

std::map<std::string, std::string> ParseForm(const std::string& body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t end = body.find('&', pos);
    if (end == std::string::npos) end = body.size();
    std::string item = body.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq != std::string::npos) out[UrlDecode(item.substr(0, eq), true)] = UrlDecode(item.substr(eq + 1), true);
    pos = end + 1;
  }
  return out;
}

std::string SafeNext(const std::string& next) {
  if (next.empty() || next[0] != '/' || (next.size() > 1 && next[1] == '/')) return "/";
  // Browsers drop tabs and newlines from a URL and read "\" as "/" before resolving it: "/\t/evil.example"
  // and "/\evil.example" are "//evil.example", another site; CR/LF would also split the Location header. A
  // local path has no use for any control character (C0, DEL) or backslash, so none is followed.
  for (unsigned char c : next) {
    if (c < 0x20 || c == 0x7f || c == '\\') return "/";
  }
  return next;
}

AdminServer::AdminServer(const Config& config, SqlStore* store)
    : config_(config),
      auth_(config.admin_token, config.admin_insecure),
      redis_(config.redis),
      sampler_(std::make_unique<Sampler>(config)),
      api_(std::make_unique<AdminApi>(config, redis_, store, *sampler_)) {}

StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const Config& config, SqlStore* store,
                                                          const std::string& listen) {
  if (config.admin_token.empty() && !config.admin_insecure) {
    return Status::FailedPrecondition(
        "ADMIN_TOKEN is not set: refusing to serve the admin UI without authentication "
        "(set ADMIN_TOKEN, or ADMIN_INSECURE=true for local development only)");
  }
  std::unique_ptr<AdminServer> s(new AdminServer(config, store));
  AdminServer* self = s.get();
  auto http = HttpServer::Start(listen.empty() ? config.admin_listen : listen, 16,
                                [self](HttpExchange& ex) { self->Handle(ex); });
  if (!http.ok()) return http.status();
  s->http_ = std::move(*http);
  s->sampler_->Start();
  return s;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (http_) http_->Stop();
  sampler_->Stop();
}

void AdminServer::ServePage(HttpExchange& ex, const std::string& name, int status,
                            const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  const WebAsset* a = FindWebAsset(name);
  if (a == nullptr) {
    ex.Respond(404, "text/plain", "not found\n", WithSecurity({}));
    return;
  }
  ex.Respond(status, std::string(a->content_type), std::string(a->body), WithSecurity(extra_headers));
}

void AdminServer::HandleLogin(HttpExchange& ex) {
  if (ex.method() == "GET") {
    ServePage(ex, "login.html");
    return;
  }
  auto body = ex.ReadBody(16 * 1024);
  auto form = body.ok() ? ParseForm(*body) : std::map<std::string, std::string>{};
  std::string next = SafeNext(form["next"]);
  // The login form is a POST from our own page: a foreign Origin is a login-CSRF attempt.
  if (ex.Header("Origin") && !AdminAuth::SameOrigin(ex)) {
    ex.Respond(403, "text/plain", "cross-origin login refused\n", WithSecurity({}));
    return;
  }
  auto offered = auth_.OfferToken(form["token"]);
  if (!offered) {
    ex.Respond(429, "text/plain", std::string(AdminAuth::kThrottledReason) + "\n",
               WithSecurity({{"Retry-After", std::to_string(AdminAuth::kFailureWindow.count())}}));
    return;
  }
  if (!*offered) {
    SF_LOG_WARN("admin: failed login from {}", ex.Header("X-Forwarded-For").value_or("a direct client"));
    ex.Respond(303, "text/plain", "", WithSecurity({{"Location", "/login?error=1&next=" + UrlEncodePath(next)}}));
    return;
  }
  Session s = auth_.CreateSession();
  ex.Respond(303, "text/plain", "",
             WithSecurity({{"Location", next}, {"Set-Cookie", AdminAuth::CookieFor(s, AdminAuth::ViaHttps(ex))}}));
}

void AdminServer::Handle(HttpExchange& ex) {
  const std::string& path = ex.path();
  if (path == "/healthz") {
    ex.Respond(200, "text/plain", "ok\n", WithSecurity({}));
    return;
  }
  if (path.rfind("/static/", 0) == 0) {
    ServePage(ex, path.substr(8));
    return;
  }
  if (auth_.insecure() && !AdminAuth::LoopbackHost(ex)) {  // DNS rebinding (auth.h)
    ex.RespondJson(403,
                   JsonError("host_refused", "without ADMIN_TOKEN only requests to localhost, 127.0.0.1 or [::1] are "
                                             "answered"),
                   WithSecurity({}));
    return;
  }
  if (path == "/login") {
    HandleLogin(ex);
    return;
  }
  bool api = path.rfind("/api/", 0) == 0;
  std::string form_csrf;
  RequestAuth a = auth_.Check(ex, form_csrf);
  // Insecure mode: a browser without a session gets one on its first page load (CSRF still applies).
  std::vector<std::pair<std::string, std::string>> set_cookie;
  if (a.result == AuthResult::kOk && auth_.insecure() && !a.session && !a.bearer && !api && ex.method() == "GET") {
    a.session = auth_.CreateSession();
    set_cookie.push_back({"Set-Cookie", AdminAuth::CookieFor(*a.session, AdminAuth::ViaHttps(ex))});
  }
  if (a.result == AuthResult::kUnauthenticated) {
    if (api || ex.method() != "GET") {
      ex.RespondJson(401, JsonError("unauthenticated", a.reason), WithSecurity({{"WWW-Authenticate", "Bearer"}}));
    } else {
      std::string target = path + (ex.query().empty() ? "" : "?" + ex.query());
      ex.Respond(302, "text/plain", "", WithSecurity({{"Location", "/login?next=" + UrlEncodePath(target)}}));
    }
    return;
  }
  if (a.result == AuthResult::kThrottled) {
    SF_LOG_WARN("admin: refused {} {}: {}", ex.method(), path, a.reason);
    ex.RespondJson(429, JsonError("too_many_attempts", a.reason),
                   WithSecurity({{"Retry-After", std::to_string(AdminAuth::kFailureWindow.count())}}));
    return;
  }
  if (a.result == AuthResult::kCsrfRefused) {
    SF_LOG_WARN("admin: refused {} {}: {}", ex.method(), path, a.reason);
    ex.RespondJson(403, JsonError("csrf", a.reason), WithSecurity({}));
    return;
  }
  if (path == "/logout" && ex.method() == "POST") {
    if (a.session) auth_.EndSession(a.session->id);
    ex.RespondJson(200, "{\"logged_out\":true}",
                   WithSecurity({{"Set-Cookie", AdminAuth::ClearCookie(AdminAuth::ViaHttps(ex))}}));
    return;
  }
  if (path == "/api/session") {
    nlohmann::json j = {{"csrf", a.session ? a.session->csrf : ""}, {"insecure", auth_.insecure()},
                        {"bearer", a.bearer}};
    ex.RespondJson(200, j.dump(), WithSecurity({}));
    return;
  }
  if (api) {
    api_->Handle(ex, path.substr(5));
    return;
  }
  if (ex.method() != "GET") {
    ex.RespondJson(405, JsonError("method_not_allowed", ex.method()), WithSecurity({}));
    return;
  }
  ServePage(ex, "index.html", 200, set_cookie);
}

}  // namespace streamfleet::admin
