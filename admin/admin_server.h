#pragma once
// The admin UI's HTTP front: routes every request through authentication (auth.h) before it reaches a
// page, an asset or the JSON API (admin_api.h).
//   GET  /login, POST /login (form: token, next), POST /logout
//   GET  /static/<file>          the embedded UI files (public: they hold no data)
//   GET  /healthz                alive (public)
//   GET  /api/session            the CSRF token of the caller's session
//   GET|POST /api/...            AdminApi
//   GET  any other path          the single-page UI (index.html; its router reads location.pathname, so
//                                every page has a real URL that survives reload and the back button)
// Unauthenticated: 401 JSON for /api/..., a redirect to /login?next=... for pages.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "admin/admin_api.h"
#include "admin/auth.h"
#include "admin/sampler.h"
#include "streamfleet/http/http_server.h"

namespace streamfleet::admin {

class AdminServer {
 public:
  // Starts serving config.admin_listen (or `listen` when non-empty, e.g. "127.0.0.1:0" in tests).
  // kFailedPrecondition when no ADMIN_TOKEN is set and ADMIN_INSECURE is off.
  static StatusOr<std::unique_ptr<AdminServer>> Start(const Config& config, SqlStore* store,
                                                      const std::string& listen = "");
  ~AdminServer();
  int port() const { return http_->port(); }
  void Stop();
  Sampler& sampler() { return *sampler_; }

 private:
  AdminServer(const Config& config, SqlStore* store);
  void Handle(HttpExchange& ex);
  void HandleLogin(HttpExchange& ex);
  void ServePage(HttpExchange& ex, const std::string& name, int status = 200,
                 const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

  const Config& config_;
  AdminAuth auth_;
  RedisPool redis_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<HttpServer> http_;
};

// Form fields of an application/x-www-form-urlencoded body (URL-decoded; "+" is a space).
std::map<std::string, std::string> ParseForm(const std::string& body);
// A safe post-login redirect target: a local path ("/..." but not "//..."; no backslash and no control
// character anywhere, which browsers drop or read as "/"), else "/".
std::string SafeNext(const std::string& next);

}  // namespace streamfleet::admin
