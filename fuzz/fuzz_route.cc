// ingest's request path: MatchRoute + ParseId on any path civetweb hands over (already percent-decoded, so
// any byte), and the JSON error body a bad id is answered with (JsonError).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "streamfleet/chunks/request_parsing.h"
#include "streamfleet/http/http_server.h"

using streamfleet::MatchRoute;
using streamfleet::ParseId;
using streamfleet::Route;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view path(reinterpret_cast<const char*>(data), size);
  if (auto id = ParseId(path)) {
    // Only digits ever reach a Redis key, and the value round-trips.
    FUZZ_CHECK(*id > 0 && std::to_string(*id) == std::string(path).erase(0, path.find_first_not_of('0')));
  }
  Route r = MatchRoute(path);
  if (r.kind == Route::Kind::kUnknown) {
    FUZZ_CHECK(r.bad_id.empty());
    (void)streamfleet::JsonError("no_route", "no route for POST " + std::string(path));
  } else if (r.bad_id.empty()) {
    FUZZ_CHECK(r.org > 0);
    // Start (POST .../generations) and the organization's events name no generation.
    bool has_gen = r.kind != Route::Kind::kStart && r.kind != Route::Kind::kEvents;
    FUZZ_CHECK(has_gen ? r.gen > 0 : r.gen == 0);
  } else {
    // The 400 body quotes the bad id: it must serialize whatever bytes the path held.
    std::string body = streamfleet::JsonError("invalid_id", r.bad_id);
    FUZZ_CHECK(!body.empty());
  }
  return 0;
}
