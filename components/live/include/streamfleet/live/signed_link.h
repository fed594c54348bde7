#pragma once
// Signed stream links, for browsers: an EventSource cannot send an Authorization header, and an
// organization's bearer token must not reach a browser. The app's backend, which holds the token, signs
// the path of one live stream with an expiry; the browser opens `<path>?exp=<unix s>&sig=<hex>`. The
// signature is HMAC-SHA256(token, "GET\n" + path + "\n" + exp) in lowercase hex (docs/live.md shows it in
// PHP, Python and Node). A link is good for its path only (one generation, or one organization's events),
// until exp. Pure, no I/O.
#include <cstdint>
#include <string>
#include <string_view>

namespace streamfleet::live {

std::string SignLink(std::string_view token, std::string_view path, int64_t exp_unix_s);

enum class LinkCheck { kOk, kMalformed, kExpired, kBadSignature };
// exp and sig as the query gave them.
LinkCheck CheckLink(std::string_view token, std::string_view path, std::string_view exp, std::string_view sig,
                    int64_t now_unix_s);
const char* LinkCheckText(LinkCheck c);

}  // namespace streamfleet::live
