#pragma once
// The headers every answer of the admin server carries, pages and API alike: frames and foreign scripts
// refused, only our own files (the UI has no inline script), no MIME sniffing of the JSON (it holds data
// others wrote: task payloads, dead-letter reasons), and nothing cached (the data is live).
#include <string>
#include <utility>
#include <vector>

namespace streamfleet::admin {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline HeaderList WithSecurity(HeaderList h) {
  static const HeaderList kSecurityHeaders = {
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"},
      {"Referrer-Policy", "same-origin"},
      {"Cache-Control", "no-store"}};
  h.insert(h.end(), kSecurityHeaders.begin(), kSecurityHeaders.end());
  return h;
}

}  // namespace streamfleet::admin
